"""The seed's code-review pipeline, run for real on the bundled fixture with the bundled skills."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

EXAMPLE = ROOT / "stacks" / "code-review"


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of stacks/code-review (manifest, steps, skills, fixture); state in a private $LODEC_HOME."""
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    dest = tmp_path / "code-review"
    shutil.copytree(EXAMPLE, dest)
    return dest


def _artifact(home: Path, digest: dict[str, str]) -> bytes:
    return (home / "cas" / "blake3" / digest["blake3"][:2] / digest["blake3"][2:]).read_bytes()


def test_code_review_stack_runs_end_to_end(example: Path) -> None:
    stack, fixture, home = example / "code-review-stack.json", example / "fixture", example.parent / "home"
    code, out, err = run_cli("run", stack, "--workspace", fixture, "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "succeeded"
    assert list(record["steps"]) == ["lint", "static-analysis", "ai-review"]
    steps = record["steps"]

    lint = json.loads(_artifact(home, steps["lint"]["artifacts"]["lint-report.json"]))
    rules = {m["ruleId"] for f in lint for m in f["messages"]}
    assert {"no-var", "eqeqeq", "no-console"} <= rules
    assert all(not f["filePath"].startswith("/") for f in lint)

    report = json.loads(_artifact(home, steps["static-analysis"]["artifacts"]["report.json"]))
    assert report["language"] == "typescript" and report["strictMode"] is True
    assert report["summary"]["error"] >= 1
    sarif = json.loads(_artifact(home, steps["static-analysis"]["artifacts"]["annotations.sarif"]))
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]

    review = json.loads(_artifact(home, steps["ai-review"]["artifacts"]["review-comments.json"]))
    assert review["verdict"] == "request_changes"
    assert set(review["upstream"].values()) == {"verified"}
    assert {c["source"] for c in review["comments"]} == {"lint", "static-analysis"}
    assert steps["ai-review"]["upstream_status"] == {
        "lint/lint-report.json": "verified",
        "static-analysis/annotations.sarif": "verified",
        "static-analysis/report.json": "verified",
    }

    # Deterministic checks on a fixed fixture: a second run stores the very same artifacts.
    code, out, _ = run_cli("run", stack, "--workspace", fixture, "--json")
    again = json.loads(out)["steps"]
    assert {s: r["artifacts"] for s, r in again.items()} == {s: r["artifacts"] for s, r in steps.items()}

    code, journal, _ = run_cli("journal", record["run"], "--workspace", fixture)
    assert code == 0
    for name in ("lint", "static-analysis", "ai-review"):
        assert f"\n## {name}\n" in journal
    assert "code-review: request_changes" in journal
    code, out, _ = run_cli("analytics", "--json", "--workspace", fixture)
    figures = json.loads(out)
    assert figures["runs"] == 2 and figures["steps"]["ai-review"]["counts"] == {"succeeded": 2}
    prov = json.loads((home / "runs" / record["run"] / "provenance.json").read_text())
    assert {s["name"] for s in prov["subject"]} == {
        "lint/lint-report.json", "static-analysis/report.json", "static-analysis/annotations.sarif",
        "ai-review/review-comments.json"}
    manifest = json.loads(stack.read_text())
    uris = {m["uri"] for m in prov["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert set(manifest["skillDigests"]) <= uris


def test_code_review_plan(example: Path) -> None:
    code, out, err = run_cli("plan", example / "code-review-stack.json", "--workspace", example / "fixture")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [
        {"batch": 1, "type": "read", "steps": ["lint"]},
        {"batch": 2, "type": "read", "steps": ["static-analysis"]},
        {"batch": 3, "type": "write", "steps": ["ai-review"]},
    ]


def test_drifted_example_skill_is_refused(example: Path) -> None:
    lint = example / "skills" / "eslint-check" / "lint.py"
    lint.write_text(lint.read_text().replace("no-console", "no-consoles", 1))
    code, _out, err = run_cli("run", example / "code-review-stack.json", "--workspace", example / "fixture")
    assert code == 1 and "skill:eslint-check drifted" in err and "[skill_drifted]" in err
    assert not (example.parent / "home" / "runs").exists()


def test_bundled_skills_pass_the_agent_skills_reference_validator() -> None:
    from skills_ref import validate

    for folder in sorted((EXAMPLE / "skills").iterdir()):
        assert validate(folder) == [], folder
