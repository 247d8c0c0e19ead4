"""Run records: the typed ``run.json`` (format ``lodec-run/v1``), its one reader and one writer.

Layout under the workspace's state directory (``docs/run-records.md``)::

    runs/<run-id>/run.json          the record (``RunRecord``)
    runs/<run-id>/journal.md        a section per step (``lodec.run.reports``)
    runs/<run-id>/provenance.json   SLSA Provenance v1 (in-toto Statement) over the artifacts
    runs/<run-id>/skills/<name>/    the skills as materialised for the run
    runs/<run-id>/steps/<step>/     stdout.log, stderr.log
    cas/blake3/..                   the artifacts (``lodec.store.cas``)

``read_run`` reads with the bounded strict JSON reader, then checks every
field's type (msgspec); ``write_run`` writes atomically, keys sorted,
2-space indent. "The latest run" has one meaning (``latest_run``): the
newest *completed* run (``succeeded`` or ``failed``; a run still marked
``running`` never finished and is never a candidate), of the same canonical
manifest digest when one is given.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import msgspec

from ..errors import FileMissing, LodecError, RunError
from ..files import atomic_write, locked, read_bounded
from ..format.strictjson import loads_strict
from ..names import is_safe_name
from .cas import ArtifactDigest, Store
from .workspace import Workspace

RUN_FORMAT = "lodec-run/v1"
#: Largest ``run.json`` read (bytes), checked before reading.
MAX_RUN_RECORD_BYTES = 64 * 1024 * 1024
#: Run statuses that mean the run ended and its record is final.
COMPLETED = ("succeeded", "failed")


class StepResult(msgspec.Struct, kw_only=True):
    """One step's outcome in ``run.json`` (``docs/run-records.md`` §Step results).

    ``status``: ``succeeded``, ``failed`` or ``skipped``; ``reason`` a stable
    code when not succeeded (``exit_nonzero``, ``timeout``, ``upstream_failed``,
    ...); times are ISO 8601 UTC with microseconds; ``duration_ms`` in
    milliseconds; ``artifacts`` output name -> digests; ``upstream_status``
    ``<step>/<output>`` -> ``verified|integrity_mismatch|missing|skipped``;
    ``worker`` the Temporal worker that ran it (remote runs only); ``agent`` the agent runner's argv
    that carried out an instruction-only skill.
    """

    status: str
    skill: str
    skillDigest: str
    fingerprint: str
    concurrency: str
    reason: str | None = None
    detail: str | None = None
    exit_code: int | None = None
    started: str | None = None
    ended: str | None = None
    duration_ms: float | None = None
    headline: str | None = None
    artifacts: dict[str, ArtifactDigest] = msgspec.field(default_factory=dict)
    upstream_status: dict[str, str] = msgspec.field(default_factory=dict)
    #: The Temporal worker identity that ran the step (``--engine temporal``); ``None`` (and left out of
    #: ``run.json``) for a local run.
    worker: str | None = None
    #: The agent runner's argv that carried out an instruction-only skill (``.lodec/agent.toml``, placeholders
    #: replaced); ``None`` (and left out of ``run.json``) for a skill with its own program.
    agent: list[str] | None = None


class StackRef(msgspec.Struct, kw_only=True):
    """The verified stack a run ran: name, version, canonical manifest digest, signing keyids."""

    name: str
    version: str
    digest: str
    signedBy: list[str] = msgspec.field(default_factory=list)


class Reused(msgspec.Struct, kw_only=True):
    """Results a partial run took from an earlier run of the same stack (``--step`` + ``--reuse``)."""

    run: str
    steps: dict[str, StepResult]


class RunRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``run.json``: one run of a verified stack (``docs/run-records.md``).

    ``status`` is ``running`` while lodec runs it, then ``succeeded`` or
    ``failed`` (with ``exit_code``, ``ended``, ``duration_ms``). ``order``
    is the selected steps in topological order; ``steps`` their results.
    """

    format: str
    run: str
    status: str
    stack: StackRef
    skills: dict[str, str]
    workspace: str
    trust: str
    jobs: int
    sandbox: str
    started: str
    order: list[str]
    steps: dict[str, StepResult]
    reused: Reused | None = None
    exit_code: int | None = None
    ended: str | None = None
    duration_ms: float | None = None

    @property
    def completed(self) -> bool:
        """Whether the run ended (its record is final)."""
        return self.status in COMPLETED

    def step_results(self) -> dict[str, StepResult]:
        """Every step result the run stands on: the steps it ran, plus those it reused from an
        earlier run, which its own results override."""
        reused = self.reused.steps if self.reused is not None else {}
        return {**reused, **self.steps}

    def to_dict(self) -> dict[str, object]:
        """The JSON object of ``run.json`` (what ``lodec run --json`` prints)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        # A local run's steps carry no worker: their records stay as they were.
        steps = [*out["steps"].values(), *(out["reused"]["steps"].values() if out.get("reused") else ())]
        for rec in steps:
            for optional in ("worker", "agent"):
                if rec.get(optional) is None:
                    rec.pop(optional, None)
        return out


def to_json(record: RunRecord) -> bytes:
    """``run.json`` bytes: keys sorted, 2-space indent, one trailing newline."""
    return (json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n").encode()


def write_run(workspace: Workspace, record: RunRecord) -> Path:
    """Write ``runs/<id>/run.json`` atomically; returns its path.

    Raises:
        LodecError: ``file_unwritable``.
    """
    path = workspace.run_dir(record.run) / "run.json"
    atomic_write(path, to_json(record))
    return path


def parse_run(data: bytes, *, file: str) -> RunRecord:
    """A ``RunRecord`` from ``run.json`` bytes (strict JSON, every field typed).

    Raises:
        RunError: ``run_invalid`` naming the file and the place inside it.
    """
    try:
        doc = loads_strict(data, file=file)
    except LodecError as exc:
        raise RunError(f"unreadable run record: {exc.message}", code="run_invalid", file=file,
                       location=exc.location) from None
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        raise RunError(f"not a {RUN_FORMAT} record", code="run_invalid", file=file)
    try:
        return msgspec.convert(doc, RunRecord)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).rpartition(" - at `")
        raise RunError(f"not a valid run record: {message or exc}", code="run_invalid", file=file,
                       location=_pointer(path.rstrip("`")) if message else None) from None


def _pointer(path: str) -> str:
    """msgspec's ``$.steps[...].status`` as a JSON pointer, ``/steps/…/status`` (``…``: some key)."""
    out = path.removeprefix("$").replace("[...]", "/…").replace("[", "/").replace("]", "").replace(".", "/")
    return out or "/"


