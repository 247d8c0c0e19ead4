"""The ``lodec`` command line: a thin layer over the library.

Exit codes: 0 success, 1 invalid input or verification failed, 2 usage
error. Errors are one line on stderr (``lodec: FILE: LOCATION: message``);
``--json`` prints machine-readable results on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .errors import LodecError

if TYPE_CHECKING:
    from .schema import Schema

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(exc: LodecError, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": exc.to_dict()}, ensure_ascii=False))
    click.echo(f"lodec: {exc} [{exc.code}]", err=True)
    sys.exit(1)


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def _schema(path: str | None, default: str) -> Schema:
    from .schema import builtin_schema, load_schema

    return builtin_schema(default) if path is None else load_schema(path)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="lodec")
def main() -> None:
    """Compile agent workflow steps to canonical, fingerprinted .vein files,
    pin them in SkillStack manifests, and verify a stack before anything runs.

    \b
    The main job, on the bundled example:
      lodec compile steps/*-step.json -o stacks/code-review/steps/
      lodec stack build stacks/code-review/steps/*.vein --name code-review-pipeline \\
          --version 1.0.0 --description "..." --entry lint -o stacks/code-review/code-review-stack.json
      lodec verify stacks/code-review/code-review-stack.json

    Exit codes: 0 ok, 1 invalid input or verification failed, 2 usage error.
    """


# ------------------------------------------------------------------ schema


@main.group(context_settings=CONTEXT)
def schema() -> None:
    """Validate .lode schemas."""


@schema.command("check", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
def schema_check(files: tuple[str, ...], as_json: bool) -> None:
    """Validate FILES (.lode schemas) and print each schema's digest.

    A schema is {"schema": "lode", "version": N, "name": ..., "fields": [...],
    "reserved": [...]}; each field has a unique positive "id", a unique "name",
    a "type" (string, int, bool, bytes, T[] or map<string,T>) and "required".
    """
    from .fingerprint import format_fingerprint
    from .schema import load_schema

    results = []
    failed = False
    for path in files:
        try:
            s = load_schema(path)
        except LodecError as exc:
            failed = True
            results.append({"file": path, "ok": False, "error": exc.to_dict()})
            if not as_json:
                click.echo(f"lodec: {exc} [{exc.code}]", err=True)
            continue
        digest = format_fingerprint(s.digest)
        results.append(
            {"file": path, "ok": True, "name": s.name, "version": s.version, "fields": len(s.fields), "digest": digest}
        )
        if not as_json:
            click.echo(f"{path}: ok: {s.name} v{s.version}, {len(s.fields)} fields, schema digest {digest}")
    if as_json:
        _emit(results)
    sys.exit(1 if failed else 0)


# ----------------------------------------------------------------- compile


@main.command(context_settings=CONTEXT)
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-s", "--schema", "schema_path", type=click.Path(dir_okay=False),
              help="The .lode schema. Default: the built-in skill-step-v1.")
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="The .vein path for one source; a directory for several (or ending in /).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list: source, output, bytes, fingerprint.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success (errors still go to stderr).")
def compile(sources: tuple[str, ...], schema_path: str | None, output: str, as_json: bool, quiet: bool) -> None:
    """Compile SOURCES (strict JSON records) into canonical .vein files.

    With several sources, OUTPUT is a directory and each record is written
    to OUTPUT/<stepName>.vein (or <name>.vein for schemas without stepName).
    Every source is checked before anything is written; files are written
    atomically. Prints the size and the BLAKE3 fingerprint of each.
    """
    from .compiler import compile_file, default_output_path
    from .files import atomic_write_many

    out = Path(output)
    to_dir = len(sources) > 1 or output.endswith(("/", "\\")) or out.is_dir()
    try:
        s = _schema(schema_path, "skill-step-v1")
        compiled = []
        targets: dict[Path, str] = {}
        with _progress(len(sources), "Compiling", quiet or as_json) as bar:
            for src in sources:
                vein = compile_file(src, s)
                target = default_output_path(src, vein, out) if to_dir else out
                if target in targets:
                    raise LodecError(
                        f"writes {target}, as does {targets[target]}", code="duplicate_output", file=src
                    )
                targets[target] = src
                compiled.append((src, target, vein))
                bar.update(1)
        atomic_write_many([(target, vein.data) for _src, target, vein in compiled])
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit([{"source": s_, "output": str(t), "bytes": v.size, "fingerprint": v.fingerprint} for s_, t, v in compiled])
    elif not quiet:
        for src, target, vein in compiled:
            click.echo(f"Compiled {src} → {target} ({vein.size} bytes)")
            click.echo(f"Fingerprint: {vein.fingerprint}")


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress(total: int, label: str, silent: bool) -> Any:
    # Progress only for long work on a terminal; quiet when piped.
    if silent or total < 200 or not sys.stderr.isatty():
        return _NoBar()
    return click.progressbar(length=total, label=label, file=sys.stderr)


# ----------------------------------------------------------------- inspect


@main.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-s", "--schema", "schema_path", type=click.Path(dir_okay=False),
              help="The .lode schema. Default: found from the header among the built-in schemas.")
@click.option("--json", "as_json", is_flag=True, help="Also print the header and the fingerprint.")
def inspect(file: str, schema_path: str | None, as_json: bool) -> None:
    """Decode FILE (.vein) and print its record as source JSON.

    Decoding proves canonical form; compiling the printed JSON again gives
    identical bytes.
    """
    from .codec import HEADER_SIZE, decode_vein, record_to_json
    from .files import read_bounded
    from .fingerprint import format_fingerprint
    from .limits import DEFAULT_LIMITS
    from .schema import BUILTIN_SCHEMAS, builtin_schema, load_schema

    try:
        data = read_bounded(file, DEFAULT_LIMITS.max_file_bytes)
        if schema_path is not None:
            s = load_schema(schema_path)
        else:
            candidates = [builtin_schema(n) for n in BUILTIN_SCHEMAS]
            match = [c for c in candidates if data[5:13] == c.schema_id]
            s = match[0] if match else candidates[0]
            if not match and data[:4] == b"VEIN" and len(data) >= HEADER_SIZE:
                raise LodecError(
                    f"schema id {data[5:13].hex()} is not a built-in schema; pass -s SCHEMA.lode",
                    code="schema_unknown",
                    file=file,
                    location="byte 5 (header)",
                )
        vein = decode_vein(data, s, file=file)
    except LodecError as exc:
        _fail(exc, as_json)
    record = record_to_json(vein.record, s)
    if as_json:
        _emit(
            {
                "file": file,
                "header": {"magic": "VEIN", "formatVersion": data[4], "schemaId": data[5:13].hex()},
                "schema": {"name": s.name, "version": s.version, "digest": format_fingerprint(s.digest)},
                "bytes": vein.size,
                "fingerprint": vein.fingerprint,
                "record": record,
            }
        )
    else:
        _emit(record)


# ------------------------------------------------------------------- stack


@main.group(context_settings=CONTEXT)
def stack() -> None:
    """Build SkillStack manifests."""


def _meta(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--meta")
        if key in out:
            raise click.BadParameter(f"key {key!r} given twice", param_hint="--meta")
        out[key] = value
    return out


@stack.command("build", context_settings=CONTEXT)
@click.argument("veins", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Stack name (a safe name: A-Z a-z 0-9 . _ -).")
@click.option("--version", "version", required=True, help="Stack version, e.g. 1.0.0 (semantic versioning).")
@click.option("--description", required=True, help="One line saying what the stack does.")
@click.option("--entry", help="Entry point: a root step (one with no dependsOn).")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Metadata entry; repeat for more.")
@click.option("-s", "--schema", "schema_path", type=click.Path(dir_okay=False),
              help="Schema of the steps. Default: the built-in skill-step-v1.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Manifest path (STACK.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest and its digest as JSON.")
def stack_build(
    veins: tuple[str, ...],
    name: str,
    version: str,
    description: str,
    entry: str | None,
    meta: tuple[str, ...],
    schema_path: str | None,
    output: str,
    as_json: bool,
) -> None:
    """Write a SkillStack manifest pinning VEINS by fingerprint.

    Steps are listed in deterministic topological order (ties by name).
    Refuses duplicate step names, dangling dependsOn, cycles, and an entry
    point that is not a root. `lodec verify` expects the veins in steps/
    beside the manifest, named <stepName>.vein.
    """
    from .codec import decode_vein
    from .files import atomic_write, read_bounded
    from .limits import DEFAULT_LIMITS
    from .stack import build_manifest, manifest_json, manifest_vein

    metadata = _meta(meta)
    try:
        s = _schema(schema_path, "skill-step-v1")
        decoded = [decode_vein(read_bounded(p, DEFAULT_LIMITS.max_file_bytes), s, file=p) for p in veins]
        manifest = build_manifest(
            decoded, name=name, version=version, description=description, entry=entry, metadata=metadata
        )
        digest = manifest_vein(manifest).fingerprint
        atomic_write(output, manifest_json(manifest))
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit({"output": output, "digest": digest, "manifest": manifest})
    else:
        click.echo(f"Built {output}: {name} {version}, {len(manifest['steps'])} steps")
        click.echo(f"Manifest digest: {digest}")


# ------------------------------------------------------------------ verify


@main.command(context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
              help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"ok", "stack", "version", "digest", "steps", "problems"}.')
def verify(manifest: str, steps_dir: str | None, as_json: bool) -> None:
    """Verify MANIFEST and every step it pins. All or nothing.

    Checks the manifest against skill-stack-v1; every listed step present,
    canonical, pinned, with the pinned fingerprint and its own stepName;
    no pin without a step; the DAG closed and acyclic; the entry point a
    root. Reports every problem with a stable code; exit 0 verified, 1 rejected.
    """
    from .loaders import verify_stack_files

    try:
        report = verify_stack_files(manifest, steps_dir)
    except LodecError as exc:
        _fail(exc, as_json)
    if as_json:
        _emit(report.to_dict())
    elif report.ok:
        click.echo(f"Verified {report.stack} {report.version}: {len(report.steps)} steps, manifest digest {report.digest}")
    else:
        for p in report.problems:
            click.echo(f"{p.message} [{p.code}]", err=True)
        click.echo(
            f"Rejected {report.stack or manifest}: {len(report.problems)} problem(s); nothing may run.", err=True
        )
    sys.exit(0 if report.ok else 1)


# ------------------------------------------------------------------ import


@main.group("import", context_settings=CONTEXT)
def import_() -> None:
    """Import workflows from other systems as SkillStep sources and a stack."""


@import_.command("github-actions", context_settings=CONTEXT)
@click.argument("workflow", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Directory to write src/<stepName>.json, steps/<stepName>.vein and stack.json into.")
@click.option("--name", help="Stack name. Default: the workflow file's stem, made safe.")
@click.option("--version", "version", default="1.0.0", show_default=True, help="Stack version.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def import_github_actions(workflow: str, output: str, name: str | None, version: str, as_json: bool) -> None:
    """Turn a GitHub Actions WORKFLOW into SkillStep sources, compiled steps and a stack.

    One step per job step, named <job>.<step id or index>; skillRef gha:<uses>
    or gha:run; inputs from with: plus run, shell and working-directory;
    dependsOn the previous step of the job, or the last step of every job in
    needs:. A job calling a reusable workflow becomes one step. Secrets are
    never copied. See docs/import-github-actions.md. Then:
    `lodec verify OUTPUT/stack.json`.
    """
    from .compiler import compile_value
    from .files import atomic_write, atomic_write_many
    from .importers.github_actions import import_workflow
    from .schema import skill_step_schema
    from .stack import build_manifest, manifest_json, manifest_vein

    out = Path(output)
    try:
        imported = import_workflow(workflow)
        schema = skill_step_schema()
        veins = [compile_value(rec, schema, file=f"{workflow}#{rec['stepName']}") for rec in imported.steps]
        manifest = build_manifest(
            veins,
            name=name or imported.name,
            version=version,
            description=imported.description,
            metadata=imported.metadata,
        )
        files: list[tuple[str | Path, bytes]] = []
        for record, vein in zip(imported.steps, veins):
            step = vein.record["stepName"]
            files.append((out / "src" / f"{step}.json", (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()))
            files.append((out / "steps" / f"{step}.vein", vein.data))
        atomic_write_many(files)
        # The manifest last: a stack.json on disk means every step is there.
        atomic_write(out / "stack.json", manifest_json(manifest))
        digest = manifest_vein(manifest).fingerprint
    except LodecError as exc:
        _fail(exc, as_json)
    summary = {"workflow": workflow, "stack": str(out / "stack.json"), "name": manifest["name"],
               "steps": len(veins), "digest": digest}
    if as_json:
        _emit(summary)
    else:
        click.echo(f"Imported {workflow} → {out / 'stack.json'}: {manifest['name']}, {len(veins)} steps")
        click.echo(f"Manifest digest: {digest}")
