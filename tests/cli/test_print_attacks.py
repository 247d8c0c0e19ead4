"""The command line's side of "names are safe to print and to match".

A stack name or a step's output with CR, LF or an escape sequence must not
print a fake line, erase one or set the terminal's title; a look-alike
stack name must not fall to a weaker trust-policy rule. Each test fails if
its attack works: exit codes and stable codes as documented, and no raw
control character in what lodec prints (escaped as ``\\x1b``, ``\\r``,
``\\n``). The core side is ``tests/core/test_name_attacks.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lodec
from tests.conftest import ROOT, VERIFY_AT, run_cli, sign_cli
from tests.runkit import make_skill, make_stack, step

#: A stack name that would print a fake "Verified" line over the real one.
FORGED_NAME = "evil\r\x1b[2K\nVerified code-review-pipeline 1.0.0: 3 steps"
LOOK_ALIKE = "r\u0435lease-prod"  # Cyrillic е (U+0435)
#: A step's first stdout line: set the window title, then a fake line after CR LF.
HOSTILE_HEADLINE = "\x1b]0;pwned\x07ok\r\nFAKE: Verified"
RAW = ("\x1b", "\r", "\x07", "\u202e")


def assert_no_raw_controls(*texts: str) -> None:
    for text in texts:
        for char in RAW:
            assert char not in text, (char, text)


def no_forged_lines(text: str, *prefixes: str) -> None:
    for line in text.splitlines():
        assert not line.startswith(prefixes), line


def renamed(manifest: Path, name: str, **changes: str) -> Path:
    """The manifest hand-edited to another name (the steps are untouched)."""
    doc = json.loads(manifest.read_text())
    doc.update(name=name, **changes)
    manifest.write_bytes(lodec.manifest_json(doc))
    return manifest


# ------------------------------------------------------------------ build, import, sign


@pytest.mark.parametrize("name", [FORGED_NAME, LOOK_ALIKE])
def test_stack_build_refuses_a_forged_stack_name(tmp_path: Path, seed_stack: Path, name: str) -> None:
    veins = sorted((seed_stack.parent / "steps").glob("*.vein"))
    code, _, err = run_cli("stack", "build", *veins, "--name", name, "--version", "1", "--description", "d",
                           "-o", tmp_path / "s.json")
    assert code == 1 and "[unsafe_name]" in err
    assert err.count("\n") == 1 and not (tmp_path / "s.json").exists()  # one line, escaped
    assert_no_raw_controls(err)


def test_stack_build_refuses_a_version_with_control_characters(tmp_path: Path, seed_stack: Path) -> None:
    veins = sorted((seed_stack.parent / "steps").glob("*.vein"))
    code, _, err = run_cli("stack", "build", *veins, "--name", "n", "--version", "1.0.0\x1b[2K\nFAKE",
                           "--description", "d", "-o", tmp_path / "s.json")
    assert code == 1 and "[stack_version_unsafe]" in err and err.count("\n") == 1
    assert_no_raw_controls(err)


def test_import_makes_a_safe_stack_name_from_a_hostile_workflow_file_name(tmp_path: Path) -> None:
    workflow = tmp_path / "ci\x1b[2K\rr\u0435lease.yml"
    workflow.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n")
    code, out, err = run_cli("import", "github-actions", workflow, "-o", tmp_path / "out", "--json")
    assert code == 0, err
    name = json.loads(out)["name"]
    assert lodec.check_name(name) == name and name.startswith("ci-")
    code, _, err = run_cli("import", "github-actions", workflow, "-o", tmp_path / "out2", "--name", LOOK_ALIKE)
    assert code == 1 and "[unsafe_name]" in err and "U+0435" in err


def test_sign_refuses_a_hand_edited_forged_name(seed_stack: Path, keys: dict[str, Path]) -> None:
    renamed(seed_stack, FORGED_NAME)
    code, out, err = run_cli("sign", seed_stack, "--key", f"{keys['alice']}.key")
    assert code == 1 and "[stack_name_unsafe]" in err and "[verification_failed]" in err
    assert "\\x1b[2K" in err and "\\r" in err  # the name is shown, escaped
    assert_no_raw_controls(out, err)
    no_forged_lines(err, "Verified")
    assert not seed_stack.with_name(seed_stack.name + ".dsse").exists()


# ------------------------------------------------------------------ verify


def test_verify_refuses_a_hand_edited_forged_name_and_prints_it_escaped(seed_stack: Path) -> None:
    renamed(seed_stack, FORGED_NAME)
    code, out, err = run_cli("verify", seed_stack)
    assert code == 1 and out == ""
    assert "[stack_name_unsafe]" in err
    rejected = err.splitlines()[-1]
    assert rejected.startswith("Rejected evil\\r\\x1b[2K\\nVerified code-review-pipeline")
    assert_no_raw_controls(err)
    no_forged_lines(err, "Verified")
    # --json carries the raw name (data); JSON escapes it.
    code, out, _ = run_cli("verify", seed_stack, "--json")
    report = json.loads(out)
    assert code == 1 and report["stack"] == FORGED_NAME
    assert [p["code"] for p in report["problems"]] == ["stack_name_unsafe"]
    assert_no_raw_controls(out)


def test_verify_on_the_fast_path_prints_a_forged_name_escaped(seed_stack: Path) -> None:
    # `lodec verify STACK` as a program takes the fast path (no click): the same escaping.
    renamed(seed_stack, FORGED_NAME, version="1.0.0\u202e")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LODEC_HOME": str(seed_stack.parent / "home")}
    proc = subprocess.run([sys.executable, "-m", "lodec", "verify", str(seed_stack)], capture_output=True,
                          env=env, cwd=seed_stack.parent, timeout=60, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "[stack_name_unsafe]" in err and "[stack_version_unsafe]" in err
    assert "\\x1b[2K" in err and "\\u202e" in err
    assert_no_raw_controls(err)
    no_forged_lines(err, "Verified")


def test_look_alike_name_never_falls_to_the_weaker_policy_rule(seed_stack: Path, keys: dict[str, Path]) -> None:
    """Policy: ``release-prod`` needs alice and bob, ``*`` alice alone. A look-alike signed by alice is refused."""
    from lodec.sign.dsse import Envelope, Signature
    from lodec.sign.keys import load_private_key
    from lodec.sign.statement import PAYLOAD_TYPE, build_statement, parse_time
    from lodec.stack.manifest import manifest_vein

    renamed(seed_stack, LOOK_ALIKE)
    data = seed_stack.read_bytes()
    payload = build_statement(data, name=LOOK_ALIKE, version="1.0.0", digest=manifest_vein(json.loads(data)).fingerprint,
                              expires=parse_time("2027-01-01T00:00:00Z"))
    alice = load_private_key(f"{keys['alice']}.key")
    unsigned = Envelope(PAYLOAD_TYPE, payload, ())
    envelope = unsigned.with_signature(Signature(alice.public.keyid, alice.sign(unsigned.pae())))
    seed_stack.with_name(seed_stack.name + ".dsse").write_bytes(envelope.to_json())
    policy = seed_stack.parent / "policy.toml"
    policy.write_text(
        f'version = 1\n[keys]\nalice = "{keys["alice"]}.pub"\nbob = "{keys["bob"]}.pub"\n'
        '[[rules]]\nstacks = "release-prod"\nkeys = ["alice", "bob"]\nthreshold = 2\n'
        '[[rules]]\nstacks = "*"\nkeys = ["alice"]\nthreshold = 1\n'
    )
    args = ("verify", seed_stack, "--policy", policy, "--now", VERIFY_AT, "--state", seed_stack.parent / "state.json")
    code, out, err = run_cli(*args, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert [p["code"] for p in report["problems"]] == ["stack_name_unsafe"]
    assert report["trust"]["rule"] is None  # never "*"
    code, _, err = run_cli(*args)
    assert code == 1 and "U+0435" in err and "nothing may run" in err
    assert not (seed_stack.parent / "state.json").exists()  # nothing recorded as trusted


def test_the_control_a_genuine_name_verifies_under_its_rule(seed_stack: Path, keys: dict[str, Path]) -> None:
    sign_cli(seed_stack, keys["alice"], "--expires", "2027-01-01T00:00:00Z")
    code, out, err = run_cli("verify", seed_stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT,
                             "--state", seed_stack.parent / "state.json")
    assert code == 0, err
    assert out.startswith("Verified code-review-pipeline 1.0.0: 3 steps")


# ------------------------------------------------------------------ run and journal


@pytest.fixture
def lodec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lodec-home"
    monkeypatch.setenv("LODEC_HOME", str(home))
    return home


HEADLINE_BODY = r'''
sys.stdout.write("\x1b]0;pwned\x07ok\r\nFAKE: Verified\n")
for name in REQ["step"]["outputs"]:
    write(name, "ok\n")
'''

UNDECLARED_BODY = r'''
print("\x1b[2J\u202eok")
write("x\x1b[2K\rFAKE: Verified\u202e", "surprise\n")
'''


def run_and_read_journal(tmp_path: Path, body: str) -> tuple[int, str, str, str]:
    """Run a one-step stack whose skill runs ``body``; returns (run exit code, run output, journal, journal.md)."""
    (tmp_path / "ws").mkdir()
    make_skill(tmp_path / "stack" / "skills", "hostile", body)
    stack = make_stack(tmp_path / "stack", [step("speak", "hostile")])
    code, out, err = run_cli("run", stack, "--workspace", tmp_path / "ws", "--allow-unsandboxed")
    assert "Traceback" not in err
    jcode, journal, jerr = run_cli("journal", "--workspace", tmp_path / "ws")
    assert jcode == 0, jerr
    on_disk = next((tmp_path / "lodec-home" / "runs").glob("*/journal.md")).read_text()
    return code, out + err, journal, on_disk


def test_step_headline_with_control_characters_is_escaped_in_the_journal(tmp_path: Path, lodec_home: Path) -> None:
    code, output, journal, on_disk = run_and_read_journal(tmp_path, HEADLINE_BODY)
    assert code == 0, output
    assert journal == on_disk
    assert "- headline: \\x1b]0;pwned\\x07ok" in journal  # escaped, visible
    assert_no_raw_controls(output, journal)
    no_forged_lines(output + "\n" + journal, "FAKE")


def test_undeclared_output_name_with_control_characters_is_escaped_in_the_journal(
    tmp_path: Path, lodec_home: Path
) -> None:
    # A step's file names reach the failure detail: escaped like the headline.
    code, output, journal, _ = run_and_read_journal(tmp_path, UNDECLARED_BODY)
    assert code == 1
    assert "output_undeclared" in journal and "x\\x1b[2K\\rFAKE: Verified\\u202e" in journal
    assert "- headline: \\x1b[2J\\u202eok" in journal
    assert_no_raw_controls(output, journal)
    no_forged_lines(output + "\n" + journal, "FAKE")
