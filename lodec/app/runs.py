"""Use cases that run verified stacks and read what runs left: skills, lock, plan, run, resolve,
artifact, journal, analytics, runs list and discard.

Every function takes the command's ``Workspace`` (``lodec.store.workspace``),
which names every state path; nothing here builds one. Contracts:
``docs/skill-contract.md`` and ``docs/run-records.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LodecError, ManyErrors, RunError
from ..run.executor import PreparedRun, StepEvent
from ..run.skills import Skill, skill_pins
from ..store.records import RunRecord
from ..store.workspace import Workspace
from .options import OptionsError, TrustOptions
from .verify import VerifyResult, verify_target

if TYPE_CHECKING:
    from ..run.plan import StackPlan

# ------------------------------------------------------------------ skills


def check_skills(folders: Sequence[str]) -> list[SkillRow]:
    """Validate every skill folder (``SKILL.md`` under the Agent Skills spec, ``lodec.toml``, no links).

    Returns one row per folder, in order: the skill, or the error it gave
    (``SkillError``, ``LimitExceeded``, ...). Never raises for a bad folder.
    """
    from ..run.skills import load_skill

    rows = []
    for folder in folders:
        try:
            rows.append(SkillRow(Path(folder), load_skill(folder), None, False))
        except LodecError as exc:
            rows.append(SkillRow(Path(folder), None, exc, False))
    return rows


def add_skill(folder: str, workspace: Workspace) -> tuple[Skill, Path]:
    """Validate ``folder`` and install it into the workspace's ``skills/``; ``(skill, installed path)``.

    Raises:
        SkillError: invalid, or ``skill_exists`` (the name is taken).
    """
    from ..errors import FileUnwritable
    from ..run.skills import add_skill as install

    try:
        workspace.ensure_state()
    except OSError as exc:
        raise FileUnwritable(exc.strerror or str(exc), file=str(workspace.state)) from None
    return install(folder, workspace.skills)


@dataclass(frozen=True)
class SkillRow:
    """One folder ``list_skills`` found: the skill (or the error it gave) and whether an earlier root shadows it."""

    folder: Path
    skill: Skill | None
    error: LodecError | None
    shadowed: bool

    def to_dict(self) -> dict[str, Any]:
        if self.skill is None:
            assert self.error is not None
            return {"name": self.folder.name, "path": str(self.folder), "ok": False, "error": self.error.to_dict()}
        return {**self.skill.to_dict(), "ok": True, "shadowed": self.shadowed}


def list_skills(workspace: Workspace, stack_path: str | None = None) -> list[SkillRow]:
    """Every skill folder lodec would find, in lookup order; the first of a name wins."""
    from ..run.skills import load_skill

    rows: list[SkillRow] = []
    seen: set[str] = set()
    for root in workspace.skill_roots(stack_path):
        if not root.is_dir():
            continue
        for entry in sorted(os.listdir(root)):
            if entry.startswith(".") or not (root / entry).is_dir():
                continue
            try:
                skill = load_skill(root / entry)
            except LodecError as exc:
                rows.append(SkillRow(root / entry, None, exc, False))
                continue
            rows.append(SkillRow(root / entry, skill, None, skill.name in seen))
            seen.add(skill.name)
    return rows


# ------------------------------------------------------------------ lock / plan


@dataclass(frozen=True)
class Locked:
    """``lodec lock``'s outcome: the manifest path, its new canonical digest, the skills pinned."""

    manifest: str
    digest: str
    skills: dict[str, Skill]
    #: ``lodec.app.author.BuildWarning``s: a signature envelope beside the manifest that no longer matches it.
    warnings: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "manifest": self.manifest, "digest": self.digest,
                "skillDigests": skill_pins(self.skills), "warnings": [w.to_dict() for w in self.warnings]}


