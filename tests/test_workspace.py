"""One workspace per command: every state file lodec writes lands under that workspace's state directory.

``Workspace.discover`` is computed once from ``--workspace`` (or the current
directory) and names every state path; these tests run real commands from
one git repository against another and look where the files went.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lodec.store.workspace import Workspace
from tests.conftest import run_cli
from tests.runkit import make_skill, make_stack, step


@pytest.fixture
def repos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """Two git repositories A and B (``.git`` folders), and an empty ``$LODEC_HOME``."""
    a, b, home = tmp_path / "A", tmp_path / "B", tmp_path / "home"
    for repo in (a, b):
        (repo / ".git").mkdir(parents=True)
    monkeypatch.setenv("LODEC_HOME", str(home))
    return a, b, home


def _signed_stack(a: Path) -> tuple[Path, Path]:
    """A locked, signed one-step stack inside A; returns (manifest, public key)."""
    folder = a / "stack"
    make_skill(folder / "skills", "probe", concurrency="read")
    manifest = make_stack(folder, [step("only", "probe")])
    code, _out, err = run_cli("key", "generate", a / "alice")
    assert code == 0, err
    code, _out, err = run_cli("sign", manifest, "--key", a / "alice.key")
    assert code == 0, err
    return manifest, a / "alice.pub"


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_run_with_another_workspace_keeps_every_state_file_there(
    repos: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, home = repos
    manifest, key = _signed_stack(a)
    monkeypatch.chdir(a)
    code, out, err = run_cli("run", manifest, "--workspace", b, "--key", key)
    assert code == 0, err
    state = b / ".lodec"
    files = _files(state)
    assert "trusted-stacks.json" in files  # the rollback state of run --key
    assert any(f.startswith("runs/") and f.endswith("/run.json") for f in files)
    assert any(f.startswith("cas/blake3/") for f in files)
    assert str(state / "runs") in out
    assert not (a / ".lodec").exists(), _files(a / ".lodec")  # nothing under the current repository
    assert not home.exists()


def test_verify_and_unpack_record_trust_in_the_named_workspace(
    repos: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, home = repos
    manifest, key = _signed_stack(a)
    monkeypatch.chdir(a)
    code, _out, err = run_cli("verify", manifest, "--workspace", b, "--key", key)
    assert code == 0, err
    assert (b / ".lodec" / "trusted-stacks.json").is_file()
    code, _out, err = run_cli("pack", manifest, "-o", a / "stack.lodepack")
    assert code == 0, err
    (b / ".lodec" / "trusted-stacks.json").unlink()
    code, _out, err = run_cli("unpack", a / "stack.lodepack", "-o", a / "out", "--workspace", b, "--key", key)
    assert code == 0, err
    assert (b / ".lodec" / "trusted-stacks.json").is_file()
    assert not (a / ".lodec").exists() and not home.exists()


def test_state_file_option_overrides_only_the_rollback_state(tmp_path: Path, repos: tuple[Path, Path, Path]) -> None:
    _a, b, _home = repos
    ws = Workspace.discover(b, state_file=tmp_path / "elsewhere.json")
    assert ws.rollback_state == tmp_path / "elsewhere.json"
    assert ws.rollback_lock == tmp_path / "elsewhere.json.lock"
    assert ws.runs == b.resolve() / ".lodec" / "runs" and ws.cas == b.resolve() / ".lodec" / "cas"
    assert ws.state_paths() == (b.resolve() / ".lodec", tmp_path / "elsewhere.json")


def test_subdirectory_of_a_repository_uses_the_repository_state(repos: tuple[Path, Path, Path]) -> None:
    a, _b, _home = repos
    (a / "src" / "deep").mkdir(parents=True)
    ws = Workspace.discover(a / "src" / "deep")
    assert ws.root == (a / "src" / "deep").resolve()  # the project steps work on, as given
    assert ws.state == a.resolve() / ".lodec"  # never the subdirectory's
    assert ws.skills == a.resolve() / ".lodec" / "skills"


def test_outside_git_state_is_lodec_home(tmp_path: Path, repos: tuple[Path, Path, Path]) -> None:
    _a, _b, home = repos
    outside = tmp_path / "plain"
    outside.mkdir()
    ws = Workspace.discover(outside)
    assert ws.state == home and ws.rollback_state == home / "trusted-stacks.json"
    assert ws.skill_roots() == [(home / "skills").resolve()]  # the home's skills once, not twice
