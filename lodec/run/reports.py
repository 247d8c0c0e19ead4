"""What runs report: upstream resolution, the journal, provenance and analytics.

Everything that reports on artifacts (``upstream``, ``journal_markdown``,
``analytics``) re-hashes them through ``Store.check``: a name is a claim,
the bytes are the evidence. Formats: ``docs/run-records.md``.

The journal is text for a terminal and a Markdown viewer: every string in
it that a step, a skill or a run record supplied passes through
``lodec.names.printable`` first, so a headline cannot start a line, move
the cursor or set a window title. ``run.json`` and ``provenance.json`` keep
the raw values (JSON escapes them). ``provenance.json`` is SLSA Provenance v1
in an in-toto Statement v1 (``provenance``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import atomic_write
from ..format.fingerprint import file_digests
from ..names import printable
from ..sign.statement import STATEMENT_TYPE
from ..store.cas import ArtifactDigest, Store
from ..store.records import RunRecord, StepResult, to_json

if TYPE_CHECKING:
    from ..stack.verify import VerifiedStack
    from .executor import PreparedRun

#: SLSA Provenance v1 (``https://slsa.dev/spec/v1.0/provenance``), the predicate of ``provenance.json``.
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
#: The SLSA ``buildType`` of a lodec run, documented in ``docs/run-records.md`` §Provenance.
BUILD_TYPE = "https://lodec.dev/buildtypes/run/v1"
#: ``builder.id`` prefix; ``@<lodec version>`` follows.
BUILDER = "https://lodec.dev/builder/lodec"
#: DigestSet names of lodec's derived digests (in-toto DigestSet: new algorithms document their encoding).
LODEC_FINGERPRINT = "lodecFingerprint"
LODEC_TREE = "lodecTree"
VEIN_MEDIA_TYPE = "application/vnd.lodec.vein"
RUN_MEDIA_TYPE = "application/vnd.lodec.run.v1+json"


def upstream(
    deps: Sequence[str],
    plan: PreparedRun,
    results: Mapping[str, StepResult],
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
            digest = rec.artifacts.get(output) if rec is not None else None
            if rec is not None and rec.status == "skipped":
                status = "skipped"
            elif digest is None:
                status = "missing"
            else:
                status = store.check(digest.blake3)
            statuses[key] = status
            shown = status == "verified" or (status == "integrity_mismatch" and trust == "normal")
            artifacts[key] = str(store.path(digest.blake3)) if shown and digest else None
    return artifacts, statuses


def artifact_rows(record: RunRecord, store: Store,
                  states: dict[str, str] | None = None) -> Iterable[tuple[str, str, ArtifactDigest, str]]:
    """``(step, output, digest, state)`` for every artifact of a run, re-hashed now:
    ``verified``, ``tampered`` or ``missing``. ``states`` (blake3 hex -> state), when given, keeps
    what this pass found, so a blob that several runs or outputs share is hashed once."""
    states = {} if states is None else states
    for step, rec in record.steps.items():
        for output, digest in sorted(rec.artifacts.items()):
            state = states.get(digest.blake3)
            if state is None:
                status = store.check(digest.blake3)
                state = states[digest.blake3] = {"integrity_mismatch": "tampered"}.get(status, status)
            yield step, output, digest, state


def journal_markdown(record: RunRecord, store: Store) -> str:
    """The run's journal: a header, then a ``## <step>`` section per step with its status,
    headline and artifact digests, each re-checked (``TAMPERED`` / ``MISSING`` when so).

    Every value from the record is escaped with ``lodec.names.printable``.
    """
    p = _text
    stack = record.stack
    lines = [
        f"# Run {p(record.run)}: {p(stack.name)} {p(stack.version)}",
        "",
        f"- status: **{p(record.status)}** (exit {record.exit_code})",
        f"- stack digest: `{p(stack.digest)}`",
        f"- trust: {p(record.trust)}; sandbox: {p(record.sandbox)}",
        f"- started: {p(record.started)}; ended: {p(record.ended)}; duration: {_seconds(record.duration_ms)}",
        "",
    ]
    rows: dict[str, list[tuple[str, ArtifactDigest, str]]] = {}
    for step, output, digest, state in artifact_rows(record, store):
        rows.setdefault(step, []).append((output, digest, state))
    for step in _in_order(record):
        rec = record.steps[step]
        why = f" ({p(rec.reason)}: {p(rec.detail)})" if rec.reason else ""
        lines += [
            f"## {p(step)}",
            "",
            f"- status: **{p(rec.status)}**{why}",
            f"- skill: `{p(rec.skill)}` `{p(rec.skillDigest)}` ({p(rec.concurrency)})",
            f"- exit code: {rec.exit_code}; duration: {_seconds(rec.duration_ms)}",
            f"- headline: {p(rec.headline) if rec.headline else '(none)'}",
        ]
        if rec.worker is not None:  # --engine temporal: the worker that ran it
            lines.append(f"- worker: {p(rec.worker)}")
        if rows.get(step):
            lines.append("- artifacts:")
            for output, digest, state in rows[step]:
                mark = "" if state == "verified" else f" **{state.upper()}**"
                lines.append(f"  - `{p(output)}` blake3:{p(digest.blake3)} sha256:{p(digest.sha256)} "
                             f"({digest.size} bytes){mark}")
        else:
            lines.append("- artifacts: none")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _text(value: object) -> str:
    """A record value as journal text: ``str`` of it, escaped (``printable``)."""
    return printable(str(value))


def write_journal(run_dir: Path, record: RunRecord, store: Store) -> None:
    """Write ``journal.md`` atomically."""
    atomic_write(run_dir / "journal.md", journal_markdown(record, store).encode())


def provenance(record: RunRecord, stack: VerifiedStack | None = None) -> dict[str, Any]:
    """The run's provenance: an in-toto Statement v1 with a SLSA Provenance v1 predicate.

    Shape (``docs/run-records.md`` §Provenance; SLSA Provenance v1,
    ``https://slsa.dev/provenance/v1``):

    - ``subject``: one entry per artifact, ``<step>/<output>``, digests
      ``{sha256, blake3}`` of the artifact's bytes;
    - ``buildDefinition``: ``buildType`` ``BUILD_TYPE``; ``externalParameters``
      the verified stack (name, version, manifest digest), the trust mode and
      the steps run; ``internalParameters`` the sandbox, jobs and signing
      keyids; ``resolvedDependencies`` the stack manifest, every step and
      every skill pin;
    - ``runDetails``: ``builder.id`` (``builder_id``), ``metadata``
      (``invocationId`` = the run id, ``startedOn``, ``finishedOn``),
      ``byproducts`` the final ``run.json`` (with the run's status).

    Digest names are honest: ``sha256`` / ``blake3`` are plain digests of
    exact bytes (what ``sha256sum`` / ``b3sum`` print); lodec's own derived
    digests are ``lodecFingerprint`` (the keyed record fingerprint of
    ``docs/vein-format.md``: a step fingerprint, or the manifest digest) and
    ``lodecTree`` (a skill's tree digest, ``docs/skill-contract.md``),
    64 lowercase hex each. ``stack`` (the verified stack that ran) adds the
    plain digests of the manifest and step bytes; without it only the
    lodec digests recorded in ``record`` are given.
    """
    subject = []
    for step, rec in record.steps.items():
        for output, digest in sorted(rec.artifacts.items()):
            subject.append({"name": f"{step}/{output}", "digest": {"sha256": digest.sha256, "blake3": digest.blake3}})
    ref = record.stack
    manifest: dict[str, Any] = {"uri": f"lodec:stack:{ref.name}@{ref.version}",
                                "digest": _derived(ref.digest, LODEC_FINGERPRINT), "mediaType": "application/json"}
    dependencies = [manifest]
    if stack is not None:
        manifest["digest"] = file_digests(stack.manifest_bytes) | manifest["digest"]
    fingerprints = {name: r.fingerprint for name, r in record.steps.items()}
    if stack is not None:
        fingerprints |= {name: vein.fingerprint for name, vein in stack.steps.items()}
    for name, fingerprint in sorted(fingerprints.items()):
        digest = _derived(fingerprint, LODEC_FINGERPRINT)
        if stack is not None and name in stack.steps:
            digest = file_digests(stack.steps[name].data) | digest
        dependencies.append({"uri": f"lodec:step:{name}", "digest": digest,
                             "mediaType": VEIN_MEDIA_TYPE})
    dependencies += [{"uri": ref_, "digest": _derived(tree, LODEC_TREE)}
                     for ref_, tree in sorted(record.skills.items())]
    external: dict[str, Any] = {
        "stack": {"name": ref.name, "version": ref.version, "digest": ref.digest},
        "trust": record.trust,
        "steps": list(record.order),
    }
    if record.reused is not None:
        external["reuse"] = record.reused.run
    metadata = {"invocationId": record.run, "startedOn": record.started}
    if record.ended is not None:
        metadata["finishedOn"] = record.ended
    run_json = to_json(record)
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"sandbox": record.sandbox, "jobs": record.jobs,
                                       "signedBy": list(ref.signedBy)},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": builder_id(record), "version": {"lodec": lodec_version()}},
                "metadata": metadata,
                "byproducts": [{
                    "name": "run.json", "digest": file_digests(run_json), "mediaType": RUN_MEDIA_TYPE,
                    "annotations": {"status": record.status, "exitCode": record.exit_code,
                                    "steps": {name: r.status for name, r in record.steps.items()}},
                }],
            },
        },
    }


def builder_id(record: RunRecord) -> str:
    """``builder.id``: ``https://lodec.dev/builder/lodec@VERSION``; ``#temporal`` for a run on Temporal
    workers (``--engine temporal``: the trust model of ``docs/temporal.md``), ``#unsandboxed`` when the
    run (or one of its workers) was not sandboxed, both as ``#temporal-unsandboxed`` (SLSA: a mode with
    other security properties has its own builder id)."""
    base = f"{BUILDER}@{lodec_version()}"
    # A Temporal run's sandbox line lists its workers' mechanisms; one of them unsandboxed counts too.
    unsandboxed = record.sandbox.startswith("none") or "none (--allow-unsandboxed)" in record.sandbox
    modes = [m for m, on in (("temporal", record.sandbox.startswith("temporal://")), ("unsandboxed", unsandboxed))
             if on]
    return base + ("#" + "-".join(modes) if modes else "")


def lodec_version() -> str:
    """The installed lodec distribution's version (``lodec.__version__``; read from the package
    metadata, since this layer may not import the top-level package), or ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lodec")
    except PackageNotFoundError:
        return "unknown"


def _derived(prefixed: str, name: str) -> dict[str, str]:
    """``{name: hex}`` from lodec's ``blake3:<hex>`` form of a derived digest."""
    return {name: prefixed.removeprefix("blake3:")}


def write_provenance(run_dir: Path, record: RunRecord, stack: VerifiedStack | None = None) -> Path | None:
    """Write ``provenance.json`` (``provenance``) atomically (keys sorted, 2-space indent); returns its path.

    A run that produced no artifact gets none (``None``): an in-toto
    Statement attests to at least one subject, and there is none.
    """
    statement = provenance(record, stack)
    if not statement["subject"]:
        return None
    path = run_dir / "provenance.json"
    atomic_write(path, (json.dumps(statement, indent=2, sort_keys=True) + "\n").encode())
    return path


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(rank) - 1]


