"""Unpinned actions are caught at import: a tag or branch (``actions/checkout@v4``) can be force-pushed to
other code after a stack is approved (the tj-actions/changed-files and Trivy incidents); only a full commit
SHA, a digest-pinned image or this repository's own files are immutable."""

from __future__ import annotations

import json
import textwrap
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


# ------------------------------------------------------------------ lodec check-pins on an imported stack

EXPECTED_PINS = {  # counted by hand-checked runs; a change here is a change of the policy or of the mapping
    "pydantic-ci.yml": {"local-action": 1, "pinned": 82},
    "ruff-ci.yaml": {"pinned": 106},
    "tokio-ci.yml": {"same-repo-workflow": 1, "unpinned": 147},
    "tokio-loom.yml": {"unpinned": 18},
    "uv-ci.yml": {"pinned": 5, "same-repo-workflow": 20},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_PINS))
def test_check_pins_on_the_corpus(name: str, tmp_path: Path) -> None:
    code, _out, err = run_cli("import", "github-actions", CORPUS / name, "-o", tmp_path / "s")
    assert code == 0, err
    code, out, err = run_cli("check-pins", tmp_path / "s" / "stack.json", "--json")
    doc = json.loads(out)
    assert doc["counts"] == EXPECTED_PINS[name]
    assert code == (1 if "unpinned" in EXPECTED_PINS[name] else 0) and doc["ok"] is (code == 0)
    code, text, _err = run_cli("check-pins", tmp_path / "s" / "stack.json")
    lines = text.strip().splitlines()
    # A line per reference that is not pinned by a SHA or digest (local ones say so), then the summary.
    assert len(lines) == 1 + sum(n for k, n in EXPECTED_PINS[name].items() if k not in ("pinned", "image-digest"))
    if name == "pydantic-ci.yml":
        assert any(line.endswith(": local-action") and " uses ./" in line for line in lines)
    if name == "uv-ci.yml":
        assert "step plan (job plan) uses $/.github/workflows/plan.yml: same-repo-workflow" in text


def test_check_pins_judges_only_a_stack_that_verifies(tmp_path: Path) -> None:
    code, _out, err = run_cli("import", "github-actions", CORPUS / "uv-ci.yml", "-o", tmp_path / "s")
    assert code == 0, err
    vein = tmp_path / "s" / "steps" / "plan.vein"
    vein.write_bytes(vein.read_bytes()[:-1] + bytes([vein.read_bytes()[-1] ^ 1]))
    code, _out, err = run_cli("check-pins", tmp_path / "s" / "stack.json")
    assert code == 1 and "plan" in err


def test_container_and_service_images_are_judged_too(tmp_path: Path) -> None:
    src = tmp_path / "w.yml"
    src.write_text(textwrap.dedent(f"""
        jobs:
          a:
            container: node:20
            services:
              db: {{image: "postgres@sha256:{'a' * 64}"}}
              cache: {{image: redis:7}}
            steps:
              - uses: actions/checkout@{SHA}
              - uses: docker://alpine:3.20
              - uses: ./.github/actions/setup
          b:
            container: {{image: "${{{{ matrix.image }}}}"}}
            steps: [{{run: echo}}]
    """))
    code, _out, err = run_cli("import", "github-actions", src, "-o", tmp_path / "s")
    assert code == 0, err
    code, out, _err = run_cli("check-pins", tmp_path / "s" / "stack.json", "--json")
    rows = {(r["field"], r["ref"]): r["status"] for r in json.loads(out)["pins"]}
    assert rows == {
        ("uses", f"actions/checkout@{SHA}"): "pinned",
        ("uses", "docker://alpine:3.20"): "unpinned",
        ("uses", "./.github/actions/setup"): "local-action",
        ("jobContainer", "node:20"): "unpinned",
        ("jobServices.cache", "redis:7"): "unpinned",
        ("jobServices.db", f"postgres@sha256:{'a' * 64}"): "image-digest",
    }
    assert code == 1


def test_require_pinned_names_the_place_of_each_unpinned_uses(tmp_path: Path) -> None:
    code, _out, err = run_cli("import", "github-actions", CORPUS / "tokio-loom.yml", "-o", tmp_path / "out",
                              "--require-pinned")
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith(f"lodec: {CORPUS / 'tokio-loom.yml'}: /jobs/loom-blocking/steps/0/uses: ")
