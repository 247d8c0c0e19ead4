"""SkillStack manifests (seed 004): building, with the DAG checks of ``lodec.stack.graph``.

A manifest is JSON of the ``skill-stack-v1.lode`` shape::

    {"name": ..., "version": ..., "description": ...,
     "steps": [names in topological order],
     "stepFingerprints": {name: "blake3:<hex>"},
     "entryPoint": name, "metadata": {key: value}}

Its canonical compiled form (a vein under ``skill-stack-v1``) is what gets
hashed: ``manifest_digest`` is that vein's fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..format.codec import Vein, encode_record
from ..errors import StackError
from ..names import check_name, check_version
from ..format.schema import Schema, builtin_schema
# graph_problems is re-exported: lodec.stack.verify imports it from here.
from .graph import graph_problems, topological_order  # noqa: F401

#: The manifest field that makes a manifest ``skill-stack-v2`` (``docs/skill-contract.md``).
SKILL_DIGESTS = "skillDigests"


def step_dependencies(veins: Sequence[Vein]) -> dict[str, list[str]]:
    """``stepName -> dependsOn`` for compiled steps. Raises ``StackError`` on duplicate names."""
    deps: dict[str, list[str]] = {}
    for vein in veins:
        name = vein.record.get("stepName")
        if not isinstance(name, str):
            raise StackError(f"schema {vein.schema.name} has no stepName field; not a step", code="not_a_step")
        if name in deps:
            raise StackError(f'duplicate step name "{name}"', code="duplicate_step")
        deps[name] = list(vein.record.get("dependsOn", []))
    return deps


def build_manifest(
    veins: Sequence[Vein],
    *,
    name: str,
    version: str,
    description: str,
    entry: str | None = None,
    metadata: Mapping[str, str] | None = None,
    stack_schema: Schema | None = None,
) -> dict[str, Any]:
    """Build a SkillStack manifest pinning every step by fingerprint.

    Steps are listed in deterministic topological order (``topological_order``).

    Raises:
        StackError: duplicate step names (``duplicate_step``), dangling
            ``dependsOn``, cycles, an entry point that is not a step or not
            a root (``entry_point_invalid``).
        UnsafeNameError: the stack name or a step name breaks the name rule
            (``unsafe_name``), or the version breaks the version rule
            (``stack_version_unsafe``); ``lodec.names``.
        SourceError: the result does not fit ``skill-stack-v1`` (e.g. empty description).
    """
    check_name(name, what="stack name")
    check_version(version)
    deps = step_dependencies(veins)
    for step in deps:
        check_name(step)
    order = topological_order(deps)
    by_name = {v.record["stepName"]: v for v in veins}
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": description,
        "steps": order,
        "stepFingerprints": {n: by_name[n].fingerprint for n in order},
    }
    if entry is not None:
        if entry not in deps:
            raise StackError(f'entry point "{entry}" is not a step of this stack', code="entry_point_invalid")
        if deps[entry]:
            raise StackError(
                f'entry point "{entry}" is not a root: it depends on {", ".join(deps[entry])}', code="entry_point_invalid"
            )
        manifest["entryPoint"] = entry
    if metadata:
        manifest["metadata"] = dict(metadata)
    manifest_vein(manifest, stack_schema)
    return manifest


def manifest_json(manifest: Mapping[str, Any]) -> bytes:
    """Human-readable manifest JSON (2-space indent, UTF-8, trailing newline)."""
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def stack_schema_name(manifest: Mapping[str, Any]) -> str:
    """``"skill-stack-v2"`` for a manifest with ``skillDigests`` (skill pins), else ``"skill-stack-v1"``.

    Choosing by the field's presence keeps every v1 manifest digest unchanged.
    """
    return "skill-stack-v2" if SKILL_DIGESTS in manifest else "skill-stack-v1"


def stack_schema_for(manifest: Mapping[str, Any]) -> Schema:
    """The built-in schema named by ``stack_schema_name(manifest)``."""
    return builtin_schema(stack_schema_name(manifest))


def manifest_vein(manifest: Mapping[str, Any], stack_schema: Schema | None = None, *, _validated: bool = False) -> Vein:
    """The manifest's canonical compiled form; its ``fingerprint`` is the manifest digest.

    ``stack_schema`` defaults to ``stack_schema_for(manifest)``.
    Raises ``SourceError`` if the manifest does not fit that schema.
    """
    schema = stack_schema or stack_schema_for(manifest)
    return encode_record(schema, dict(manifest), file="<manifest>", _validated=_validated)


def lock_manifest(manifest: Mapping[str, Any], skill_digests: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """``manifest`` with its ``skillDigests`` set to ``skill_digests`` (``skill-stack-v2``).

    Returns ``(locked manifest, its canonical manifest digest)``; write it with
    ``manifest_json``. Pins are ``skill:<name>`` -> ``blake3:<64 hex>`` tree
    digests (``docs/skill-contract.md``).

    Raises:
        LodecError: the locked manifest does not fit ``skill-stack-v2``.
    """
    locked = {k: v for k, v in manifest.items() if k != SKILL_DIGESTS}
    locked[SKILL_DIGESTS] = dict(skill_digests)
    return locked, manifest_vein(locked).fingerprint
