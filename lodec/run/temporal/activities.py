"""The activities a lodec worker runs: ``plan`` and ``run_step``, each verifying the pack first.

Nothing executable travels through Temporal: an activity gets a pack digest, fetches the pack
from the shared content-addressed store, re-hashes it, and verifies it with the worker's own
``verify`` (its trust policy, its rollback state, its own installed copies of the skills, as
``lodec.app`` sets it up). Only a step of a stack that verified on this worker, run by a skill
that matched its pin on this worker, is executed, sealed, by ``executor.execute_step``. A refusal
is a non-retryable ``ApplicationError`` whose type is the error code (``skill_drifted``, ...) and
whose message names the drift.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import msgspec
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ...errors import LodecError, VerificationFailed
from ...files import atomic_write, locked, read_bounded
from ...format.fingerprint import is_fingerprint
from ...names import is_safe_name
from ...store.cas import MAX_ARTIFACT_BYTES, Store
from ...store.records import StepResult
from ...store.workspace import Workspace
from .. import reports
from ..executor import (TRUST_LEVELS, PreparedRun, StepContext, choose_sandbox, describe_sandbox, execute_step, private_copy)
from ..sandbox import Sandbox, probe_sandbox
from .types import PLAN_ACTIVITY, STEP_ACTIVITY, PackRef, Plan, PlannedStep, StepInput, StepOutput

#: Largest pack a worker fetches (bytes); as ``lodec.format.pack.MAX_PACK_BYTES``.
MAX_FETCH_BYTES = 512 * 1024 * 1024


@dataclass
class WorkerSetup:
    """A worker's own ground: its ``identity`` (recorded in each step it runs), its ``workspace``
    (the project steps work on, and its state: skills, rollback state, step folders), the shared
    ``store`` directory (packs and artifacts), and ``verify``: pack file -> ``PreparedRun``, raising
    ``LodecError`` (``VerificationFailed`` with a report) when it does not verify here."""

    identity: str
    workspace: Workspace
    store: Path
    verify: Callable[[Path], PreparedRun]
    allow_unsandboxed: bool = False
    #: The least artifact trust steps run at here: ``strict`` overrides a run's ``normal`` (the trust level
    #: travels through Temporal, which is not trusted for what a step is given).
    trust: str = "strict"
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: A line for the worker's log (stderr) per activity start and end.
    log: Callable[[str], None] | None = None


class Activities:
    """``plan`` and ``run_step`` bound to one ``WorkerSetup``."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.store = Store(setup.store)
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ verification

    def _refuse(self, code: str, message: str) -> NoReturn:
        self._log(f"✗ refused: {message} [{code}]")
        raise ApplicationError(f"worker {self.setup.identity} refused: {message}", type=code, non_retryable=True)

    def verified(self, ref: PackRef) -> PreparedRun:
        """Fetch ``ref.pack`` from the shared store, re-hash it, verify it here; the prepared run.

        Raises:
            ApplicationError: non-retryable, typed by the code: ``pack_missing``,
                ``integrity_mismatch``, any verification code (``skill_drifted``, ``signature_invalid``,
                ...), ``stack_mismatch`` (it verifies, but not as the stack the submitter verified).
        """
        hexd = ref.pack.removeprefix("blake3:")
        if not ref.pack.startswith("blake3:") or not is_fingerprint(ref.pack) or not is_safe_name(ref.run):
            self._refuse("usage", f"not a pack digest and run id: {ref.pack!r}, {ref.run!r}")
        status, data = self.store.read(hexd, MAX_FETCH_BYTES)
        if status == "missing" or data is None:
            code = "pack_missing" if status == "missing" else "integrity_mismatch"
            why = "is not in" if status == "missing" else "does not re-hash to its name in"
            self._refuse(code, f"pack {ref.pack} {why} the store {self.setup.store}")
        path = self.setup.workspace.state / "worker" / "packs" / f"{hexd}.lodepack"
        with self._lock:
            try:
                same = read_bounded(path, MAX_FETCH_BYTES) == data
            except LodecError:
                same = False
            if not same:
                atomic_write(path, data, mode=0o444)
        try:
            prepared = self.setup.verify(path)
        except VerificationFailed as exc:
            problems = getattr(exc.report, "problems", [])
            code = problems[0].code if problems else exc.code
            lines = "; ".join(p.message for p in problems) or str(exc)
            self._refuse(code, f"pack {ref.pack} does not verify here: {lines}")
        except LodecError as exc:
            self._refuse(exc.code, f"pack {ref.pack} does not verify here: {exc}")
        if prepared.stack.digest != ref.stack:
            self._refuse("stack_mismatch", f"pack {ref.pack} holds stack {prepared.stack.digest}, "
                                           f"not {ref.stack} as the submitter verified")
        return prepared

    def _sandbox_for(self, prepared: PreparedRun) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = probe_sandbox()
        try:
            return choose_sandbox(prepared, self._sandbox, allow_unsandboxed=self.setup.allow_unsandboxed)
        except LodecError as exc:
            self._refuse(exc.code, str(exc))

    def _log(self, line: str) -> None:
        if self.setup.log is not None:
            self.setup.log(line)

    # ------------------------------------------------------------ activities

    @activity.defn(name=PLAN_ACTIVITY)
    async def plan(self, ref: PackRef) -> Plan:
        """Verify the pack here and return its schedule (the workflow follows it)."""
        prepared = await asyncio.to_thread(self.verified, ref)
        self._log(f"• {ref.run}: verified {prepared.stack.name} {prepared.stack.version} ({ref.pack})")
        steps = [PlannedStep(name=s.name, deps=list(s.deps), concurrency=s.concurrency,
                             timeout=float(s.skill.config.timeout), skill=str(s.record["skillRef"]),
                             skill_digest=s.skill.digest, fingerprint=s.fingerprint, run_if=s.condition.run_if)
                 for s in (prepared.steps[n] for n in prepared.order)]
        stack = prepared.stack
        return Plan(stack.name, stack.version, stack.digest, steps, self.setup.identity)

    @activity.defn(name=STEP_ACTIVITY)
    async def run_step(self, inp: StepInput) -> StepOutput:
        """Verify the pack here, re-hash the step's upstream artifacts, run the step sealed.

        Heartbeats while the step runs; when Temporal cancels the attempt (its heartbeat timed out,
        the run was cancelled) the step's sandbox is killed.
        """
        info = activity.info()
        pids: dict[str, int] = {}
        cancelled = threading.Event()
        work = asyncio.ensure_future(asyncio.to_thread(self._run_step, inp, info.attempt, pids, cancelled))
        beat = max(0.2, (info.heartbeat_timeout.total_seconds() / 3) if info.heartbeat_timeout else 5.0)
        try:
            while not work.done():
                activity.heartbeat(inp.step)
                await asyncio.wait({work}, timeout=beat)
        except asyncio.CancelledError:
            cancelled.set()
            for pid in list(pids.values()):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self._log(f"✗ {inp.ref.run}/{inp.step}: cancelled; its sandbox was killed")
            raise
        return work.result()

    def _run_step(self, inp: StepInput, attempt: int, pids: dict[str, int],
                  cancelled: threading.Event | None = None) -> StepOutput:
        cancelled = cancelled or threading.Event()
        setup = self.setup
        prepared = self.verified(inp.ref)
        step = prepared.steps.get(inp.step)
        if step is None or not is_safe_name(inp.step):
            self._refuse("step_not_found", f'no step "{inp.step}" in {prepared.stack.name}')
        if inp.trust not in TRUST_LEVELS:
            self._refuse("usage", f"trust {inp.trust!r} is not one of {', '.join(TRUST_LEVELS)}")
        trust = "strict" if "strict" in (inp.trust, setup.trust) else "normal"
        sandbox = self._sandbox_for(prepared)
        try:
            results = {d: msgspec.convert(v, StepResult) for d, v in inp.upstream.items()}
        except msgspec.ValidationError as exc:
            self._refuse("usage", f"upstream results of {inp.step} are not step results: {exc}")
        artifacts, statuses = reports.upstream(step.deps, prepared, results, self.store, trust)
        # A folder of its own per activity execution: the same step delivered twice (a duplicate task, a
        # foreign workflow reusing a run id) neither collides nor shares files.
        runs = setup.workspace.state / "worker" / inp.ref.run
        runs.mkdir(parents=True, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix=f"{inp.step}.{attempt}.", dir=runs))
        # The shared store is reachable by every machine that mounts it: a verified artifact is read once,
        # re-hashed from the bytes read, and the step is given a private copy of those bytes (a file rewritten
        # in the store after the check, or while the step runs, does not reach it).
        for key, host in artifacts.items():
            if host is None or statuses.get(key) != "verified":
                continue
            dep, output = key.split("/", 1)
            status, data = self.store.read(results[dep].artifacts[output].blake3, MAX_ARTIFACT_BYTES)
            if data is None:
                statuses[key] = status
                artifacts[key] = host if status == "integrity_mismatch" and trust == "normal" else None
                continue
            copy = base / "in" / dep / output
            copy.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(copy, data, mode=0o444)
            artifacts[key] = str(copy)
        # As locally: only a succeeded upstream vouches for its artifacts (a failed or skipped one,
        # upstream of an ``always`` or ``failure`` step, has none, which is no reason to refuse).
        untrusted = sorted(k for k, v in statuses.items() if v != "verified"
                           and (k.split("/", 1)[0] not in results
                                or results[k.split("/", 1)[0]].status == "succeeded"))
        if untrusted and trust == "strict":
            result = StepResult(status="skipped", skill=str(step.record["skillRef"]), skillDigest=step.skill.digest,
                                fingerprint=step.fingerprint, concurrency=step.concurrency,
                                reason="upstream_untrusted", worker=setup.identity,
                                detail="trust strict: " + ", ".join(f"{k} is {statuses[k]}" for k in untrusted))
            result.upstream_status = statuses
            self._log(f"– {inp.ref.run}/{inp.step} skipped: {result.detail}")
            return StepOutput(msgspec.to_builtins(result), describe_sandbox(sandbox, prepared))
        skill_dir, step_dir = base / "skill", base / "step"
        private_copy(step.skill, skill_dir)
        agent = None
        if step.skill.instruction_only:  # carried out by this worker's own agent runner (.lodec/agent.toml)
            from ..agent import AGENT_FILE, check_paths, load_agent

            ws = setup.workspace
            try:
                agent = load_agent(ws.state / AGENT_FILE)
                if agent is not None:  # as a local run checks: nothing of the workspace, the state or the store
                    check_paths(agent, [ws.root, *ws.state_paths(), ws.home, setup.store])
            except LodecError as exc:
                self._refuse(exc.code, str(exc))
        ctx = StepContext(inp.ref.run, prepared.stack, setup.workspace, sandbox, self.store, trust,
                          setup.environ, hidden=(setup.store,), agent=agent)
        with self._concurrency(step.concurrency, cancelled):
            self._log(f"▶ {inp.ref.run}/{inp.step} started (attempt {attempt})")
            result = execute_step(ctx, step, step_dir, skill_dir, artifacts, statuses, pids)
        result.worker = setup.identity
        logs = [self._keep(step_dir / f"{s}.log") for s in ("stdout", "stderr")]
        mark = "✓" if result.status == "succeeded" else "✗"
        self._log(f"{mark} {inp.ref.run}/{inp.step} {result.status}" + (f": {result.reason}" if result.reason else ""))
        return StepOutput(msgspec.to_builtins(result), describe_sandbox(sandbox, prepared), logs[0], logs[1])

    @contextmanager
    def _concurrency(self, concurrency: str, cancelled: threading.Event) -> Iterator[None]:
        """Hold this workspace's concurrency locks for a step of class ``concurrency`` (``read``, ``write``,
        ``exclusive``; ``docs/skill-contract.md`` §Concurrency) while it runs.

        The workflow schedules by class, but a duplicated task or a foreign workflow could deliver two
        writers at once: every worker on this workspace (flock, so across processes) holds ``exclusive.lock``
        shared for ``read``/``write`` steps and exclusively for ``exclusive`` ones, and ``write.lock``
        exclusively for ``write`` steps. Waiting polls, so a cancelled attempt stops waiting and never starts.
        """
        folder = self.setup.workspace.state / "worker"
        wanted = [(folder / "exclusive.lock", concurrency != "exclusive")]
        if concurrency == "write":
            wanted.append((folder / "write.lock", False))
        with ExitStack() as held:
            for path, shared in wanted:
                while True:
                    try:
                        held.enter_context(locked(path, shared=shared, wait=False))
                        break
                    except BlockingIOError:
                        if cancelled.wait(0.1):
                            raise LodecError("cancelled while waiting for another step of this workspace",
                                             code="interrupted") from None
            yield

    def _keep(self, log: Path) -> str | None:
        """Put a step log into the shared store (the submitter copies it into its run); its blake3."""
        try:
            return self.store.put(read_bounded(log, MAX_ARTIFACT_BYTES)).blake3
        except LodecError:
            return None
