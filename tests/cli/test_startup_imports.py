"""Start-up guard: ``lodec --version`` and ``lodec verify`` of an unsigned stack import only what they need.

Behavioural, not a timing test: each command runs in a fresh interpreter, as
the ``lodec`` script runs it (``from lodec.cli import main; main()``), and an
``atexit`` hook records ``sys.modules``. Neither click (the fast path of
``lodec.cli``) nor the heavy dependencies only other commands need may be
among them. The fast path must print what the click commands print.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

# Imported by other commands only (signing, policies, importers, skills, runs).
NOT_ON_THE_FAST_PATH = (
    "click",
    "cryptography",
    "yaml",
    "semver",
    "skills_ref",
    "license_expression",
    "lodec.cli.commands",
    "lodec.cli.run_commands",
    "lodec.sign.keys",
    "lodec.sign.statement",
    "lodec.run",
    "lodec.importers",
    "tempfile",
)

SCRIPT = """
import atexit, json, sys
out, args = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["lodec", *args]
from lodec.cli import main
sys.exit(main())
"""


def run_script(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    record = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(record), *args], capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}, check=False,
    )  # fmt: skip
    return proc, set(json.loads(record.read_text()))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in NOT_ON_THE_FAST_PATH))


def test_version_imports_nothing_heavy(tmp_path: Path) -> None:
    proc, modules = run_script(tmp_path, "--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "lodec, version 0.1.0\n", "")
    assert heavy(modules) == []
    assert not {"lodec.app.verify", "lodec.format.codec", "cbor2", "blake3"} & modules


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_unsigned_imports_nothing_heavy(tmp_path: Path, seed_stack: Path, as_json: bool) -> None:
    args = ["verify", str(seed_stack), *(["--json"] if as_json else [])]
    proc, modules = run_script(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert heavy(modules) == []
    assert (proc.returncode, proc.stdout, proc.stderr) == run_cli(*args)



# An unsigned pack is verified without any of the signed stages: no keys, no clock, no SHA-256.
NOT_ON_THE_UNSIGNED_PACK_PATH = ("lodec.sign.trust", "lodec.sign.policy", "lodec.sign.dsse", "lodec.sign.state",
                                 "datetime", "hashlib")


def test_verify_unsigned_pack_imports_no_signing(tmp_path: Path, seed_stack: Path) -> None:
    pack = seed_stack.parent / "unsigned.lodepack"
    code, _, err = run_cli("pack", seed_stack, "-o", pack)
    assert code == 0, err
    args = ["verify", str(pack), "--json"]
    proc, modules = run_script(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert "lodec.sign.pack" in modules  # the pack's own checks ran
    assert heavy(modules) == []
    assert sorted(m for m in NOT_ON_THE_UNSIGNED_PACK_PATH if m in modules) == []
    assert (proc.returncode, proc.stdout, proc.stderr) == run_cli(*args)

# Imported by the signed verify path only through something avoidable: `dataclasses` imports `inspect` (the
# records are plain slotted classes), Ed25519 SPKI keys are read without `serialization` (it loads SSH keys), and
# SHA-256 (keyids, the subject digest) comes from cryptography's hashes, not `hashlib` (a second OpenSSL), and
# times are the C `_datetime` classes without the `datetime` module's pure-Python definitions; the exception of a
# bad signature is imported only when one is bad.
NOT_ON_THE_SIGNED_PATH = ("dataclasses", "inspect", "cryptography.hazmat.primitives.serialization", "click",
                          "hashlib", "_hashlib", "datetime", "cryptography.exceptions")


@pytest.mark.parametrize("target", ["stack", "pack"])
def test_verify_signed_imports_nothing_avoidable(tmp_path: Path, seed_stack: Path, keys: dict[str, Path],
                                                 target: str) -> None:
    # Verified at the real time (``--now`` is not on the fast path), so the signature must not expire.
    for who in ("alice", "bob"):
        code, _, err = run_cli("sign", seed_stack, "--key", f"{keys[who]}.key", "--expires", "2099-01-01T00:00:00Z")
        assert code == 0, err
    path = signed_stack = seed_stack
    if target == "pack":
        path = signed_stack.parent / "signed.lodepack"
        code, _, err = run_cli("pack", signed_stack, "-o", path)
        assert code == 0, err
    args = ["verify", str(path), "--key", f"{keys['alice']}.pub", "--key", f"{keys['bob']}.pub", "--threshold", "2",
            "--state", str(tmp_path / "state.json"), "--json"]
    proc, modules = run_script(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["trust"]["signedBy"], proc.stdout  # the signatures were checked
    assert sorted(m for m in NOT_ON_THE_SIGNED_PATH if m in modules) == []
    (tmp_path / "state.json").unlink()  # the in-process run below starts from the same (absent) state
    code, out, err = run_cli(*args)
    fast, slow = json.loads(proc.stdout), json.loads(out)
    # The verification time is the clock's: the two runs may fall in different seconds.
    fast["trust"].pop("now"), slow["trust"].pop("now")
    assert (proc.returncode, fast, proc.stderr) == (code, slow, err)
    # The state now records this version: verifying it again records nothing, so takes no lock (no fcntl).
    proc, modules = run_script(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert sorted(m for m in (*NOT_ON_THE_SIGNED_PATH, "fcntl") if m in modules) == []


def tamper(seed_stack: Path) -> None:
    lint = seed_stack.parent / "steps" / "lint.vein"
    lint.write_bytes(lint.read_bytes().replace(b"eslintrc", b"eslintrX"))


@pytest.mark.parametrize(
    "case",
    ["tampered", "tampered --json", "missing", "missing --json", "steps dir", "bad threshold", "threshold alone",
     "directory"],
)  # fmt: skip
def test_fast_path_matches_click(tmp_path: Path, seed_stack: Path, case: str) -> None:
    """Refusals and usage errors: the same exit status and messages as the click command."""
    args = {
        "tampered": ["verify", str(seed_stack)],
        "tampered --json": ["verify", "--json", str(seed_stack)],
        "missing": ["verify", str(tmp_path / "nope.json")],
        "missing --json": ["verify", str(tmp_path / "nope.json"), "--json"],
        "steps dir": ["verify", str(seed_stack), "--steps", str(seed_stack.parent / "steps")],
        "bad threshold": ["verify", str(seed_stack), "--threshold", "0"],
        "threshold alone": ["verify", str(seed_stack), "--threshold", "2"],
        "directory": ["verify", str(seed_stack.parent)],
    }[case]
    if case.startswith("tampered"):
        tamper(seed_stack)
    proc, modules = run_script(tmp_path, *args)
    code, out, err = run_cli(*args)
    assert proc.returncode == code
    # Refusals are the fast path's own (else this compares click with itself); usage errors are click's.
    assert ("click" in modules) == (code == 2), (code, proc.stderr)
    if code == 2:  # a usage error: click reports it (its program name differs from CliRunner's)
        assert "Usage:" in proc.stderr and err.splitlines()[-1] == proc.stderr.splitlines()[-1]
    else:
        assert (proc.stdout, proc.stderr) == (out, err)


def _sources(tmp_path: Path) -> list[str]:
    root = Path(__file__).resolve().parents[2] / "steps"
    out = []
    for src in sorted(root.glob("*.json")):
        (tmp_path / src.name).write_bytes(src.read_bytes())
        out.append(src.name)
    return out


def test_compile_takes_the_fast_path_without_click(tmp_path: Path) -> None:
    """``lodec compile`` of many sources is parsed without click (whose parser is quadratic in the paths)."""
    sources = _sources(tmp_path)
    proc, modules = run_script(tmp_path, "compile", *sources, "-o", "out/", "--json")
    assert proc.returncode == 0, proc.stderr
    assert heavy(modules) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ai-review.vein", "lint.vein", "static-analysis.vein"]


@pytest.mark.parametrize(
    "case",
    ["ok", "ok --json", "ok -q", "ok --output=", "schema builtin", "missing source", "missing source --json",
     "bad json", "no output", "unknown option", "source is a folder", "short option with =", "repeated -o",
     "help"],
)  # fmt: skip
def test_compile_fast_path_matches_click(tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every outcome of ``compile`` on the fast path: what the click command prints, exits with and writes.

    Each run writes into its own output folder ("fast", "click"), so both start from the same files."""
    sources = _sources(tmp_path)
    (tmp_path / "bad.json").write_text('{"stepName": "x", "stepName": "y", "skillRef": "skill:z"}')
    (tmp_path / "folder").mkdir()
    args = {
        "ok": [*sources, "-o", "OUT/"],
        "ok --json": ["--json", *sources, "--output", "OUT/"],
        "ok -q": [sources[0], "-q", "-o", "OUT/one.vein"],
        "ok --output=": [*sources, "--output=OUT/"],
        "schema builtin": [*sources, "-s", "skill-step-v2", "-o", "OUT/"],
        "missing source": [sources[0], "nope.json", "-o", "OUT/"],
        "missing source --json": [sources[0], "nope.json", "-o", "OUT/", "--json"],
        "bad json": ["bad.json", *sources, "-o", "OUT/"],
        "no output": [*sources],
        "unknown option": [*sources, "-o", "OUT/", "--frobnicate"],
        "source is a folder": ["folder", "-o", "OUT/"],
        "short option with =": [*sources, "-o=OUT/"],
        "repeated -o": [*sources, "-o", "OUT/", "-o", "OUT/"],
        "help": ["--help"],
    }[case]

    def run(folder: str) -> list[str]:
        return ["compile", *(a.replace("OUT", folder) for a in args)]

    def written(folder: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (tmp_path / folder).rglob("*")}

    proc, modules = run_script(tmp_path, *run("fast"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*run("click"))
    assert proc.returncode == code, (proc.stderr, err)
    # The command lines the fast path takes are its own (else this compares click with itself).
    taken = case.startswith(("ok", "schema", "missing", "bad"))
    assert ("click" not in modules) == taken, (case, code, proc.stderr)
    if taken:
        assert (proc.stdout.replace("fast", "click"), proc.stderr.replace("fast", "click")) == (out, err)
        assert written("fast") == written("click")
        assert bool(written("fast")) == (code == 0)
    elif code == 2:  # a usage error: click reports it (its program name differs from CliRunner's)
        assert err.splitlines()[-1] == proc.stderr.splitlines()[-1]


INTERRUPTED = """
import sys
sys.argv = ["lodec", *sys.argv[1:]]
import lodec.app.build as build
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt
build.compile_sources = interrupted
from lodec.cli import main
sys.exit(main())
"""


def test_compile_interrupted_on_the_fast_path_prints_what_click_prints(tmp_path: Path) -> None:
    """Ctrl-C during ``lodec compile``: "Aborted!" and exit 1 as click's standalone mode gives, no traceback.

    The same interrupt on a command line click parses (``-q`` twice) is the reference."""
    sources = _sources(tmp_path)

    def run(*extra: str) -> tuple[int, str, str]:
        proc = subprocess.run([sys.executable, "-c", INTERRUPTED, "compile", *sources, "-o", "out/", *extra],
                              capture_output=True, text=True, cwd=tmp_path, check=False,
                              env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8"})
        return proc.returncode, proc.stdout, proc.stderr

    by_click = run("-q", "-q")
    assert by_click == (1, "", "\nAborted!\n")
    assert run("-q") == by_click
    assert run() == by_click
