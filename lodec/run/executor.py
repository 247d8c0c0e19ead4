"""The executor: runs a verified stack's steps, and nothing that drifted.

``prepare_run`` takes a ``VerifiedStack`` (the bytes ``lodec verify``
checked) and the skill roots, loads every skill into memory and refuses the
whole run if one is missing, invalid or no longer matches its pin
(``skill_drifted``). ``run_stack`` then schedules the DAG
(``schedule.may_start``), runs each step under the step contract of
``docs/skill-contract.md`` and records the run (``records``).
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import FileUnwritable, LodecError, RunError, SkillError
from ..names import is_safe_name
from ..stack.conditions import Condition, Decision, condition_of, decide
from ..stack.verify import VerifiedStack
from ..store import records
from ..store.cas import MAX_ARTIFACT_BYTES, Store
from ..store.records import Reused, RunRecord, StackRef, StepResult
from ..store.workspace import Workspace
from . import reports
from .sandbox import (
    IN_DIR,
    OUT_DIR,
    SKILL_DIR,
    Sandbox,
    StepMounts,
    become_subreaper,
    bwrap_argv,
    can_unshare_network,
    kill_strays,
    landlock_preexec,
    probe_sandbox,
    step_environment,
)
from .schedule import Batch, batches, one_pass
from ..files import open_regular, read_bounded
from ..format.tree import SkillTree, read_tree, skill_name, tree_digest
from .agent import AgentRunner, path_problem, resolve_program
from .skills import Skill, materialize, skill_from_tree

TRUST_LEVELS = ("strict", "normal")
#: The format of the JSON request a step reads on stdin (docs/skill-contract.md).
REQUEST_FORMAT = "lodec-step-request/v1"
_HEADLINE_CHARS = 200


@dataclass(frozen=True)
class PreparedStep:
    """A verified step bound to its verified skill."""

    name: str
    fingerprint: str
    record: dict[str, Any]
    skill: Skill
    deps: tuple[str, ...]
    outputs: tuple[str, ...]
    #: When it runs (``runIf``; ``lodec.stack.conditions``): exact, or ``prepare_run`` refuses the stack.
    condition: Condition = Condition()

    @property
    def concurrency(self) -> str:
        return self.skill.config.concurrency


@dataclass(frozen=True)
class PreparedRun:
    """A stack ready to run: every step bound to a skill whose digest matches its pin."""

    stack: VerifiedStack
    steps: dict[str, PreparedStep]
    skills: dict[str, Skill]

    @property
    def order(self) -> tuple[str, ...]:
        return self.stack.order

    def batches(self) -> list[Batch]:
        """The schedule ``lodec plan`` prints (``schedule.batches``)."""
        return batches(self.order, {n: s.deps for n, s in self.steps.items()},
                       {n: s.concurrency for n, s in self.steps.items()},
                       {n: s.condition.run_if for n, s in self.steps.items()})


def prepare_run(stack: VerifiedStack, trees: Mapping[str, SkillTree]) -> PreparedRun:
    """Bind each verified step to its skill: the trees verification read and checked against the pins.

    Args:
        stack: a verified stack (``skill-stack-v2``, with ``skillDigests``).
        trees: ``skillRef`` -> the skill's files in memory, each matching its
            pin (``lodec.app.verify.verify_target`` collects them; nothing is
            read from disk again).

    Raises:
        RunError: ``skill_not_lodec`` (a step's ``skillRef`` names another system's step: ``gha:``,
            ``argo:``, ``nanostack:``), ``stack_unlocked`` (no ``skillDigests``: run ``lodec lock``),
            ``skill_drifted`` (a tree that does not hash to its pin),
            ``skill_not_found`` (a used skill without a tree), ``skill_invalid``
            (no valid ``SKILL.md`` / ``lodec.toml``), ``output_name_unsafe``,
            ``condition_invalid`` (a ``runIf`` lodec does not know) or
            ``condition_unsupported`` (a verbatim ``runIfExpression`` lodec
            cannot evaluate); the message lists every problem.
    """
    foreign = sorted({ref for v in stack.steps.values() if not (ref := str(v.record["skillRef"])).startswith("skill:")})
    if foreign:  # an imported workflow: `lodec lock` cannot pin what another system runs, so do not send users there
        users = sum(1 for v in stack.steps.values() if str(v.record["skillRef"]) in foreign)
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise RunError(f"stack {stack.name}: {users} of {len(stack.steps)} steps name what another system runs "
                       f"({shown}), not lodec skills (skill:<name>): it was imported for review (verify, diff, "
                       "check-pins); `lodec plan` lists each step lodec cannot run", code="skill_not_lodec")
    pins: dict[str, str] | None = stack.manifest.get("skillDigests")
    if pins is None:
        raise RunError(f"stack {stack.name} pins no skills; run `lodec lock` on it first (and sign again)",
                       code="stack_unlocked")
    problems: list[tuple[str, str]] = []
    skills: dict[str, Skill] = {}
    for ref in sorted({str(v.record["skillRef"]) for v in stack.steps.values()}):
        tree = trees.get(ref)
        if tree is None:
            problems.append(("skill_not_found", f"{ref}: not among the verified skills"))
            continue
        if tree.digest != pins.get(ref):
            problems.append(("skill_drifted", f"{ref} drifted: pinned {pins.get(ref)}, {tree.source} is {tree.digest}"))
            continue
        try:
            skills[ref] = skill_from_tree(tree)
        except SkillError as exc:
            problems.append((exc.code, f"{ref}: {exc}"))
    steps: dict[str, PreparedStep] = {}
    for name in stack.order:
        vein = stack.steps[name]
        outputs = tuple(vein.record.get("outputs", []))
        bad = [o for o in outputs if not is_safe_name(o)] + [o for o in set(outputs) if outputs.count(o) > 1]
        if bad:
            problems.append(("output_name_unsafe", f'step "{name}": output {bad[0]!r} is not a safe, unique file name'))
        try:
            condition = condition_of(vein.record, step=name)
        except LodecError as exc:
            problems.append((exc.code, exc.message))
            continue
        if not condition.exact:
            problems.append(("condition_unsupported",
                             f'step "{name}" runs {condition.describe()}, which lodec cannot evaluate '
                             "(running it on another condition would change what the workflow does)"))
            continue
        ref = str(vein.record["skillRef"])
        if ref in skills:
            steps[name] = PreparedStep(name, vein.fingerprint, vein.record, skills[ref],
                                       tuple(vein.record.get("dependsOn", [])), outputs, condition)
    if problems:
        raise RunError(f"refusing to run {stack.name}, nothing was started: " + "; ".join(m for _, m in problems),
                       code=problems[0][0])
    return PreparedRun(stack, steps, skills)


@dataclass
class RunOptions:
    """How to run: the ``workspace`` (project and every state path), ``jobs`` at most at once,
    artifact ``trust`` (``strict``/``normal``), the parent environment steps draw from, and
    whether running without a sandbox is allowed (``allow_unsandboxed``)."""

    workspace: Workspace
    jobs: int = 2
    trust: str = "strict"
    allow_unsandboxed: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: Called on the scheduler's thread when a step starts and when it ends (``StepEvent``).
    events: Callable[[StepEvent], None] | None = None
    #: The sandbox to use; ``None`` probes this machine (``sandbox.probe_sandbox``).
    sandbox: Sandbox | None = None
    #: Run only these steps (empty: all). Their other dependencies' artifacts come from ``reuse``.
    only: tuple[str, ...] = ()
    #: An earlier run record of the same stack whose step results the ``only`` steps build on.
    reuse: RunRecord | None = None
    #: The workspace's agent runner (``.lodec/agent.toml``), which runs instruction-only skills.
    agent: AgentRunner | None = None


@dataclass(frozen=True)
class StepEvent:
    """A step started (``kind`` ``start``) or ended (``end``; ``result`` set) in run ``run``.

    ``stdout``/``stderr`` are the step's log files (kept with the run) once it
    ran; ``None`` for a step that never started (skipped).
    """

    kind: str
    run: str
    step: str
    concurrency: str
    result: StepResult | None = None
    stdout: Path | None = None
    stderr: Path | None = None


def utc_now() -> str:
    """The current UTC time, ISO 8601 with microseconds and ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id() -> str:
    """A sortable, unique run id: ``YYYYMMDDTHHMMSS.ffffffZ-<8 hex>`` (UTC, microseconds)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + os.urandom(4).hex()


def run_stack(run: PreparedRun, options: RunOptions) -> RunRecord:
    """Run every step of ``run``; returns the run record (also written as ``runs/<id>/run.json``).

    Every step runs sealed (``lodec.run.sandbox``). Refuses before anything
    starts (``RunError``) when no sandbox works here (``sandbox_unavailable``,
    naming why) and ``allow_unsandboxed`` is false, or when ``trust`` or
    ``jobs`` is invalid. Step failures do not raise: they are in the record,
    ``status`` ``failed``. SIGINT or SIGTERM (when called on the main thread)
    stop the running steps and end the run ``interrupted`` with exit code
    130 / 143.
    """
    if options.trust not in TRUST_LEVELS:
        raise RunError(f"trust must be strict or normal, not {options.trust!r}", code="usage")
    if options.jobs < 1:
        raise RunError("jobs must be at least 1", code="usage")
    _check_selection(run, options)
    _check_agent(run, options)
    sandbox = choose_sandbox(run, options.sandbox, allow_unsandboxed=options.allow_unsandboxed)
    return _Executor(run, options, sandbox).run()


def choose_sandbox(run: PreparedRun, sandbox: Sandbox | None = None, *, allow_unsandboxed: bool = False) -> Sandbox:
    """The sandbox ``run``'s steps will run in: ``sandbox``, or this machine's (``probe_sandbox``).

    Raises:
        RunError: ``sandbox_unavailable`` when no sandbox works here (naming why) and
            ``allow_unsandboxed`` is false, when Landlock cannot deny the network to a skill that
            does not declare it, or when lodec cannot become the subreaper of what steps leave.
    """
    sandbox = sandbox or probe_sandbox()
    if not sandbox.available and not allow_unsandboxed:
        raise RunError(f"cannot seal the steps: {sandbox.reason}. Without a sandbox a step could read and write "
                       "outside its declared paths, reach the network, and see or signal lodec. Nothing was started; "
                       "--allow-unsandboxed runs the steps with your full access", code="sandbox_unavailable")
    offline = sorted(r for r, s in run.skills.items() if not s.config.network)
    why = can_unshare_network() if sandbox.kind == "landlock" and offline else None
    if why is not None and allow_unsandboxed:
        sandbox = Sandbox(None, "", why)
    elif why is not None:
        raise RunError(f"cannot deny the network to {', '.join(offline)}: Landlock confines TCP only, and {why}. "
                       "Nothing was started; --allow-unsandboxed runs them with the network", code="sandbox_unavailable")
    if sandbox.kind == "landlock" and not become_subreaper():
        raise RunError("cannot adopt what steps leave behind (PR_SET_CHILD_SUBREAPER failed): Landlock alone "
                       "cannot stop a step from outliving the run. Nothing was started", code="sandbox_unavailable")
    return sandbox


def describe_sandbox(sandbox: Sandbox, run: PreparedRun) -> str:
    """The ``sandbox`` line of a run record: the mechanisms that sealed ``run``'s steps."""
    if not sandbox.available:
        return "none (--allow-unsandboxed)"
    networked = any(s.config.network for s in run.skills.values())
    line = sandbox.describe(network=False)
    return line + ("; network namespace shared by skills that declare network = true" if networked else "")