def read_run(workspace: Workspace, run_id: str) -> RunRecord:
    """The record of run ``run_id`` (bounded read, strict JSON, typed).

    Raises:
        RunError: ``run_not_found`` (no such run, or not a run id), ``run_invalid``.
    """
    if not is_safe_name(run_id):
        raise RunError(f"{run_id!r} is not a run id", code="run_not_found")
    path = workspace.run_dir(run_id) / "run.json"
    try:
        data = read_bounded(path, MAX_RUN_RECORD_BYTES)
    except FileMissing:
        raise RunError(f"no run {run_id} in {workspace.runs}", code="run_not_found") from None
    except LodecError as exc:
        raise RunError(f"unreadable run record: {exc.message}", code="run_invalid", file=str(path)) from None
    return parse_run(data, file=str(path))


def list_runs(workspace: Workspace) -> list[RunRecord]:
    """Every readable run record, oldest first (by start time, then id)."""
    root = workspace.runs
    if not root.is_dir():
        return []
    out = []
    for entry in sorted(os.listdir(root)):
        try:
            out.append(read_run(workspace, entry))
        except RunError:
            continue
    out.sort(key=lambda r: (r.started, r.run))
    return out


def latest_run(runs: Iterable[RunRecord], digest: str | None = None) -> RunRecord | None:
    """The newest completed run (of the stack with canonical manifest ``digest``, if given), or ``None``.

    ``runs`` oldest first, as ``list_runs`` returns them. A run that never
    finished (``running``) is not a candidate.
    """
    candidates = [r for r in runs if r.completed and (digest is None or r.stack.digest == digest)]
    return candidates[-1] if candidates else None


@contextmanager
def live_run(workspace: Workspace) -> Iterator[None]:
    """Hold the workspace's runs lock shared for a run's lifetime, so no discard runs meanwhile.

    A discard takes the lock exclusively and refuses while any run holds it
    (``runs_busy``): a blob a live run reuses or has just stored is never
    deleted under it. The lock dies with the process, so a killed run never
    blocks discards forever.
    """
    with locked(workspace.runs_lock, shared=True):
        yield


def discard_plan(workspace: Workspace, run_id: str) -> list[Path]:
    """Exactly what ``lodec runs discard`` deletes: every file of the run's folder, then each
    CAS blob (and its ``.sha256``) that no other run records. Raises ``RunError`` (``run_not_found``)."""
    record = read_run(workspace, run_id)
    run_dir = workspace.run_dir(run_id)
    files = sorted(p for p in run_dir.rglob("*") if not p.is_dir() or p.is_symlink())
    others: set[str] = set()
    for other in list_runs(workspace):
        if other.run != run_id:
            others.update(d.blake3 for rec in other.step_results().values() for d in rec.artifacts.values())
    store = Store(workspace.cas)
    mine = sorted({d.blake3 for rec in record.steps.values() for d in rec.artifacts.values()})
    for blob in mine:
        if blob not in others:
            path = store.path(blob)
            for p in (path, path.with_name(path.name + ".sha256")):
                if p.exists():
                    files.append(p)
    return files


def discard(workspace: Workspace, run_id: str) -> list[Path]:
    """Delete what ``discard_plan`` lists (and the run's now-empty folders); returns it.

    Raises:
        RunError: ``run_not_found``; ``runs_busy`` while a run is live in the workspace.
    """
    with ExitStack() as stack:
        try:
            stack.enter_context(locked(workspace.runs_lock, wait=False))
        except BlockingIOError:
            raise RunError("a run is in progress in this workspace; discard it when the run has ended",
                           code="runs_busy", file=str(workspace.runs_lock)) from None
        files = discard_plan(workspace, run_id)
        for path in files:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        shutil.rmtree(workspace.run_dir(run_id), ignore_errors=True)
    return files
