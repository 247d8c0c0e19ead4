"""Unpinned actions are caught at import: a tag or branch (``actions/checkout@v4``) can be force-pushed to
other code after a stack is approved (the tj-actions/changed-files and Trivy incidents); only a full commit
SHA, a digest-pinned image or this repository's own files are immutable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lodec.importers.github_actions import WorkflowImport, unpinned_uses
from tests.conftest import ROOT, run_cli

CORPUS = ROOT / "tests" / "corpus" / "github-actions"
SHA = "9c091bb21b7c1c1d1991bb908d89e4e9dddfe3e0"


@pytest.mark.parametrize("uses, pinned", [
    (f"actions/checkout@{SHA}", True),
    ("actions/checkout@v4", False),
    ("actions/checkout@main", False),
    ("actions/checkout@9c091bb", False),  # a short SHA can collide
    ("actions/checkout", False),
    (f"octo/repo/.github/workflows/ci.yml@{SHA}", True),
    ("octo/repo/.github/workflows/ci.yml@v1", False),
    ("./.github/actions/local", True),
    ("$/.github/workflows/plan.yml", True),
    ("docker://alpine:3.20", False),
    ("docker://alpine@sha256:" + "0" * 64, True),
])
def test_pinning_rule(uses: str, pinned: bool) -> None:
    imported = WorkflowImport(name="w", description="d", metadata={},
                              steps=[{"stepName": "s", "skillRef": f"gha:{uses}"},
                                     {"stepName": "r", "skillRef": "gha:run"}])
    assert unpinned_uses(imported) == ([] if pinned else [("s", uses)])


def test_import_warns_once_per_unpinned_action_and_lists_every_step(tmp_path: Path) -> None:
    source = CORPUS / "tokio-loom.yml"
    code, out, err = run_cli("import", "github-actions", source, "-o", tmp_path / "a")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("lodec: warning:")]
    assert len(warnings) == 3 and "actions/checkout@v7 (step 'loom-blocking.0' and 5 more)" in warnings[0]
    code, out, _err = run_cli("import", "github-actions", source, "-o", tmp_path / "b", "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["unpinned"]) == 18 and doc["unpinned"][0]["uses"] == "actions/checkout@v7"


def test_require_pinned_refuses_every_unpinned_step_and_writes_nothing(tmp_path: Path) -> None:
    code, _out, err = run_cli("import", "github-actions", CORPUS / "tokio-loom.yml", "-o", tmp_path / "out",
                              "--require-pinned")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 18 and all(line.endswith("[unpinned_action]") for line in lines)
    assert not (tmp_path / "out").exists()


def test_a_fully_pinned_workflow_imports_under_require_pinned(tmp_path: Path) -> None:
    code, _out, err = run_cli("import", "github-actions", CORPUS / "uv-ci.yml", "-o", tmp_path / "out",
                              "--require-pinned")
    assert code == 0 and "warning" not in err, err
    assert (tmp_path / "out" / "stack.json").is_file()
