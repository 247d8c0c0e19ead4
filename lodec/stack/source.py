"""Stack sources: one TOML file that describes a whole stack for ``lodec build`` (``docs/stack-source.md``).

A stack source names the stack (name, version, description, entry point,
metadata), its steps (source files by path or glob, or records inline), where
the manifest goes and where the skills are, and optionally lodec's settings
of skills whose folders are kept as published (``[skill.<name>]``). Parsing
checks every key and reports every problem at once, each with the file and
the TOML key path (``/steps/2/source``).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LodecError, ManyErrors, SourceError
from ..files import read_bounded
from ..limits import DEFAULT_LIMITS

#: The file ``lodec build`` reads when none is named.
DEFAULT_SOURCE = "lodec-stack.toml"
DEFAULT_MANIFEST = "stack.json"
DEFAULT_SKILLS_DIR = "skills"
_KEYS = {"name", "version", "description", "entry", "manifest", "schema", "skills-dir", "metadata", "steps", "skill"}
_GLOB = re.compile(r"[*?\[]")
_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True)
class StepSource:
    """One step of a stack source: a source file (``path``), or an inline ``record``; ``place`` is its key path."""

    place: str
    path: Path | None = None
    record: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """How the step is named in messages: the source file, or ``SOURCE#/steps/N`` for an inline record."""
        return str(self.path) if self.path is not None else self.place


@dataclass(frozen=True)
class StackSource:
    """A parsed stack source; every path is resolved against the source file's folder.

    Attributes:
        file: the stack source's path (as given).
        name, version, description, entry, metadata: the manifest's fields.
        manifest: the manifest path (default ``stack.json`` beside the source); veins go to ``steps/`` beside it.
        schema: the steps' ``.lode`` schema, or the name of a built-in one (``skill-step-v2``), or ``None``
            for the built-in ``skill-step-v1``.
        skills_dir: where the stack's skills are (default ``skills/`` beside the manifest).
        steps: the steps, in the order written (globs expanded, sorted).
        skill_settings: skill name -> its lodec settings table (``[skill.<name>]``), as TOML values.
    """

    file: str
    name: str
    version: str
    description: str
    manifest: Path
    skills_dir: Path
    steps: tuple[StepSource, ...]
    entry: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    schema: Path | str | None = None
    skill_settings: dict[str, dict[str, Any]] = field(default_factory=dict)


def _toml_error(exc: Exception, file: str) -> SourceError:
    text = str(exc)
    m = _TOML_AT.search(text)
    where = f"line {m.group(1)} column {m.group(2)}" if m else None
    return SourceError(f"not valid TOML: {_TOML_AT.sub('', text).strip()}", code="source_invalid", file=file,
                       location=where)


def load_stack_source(path: str) -> StackSource:
    """Read and check a stack source (TOML 1.0, UTF-8; ``docs/stack-source.md``).

    Raises:
        FileMissing, LodecError: the file cannot be read.
        SourceError: ``source_invalid``: not TOML, an unknown key, a wrong
            type, a missing required key, a step path or glob that matches no
            file; ``ManyErrors`` when there are several (each with its key path).
    """
    import tomllib

    data = read_bounded(path, DEFAULT_LIMITS.max_file_bytes, follow=True)
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise SourceError("not UTF-8", code="source_invalid", file=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, path) from None
    base = Path(os.path.normpath(Path(path).parent))
    errors: list[LodecError] = []

    def bad(message: str, where: str) -> None:
        errors.append(SourceError(message, code="source_invalid", file=path, location=where))

    for key in sorted(set(doc) - _KEYS):
        bad(f"unknown key (known: {', '.join(sorted(_KEYS))})", f"/{key}")

    def text(key: str, *, required: bool = False) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                bad("missing required key", f"/{key}")
            return None
        if not isinstance(value, str) or not value:
            bad("must be a non-empty string", f"/{key}")
            return None
        return value

    name, version, description = text("name", required=True), text("version", required=True), \
        text("description", required=True)
    entry, manifest_rel, schema_rel, skills_rel = text("entry"), text("manifest"), text("schema"), text("skills-dir")
    metadata: dict[str, str] = {}
    meta = doc.get("metadata", {})
    if not isinstance(meta, dict):
        bad("must be a table of strings", "/metadata")
    else:
        for key, value in meta.items():
            if isinstance(value, str):
                metadata[key] = value
            else:
                bad("must be a string", f"/metadata/{key}")
    manifest = Path(os.path.normpath(base / (manifest_rel or DEFAULT_MANIFEST)))
    steps = _steps(doc.get("steps"), base, bad)
    settings: dict[str, dict[str, Any]] = {}
    skill_tables = doc.get("skill", {})
    if not isinstance(skill_tables, dict):
        bad("must be a table of [skill.<name>] tables", "/skill")
    else:
        for skill, table in skill_tables.items():
            if not isinstance(table, dict):
                bad("must be a table (lodec.toml's keys)", f"/skill/{skill}")
            else:
                settings[skill] = table
    if errors:
        raise errors[0] if len(errors) == 1 else ManyErrors(errors)
    assert name is not None and version is not None and description is not None
    return StackSource(
        file=path, name=name, version=version, description=description, manifest=manifest,
        skills_dir=Path(os.path.normpath(base / skills_rel)) if skills_rel else manifest.parent / DEFAULT_SKILLS_DIR,
        steps=tuple(steps), entry=entry, metadata=metadata,
        schema=_schema_path(base, schema_rel), skill_settings=settings,
    )


def _schema_path(base: Path, value: str | None) -> Path | str | None:
    """``schema``: a ``.lode`` file relative to the source, or a built-in schema's name when no such file exists."""
    from ..format.schema import BUILTIN_SCHEMAS

    if value is None:
        return None
    path = Path(os.path.normpath(base / value))
    return value if value in BUILTIN_SCHEMAS and not os.path.lexists(path) else path


def _steps(value: Any, base: Path, bad: Any) -> list[StepSource]:
    """``steps``: an array whose items are a path or glob (string), ``{source = PATH}``, or an inline record."""
    if value is None:
        bad("missing required key (an array of step source paths, or [[steps]] tables)", "/steps")
        return []
    if not isinstance(value, list) or not value:
        bad("must be a non-empty array", "/steps")
        return []
    out: list[StepSource] = []
    for i, item in enumerate(value):
        where = f"/steps/{i}"
        if isinstance(item, dict) and set(item) == {"source"}:
            item, where = item["source"], f"{where}/source"
        if isinstance(item, dict):
            out.append(StepSource(where, record=item))
            continue
        if not isinstance(item, str) or not item:
            bad("must be a path (string), {source = PATH} or an inline step record (table)", where)
            continue
        if _GLOB.search(item):
            matches = sorted(os.path.normpath(m) for m in glob.glob(str(base / item)))
            if not matches:
                bad(f"{item!r} matches no file", where)
            out.extend(StepSource(where, path=Path(m)) for m in matches)
        else:
            path = Path(os.path.normpath(base / item))
            if not path.is_file():
                bad(f"{item!r}: no such file ({path})", where)
                continue
            out.append(StepSource(where, path=path))
    return out