def lock(manifest: str, workspace: Workspace, *, steps_dir: str | None = None) -> Locked:
    """Verify ``manifest``, then pin every step's skill by tree digest (``skillDigests``), atomically.

    Raises:
        VerificationFailed: the stack does not verify.
        SkillError: a skill missing or invalid; ``ManyErrors`` when several are (nothing is written).
        LodecError: ``file_unwritable``.
    """
    from ..files import atomic_write
    from ..run.skills import load_skills
    from ..stack.manifest import lock_manifest, manifest_json

    # The skills are what lock pins, so the stack is verified without them.
    stack = verify_target(manifest, workspace, steps_dir=steps_dir, check_skills=False).require()
    skills, errors = load_skills((str(v.record["skillRef"]) for v in stack.steps.values()),
                                 workspace.skill_roots(manifest))
    if errors:
        raise errors[0] if len(errors) == 1 else ManyErrors(list(errors))
    try:
        locked, digest = lock_manifest(stack.manifest, skill_pins(skills))
    except LodecError as exc:
        raise exc.with_file(manifest) from None
    data = manifest_json(locked)
    atomic_write(manifest, data)
    from .author import _envelope_warning

    stale = _envelope_warning(Path(manifest), data)
    return Locked(manifest, digest, skills, (stale,) if stale is not None else ())


def prepare(target: str, workspace: Workspace, trust: TrustOptions | None = None, *,
            steps_dir: str | None = None, on_verified: Callable[[VerifyResult], None] | None = None) -> PreparedRun:
    """Verify ``target`` exactly as ``lodec verify`` does, then bind every step to its skill, checked against its pin.

    ``on_verified`` sees the verification's result first (the CLI says there when a signed stack is
    trusted on first use).

    Raises:
        VerificationFailed: the stack does not verify (``.report``).
        RunError: ``stack_unlocked``, ``skill_drifted``, ``skill_not_found``, ...
        OptionsError, LodecError: as ``verify_target``.
    """
    from ..run.executor import prepare_run

    result = verify_target(target, workspace, trust, steps_dir=steps_dir)
    if on_verified is not None and result.ok:
        on_verified(result)
    return prepare_run(result.require(), result.skills)


def plan(target: str, workspace: Workspace, trust: TrustOptions | None = None, *,
         steps_dir: str | None = None) -> StackPlan:
    """The plan ``lodec plan`` prints, for any stack that verifies (``lodec.run.plan.plan_stack``).

    Verifies ``target`` exactly as ``run`` does. A stack no step of which is
    blocked then goes through ``run``'s own preparation (skills bound to their
    pins, output names), so its plan is the schedule ``run`` follows; a stack
    with blocked steps (imported ``gha:``/``argo:`` references, an unlocked
    stack, verbatim conditions) still gets its DAG's schedule, with every
    reason each blocked step cannot run.

    Raises:
        VerificationFailed: the stack does not verify (``.report``).
        RunError: a stack without blocked steps that ``run`` would still refuse.
        OptionsError, LodecError: as ``verify_target``.
    """
    from ..run.executor import prepare_run
    from ..run.plan import StackPlan, plan_stack

    result = verify_target(target, workspace, trust, steps_dir=steps_dir)
    stack = result.require()
    planned = plan_stack(stack, result.skills)
    if planned.runnable:
        prepared = prepare_run(stack, result.skills)
        return StackPlan(planned.name, planned.version, planned.digest, prepared.batches(), {})
    return planned


# ------------------------------------------------------------------ run


@dataclass(frozen=True)
class RunRequest:
    """How to run: ``jobs`` at most at once (``None``: CPUs, at least 2), artifact ``trust``
    (``strict``/``normal``), only these steps (empty: all) on an earlier run's results
    (``reuse``: a run id or ``latest``), and an ``events`` callback that gets a ``StepEvent`` when each
    step starts and ends (the CLI prints a line for each)."""

    jobs: int | None = None
    trust: str = "strict"
    allow_unsandboxed: bool = False
    only: tuple[str, ...] = ()
    reuse: str | None = None
    events: Callable[[StepEvent], None] | None = None
    on_verified: Callable[[VerifyResult], None] | None = None