def _check_agent(run: PreparedRun, options: RunOptions) -> None:
    """Refuse, before anything starts, instruction-only skills without an agent runner, and an agent
    runner whose ``paths`` would show the workspace or lodec's state to a step."""
    agentic = sorted(ref for ref, s in run.skills.items() if s.instruction_only)
    if not agentic:
        return
    ws = options.workspace
    if options.agent is None:
        raise RunError(f"{', '.join(agentic)} hold instructions only (SKILL.md, no command) and this workspace has "
                       f"no agent runner: configure one in {ws.state / 'agent.toml'} (docs/skill-contract.md). "
                       "Nothing was started", code="agent_not_configured")
    inner = [ws.root.resolve(), *(p.resolve() for p in ws.state_paths()), ws.home.resolve()]
    for path in options.agent.paths:
        why = path_problem(path, inner)
        if why is not None:
            raise RunError(f"{options.agent.source}: paths: {path} {why}. Nothing was started", code="agent_invalid")


def _check_selection(run: PreparedRun, options: RunOptions) -> None:
    """Refuse an ``only`` naming unknown steps, and a ``reuse`` run of another stack (or version of it)."""
    unknown = sorted(set(options.only) - set(run.steps))
    if unknown:
        raise RunError(f'no step "{unknown[0]}" in {run.stack.name}', code="step_not_found")
    if options.reuse is not None:
        if not options.only:
            raise RunError("reusing a run needs the steps to run again (--step)", code="usage")
        theirs = options.reuse.stack.digest
        if theirs != run.stack.digest:
            raise RunError(f"run {options.reuse.run} ran stack {theirs}, not {run.stack.digest}: "
                           "artifacts are reused only within one verified stack", code="reuse_mismatch")


