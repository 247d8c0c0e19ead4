"""State hygiene and trust on CI: an ignore file in a new state directory, the rollback state where a CI
cache keeps it, a word when a version is trusted on first use, ``--require-signatures``, and the
workspace's default trust policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import EXPIRES, VERIFY_AT, run_cli, sign_cli
from tests.runkit import make_skill, make_stack, step


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_stack: Path) -> Path:
    """A git repository holding the seed stack (state in repo/.lodec); the current directory."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "stack").mkdir()
    shutil.copy(seed_stack, root / "stack" / seed_stack.name)
    shutil.copytree(seed_stack.parent / "steps", root / "stack" / "steps")
    monkeypatch.chdir(root)
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LODEC_STATE", raising=False)
    return root


def _manifest(repo: Path) -> Path:
    return next((repo / "stack").glob("*.json"))


def test_a_new_state_directory_ignores_runs_and_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    make_skill(root / "stack" / "skills", "ok")
    stack = make_stack(root / "stack", [step("a", "ok")])
    code, _out, err = run_cli("run", stack, "--workspace", root)
    assert code == 0, err
    ignore = (root / ".lodec" / ".gitignore").read_text().splitlines()
    assert {"runs/", "cas/", "*.lock"} <= set(ignore)
    assert "skills/" not in ignore and "trusted-stacks.json" not in ignore  # those may be committed


def test_lodec_state_keeps_the_rollback_state_where_a_ci_cache_does(
    repo: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _manifest(repo)
    sign_cli(manifest, keys["alice"], "--expires", EXPIRES)
    cache = repo.parent / "ci-cache" / "trusted-stacks.json"
    monkeypatch.setenv("LODEC_STATE", str(cache))
    code, _out, err = run_cli("verify", manifest, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT)
    assert code == 0, err
    assert cache.is_file() and not (repo / ".lodec" / "trusted-stacks.json").exists()


def test_first_use_is_said_once(repo: Path, keys: dict[str, Path]) -> None:
    manifest = _manifest(repo)
    sign_cli(manifest, keys["alice"], "--expires", EXPIRES)
    args = ("verify", manifest, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT)
    code, _out, err = run_cli(*args)
    assert code == 0 and "is trusted on first use" in err and "LODEC_STATE" in err
    code, _out, err = run_cli(*args)
    assert code == 0 and "first use" not in err  # recorded now: rollback protection holds


def test_require_signatures_refuses_an_unchecked_verification(repo: Path, keys: dict[str, Path]) -> None:
    manifest = _manifest(repo)
    code, _out, err = run_cli("verify", manifest, "--require-signatures")
    assert code == 1 and "[signatures_required]" in err and len(err.strip().splitlines()) == 1
    code, _out, err = run_cli("verify", manifest, "--require-signatures", "--key", f"{keys['alice']}.pub",
                              "--now", VERIFY_AT)
    assert code == 1 and "[envelope_missing]" in err  # an unsigned stack cannot pass
    sign_cli(manifest, keys["alice"], "--expires", EXPIRES)
    code, out, err = run_cli("verify", manifest, "--require-signatures", "--key", f"{keys['alice']}.pub",
                             "--now", VERIFY_AT)
    assert code == 0 and "Signed by 1 of 1" in out, err


def test_the_workspace_trust_policy_applies_by_default(repo: Path, keys: dict[str, Path]) -> None:
    manifest = _manifest(repo)
    (repo / ".lodec").mkdir()
    shutil.copy(f"{keys['alice']}.pub", repo / ".lodec" / "alice.pub")
    (repo / ".lodec" / "trust-policy.toml").write_text(
        'version = 1\n\n[keys]\nalice = "alice.pub"\n\n[[rules]]\nstacks = "*"\nkeys = ["alice"]\nthreshold = 1\n')
    sign_cli(manifest, keys["mallory"], "--expires", EXPIRES)
    code, _out, err = run_cli("verify", manifest, "--now", VERIFY_AT)
    assert code == 1 and "[threshold_not_met]" in err  # signed by someone the policy does not trust
    (manifest.parent / (manifest.name + ".dsse")).unlink()
    sign_cli(manifest, keys["alice"], "--expires", EXPIRES)
    code, out, err = run_cli("verify", manifest, "--now", VERIFY_AT, "--require-signatures")
    assert code == 0 and "Signed by 1 of 1" in out, err


def test_run_says_first_use_too(tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    make_skill(root / "stack" / "skills", "ok")
    stack = make_stack(root / "stack", [step("a", "ok")])
    sign_cli(stack, keys["alice"], "--expires", EXPIRES)
    args = ("run", stack, "--workspace", root, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT)
    code, _out, err = run_cli(*args)
    assert code == 0 and "is trusted on first use" in err, err
    code, _out, err = run_cli(*args)
    assert code == 0 and "first use" not in err


def test_a_link_planted_at_the_workspace_policy_is_refused_not_followed(
    repo: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    # The default policy is a file lodec finds itself: a link there could point verification at a policy
    # the repository never committed (here one trusting mallory).
    manifest = _manifest(repo)
    elsewhere = tmp_path / "weak.toml"
    shutil.copy(f"{keys['mallory']}.pub", tmp_path / "mallory.pub")
    elsewhere.write_text('version = 1\n\n[keys]\nm = "mallory.pub"\n\n[[rules]]\nstacks = "*"\nkeys = ["m"]\n')
    (repo / ".lodec").mkdir()
    (repo / ".lodec" / "trust-policy.toml").symlink_to(elsewhere)
    sign_cli(manifest, keys["mallory"], "--expires", EXPIRES)
    code, out, err = run_cli("verify", manifest, "--now", VERIFY_AT)
    assert code == 1 and "[file_link]" in err and "Verified" not in out
