"""lodec.stack.graph: the one home of cycle detection and topological order."""

from __future__ import annotations

import pytest

import lodec
from lodec.errors import StackError
from lodec.stack import manifest
from lodec.stack.graph import first_cycle, graph_problems, topological_order


def test_manifest_and_package_reexport_the_graph_functions() -> None:
    assert manifest.graph_problems is graph_problems
    assert manifest.topological_order is topological_order
    assert lodec.topological_order is topological_order


def test_topological_order_breaks_ties_by_name_not_input_order() -> None:
    deps = {"z": [], "b": ["z"], "a": ["z"], "c": ["a", "b"]}
    assert topological_order(deps) == ["z", "a", "b", "c"]
    assert topological_order(dict(reversed(deps.items()))) == ["z", "a", "b", "c"]


def test_graph_problems_lists_every_problem() -> None:
    problems, order = graph_problems({"a": ["a"], "b": ["ghost"], "c": ["d"], "d": ["c"], "e": []})
    assert [(code, step) for code, step, _ in problems] == [
        ("self_dependency", "a"),
        ("dangling_dependency", "b"),
        ("cycle", "a"),
        ("cycle", "c"),
    ]
    assert problems[3][2] == "dependency cycle: c -> d -> c"
    assert order == ["b", "e"]


def test_topological_order_raises_with_the_first_code() -> None:
    with pytest.raises(StackError) as info:
        topological_order({"a": ["b"], "b": ["a"]})
    assert info.value.code == "cycle"


@pytest.mark.parametrize(
    ("deps", "expected"),
    [
        ({}, None),
        ({"a": [], "b": ["a"], "c": ["a", "b"]}, None),
        ({"a": ["a"]}, ["a", "a"]),
        # Walked in mapping order, dependencies in listed order: the path follows the edges.
        ({"a": ["c"], "b": ["a"], "c": ["b"]}, ["a", "c", "b", "a"]),
        ({"x": [], "a": ["b"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"]),
        # Unknown names are skipped (graph_problems reports them).
        ({"a": ["ghost", "b"], "b": ["a"]}, ["a", "b", "a"]),
    ],
)
def test_first_cycle(deps: dict[str, list[str]], expected: list[str] | None) -> None:
    assert first_cycle(deps) == expected


def test_first_cycle_handles_deep_chains_without_recursion() -> None:
    n = 20_000
    deps = {f"s{i}": [f"s{i + 1}"] for i in range(n)}
    deps[f"s{n}"] = []
    assert first_cycle(deps) is None
    deps[f"s{n}"] = ["s0"]
    cycle = first_cycle(deps)
    assert cycle is not None and len(cycle) == n + 2 and cycle[0] == cycle[-1] == "s0"