class _Executor:
    def __init__(self, run: PreparedRun, options: RunOptions, sandbox: Sandbox) -> None:
        self.run_plan = run
        self.options = options
        self.sandbox = sandbox
        self.store = Store(options.workspace.cas)
        self.run_id = new_run_id()
        self.run_dir = options.workspace.run_dir(self.run_id)
        self.selected = [n for n in run.order if not options.only or n in options.only]
        self.selected_set = set(self.selected)
        # Reused results stand in for the steps not selected: scheduling and upstream re-hashing see them.
        # A step downstream of a selected one is not reused: its old artifacts came from the old upstream.
        stale: set[str] = set()
        for name in run.order:
            if name not in self.selected and any(d in stale or d in self.selected for d in run.steps[name].deps):
                stale.add(name)
        earlier = options.reuse.step_results() if options.reuse is not None else {}
        self.reused: dict[str, StepResult] = {
            name: rec for name, rec in earlier.items()
            if name in run.steps and name not in self.selected and name not in stale}
        self.results: dict[str, StepResult] = dict(self.reused)
        self.events: queue.Queue[tuple[str, StepResult]] = queue.Queue()
        self.pids: dict[str, int] = {}  # running steps' process groups, killed if lodec is interrupted
        self.running: dict[str, str] = {}  # running step -> its concurrency
        # At most `jobs` steps run at once: that many threads, started once (a thread per step cost ~0.8 ms).
        self.pool = _Workers(options.jobs)
        self.context = StepContext(self.run_id, run.stack, options.workspace, sandbox, self.store, options.trust,
                                   options.environ, agent=options.agent)

    def run(self) -> RunRecord:
        plan, stack = self.run_plan, self.run_plan.stack
        workspace = self.options.workspace
        try:
            workspace.ensure_state()
            self.run_dir.mkdir(parents=True)
            (self.run_dir / "steps").mkdir()
            for ref, skill in plan.skills.items():
                private_copy(skill, workspace.run_skill_dir(self.run_id, skill_name(ref)))
        except OSError as exc:  # a read-only or full state directory: one line, nothing started
            raise FileUnwritable(f"cannot prepare the run: {exc.strerror or exc}",
                                 file=str(exc.filename or self.run_dir)) from None
        started, t0 = utc_now(), time.monotonic()
        record = RunRecord(
            format=records.RUN_FORMAT,
            run=self.run_id,
            status="running",
            stack=StackRef(name=stack.name, version=stack.version, digest=stack.digest,
                           signedBy=list(stack.signed_by)),
            skills={ref: s.digest for ref, s in sorted(plan.skills.items())},
            workspace=str(workspace.root),
            trust=self.options.trust,
            jobs=self.options.jobs,
            sandbox=self._mechanisms(),
            started=started,
            order=list(self.selected),
            steps={},
            reused=Reused(run=self.options.reuse.run, steps=self.reused) if self.options.reuse is not None else None,
        )
        signum: int | None = None
        with records.live_run(workspace):
            records.write_run(workspace, record)
            with _signals_raise() as caught:
                try:
                    self._schedule()
                except (KeyboardInterrupt, _Interrupted) as exc:
                    signum = exc.signum if isinstance(exc, _Interrupted) else signal.SIGINT
                finally:
                    if signum is not None or caught.signum is not None:
                        signum = signum or caught.signum
                        self._stop_all()
            for name in self.selected:
                if name not in self.results:
                    self.results[name] = _interrupted(plan.steps[name], signum)
            failed = any(self.results[n].status != "succeeded" for n in self.selected)
            if signum is not None:
                record.status, record.exit_code = "interrupted", 128 + int(signum)
            else:
                record.status, record.exit_code = ("failed", 1) if failed else ("succeeded", 0)
            record.ended = utc_now()
            record.duration_ms = round((time.monotonic() - t0) * 1000, 3)
            record.steps = {name: self.results[name] for name in self.selected}
            records.write_run(workspace, record)
        self.pool.shutdown()
        reports.write_journal(self.run_dir, record, self.store)
        reports.write_provenance(self.run_dir, record, stack)
        return record

    def _mechanisms(self) -> str:
        return describe_sandbox(self.sandbox, self.run_plan)

    def _stop_all(self) -> None:
        """Kill every running step's sandbox, then collect what the workers report (bounded wait)."""
        for pid in list(self.pids.values()):
            _kill_group(pid)
        deadline = time.monotonic() + 10
        while self.running and time.monotonic() < deadline:
            try:
                name, result = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.running.pop(name, None)
            result.reason = result.reason if result.reason not in (None, "exit_nonzero") else "interrupted"
            result.status = "failed"
            result.detail = "stopped: lodec run was interrupted"
            self.results[name] = result

    def _schedule(self) -> None:
        pending = list(self.selected)
        running = self.running
        while pending or running:
            while self._advance(pending, running):
                pass
            if running:
                name, result = self.events.get()
                running.pop(name)
                self._finish(name, result)

    def _advance(self, pending: list[str], running: dict[str, str]) -> bool:
        """One pass over ``pending`` in topological order: skip, refuse or start what can be.
        Returns whether anything changed (a finished skip can unblock later steps).

        The pass stops while ``jobs`` steps run: nothing more can start, and skips
        wait for the next pass (the last passes, with nothing running, see every
        step), so a run of N independent steps costs O(N) passes of O(1) each
        rather than O(N^2).
        """
        def decision(name: str) -> Decision:
            # A dependency neither selected nor reused never runs here: its artifacts are "missing".
            results = self.results
            step = self.run_plan.steps[name]
            upstream = {d: (results[d].status, results[d].reason) if d in results else None for d in step.deps
                        if d in results or d in self.selected_set}
            return decide(step.condition, upstream)

        changed = False
        steps = self.run_plan.steps
        for name, now in one_pass(pending, running.values, self.options.jobs, lambda n: steps[n].concurrency,
                                  decision):
            changed = True
            if now.action == "skip":
                self._finish(name, _skipped(steps[name], str(now.reason), str(now.detail)))
            else:
                self._start(steps[name], running)
        return changed

    def _start(self, step: PreparedStep, running: dict[str, str]) -> None:
        """Start ``step`` on a worker thread, unless strict trust refuses its upstream artifacts."""
        artifacts, statuses = reports.upstream(step.deps, self.run_plan, self.results, self.store, self.options.trust)
        # Only a succeeded upstream vouches for its artifacts: a failed or skipped one (upstream of an
        # ``always`` or ``failure`` step) has none, which is not a reason to refuse.
        untrusted = sorted(k for k, v in statuses.items() if v != "verified"
                           and (k.split("/", 1)[0] not in self.results
                                or self.results[k.split("/", 1)[0]].status == "succeeded"))
        if untrusted and self.options.trust == "strict":
            detail = ", ".join(f"{k} is {statuses[k]}" for k in untrusted)
            result = _skipped(step, "upstream_untrusted", f"trust strict: {detail}")
            result.upstream_status = statuses
            self._finish(step.name, result)
            return
        running[step.name] = step.concurrency
        self._event(StepEvent("start", self.run_id, step.name, step.concurrency))
        self.pool.submit(lambda: self._worker(step, artifacts, statuses))

    def _finish(self, name: str, result: StepResult) -> None:
        self.results[name] = result
        step_dir = self.options.workspace.step_dir(self.run_id, name)
        ran = result.started is not None
        self._event(StepEvent("end", self.run_id, name, result.concurrency, result,
                              step_dir / "stdout.log" if ran else None, step_dir / "stderr.log" if ran else None))

    def _event(self, event: StepEvent) -> None:
        if self.options.events is not None:
            try:
                self.options.events(event)
            except OSError:  # a closed or full terminal must not stop the run
                pass

    def _worker(self, step: PreparedStep, artifacts: dict[str, str | None], statuses: dict[str, str]) -> None:
        try:
            result = self._execute(step, artifacts, statuses)
        except LodecError as exc:  # the step's folders or logs cannot be made (read-only, full disk)
            result = _base(step)
            result.reason, result.detail = exc.code, str(exc)
        except OSError as exc:
            result = _base(step)
            result.reason, result.detail = "file_unwritable", f"{exc.filename or ''}: {exc.strerror or exc}"
        except Exception as exc:  # a lodec bug: the step fails, the run goes on
            result = _base(step)
            result.reason, result.detail = "internal_error", f"{type(exc).__name__}: {exc}"
        self.events.put((step.name, result))

    def _execute(self, step: PreparedStep, artifacts: dict[str, str | None], statuses: dict[str, str]) -> StepResult:
        ws = self.options.workspace
        return execute_step(self.context, step, ws.step_dir(self.run_id, step.name),
                            ws.run_skill_dir(self.run_id, step.skill.name), artifacts, statuses, self.pids)


