"""Scheduling a verified DAG under read / write / exclusive concurrency.

The rule (``docs/skill-contract.md`` §Concurrency): ``read`` steps share
time with each other and with one ``write`` step; a ``write`` step runs with
no other ``write`` or ``exclusive`` step; an ``exclusive`` step runs alone;
never more than ``jobs`` at once. ``may_start`` is that rule, ``batches``
the static view of it that ``lodec plan`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..stack.conditions import Decision


def may_start(kind: str, running: Collection[str], jobs: int) -> bool:
    """Whether a step of concurrency ``kind`` may start beside steps of the ``running`` kinds."""
    if len(running) >= jobs:
        return False
    if kind == "exclusive":
        return not running
    if "exclusive" in running:
        return False
    if kind == "write":
        return "write" not in running
    return True


def one_pass(pending: list[str], running: Callable[[], Collection[str]], jobs: int, kind: Callable[[str], str],
             decision: Callable[[str], Decision]) -> Iterator[tuple[str, Decision]]:
    """One scheduling pass over ``pending`` (step names, topological order), shared by the local
    executor and the Temporal workflow.

    Yields ``(step, decision)`` for each step to skip (``decision.action == "skip"``) or start
    (``"run"``), having removed it from ``pending``; the caller records the skip or starts the step
    before asking for the next one, so ``running()`` (the concurrency kinds running now) and
    ``decision(step)`` (``lodec.stack.conditions.decide`` for it) see the change. A step that must
    wait stays. A waiting ``exclusive`` step holds back every later step, so it is not starved. The
    pass stops while ``jobs`` steps run: nothing more can start, and skips wait for a later pass.
    """
    barrier = False
    i = 0
    while i < len(pending) and len(running()) < jobs:
        name = pending[i]
        now = decision(name)
        if now.action == "skip":
            del pending[i]
            yield name, now
        elif barrier or now.action == "wait":
            i += 1
        elif not may_start(kind(name), running(), jobs):
            barrier = barrier or kind(name) == "exclusive"
            i += 1
        else:
            del pending[i]
            yield name, now


@dataclass(frozen=True, slots=True)
class Batch:
    """Steps that may run together: ``{"batch": N, "type": "read|write|exclusive|unknown", "steps": [...]}``, plus
    ``"runIf": {step: "failure"|"always"}`` for its steps that do not run on success only."""

    number: int
    kind: str
    steps: tuple[str, ...]
    run_if: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"batch": self.number, "type": self.kind, "steps": list(self.steps)}
        if self.run_if:
            out["runIf"] = dict(self.run_if)
        return out


def batches(order: Sequence[str], deps: Mapping[str, Sequence[str]], kinds: Mapping[str, str],
            run_if: Mapping[str, str] | None = None) -> list[Batch]:
    """The schedule as batches, each after every batch it depends on.

    Each round takes the steps whose dependencies are all in earlier
    batches: all of them that are ``read`` form one batch; otherwise the
    first ready ``write`` step (in topological ``order``) forms one;
    otherwise the first ``exclusive`` step. Deterministic for a given graph.
    Steps of kind ``unknown`` (a skill lodec cannot load, ``lodec.run.plan``)
    form a batch of their own when no ``read`` step is ready: their DAG level.
    A step's ``run_if`` (``failure``, ``always``; ``success`` when absent)
    does not move it: it still waits for every dependency.
    """
    run_if = run_if or {}
    done: set[str] = set()
    left = list(order)
    out: list[Batch] = []
    while left:
        ready = [s for s in left if all(d in done for d in deps[s])]
        if not ready:  # unreachable for a verified DAG; refuse rather than loop
            raise ValueError(f"no step is ready among {left}; not a DAG")
        reads = tuple(s for s in ready if kinds[s] == "read")
        unknown = tuple(s for s in ready if kinds[s] == "unknown")
        if reads:
            chosen, kind = reads, "read"
        elif unknown:
            chosen, kind = unknown, "unknown"
        else:
            first = next((s for s in ready if kinds[s] == "write"), ready[0])
            chosen, kind = (first,), kinds[first]
        conditions = tuple((s, run_if[s]) for s in chosen if run_if.get(s, "success") != "success")
        out.append(Batch(len(out) + 1, kind, chosen, conditions))
        done.update(chosen)
        left = [s for s in left if s not in done]
    return out


def default_jobs() -> int:
    """``--jobs`` default: the usable CPUs, at least 2 (steps mostly wait on I/O and children)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(2, n)
