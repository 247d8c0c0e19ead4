#!/usr/bin/env python3
"""Benchmark: compile, stack build and verify at N = 100, 1,000, 10,000 and 100,000 steps; how time and memory grow.

What is measured
    For each N, the synthetic stack of ``bench_verify.py`` (N SkillStep
    sources cycling through the real step shapes of the GitHub Actions corpus,
    seed 2026, 0-3 dependencies per step), as whole processes:

    - ``lodec compile`` of the N sources into ``steps/`` (one process);
    - ``lodec stack build`` over the N veins;
    - ``lodec verify stack.json``, interleaved round by round with
      ``b3sum --check`` over the same veins (the floor peer, for reference).

    Each run's wall time (``time.perf_counter``), CPU time and peak resident
    set size (``ru_maxrss`` of that one process, from ``os.wait4``). Reported
    per N: median, min and max wall time, steps/s from the median, the
    median and the largest peak RSS. Growth: the ratio of the medians at
    100,000 and 10,000 steps (linear growth gives 10), per command. Memory:
    the growth of verify's peak RSS per added step, against the bytes
    verify has to hold (see below), and, in one process with
    ``tracemalloc``, the Python heap the finished report keeps and the
    peak while verifying.

Targets
    time(100,000) / time(10,000) <= 12 for ``lodec compile`` and for
    ``lodec verify``; verify's memory bounded by what it must hold.

What verify holds
    ``lodec verify`` returns a ``VerifiedStack`` that ``lodec run`` executes,
    so it keeps every verified vein: its bytes and its decoded record. It
    also holds the manifest (bytes and parsed), one result per step for the
    report and the DAG. The script prints the manifest and vein bytes per
    step next to the measured RSS growth per step.

How
    Sources are written once per N (not timed). The compile and build runs
    come first (``--build-runs``, default 3; ``--big-build-runs`` at
    100,000 steps, default 2, because one compile takes tens of seconds); the
    first compile writes new files, later ones replace them. Then the verify
    group: ``--warmups`` dropped rounds, ``--runs`` kept (``--big-runs`` at
    100,000). File arguments are relative (the commands run inside ``src/``
    and ``steps/``), and the soft stack limit is raised so that 100,000
    file names fit in one argv (Linux allows a quarter of it for arguments).

Run
    python benches/bench_growth.py [--sizes 100,1000,10000,100000] [--lodec /tmp/benchvenv/bin/lodec] [--json]

Needs ``b3sum``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_verify import (  # noqa: E402  (the sibling benchmark: same synthetic stack)
    DEFAULT_CORPUS,
    SEED,
    corpus_shapes,
    default_lodec,
    lodec_python,
    machine,
    synthetic_sources,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / "benches" / "out"
DEFAULT_SIZES = (100, 1_000, 10_000, 100_000)
BIG = 100_000
TARGET_GROWTH = 12.0


def _progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


TIME = "/usr/bin/time"
RSS_FILE = Path("/tmp") / f"bench_growth-{os.getpid()}.rss"


def run(argv: Sequence[str], cwd: Path) -> dict[str, float]:
    """Run ``argv`` as a whole process: wall s, CPU s and peak RSS (bytes) of that process. Abort on failure.

    The peak RSS comes from GNU ``/usr/bin/time -f %M``: a process started
    straight from this Python would report at least this Python's own RSS
    (Linux carries the high-water mark of the forked image across exec).
    Without /usr/bin/time, ``ru_maxrss`` of ``wait4`` is used and is such an
    upper bound. Wall time includes ``time``'s own fork, about 1 ms, alike
    for every command.
    """
    timed = os.access(TIME, os.X_OK)
    full = [TIME, "-f", "%M", "-o", str(RSS_FILE), "--", *argv] if timed else list(argv)
    start = time.perf_counter()
    proc = subprocess.Popen(full, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()  # small: the commands are quiet on success
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"bench_growth: `{' '.join(argv[:4])} ...` exited {proc.returncode} in {cwd}\n"
                 f"{err.decode(errors='replace')[-2000:]}")  # fmt: skip
    rss_kb = int(RSS_FILE.read_text().split()[-1]) if timed else usage.ru_maxrss
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": rss_kb * 1024}


def summary(runs: list[dict[str, float]], steps: int) -> dict[str, Any]:
    walls = sorted(r["wall"] for r in runs)
    rss = [r["rss"] for r in runs]
    med = statistics.median(walls)
    return {
        "runs": len(runs),
        "median_s": med,
        "min_s": walls[0],
        "max_s": walls[-1],
        "cpu_median_s": statistics.median(r["cpu"] for r in runs),
        "steps_per_s": steps / med,
        "rss_median_mb": statistics.median(rss) / 2**20,
        "rss_max_mb": max(rss) / 2**20,
        "walls_s": [r["wall"] for r in runs],
    }


def raise_stack_limit() -> None:
    """Let one argv hold 100,000 file names: Linux gives arguments a quarter of the stack limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    want = 256 * 2**20
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_STACK, (want, hard))


