#!/usr/bin/env python3
"""Benchmark: lodec's bounded YAML loader (lodec.importers.yamlsafe) against PyYAML's ``yaml.safe_load``.

What is measured
    In one process, interleaved round by round (lodec, peer, lodec, peer, ...):

    honest files
        The five GitHub Actions workflows and four Argo examples of
        ``tests/corpus/``: ``load_yaml`` (bounded: node and alias-expansion
        counting, depth, merge keys refused while composing) against
        ``yaml.safe_load`` (PyYAML's C-free SafeLoader, what lodec used
        before). The ratio is the price of the bounds on real input.
    billion laughs
        ``laughs(levels)`` (``tests/test_hostile_yaml.py``: 10**levels
        leaves in under 2 KB): lodec refuses it; the peer loads it (aliases
        shared, cheap) and then ``json.dumps`` walks it as any consumer that
        records a field would; the peer is stopped by a 2 s alarm, reported
        as ``>2 s``.
    deep nesting
        ``[`` nested N deep: lodec refuses it at depth 100; the peer either
        loads it or dies with ``RecursionError``.

    Each figure is the median of the rounds (and min-max); peak memory is
    ``tracemalloc``'s, from one extra run.

Run
    .venv/bin/python benches/bench_yaml_bounds.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lodec.errors import LodecError  # noqa: E402
from lodec.importers.yamlsafe import load_yaml  # noqa: E402
from tests.test_hostile_yaml import laughs  # noqa: E402


class _Alarm(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Alarm


def walk(value: Any) -> int:
    """Count the values of a loaded YAML document, aliases expanded (iterative: no recursion limit)."""
    count, todo = 0, [value]
    while todo:
        item = todo.pop()
        count += 1
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return count


def timed(fn: Callable[[], Any], limit: float = 2.0) -> tuple[float | None, str]:
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    start = time.perf_counter()
    try:
        fn()
        outcome = "loaded"
    except _Alarm:
        return None, "stopped by the alarm"
    except LodecError as exc:
        outcome = f"refused ({exc.code})"
    except RecursionError:
        outcome = "RecursionError"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return time.perf_counter() - start, outcome


def peak(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        timed(fn)
    finally:
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return top


def row(label: str, size: int, ours: Callable[[], Any], peer: Callable[[], Any], rounds: int) -> None:
    a: list[float] = []
    b: list[float | None] = []
    out_a = out_b = ""
    for _ in range(rounds):
        t, out_a = timed(ours)
        a.append(t if t is not None else float("inf"))
        t, out_b = timed(peer)
        b.append(t)
    ma = statistics.median(a)
    done = [x for x in b if x is not None]
    mb = statistics.median(done) if len(done) == len(b) else None
    ratio = f"{ma / mb:.2f}x" if mb else "-"
    peer_text = f"{mb * 1000:9.2f} ms" if mb is not None else "     >2 s  "
    print(f"{label:34} {size:9} B  lodec {ma * 1000:9.2f} ms ({out_a}, peak {peak(ours) / 1024:8.0f} KiB)  "
          f"peer {peer_text} ({out_b})  lodec/peer {ratio}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, PyYAML {yaml.__version__} (C loader used: no), rounds {args.rounds}")
    files = sorted((ROOT / "tests" / "corpus" / "github-actions").iterdir()) + \
        sorted((ROOT / "tests" / "corpus" / "argo").iterdir())
    for path in files:
        text = path.read_text()
        row(path.name, len(text.encode()), lambda t=text: load_yaml(t, file="x"),
            lambda t=text: yaml.safe_load(t), args.rounds)
    for levels in (6, 9, 12, 30):
        text = laughs(levels)
        row(f"billion laughs, {levels} levels", len(text.encode()), lambda t=text: load_yaml(t, file="x"),
            lambda t=text: walk(yaml.safe_load(t)), args.rounds)
    for depth in (1_000, 50_000, 500_000):
        text = "jobs: " + "[" * depth + "]" * depth + "\n"
        row(f"nesting {depth} deep", len(text.encode()), lambda t=text: load_yaml(t, file="x"),
            lambda t=text: yaml.safe_load(t), max(1, args.rounds // 3))


if __name__ == "__main__":
    main()
