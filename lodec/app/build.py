"""Use cases that build: compile sources, inspect veins, check schemas, build stacks, import workflows.

Each checks everything before it writes anything, and writes atomically
(``lodec.files``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LodecError, ManyErrors
from ..format.codec import Vein
from ..format.schema import Schema

if TYPE_CHECKING:
    from ..files import FolderReads


def schema_or_builtin(path: str | None, default: str) -> Schema:
    """The schema at ``path``, or the built-in schema ``default`` (``skill-step-v1``, ...) when ``None``.

    ``path`` may also name a built-in schema (``skill-step-v2``) when no such file exists.
    """
    from ..format.schema import BUILTIN_SCHEMAS, builtin_schema, load_schema

    if path is None:
        return builtin_schema(default)
    if path in BUILTIN_SCHEMAS and not os.path.lexists(path):
        return builtin_schema(path)
    return load_schema(path)


@dataclass(frozen=True)
class SchemaCheck:
    """One ``lodec schema check`` result: ``schema`` on success, else ``error``."""

    file: str
    schema: Schema | None = None
    error: LodecError | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.schema is None:
            assert self.error is not None
            return {"file": self.file, "ok": False, "error": self.error.to_dict()}
        from ..format.fingerprint import format_fingerprint

        s = self.schema
        return {"file": self.file, "ok": True, "name": s.name, "version": s.version, "fields": len(s.fields),
                "digest": format_fingerprint(s.digest)}


def check_schemas(files: Sequence[str]) -> list[SchemaCheck]:
    """Validate each ``.lode`` file; every file is reported, valid or not."""
    from ..format.schema import load_schema

    out = []
    for path in files:
        try:
            out.append(SchemaCheck(path, schema=load_schema(path)))
        except LodecError as exc:
            out.append(SchemaCheck(path, error=exc))
    return out


class Compiled:
    """One compiled source: where it came from, where it was written (``target``; ``output`` as a ``Path``), the vein.

    A plain slotted class, not a dataclass: a 10,000-step compile makes one per step.
    """

    __slots__ = ("source", "target", "vein")

    def __init__(self, source: str, target: str, vein: Vein) -> None:
        self.source = source
        self.target = target
        self.vein = vein

    @property
    def output(self) -> Path:
        return Path(self.target)

    def __repr__(self) -> str:
        return f"Compiled(source={self.source!r}, output={self.output!r}, vein={self.vein!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Compiled:
            return NotImplemented
        return (self.source, self.target, self.vein) == (other.source, other.target, other.vein)

    __hash__ = None  # type: ignore[assignment]


def compile_sources(
    sources: Sequence[str],
    output: str,
    schema_path: str | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> list[Compiled]:
    """Compile strict-JSON ``sources`` into canonical veins; write them only if all compile.

    ``output`` is the vein path for one source, or a directory (several
    sources, an existing directory, or a path ending in ``/``): each record
    goes to ``<output>/<stepName>.vein``. ``progress(1)`` is called per source.
    A target that already holds exactly the vein's bytes is left alone.

    Raises:
        ManyErrors: every source that fails (each naming it and the place
            inside it), and ``duplicate_output`` for two sources that would
            write one file; nothing is written. (A single failure is raised as itself.)
        LodecError: ``file_unwritable``.
    """
    import gc

    from ..files import FolderReads, atomic_write_many
    from ..format.compiler import default_output_path, output_name, source_compiler
    from ..names import is_safe_name

    out = Path(output)
    to_dir = len(sources) > 1 or output.endswith(("/", "\\")) or out.is_dir()
    schema = schema_or_builtin(schema_path, "skill-step-v1")
    base = str(out)
    prefix = "" if base == "." else os.path.join(base, "")  # as str(out / name) gives, without a Path per step
    by_step = "stepName" in schema.by_name  # output_name's first choice: a safe stepName is the name
    compiled: list[Compiled] = []
    targets: dict[str, str] = {}
    errors: list[LodecError] = []
    # The loop only allocates (records, veins): the cyclic collector would walk every one kept so far, again
    # and again, and free nothing (about a third of a 10,000-step compile).
    collecting = gc.isenabled()
    gc.disable()
    reads = FolderReads()
    compile_one = source_compiler(schema, reads=reads)
    try:
        for src in sources:
            try:
                vein = compile_one(src)
                if to_dir:
                    name = vein.record.get("stepName") if by_step else None
                    if not is_safe_name(name):
                        name = output_name(vein, file=src)  # the other cases, and the error for an unsafe name
                    target = prefix + name + ".vein" if name is not None else str(default_output_path(src, vein, out))
                else:
                    target = base
            except LodecError as exc:
                errors.append(exc)
                continue
            finally:
                if progress is not None:
                    progress(1)
            if target in targets:
                errors.append(LodecError(f"writes {target}, as does {targets[target]}", code="duplicate_output",
                                         file=src))
                continue
            targets[target] = src
            compiled.append(Compiled(src, target, vein))
        if errors:
            raise errors[0] if len(errors) == 1 else ManyErrors(errors)
        present = _names_in(base) if to_dir else None
        atomic_write_many([(c.target, c.vein.data) for c in compiled
                           if not _same_bytes(c.target, c.vein.data, present, len(prefix), reads)])
    finally:
        reads.close()
        if collecting:
            gc.enable()
    return compiled


def _names_in(directory: str) -> frozenset[str] | None:
    """The names in ``directory`` (one ``listdir`` instead of a ``stat`` per target); ``None`` if unreadable."""
    try:
        return frozenset(os.listdir(directory))
    except FileNotFoundError:
        return frozenset()
    except OSError:
        return None


def _same_bytes(path: str, data: bytes, present: frozenset[str] | None = None, cut: int = 0,
                reads: FolderReads | None = None) -> bool:
    """Whether ``path`` is a regular file holding exactly ``data``: then it is left alone (no write, no
    rename, its mtime kept), so re-compiling unchanged sources costs a read, not a write and a flush.

    ``present``: the names listed in the target's folder beforehand (``path[cut:]`` is the name); a name not
    among them needs writing without a look. A file that appears after the listing is written over (atomically),
    which a look just before would not have avoided either.
    """
    from ..files import read_bounded

    if present is not None and path[cut:] not in present:
        return False
    try:
        # At most len(data) bytes are read: a longer file is over that limit, so not the same.
        return (reads.read(path, len(data)) if reads is not None else read_bounded(path, len(data))) == data
    except (OSError, LodecError):
        return False


@dataclass(frozen=True)
class Inspected:
    """A decoded vein: its header fields, the schema used, the vein and its record as source JSON."""

    file: str
    format_version: int
    schema_id: str
    schema: Schema
    vein: Vein
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        from ..format.fingerprint import format_fingerprint

        s = self.schema
        return {
            "file": self.file,
            "header": {"magic": "VEIN", "formatVersion": self.format_version, "schemaId": self.schema_id},
            "schema": {"name": s.name, "version": s.version, "digest": format_fingerprint(s.digest)},
            "bytes": self.vein.size,
            "fingerprint": self.vein.fingerprint,
            "record": self.record,
        }


def inspect_vein(file: str, schema_path: str | None = None) -> Inspected:
    """Decode ``file`` (proving canonical form) with ``schema_path``, or the built-in schema its header names.

    Raises:
        LodecError: ``schema_unknown`` (a header naming no built-in schema and
            no ``schema_path``), or any decode error, naming the byte offset.
    """
    from ..files import read_bounded
    from ..format.codec import HEADER_SIZE, decode_vein, parse_header, record_to_json
    from ..format.schema import BUILTIN_SCHEMAS, builtin_schema, load_schema
    from ..limits import DEFAULT_LIMITS

    data = read_bounded(file, DEFAULT_LIMITS.max_file_bytes, follow=True)
    format_version, schema_id = parse_header(data)
    if schema_path is not None:
        schema = load_schema(schema_path)
    else:
        candidates = [builtin_schema(n) for n in BUILTIN_SCHEMAS]
        match = [c for c in candidates if schema_id == c.schema_id]
        schema = match[0] if match else candidates[0]
        if not match and data[:4] == b"VEIN" and len(data) >= HEADER_SIZE:
            raise LodecError(f"schema id {schema_id.hex()} is not a built-in schema; pass -s SCHEMA.lode",
                             code="schema_unknown", file=file, location="byte 5 (header)")
    vein = decode_vein(data, schema, file=file)
    return Inspected(file, format_version, schema_id.hex(), schema, vein, record_to_json(vein.record, schema))


@dataclass(frozen=True)
class BuiltStack:
    """A manifest written by ``build_stack``: its path, record and canonical digest."""

    output: str
    manifest: dict[str, Any]
    digest: str
    #: ``lodec.app.author.BuildWarning``s: a lock dropped, a signature envelope that no longer matches.
    warnings: tuple[Any, ...] = ()


def build_stack(
    veins: Sequence[str],
    *,
    name: str,
    version: str,
    description: str,
    output: str,
    entry: str | None = None,
    metadata: Mapping[str, str] | None = None,
    schema_path: str | None = None,
) -> BuiltStack:
    """Write a SkillStack manifest pinning ``veins`` by fingerprint, in topological order.

    Raises:
        LodecError: a vein that does not decode; duplicate step names,
            dangling ``dependsOn``, a cycle or a non-root entry point
            (``lodec.stack.manifest.build_manifest``); ``file_unwritable``.
    """
    from ..files import atomic_write, read_bounded
    from ..format.codec import decode_vein
    from ..limits import DEFAULT_LIMITS
    from ..stack.manifest import build_manifest, manifest_json, manifest_vein

    from ..format.schema import step_schema_for

    given = schema_or_builtin(schema_path, "") if schema_path is not None else None  # read once, not per vein

    def read(p: str) -> Vein:
        data = read_bounded(p, DEFAULT_LIMITS.max_file_bytes, follow=True)
        return decode_vein(data, given if given is not None else step_schema_for(data), file=p)

    decoded = [read(p) for p in veins]
    manifest = build_manifest(decoded, name=name, version=version, description=description, entry=entry,
                              metadata=dict(metadata or {}))
    digest = manifest_vein(manifest).fingerprint
    from .author import BuildWarning, _envelope_warning, _json_object, _read_manifest

    data = manifest_json(manifest)
    warnings = []
    before = _json_object(_read_manifest(Path(output)))
    if before is not None and before.get("skillDigests"):
        warnings.append(BuildWarning("lock_dropped", output, "was locked (skillDigests); it is now written without "
                                     "skill pins: run `lodec lock` on it (or build it with `lodec build`, which "
                                     "keeps the lock)"))
    atomic_write(output, data)
    stale = _envelope_warning(Path(output), data)
    if stale is not None:
        warnings.append(stale)
    return BuiltStack(output, manifest, digest, tuple(warnings))


@dataclass(frozen=True)
class ImportedStack:
    """A workflow imported by ``import_github_actions``: the stack path, name, step count, digest."""

    workflow: str
    stack: Path
    name: str
    steps: int
    digest: str
    #: ``(step, uses)`` of actions not pinned to a full commit SHA (``unpinned_uses``).
    unpinned: tuple[tuple[str, str], ...] = ()
    #: Every reference that pins code, classified (``importers.github_actions.pin_rows``; GitHub Actions only).
    pins: tuple[dict[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"workflow": self.workflow, "stack": str(self.stack), "name": self.name,
                               "steps": self.steps, "digest": self.digest,
                               "unpinned": [{"step": s, "uses": u} for s, u in self.unpinned]}
        if self.pins:
            out["pins"] = list(self.pins)
        return out


def import_github_actions(workflow: str, output: str, *, name: str | None = None,
                          version: str = "1.0.0", require_pinned: bool = False) -> ImportedStack:
    """Turn a GitHub Actions workflow into ``src/<step>.json``, ``steps/<step>.vein`` and ``stack.json``.

    Mapping: ``docs/import-github-actions.md``. The manifest is written
    last: a ``stack.json`` on disk means every step is there.

    ``require_pinned`` refuses a workflow with an action not pinned to a full
    commit SHA (``unpinned_action``, one error per step; nothing is written);
    otherwise they are listed in the result.

    Raises:
        LodecError: the workflow cannot be read or mapped (naming the place), ``unpinned_action``,
            ``file_unwritable``.
    """
    from ..importers.github_actions import import_workflow, unpinned_uses

    out = Path(output)
    imported = import_workflow(workflow)
    unpinned = unpinned_uses(imported)
    if unpinned and require_pinned:
        errors = [LodecError(f"step {step!r} uses {uses}, which is not pinned to a full commit SHA (a tag or branch "
                             "can be moved to other code after approval)", code="unpinned_action", file=workflow,
                             location=imported.places.get(step))
                  for step, uses in unpinned]
        raise errors[0] if len(errors) == 1 else ManyErrors(errors)
    from ..importers.github_actions import pin_rows

    done = _write_import(workflow, out, imported.steps, "gha-step-v1", name=name or imported.name, version=version,
                         description=imported.description, metadata=imported.metadata, unpinned=tuple(unpinned))
    rows = pin_rows(imported.steps)
    for row in rows:
        row["place"] = imported.places.get(row["step"], "") if row["field"] == "uses" else ""
    return replace(done, pins=tuple(rows))


def _write_import(source: str, out: Path, records: Sequence[dict[str, Any]], schema_name: str, *, name: str,
                  version: str, description: str, metadata: Mapping[str, str],
                  unpinned: tuple[tuple[str, str], ...] = ()) -> ImportedStack:
    """Compile ``records`` under the built-in ``schema_name``, then write ``src/``, ``steps/`` and, last,
    ``stack.json`` (a ``stack.json`` on disk means every step is there)."""
    from ..files import atomic_write, atomic_write_many
    from ..format.compiler import compile_value
    from ..format.schema import builtin_schema
    from ..stack.manifest import build_manifest, manifest_json, manifest_vein

    schema = builtin_schema(schema_name)
    veins = [compile_value(rec, schema, file=f"{source}#{rec['stepName']}") for rec in records]
    manifest = build_manifest(veins, name=name, version=version, description=description, metadata=dict(metadata))
    files: list[tuple[str | Path, bytes]] = []
    for record, vein in zip(records, veins):
        step = vein.record["stepName"]
        files.append((out / "src" / f"{step}.json", (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()))
        files.append((out / "steps" / f"{step}.vein", vein.data))
    atomic_write_many(files)
    atomic_write(out / "stack.json", manifest_json(manifest))
    return ImportedStack(source, out / "stack.json", manifest["name"], len(veins), manifest_vein(manifest).fingerprint,
                         unpinned)


def import_argo(workflow: str, output: str, *, name: str | None = None, version: str = "1.0.0") -> ImportedStack:
    """Turn an Argo ``Workflow``/``WorkflowTemplate`` into ``argo-step-v1`` steps and a stack (``docs/import-argo.md``).

    Raises:
        LodecError: the file cannot be read or mapped (every problem at once: ``ManyErrors``), ``file_unwritable``.
    """
    from ..importers.argo import import_argo as read

    imported = read(workflow)
    return _write_import(workflow, Path(output), imported.steps, "argo-step-v1", name=name or imported.name,
                         version=version, description=imported.description, metadata=imported.metadata)


def import_nanostack(stack_file: str, output: str, *, name: str | None = None,
                     version: str = "1.0.0") -> ImportedStack:
    """Turn a Nanostack custom ``stack.json`` into ``skill-step-v1`` steps and a stack (``docs/import-nanostack.md``).

    Raises:
        LodecError: the file cannot be read or mapped (every problem at once: ``ManyErrors``), ``file_unwritable``.
    """
    from ..importers.nanostack import import_nanostack as read

    imported = read(stack_file)
    return _write_import(stack_file, Path(output), imported.steps, "skill-step-v1", name=name or imported.name,
                         version=version, description=imported.description, metadata=imported.metadata)