@dataclass(frozen=True)
class StepContext:
    """What every step of one run shares: the run id, the verified ``stack``, the ``workspace`` the steps
    work on, the ``sandbox``, the artifact ``store``, artifact ``trust``, the parent environment
    steps draw from, and paths to keep invisible to steps besides the workspace's state (``hidden``)."""

    run_id: str
    stack: VerifiedStack
    workspace: Workspace
    sandbox: Sandbox
    store: Store
    trust: str
    environ: Mapping[str, str]
    hidden: tuple[Path, ...] = ()
    #: Runs the instruction-only skills (``lodec.run.agent``); ``None``: there are none, or none may run.
    agent: AgentRunner | None = None


def execute_step(ctx: StepContext, step: PreparedStep, step_dir: Path, skill_dir: Path,
                 artifacts: Mapping[str, str | None], statuses: dict[str, str],
                 pids: dict[str, int] | None = None) -> StepResult:
    """Run one step once, sealed, under the step contract (``docs/skill-contract.md``); its result.

    The one place a step is executed, by the local executor and by remote workers alike.
    ``step_dir`` (a new folder; its parent exists) gets the logs, and the working and output folders
    while the step runs; ``skill_dir`` holds the skill's private copy (materialised and checked by
    the caller). ``artifacts``: ``<step>/<output>`` -> host path of a re-hashed upstream artifact
    (``None`` when not shown), ``statuses`` their statuses. ``pids`` (step name -> process group) holds
    the step's sandbox while it runs, so a caller can kill it. Outputs go into ``ctx.store``.

    Step failures (exit status, timeout, outputs) are in the result; a sandbox that cannot be set up
    is the result's ``reason`` too.

    Raises:
        OSError, LodecError: ``step_dir`` or the logs cannot be made (read-only, full disk).
    """
    cfg = step.skill.config
    pids = {} if pids is None else pids
    work, out = step_dir / "work", step_dir / "out"
    os.mkdir(step_dir)
    os.mkdir(out)
    if ctx.sandbox.kind != "bubblewrap":  # bubblewrap gives the step a private tmpfs instead
        os.mkdir(work)
    sealed = ctx.sandbox.kind == "bubblewrap"  # a mount namespace: fixed paths inside
    landlocked = ctx.sandbox.kind == "landlock"
    # Inside bubblewrap the step sees its folders and upstream artifacts at fixed paths.
    inputs: dict[str, Path] = {}
    shown: dict[str, str | None] = {}
    for key, host in artifacts.items():
        if host is not None:
            inputs[key] = Path(host)
        shown[key] = f"{IN_DIR}/{key}" if host is not None and sealed else host
    out_path, skill_path = (OUT_DIR, SKILL_DIR) if sealed else (str(out), str(skill_dir))
    stack, root = ctx.stack, ctx.workspace.root
    request = {
        "request": REQUEST_FORMAT,
        "run": ctx.run_id,
        "stack": {"name": stack.name, "version": stack.version, "digest": stack.digest},
        "step": {"name": step.name, "fingerprint": step.fingerprint, "skillRef": step.record["skillRef"],
                 "dependsOn": list(step.deps), "outputs": list(step.outputs)},
        "inputs": dict(step.record.get("inputs", {})),
        "skill": {"name": step.skill.name, "digest": step.skill.digest, "read": list(cfg.read),
                  "write": list(cfg.write), "network": cfg.network},
        "workspace": str(root),
        "output_dir": out_path,
        "trust": ctx.trust,
        "upstream_artifacts": shown,
        "upstream_status": statuses,
    }
    lodec_env = {
        "LODEC_OUTPUT_DIR": out_path, "LODEC_WORKSPACE": str(root), "LODEC_SKILL_DIR": skill_path,
        "LODEC_RUN_ID": ctx.run_id, "LODEC_STEP": step.name, "LODEC_PYTHON": sys.executable,
    }
    agent = ctx.agent if step.skill.instruction_only else None
    if step.skill.instruction_only and agent is None:
        result = _base(step)
        result.reason, result.detail = "agent_not_configured", "instructions only and no agent runner configured"
        return result
    if agent is not None:
        # An instruction-only skill: the workspace's agent carries out SKILL.md, under the skill's own contract.
        skill_md = f"{skill_path}/SKILL.md"
        lodec_env["LODEC_SKILL_MD"] = skill_md
        request["skill"]["instructions"] = skill_md  # type: ignore[index]
        env = step_environment(ctx.environ, (*cfg.env, *agent.env), lodec_env)
        command = agent.argv(skill_md=skill_md, skill_dir=skill_path, output_dir=out_path, step=step.name,
                             outputs=list(step.outputs))
        program = resolve_program(command[0], env.get("PATH", ""),
                                  [root, *ctx.workspace.state_paths(), ctx.workspace.home, *ctx.hidden])
        if program is None:
            result = _base(step)
            result.reason = "agent_invalid"
            result.detail = (f"{agent.source}: command {command[0]!r} is not an absolute path nor a program on PATH "
                             "outside the workspace and lodec's state")
            return result
        command[0] = program
    else:
        env = step_environment(ctx.environ, cfg.env, lodec_env)
        command = [f"{skill_path}/{cfg.command[0]}", *cfg.command[1:]]
    tmp = step_dir / "tmp"
    if landlocked:
        tmp.mkdir()
        env["TMPDIR"] = str(tmp)  # no private /tmp without a mount namespace: a private folder instead
    result = _base(step)
    result.upstream_status = statuses
    if agent is not None:
        result.agent = list(command)
    result.started = utc_now()
    t0 = time.monotonic()
    mounts = StepMounts(
        workspace=root, read=cfg.read, write=cfg.write, skill=skill_dir, work=work, out=out, inputs=inputs,
        hidden=ctx.workspace.state_paths() + (ctx.workspace.home,) + ctx.hidden, network=cfg.network,
        tools=agent.paths if agent is not None else (),
    )
    preexec = None
    try:
        argv = bwrap_argv(ctx.sandbox, mounts, command) if sealed else command
        if landlocked:
            preexec = landlock_preexec(mounts, tmp)
    except RunError as exc:
        result.reason, result.detail = exc.code, exc.message
        result.ended, result.duration_ms = utc_now(), round((time.monotonic() - t0) * 1000, 3)
        return result
    timed_out = False
    with _new_log(step_dir / "stdout.log") as so, _new_log(step_dir / "stderr.log") as se:
        try:
            proc = subprocess.Popen(argv, cwd=step_dir if sealed else work, env=env, stdin=subprocess.PIPE,
                                    stdout=so, stderr=se,
                                    start_new_session=preexec is None, preexec_fn=preexec)
        except OSError as exc:
            result.reason = "spawn_failed"
            result.detail = f"cannot start {argv[0]}: {exc.strerror or exc}"
            result.ended, result.duration_ms = utc_now(), round((time.monotonic() - t0) * 1000, 3)
            return result
        pids[step.name] = proc.pid
        try:
            # Wall-clock, measured by lodec: a step can neither see nor stop this process.
            timed_out = _feed_and_wait(proc, json.dumps(request).encode(), cfg.timeout)
        finally:
            # The sandbox's process group; with bubblewrap the step's PID namespace dies with it,
            # and every process the step started (setsid daemons included) with the namespace.
            _kill_group(proc.pid)
            proc.wait()
            pids.pop(step.name, None)
            if landlocked:
                kill_strays(f"LODEC_RUN_ID={ctx.run_id}")
    result.ended = utc_now()
    result.duration_ms = round((time.monotonic() - t0) * 1000, 3)
    result.exit_code = proc.returncode
    result.headline = _headline(step_dir / "stdout.log")
    _remove(work)
    _remove(tmp)
    if timed_out:
        result.reason = "timeout"
        result.detail = f"ran past its {cfg.timeout} s timeout; its sandbox was killed"
    elif proc.returncode != 0:
        result.reason, result.detail = "exit_nonzero", f"exited with {proc.returncode}"
    else:
        try:
            _collect(ctx.store, step, out, result)
        except LodecError as exc:  # the store cannot take the outputs (read-only, full disk): the step fails
            result.status, result.reason, result.detail = "failed", exc.code, str(exc)
            result.artifacts = {}
    _remove(out)
    return result


