"""atheris harness for the ``native`` target: the native decoder against the reference (``native_diff.py``).

Run it through ``native_asan.py fuzz``, which builds lodec/_native.c with
AddressSanitizer + UndefinedBehaviorSanitizer and runs this file with the
sanitizer runtimes preloaded and ``LODEC_NATIVE_SO`` naming that build; run
directly, it compares the regular build (README.md).
"""

import os
import sys

import atheris

with atheris.instrument_imports(include=["lodec"]):
    import native_diff
    import targets

if __name__ == "__main__":
    from _common import main

    so = os.environ.get("LODEC_NATIVE_SO")
    if so:
        module = native_diff.use_native(so)
        print(f"fuzz_native: native decoder from {module.__file__}", file=sys.stderr)
    elif native_diff.codec._NativeDecoder is None:
        sys.exit("fuzz_native: no native decoder (not built, or LODEC_PURE_PYTHON is set); see fuzz/README.md")
    main(targets.native)
