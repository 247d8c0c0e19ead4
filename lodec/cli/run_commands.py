"""CLI commands that run verified stacks: skill, lock, plan, run, resolve, runs, journal, analytics.

A thin layer over ``lodec.run`` (``docs/skill-contract.md``,
``docs/run-records.md``); registered on ``lodec.cli.main``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import _emit, _fail, _report_out, _verify_target
from .commands import CONTEXT, _trust_options, main
from ..errors import LodecError, RunError


def _workspace(value: str | None) -> Path:
    """``--workspace``, else the git root of the current directory, else the current directory."""
    from ..store.workspace import find_git_root

    if value is not None:
        return Path(value).resolve()
    return find_git_root() or Path.cwd().resolve()


def _state(workspace: Path) -> Path:
    from ..store.workspace import Workspace

    return Workspace.discover(workspace).state


def _workspace_option(f: Any) -> Any:
    return click.option("--workspace", "workspace_dir", type=click.Path(file_okay=False, exists=True),
                        help="The project the steps work on. Default: the git repository root, or the current "
                             "directory outside git. State goes to its git root's .lodec/ (or $LODEC_HOME).")(f)


def _steps_option(f: Any) -> Any:
    return click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
                        help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")(f)


def _verified(target: str, steps_dir: str | None, trust_args: dict[str, Any], as_json: bool) -> Any:
    """Verify exactly as ``lodec verify`` does; on rejection report as it does and exit 1."""
    report, _note = _verify_target(target, steps_dir, None, **trust_args)
    if not report.ok:
        _report_out(report, target, as_json)
    return report.require()


def _prepared(target: str, steps_dir: str | None, workspace: Path, trust_args: dict[str, Any], as_json: bool) -> Any:
    from ..run.executor import prepare_run
    from ..store.workspace import Workspace

    stack = _verified(target, steps_dir, trust_args, as_json)
    return prepare_run(stack, Workspace.discover(workspace).skill_roots(target))


# ------------------------------------------------------------------ skills


@main.group(context_settings=CONTEXT)
def skill() -> None:
    """Check, install and list skills (Agent Skills folders with a lodec.toml; docs/skill-contract.md)."""


@skill.command("check", context_settings=CONTEXT)
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list: name, digest, command, capabilities.")
def skill_check(folders: tuple[str, ...], as_json: bool) -> None:
    """Validate skill FOLDERS: SKILL.md under the Agent Skills spec (skills-ref), lodec.toml, no links.

    Prints each skill's tree digest, the value `lodec lock` pins.
    """
    from ..run.skills import load_skill

    try:
        skills = [load_skill(f) for f in folders]
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit([s.to_dict() for s in skills])
        return
    for s in skills:
        c = s.config
        click.echo(f"{s.source}: {s.name} ok, {len(s.files)} files, {s.digest}")
        click.echo(f"  runs {' '.join(c.command)} ({c.concurrency}, timeout {c.timeout} s, "
                   f"network {'yes' if c.network else 'no'}, env {', '.join(c.env) or 'none'})")


@skill.command("add", context_settings=CONTEXT)
@click.argument("folder", type=click.Path(file_okay=False))
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the installed skill as JSON.")
def skill_add(folder: str, workspace_dir: str | None, as_json: bool) -> None:
    """Validate FOLDER, then copy it into the state directory's skills/ (refuses a name clash).

    Inside a git repository that is <root>/.lodec/skills/; outside git,
    $LODEC_HOME/skills (default ~/.lodec/skills).
    """
    from ..run.skills import add_skill

    try:
        installed, dest = add_skill(folder, _state(_workspace(workspace_dir)) / "skills")
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({**installed.to_dict(), "path": str(dest)})
    else:
        click.echo(f"Added {installed.ref} → {dest} ({installed.digest})")


@skill.command("list", context_settings=CONTEXT)
@click.option("--stack", "stack_path", type=click.Path(dir_okay=False),
              help="Also list skills/ beside this STACK.json (searched first).")
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def skill_list(stack_path: str | None, workspace_dir: str | None, as_json: bool) -> None:
    """List the skills lodec would find, in lookup order; the first of a name wins."""
    from ..run.skills import load_skill
    from ..store.workspace import Workspace

    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for root in Workspace.discover(_workspace(workspace_dir)).skill_roots(stack_path):
        if not root.is_dir():
            continue
        for entry in sorted(os.listdir(root)):
            if entry.startswith(".") or not (root / entry).is_dir():
                continue
            try:
                s = load_skill(root / entry)
                row = {**s.to_dict(), "ok": True, "shadowed": s.name in seen}
                seen.add(s.name)
            except LodecError as exc:
                row = {"name": entry, "path": str(root / entry), "ok": False, "error": exc.to_dict()}
            rows.append(row)
    if as_json:
        _emit(rows)
        return
    if not rows:
        click.echo("No skills found (lodec skill add DIR installs one).")
    for r in rows:
        if r["ok"]:
            note = " (shadowed)" if r["shadowed"] else ""
            click.echo(f"{r['name']:<24} {r['concurrency']:<9} {r['digest']}  {r['path']}{note}")
        else:
            click.echo(f"{r['name']:<24} INVALID   {r['error']['message']} [{r['error']['code']}]  {r['path']}")


# ------------------------------------------------------------------ lock


@main.command(context_settings=CONTEXT)
@click.argument("manifest", metavar="STACK.json", type=click.Path(dir_okay=False))
@_steps_option
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help='Print {"manifest", "digest", "skillDigests"}.')
def lock(manifest: str, steps_dir: str | None, workspace_dir: str | None, as_json: bool) -> None:
    """Pin every step's skill by tree digest in STACK.json (skillDigests; skill-stack-v2).

    The stack is verified first. Skills are looked up in skills/ beside the
    stack, then <git root>/.lodec/skills, then $LODEC_HOME/skills. The
    manifest is rewritten atomically; sign it again afterwards, since the
    pins are part of the signed bytes.
    """
    from ..run.executor import write_lock
    from ..store.workspace import Workspace

    no_trust = dict(keys=(), threshold=None, policy_path=None, expected_name=None, state_path=None, now_text=None)
    try:
        stack = _verified(manifest, steps_dir, no_trust, as_json)
        skills, digest = write_lock(stack, Path(manifest), Workspace.discover(_workspace(workspace_dir)).skill_roots(manifest))
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"manifest": manifest, "digest": digest, "skillDigests": {ref: s.digest for ref, s in skills.items()}})
        return
    for ref, s in skills.items():
        click.echo(f"Pinned {ref} {s.digest} ({s.source})")
    click.echo(f"Locked {manifest}: {len(skills)} skill(s); manifest digest {digest}")


# ------------------------------------------------------------------ plan / run


@main.command(context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@_steps_option
@_workspace_option
@_trust_options
def plan(target: str, steps_dir: str | None, workspace_dir: str | None, **trust_args: Any) -> None:
    """Print the schedule as JSON lines: {"batch": N, "type": "read|write|exclusive", "steps": [...]}.

    Verifies the stack and checks every skill against its pin first, as
    `lodec run` does. Within a batch steps may run together; `lodec run`
    starts each step as soon as its dependencies finish, so batches are the
    order, not the timing.
    """
    try:
        prepared = _prepared(target, steps_dir, _workspace(workspace_dir), trust_args, False)
    except LodecError as exc:
        _fail(exc, False)
    for batch in prepared.batches():
        click.echo(json.dumps(batch.to_dict()))


@main.command(context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@_steps_option
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Steps at most at once. Default: CPUs (at least 2).")
@click.option("--trust", "trust", type=click.Choice(["strict", "normal"]), default="strict", show_default=True,
              help="strict: a step whose upstream artifacts are not all verified does not start; "
                   "normal: it starts and sees their statuses.")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Run skills without network = true even where no network namespace can be made.")
@click.option("--step", "only", metavar="NAME", multiple=True,
              help="Run only this step (repeatable). Its other upstream artifacts come from --reuse.")
@click.option("--reuse", "reuse_id", metavar="RUN_ID|latest",
              help="With --step: take the other steps' results from this earlier run of the same stack "
                   "(latest: the newest run with this manifest digest); their artifacts are re-hashed before use. "
                   "Steps downstream of a --step are not reused.")
@_workspace_option
@_trust_options
@click.option("--json", "as_json", is_flag=True, help="Print the run record (run.json) on stdout.")
def run(
    target: str,
    steps_dir: str | None,
    jobs: int | None,
    trust: str,
    allow_unsandboxed: bool,
    only: tuple[str, ...],
    reuse_id: str | None,
    workspace_dir: str | None,
    as_json: bool,
    **trust_args: Any,
) -> None:
    """Verify STACK, check every skill against its pin, then run the steps. Nothing runs unless all pass.

    Each step starts once its dependencies succeed: read steps in parallel
    (up to --jobs), a write step with no other writer, an exclusive step
    alone. Steps get a JSON request on stdin and a reduced environment, and
    run without network unless their skill declares it; outputs go to a
    content-addressed store. A failed step skips its dependents; the run
    exits 1 if any step did not succeed.

    \b
      lodec run stacks/code-review/code-review-stack.json --workspace stacks/code-review/fixture
      lodec run release.lodepack --key alice.pub --jobs 4
      lodec run stack.json --step release-readiness --reuse latest --trust normal
    Records: .lodec/runs/<run-id>/{run.json,journal.md,provenance.json}.
    """
    from ..run.executor import RunOptions, run_stack
    from ..store.records import latest_run, load_run
    from ..run.schedule import default_jobs

    workspace = _workspace(workspace_dir)
    state = _state(workspace)
    progress = (lambda line: click.echo(line, err=True)) if sys.stderr.isatty() else None
    try:
        prepared = _prepared(target, steps_dir, workspace, trust_args, as_json)
        reuse = None
        if reuse_id == "latest":
            reuse = latest_run(state, prepared.stack.name, prepared.stack.digest)
            if reuse is None:
                raise RunError(f"no earlier run of {prepared.stack.name} {prepared.stack.digest} in "
                               f"{state / 'runs'} to reuse",
                               code="run_not_found")
        elif reuse_id is not None:
            reuse = load_run(state, reuse_id)
        record = run_stack(prepared, RunOptions(workspace=workspace, state=state,
                                                jobs=jobs or default_jobs(), trust=trust,
                                                allow_unsandboxed=allow_unsandboxed, progress=progress,
                                                only=only, reuse=reuse))
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(record)
    else:
        counts: dict[str, int] = {}
        for rec in record["steps"].values():
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        run_dir = state / "runs" / record["run"]
        click.echo(f"Run {record['run']} {record['status']}: {summary} ({record['duration_ms'] / 1000:.2f} s)")
        click.echo(f"Journal: {run_dir / 'journal.md'}")
        click.echo(f"Provenance: {run_dir / 'provenance.json'}")
    sys.exit(record["exit_code"])


# ------------------------------------------------------------------ resolve


@main.command(context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@click.argument("step")
@click.option("--run", "run_id", metavar="RUN_ID", help="The run to resolve against. Default: the stack's latest run.")
@click.option("--trust", "trust", type=click.Choice(["strict", "normal"]), default="strict", show_default=True,
              help="strict: only verified artifacts get a path; normal: integrity_mismatch ones too.")
@_steps_option
@_workspace_option
@_trust_options
def resolve(target: str, step: str, run_id: str | None, trust: str, steps_dir: str | None,
            workspace_dir: str | None, **trust_args: Any) -> None:
    """Print STEP's upstream artifacts and their statuses, re-hashing each artifact.

    {"step", "run", "upstream_artifacts": {"<step>/<output>": path|null},
    "upstream_status": {...: "verified"|"integrity_mismatch"|"missing"|"skipped"}}
    """
    from ..store.records import latest_run, load_run, step_results, upstream
    from ..store.cas import Store

    workspace = _workspace(workspace_dir)
    state = _state(workspace)
    try:
        prepared = _prepared(target, steps_dir, workspace, trust_args, False)
        if step not in prepared.steps:
            raise LodecError(f'no step "{step}" in {prepared.stack.name}', code="step_not_found", file=target)
        record: dict[str, Any] | None = (load_run(state, run_id) if run_id is not None
                                          else latest_run(state, prepared.stack.name))
        results = step_results(record) if record is not None else {}
        artifacts, statuses = upstream(prepared.steps[step].deps, prepared, results, Store(state / "cas"), trust)
    except LodecError as exc:
        _fail(exc, False)
    _emit({"step": step, "run": record["run"] if record else None, "trust": trust,
           "upstream_artifacts": artifacts, "upstream_status": statuses})


# ------------------------------------------------------------------ records


@main.group(context_settings=CONTEXT)
def runs() -> None:
    """List and discard recorded runs (.lodec/runs/ at the git root, or $LODEC_HOME/runs)."""


@runs.command("list", context_settings=CONTEXT)
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of run summaries.")
def runs_list(workspace_dir: str | None, as_json: bool) -> None:
    """List runs, oldest first: id, status, stack, version, duration."""
    from ..store.records import list_runs

    rows = [{"run": r["run"], "status": r["status"], "stack": r["stack"]["name"], "version": r["stack"]["version"],
             "started": r["started"], "duration_ms": r.get("duration_ms"),
             "steps": {s: v["status"] for s, v in r.get("steps", {}).items()}}
            for r in list_runs(_state(_workspace(workspace_dir)))]
    if as_json:
        _emit(rows)
        return
    if not rows:
        click.echo("No runs yet.")
    for r in rows:
        took = "–" if r["duration_ms"] is None else f"{r['duration_ms'] / 1000:.2f} s"
        click.echo(f"{r['run']}  {r['status']:<9} {r['stack']} {r['version']}  {took}")


@runs.command("discard", context_settings=CONTEXT)
@click.argument("run_id", metavar="RUN_ID")
@click.option("--dry-run", is_flag=True, help="List exactly what would be deleted; delete nothing.")
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help='Print {"run", "dry_run", "files"}.')
def runs_discard(run_id: str, dry_run: bool, workspace_dir: str | None, as_json: bool) -> None:
    """Delete a run: its folder, and artifacts no other run records. Nothing else."""
    from ..store.records import discard, discard_plan

    state = _state(_workspace(workspace_dir))
    try:
        files = discard_plan(state, run_id) if dry_run else discard(state, run_id)
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"run": run_id, "dry_run": dry_run, "files": [str(p) for p in files]})
        return
    for p in files:
        click.echo(str(p))
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(f"{verb} {len(files)} file(s) of run {run_id}", err=True)


@main.command(context_settings=CONTEXT)
@click.argument("run_id", metavar="[RUN_ID]", required=False)
@_workspace_option
def journal(run_id: str | None, workspace_dir: str | None) -> None:
    """Print a run's journal (default: the latest run), re-checking every artifact digest.

    A section per step: status, headline, artifacts; an artifact whose bytes
    changed since the run is marked TAMPERED.
    """
    from ..store.records import journal_markdown
    from ..store.cas import Store

    state = _state(_workspace(workspace_dir))
    try:
        record = _run_record(state, run_id)
    except LodecError as exc:
        _fail(exc, False)
    click.echo(journal_markdown(record, Store(state / "cas")), nl=False)


def _run_record(state: Path, run_id: str | None) -> dict[str, Any]:
    """Run ``run_id``'s record, or the latest run's when ``None``. Raises ``RunError`` (``run_not_found``)."""
    from ..store.records import list_runs, load_run

    if run_id is not None:
        return load_run(state, run_id)
    every = list_runs(state)
    if not every:
        raise RunError(f"no runs in {state / 'runs'}", code="run_not_found")
    return every[-1]


@main.command(context_settings=CONTEXT)
@click.argument("step")
@click.argument("output", required=False)
@click.option("--run", "run_id", metavar="RUN_ID", help="The run that produced it. Default: the latest run.")
@_workspace_option
def artifact(step: str, output: str | None, run_id: str | None, workspace_dir: str | None) -> None:
    """Print the bytes of STEP's artifact OUTPUT (default: its only output), re-hashed first.

    Refuses (exit 1) an artifact whose bytes no longer match the digest the
    run recorded (integrity_mismatch), or that is gone (artifact_missing).
    Artifacts reused from an earlier run (--step/--reuse) are found too.

    \b
      lodec artifact release-readiness
      lodec artifact license-audit artifact.json --run 20261121T101500.123456Z-3f9a1c2e
    """
    import blake3

    from ..files import read_bounded
    from ..store.records import step_results
    from ..store.cas import MAX_ARTIFACT_BYTES, Store

    state = _state(_workspace(workspace_dir))
    try:
        record = _run_record(state, run_id)
        rec = step_results(record).get(step)
        if rec is None:
            raise RunError(f'run {record["run"]} has no step "{step}"', code="step_not_found")
        made = rec.get("artifacts", {})
        have = ", ".join(sorted(made)) or "none"
        if output is None:
            if len(made) != 1:
                which = "several artifacts: name one" if made else "no artifacts"
                raise RunError(f'step "{step}" of run {record["run"]} recorded {which} (it has: {have})',
                               code="artifact_missing")
            output = next(iter(made))
        elif output not in made:
            raise RunError(f'step "{step}" of run {record["run"]} recorded no artifact {output!r} (it has: {have})',
                           code="artifact_missing")
        digest = made[output]["blake3"]
        path = Store(state / "cas").path(digest)
        try:
            data = read_bounded(path, MAX_ARTIFACT_BYTES)  # hashed below from these very bytes: no window to swap it
        except LodecError as exc:
            if exc.code != "file_not_found":
                raise
            raise RunError(f"{step}/{output} of run {record['run']} is missing from the store ({path})",
                           code="artifact_missing") from None
        if blake3.blake3(data).hexdigest() != digest:
            raise RunError(f"{step}/{output} of run {record['run']} was changed after the run: "
                           f"{path} no longer hashes to blake3:{digest}", code="integrity_mismatch")
    except LodecError as exc:
        _fail(exc, False)
    click.echo(data, nl=False)  # bytes go to the binary stream unchanged


@main.command(context_settings=CONTEXT)
@_workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def analytics(workspace_dir: str | None, as_json: bool) -> None:
    """Runs by status; per step, counts by status and duration p50/p95; artifacts re-checked."""
    from ..store.records import analytics as compute
    from ..store.records import list_runs
    from ..store.cas import Store

    state = _state(_workspace(workspace_dir))
    figures = compute(list_runs(state), Store(state / "cas"))
    if as_json:
        _emit(figures)
        return
    click.echo(f"{figures['runs']} run(s): " + (", ".join(f"{n} {s}" for s, n in figures["runs_by_status"].items())
                                                or "none"))
    for name, entry in figures["steps"].items():
        counts = ", ".join(f"{n} {s}" for s, n in sorted(entry["counts"].items()))
        d = entry["duration_ms"]
        p50 = "–" if d["p50"] is None else f"{d['p50']:.0f} ms"
        p95 = "–" if d["p95"] is None else f"{d['p95']:.0f} ms"
        click.echo(f"  {name:<24} {counts:<40} p50 {p50}, p95 {p95}")
    a = figures["artifacts"]
    click.echo(f"Artifacts: {a['verified']} verified, {a['tampered']} tampered, {a['missing']} missing")
    for t in figures["tampered"]:
        click.echo(f"  TAMPERED {t}")
