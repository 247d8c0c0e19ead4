"""Build lodec/_native.c with AddressSanitizer + UndefinedBehaviorSanitizer and run the native checks under them.

    python fuzz/native_asan.py check [--count N]      # the deterministic differential run (native_check.py)
    python fuzz/native_asan.py fuzz [libFuzzer args]  # the atheris harness fuzz_native.py, corpus fuzz/corpus/native
    python fuzz/native_asan.py fuzz CRASH...          # replay inputs (a finding) under the sanitizers
    python fuzz/native_asan.py build DIR              # only build; prints the module's path

The sanitized module is built into a temporary folder (gcc, ``CFLAGS`` below)
and loaded in place of the regular build (``native_diff.use_native``); the
process runs with the sanitizer runtimes preloaded (python itself is not
built with them) and ``PYTHONMALLOC=malloc``, so that every Python object,
bytes included, is a malloc block with ASan red zones around it: under
pymalloc a read past a small bytes object lands in the same pool and is not
seen. Exit status: the child's (non-zero on a sanitizer report or a
disagreement). See fuzz/README.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SOURCE = ROOT / "lodec" / "_native.c"
CC = os.environ.get("CC", "gcc")
CFLAGS = ["-shared", "-fPIC", "-O1", "-g", "-std=c11", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
          "-fno-sanitize-recover=all"]
#: What a sanitizer writes on stderr when it finds something (ASan's header, UBSan's "file:line:col: runtime error:").
REPORT_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


class Unavailable(RuntimeError):
    """No C compiler, or no ASan/UBSan runtime to preload."""


def runtimes(cc: str = CC) -> list[str]:
    """The ASan and UBSan runtime libraries of ``cc`` (absolute paths), to preload into python."""
    if shutil.which(cc) is None:
        raise Unavailable(f"no C compiler {cc!r} on PATH")
    found = []
    for name in ("libasan.so", "libubsan.so"):
        path = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
        if not os.path.isabs(path) or not os.path.exists(path):  # gcc echoes the bare name when it has none
            raise Unavailable(f"{cc} has no {name} (install libasan8 / libubsan1, or gcc's full toolchain)")
        found.append(path)
    return found


def build(out_dir: Path, source: Path = SOURCE, cc: str = CC) -> Path:
    """Compile ``source`` with the sanitizers into ``out_dir``; returns the module's path.

    Raises Unavailable without a compiler or the runtimes, CalledProcessError (with gcc's output) on a
    compile error.
    """
    runtimes(cc)
    out = Path(out_dir) / f"_native{sysconfig.get_config_var('EXT_SUFFIX')}"
    include = sysconfig.get_paths()["include"]
    done = subprocess.run([cc, *CFLAGS, f"-I{include}", str(source), "-o", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return out


def environment(module: Path, cc: str = CC) -> dict[str, str]:
    """The environment of a python process that loads ``module`` under the sanitizers.

    ``detect_leaks=0``: CPython keeps objects alive until exit by design, which LeakSanitizer would report.
    ``LODEC_PURE_PYTHON=1`` keeps the regular decoder out; ``LODEC_NATIVE_SO`` names the sanitized one.
    """
    env = dict(os.environ)
    env.update({
        "LD_PRELOAD": ":".join(runtimes(cc)),
        "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:"
                        "detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "PYTHONMALLOC": "malloc",
        "LODEC_PURE_PYTHON": "1",
        "LODEC_NATIVE_SO": str(module),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(FUZZ), os.environ.get("PYTHONPATH")])),
    })
    return env


def fuzzing_environment(module: Path, out_dir: Path, cc: str = CC) -> dict[str, str]:
    """``environment`` for atheris: ``libfuzzer_hooks.c`` preloaded first, so Python coverage reaches libFuzzer.

    gcc's ASan runtime exports do-nothing ``__sanitizer_cov_*`` functions that would otherwise take atheris's
    coverage calls (libFuzzer then sees no coverage at all); ``verify_asan_link_order=0`` because the ASan
    runtime is then second in the preload list (the hooks library allocates nothing before it starts).
    """
    import atheris

    hooks = Path(out_dir) / "libfuzzer_hooks.so"
    done = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", str(FUZZ / "libfuzzer_hooks.c"), "-o", str(hooks),
                           "-ldl"], capture_output=True, text=True)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    core = Path(atheris.__file__).parent / f"core_with_libfuzzer{sysconfig.get_config_var('EXT_SUFFIX')}"
    env = environment(module, cc)
    env["LD_PRELOAD"] = f"{hooks}:{env['LD_PRELOAD']}"
    env["LODEC_LIBFUZZER"] = str(core)
    env["ASAN_OPTIONS"] += ":verify_asan_link_order=0"
    return env


def sanitizer_report(stderr: str) -> str | None:
    """The sanitizer's report in a child's stderr, or None."""
    at = [stderr.find(m) for m in REPORT_MARKERS if m in stderr]
    return stderr[max(0, min(at) - 200):] if at else None


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("check", "fuzz", "build"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "build":
        if len(rest) != 1:
            print("usage: native_asan.py build DIR", file=sys.stderr)
            return 2
        print(build(Path(rest[0])))
        return 0
    with tempfile.TemporaryDirectory(prefix="lodec-asan-") as tmp:
        try:
            module = build(Path(tmp))
        except Unavailable as exc:
            print(f"native_asan: {exc}", file=sys.stderr)
            return 1
        if command == "check":
            env = environment(module)
            args = [sys.executable, str(FUZZ / "native_check.py"), *rest]
        else:
            env = fuzzing_environment(module, Path(tmp))
            corpus, crashes = FUZZ / "corpus" / "native", FUZZ / "crashes"
            corpus.mkdir(parents=True, exist_ok=True)
            crashes.mkdir(parents=True, exist_ok=True)
            # Files given (a crash to replay): libFuzzer runs just those; else the corpus, then the seeds.
            folders = [] if any(not a.startswith("-") for a in rest) else [str(corpus), str(FUZZ / "seeds" / "native")]
            args = [sys.executable, str(FUZZ / "fuzz_native.py"), *folders, f"-artifact_prefix={crashes}/native-",
                    "-timeout=10", "-rss_limit_mb=4096", *rest]
        print(f"native_asan: {module.name} built with {' '.join(CFLAGS)}; running {Path(args[1]).name}",
              file=sys.stderr, flush=True)
        return subprocess.run(args, env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
