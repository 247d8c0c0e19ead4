"""Shared fixtures: the repository, the seed pipeline compiled into a temp dir, a CLI runner."""

from __future__ import annotations

import json
import os
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


def unavailable(reason: str) -> None:
    """Skip a test whose real part (a sandbox, a registry, a Temporal server) cannot run here.

    Under ``.ci/run`` (``LODEC_CI=1``) every real part is installed first, so a missing one is a
    failure there, never a silent skip.
    """
    if os.environ.get("LODEC_CI") == "1":
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


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


# ------------------------------------------------------------------ signing

SIGNED_AT = "2026-11-21T00:00:00Z"
EXPIRES = "2027-01-01T00:00:00Z"
VERIFY_AT = "2026-12-01T00:00:00Z"


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three Ed25519 key pairs: alice and bob (trusted in tests) and mallory (not). Maps name -> path prefix."""
    from lodec.sign.keys import generate_key, private_key_pem

    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("alice", "bob", "mallory"):
        k = generate_key()
        (folder / f"{name}.key").write_bytes(private_key_pem(k))
        (folder / f"{name}.pub").write_bytes(k.public.pem())
        out[name] = folder / name
    return out


def sign_cli(manifest: Path, key: Path, *extra: str) -> None:
    code, out, err = run_cli("sign", manifest, "--key", f"{key}.key", "--now", SIGNED_AT, *extra)
    assert code == 0, err


@pytest.fixture
def signed_stack(seed_stack: Path, keys: dict[str, Path]) -> Path:
    """The seed stack signed by alice and bob (expires 2027-01-01); returns the manifest path."""
    sign_cli(seed_stack, keys["alice"], "--expires", EXPIRES)
    sign_cli(seed_stack, keys["bob"])
    return seed_stack


def verify_signed(target: Path, *args: str) -> tuple[int, dict, str]:
    """`lodec verify --json` at VERIFY_AT with a state file beside the target; returns (exit, report, stderr)."""
    code, out, err = run_cli(
        "verify", "--json", target, "--now", VERIFY_AT, "--state", target.parent / "state.json", *args
    )
    assert "Traceback" not in err
    return code, json.loads(out), err
