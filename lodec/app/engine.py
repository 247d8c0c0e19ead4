"""Use cases of the Temporal engine (``docs/temporal.md``): ``run_temporal`` submits a verified
stack to Temporal workers and records the run as a local run does; ``serve_worker`` is one worker.

The submitter verifies exactly as ``lodec run`` does (``verify_target``, then every skill against
its pin), puts the verified stack as a ``.lodepack`` into the shared content-addressed store, and
starts a workflow carrying only identifiers: the pack's digest, the store, the stack digest, step
names, the run id. Each worker fetches the pack by digest, re-hashes it and verifies it against
ITS OWN trust policy and ITS OWN installed skills before any activity runs a step
(``lodec.run.temporal.activities``). ``temporalio`` is imported only here, lazily, and below.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LodecError
from ..run.temporal.connect import Connection
from .options import OptionsError, TrustOptions
from .runs import RunRequest
from .verify import verify_target

if TYPE_CHECKING:
    from ..run.executor import PreparedRun
    from ..store.records import RunRecord
    from ..store.workspace import Workspace

#: Pack skills a worker may run: its own installed copies (default), or those the verified pack carries.
SKILL_SOURCES = ("workspace", "pack")


@dataclass(frozen=True)
class TemporalOptions(Connection):
    """Where the Temporal service is and how lodec uses it (``docs/temporal.md`` §Options): the
    ``Connection`` fields, then these keyword-only ones.

    ``store``: the content-addressed directory every worker and the submitter reach (packs,
    artifacts, step logs). ``heartbeat_s``: a step's heartbeat timeout in seconds (a worker lost
    mid-step is noticed after it); ``attempts``: attempts per step in all (``workflow.step_retry_policy``).
    ``api_key_env``: the environment variable holding an API key (never on the command line).
    """

    store: str = field(kw_only=True)
    api_key_env: str | None = field(default=None, kw_only=True)
    heartbeat_s: float = field(default=10.0, kw_only=True)
    attempts: int = field(default=3, kw_only=True)

    def connection(self) -> Connection:
        """The ``Connection``, its ``api_key`` read from ``api_key_env`` when that is set.

        Raises:
            OptionsError: ``api_key_env`` names an unset or empty variable.
        """
        if self.api_key_env is None:
            return self
        key = os.environ.get(self.api_key_env) or None
        if key is None:
            raise OptionsError(f"--api-key-env {self.api_key_env}: the variable is unset or empty",
                               param_hint="--api-key-env")
        return replace(self, api_key=key)


def _require_extra() -> None:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        raise LodecError("the Temporal engine needs the temporal extra: pip install 'lodec[temporal]'",
                         code="engine_unavailable") from None


def _store_dir(path: str) -> Path:
    store = Path(path)
    if not store.is_dir():
        raise LodecError("the shared store must be an existing directory every worker reaches",
                         code="file_not_found", file=path)
    return store.resolve()


# ------------------------------------------------------------------ submitter


def run_temporal(target: str, workspace: Workspace, trust: TrustOptions | None, request: RunRequest,
                 temporal: TemporalOptions, *, steps_dir: str | None = None) -> RunRecord:
    """Verify ``target`` as ``lodec run`` does, run it on Temporal workers, record it here; the run record.

    The record (``runs/<id>/run.json``, ``journal.md``, ``provenance.json``) is the local one's, with
    each step's ``worker``; artifacts and step logs are copied from the shared store into this
    workspace's store (re-hashed on the way), so ``lodec artifact``, ``logs`` and ``journal`` work.

    Raises:
        VerificationFailed, RunError, OptionsError, LodecError: before anything is submitted.
        EngineError: the Temporal service cannot be reached (``engine_unavailable``).
        Step failures and worker refusals do not raise: they are in the record.
    """
    from ..run.executor import TRUST_LEVELS, new_run_id, prepare_run, utc_now
    from ..run.schedule import default_jobs
    from ..sign.dsse import MAX_ENVELOPE_BYTES
    from ..store.cas import Store
    from .signing import verified_pack_bytes
    from .verify import envelope_path_for, read_optional

    # A usage error is reported as one whether or not the extra is installed.
    if request.only or request.reuse is not None:
        raise OptionsError("--step and --reuse are local-engine options")
    _require_extra()
    if request.allow_unsandboxed:
        raise OptionsError("--allow-unsandboxed is each worker's own choice (lodec worker --allow-unsandboxed)")
    if request.trust not in TRUST_LEVELS:
        raise OptionsError(f"trust must be strict or normal, not {request.trust!r}")
    store_dir = _store_dir(temporal.store)
    conn = temporal.connection()
    result = verify_target(target, workspace, trust, steps_dir=steps_dir)
    if request.on_verified is not None and result.ok:
        request.on_verified(result)
    prepared = prepare_run(result.require(), result.skills)
    if result.pack is not None:
        pack = result.pack
        data = verified_pack_bytes(result, pack.manifest_name, pack.envelope)
    else:
        envelope = prepared.stack.envelope or read_optional(envelope_path_for(target), MAX_ENVELOPE_BYTES)
        data = verified_pack_bytes(result, Path(target).name, envelope)
    shared = Store(store_dir)
    pack_digest = "blake3:" + shared.put(data).blake3
    run_id = new_run_id()
    jobs = request.jobs or default_jobs()
    from ..run.temporal.types import PackRef, RunInput

    inp = RunInput(PackRef(run_id, pack_digest, str(store_dir), prepared.stack.digest), steps=list(prepared.order),
                   jobs=jobs, trust=request.trust, heartbeat_s=temporal.heartbeat_s, attempts=temporal.attempts)
    return _Submitted(prepared, workspace, shared, conn, inp, request).run(utc_now)


class _Submitted:
    """One submitted run: follows the workflow, fires step events, writes the records."""

    def __init__(self, prepared: PreparedRun, workspace: Workspace, shared: Any, conn: Connection, inp: Any,
                 request: RunRequest) -> None:
        self.prepared, self.workspace, self.shared, self.conn, self.inp = prepared, workspace, shared, conn, inp
        self.request = request
        self.seen_start: set[str] = set()
        self.seen_end: set[str] = set()
        self.done: dict[str, Any] = {}  # step -> StepOutput, as the progress query last showed it

    def run(self, utc_now: Callable[[], str]) -> RunRecord:
        import time

        from ..store import records
        from ..store.cas import Store
        from ..store.records import RunRecord, StackRef

        stack, ws = self.prepared.stack, self.workspace
        run_dir = ws.run_dir(self.inp.ref.run)
        try:
            ws.ensure_state()
            (run_dir / "steps").mkdir(parents=True)
        except OSError as exc:
            from ..errors import FileUnwritable

            raise FileUnwritable(f"cannot prepare the run: {exc.strerror or exc}",
                                 file=str(exc.filename or run_dir)) from None
        t0 = time.monotonic()
        record = RunRecord(
            format=records.RUN_FORMAT, run=self.inp.ref.run, status="running",
            stack=StackRef(name=stack.name, version=stack.version, digest=stack.digest,
                           signedBy=list(stack.signed_by)),
            skills={ref: s.digest for ref, s in sorted(self.prepared.skills.items())},
            workspace=str(ws.root), trust=self.inp.trust, jobs=self.inp.jobs,
            sandbox=f"{self.conn.describe()} (pack {self.inp.ref.pack})", started=utc_now(),
            order=list(self.prepared.order), steps={})
        from ..run.temporal.connect import EngineError
        from ..run.temporal.submit import follow

        signum: int | None = None
        with records.live_run(ws):
            records.write_run(ws, record)
            try:
                out = asyncio.run(follow(self.conn, self.inp, on_progress=self._progress))
            except KeyboardInterrupt:
                signum, out = int(signal.SIGINT), None
            except asyncio.CancelledError:  # SIGTERM
                signum, out = int(signal.SIGTERM), None
            except EngineError as exc:
                if not exc.started:  # nothing was submitted: no run to record, as for any refusal before a run
                    import shutil

                    shutil.rmtree(run_dir, ignore_errors=True)
                    raise
                from ..run.temporal.types import RunOutput

                out = RunOutput(refused="workflow_failed", detail=str(exc))
            results = self._results(out)
            sandboxes = sorted({o.sandbox for o in (out.steps.values() if out else ()) if o.sandbox})
            record.sandbox = self.conn.describe() + (f"; workers: {' | '.join(sandboxes)}" if sandboxes else "")
            record.steps = results
            failed = any(r.status != "succeeded" for r in results.values())
            if signum is not None:
                record.status, record.exit_code = "interrupted", 128 + signum
            else:
                record.status, record.exit_code = ("failed", 1) if failed else ("succeeded", 0)
            record.ended = utc_now()
            record.duration_ms = round((time.monotonic() - t0) * 1000, 3)
            local = Store(ws.cas)
            for rec in results.values():
                for digest in rec.artifacts.values():
                    _copy_blob(self.shared, local, digest.blake3)
            records.write_run(ws, record)
        from ..run import reports

        reports.write_journal(run_dir, record, local)
        reports.write_provenance(run_dir, record, self.prepared.stack)
        return record

    def _results(self, out: Any) -> dict[str, Any]:
        import msgspec

        from ..store.records import StepResult

        steps = self.prepared.steps
        results: dict[str, StepResult] = {}
        for name in self.prepared.order:
            step = steps[name]
            base = StepResult(status="skipped", skill=str(step.record["skillRef"]), skillDigest=step.skill.digest,
                              fingerprint=step.fingerprint, concurrency=step.concurrency)
            if out is None and name in self.done:  # ended before the interruption
                base = msgspec.convert(self.done[name].result, StepResult)
            elif out is None:
                base.reason, base.detail = "interrupted", "not run, or not finished: lodec run was interrupted"
            elif out.refused is not None:
                base.reason, base.detail = out.refused, f"not run: {out.detail}"
                base.status = "failed" if out.refused == "workflow_failed" else "skipped"
            elif name in out.steps:
                try:
                    base = msgspec.convert(out.steps[name].result, StepResult)
                except msgspec.ValidationError as exc:  # e.g. a digest that is not 64 hex digits
                    base.status, base.reason = "failed", "worker_failed"
                    base.detail = f"the worker's result is not a step result: {exc}"
                else:
                    self._logs(name, out.steps[name])
            else:
                base.reason, base.detail = "interrupted", "not run"
            results[name] = base
            if name not in self.seen_end:
                self._event("end", name, base)
        return results

    def _progress(self, progress: dict[str, Any]) -> None:
        import msgspec

        from ..run.temporal.types import StepOutput
        from ..store.records import StepResult

        # Ends first (each after its own start), then the starts of steps still running: a step that
        # started between two polls started after the ends it waited for.
        done = progress.get("done", {})
        for name, raw in done.items():
            if name in self.prepared.steps and name not in self.seen_end:
                try:
                    output = msgspec.convert(raw, StepOutput)
                    result = msgspec.convert(output.result, StepResult)
                except msgspec.ValidationError:
                    continue
                self.done[name] = output
                self._logs(name, output)
                self._event("end", name, result)
        for name in progress.get("started", []):
            if name in self.prepared.steps and name not in self.seen_start and name not in done:
                self._event("start", name, None)

    def _logs(self, name: str, output: Any) -> None:
        """Copy a step's logs from the shared store into ``runs/<id>/steps/<step>/`` (once)."""
        from ..files import atomic_write
        from ..store.cas import MAX_ARTIFACT_BYTES

        folder = self.workspace.step_dir(self.inp.ref.run, name)
        for stream, digest in (("stdout", output.stdout), ("stderr", output.stderr)):
            path = folder / f"{stream}.log"
            if digest is None or path.exists():
                continue
            status, data = self.shared.read(digest, MAX_ARTIFACT_BYTES)
            if data is not None:
                atomic_write(path, data)

    def _event(self, kind: str, name: str, result: Any) -> None:
        from ..run.executor import StepEvent

        if kind == "start":
            self.seen_start.add(name)
        else:
            if name not in self.seen_start and result is not None and result.started is not None:
                self._event("start", name, None)  # it ran between two polls: its start line first
            self.seen_end.add(name)
        if self.request.events is None:
            return
        folder = self.workspace.step_dir(self.inp.ref.run, name)
        ran = result is not None and result.started is not None
        try:
            self.request.events(StepEvent(kind, self.inp.ref.run, name, self.prepared.steps[name].concurrency, result,
                                          folder / "stdout.log" if ran else None,
                                          folder / "stderr.log" if ran else None))
        except OSError:
            pass