def one_size(args: argparse.Namespace, lodec: Path, shapes: Any, n: int) -> dict[str, Any]:
    work = (args.workdir / f"growth-{n}").absolute()
    src, steps = work / "src", work / "steps"
    for d in (src, steps):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    (work / "stack.json").unlink(missing_ok=True)
    names = []
    src_bytes = 0
    for record in synthetic_sources(shapes, n, args.seed):
        data = json.dumps(record, ensure_ascii=False, indent=1).encode()
        (src / f"{record['stepName']}.json").write_bytes(data)
        names.append(record["stepName"])
        src_bytes += len(data)
    _progress(f"{n:,} steps: wrote {src_bytes / 1e6:.1f} MB of sources")
    big = n >= BIG
    build_runs = args.big_build_runs if big else args.build_runs
    compile_argv = [str(lodec), "compile", *(f"{s}.json" for s in names), "-o", "../steps/", "-q"]
    build_argv = [str(lodec), "stack", "build", *(f"{s}.vein" for s in names), "--name", "bench-growth",
                  "--version", "1.0.0", "--description", f"Synthetic {n}-step stack", "-o", "../stack.json"]  # fmt: skip
    compiles, builds = [], []
    for r in range(build_runs):
        compiles.append(run(compile_argv, src))
        builds.append(run(build_argv, steps))
        _progress(f"{n:,} steps: compile {compiles[-1]['wall']:.2f} s, build {builds[-1]['wall']:.2f} s "
                  f"({r + 1}/{build_runs})")  # fmt: skip
    with open(work / "b3.txt", "wb") as out:
        subprocess.run(["b3sum", *(f"{s}.vein" for s in names)], cwd=steps, stdout=out, check=True)
    verify_argv = [str(lodec), "verify", "stack.json"]
    b3_argv = ["b3sum", "--check", "../b3.txt"]
    verifies, b3s = [], []
    runs = args.big_runs if big else args.runs
    for r in range(args.warmups + runs):
        pair = [("verify", verify_argv, work), ("b3sum", b3_argv, steps)]
        if r % 2:
            pair.reverse()
        got = {key: run(argv, cwd) for key, argv, cwd in pair}
        if r >= args.warmups:
            verifies.append(got["verify"])
            b3s.append(got["b3sum"])
    _progress(f"{n:,} steps: verify median {statistics.median(v['wall'] for v in verifies):.3f} s")
    vein_bytes = sum((steps / f"{s}.vein").stat().st_size for s in names)
    held = held_memory(lodec_python(lodec), work)
    return {
        "held": held,
        "steps": n,
        "source_bytes": src_bytes,
        "vein_bytes": vein_bytes,
        "manifest_bytes": (work / "stack.json").stat().st_size,
        "compile": summary(compiles, n),
        "build": summary(builds, n),
        "verify": summary(verifies, n),
        "b3sum": summary(b3s, n),
        "verify_paired_ratio_to_b3sum": sorted(v["wall"] / b["wall"] for v, b in zip(verifies, b3s)),
    }


