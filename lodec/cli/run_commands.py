"""The run-side commands: skill, lock, plan, run, resolve, runs, journal, artifact, analytics.

Each command computes the ``Workspace`` once (``--workspace`` or the
current directory), calls one use case of ``lodec.app.runs`` and renders
the result. Contracts: ``docs/skill-contract.md``, ``docs/run-records.md``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..app import Workspace
from .options import (CONTEXT, TemporalArgs, TrustArgs, json_option, steps_option, temporal_options, trust_options,
                      workspace_option)
from .render import echo, emit, error_line, first_use_note, outcome, printable, result, write_out


def _workspace(workspace_dir: str | None, state_path: str | None = None) -> Workspace:
    return Workspace.discover(workspace_dir, state_file=state_path)


# ------------------------------------------------------------------ skills


@click.group(context_settings=CONTEXT)
def skill() -> None:
    """Scaffold, check, install and list skills: Agent Skills folders (SKILL.md) and lodec's settings for them.

    The settings live in the folder's lodec.toml, beside it as NAME.lodec.toml (a published folder stays
    byte-identical), or in the stack source as [skill.NAME]; docs/skill-contract.md.
    """


@skill.command("check", context_settings=CONTEXT)
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@json_option('Print {"ok", "skills": [{"name", "ok", "digest", "command", "capabilities", ...} or {"name", "ok", "error"}]}.')
def skill_check(folders: tuple[str, ...], as_json: bool) -> None:
    """Validate skill FOLDERS: SKILL.md under the Agent Skills spec (skills-ref), their settings, no links.

    Prints each skill's tree digest, the value `lodec lock` pins.

    \b
      lodec skill check stacks/code-review/skills/*
    """
    from ..app import runs as app

    rows = app.check_skills(folders)
    if as_json:
        result({"skills": [{**r.to_dict(), "path": str(r.folder)} if r.skill is None else
                           {k: v for k, v in r.to_dict().items() if k != "shadowed"} for r in rows]},
               ok=all(r.skill is not None for r in rows))
        sys.exit(1 if any(r.skill is None for r in rows) else 0)
    for r in rows:
        if r.skill is None:
            echo(error_line(r.error), err=True)
            continue
        s, c = r.skill, r.skill.config
        echo(printable(f"{s.source}: {s.name} ok, {len(s.files)} files, {s.digest}"))
        how = "through the agent runner (instructions only)" if s.instruction_only else " ".join(c.command)
        echo(printable(f"  runs {how} ({c.concurrency}, timeout {c.timeout} s, "
                       f"network {'yes' if c.network else 'no'}, env {', '.join(c.env) or 'none'})"))
        if s.settings_source is not None:
            echo(printable(f"  settings {s.settings_source} ({s.settings_digest})"))
    sys.exit(1 if any(r.skill is None for r in rows) else 0)


@skill.command("add", context_settings=CONTEXT)
@click.argument("folder", type=click.Path(file_okay=False))
@workspace_option
@json_option('Print {"ok", "name", "ref", "digest", "path", ...}: the installed skill.')
def skill_add(folder: str, workspace_dir: str | None, as_json: bool) -> None:
    """Validate FOLDER, then copy it into the state directory's skills/ (refuses a name clash).

    Inside a git repository that is <root>/.lodec/skills/; outside git,
    $LODEC_HOME/skills (default ~/.lodec/skills).

    \b
      lodec skill add stacks/code-review/skills/eslint-check
    """
    from ..app import runs as app

    with outcome(as_json):
        installed, dest = app.add_skill(folder, _workspace(workspace_dir))
    if as_json:
        result({**installed.to_dict(), "path": str(dest)})
    else:
        echo(f"Added {installed.ref} → {dest} ({installed.digest})")


@skill.command("list", context_settings=CONTEXT)
@click.option("--stack", "stack_path", type=click.Path(dir_okay=False),
              help="Also list skills/ beside this STACK.json (searched first).")
@workspace_option
@json_option('Print {"ok", "skills": [{"name", "ok", "shadowed", "digest", ...}]}, in lookup order.')
def skill_list(stack_path: str | None, workspace_dir: str | None, as_json: bool) -> None:
    """List the skills lodec would find, in lookup order; the first of a name wins.

    \b
      lodec skill list
      lodec skill list --stack stacks/code-review/code-review-stack.json
    """
    from ..app import runs as app

    rows = [r.to_dict() for r in app.list_skills(_workspace(workspace_dir), stack_path)]
    if as_json:
        result({"skills": rows})
        return
    if not rows:
        echo("No skills found (lodec skill add DIR installs one).")
    for r in rows:
        if r["ok"]:
            note = " (shadowed)" if r["shadowed"] else ""
            echo(printable(f"{r['name']:<24} {r['concurrency']:<9} {r['digest']}  {r['path']}{note}"))
        else:
            echo(printable(f"{r['name']:<24} INVALID   {r['error']['message']} [{r['error']['code']}]  {r['path']}"))


# ------------------------------------------------------------------ lock


@click.command(context_settings=CONTEXT)
@click.argument("manifest", metavar="STACK.json", type=click.Path(dir_okay=False))
@steps_option
@workspace_option
@json_option('Print {"ok", "manifest", "digest", "skillDigests", "warnings"}.')
def lock(manifest: str, steps_dir: str | None, workspace_dir: str | None, as_json: bool) -> None:
    """Pin every step's skill by tree digest in STACK.json (skillDigests; skill-stack-v2).

    The stack is verified first. Skills are looked up in skills/ beside the
    stack, then <git root>/.lodec/skills, then $LODEC_HOME/skills. The
    manifest is rewritten atomically; sign it again afterwards, since the
    pins are part of the signed bytes.

    \b
      lodec lock stacks/code-review/code-review-stack.json
    """
    from ..app import runs as app

    with outcome(as_json, manifest):
        locked = app.lock(manifest, _workspace(workspace_dir), steps_dir=steps_dir)
    for w in locked.warnings:
        echo(printable(f"lodec: warning: {w} [{w.code}]"), err=True)
    if as_json:
        emit(locked.to_dict())
        return
    for ref, s in locked.skills.items():
        echo(f"Pinned {ref} {s.digest} ({s.source})")
    echo(f"Locked {manifest}: {len(locked.skills)} skill(s); manifest digest {locked.digest}")


# ------------------------------------------------------------------ plan / run


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@steps_option
@workspace_option
@trust_options
@json_option('Print {"ok", "stack", "version", "digest", "runnable", "batches": [...], "cannot_run": [...]}: the '
             'same lines in one object.')
def plan(target: str, steps_dir: str | None, workspace_dir: str | None, trust: TrustArgs, as_json: bool) -> None:
    """Print the schedule as JSON lines: {"batch": N, "type": "read|write|exclusive|unknown", "steps": [...]}.

    Works on any stack that verifies. A batch lists as "runIf" its steps that
    run on failure or always rather than on success. Within a batch steps may
    run together; `lodec run` starts each step as soon as its dependencies
    finish, so batches are the order, not the timing.

    When `lodec run` could not run some steps (an imported stack whose
    skills are gha: or argo: references, an unlocked stack, a condition kept
    verbatim), the batches come from the DAG (type "unknown" where the skill
    is not a lodec skill), followed by one line per such step:
    {"step": NAME, "cannot_run": [{"code": ..., "reason": ...}]}, and a
    summary on stderr. Exit 0 either way once the stack verifies; `lodec run`
    is what refuses.

    \b
      lodec plan stacks/code-review/code-review-stack.json --workspace stacks/code-review/fixture
      lodec plan /tmp/argo/stack.json
    """
    from ..app import runs as app

    with outcome(as_json, target):
        planned = app.plan(target, _workspace(workspace_dir, trust.state), trust.options(), steps_dir=steps_dir)
    if as_json:
        result({"stack": planned.name, "version": planned.version, "digest": planned.digest,
                "runnable": planned.runnable, "batches": [b.to_dict() for b in planned.batches],
                "cannot_run": planned.blocked_lines()})
        return
    for batch in planned.batches:
        echo(json.dumps(batch.to_dict()))
    for line in planned.blocked_lines():
        echo(json.dumps(line, ensure_ascii=False))
    if planned.blocked:
        codes = sorted({b.code for why in planned.blocked.values() for b in why})
        total = sum(len(b.steps) for b in planned.batches)
        echo(printable(f"lodec: note: {len(planned.blocked)} of {total} steps of {planned.name} cannot run here "
                       f"({', '.join(codes)}); lodec run would refuse this stack"), err=True)


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@steps_option
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Steps at most at once. Default: CPUs (at least 2).")
@click.option("--trust", "trust_level", type=click.Choice(["strict", "normal"]), default="strict", show_default=True,
              help="strict: a step whose upstream artifacts are not all verified does not start; "
                   "normal: it starts and sees their statuses.")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Run skills without network = true even where no network namespace can be made.")
@click.option("--step", "only", metavar="NAME", multiple=True,
              help="Run only this step (repeatable). Its other upstream artifacts come from --reuse.")
@click.option("--reuse", "reuse_id", metavar="RUN_ID|latest",
              help="With --step: take the other steps' results from this earlier run of the same stack "
                   "(latest: the newest completed run with this manifest digest); their artifacts are re-hashed "
                   "before use. Steps downstream of a --step are not reused.")
@click.option("--engine", type=click.Choice(["local", "temporal"]), default="local", show_default=True,
              help="local: run the steps here. temporal: run them on lodec workers through a Temporal service "
                   "(--address, --store; docs/temporal.md).")
@click.option("--heartbeat", "heartbeat_s", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="temporal: seconds without a heartbeat before a step's worker counts as lost (and the step "
                   "is retried on another).")
@click.option("--attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="temporal: attempts per step in all (a lost worker or an infrastructure error is retried; a "
                   "refusal or a failed step is not).")
@temporal_options
@workspace_option
@trust_options
@json_option('Print {"ok", ...}: "ok" (the run succeeded), then the run record (run.json).')
def run(
    target: str,
    steps_dir: str | None,
    jobs: int | None,
    trust_level: str,
    allow_unsandboxed: bool,
    only: tuple[str, ...],
    reuse_id: str | None,
    engine: str,
    heartbeat_s: float,
    attempts: int,
    temporal: TemporalArgs,
    workspace_dir: str | None,
    trust: TrustArgs,
    as_json: bool,
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
      lodec run stack.json --engine temporal --address 127.0.0.1:7233 --store /shared/lodec-cas
    Records: .lodec/runs/<run-id>/{run.json,journal.md,provenance.json}; provenance.json
    (SLSA Provenance v1) is written when the run produced an artifact.

    With --engine temporal the stack is verified here exactly as above, put as a pack into --store,
    and run by `lodec worker` processes, each of which verifies it again against its own trust
    policy and its own installed skills before it runs a step; the records name each step's worker.
    """
    from ..app import runs as app
    from ..app.runs import RunRequest

    import os

    from ..app.options import OptionsError

    workspace = _workspace(workspace_dir, trust.state)
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    with outcome(as_json, target):
        request = RunRequest(jobs=jobs, trust=trust_level, allow_unsandboxed=allow_unsandboxed, only=only,
                             reuse=reuse_id, events=lambda event: _step_lines(event, github),
                             on_verified=first_use_note)
        if engine == "temporal":
            from ..app.engine import run_temporal

            record = run_temporal(target, workspace, trust.options(), request,
                                  temporal.options(heartbeat_s, attempts), steps_dir=steps_dir)
        else:
            if temporal.given:
                name = "--" + temporal.given[0].replace("_", "-")
                raise OptionsError(f"{name} applies to --engine temporal", param_hint=name)
            record = app.run(target, workspace, trust.options(), request, steps_dir=steps_dir)
    if as_json:
        result(record.to_dict(), ok=record.status == "succeeded")
    else:
        counts: dict[str, int] = {}
        for rec in record.steps.values():
            counts[rec.status] = counts.get(rec.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        run_dir = workspace.run_dir(record.run)
        duration = (record.duration_ms or 0) / 1000
        echo(f"Run {record.run} {record.status}: {summary} ({duration:.2f} s)")
        echo(f"Sandbox: {record.sandbox}")
        echo(f"Journal: {run_dir / 'journal.md'}")
        provenance = run_dir / "provenance.json"
        echo(f"Provenance: {provenance}" if provenance.exists() else "Provenance: none (the run produced no artifact)")
    sys.exit(record.exit_code or 0)


def _step_lines(event: Any, github: bool) -> None:
    """One line per step start and end on stderr, terminal or not; a failed step's reason, exit code and
    the last 20 lines of its stderr (escaped), with GitHub Actions workflow commands under ``GITHUB_ACTIONS``."""
    from ..app.runs import log_tail

    name = printable(event.step)
    if event.kind == "start":
        echo(f"▶ {name} started ({event.concurrency})", err=True)
        return
    r = event.result
    took = "" if r.duration_ms is None else f" in {r.duration_ms / 1000:.2f} s"
    if r.status == "succeeded":
        echo(f"✓ {name} succeeded{took}", err=True)
        return
    why = printable(f"{r.reason}: {r.detail}" if r.detail else str(r.reason))
    if r.status == "skipped":
        echo(f"– {name} skipped: {why}", err=True)
        return
    code = "" if r.exit_code is None else f" (exit code {r.exit_code})"
    echo(f"✗ {name} failed{took}{code}: {why}", err=True)
    if github:
        echo(f"::error title={_gh_property(f'lodec: step {event.step} failed')}::{_gh_data(f'{why}{code}')}", err=True)
    tail = log_tail(event.stderr) if event.stderr is not None else []
    if not tail:
        return
    last = "the last line" if len(tail) == 1 else f"the last {len(tail)} lines"
    echo(f"::group::{_gh_data(name)}: {last} of stderr" if github else f"  {last} of stderr ({event.stderr}):",
         err=True)
    for line in tail:
        echo(f"  | {line}", err=True)
    if github:  # the group folds the lines; where the whole log is stays visible after it
        echo("::endgroup::", err=True)
    where = f" ({event.stderr})" if github else ""
    echo(f"  full log: lodec logs {name} --run {event.run}{where}", err=True)


def _gh_data(text: str) -> str:
    """A GitHub Actions workflow-command message: %, CR and LF escaped (they end or change the command)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    """A workflow-command property value: as ``_gh_data``, and ``:`` and ``,``, which end a property."""
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


# ------------------------------------------------------------------ logs


@click.command(context_settings=CONTEXT)
@click.argument("step")
@click.option("--run", "run_id", metavar="RUN_ID", help="The run. Default: the latest completed run.")
@click.option("--stdout", "stream", flag_value="stdout", help="The step's standard output.")
@click.option("--stderr", "stream", flag_value="stderr", default=True, help="The step's standard error (default).")
@workspace_option
def logs(step: str, run_id: str | None, stream: str, workspace_dir: str | None) -> None:
    """Print STEP's stderr (or --stdout) log from a run, as the step wrote it.

    \b
      lodec logs publish
      lodec logs lint --stdout --run 20261121T101500.123456Z-3f9a1c2e
    """
    from ..app import runs as app

    with outcome():
        data = app.read_log(_workspace(workspace_dir), step, stream=stream, run_id=run_id)
    write_out(data)  # the bytes as written, like cat


# ------------------------------------------------------------------ diff


@click.command(context_settings=CONTEXT)
@click.argument("old", metavar="OLD", type=click.Path(dir_okay=False))
@click.argument("new", metavar="NEW", type=click.Path(dir_okay=False))
@workspace_option
@json_option('Print {"ok", "old", "new", "same", "widened", "manifest", "steps", "skills"}.')
def diff(old: str, new: str, workspace_dir: str | None, as_json: bool) -> None:
    """Show what changed from OLD to NEW (manifests or packs), as a co-signer reviews an update.

    Both are verified first (skills too). Lists the manifest fields that
    changed, steps added, removed and changed field by field, skills whose
    code changed file by file, and capabilities that WIDENED (network, read
    and write paths, environment, concurrency). Exit 0 either way.

    \b
      lodec diff releases/1.0.0/stack.json stack.json
      lodec diff old.lodepack new.lodepack --json
    """
    from ..app.diff import diff_stacks

    with outcome(as_json):
        d = diff_stacks(old, new, _workspace(workspace_dir))
    if as_json:
        emit(d.to_dict())
        return
    if d.same:
        echo(printable(f"No change: {old} and {new} are the same stack."))
        return
    for c in d.manifest:
        echo(printable(f"manifest {c.where}: {c.old!r} → {c.new!r}"))
    echo(f"Steps: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed")
    for name in d.added:
        echo(printable(f"  + {name}"))
    for name in d.removed:
        echo(printable(f"  - {name}"))
    for name, changes in d.changed.items():
        echo(printable(f"  ~ {name}"))
        for c in changes:
            echo(printable(f"      {c.where}: {c.old!r} → {c.new!r}"))
    echo(f"Skills: {len(d.skills_added)} added, {len(d.skills_removed)} removed, {len(d.skills)} changed")
    for ref in d.skills_added:
        echo(printable(f"  + {ref} (all its capabilities are new)"))
    for ref in d.skills_removed:
        echo(printable(f"  - {ref}"))
    for s in d.skills:
        echo(printable(f"  ~ {s.ref} {s.old_digest} → {s.new_digest}"))
        for mark, paths in (("+", s.added), ("-", s.removed), ("~", s.changed)):
            for path in paths:
                echo(printable(f"      {mark} {path}"))
        for c in s.settings:
            echo(printable(f"      {c.where}: {c.old!r} → {c.new!r}"))
        for c in s.widened:
            echo(printable(f"      WIDENED {c.where}: {c.old!r} → {c.new!r}"))


# ------------------------------------------------------------------ resolve


@click.command(context_settings=CONTEXT)
@click.argument("target", metavar="STACK.json|PACK.lodepack", type=click.Path(dir_okay=False))
@click.argument("step")
@click.option("--run", "run_id", metavar="RUN_ID",
              help="The run to resolve against. Default: the stack's latest completed run.")
@click.option("--trust", "trust_level", type=click.Choice(["strict", "normal"]), default="strict", show_default=True,
              help="strict: only verified artifacts get a path; normal: integrity_mismatch ones too.")
@steps_option
@workspace_option
@trust_options
def resolve(target: str, step: str, run_id: str | None, trust_level: str, steps_dir: str | None,
            workspace_dir: str | None, trust: TrustArgs) -> None:
    """Print STEP's upstream artifacts and their statuses, re-hashing each artifact.

    {"ok", "step", "run", "upstream_artifacts": {"<step>/<output>": path|null},
    "upstream_status": {...: "verified"|"integrity_mismatch"|"missing"|"skipped"}}

    \b
      lodec resolve stacks/code-review/code-review-stack.json ai-review
    """
    from ..app import runs as app

    with outcome(False, target):
        resolved = app.resolve(target, step, _workspace(workspace_dir, trust.state), trust.options(), run_id=run_id,
                               level=trust_level, steps_dir=steps_dir)
    result(resolved.to_dict())


# ------------------------------------------------------------------ records


@click.group(context_settings=CONTEXT)
def runs() -> None:
    """List and discard recorded runs (.lodec/runs/ at the git root, or $LODEC_HOME/runs)."""


@runs.command("list", context_settings=CONTEXT)
@workspace_option
@json_option('Print {"ok", "runs": [{"run", "status", "stack", "version", "started", "duration_ms", "steps"}]}.')
def runs_list(workspace_dir: str | None, as_json: bool) -> None:
    """List runs, oldest first: id, status, stack, version, duration.

    \b
      lodec runs list
      lodec runs list --json
    """
    from ..app import runs as app

    rows: list[dict[str, Any]] = [
        {"run": r.run, "status": r.status, "stack": r.stack.name, "version": r.stack.version,
         "started": r.started, "duration_ms": r.duration_ms, "steps": {s: v.status for s, v in r.steps.items()}}
        for r in app.runs(_workspace(workspace_dir))]
    if as_json:
        result({"runs": rows})
        return
    if not rows:
        echo("No runs yet.")
    for r in rows:
        took = "–" if r["duration_ms"] is None else f"{r['duration_ms'] / 1000:.2f} s"
        echo(printable(f"{r['run']}  {r['status']:<9} {r['stack']} {r['version']}  {took}"))


@runs.command("discard", context_settings=CONTEXT)
@click.argument("run_id", metavar="RUN_ID")
@click.option("--dry-run", is_flag=True, help="List exactly what would be deleted; delete nothing.")
@workspace_option
@json_option('Print {"ok", "run", "dry_run", "files"}.')
def runs_discard(run_id: str, dry_run: bool, workspace_dir: str | None, as_json: bool) -> None:
    """Delete a run: its folder, and artifacts no other run records. Nothing else.

    \b
      lodec runs discard 20261121T101500.123456Z-3f9a1c2e --dry-run
    """
    from ..app import runs as app

    with outcome(as_json):
        files = app.discard(_workspace(workspace_dir), run_id, dry_run=dry_run)
    if as_json:
        result({"run": run_id, "dry_run": dry_run, "files": [str(p) for p in files]})
        return
    for p in files:
        echo(str(p))
    verb = "Would delete" if dry_run else "Deleted"
    echo(f"{verb} {len(files)} file(s) of run {run_id}", err=True)


@click.command(context_settings=CONTEXT)
@click.argument("run_id", metavar="[RUN_ID]", required=False)
@workspace_option
@json_option('Print {"ok", ...run.json, "artifacts": [{"step", "output", "blake3", "sha256", "size", "state"}]}.')
def journal(run_id: str | None, workspace_dir: str | None, as_json: bool) -> None:
    """Print a run's journal (default: the latest completed run), re-checking every artifact digest.

    A section per step: status, headline, artifacts; an artifact whose bytes
    changed since the run is marked TAMPERED. With --json: the run record
    and every artifact's state now (verified, tampered or missing).

    \b
      lodec journal
      lodec journal 20261121T101500.123456Z-3f9a1c2e --json
    """
    from ..app import runs as app

    with outcome(as_json):
        if as_json:
            data = app.journal_data(_workspace(workspace_dir), run_id)
        else:
            text = app.journal(_workspace(workspace_dir), run_id)
    if as_json:
        result(data)
    else:
        write_out(text)


@click.command(context_settings=CONTEXT)
@click.argument("step")
@click.argument("output", required=False)
@click.option("--run", "run_id", metavar="RUN_ID", help="The run that produced it. Default: the latest completed run.")
@workspace_option
def artifact(step: str, output: str | None, run_id: str | None, workspace_dir: str | None) -> None:
    """Print the bytes of STEP's artifact OUTPUT (default: its only output), re-hashed first.

    Refuses (exit 1) an artifact whose bytes no longer match the digest the
    run recorded (integrity_mismatch), or that is gone (artifact_missing).
    Artifacts reused from an earlier run (--step/--reuse) are found too.

    \b
      lodec artifact release-readiness
      lodec artifact license-audit artifact.json --run 20261121T101500.123456Z-3f9a1c2e
    """
    from ..app import runs as app

    with outcome():
        data = app.read_artifact(_workspace(workspace_dir), step, output, run_id=run_id)
    write_out(data)  # bytes go to the binary stream unchanged


@click.command(context_settings=CONTEXT)
@workspace_option
@json_option('Print {"ok", "runs", "runs_by_status", "run_duration_ms", "steps", "artifacts", "tampered"}.')
def analytics(workspace_dir: str | None, as_json: bool) -> None:
    """Runs by status; per step, counts by status and duration p50/p95; artifacts re-checked.

    \b
      lodec analytics
      lodec analytics --json
    """
    from ..app import runs as app

    figures = app.analytics(_workspace(workspace_dir))
    if as_json:
        result(figures)
        return
    echo(f"{figures['runs']} run(s): " + (", ".join(f"{n} {s}" for s, n in figures["runs_by_status"].items())
                                          or "none"))
    for name, entry in figures["steps"].items():
        counts = ", ".join(f"{n} {s}" for s, n in sorted(entry["counts"].items()))
        d = entry["duration_ms"]
        p50 = "–" if d["p50"] is None else f"{d['p50']:.0f} ms"
        p95 = "–" if d["p95"] is None else f"{d['p95']:.0f} ms"
        echo(printable(f"  {name:<24} {counts:<40} p50 {p50}, p95 {p95}"))
    a = figures["artifacts"]
    echo(f"Artifacts: {a['verified']} verified, {a['tampered']} tampered, {a['missing']} missing")
    for t in figures["tampered"]:
        echo(printable(f"  TAMPERED {t}"))


# ------------------------------------------------------------------ worker


@click.command(context_settings=CONTEXT)
@click.option("--engine", type=click.Choice(["temporal"]), default="temporal", show_default=True,
              help="The engine whose work to take: Temporal.")
@temporal_options
@click.option("--identity", metavar="NAME", help="This worker's name in run records. Default: <pid>@<host>.")
@click.option("--max-steps", type=click.IntRange(min=1), default=2, show_default=True,
              help="Steps this worker runs at once.")
@click.option("--skills-from", type=click.Choice(["workspace", "pack"]), default="workspace", show_default=True,
              help="workspace: run only the skills installed here (lodec skill add), each checked against its pin. "
                   "pack: run the skills the verified pack carries.")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Run steps without a sandbox where none works on this machine (their full access).")
@click.option("--trust", "trust_level", type=click.Choice(["strict", "normal"]), default="strict", show_default=True,
              help="The least artifact trust steps run at here. strict: a step whose upstream artifacts do not all "
                   "re-hash does not start, whatever the run asked (the run's --trust travels through Temporal). "
                   "normal: a run's --trust normal is honoured.")
@workspace_option
@trust_options
def worker(engine: str, temporal: TemporalArgs, identity: str | None, max_steps: int, skills_from: str,
           allow_unsandboxed: bool, trust_level: str, workspace_dir: str | None, trust: TrustArgs) -> None:
    """Take lodec steps from a Temporal task queue and run them here, sealed, until SIGINT or SIGTERM.

    Before every activity the worker fetches the pack named by digest from --store, re-hashes it
    and verifies it against ITS OWN trust (--key/--policy, or the workspace's trust-policy.toml) and
    ITS OWN installed skills, each against its pin. A pack that does not verify here, or a skill
    that drifted here, is refused (nothing runs; the run fails naming why). Steps work on
    --workspace as `lodec run` steps do; their artifacts and logs go into --store.

    \b
      lodec worker --address 127.0.0.1:7233 --store /shared/lodec-cas --workspace . --key alice.pub
    One line per step on stderr; docs/temporal.md says how to reach a real cluster (TLS, API key).
    """
    from ..app.engine import WorkerRequest, serve_worker

    def ready(name: str) -> None:
        echo(printable(f"lodec worker {name} polling {temporal.address} namespace {temporal.namespace} "
                       f"task queue {temporal.task_queue}"), err=True)

    with outcome(False):
        serve_worker(_workspace(workspace_dir, trust.state), trust.options(), temporal.options(),
                     WorkerRequest(identity=identity, max_steps=max_steps, skills_from=skills_from,
                                   allow_unsandboxed=allow_unsandboxed, trust=trust_level),
                     log=lambda line: echo(printable(line), err=True), on_ready=ready)


COMMANDS = (worker, skill, lock, plan, run, diff, resolve, runs, journal, artifact, logs, analytics)
