"""The plan of any verified stack: its schedule, and which steps ``lodec run`` could not run, and why.

``lodec plan`` used to need a runnable stack (locked, every skill a lodec
skill). An imported stack (``gha:`` references, Argo templates, verbatim
conditions) verifies but cannot run; its plan is still useful to review: the
DAG's batches, each step's run condition, and per step the reasons
:func:`lodec.run.executor.prepare_run` would refuse. Pure: the skills are the
trees verification already read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import LodecError
from ..format.tree import SKILL_REF_PREFIX, SkillTree
from ..stack.conditions import condition_of
from ..stack.verify import VerifiedStack
from .schedule import Batch, batches

__all__ = ["Blocker", "StackPlan", "plan_stack"]

_SYSTEMS = {"gha": "GitHub Actions", "argo": "Argo Workflows", "nanostack": "Nanostack"}
#: The concurrency shown for a step whose skill lodec cannot load (it is batched with its DAG level).
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Blocker:
    """Why one step cannot run: a stable ``code`` and a one-line ``reason``."""

    code: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason}


@dataclass(frozen=True)
class StackPlan:
    """``batches`` in dependency order, and ``blocked``: step -> every reason it cannot run (empty: all can)."""

    name: str
    version: str
    digest: str
    batches: list[Batch]
    blocked: dict[str, list[Blocker]] = field(default_factory=dict)

    @property
    def runnable(self) -> bool:
        return not self.blocked

    def blocked_lines(self) -> list[dict[str, Any]]:
        """``{"step": name, "cannot_run": [{"code", "reason"}, ...]}`` per blocked step, in schedule order."""
        order = [s for b in self.batches for s in b.steps]
        return [{"step": s, "cannot_run": [b.to_dict() for b in self.blocked[s]]} for s in order if s in self.blocked]


def plan_stack(stack: VerifiedStack, trees: Mapping[str, SkillTree]) -> StackPlan:
    """The plan of a verified stack, runnable or not.

    Batches follow ``schedule.batches``: a step whose skill loads is batched
    by its concurrency; the others (``unknown``) by their DAG level. A step
    is blocked by: a ``skillRef`` that is not ``skill:<name>``
    (``skill_not_lodec``: ``gha:``, ``argo:``, ``nanostack:`` references
    name what another system runs), a stack that pins no skills
    (``stack_unlocked``), a pinned skill verification did not read
    (``skill_not_found``) or that is invalid (``skill_invalid``), a run
    condition lodec cannot evaluate (``condition_unsupported``) or does not
    know (``condition_invalid``).
    """
    from .skills import skill_from_tree

    pins: dict[str, str] | None = stack.manifest.get("skillDigests")
    kinds: dict[str, str] = {}
    run_if: dict[str, str] = {}
    blocked: dict[str, list[Blocker]] = {}
    loaded: dict[str, str | Blocker] = {}
    for name in stack.order:
        record = stack.steps[name].record
        ref = str(record["skillRef"])
        why: list[Blocker] = []
        if ref not in loaded:
            loaded[ref] = _concurrency(ref, pins, trees, skill_from_tree)
        got = loaded[ref]
        if isinstance(got, Blocker):
            why.append(got)
            kinds[name] = UNKNOWN
        else:
            kinds[name] = got
        try:
            condition = condition_of(record, step=name)
        except LodecError as exc:
            why.append(Blocker(exc.code, exc.message))
        else:
            run_if[name] = condition.run_if
            if not condition.exact:
                why.append(Blocker("condition_unsupported",
                                   f"runs {condition.describe()}, which lodec cannot evaluate"))
        if why:
            blocked[name] = why
    deps = {n: list(stack.steps[n].record.get("dependsOn", [])) for n in stack.order}
    return StackPlan(stack.name, stack.version, stack.digest, batches(stack.order, deps, kinds, run_if), blocked)


def _concurrency(ref: str, pins: Mapping[str, str] | None, trees: Mapping[str, SkillTree],
                 load: Any) -> str | Blocker:
    if not ref.startswith(SKILL_REF_PREFIX):
        system = _SYSTEMS.get(ref.split(":", 1)[0], "another system") if ":" in ref else "another system"
        return Blocker("skill_not_lodec", f"{ref} is not a lodec skill (skill:<name>): it names what {system} runs, "
                                          "imported for review")
    if pins is None:
        return Blocker("stack_unlocked", "the stack pins no skills: run `lodec lock` on it first")
    tree = trees.get(ref)
    if tree is None:
        return Blocker("skill_not_found", f"{ref} is not among the verified skills")
    try:
        return str(load(tree).config.concurrency)
    except LodecError as exc:
        return Blocker(exc.code, f"{ref}: {exc.message}")
