"""Shared fixtures: the repository, the seed pipeline compiled into a temp dir, a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import lodec
from lodec.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEED_SOURCES = {
    "lint": ROOT / "steps" / "lint-step.json",
    "static-analysis": ROOT / "steps" / "analyze-step.json",
    "ai-review": ROOT / "steps" / "review-step.json",
}


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; fail the test on any uncaught exception (a traceback)."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"CLI raised {result.exception!r}") from result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def seed_stack(tmp_path: Path) -> Path:
    """The seed code-review stack compiled and built in ``tmp_path``; returns the manifest path."""
    schema = lodec.skill_step_schema()
    veins = []
    (tmp_path / "steps").mkdir()
    for name, src in SEED_SOURCES.items():
        vein = lodec.compile_file(src, schema)
        (tmp_path / "steps" / f"{name}.vein").write_bytes(vein.data)
        veins.append(vein)
    manifest = lodec.build_manifest(
        veins,
        name="code-review-pipeline",
        version="1.0.0",
        description="Lint, analyze, and AI-review code changes",
        entry="lint",
        metadata={"team": "platform", "triggerOn": "pull_request"},
    )
    path = tmp_path / "code-review-stack.json"
    path.write_bytes(lodec.manifest_json(manifest))
    return path