def _copy_blob(shared: Any, local: Any, blake3_hex: str) -> None:
    """Copy an artifact from the shared store into the workspace's, re-hashed; one that does not
    re-hash stays behind (the journal then shows it MISSING)."""
    from ..store.cas import MAX_ARTIFACT_BYTES

    try:
        status, data = shared.read(blake3_hex, MAX_ARTIFACT_BYTES)
        if data is not None:
            local.put(data)
    except LodecError:
        pass


# ------------------------------------------------------------------ worker


@dataclass(frozen=True)
class WorkerRequest:
    """How a worker runs: its ``identity`` (default ``<pid>@<host>``), steps at once (``max_steps``),
    whose skills run (``skills_from``: ``workspace``, its own installed copies, or ``pack``), and
    whether steps may run unsandboxed where no sandbox works, and the least artifact ``trust`` it runs
    steps at (``strict``: whatever a run asks, a step whose upstream artifacts do not all re-hash
    does not start here; ``normal``: a run's ``--trust normal`` is honoured)."""

    identity: str | None = None
    max_steps: int = 2
    skills_from: str = "workspace"
    allow_unsandboxed: bool = False
    trust: str = "strict"


def serve_worker(workspace: Workspace, trust: TrustOptions | None, temporal: TemporalOptions,
                 request: WorkerRequest | None = None, *, log: Callable[[str], None] | None = None,
                 on_ready: Callable[[str], None] | None = None) -> None:
    """Serve lodec runs from ``temporal.task_queue`` until SIGINT or SIGTERM.

    Every activity fetches the pack named by digest from ``temporal.store``, re-hashes it and
    verifies it here (``verify_target`` with ``trust``, this ``workspace``'s rollback state and,
    by default, this workspace's installed skills) before a step runs.

    Raises:
        OptionsError, LodecError: before serving (bad options, the store missing, the trust policy
            unreadable); EngineError: the service cannot be reached.
    """
    # Options and the store are checked first: their errors do not depend on the extra.
    request = request or WorkerRequest()
    if request.skills_from not in SKILL_SOURCES:
        raise OptionsError(f"skills come from workspace or pack, not {request.skills_from!r}")
    if request.max_steps < 1:
        raise OptionsError("a worker runs at least one step at once")
    if request.trust not in ("strict", "normal"):
        raise OptionsError(f"--trust is strict or normal, not {request.trust!r}", param_hint="--trust")
    store = _store_dir(temporal.store)
    _require_extra()
    from ..run.executor import prepare_run
    from ..run.temporal.activities import WorkerSetup
    from ..run.temporal.worker import serve

    conn = temporal.connection()
    trust = trust or TrustOptions()
    from .options import trust_policy

    trust_policy(trust)  # a bad key or policy is refused now, not at the first activity
    pack_skills = request.skills_from == "pack"

    def verify(path: Path) -> PreparedRun:
        result = verify_target(str(path), workspace, trust, pack_skills=pack_skills)
        return prepare_run(result.require(), result.skills)

    identity = request.identity or f"{os.getpid()}@{socket.gethostname()}"
    setup = WorkerSetup(identity=identity, workspace=workspace, store=store, verify=verify,
                        allow_unsandboxed=request.allow_unsandboxed, trust=request.trust, log=log)
    workspace.ensure_state()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(conn, setup, max_steps=request.max_steps, stop=stop,
                    on_ready=(lambda: on_ready(identity)) if on_ready is not None else None)

    asyncio.run(main())