def _collect(store: Store, step: PreparedStep, out: Path, result: StepResult) -> None:
    """Enforce the output rule, then store every output in the CAS."""
    declared = set(step.outputs)
    found: dict[str, int] = {}
    undeclared: list[str] = []
    with os.scandir(out) as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            if entry.name in declared and entry.is_file(follow_symlinks=False):
                found[entry.name] = st.st_size
            else:
                undeclared.append(entry.name)
    missing = sorted(declared - set(found))
    too_big = sorted(n for n, size in found.items() if size > MAX_ARTIFACT_BYTES)
    if undeclared:
        result.reason = "output_undeclared"
        result.detail = (f"left undeclared output(s) {', '.join(sorted(undeclared))}; declared: "
                         f"{', '.join(step.outputs) or 'none'}")
    elif missing:
        result.reason, result.detail = "output_missing", f"did not write {', '.join(missing)}"
    elif too_big:
        result.reason, result.detail = "output_too_large", f"{too_big[0]} is over {MAX_ARTIFACT_BYTES} bytes"
    else:
        for name in step.outputs:
            data = read_bounded(out / name, MAX_ARTIFACT_BYTES)
            result.artifacts[name] = store.put(data)
        result.status, result.reason, result.detail = "succeeded", None, None


def _base(step: PreparedStep) -> StepResult:
    """A step's result before it ran: ``failed`` until it is shown to have succeeded."""
    return StepResult(status="failed", skill=str(step.record["skillRef"]), skillDigest=step.skill.digest,
                      fingerprint=step.fingerprint, concurrency=step.concurrency)


