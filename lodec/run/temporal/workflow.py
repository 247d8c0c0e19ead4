"""``RunWorkflow``: lodec's schedule of a verified stack, as Temporal workflow code.

Deterministic, as Temporal requires of workflow code (it is replayed from history): no I/O, no
clock, no randomness; it runs in the SDK's sandboxed workflow runner, with lodec's own modules
passed through (they are deterministic and import-time side-effect free). Everything that touches
a file happens in the activities (``activities``), on workers that verify the pack first.

The schedule is lodec's over the DAG a worker verified (the ``plan`` activity), exactly as the
local executor applies it: each step's run condition (``lodec.stack.conditions.decide``:
``success``, ``failure``, ``always``; a step is skipped ``upstream_failed``,
``upstream_skipped`` or ``condition_not_met`` as locally), then ``lodec.run.schedule.may_start``, in the
local executor's very pass (``lodec.run.schedule.one_pass``):
at most ``jobs`` at once, read / write / exclusive as ``docs/skill-contract.md`` §Concurrency says. Each step is one activity (id = the step name), so it runs at most once
per attempt; the activity retry policy is ``step_retry_policy``.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from ...stack.conditions import Condition, Decision, decide
    from ..schedule import one_pass
    from .types import (PLAN_ACTIVITY, REFUSALS, STEP_ACTIVITY, WORKFLOW, Plan, PlannedStep, RunInput,
                        RunOutput, StepInput, StepOutput)

#: Time a worker has to fetch and verify a pack and return the plan.
PLAN_TIMEOUT = timedelta(minutes=2)
#: Added to a step's own timeout (which the worker enforces itself) for fetching, verifying and storing.
STEP_MARGIN_S = 120.0


def step_retry_policy(attempts: int) -> RetryPolicy:
    """The activity retry policy (``docs/temporal.md`` §Retries).

    Retried, up to ``attempts`` attempts in all, 1 s apart then doubling up to 10 s: an attempt
    whose worker was lost (no heartbeat within the heartbeat timeout, or past start-to-close) and
    an infrastructure error on the worker (the shared store unreachable, a full disk). Never
    retried: a worker's refusal (``REFUSALS``: the pack does not verify there, a skill drifted, ...),
    and a step that ran and failed (exit status, timeout, outputs): that is the step's result, as
    locally, not an error.
    """
    return RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                       maximum_interval=timedelta(seconds=10), maximum_attempts=attempts,
                       non_retryable_error_types=list(REFUSALS))


@workflow.defn(name=WORKFLOW)
class RunWorkflow:
    """One lodec run: plan on a worker, then every step as an activity, in lodec's schedule."""

    def __init__(self) -> None:
        self._started: list[str] = []
        self._done: dict[str, StepOutput] = {}

    @workflow.query(name="progress")
    def progress(self) -> dict[str, Any]:
        """``{"started": [step, ...], "done": {step: StepOutput as JSON}}`` so far."""
        return {"started": list(self._started), "done": {k: asdict(v) for k, v in self._done.items()}}

    @workflow.run
    async def run(self, inp: RunInput) -> RunOutput:
        ref = inp.ref
        try:
            plan = await workflow.execute_activity(
                PLAN_ACTIVITY, ref, result_type=Plan, start_to_close_timeout=PLAN_TIMEOUT,
                retry_policy=step_retry_policy(inp.attempts))
        except ActivityError as exc:
            code, detail = _cause(exc)
            return RunOutput(refused=code, detail=detail)
        order = [s.name for s in plan.steps]
        if plan.digest != ref.stack or order != inp.steps:
            return RunOutput(refused="stack_mismatch", planned_by=plan.worker,
                             detail=f"worker {plan.worker} verified stack {plan.digest} with steps {order}; the "
                                    f"submitter verified {ref.stack} with steps {inp.steps}")
        steps = {s.name: s for s in plan.steps}
        pending = list(order)
        running: dict[str, Any] = {}
        while pending or running:
            while self._advance(inp, steps, pending, running):
                pass
            if running:
                await workflow.wait(list(running.values()), return_when=asyncio.FIRST_COMPLETED)
                for name, handle in list(running.items()):
                    if handle.done():
                        del running[name]
                        self._done[name] = _outcome(handle, steps[name])
        return RunOutput(steps=dict(self._done), planned_by=plan.worker)

    def _advance(self, inp: RunInput, steps: dict[str, PlannedStep], pending: list[str],
                 running: dict[str, Any]) -> bool:
        """One pass over ``pending`` in topological order: skip or start what can be (as the local
        executor's ``_advance``). Returns whether anything changed."""
        def decision(name: str) -> Decision:
            upstream = {d: (self._done[d].result["status"], self._done[d].result.get("reason"))
                        if d in self._done else None for d in steps[name].deps}
            return decide(Condition(steps[name].run_if), upstream)

        changed = False
        for name, now in one_pass(pending, lambda: [steps[r].concurrency for r in running], inp.jobs,
                                  lambda n: steps[n].concurrency, decision):
            changed = True
            step = steps[name]
            if now.action == "skip":
                self._done[name] = StepOutput(_skipped(step, str(now.reason), str(now.detail)), "")
                continue
            results = {d: self._done[d].result for d in step.deps}
            self._started.append(name)
            running[name] = workflow.start_activity(
                STEP_ACTIVITY, StepInput(inp.ref, name, inp.trust, results), result_type=StepOutput,
                activity_id=name, start_to_close_timeout=timedelta(seconds=step.timeout + STEP_MARGIN_S),
                heartbeat_timeout=timedelta(seconds=inp.heartbeat_s),
                retry_policy=step_retry_policy(inp.attempts))
        return changed

def _skipped(step: PlannedStep, reason: str, detail: str) -> dict[str, Any]:
    return {"status": "skipped", "skill": step.skill, "skillDigest": step.skill_digest,
            "fingerprint": step.fingerprint, "concurrency": step.concurrency, "reason": reason, "detail": detail}


def _cause(exc: ActivityError) -> tuple[str, str]:
    """The error code and message behind a failed activity: a worker's refusal keeps its code."""
    cause = exc.cause
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type, cause.message
    return "worker_failed", str(cause or exc)


def _outcome(handle: Any, step: PlannedStep) -> StepOutput:
    try:
        out: StepOutput = handle.result()
        return out
    except ActivityError as exc:
        code, detail = _cause(exc)
        failed = _skipped(step, code, detail)
        failed["status"] = "failed"
        return StepOutput(failed, "")
