"""Use case: the pin policy on a stack already imported (``lodec check-pins``).

``lodec import github-actions --require-pinned`` refuses unpinned actions
while importing; this checks a stack that exists, after verifying it (so
what is judged is what was approved, not a file edited since): every
``gha:`` reference and every container or service image its steps record,
classified by ``lodec.importers.github_actions.classify_uses``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .verify import verify_target

if TYPE_CHECKING:
    from ..store.workspace import Workspace
    from .options import TrustOptions


@dataclass(frozen=True)
class PinReport:
    """Every pinning reference of a verified stack: ``rows`` of ``{"step", "job", "field", "ref", "status",
    "vein"}`` in stack order; ``unpinned`` those a tag or branch could move."""

    stack: str
    version: str
    digest: str
    rows: list[dict[str, str]] = field(default_factory=list)

    @property
    def unpinned(self) -> list[dict[str, str]]:
        return [r for r in self.rows if r["status"] == "unpinned"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row["status"]] = out.get(row["status"], 0) + 1
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.unpinned, "stack": self.stack, "version": self.version, "digest": self.digest,
                "counts": self.counts(), "pins": self.rows}


def check_pins(target: str, workspace: Workspace | None = None, trust: TrustOptions | None = None, *,
               steps_dir: str | None = None) -> PinReport:
    """Verify ``target`` (as ``lodec verify``, skills not needed), then classify every reference it pins code by.

    Raises:
        VerificationFailed: the stack does not verify (``.report``).
        OptionsError, LodecError: as ``verify_target``.
    """
    from ..format.codec import record_to_json
    from ..importers.github_actions import pin_rows
    from .verify import default_steps_dir, is_pack_file

    stack = verify_target(target, workspace, trust, steps_dir=steps_dir, check_skills=False).require()
    records = [record_to_json(stack.steps[n].record, stack.steps[n].schema) for n in stack.order]
    rows = pin_rows(records)
    folder = f"{target}#steps" if is_pack_file(target) else (steps_dir or str(default_steps_dir(target)))
    for row in rows:
        row["vein"] = f"{folder}/{row['step']}.vein"
    return PinReport(stack.name, stack.version, stack.digest, rows)
