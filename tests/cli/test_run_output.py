"""A run explains itself in a plain CI log: a line per step start and end, and for a failed step its
reason, exit code and the end of its stderr (escaped); GitHub Actions workflow commands when asked;
``lodec logs`` prints a step's log. The CLI runs in-process here, so stderr is not a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.runkit import make_skill, make_stack, step

FAIL = '''
print("preparing the release")
for i in range(30):
    print(f"line {i}", file=sys.stderr)
print("error: registry token \\x1b[31mmissing\\x1b[0m", file=sys.stderr)
sys.exit(3)
'''


@pytest.fixture
def failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A stack: build (succeeds) -> publish (exits 3 with a message on stderr) -> announce (skipped)."""
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    skills = tmp_path / "stack" / "skills"
    make_skill(skills, "ok", concurrency="read")
    make_skill(skills, "fails", FAIL)
    stack = make_stack(tmp_path / "stack", [step("build", "ok"), step("publish", "fails", deps=["build"]),
                                            step("announce", "ok", deps=["publish"])])
    (tmp_path / "ws").mkdir()
    return stack, tmp_path / "ws"


def test_a_failed_step_explains_itself_in_a_plain_ci_log(failing: tuple[Path, Path]) -> None:
    stack, ws = failing
    code, _out, err = run_cli("run", stack, "--workspace", ws)
    assert code == 1
    lines = err.splitlines()
    assert "▶ build started (read)" in lines and any(line.startswith("✓ build succeeded in ") for line in lines)
    failed = next(line for line in lines if line.startswith("✗ publish failed"))
    assert "(exit code 3): exit_nonzero: exited with 3" in failed
    assert "  | error: registry token \\x1b[31mmissing\\x1b[0m" in lines  # escaped: no raw ESC reaches the log
    assert "\x1b" not in err
    assert "  | line 29" in lines and "  | line 10" not in lines  # the last 20 lines only
    assert any(line.startswith("  full log: lodec logs publish --run ") for line in lines)
    assert "– announce skipped: upstream_failed: upstream publish did not succeed" in lines


def test_under_github_actions_a_failure_is_an_annotation(
    failing: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, ws = failing
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, _out, err = run_cli("run", stack, "--workspace", ws)
    assert code == 1
    lines = err.splitlines()
    assert "::error title=lodec%3A step publish failed::exit_nonzero: exited with 3 (exit code 3)" in lines
    start = lines.index("::group::publish: the last 20 lines of stderr")
    assert lines[start + 20] == "  | error: registry token \\x1b[31mmissing\\x1b[0m"
    assert lines[start + 21] == "::endgroup::"
    # where the whole log is, as in a plain log (it was missing under GitHub Actions)
    assert lines[start + 22].startswith("  full log: lodec logs publish --run ")
    assert lines[start + 22].endswith("/steps/publish/stderr.log)")


def test_logs_prints_what_the_step_wrote(failing: tuple[Path, Path]) -> None:
    stack, ws = failing
    run_cli("run", stack, "--workspace", ws)
    code, out, err = run_cli("logs", "publish", "--workspace", ws)
    assert code == 0, err
    assert out.startswith("line 0\n") and out.endswith("error: registry token \x1b[31mmissing\x1b[0m\n")
    code, out, _ = run_cli("logs", "publish", "--stdout", "--workspace", ws)
    assert code == 0 and out == "preparing the release\n"
    code, _out, err = run_cli("logs", "announce", "--workspace", ws)
    assert code == 1 and "never started" in err and "[step_not_found]" in err
    code, _out, err = run_cli("logs", "nosuch", "--workspace", ws)
    assert code == 1 and "[step_not_found]" in err
