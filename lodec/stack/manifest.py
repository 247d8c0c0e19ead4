"""SkillStack manifests (seed 004): DAG checks, topological order, building.

A manifest is JSON of the ``skill-stack-v1.lode`` shape::

    {"name": ..., "version": ..., "description": ...,
     "steps": [names in topological order],
     "stepFingerprints": {name: "blake3:<hex>"},
     "entryPoint": name, "metadata": {key: value}}

Its canonical compiled form (a vein under ``skill-stack-v1``) is what gets
hashed: ``manifest_digest`` is that vein's fingerprint.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..format.codec import Vein, encode_record
from ..errors import StackError
from ..names import check_name
from ..format.schema import Schema, builtin_schema

#: The manifest field that makes a manifest ``skill-stack-v2`` (``docs/skill-contract.md``).
SKILL_DIGESTS = "skillDigests"


def graph_problems(deps: Mapping[str, Sequence[str]]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """All problems of a step graph, and its topological order.

    Returns:
        ``(problems, order)``: problems as ``(code, step, message)`` with
        codes ``dangling_dependency`` (a ``dependsOn`` naming no step of
        the stack), ``self_dependency``, ``cycle`` (one per cycle, naming
        it); ``order`` is the deterministic topological order of the steps
        not on a cycle. No problems: the graph is a closed DAG.
    """
    problems: list[tuple[str, str, str]] = []
    for name in sorted(deps):
        for dep in deps[name]:
            if dep == name:
                problems.append(("self_dependency", name, f'Step "{name}" depends on itself'))
            elif dep not in deps:
                problems.append(("dangling_dependency", name, f'Step "{name}" depends on "{dep}", which is not in the stack'))
    order = _kahn(deps)
    if len(order) < len(deps):
        ordered = set(order)  # once: building it per step made a cycle in a big stack quadratic
        remaining = {n for n in deps if n not in ordered}
        for cycle in _cycles(deps, remaining):
            path = " -> ".join([*cycle, cycle[0]])
            problems.append(("cycle", cycle[0], f"dependency cycle: {path}"))
    return problems, order


def _kahn(deps: Mapping[str, Sequence[str]]) -> list[str]:
    # Ties broken by name, so the order depends only on the graph, not on
    # the order steps were given in.
    indegree = {n: 0 for n in deps}
    dependents: dict[str, list[str]] = {n: [] for n in deps}
    for name, ds in deps.items():
        for dep in set(ds):
            if dep in deps and dep != name:
                indegree[name] += 1
                dependents[dep].append(name)
            elif dep == name:
                indegree[name] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for child in dependents[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, child)
    return order


def _cycles(deps: Mapping[str, Sequence[str]], nodes: set[str]) -> list[list[str]]:
    # Strongly connected components (iterative Tarjan) of the leftover nodes.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(d for d in set(deps[root]) if d in nodes)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(d for d in set(deps[child]) if d in nodes))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in deps[node]:
                    out.append(sorted(component))
    return out


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Deterministic topological order of a DAG (Kahn's algorithm, ties by name).

    Args:
        deps: step name -> names it depends on.

    Raises:
        StackError: with the first problem's code (``dangling_dependency``,
            ``self_dependency``, ``cycle``) and every problem in the message.
    """
    problems, order = graph_problems(deps)
    if problems:
        raise StackError("; ".join(p[2] for p in problems), code=problems[0][0])
    return order


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
        UnsafeNameError: the stack name or a step name breaks the name rule.
        SourceError: the result does not fit ``skill-stack-v1`` (e.g. empty description).
    """
    check_name(name, what="stack name")
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
