#!/usr/bin/env python3
"""Benchmark: start-up of ``lodec --version`` and ``lodec verify`` on the 3-step example, against ``python -c pass``.

What is measured
    As whole processes, interleaved round by round (the order rotates each
    round), with lodec's own interpreter:

    - ``python -c pass``: the interpreter alone, the reference;
    - ``lodec --version``;
    - ``lodec verify code-review-stack.json``: the bundled 3-step
      ``stacks/code-review`` example, copied first into the work directory
      (so that edits to ``stacks/`` during a run cannot change the input);
    - context: ``python -c "import click"`` (the import the fast path
      avoids); ``python -c "import re, typing, dataclasses, ..., cbor2,
      blake3"``, every module from outside lodec that ``lodec verify``
      imports, so the floor of a verify written with these modules; and
      ``python -P -c "import lodec.app.verify"``, the library's verify path
      without the command line;
    - the same two lodec commands for each ``--extra-lodec`` install (e.g. a
      build of an older commit, for a before/after comparison).

    Each run: wall time (``time.perf_counter`` around ``subprocess``) and CPU
    time (user + system, from ``os.wait4``). Reported: median, min, max and
    IQR of both, and the ratio to ``python -c pass``: of the medians, and the
    range of the per-round (paired) ratios. CPU time is reported because it
    is less disturbed by other load on the machine than wall time.

Target
    ``lodec --version`` and ``lodec verify`` (3 steps) each at most 3x
    ``python -c pass`` (ratio of the median wall times).

Run
    python benches/bench_startup.py [--lodec /tmp/benchvenv/bin/lodec] [--rounds 60] [--extra-lodec PATH]

Use a regular (non-editable) install: an editable install adds an import
hook to every start of its interpreter. ``python -X importtime -m lodec
--version`` shows where the import time of one command goes.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_verify import default_lodec, install_kind, lodec_python, machine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / "benches" / "out"
EXAMPLE = REPO / "stacks" / "code-review"
MANIFEST = "code-review-stack.json"
TARGET_RATIO = 3.0
# What `lodec verify` imports from outside lodec (the stdlib modules and the two native dependencies), no lodec code.
FLOOR = "import re, typing, dataclasses, pathlib, datetime, json, gc, contextlib, heapq, base64, unicodedata, cbor2, blake3"


def run(argv: Sequence[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``argv`` as one process; abort unless it exits 0."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        sys.exit(f"bench_startup: `{' '.join(argv)}` exited {proc.returncode} in {cwd}\n{out.stderr[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def stats(xs: list[float]) -> dict[str, float]:
    t = sorted(xs)
    q = statistics.quantiles(t, n=4, method="inclusive")
    return {"median_ms": 1e3 * statistics.median(t), "min_ms": 1e3 * t[0], "max_ms": 1e3 * t[-1],
            "p25_ms": 1e3 * q[0], "p75_ms": 1e3 * q[2]}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], epilog="See the module docstring for the method.")
    p.add_argument("--lodec", type=Path, default=None, help="lodec executable (default: the one beside this Python)")
    p.add_argument("--extra-lodec", type=Path, action="append", default=[], metavar="PATH",
                   help="another lodec install to time side by side (repeatable)")  # fmt: skip
    p.add_argument("--rounds", type=int, default=60, help="kept rounds (default 60)")
    p.add_argument("--warmups", type=int, default=3, help="dropped rounds (default 3)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="work directory (default benches/out/)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    lodec = (args.lodec or default_lodec()).absolute()
    python = lodec_python(lodec)
    work = (args.workdir / "startup").absolute()
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(EXAMPLE, work / "code-review", ignore=shutil.ignore_patterns(".lodec"))
    cwd = work / "code-review"
    cmds: list[tuple[str, list[str]]] = [
        ("python -c pass", [str(python), "-c", "pass"]),
        ("lodec --version", [str(lodec), "--version"]),
        ("lodec verify (3 steps)", [str(lodec), "verify", MANIFEST]),
        ('python -c "import click"', [str(python), "-c", "import click"]),
        ("python: verify's imports, no lodec", [str(python), "-c", FLOOR]),
        ('python -P -c "import lodec.app.verify"', [str(python), "-P", "-c", "import lodec.app.verify"]),
    ]
    for extra in args.extra_lodec:
        e = extra.absolute()
        tag = f"[{install_kind(lodec_python(e))}: {e}]"
        cmds.append((f"lodec --version {tag}", [str(e), "--version"]))
        cmds.append((f"lodec verify (3 steps) {tag}", [str(e), "verify", MANIFEST]))
    load_start = os.getloadavg()
    facts = machine(python, lodec)
    walls: dict[str, list[float]] = {c: [] for c, _ in cmds}
    cpus: dict[str, list[float]] = {c: [] for c, _ in cmds}
    rounds: list[dict[str, float]] = []
    for r in range(args.warmups + args.rounds):
        shift = r % len(cmds)
        got = {}
        for label, a in cmds[shift:] + cmds[:shift]:
            got[label] = run(a, cwd)
        if r >= args.warmups:
            rounds.append({k: v[0] for k, v in got.items()})
            for k, (w, c) in got.items():
                walls[k].append(w)
                cpus[k].append(c)
    base = cmds[0][0]
    rows = []
    for label, a in cmds:
        paired = sorted(rd[label] / rd[base] for rd in rounds)
        w, c = stats(walls[label]), stats(cpus[label])
        rows.append({
            "label": label, "command": " ".join(a), "wall": w, "cpu": c,
            "ratio": w["median_ms"] / stats(walls[base])["median_ms"],
            "cpu_ratio": c["median_ms"] / stats(cpus[base])["median_ms"],
            "paired_min": paired[0], "paired_max": paired[-1],
            "paired_median": statistics.median(paired),
        })  # fmt: skip
    targets = {r["label"]: {"ratio": r["ratio"], "met": r["ratio"] <= TARGET_RATIO} for r in rows[1:3]}
    res = {
        "benchmark": "bench_startup",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": facts,
        "rounds": args.rounds,
        "warmups": args.warmups,
        "cwd": str(cwd),
        "rows": rows,
        "targets": targets,
        "loadavg_start_end": [load_start, os.getloadavg()],
    }
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    m = res["machine"]
    print(f"bench_startup  {res['date']}")
    print(f"machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), Linux {m['kernel']}")
    print(f"         {m['python']} ({m['python_path']}); {m['lodec']} ({m['lodec_install']} install: {m['lodec_path']}; "
          f"repo HEAD {m['lodec_commit']})")
    (a1, a5, _), (b1, b5, _) = res["loadavg_start_end"]
    print(f"load:    1/5-min load average {a1:.2f}/{a5:.2f} at start, {b1:.2f}/{b5:.2f} at end")
    print(f"method:  whole processes, interleaved and rotated, {args.warmups} warm-up + {args.rounds} kept rounds; "
          f"wall by perf_counter, CPU (user+sys) by wait4; cwd {cwd}")
    print()
    head = (f"{'command':<34} {'median ms':>9} {'min':>6} {'max':>6} {'IQR':>11} {'cpu ms':>7} "
            f"{'x pass':>7} {'paired (med, range)':>21} {'cpu x':>6}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in rows:
        w = r["wall"]
        label = r["label"] if len(r["label"]) <= 34 else r["label"][:31] + "..."
        print(f"{label:<34} {w['median_ms']:>9.1f} {w['min_ms']:>6.1f} {w['max_ms']:>6.1f} "
              f"{w['p25_ms']:>5.1f}-{w['p75_ms']:<5.1f} {r['cpu']['median_ms']:>7.1f} {r['ratio']:>7.2f} "
              f"{r['paired_median']:>7.2f} ({r['paired_min']:.2f}-{r['paired_max']:.2f}) {r['cpu_ratio']:>6.2f}")
    print()
    for label, t in targets.items():
        print(f"target:  {label} <= {TARGET_RATIO:g}x python -c pass: {'PASS' if t['met'] else 'MISS'} ({t['ratio']:.2f}x)")
    print()
    print("commands:")
    for r in rows:
        print(f"  {r['command']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