def _skipped(step: PreparedStep, reason: str, detail: str) -> StepResult:
    result = _base(step)
    result.status, result.reason, result.detail = "skipped", reason, detail
    return result


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Workers:
    """``count`` daemon threads running submitted callables in order (a pool without
    ``concurrent.futures``, whose import costs ~4 ms of every run's start-up)."""

    def __init__(self, count: int) -> None:
        self.tasks: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self.threads = [threading.Thread(target=self._loop, daemon=True, name=f"lodec-step-{i}") for i in range(count)]
        for thread in self.threads:
            thread.start()

    def _loop(self) -> None:
        while (task := self.tasks.get()) is not None:
            task()

    def submit(self, task: Callable[[], None]) -> None:
        self.tasks.put(task)

    def shutdown(self) -> None:
        """Let the threads end once the tasks already submitted are done (not waited for)."""
        for _ in self.threads:
            self.tasks.put(None)


def _feed_and_wait(proc: subprocess.Popen[bytes], data: bytes, timeout: float) -> bool:
    """Write ``data`` to the step's stdin as it reads it, and wait until it exits or ``timeout`` seconds pass.

    Returns whether the timeout passed. Waits on a pidfd (Linux 5.3+), which
    wakes the moment the process exits: ``Popen.communicate(timeout=...)``
    polls with growing sleeps and noticed a 10 ms step only after 15 ms.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here: the standard library's polling wait
        try:
            proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            return True
        return False
    deadline = time.monotonic() + timeout
    stdin = proc.stdin
    assert stdin is not None
    fd = stdin.fileno()
    os.set_blocking(fd, False)
    view = memoryview(data)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(fd, select.POLLOUT)
    feeding = True
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            for ready, events in poller.poll(left * 1000):
                if ready == pidfd:
                    return False
                if feeding:
                    try:
                        view = view[os.write(fd, view):]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the step closed its stdin: what it did not read is its choice
                        view = view[:0]
                    if not view or events & (select.POLLERR | select.POLLHUP):
                        poller.unregister(fd)
                        feeding = False
                        _close_quietly(stdin)
    finally:
        os.close(pidfd)
        if feeding:
            _close_quietly(stdin)


def _remove(folder: Path) -> None:
    """Remove a step folder: usually empty or flat, so a plain rmdir or unlinks before the full walk."""
    try:
        os.rmdir(folder)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    raise IsADirectoryError(entry.path)
                os.unlink(entry.path)
        os.rmdir(folder)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def _close_quietly(stream: Any) -> None:
    try:
        stream.close()
    except OSError:
        pass


def _headline(path: Path) -> str | None:
    """The first non-empty line of a step's stdout log (at most ``_HEADLINE_CHARS``), read without following links."""
    with open_regular(path) as fh:
        head = fh.read(64 * 1024).decode("utf-8", errors="replace")
    for line in head.splitlines():
        if line.strip():
            return line.strip()[:_HEADLINE_CHARS]
    return None


