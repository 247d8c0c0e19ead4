"""Dependency graphs (pure): problems, deterministic topological order, cycles.

A graph is a mapping ``name -> names it depends on`` (a step's
``dependsOn``, a GitHub Actions job's ``needs:``). Nothing here reads files.
``graph_problems`` and ``topological_order`` word their problems for the
steps of a stack (``docs/errors.md`` §Building a stack); ``first_cycle``
returns a path and leaves the wording to its caller.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from ..errors import StackError

__all__ = ["first_cycle", "graph_problems", "topological_order"]


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


def first_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The first cycle a depth-first walk meets, or ``None`` for an acyclic graph.

    Roots are visited in the mapping's order and each node's dependencies in
    their listed order, so the answer depends on that order (an importer
    reports the cycle as the file shows it). Names that are not keys of
    ``deps`` are skipped (``graph_problems`` reports them as dangling).
    Iterative, so deep chains do not hit the recursion limit.

    Returns:
        The cycle as a closed path ``[a, b, ..., a]``: each name depends on
        the next; a self-dependency is ``[a, a]``.
    """
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        pending = [iter(deps[root])]
        while pending:
            needed = next(pending[-1], None)
            if needed is None:
                pending.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif needed in on_path:
                return [*path[path.index(needed) :], needed]
            elif needed not in done and needed in deps:
                path.append(needed)
                on_path.add(needed)
                pending.append(iter(deps[needed]))
    return None
