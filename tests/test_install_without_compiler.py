"""An install of lodec where no C compiler works still installs, and still verifies (issue 16).

setup.py builds lodec/_native.c as an optional extension: where the compiler
fails, setuptools warns and goes on, and lodec decodes with its pure-Python
decoders, the reference. This test installs the package from a copy of its
sources (so no build output of an earlier install can slip in) with
``pip install --no-deps --target``, every compiler and linker setuptools
could use set to ``/bin/false``, then runs that copy in a fresh python
(``-S``: no site-packages of this venv, so no editable lodec; the venv's
site-packages given after it, for the dependencies only) and verifies the
example stack ``stacks/code-review`` with the CLI.

The build is isolated, as a user's ``pip install`` is: pip installs
pyproject's build requirements (``setuptools>=68``; the venv's own
setuptools is older, and has no ``wheel``) from the configured package
index, as ``pip install -e .`` in ``.ci/run`` already does, so this test
needs that index (a local mirror or PyPI) and nothing more; ``--no-deps``
installs nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Everything setuptools could compile or link with, made to fail.
NO_COMPILER = {name: "/bin/false" for name in ("CC", "CXX", "LDSHARED", "LDCXXSHARED", "CPP")}


def _sources(dest: Path) -> Path:
    """pyproject.toml, setup.py, README.md and the lodec package, without build output or caches."""
    dest.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "lodec", dest / "lodec", ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.pyc"))
    return dest


def test_an_install_without_a_compiler_succeeds_without_the_native_module_and_verifies_the_example(tmp_path: Path) -> None:
    src, target = _sources(tmp_path / "src"), tmp_path / "site"
    env = {**os.environ, **NO_COMPILER}
    env.pop("LODEC_PURE_PYTHON", None)  # the native module is absent because it was not built, not because it is ignored
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-v", "--no-deps", "--no-compile",
         "--target", str(target), str(src)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    output = done.stdout + done.stderr
    # The compiler was asked and failed (the build did not merely skip the extension).
    assert re.search(r"""/bin/false .*_native\.c""", output), output[-4000:]
    assert re.search(r"""building (optional )?extension ["']lodec\._native["'] failed""", output), output[-4000:]
    assert (target / "lodec" / "cli" / "__init__.py").exists()
    assert not list(target.rglob("_native*.so")), list(target.rglob("_native*.so"))
    assert (target / "lodec" / "schemas").is_dir() and list((target / "lodec" / "schemas").glob("*.lode"))

    script = (
        "import sys, lodec, lodec.files, lodec.format.codec as codec\n"
        f"assert lodec.__file__.startswith({str(target)!r}), lodec.__file__\n"
        "assert codec.NATIVE is False and codec._NativeDecoder is None and lodec.files._native_read_whole_at is None\n"
        "print('NATIVE', codec.NATIVE)\n"
        "from lodec.cli import main\n"
        f"sys.argv = ['lodec', 'verify', {str(ROOT / 'stacks' / 'code-review' / 'code-review-stack.json')!r}]\n"
        "main()\n"
    )
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LODEC_"))}
    run_env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    ran = subprocess.run([sys.executable, "-S", "-c", script], env=run_env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "NATIVE False" in ran.stdout and "Verified code-review-pipeline 1.0.0: 3 steps" in ran.stdout, ran.stdout


def test_lodec_pure_python_turns_off_every_native_path() -> None:
    """``LODEC_PURE_PYTHON=1`` (README) leaves out both the native decoder and the native step read."""
    script = (
        "import lodec.files as f, lodec.format.codec as c\n"
        "print(c.NATIVE, c._NativeDecoder is None, f.read_whole_at is f._read_whole_at)\n"
    )
    env = {**os.environ, "LODEC_PURE_PYTHON": "1"}
    ran = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and ran.stdout.split() == ["False", "True", "True"], ran.stdout + ran.stderr
