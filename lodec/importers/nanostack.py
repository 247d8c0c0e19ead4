"""Import a Nanostack custom stack (``stack.json``) as SkillStep (``skill-step-v1``) records.

A Nanostack custom stack (garagon/nanostack, ``examples/custom-stack-template``)
is JSON: ``name``, ``description``, a ``phase_graph`` (each phase a ``name``
and the phases it ``depends_on``) and ``skills``, the custom phases (each a
``name``, ``path``, ``concurrency`` and ``depends_on``). The mapping
(``docs/import-nanostack.md``):

* every phase of ``phase_graph`` becomes one step named after it;
* a phase that is a custom skill gets ``skillRef`` ``skill:<name>`` (a lodec
  skill of that name can be added, locked and run) and ``inputs``
  ``{"path": ..., "concurrency": ...}`` as declared; a built-in Nanostack
  phase (``think``, ``plan``, ``build``, ...) gets ``nanostack:<name>``;
* ``dependsOn`` is the phase's ``depends_on``, in order, repeats dropped.

A custom skill's ``depends_on`` must equal its phase's (or the stack would
say two things); a skill without a phase, an unknown dependency, a cycle,
an unknown key are refused. Every problem is reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from ..errors import (
    LodecError,
    ManyErrors,
    SourceError,
)
from ..format.strictjson import loads_strict
from ..format.unicode import nfc
from ..names import check_name, is_safe_name
from ..stack.graph import first_cycle
from .common import read_source, safe_name

__all__ = ["MAX_NANOSTACK_BYTES", "NanostackImport", "import_nanostack", "import_nanostack_bytes"]

MAX_NANOSTACK_BYTES = 1024 * 1024
_TOP_KEYS = {"schema_version", "kind", "name", "display_name", "description", "skills", "phase_graph",
             "expected_evidence"}
_SKILL_KEYS = {"name", "path", "concurrency", "depends_on"}
_PHASE_KEYS = {"name", "depends_on"}
_CONCURRENCY = ("read", "write", "exclusive")


@dataclass(frozen=True)
class NanostackImport:
    """Stack ``name``, ``description``, ``metadata`` and ``steps`` (SkillStep records in phase order)."""

    name: str
    description: str
    metadata: dict[str, str]
    steps: list[dict[str, object]]


def import_nanostack(path: str | os.PathLike[str]) -> NanostackImport:
    """Read a Nanostack ``stack.json`` and import it. Raises ``SourceError`` / ``ManyErrors`` / ``LimitExceeded``."""
    return import_nanostack_bytes(read_source(path, MAX_NANOSTACK_BYTES, "stack file"), filename=os.fspath(path))


def import_nanostack_bytes(data: bytes, *, filename: str) -> NanostackImport:
    """Import a Nanostack stack given as JSON bytes (strict JSON: no duplicate keys, no NaN)."""
    try:
        doc = loads_strict(data, file=filename)
    except LodecError as exc:
        raise SourceError(exc.message, code=exc.code, file=filename, location=exc.location) from None
    errors: list[LodecError] = []

    def problem(message: str, where: str | None) -> None:
        errors.append(SourceError(message, file=filename, location=where))

    if not isinstance(doc, dict):
        raise SourceError("the top level must be an object", file=filename)
    for key in doc:
        if key not in _TOP_KEYS:
            problem(f"unknown key {key!r} (lodec would not record it)", f"/{key}")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        problem("'name' must be a non-empty string", "/name")
        name = PurePath(filename).stem
    phases = doc.get("phase_graph")
    if not isinstance(phases, list) or not phases:
        raise SourceError("'phase_graph' must be a non-empty list", file=filename, location="/phase_graph")
    skills_node = doc.get("skills", [])
    if not isinstance(skills_node, list):
        problem("'skills' must be a list", "/skills")
        skills_node = []

    graph: dict[str, list[str]] = {}
    where_of: dict[str, str] = {}
    def entries(node: list[Any], where: str, what: str, keys: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each object of ``node`` with its location; a non-object or an unknown key is a problem."""
        for i, entry in enumerate(node):
            at = f"{where}/{i}"
            if not isinstance(entry, dict):
                problem(f"a {what} must be an object", at)
                continue
            for key in entry:
                if key not in keys:
                    problem(f"unknown key {key!r}", f"{at}/{key}")
            yield at, entry

    def phase_names(value: object, where: str) -> list[str] | None:
        """``depends_on`` as a list of phase names, repeats dropped; ``None`` (a problem) if it is not one."""
        if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
            problem("'depends_on' must be a list of phase names", where)
            return None
        return list(dict.fromkeys(value))

    for at, phase in entries(phases, "/phase_graph", "phase", _PHASE_KEYS):
        pname = phase.get("name")
        if not isinstance(pname, str) or not is_safe_name(pname):
            problem(f"phase name {pname!r} is not a safe name (1-128 of A-Z a-z 0-9 . _ -)", f"{at}/name")
            continue
        if pname in graph:
            problem(f"phase {pname!r} is given twice", f"{at}/name")
            continue
        graph[pname] = phase_names(phase.get("depends_on", []), f"{at}/depends_on") or []
        where_of[pname] = at
    for pname, deps in graph.items():
        for dep in deps:
            if dep == pname:
                problem(f"phase {pname!r} depends on itself", where_of[pname] + "/depends_on")
            elif dep not in graph:
                problem(f"phase {pname!r} depends on unknown phase {dep!r}", where_of[pname] + "/depends_on")
    if not errors:
        cycle = first_cycle(graph)
        if cycle is not None:
            problem("phases form a cycle through 'depends_on': " + " -> ".join(cycle),
                    where_of[cycle[0]] + "/depends_on")

    custom: dict[str, dict[str, Any]] = {}
    for at, skill in entries(skills_node, "/skills", "skill", _SKILL_KEYS):
        sname = skill.get("name")
        if not isinstance(sname, str) or sname not in graph:
            problem(f"skill {sname!r} is not a phase of 'phase_graph'", f"{at}/name")
            continue
        if sname in custom:
            problem(f"skill {sname!r} is given twice", f"{at}/name")
            continue
        if skill.get("concurrency", "read") not in _CONCURRENCY:
            problem(f"concurrency must be one of {', '.join(_CONCURRENCY)}", f"{at}/concurrency")
        if not isinstance(skill.get("path", ""), str):
            problem("'path' must be a string", f"{at}/path")
        if "depends_on" in skill:
            deps = phase_names(skill["depends_on"] or [], f"{at}/depends_on")
            if deps is not None and deps != graph[sname]:
                problem(f"skill {sname!r} depends on {skill['depends_on']} but its phase on {graph[sname]}",
                        f"{at}/depends_on")
        custom[sname] = skill
    if errors:
        raise errors[0] if len(errors) == 1 else ManyErrors(errors)

    steps: list[dict[str, object]] = []
    for pname, deps in graph.items():
        record: dict[str, object] = {"stepName": pname}
        if pname in custom:
            record["skillRef"] = f"skill:{pname}"
        else:
            record["skillRef"] = f"nanostack:{pname}"
        if deps:
            record["dependsOn"] = deps
        if pname in custom:
            skill = custom[pname]
            inputs = {k: nfc(str(skill[k])) for k in ("concurrency", "path") if k in skill}
            if inputs:
                record["inputs"] = inputs
        steps.append(record)
    metadata = {"importedFrom": "nanostack", "stackFile": nfc(PurePath(filename).name)}
    for key, label in (("kind", "kind"), ("schema_version", "schemaVersion"), ("display_name", "displayName")):
        if isinstance(doc.get(key), str) and doc[key]:
            metadata[label] = nfc(doc[key])
    description = doc.get("description")
    text = description.strip() if isinstance(description, str) and description.strip() else f"Nanostack stack {name}"
    return NanostackImport(check_name(safe_name(name, fallback="stack"), what="stack name"), nfc(text), metadata,
                           steps)
