"""The native module (lodec/_native.c) under AddressSanitizer and UndefinedBehaviorSanitizer.

Builds lodec/_native.c with gcc and ``-fsanitize=address,undefined`` in a
temporary folder (``fuzz/native_asan.py``) and runs ``fuzz/native_check.py``
in a child python with the sanitizer runtimes preloaded and
``PYTHONMALLOC=malloc`` (every object a malloc block with red zones): every
fuzz seed and kept finding with mutations, veins of random records of every
schema mutated and under small limits, arbitrary bytes, truncated heads, the
Decoder given wrong arguments, and ``read_regular`` on FIFO, link, folder and
over-limit plants. The run must exit 0 with no sanitizer report: the native
decoder agrees with the reference on every input and touches no byte it does
not own. Then copies of the source with a planted memory bug must be caught,
so the harness is shown able to fail. Needs gcc with libasan and libubsan
(on CI machines; without them the test skips, and fails under LODEC_CI=1).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import unavailable

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
SOURCE = ROOT / "lodec" / "_native.c"


def _native_asan() -> ModuleType:
    spec = importlib.util.spec_from_file_location("native_asan", FUZZ / "native_asan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def asan() -> ModuleType:
    native_asan = _native_asan()
    try:
        native_asan.runtimes()
    except native_asan.Unavailable as exc:
        unavailable(str(exc))
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        unavailable("no Python.h (install the python3-dev headers)")
    return native_asan


def _check(asan: ModuleType, module: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FUZZ / "native_check.py"), *args], env=asan.environment(module),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_native_module_agrees_with_the_reference_and_is_memory_safe_under_asan_and_ubsan(
        asan: ModuleType, tmp_path: Path) -> None:
    module = asan.build(tmp_path)
    done = _check(asan, module, "--count", "24")
    report = asan.sanitizer_report(done.stderr)
    assert report is None, report
    assert done.returncode == 0, done.stderr[-6000:]
    # The sanitized build was the one checked, and it settled inputs itself (not only "ask the Python decoders").
    assert f"native_check: {module}:" in done.stdout, done.stdout
    settled = int(done.stdout.split("(")[1].split(" settled")[0])
    assert settled > 1000, done.stdout


#: Memory bugs planted in copies of lodec/_native.c: (the source text replaced, its replacement, what the
#: sanitizer must report). Each is a plausible slip in this code; the deterministic run must catch every one.
PLANTED = {
    "a string length not checked against the bytes left": (
        "return n <= c->max_text && n <= (uint64_t)(c->end - c->p);",
        "return n <= c->max_text;",
        "AddressSanitizer: heap-buffer-overflow",
    ),
    "a head's 1-8 byte argument read without checking the bytes left": (
        "if ((size_t)(c->end - c->p) < size)\n            return -1;",
        "",
        "AddressSanitizer: heap-buffer-overflow",
    ),
    # Undefined only for -2**63 (where x86 happens to give the right value): only UBSan can see it.
    "a negation that overflows for the most negative int": (
        "PyLong_FromLongLong(-1 - (long long)arg)",
        "PyLong_FromLongLong(-(long long)(arg + 1))",
        "runtime error: negation of -9223372036854775808",
    ),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_a_planted_memory_or_undefined_behaviour_bug_in_the_native_module_is_caught(asan: ModuleType, tmp_path: Path, bug: str) -> None:
    old, new, expected = PLANTED[bug]
    source = SOURCE.read_text()
    assert source.count(old) == 1, f"the planted bug no longer applies to lodec/_native.c; update PLANTED[{bug!r}]"
    broken = tmp_path / "_native_broken.c"
    broken.write_text(source.replace(old, new))
    module = asan.build(tmp_path, broken)
    done = _check(asan, module, "--count", "24")
    assert done.returncode != 0, f"the planted bug went unseen: {done.stdout}"
    report = asan.sanitizer_report(done.stderr)
    assert report is not None and expected in report and "_native_broken.c" in report, done.stderr[-6000:]
