"""``lodec diff OLD NEW``: what a second signer reads before co-signing an update."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.runkit import make_skill, make_stack, step


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    """Version 1 (one step) and version 2 (its input changed, a step added, the skill widened)."""
    old_dir, new_dir = tmp_path / "v1", tmp_path / "v2"
    make_skill(old_dir / "skills", "echo", concurrency="read")
    old = make_stack(old_dir, [step("a", "echo", say="hello")])
    shutil.copytree(old_dir / "skills", new_dir / "skills")
    toml = new_dir / "skills" / "echo" / "lodec.toml"
    toml.write_text(toml.read_text().replace('concurrency = "read"', 'concurrency = "exclusive"')
                    .replace("network = false", "network = true").replace('read = []', 'read = [".env"]'))
    (new_dir / "skills" / "echo" / "helper.py").write_text("print('new code')\n")
    new = make_stack(new_dir, [step("a", "echo", say="goodbye"), step("b", "echo", deps=["a"])])
    return old, new


def test_diff_lists_changed_steps_and_widened_capabilities(tmp_path: Path) -> None:
    old, new = _pair(tmp_path)
    code, out, err = run_cli("diff", old, new)
    assert code == 0, err
    assert "Steps: 1 added, 0 removed, 1 changed" in out and "  + b" in out
    assert "      /inputs: {'say': 'hello'} → {'say': 'goodbye'}" in out
    assert "      + helper.py" in out and "      ~ lodec.toml" in out
    assert "      WIDENED network: False → True" in out
    assert "      WIDENED read: [] → ['.env']" in out
    assert "      WIDENED concurrency: 'read' → 'exclusive'" in out
    code, out, _err = run_cli("diff", old, new, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["widened"] and not doc["same"]
    assert doc["steps"]["added"] == ["b"] and list(doc["steps"]["changed"]) == ["a"]
    [skill] = doc["skills"]["changed"]
    assert {c["where"] for c in skill["widened"]} == {"network", "read", "concurrency"}


def test_diff_of_a_stack_with_itself_says_no_change(tmp_path: Path) -> None:
    old, _new = _pair(tmp_path)
    code, out, _err = run_cli("diff", old, old)
    assert code == 0 and out.startswith("No change")
    code, out, _err = run_cli("diff", old, old, "--json")
    assert json.loads(out)["same"] is True and json.loads(out)["widened"] is False


def test_diff_refuses_a_stack_that_does_not_verify(tmp_path: Path) -> None:
    old, new = _pair(tmp_path)
    (new.parent / "steps" / "a.vein").write_bytes(b"VEIN\x01broken")
    code, _out, err = run_cli("diff", old, new)
    assert code == 1 and "[step_malformed]" in err and "does not verify" in err


def test_attack_an_update_widening_write_and_env_behind_a_narrowed_read_is_flagged(tmp_path: Path) -> None:
    # The update trades a read path away so the capability lists keep their length, and gains a write path
    # and a secret: a reviewer must still see both widenings.
    make_skill(tmp_path / "v1" / "skills", "echo", read=["docs", "notes"], write=["out"], env=["HOME"])
    old = make_stack(tmp_path / "v1", [step("a", "echo")])
    make_skill(tmp_path / "v2" / "skills", "echo", read=["docs"], write=["out", ".git"], env=["HOME", "AWS_SECRET"])
    new = make_stack(tmp_path / "v2", [step("a", "echo")])
    code, out, err = run_cli("diff", old, new, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["widened"] is True and doc["steps"]["changed"] == {}
    [skill] = doc["skills"]["changed"]
    assert skill["widened"] == [{"where": "write", "old": ["out"], "new": ["out", ".git"]},
                                {"where": "env", "old": ["HOME"], "new": ["HOME", "AWS_SECRET"]}]
