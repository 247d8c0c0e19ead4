"""The compliance-release gate decides the run: BLOCKED fails its step and `lodec run` (exit 1), WARN passes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

STACK = ROOT / "stacks" / "compliance-release"
REPORTS = STACK / "example" / "reports"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example app in a new git repository, the stack (with its skills) beside it, the three tool reports."""
    root = tmp_path / "app"
    shutil.copytree(STACK / "example" / "app", root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    shutil.copytree(STACK, root / "compliance-release", ignore=shutil.ignore_patterns("example", "e2e.py"))
    (root / "reports").mkdir()
    for name, fixture in (("ruff.json", "ruff-findings.json"), ("pytest.xml", "pytest-pass.xml"),
                          ("bandit.json", "bandit-clean.json")):
        shutil.copyfile(REPORTS / fixture, root / "reports" / name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return root


def _run(root: Path) -> tuple[int, dict, str]:
    code, out, err = run_cli("run", root / "compliance-release" / "compliance-release-stack.json",
                             "--workspace", root, "--json")
    return code, json.loads(out), err


def test_warn_decision_passes_the_run(project: Path) -> None:
    code, record, err = _run(project)
    assert code == 0 and record["status"] == "succeeded", err
    assert record["steps"]["release-readiness"]["headline"].startswith("release-readiness: WARN: ")
    code, out, _ = run_cli("artifact", "release-readiness", "--workspace", project)
    assert code == 0 and json.loads(out)["summary"]["status"] == "WARN"


def test_blocked_decision_fails_its_step_and_the_run(project: Path) -> None:
    (project / "reports" / "pytest.xml").unlink()  # qa evidence MISSING: the decision is BLOCKED
    code, record, err = _run(project)
    gate = record["steps"]["release-readiness"]
    assert code == 1 and record["status"] == "failed" and record["exit_code"] == 1
    assert (gate["status"], gate["reason"], gate["exit_code"]) == ("failed", "exit_nonzero", 1)
    assert all(record["steps"][s]["status"] == "succeeded" for s in ("review", "qa", "security", "license-audit",
                                                                    "privacy-check"))
    # The failure lines (plain log, no terminal) carry the decision: headline, the flagged phases, next action.
    assert "✗ release-readiness failed" in err
    assert "  | release-readiness: BLOCKED: Release blocked: review WARN; qa evidence missing;" in err
    assert "  | release-readiness: qa MISSING\n" in err
    assert "  | release-readiness: next: " in err and "Run `pytest --junitxml reports/pytest.xml`" in err
    # The whole decision is kept in the step's stdout (a failed step's outputs are discarded).
    code, out, _ = run_cli("logs", "release-readiness", "--stdout", "--workspace", project)
    headline, decision = out.split("\n", 1)
    assert headline == gate["headline"] and json.loads(decision)["summary"]["status"] == "BLOCKED"
