"""Real input at scale: every corpus workflow imports, compiles, builds, verifies and round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lodec
from lodec.format.codec import record_to_json

from .conftest import ROOT, run_cli

WORKFLOWS = sorted((ROOT / "tests" / "corpus" / "github-actions").glob("*.y*ml"))


def _normalised(record: dict) -> dict:
    # Absent and empty optional fields are the same record (canonical form).
    return {k: v for k, v in record.items() if v not in ([], {}, "")}


def test_corpus_is_present() -> None:
    assert len(WORKFLOWS) == 5


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_imports_compiles_builds_and_verifies(workflow: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, err = run_cli("import", "github-actions", workflow, "-o", out, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["steps"] == len(list((out / "steps").glob("*.vein"))) > 0
    code, stdout, err = run_cli("verify", out / "stack.json", "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["ok"] and report["digest"] == summary["digest"]
    assert {s["status"] for s in report["steps"]} == {"verified"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_round_trips_source_vein_source(workflow: Path, tmp_path: Path) -> None:
    from lodec.importers.github_actions import import_workflow

    schema = lodec.builtin_schema("gha-step-v1")
    for record in import_workflow(workflow).steps:
        vein = lodec.compile_value(record, schema)
        decoded = lodec.decode_vein(vein.data, schema)
        back = record_to_json(decoded.record, schema)
        assert back == _normalised(record)
        again = lodec.compile_source(json.dumps(back).encode(), schema)
        assert again.data == vein.data and again.fingerprint == vein.fingerprint
