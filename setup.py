"""The one native part of lodec: an optional C accelerator for vein decoding.

Everything else is configured in pyproject.toml. ``optional=True``: where no C
compiler (or no Python headers) is available the build goes on without it,
and lodec decodes with its pure-Python decoders, which are the reference
(docs/adr/0004-native-vein-decoder.md).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "lodec._native",
            sources=["lodec/_native.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        )
    ]
)
