"""What travels through Temporal for a lodec run: identifiers, digests and step results, never code.

Plain dataclasses (the SDK's default JSON data converter encodes them); workflow code imports
them passed through its sandbox. Field names follow ``run.json`` (``docs/run-records.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The workflow type every worker registers.
WORKFLOW = "lodec-run"
#: The activity that verifies the pack on a worker and returns its schedule.
PLAN_ACTIVITY = "lodec-plan"
#: The activity that verifies the pack on a worker, then runs one step sealed.
STEP_ACTIVITY = "lodec-step"
#: ApplicationError types a worker raises when it refuses a pack: never retried.
REFUSALS = ("verification_failed", "skill_drifted", "skill_not_found", "skill_invalid", "stack_unlocked",
            "pack_missing", "integrity_mismatch", "stack_mismatch", "step_not_found", "output_name_unsafe",
            "signature_invalid", "signatures_required", "sandbox_unavailable", "usage")


@dataclass
class PackRef:
    """Which pack a worker must fetch and verify, and the stack digest it must verify to: the run id,
    the pack's digest (``blake3:<hex>`` of the ``.lodepack`` bytes), the shared content-addressed
    directory it was put in (as the submitter sees it), the verified stack's canonical digest."""

    run: str
    pack: str
    store: str
    stack: str


@dataclass
class RunInput:
    """A workflow's input: which pack to run (``ref``: run id, pack digest, store, stack digest, as
    the submitter verified them), the stack's steps in topological order (as the submitter verified
    them), and how to run: ``jobs`` at most at once, artifact ``trust``, and the activity policy."""

    ref: PackRef
    steps: list[str]
    jobs: int = 4
    trust: str = "strict"
    heartbeat_s: float = 10.0
    attempts: int = 3


@dataclass
class PlannedStep:
    """One step as a worker verified it: what the workflow needs to schedule it (dependencies,
    concurrency, timeout in seconds, run condition ``run_if``: ``success``, ``failure`` or
    ``always``) and to record it without running it (skill, fingerprint)."""

    name: str
    deps: list[str]
    concurrency: str
    timeout: float
    skill: str
    skill_digest: str
    fingerprint: str
    run_if: str = "success"


@dataclass
class Plan:
    """The verified stack's schedule: name, version, canonical digest, steps in topological order."""

    name: str
    version: str
    digest: str
    steps: list[PlannedStep]
    worker: str


@dataclass
class StepInput:
    """Run ``step`` of the pack: ``upstream`` holds its dependencies' results (``StepResult`` as JSON),
    each of whose artifacts the worker re-hashes in the shared store before the step starts."""

    ref: PackRef
    step: str
    trust: str
    upstream: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class StepOutput:
    """A step's ``StepResult`` (as JSON, ``worker`` set), the worker's sandbox line, and the
    ``blake3`` digests of its stdout and stderr logs in the shared store (``None``: not kept)."""

    result: dict[str, Any]
    sandbox: str
    stdout: str | None = None
    stderr: str | None = None


@dataclass
class RunOutput:
    """The workflow's result: every step's ``StepOutput`` by name, or ``refused`` (an error code) and
    ``detail`` when no worker would plan the run (nothing ran)."""

    steps: dict[str, StepOutput] = field(default_factory=dict)
    refused: str | None = None
    detail: str | None = None
    planned_by: str | None = None