def run(target: str, workspace: Workspace, trust: TrustOptions | None = None, request: RunRequest | None = None,
        *, steps_dir: str | None = None) -> RunRecord:
    """Verify ``target``, check every skill against its pin, then run the steps; the run record.

    ``request.reuse == "latest"`` takes the newest completed run of the same
    canonical manifest digest (``lodec.store.records.latest_run``).

    Raises:
        VerificationFailed, RunError, OptionsError, LodecError: before any step starts.
        Step failures do not raise: they are in the record.
    """
    from ..run.executor import RunOptions, run_stack
    from ..run.schedule import default_jobs
    from ..store.records import latest_run, list_runs, read_run

    request = request or RunRequest()
    if request.reuse is not None and not request.only:
        raise OptionsError("reusing a run needs the steps to run again (--step NAME)", param_hint="--reuse")
    prepared = prepare(target, workspace, trust, steps_dir=steps_dir, on_verified=request.on_verified)
    reuse = None
    if request.reuse == "latest":
        reuse = latest_run(list_runs(workspace), prepared.stack.digest)
        if reuse is None:
            raise RunError(f"no completed run of {prepared.stack.name} {prepared.stack.digest} in "
                           f"{workspace.runs} to reuse", code="run_not_found")
    elif request.reuse is not None:
        reuse = read_run(workspace, request.reuse)
    # Instruction-only skills run through the workspace's agent runner (.lodec/agent.toml), read only when needed.
    agent = None
    if any(s.instruction_only for s in prepared.skills.values()):
        from ..run.agent import AGENT_FILE, load_agent

        agent = load_agent(workspace.state / AGENT_FILE)
    return run_stack(prepared, RunOptions(workspace=workspace, jobs=request.jobs or default_jobs(),
                                          trust=request.trust, allow_unsandboxed=request.allow_unsandboxed,
                                          events=request.events, only=request.only,
                                          reuse=reuse, agent=agent))


# ------------------------------------------------------------------ resolve / artifact


@dataclass(frozen=True)
class Resolved:
    """What a step would receive from upstream: ``<step>/<output>`` -> path (or ``None``) and status."""

    step: str
    run: str | None
    trust: str
    artifacts: dict[str, str | None]
    statuses: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "run": self.run, "trust": self.trust,
                "upstream_artifacts": self.artifacts, "upstream_status": self.statuses}


def resolve(target: str, step: str, workspace: Workspace, trust: TrustOptions | None = None, *,
            run_id: str | None = None, level: str = "strict", steps_dir: str | None = None) -> Resolved:
    """``step``'s upstream artifacts in run ``run_id`` (default: the latest completed run of this
    stack's digest), each re-hashed.

    Raises:
        LodecError: ``step_not_found``; ``run_not_found`` for an unknown ``run_id``; verification as ``prepare``.
    """
    from ..run.reports import upstream
    from ..store.cas import Store
    from ..store.records import latest_run, list_runs, read_run

    prepared = prepare(target, workspace, trust, steps_dir=steps_dir)
    if step not in prepared.steps:
        raise LodecError(f'no step "{step}" in {prepared.stack.name}', code="step_not_found", file=target)
    record = read_run(workspace, run_id) if run_id is not None else latest_run(list_runs(workspace),
                                                                              prepared.stack.digest)
    results = record.step_results() if record is not None else {}
    artifacts, statuses = upstream(prepared.steps[step].deps, prepared, results, Store(workspace.cas), level)
    return Resolved(step, record.run if record is not None else None, level, artifacts, statuses)


def run_record(workspace: Workspace, run_id: str | None = None) -> RunRecord:
    """Run ``run_id``'s record, or the latest completed run's when ``None``.

    Raises:
        RunError: ``run_not_found``, ``run_invalid``.
    """
    from ..store.records import latest_run, list_runs, read_run

    if run_id is not None:
        return read_run(workspace, run_id)
    latest = latest_run(list_runs(workspace))
    if latest is None:
        raise RunError(f"no completed runs in {workspace.runs}", code="run_not_found")
    return latest


def read_artifact(workspace: Workspace, step: str, output: str | None = None, *, run_id: str | None = None) -> bytes:
    """The bytes of ``step``'s artifact ``output`` (default: its only one) from run ``run_id``
    (default: the latest completed run), re-hashed against the digest the run recorded.

    Raises:
        RunError: ``step_not_found``, ``artifact_missing``, ``integrity_mismatch``, ``run_not_found``.
    """
    from ..store.cas import MAX_ARTIFACT_BYTES, Store

    record = run_record(workspace, run_id)
    rec = record.step_results().get(step)
    if rec is None:
        raise RunError(f'run {record.run} has no step "{step}"', code="step_not_found")
    made = rec.artifacts
    have = ", ".join(sorted(made)) or "none"
    if output is None:
        if len(made) != 1:
            which = "several artifacts: name one" if made else "no artifacts"
            raise RunError(f'step "{step}" of run {record.run} recorded {which} (it has: {have})',
                           code="artifact_missing")
        output = next(iter(made))
    elif output not in made:
        raise RunError(f'step "{step}" of run {record.run} recorded no artifact {output!r} (it has: {have})',
                       code="artifact_missing")
    store = Store(workspace.cas)
    digest = made[output].blake3
    status, data = store.read(digest, MAX_ARTIFACT_BYTES)
    if status == "missing":
        raise RunError(f"{step}/{output} of run {record.run} is missing from the store ({store.path(digest)})",
                       code="artifact_missing")
    if data is None:
        raise RunError(f"{step}/{output} of run {record.run} was changed after the run: "
                       f"{store.path(digest)} no longer hashes to blake3:{digest}", code="integrity_mismatch")
    return data


