"""The authoring commands: ``lodec build`` (a stack source to a verified stack) and ``lodec skill init``."""

from __future__ import annotations

import click

from ..app import Workspace
from .options import CONTEXT, json_option, workspace_option
from .render import echo, emit, outcome, printable


@click.command(context_settings=CONTEXT)
@click.argument("source", metavar="[STACK_SOURCE]", required=False, type=click.Path(dir_okay=False))
@workspace_option
@json_option('Print {"ok", "source", "manifest", "stack", "version", "digest", "steps", "skillDigests", '
             '"written", "removed", "warnings"}.')
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary (two lines), warnings and errors.")
def build(source: str | None, workspace_dir: str | None, as_json: bool, quiet: bool) -> None:
    """Build a stack from its source (default ./lodec-stack.toml): compile every step, remove veins no
    source produces, build the manifest, pin the skills, verify. One command; every problem reported.

    \b
    STACK_SOURCE is TOML (docs/stack-source.md):
      name = "code-review-pipeline"
      version = "1.0.0"
      description = "Lint, analyze, and AI-review code changes"
      entry = "lint"
      manifest = "code-review-stack.json"
      steps = ["src/*.json"]
      [metadata]
      team = "platform"
      [skill.brainstorming]      # settings of a skill kept as published
      concurrency = "read"

    Incremental: only files whose bytes change are written (a build with
    nothing changed writes nothing); a changed skill pin, and a signature
    envelope beside the manifest that no longer matches it, are warned about
    on stderr. Exit 0 built and verified, 1 any problem (nothing written).

    \b
      lodec build
      lodec build stacks/code-review/lodec-stack.toml --json
    """
    from ..app import author

    with outcome(as_json, source or "lodec-stack.toml"):
        built = author.build_source(source, Workspace.discover(workspace_dir))
    for w in built.warnings:
        echo(printable(f"lodec: warning: {w} [{w.code}]"), err=True)
    if as_json:
        emit(built.to_dict())
        return
    if not quiet:
        for s in built.steps:
            echo(f"{'Compiled' if s.written else 'Unchanged'} {s.source} → {s.vein} ({s.fingerprint})")
        for path in built.removed:
            echo(f"Removed {path} (no source produces it)")
        for ref, digest in built.skills.items():
            echo(f"Pinned {ref} {digest}")
    state = "written" if built.manifest in built.written else "unchanged"
    echo(f"Built and verified {built.name} {built.version} → {built.manifest} ({state}): {len(built.steps)} steps, "
         f"{len(built.skills)} skill(s)")
    echo(f"Manifest digest: {built.digest}")


@click.command("init", context_settings=CONTEXT)
@click.argument("name")
@click.option("--dir", "parent", default=".", show_default=True, type=click.Path(file_okay=False),
              help="The folder to create NAME/ and NAME.lodec.toml in (e.g. skills/ beside a stack).")
@click.option("--description", help="What the skill does and when to use it (SKILL.md's description).")
@click.option("--program", is_flag=True, help="Also a program of its own (scripts/run, the settings' command); "
              "without it the skill is instructions only, carried out by the workspace's agent runner.")
@json_option('Print {"ok", "folder", "settings", "digest", "runner"}.')
def skill_init(name: str, parent: str, description: str | None, program: bool, as_json: bool) -> None:
    """Scaffold a valid Agent Skill NAME/ (SKILL.md with name and description, per the Agent Skills
    specification) and its lodec settings beside it, NAME.lodec.toml, so the folder stays publishable as is.

    \b
      lodec skill init summarize --dir skills --description "Summarizes a diff for reviewers."
      lodec skill init lint --dir skills --program
    """
    from ..app import author

    with outcome(as_json, name):
        made = author.init_skill(name, parent, description=description, program=program)
    if as_json:
        emit(made.to_dict())
        return
    echo(printable(f"Created {made.folder}/ (SKILL.md{', scripts/run' if program else ''}) and {made.settings}"))
    echo(f"Tree digest: {made.digest}")
    if not program:
        echo("Instructions only: lodec run hands SKILL.md to the workspace's agent runner (.lodec/agent.toml).")
