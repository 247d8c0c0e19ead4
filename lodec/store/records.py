"""Run records: ``run.json``, the journal, provenance, analytics, upstream resolution, discard.

Layout under the state directory (``docs/run-records.md``)::

    runs/<run-id>/run.json          the record (format lodec-run/v1)
    runs/<run-id>/journal.md        a section per step
    runs/<run-id>/provenance.json   in-toto Statement v1 over the artifacts
    runs/<run-id>/skills/<name>/    the skills as materialised for the run
    runs/<run-id>/steps/<step>/     stdout.log, stderr.log
    cas/blake3/..                   the artifacts (``store.Store``)

Everything that reports on artifacts (``upstream``, ``journal_markdown``,
``analytics``) re-hashes them through ``Store.check``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RunError
from ..files import atomic_write
from ..names import is_safe_name
from .cas import Store

if TYPE_CHECKING:
    from ..run.executor import PreparedRun

RUN_FORMAT = "lodec-run/v1"
REQUEST_FORMAT = "lodec-step-request/v1"
PROVENANCE_PREDICATE = "https://lodec.dev/provenance/run/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
UPSTREAM_STATUSES = ("verified", "integrity_mismatch", "missing", "skipped")


def write_run(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Write ``run.json`` atomically (sorted keys, 2-space indent)."""
    atomic_write(run_dir / "run.json", (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def runs_dir(state: Path) -> Path:
    return state / "runs"


def load_run(state: Path, run_id: str) -> dict[str, Any]:
    """The record of run ``run_id``. Raises ``RunError`` (``run_not_found``, ``run_invalid``)."""
    if not is_safe_name(run_id):
        raise RunError(f"{run_id!r} is not a run id", code="run_not_found")
    path = runs_dir(state) / run_id / "run.json"
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise RunError(f"no run {run_id} in {runs_dir(state)}", code="run_not_found") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"unreadable run record: {exc}", code="run_invalid", file=str(path)) from None
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise RunError(f"not a {RUN_FORMAT} record", code="run_invalid", file=str(path))
    return record


def list_runs(state: Path) -> list[dict[str, Any]]:
    """Every readable run record, oldest first (by start time, then id)."""
    root = runs_dir(state)
    if not root.is_dir():
        return []
    out = []
    for entry in sorted(os.listdir(root)):
        try:
            out.append(load_run(state, entry))
        except RunError:
            continue
    out.sort(key=lambda r: (str(r.get("started")), str(r.get("run"))))
    return out


def latest_run(state: Path, stack_name: str, digest: str | None = None) -> dict[str, Any] | None:
    """The newest run of the stack named ``stack_name`` (and, if given, with that canonical
    manifest ``digest``), or ``None``."""
    runs = [r for r in list_runs(state) if r.get("stack", {}).get("name") == stack_name
            and (digest is None or r["stack"].get("digest") == digest)]
    return runs[-1] if runs else None


def step_results(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step result a run stands on: the steps it ran, plus those it reused from an
    earlier run (``lodec run --step … --reuse``), which its own results override."""
    return {**record.get("reused", {}).get("steps", {}), **record.get("steps", {})}


def upstream(
    deps: Sequence[str],
    plan: PreparedRun,
    results: Mapping[str, Mapping[str, Any]],
    store: Store,
    trust: str,
) -> tuple[dict[str, str | None], dict[str, str]]:
    """``(upstream_artifacts, upstream_status)`` for a step depending on ``deps``.

    Keys are ``<step>/<output>`` for every declared output of every
    dependency. Each recorded artifact is re-hashed: ``verified``,
    ``integrity_mismatch``, ``missing`` (its step failed or did not run, or
    the file is gone) or ``skipped`` (its step was skipped). A path is given
    for ``verified``, and under ``normal`` trust also for ``integrity_mismatch``.
    """
    artifacts: dict[str, str | None] = {}
    statuses: dict[str, str] = {}
    for dep in deps:
        rec = results.get(dep)
        for output in plan.steps[dep].outputs:
            key = f"{dep}/{output}"
            digest = (rec or {}).get("artifacts", {}).get(output)
            if rec is not None and rec.get("status") == "skipped":
                status = "skipped"
            elif digest is None:
                status = "missing"
            else:
                status = store.check(digest["blake3"])
            statuses[key] = status
            shown = status == "verified" or (status == "integrity_mismatch" and trust == "normal")
            artifacts[key] = str(store.path(digest["blake3"])) if shown and digest else None
    return artifacts, statuses


def artifact_rows(record: Mapping[str, Any], store: Store) -> Iterable[tuple[str, str, dict[str, Any], str]]:
    """``(step, output, digest, state)`` for every artifact of a run, re-hashed now:
    ``verified``, ``tampered`` or ``missing``."""
    for step, rec in record.get("steps", {}).items():
        for output, digest in sorted(rec.get("artifacts", {}).items()):
            status = store.check(digest["blake3"])
            yield step, output, digest, {"integrity_mismatch": "tampered"}.get(status, status)


def journal_markdown(record: Mapping[str, Any], store: Store) -> str:
    """The run's journal: a header, then a ``## <step>`` section per step with its status,
    headline and artifact digests, each re-checked (``TAMPERED`` / ``MISSING`` when so)."""
    stack = record["stack"]
    lines = [
        f"# Run {record['run']}: {stack['name']} {stack['version']}",
        "",
        f"- status: **{record['status']}** (exit {record.get('exit_code')})",
        f"- stack digest: `{stack['digest']}`",
        f"- trust: {record['trust']}; sandbox: {record['sandbox']}",
        f"- started: {record['started']}; ended: {record.get('ended')}; "
        f"duration: {_seconds(record.get('duration_ms'))}",
        "",
    ]
    rows: dict[str, list[tuple[str, dict[str, Any], str]]] = {}
    for step, output, digest, state in artifact_rows(record, store):
        rows.setdefault(step, []).append((output, digest, state))
    steps = record.get("steps", {})
    for step in _in_order(record):
        rec = steps[step]
        status = rec["status"]
        why = f" ({rec['reason']}: {rec['detail']})" if rec.get("reason") else ""
        lines += [
            f"## {step}",
            "",
            f"- status: **{status}**{why}",
            f"- skill: `{rec['skill']}` `{rec['skillDigest']}` ({rec['concurrency']})",
            f"- exit code: {rec.get('exit_code')}; duration: {_seconds(rec.get('duration_ms'))}",
            f"- headline: {rec.get('headline') or '(none)'}",
        ]
        if rows.get(step):
            lines.append("- artifacts:")
            for output, digest, state in rows[step]:
                mark = "" if state == "verified" else f" **{state.upper()}**"
                lines.append(f"  - `{output}` blake3:{digest['blake3']} sha256:{digest['sha256']} "
                             f"({digest['size']} bytes){mark}")
        else:
            lines.append("- artifacts: none")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def write_journal(run_dir: Path, record: Mapping[str, Any], store: Store) -> None:
    atomic_write(run_dir / "journal.md", journal_markdown(record, store).encode())


def provenance(record: Mapping[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 for a run (``docs/run-records.md``).

    ``subject``: one entry per artifact, ``<step>/<output>``, digest set
    ``{blake3, sha256}``. Predicate ``https://lodec.dev/provenance/run/v1``:
    the run id, status, times, trust, and ``materials``: the stack (its
    canonical digest) and every skill (its tree digest).
    """
    subject = []
    for step, rec in record.get("steps", {}).items():
        for output, digest in sorted(rec.get("artifacts", {}).items()):
            subject.append({"name": f"{step}/{output}", "digest": {"blake3": digest["blake3"], "sha256": digest["sha256"]}})
    stack = record["stack"]
    materials = [{"uri": f"lodec:stack:{stack['name']}@{stack['version']}",
                  "digest": {"blake3": stack["digest"].removeprefix("blake3:")}}]
    materials += [{"uri": ref, "digest": {"blake3": digest.removeprefix("blake3:")}}
                  for ref, digest in sorted(record.get("skills", {}).items())]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PROVENANCE_PREDICATE,
        "predicate": {
            "run": record["run"],
            "status": record["status"],
            "startedOn": record["started"],
            "finishedOn": record.get("ended"),
            "trust": record["trust"],
            "sandbox": record["sandbox"],
            "materials": materials,
            "steps": {s: {"status": r["status"], "fingerprint": r["fingerprint"], "exitCode": r.get("exit_code")}
                      for s, r in record.get("steps", {}).items()},
        },
    }


def write_provenance(run_dir: Path, record: Mapping[str, Any]) -> None:
    atomic_write(run_dir / "provenance.json",
                 (json.dumps(provenance(record), indent=2, sort_keys=True) + "\n").encode())


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


def analytics(runs: Sequence[Mapping[str, Any]], store: Store) -> dict[str, Any]:
    """Counts over runs: runs by status; per step, counts by status and duration p50/p95 (ms,
    nearest rank); artifacts by re-checked state (``verified``/``tampered``/``missing``)."""
    by_status: dict[str, int] = {}
    steps: dict[str, dict[str, Any]] = {}
    artifacts = {"verified": 0, "tampered": 0, "missing": 0}
    tampered: list[str] = []
    for record in runs:
        by_status[record["status"]] = by_status.get(record["status"], 0) + 1
        for name, rec in record.get("steps", {}).items():
            entry = steps.setdefault(name, {"counts": {}, "_durations": []})
            entry["counts"][rec["status"]] = entry["counts"].get(rec["status"], 0) + 1
            if rec.get("duration_ms") is not None:
                entry["_durations"].append(rec["duration_ms"])
        for step, output, _digest, state in artifact_rows(record, store):
            artifacts[state] += 1
            if state == "tampered":
                tampered.append(f"{record['run']}/{step}/{output}")
    for entry in steps.values():
        durations = entry.pop("_durations")
        entry["duration_ms"] = {"p50": percentile(durations, 50), "p95": percentile(durations, 95)}
    durations = [r["duration_ms"] for r in runs if r.get("duration_ms") is not None]
    return {
        "runs": len(runs),
        "runs_by_status": dict(sorted(by_status.items())),
        "run_duration_ms": {"p50": percentile(durations, 50), "p95": percentile(durations, 95)},
        "steps": dict(sorted(steps.items())),
        "artifacts": artifacts,
        "tampered": tampered,
    }


def discard_plan(state: Path, run_id: str) -> list[Path]:
    """Exactly what ``lodec runs discard`` deletes: every file of the run's folder, then each
    CAS blob (and its ``.sha256``) that no other run records. Raises ``RunError`` (``run_not_found``)."""
    record = load_run(state, run_id)
    run_dir = runs_dir(state) / run_id
    files = sorted(p for p in run_dir.rglob("*") if not p.is_dir() or p.is_symlink())
    others: set[str] = set()
    for other in list_runs(state):
        if other["run"] != run_id:
            others.update(d["blake3"] for rec in step_results(other).values() for d in rec.get("artifacts", {}).values())
    store = Store(state / "cas")
    mine = sorted({d["blake3"] for rec in record.get("steps", {}).values() for d in rec.get("artifacts", {}).values()})
    for blob in mine:
        if blob not in others:
            path = store.path(blob)
            for p in (path, path.with_name(path.name + ".sha256")):
                if p.exists():
                    files.append(p)
    return files


def discard(state: Path, run_id: str) -> list[Path]:
    """Delete what ``discard_plan`` lists (and the run's now-empty folders); returns it."""
    files = discard_plan(state, run_id)
    for path in files:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    shutil.rmtree(runs_dir(state) / run_id, ignore_errors=True)
    return files


def _in_order(record: Mapping[str, Any]) -> list[str]:
    """The record's steps in the run's topological order (``run.json`` sorts its keys)."""
    steps = record.get("steps", {})
    order = [s for s in record.get("order", []) if s in steps]
    return order + sorted(s for s in steps if s not in order)


def _seconds(ms: float | None) -> str:
    return "–" if ms is None else f"{ms / 1000:.3f} s"