def analytics(runs: Sequence[RunRecord], store: Store) -> dict[str, Any]:
    """Counts over runs: runs by status; per step, counts by status and duration p50/p95 (ms,
    nearest rank); artifacts by re-checked state (``verified``/``tampered``/``missing``)."""
    by_status: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {}
    durations_by_step: dict[str, list[float]] = {}
    artifacts = {"verified": 0, "tampered": 0, "missing": 0}
    tampered: list[str] = []
    states: dict[str, str] = {}  # runs share blobs (a rerun's unchanged outputs): hash each once
    for record in runs:
        by_status[record.status] = by_status.get(record.status, 0) + 1
        for name, rec in record.steps.items():
            step_counts = counts.setdefault(name, {})
            step_counts[rec.status] = step_counts.get(rec.status, 0) + 1
            durations = durations_by_step.setdefault(name, [])
            if rec.duration_ms is not None:
                durations.append(rec.duration_ms)
        for step, output, _digest, state in artifact_rows(record, store, states):
            artifacts[state] += 1
            if state == "tampered":
                tampered.append(f"{record.run}/{step}/{output}")
    steps = {name: {"counts": counts[name],
                    "duration_ms": {"p50": percentile(durations_by_step[name], 50),
                                    "p95": percentile(durations_by_step[name], 95)}}
             for name in sorted(counts)}
    run_durations = [r.duration_ms for r in runs if r.duration_ms is not None]
    return {
        "runs": len(runs),
        "runs_by_status": dict(sorted(by_status.items())),
        "run_duration_ms": {"p50": percentile(run_durations, 50), "p95": percentile(run_durations, 95)},
        "steps": steps,
        "artifacts": artifacts,
        "tampered": tampered,
    }


def _in_order(record: RunRecord) -> list[str]:
    """The record's steps in the run's topological order (``run.json`` sorts its keys)."""
    order = [s for s in record.order if s in record.steps]
    return order + sorted(s for s in record.steps if s not in order)


def _seconds(ms: float | None) -> str:
    return "–" if ms is None else f"{ms / 1000:.3f} s"
