#!/usr/bin/env python3
"""Where `lodec verify` spends its in-process time: each phase timed on its own.

Run ``bench_verify.py`` first (it leaves ``benches/out/verify-<N>/``), then::

    python -P benches/verify_phases.py [benches/out/verify-10000/stack.json] [--runs 7]

Each line times one phase over all N steps inside this process (median of
``--runs`` calls, cyclic GC off as in ``verify_stack``): reading the files as
the loader does, decoding veins already in memory and its parts (the native decoder where built;
the Python fast path's cbor2 decode and re-encode check; BLAKE3), parsing and hashing the manifest, and
the DAG check. The phases overlap the total only roughly (each is measured
alone, caches warm). This uses lodec's internal modules, not only the public
API, so it may need updating when they change. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import cbor2

import lodec
from lodec import files
from lodec.format import codec, strictjson
from lodec.stack import verify as verify_mod
from lodec.stack.graph import graph_problems
from lodec.stack.manifest import manifest_vein

DEFAULT = Path(__file__).resolve().parent / "out" / "verify-10000" / "stack.json"


def timed(fn: Callable[[], object], runs: int) -> float:
    """Median wall time of ``fn()`` in ms, cyclic GC off during each call."""
    times = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        gc.enable()
    return 1e3 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("manifest", type=Path, nargs="?", default=DEFAULT)
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    manifest: Path = args.manifest
    if not manifest.exists():
        raise SystemExit(f"verify_phases: {manifest} not found; run benches/bench_verify.py first")
    steps_dir = manifest.parent / "steps"
    names: list[str] = json.loads(manifest.read_bytes())["steps"]
    paths = [str(steps_dir / f"{n}.vein") for n in names]
    step_schema, stack_schema = lodec.skill_step_schema(), lodec.skill_stack_schema()
    data = {n: files.read_bounded(path, 1 << 24) for n, path in zip(names, paths)}
    manifest_bytes = manifest.read_bytes()
    bodies = [d[codec.HEADER_SIZE :] for d in data.values()]
    decoded = [cbor2.loads(b) for b in bodies]
    deps = {n: codec.decode_vein(data[n], step_schema).record.get("dependsOn", []) for n in names}
    record = codec.record_from_json(strictjson.loads_strict(manifest_bytes), stack_schema)
    native = codec._compiled(step_schema).native(lodec.Limits())  # None where lodec._native was not built

    def read_all() -> None:
        for path in paths:
            files.read_bounded(path, 1 << 24)

    phases: list[tuple[str, Callable[[], object]]] = [
        ("verify_stack_files (everything)", lambda: lodec.verify_stack_files(manifest)),
        ("verify_stack, veins already in memory", lambda: verify_mod.verify_stack(manifest_bytes, data.get)),
        ("read N files (read_bounded)", read_all),
        ("decode_vein x N (bytes in memory)", lambda: [codec.decode_vein(d, step_schema) for d in data.values()]),
        (f"  the native decoder alone x N ({'built' if native else 'not built: skipped'})",
         lambda: [native.vein(d) for d in data.values()] if native else None),
        ("  the Python fast path's cbor2.loads x N", lambda: [cbor2.loads(b) for b in bodies]),
        ("  the Python fast path's cbor2.dumps x N", lambda: [cbor2.dumps(x) for x in decoded]),
        ("  BLAKE3 x N", lambda: [blake3.blake3(b).digest() for b in bodies]),
        ("manifest: strict JSON + schema check", lambda: codec.record_from_json(strictjson.loads_strict(manifest_bytes), stack_schema)),
        ("manifest: json.loads alone (for scale)", lambda: json.loads(manifest_bytes)),
        ("manifest digest (manifest_vein)", lambda: manifest_vein(record, stack_schema, _validated=True)),
        ("DAG check (graph_problems)", lambda: graph_problems(deps)),
    ]  # fmt: skip
    n = len(names)
    print(f"{n} steps, {manifest}; median of {args.runs} calls each")
    for label, fn in phases:
        ms = timed(fn, args.runs)
        print(f"{label:<46} {ms:8.1f} ms  {1e3 * ms / n:6.2f} us/step")


if __name__ == "__main__":
    main()