HELD = r"""
import gc, json, tracemalloc
from lodec.app.verify import verify_stack_files
verify_stack_files("stack.json")  # imports and caches first
gc.collect()
tracemalloc.start()
report = verify_stack_files("stack.json")
held, peak = tracemalloc.get_traced_memory()
assert report.ok
print(json.dumps({"held": held, "peak": peak, "steps": len(report.steps)}))
"""


def held_memory(python: Path, work: Path) -> dict[str, float]:
    """In one process (tracemalloc): the bytes the verification report keeps, and the peak while verifying."""
    out = subprocess.run([str(python), "-P", "-c", HELD], cwd=work, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"bench_growth: in-process verify failed:\n{out.stderr[-2000:]}")
    d = json.loads(out.stdout)
    return {"held_bytes_per_step": d["held"] / d["steps"], "peak_bytes_per_step": d["peak"] / d["steps"],
            "held_mb": d["held"] / 2**20, "peak_mb": d["peak"] / 2**20}  # fmt: skip


def growth(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    by = {s["steps"]: s for s in sizes}
    out: dict[str, Any] = {}
    if 10_000 in by and BIG in by:
        a, b = by[10_000], by[BIG]
        for cmd in ("compile", "build", "verify", "b3sum"):
            ratio = b[cmd]["median_s"] / a[cmd]["median_s"]
            out[cmd] = {"ratio": ratio, "min_ratio": b[cmd]["min_s"] / a[cmd]["min_s"]}
            if cmd in ("compile", "verify"):
                out[cmd]["met"] = ratio <= TARGET_GROWTH
        rss_a, rss_b = a["verify"]["rss_median_mb"] * 2**20, b["verify"]["rss_median_mb"] * 2**20
        dn = BIG - 10_000
        out["verify_rss_bytes_per_step"] = (rss_b - rss_a) / dn
        out["vein_bytes_per_step"] = (b["vein_bytes"] - a["vein_bytes"]) / dn
        out["manifest_bytes_per_step"] = (b["manifest_bytes"] - a["manifest_bytes"]) / dn
    return out


def print_report(res: dict[str, Any]) -> None:
    m = res["machine"]
    print(f"bench_growth  {res['date']}")
    print(f"machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), Linux {m['kernel']}")
    print(f"         {m['python']}; {m['lodec']} ({m['lodec_install']} install: {m['lodec_path']}; repo HEAD {m['lodec_commit']})")
    print(f"         {m['b3sum']}")
    (a1, a5, _), (b1, b5, _) = res["loadavg_start_end"]
    print(f"load:    1/5-min load average {a1:.2f}/{a5:.2f} at start, {b1:.2f}/{b5:.2f} at end")
    print(f"method:  whole processes; wall by perf_counter, CPU and peak RSS of each process by wait4; compile and "
          f"build {res['build_runs']} runs ({res['big_build_runs']} at {BIG:,}); verify and b3sum --check interleaved, "
          f"{res['warmups']} warm-up + {res['runs']} kept rounds ({res['big_runs']} at {BIG:,}); warm page cache")
    print()
    head = (f"{'steps':>8} {'command':<14} {'median s':>9} {'min':>8} {'max':>8} {'steps/s':>9} {'cpu s':>7} "
            f"{'RSS MB':>7} {'max RSS':>8} {'runs':>4}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for s in res["sizes"]:
        for cmd in ("compile", "build", "verify", "b3sum"):
            r = s[cmd]
            label = {"build": "stack build", "b3sum": "b3sum --check"}.get(cmd, cmd)
            print(f"{s['steps']:>8,} {label:<14} {r['median_s']:>9.3f} {r['min_s']:>8.3f} {r['max_s']:>8.3f} "
                  f"{r['steps_per_s']:>9,.0f} {r['cpu_median_s']:>7.2f} {r['rss_median_mb']:>7.1f} "
                  f"{r['rss_max_mb']:>8.1f} {r['runs']:>4}")  # fmt: skip
        p = s["verify_paired_ratio_to_b3sum"]
        print(f"{'':>8} verify / b3sum: {s['verify']['median_s'] / s['b3sum']['median_s']:.2f}x (per round "
              f"{p[0]:.2f}-{p[-1]:.2f}); veins {s['vein_bytes'] / 1e6:.2f} MB, manifest {s['manifest_bytes'] / 1e6:.2f} MB")
        h = s["held"]
        print(f"{'':>8} verify holds {h['held_mb']:.1f} MB when done ({h['held_bytes_per_step']:,.0f} B/step: the "
              f"report with every vein and record), peak {h['peak_mb']:.1f} MB ({h['peak_bytes_per_step']:,.0f} B/step), "
              f"Python heap by tracemalloc")
    g = res["growth"]
    if g:
        print()
        print("growth, median time at 100,000 / at 10,000 steps (linear = 10):")
        for cmd in ("compile", "build", "verify", "b3sum"):
            r = g[cmd]
            verdict = f"  target <= {TARGET_GROWTH:g}: {'PASS' if r['met'] else 'MISS'}" if "met" in r else ""
            print(f"  {cmd:<8} {r['ratio']:6.2f}x (ratio of the fastest runs {r['min_ratio']:.2f}x){verdict}")
        print(f"memory:  verify peak RSS grows {g['verify_rss_bytes_per_step']:,.0f} B per added step; on disk a step "
              f"is {g['vein_bytes_per_step']:.0f} B of vein + {g['manifest_bytes_per_step']:.0f} B of manifest JSON; "
              f"held in memory (see 'verify holds' above): the vein, its decoded record, the parsed manifest entry "
              f"and one result")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], epilog="See the module docstring for the method.")
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated step counts")
    p.add_argument("--runs", type=int, default=10, help="kept verify rounds per size (default 10)")
    p.add_argument("--big-runs", type=int, default=5, help=f"kept verify rounds at {BIG:,} steps (default 5)")
    p.add_argument("--warmups", type=int, default=1, help="dropped verify rounds per size (default 1)")
    p.add_argument("--build-runs", type=int, default=3, help="compile + build runs per size (default 3)")
    p.add_argument("--big-build-runs", type=int, default=2, help=f"compile + build runs at {BIG:,} (default 2)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="work directory (default benches/out/)")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="GitHub Actions workflows (*.yml)")
    p.add_argument("--lodec", type=Path, default=None, help="lodec executable (default: the one beside this Python)")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--json-out", type=Path, default=None, metavar="FILE", help="also write the results to FILE")
    args = p.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if shutil.which("b3sum") is None:
        sys.exit("bench_growth: `b3sum` not found on PATH (Debian/Ubuntu: apt-get install b3sum)")
    lodec = (args.lodec or default_lodec()).absolute()
    raise_stack_limit()
    load_start = os.getloadavg()
    facts = machine(lodec_python(lodec), lodec)
    shapes = corpus_shapes(args.corpus)
    results = [one_size(args, lodec, shapes, n) for n in sizes]
    res = {
        "benchmark": "bench_growth",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": facts,
        "seed": args.seed,
        "runs": args.runs,
        "big_runs": args.big_runs,
        "warmups": args.warmups,
        "build_runs": args.build_runs,
        "big_build_runs": args.big_build_runs,
        "sizes": results,
        "growth": growth(results),
        "loadavg_start_end": [load_start, os.getloadavg()],
    }
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(res, indent=2) + "\n")
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_report(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