# ------------------------------------------------------------------ logs

#: How much of a log's end ``log_tail`` reads (bytes).
TAIL_BYTES = 64 * 1024


def log_tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a step log, each made safe to print (``lodec.names.printable``).

    Reads at most ``TAIL_BYTES`` from the end, without following links. A log
    that cannot be read gives ``[]`` (the failure it would explain is already reported).
    """
    from ..files import open_regular
    from ..names import printable

    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read(TAIL_BYTES)
    except (LodecError, OSError):
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    return [printable(line) for line in text[-lines:]]


def read_log(workspace: Workspace, step: str, *, stream: str = "stderr", run_id: str | None = None) -> bytes:
    """The bytes of ``step``'s ``stdout.log`` or ``stderr.log`` in run ``run_id`` (default: the latest completed run).

    Raises:
        RunError: ``run_not_found``, ``step_not_found`` (the run has no such step, or it never started).
        LodecError: the log cannot be read (``file_unreadable``, ``file_link``, ``limit_exceeded``).
    """
    from ..files import read_bounded
    from ..names import is_safe_name
    from ..store.cas import MAX_ARTIFACT_BYTES

    if stream not in ("stdout", "stderr"):
        raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
    record = run_record(workspace, run_id)
    rec = record.steps.get(step)
    if rec is None or not is_safe_name(step):
        raise RunError(f'run {record.run} has no step "{step}"', code="step_not_found")
    if rec.started is None:
        raise RunError(f'step "{step}" of run {record.run} never started ({rec.status}: {rec.detail})',
                       code="step_not_found")
    return read_bounded(workspace.step_dir(record.run, step) / f"{stream}.log", MAX_ARTIFACT_BYTES)


# ------------------------------------------------------------------ records


def journal(workspace: Workspace, run_id: str | None = None) -> str:
    """The journal of run ``run_id`` (default: the latest completed run), every artifact re-checked."""
    from ..run.reports import journal_markdown
    from ..store.cas import Store

    return journal_markdown(run_record(workspace, run_id), Store(workspace.cas))


def journal_data(workspace: Workspace, run_id: str | None = None) -> dict[str, Any]:
    """The journal as data: run ``run_id``'s record (``run.json``, default: the latest completed run)
    and ``"artifacts"``: ``[{"step", "output", "blake3", "sha256", "size", "state"}]``, each
    re-hashed now (``state``: ``verified``, ``tampered`` or ``missing``).

    Raises:
        RunError: ``run_not_found``.
    """
    from ..run.reports import artifact_rows
    from ..store.cas import Store

    record = run_record(workspace, run_id)
    artifacts = [{"step": step, "output": output, "blake3": digest.blake3, "sha256": digest.sha256,
                  "size": digest.size, "state": state}
                 for step, output, digest, state in artifact_rows(record, Store(workspace.cas))]
    return {**record.to_dict(), "artifacts": artifacts}


def runs(workspace: Workspace) -> list[RunRecord]:
    """Every readable run record of the workspace, oldest first."""
    from ..store.records import list_runs

    return list_runs(workspace)


def analytics(workspace: Workspace) -> dict[str, Any]:
    """Figures over every run: see ``lodec.run.reports.analytics``."""
    from ..run.reports import analytics as compute
    from ..store.cas import Store
    from ..store.records import list_runs

    return compute(list_runs(workspace), Store(workspace.cas))


def discard(workspace: Workspace, run_id: str, *, dry_run: bool = False) -> list[Path]:
    """Delete run ``run_id``'s folder and the artifacts no other run records (``dry_run``: only list them).

    Raises:
        RunError: ``run_not_found``.
    """
    from ..store.records import discard as delete
    from ..store.records import discard_plan

    return discard_plan(workspace, run_id) if dry_run else delete(workspace, run_id)
