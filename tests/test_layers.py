"""The layer contracts of ``pyproject.toml`` ``[tool.importlinter]`` hold.

``lint-imports`` (import-linter) checks the target architecture, top to
bottom: ``lodec.cli`` > ``lodec.app`` > ``lodec.run | lodec.importers`` >
``lodec.store`` > ``lodec.sign`` > ``lodec.stack`` > ``lodec.format`` >
``lodec.files : lodec.errors : lodec.limits : lodec.names``; nothing in
lodec but ``lodec.__main__`` imports ``lodec.cli``; and ``lodec.cli``
imports no core package directly (it talks to ``lodec.app``). A module that
reaches up a layer couples the core to the CLI or to I/O, which is what the
layering keeps out; this test makes such an import fail CI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_layer_contracts_are_kept() -> None:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} not found: install the test extra (pip install -e '.[test]')")
    proc = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"lint-imports exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
