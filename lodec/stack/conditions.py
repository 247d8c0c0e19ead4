"""Run conditions: when a step runs, given how its upstream steps ended (pure).

A ``skill-step-v2`` record (``docs/vein-format.md`` §2.7) may carry:

* ``runIf`` (field 7): ``success`` (the default, and v1's only meaning of
  ``dependsOn``), ``failure`` or ``always``;
* ``runIfExpression`` (field 8): language -> an expression kept verbatim
  from the workflow it was imported from (``github-actions``,
  ``argo-depends``, ``argo-when``, ``argo-target``), for a condition no ``runIf`` value
  states exactly. lodec evaluates none: a stack with such a step can be
  verified, signed and planned, and ``lodec run`` refuses it
  (``condition_unsupported``), never running it under another meaning.

The decision rule (``docs/skill-contract.md`` §Run conditions) is
:func:`decide`; ``lodec run`` and ``lodec plan`` both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import StackError

__all__ = [
    "ALWAYS",
    "Condition",
    "Decision",
    "FAILURE",
    "RUN_IF",
    "SUCCESS",
    "condition_of",
    "counts_as_failure",
    "decide",
]

SUCCESS, FAILURE, ALWAYS = "success", "failure", "always"
#: The values of ``runIf``; absent means ``success``.
RUN_IF = (SUCCESS, FAILURE, ALWAYS)
#: The languages ``runIfExpression`` may name (what the importers write).
EXPRESSION_LANGUAGES = ("argo-depends", "argo-target", "argo-when", "github-actions")

#: Skip reasons that do NOT count as a failure for a ``failure`` step
#: downstream: the step was skipped because its own condition said so, or
#: because an upstream was skipped that way.
NOT_FAILURES = frozenset({"condition_not_met", "upstream_skipped"})


@dataclass(frozen=True, slots=True)
class Condition:
    """A step's run condition: ``run_if`` (``success``, ``failure`` or ``always``) and the
    verbatim ``expressions`` (``(language, text)`` pairs, sorted) it also carries."""

    run_if: str = SUCCESS
    expressions: tuple[tuple[str, str], ...] = ()

    @property
    def exact(self) -> bool:
        """Whether lodec can decide it: no verbatim expression."""
        return not self.expressions

    def describe(self) -> str:
        """``on success``, ``on failure``, ``always``, or ``if <language> expression <text>``."""
        if self.expressions:
            return "; ".join(f"if {lang} expression {text!r}" for lang, text in self.expressions)
        return {SUCCESS: "on success", FAILURE: "on failure", ALWAYS: "always"}[self.run_if]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"runIf": self.run_if}
        if self.expressions:
            out["runIfExpression"] = dict(self.expressions)
        return out


def condition_of(record: Mapping[str, Any], *, step: str | None = None) -> Condition:
    """The run condition of a decoded step record (v1 records: always ``success``).

    Raises:
        StackError: ``condition_invalid``: ``runIf`` not one of ``RUN_IF``, or
            ``runIfExpression`` empty, naming an unknown language or holding
            an empty expression.
    """
    name = step or record.get("stepName")
    run_if = record.get("runIf", SUCCESS)
    if run_if not in RUN_IF:
        raise StackError(f'step "{name}": runIf is {run_if!r}; expected one of {", ".join(RUN_IF)}',
                         code="condition_invalid")
    raw = record.get("runIfExpression")
    expressions: tuple[tuple[str, str], ...] = ()
    if raw is not None:
        if not raw:
            raise StackError(f'step "{name}": runIfExpression is empty (leave it out instead)',
                             code="condition_invalid")
        for lang, text in raw.items():
            if lang not in EXPRESSION_LANGUAGES:
                raise StackError(f'step "{name}": runIfExpression names language {lang!r}; expected one of '
                                 f'{", ".join(EXPRESSION_LANGUAGES)}', code="condition_invalid")
            if not text.strip():
                raise StackError(f'step "{name}": runIfExpression {lang} is empty', code="condition_invalid")
        expressions = tuple(sorted(raw.items()))
    return Condition(run_if, expressions)


def counts_as_failure(status: str, reason: str | None) -> bool:
    """Whether an upstream that ended ``status`` (``succeeded``, ``failed``, ``skipped``) for ``reason``
    counts as failed: it failed, or it was skipped for any reason but a condition (``NOT_FAILURES``)."""
    if status == "failed":
        return True
    return status == "skipped" and reason not in NOT_FAILURES


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a step now: ``action`` ``wait``, ``run`` or ``skip`` (with ``reason`` and ``detail``)."""

    action: str
    reason: str | None = None
    detail: str | None = None


WAIT, RUN = Decision("wait"), Decision("run")


def decide(condition: Condition, upstream: Mapping[str, tuple[str, str | None] | None]) -> Decision:
    """Whether a step runs, given ``upstream``: each dependency -> ``(status, skip reason)``, or ``None``
    while it has not ended.

    * ``success``: skipped as soon as an upstream did not succeed
      (``upstream_failed`` if one counts as failed, else ``upstream_skipped``);
      runs when all succeeded.
    * ``failure``: waits for every upstream; runs if at least one counts as
      failed (``counts_as_failure``), else skipped ``condition_not_met``.
    * ``always``: waits for every upstream, then runs whatever they did.

    A condition with expressions is decided as its ``run_if`` (callers refuse
    to run such a step before this is asked).
    """
    ended = {d: s for d, s in upstream.items() if s is not None}
    failed = sorted(d for d, (status, reason) in ended.items() if counts_as_failure(status, reason))
    if condition.run_if == SUCCESS:
        if failed:
            return Decision("skip", "upstream_failed", f"upstream {', '.join(failed)} did not succeed")
        skipped = sorted(d for d, (status, _) in ended.items() if status != "succeeded")
        if skipped:
            return Decision("skip", "upstream_skipped", f"upstream {', '.join(skipped)} was skipped by its condition")
        return RUN if len(ended) == len(upstream) else WAIT
    if len(ended) < len(upstream):
        return WAIT
    if condition.run_if == ALWAYS or failed:
        return RUN
    return Decision("skip", "condition_not_met", "runs only when an upstream step fails, and none did")