@contextmanager
def _new_log(path: Path) -> Iterator[BinaryIO]:
    """A new log file lodec alone writes: created exclusively, never through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as fh:
        yield fh


def private_copy(skill: Skill, dest: Path) -> None:
    """Materialise ``skill`` read-only at ``dest``, then read the copy back and check its tree digest.

    Raises:
        RunError: ``skill_drifted`` if the copy does not hash to the verified digest.
    """
    materialize(skill, dest)
    copied = tree_digest(read_tree(dest))
    if copied != skill.digest:
        raise RunError(f"{skill.ref}: the private copy at {dest} hashes to {copied}, not {skill.digest}",
                       code="skill_drifted")


class _Interrupted(Exception):
    """SIGTERM (or SIGINT) arrived while the run was going."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class _Caught:
    signum: int | None = None


@contextmanager
def _signals_raise() -> Iterator[_Caught]:
    """On the main thread: SIGINT and SIGTERM raise ``_Interrupted`` in the scheduler while the run goes on."""
    caught = _Caught()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum: int, _frame: object) -> None:
        if caught.signum is None:
            caught.signum = signum
            raise _Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _interrupted(step: PreparedStep, signum: int | None) -> StepResult:
    result = _base(step)
    result.status, result.reason = "skipped", "interrupted"
    result.detail = f"not run: lodec run was interrupted (signal {signum})"
    return result
