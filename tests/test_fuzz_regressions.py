"""Replay fuzz inputs through the fuzz targets (``fuzz/targets.py``), without atheris.

Every committed seed (``fuzz/seeds/<target>/``) and every input kept from a
fuzzing finding (``tests/fuzz_regressions/<target>/``) must be accepted or
refused with a lodec error: an escaping exception or a broken property is a
regression. The findings are also pinned to the exact refusal they now get.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "fuzz"
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"


@pytest.fixture(scope="module")
def targets():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(FUZZ))
    try:
        yield importlib.import_module("targets").TARGETS
    finally:
        sys.path.remove(str(FUZZ))


def _inputs(base: Path) -> list[tuple[str, Path]]:
    return sorted((p.parent.name, p) for p in base.glob("*/*") if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize(("target", "path"), _inputs(FUZZ / "seeds"), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_fuzz_seed_replays_cleanly(targets, target: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    targets[target](path.read_bytes())


@pytest.mark.parametrize(("target", "path"), _inputs(REGRESSIONS), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_kept_finding_replays_cleanly(targets, target: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    targets[target](path.read_bytes())


def test_every_target_has_seeds() -> None:
    assert {t for t, _ in _inputs(FUZZ / "seeds")} == {"vein", "schema", "manifest", "pack", "dsse", "native"}


#: The refusal each kept finding gets now (it crashed lodec verify PACK before): code, and the start of the message.
KEPT_FINDINGS = {
    "pack/stack-schema-optional-name.lodepack": ("schema_invalid", "<pack>#stackSchema: field 'name': "),
    "pack/step-schema-int-dependsOn.lodepack": ("schema_invalid", "<pack>#stepSchema: field 'dependsOn': "),
    "pack/step-schema-no-skillRef.lodepack": ("schema_invalid", "<pack>#stepSchema: field 'skillRef': "),
}


def test_kept_findings_are_pinned_to_their_refusal() -> None:
    from lodec.errors import LodecError
    from lodec.format.pack import read_pack
    from lodec.sign.pack import verify_pack

    kept = {f"{t}/{p.name}" for t, p in _inputs(REGRESSIONS)}
    assert kept == set(KEPT_FINDINGS)  # a new finding gets its pin here
    for name, (code, start) in KEPT_FINDINGS.items():
        with pytest.raises(LodecError) as refusal:
            verify_pack(read_pack((REGRESSIONS / name).read_bytes()))
        assert (refusal.value.code, str(refusal.value)[: len(start)]) == (code, start), name
