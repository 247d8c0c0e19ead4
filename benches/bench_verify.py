#!/usr/bin/env python3
"""Benchmark: compile and verify a synthetic N-step stack; `lodec verify` vs `b3sum --check`.

What is measured
    1. ``lodec compile`` of N JSON sources in one process (steps/s), and
       ``lodec stack build`` over the N ``.vein`` files (wall time).
    2. ``lodec verify stack.json`` against two floor peers that read and hash
       the very same ``.vein`` files: ``b3sum --check b3.txt`` (BLAKE3, the
       hash lodec pins with) and ``sha256sum -c sha256.txt``. Context rows:
       ``python -c pass`` (interpreter start-up of lodec's own Python) and
       ``lodec --version`` (start-up plus the CLI import), and ``true`` (the
       cost of spawning any process from this harness). A third peer,
       ``python pb_verify.py pb-manifest.json`` (lodec's interpreter), reads
       the same N records encoded as protobuf (``pb/<name>.pb``), hashes each
       with ``hashlib.sha256`` against a JSON manifest, parses it with
       ``google.protobuf`` and checks its stepName: a Python verifier of
       protobuf records. It needs protobuf in lodec's interpreter (the
       ``bench`` extra); without it the row is left out. Optional extra
       lodec installs (``--extra-lodec``) add their own verify and
       ``--version`` rows, e.g. an editable against a regular install.
    3. In-process: ``lodec.verify_stack_files(path)`` timed inside one Python
       process (import time, first call, then R calls), separating start-up
       from per-step work; and ``lodec.compile_file`` over the N sources
       without writing, separating compile work from the CLI's fsync'd writes.

How
    Sources are drawn from real step shapes: every job step of the GitHub
    Actions workflows in the corpus becomes a shape (skillRef ``gha:<uses>``
    or ``gha:run``; inputs = its ``with:`` entries stringified plus ``run``,
    ``shell`` and ``working-directory``). N sources cycle through the shapes,
    named ``s000000``..., each depending on 0-3 earlier steps (a DAG), all
    drawn with ``random.Random(seed)`` (default 2026), so every run builds
    byte-identical files.

    Every command runs as a whole process (``subprocess.run``; wall time by
    ``time.perf_counter`` around it; stdout to /dev/null; exit status checked).
    The verify group is interleaved, A B C D E A B C D E ..., so machine noise
    hits every command alike; W warm-up rounds are discarded, R rounds kept.
    Reported: median, min and max wall time; steps/s from the median; the
    ratio of medians to ``b3sum --check``, and the range of the per-round
    (paired) ratios. Targets (issue 16): ``lodec verify`` median <= 2.5x
    ``b3sum --check``; ``lodec verify bench.lodepack`` (the same stack packed
    by ``lodec pack``, unsigned) <= 1.5x ``b3sum --check`` on the loose veins.
    Files are in the page cache after the warm-ups: this is a warm-cache
    benchmark for all commands alike.

Run
    python benches/bench_verify.py [--steps 10000] [--runs 10] [--lodec PATH] [--json]

Needs ``b3sum`` (Debian: ``apt-get install b3sum``) and ``sha256sum`` on PATH.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the interpreter used
    sys.exit("bench_verify: needs PyYAML; run it with the project's venv: .venv/bin/python benches/bench_verify.py")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path("/work/shared/corpus/github-actions")
DEFAULT_WORKDIR = REPO / "benches" / "out"
PB_VERIFY = Path(__file__).resolve().parent / "pb_verify.py"
TARGET_RATIO = 2.5  # issue 16: 10,000 loose steps <= 2.5x b3sum --check (was 3 in issue 6)
TARGET_PACK_RATIO = 1.5  # issue 16: the same stack from a .lodepack <= 1.5x
SEED = 2026

Shape = tuple[str, dict[str, str]]


# ------------------------------------------------------------------ sources


def _text(value: Any) -> str:
    """A YAML scalar as the string a workflow runner would see (true, not True)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def corpus_shapes(corpus: Path) -> list[Shape]:
    """Every job step of every workflow in ``corpus``, as ``(skillRef, inputs)``."""
    files = sorted([*corpus.glob("*.yml"), *corpus.glob("*.yaml")])
    shapes: list[Shape] = []
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for job in (doc.get("jobs") or {}).values():
            for step in (job or {}).get("steps") or []:
                if not isinstance(step, dict):
                    continue
                ref = f"gha:{step['uses']}" if "uses" in step else "gha:run"
                inputs = {str(k): _text(v) for k, v in (step.get("with") or {}).items()}
                for key in ("run", "shell", "working-directory"):
                    if key in step:
                        inputs[key] = _text(step[key])
                shapes.append((ref, inputs))
    if not shapes:
        sys.exit(f"bench_verify: no workflow steps found in {corpus}/*.yml")
    return shapes


def synthetic_sources(shapes: Sequence[Shape], n: int, seed: int) -> Iterator[dict[str, Any]]:
    """N SkillStep sources cycling through ``shapes``; each depends on 0-3 earlier steps."""
    rng = random.Random(seed)
    order = list(range(len(shapes)))
    rng.shuffle(order)
    for i in range(n):
        ref, inputs = shapes[order[i % len(order)]]
        k = min(i, rng.randint(0, 3))
        deps = sorted(rng.sample(range(i), k)) if k else []
        yield {
            "stepName": f"s{i:06d}",
            "skillRef": ref,
            "dependsOn": [f"s{d:06d}" for d in deps],
            "inputs": dict(inputs),
            "outputs": [f"out-{i}.json"],
        }


# ------------------------------------------------------------------ timing


@dataclass
class Stats:
    """Wall times (seconds) of one command over the kept rounds."""

    label: str
    argv: list[str]
    cwd: Path
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def summary(self, steps: int) -> dict[str, Any]:
        t = sorted(self.times)
        q = statistics.quantiles(t, n=4) if len(t) >= 2 else [t[0]] * 3
        return {
            "label": self.label,
            "command": _show(self.argv),
            "runs": len(t),
            "median_ms": 1e3 * self.median,
            "min_ms": 1e3 * t[0],
            "max_ms": 1e3 * t[-1],
            "p25_ms": 1e3 * q[0],
            "p75_ms": 1e3 * q[2],
            "steps_per_s": steps / self.median,
            "times_ms": [1e3 * x for x in self.times],
        }


def run_once(argv: Sequence[str], cwd: Path, stdout: Any = subprocess.DEVNULL) -> float:
    """Run ``argv`` as a whole process; return its wall time. Abort on failure."""
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-2000:]
        sys.exit(f"bench_verify: `{_show(argv)}` exited {proc.returncode} in {cwd}\n{err}")
    return elapsed


def interleaved(commands: Sequence[Stats], runs: int, warmups: int) -> list[dict[str, float]]:
    """Rounds of A B C ...; warm-ups discarded. Returns each kept round's times by label."""
    rounds: list[dict[str, float]] = []
    for r in range(warmups + runs):
        times = {c.label: run_once(c.argv, c.cwd) for c in commands}
        if r >= warmups:
            rounds.append(times)
            for c in commands:
                c.times.append(times[c.label])
        _progress(f"round {r + 1}/{warmups + runs}" + (" (warm-up)" if r < warmups else ""))
    return rounds


# ------------------------------------------------------------------ helpers


def _progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _show(argv: Sequence[str], limit: int = 6) -> str:
    """Shell form of ``argv``, long file lists abbreviated as ``first ... last (N files)``."""
    args = list(argv)
    files = [a for a in args if a.endswith((".json", ".vein")) and "/" in a]
    if len(files) > limit:
        i = args.index(files[0])
        args = [*args[:i], files[0], "...", files[-1], f"({len(files)} files)", *args[i + len(files) :]]
        return " ".join(a if a in ("...",) or a.startswith("(") else shlex.quote(a) for a in args)
    return shlex.join(args)


def _capture(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def lodec_python(lodec: Path) -> Path:
    """The interpreter a ``lodec`` console script runs with (its shebang)."""
    try:
        first = lodec.read_bytes().split(b"\n", 1)[0].decode()
    except OSError:
        first = ""
    if first.startswith("#!"):
        interp = shlex.split(first[2:])
        if interp and Path(interp[-1]).exists() and "python" in Path(interp[-1]).name:
            return Path(interp[-1])
    return Path(sys.executable)


def install_kind(python: Path) -> str:
    """``editable`` if ``lodec`` imports from outside that interpreter's site-packages, else ``regular``."""
    code = "import lodec, sysconfig; print(lodec.__file__); print(sysconfig.get_paths()['purelib'])"
    # -P and cwd=/: a lodec/ source tree in the current directory must not shadow the install.
    argv = [str(python), "-P", "-c", code]
    out = subprocess.run(argv, cwd="/", capture_output=True, text=True, check=True).stdout.split("\n")
    return "regular" if Path(out[0]).resolve().is_relative_to(Path(out[1]).resolve()) else "editable"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or "?"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def usable_cores() -> int:
    """CPUs this process may run on (affinity), else the CPU count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 0


def machine(python: Path, lodec: Path) -> dict[str, Any]:
    cpu = cpu_model()
    affinity = usable_cores()
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "kernel": platform.release(),
        "python": _capture([str(python), "--version"]),
        "python_path": str(python),
        "lodec": _capture([str(lodec), "--version"]),
        "lodec_path": str(lodec),
        "lodec_install": install_kind(python),
        "lodec_commit": commit or "?",
        "b3sum": _capture(["b3sum", "--version"]),
        "sha256sum": _capture(["sha256sum", "--version"]),
    }


PB_WRITE = r"""
import json, sys, hashlib, os
sys.path.insert(0, sys.argv[1])
from pb_verify import skill_step_class
SkillStep = skill_step_class()
src, out = sys.argv[2], sys.argv[3]
names = sys.stdin.read().split()
records = {}
total = 0
for name in names:
    with open(os.path.join(src, name + ".json"), "rb") as f:
        rec = json.loads(f.read())
    m = SkillStep(stepName=rec["stepName"], skillRef=rec["skillRef"], dependsOn=rec.get("dependsOn", []),
                  inputs=rec.get("inputs", {}), outputs=rec.get("outputs", []))
    data = m.SerializeToString(deterministic=True)
    with open(os.path.join(out, name + ".pb"), "wb") as f:
        f.write(data)
    records[name] = hashlib.sha256(data).hexdigest()
    total += len(data)
with open(os.path.join(out, "..", "pb-manifest.json"), "w") as f:
    json.dump({"dir": "pb", "records": records}, f)
print(total)
"""


def protobuf_peer_files(python: Path, work: Path, src: Path, names: Sequence[str]) -> bool:
    """Write ``pb/<name>.pb`` and ``pb-manifest.json`` with lodec's interpreter; False if it has no protobuf."""
    probe = subprocess.run([str(python), "-c", "import google.protobuf"], capture_output=True, check=False)
    if probe.returncode != 0:
        _progress(f"{python} has no protobuf (pip install protobuf, or the bench extra): no protobuf peer row")
        return False
    pb = work / "pb"
    if pb.exists():
        shutil.rmtree(pb)
    pb.mkdir()
    out = subprocess.run(
        [str(python), "-c", PB_WRITE, str(PB_VERIFY.parent), str(src), str(pb)],
        input="\n".join(names), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"bench_verify: writing the protobuf records failed:\n{out.stderr[-2000:]}")
    _progress(f"wrote {len(names)} protobuf records ({int(out.stdout) / 1e6:.2f} MB) into {pb}")
    return True


IN_PROCESS = r"""
import glob, json, sys, time
t0 = time.perf_counter()
import lodec
verify = lodec.verify_stack_files  # the lazy attribute imports loaders, verify, codec, ...
t1 = time.perf_counter()
report = verify(sys.argv[1])
t2 = time.perf_counter()
assert report.ok, report.to_dict()["problems"][:3]
times = []
for _ in range(int(sys.argv[2])):
    s = time.perf_counter()
    report = verify(sys.argv[1])
    times.append(time.perf_counter() - s)
    assert report.ok
compile_times = []
sources, schema = sorted(glob.glob("src/*.json")), lodec.skill_step_schema()
for _ in range(3):
    s = time.perf_counter()
    veins = [lodec.compile_file(p, schema) for p in sources]
    compile_times.append(time.perf_counter() - s)
print(json.dumps({"import_s": t1 - t0, "first_s": t2 - t1, "times_s": times, "compile_s": compile_times}))
"""


def in_process(python: Path, work: Path, runs: int, steps: int) -> dict[str, Any]:
    """Inside one process: import, first ``verify_stack_files`` call, R calls; compile without writing.

    Runs in ``work`` with ``-P`` so that ``import lodec`` finds the install, not a source tree in cwd.
    """
    out = subprocess.run(
        [str(python), "-P", "-c", IN_PROCESS, "stack.json", str(runs)],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"bench_verify: in-process verify failed:\n{out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    t = sorted(data["times_s"])
    c = statistics.median(data["compile_s"])
    return {
        "import_ms": 1e3 * data["import_s"],
        "first_call_ms": 1e3 * data["first_s"],
        "runs": len(t),
        "median_ms": 1e3 * statistics.median(t),
        "min_ms": 1e3 * t[0],
        "max_ms": 1e3 * t[-1],
        "steps_per_s": steps / statistics.median(t),
        "us_per_step": 1e6 * statistics.median(t) / steps,
        "compile_no_write_median_ms": 1e3 * c,
        "compile_no_write_steps_per_s": steps / c,
    }


# ------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], epilog="See the module docstring for the method.")
    p.add_argument("--steps", type=int, default=10_000, help="steps in the synthetic stack (default 10000)")
    p.add_argument("--runs", type=int, default=10, help="kept rounds of the verify group (default 10)")
    p.add_argument("--warmups", type=int, default=2, help="discarded warm-up rounds (default 2)")
    p.add_argument("--build-runs", type=int, default=3, help="rounds of compile + stack build (default 3)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="work directory (default benches/out/)")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="GitHub Actions workflows (*.yml)")
    p.add_argument("--lodec", type=Path, default=None, help="lodec executable (default: the one beside this Python)")
    p.add_argument(
        "--extra-lodec", type=Path, action="append", default=[], metavar="PATH",
        help="another lodec executable to time side by side (verify and --version); repeatable",
    )
    p.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    args = p.parse_args(argv)
    if args.steps < 1 or args.runs < 1 or args.warmups < 0 or args.build_runs < 1:
        p.error("--steps, --runs and --build-runs must be >= 1, --warmups >= 0")
    return args


def default_lodec() -> Path:
    beside = Path(sys.executable).parent / "lodec"
    if beside.exists():
        return beside
    found = shutil.which("lodec")
    if found is None:
        sys.exit("bench_verify: no lodec executable found; pass --lodec PATH")
    return Path(found)


def need(tool: str, hint: str) -> None:
    if shutil.which(tool) is None:
        sys.exit(f"bench_verify: `{tool}` not found on PATH; {hint}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    need("b3sum", "install it (Debian/Ubuntu: apt-get install b3sum) and run again")
    need("sha256sum", "it is part of GNU coreutils")
    lodec = (args.lodec or default_lodec()).absolute()
    if not os.access(lodec, os.X_OK):
        sys.exit(f"bench_verify: {lodec} is not an executable lodec")
    python = lodec_python(lodec)
    extras = [(p.absolute(), lodec_python(p.absolute())) for p in args.extra_lodec]
    n = args.steps
    load_start = os.getloadavg()

    work = (args.workdir / f"verify-{n}").absolute()
    src, steps_dir, manifest = work / "src", work / "steps", work / "stack.json"
    for d in (src, steps_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)

    # ---- sources
    shapes = corpus_shapes(args.corpus)
    names: list[str] = []
    src_bytes = 0
    for record in synthetic_sources(shapes, n, args.seed):
        data = json.dumps(record, ensure_ascii=False, indent=1).encode()
        (src / f"{record['stepName']}.json").write_bytes(data)
        names.append(record["stepName"])
        src_bytes += len(data)
    _progress(f"wrote {n} sources ({src_bytes / 1e6:.1f} MB) from {len(shapes)} corpus shapes into {src}")

    # ---- compile and stack build (as whole processes, relative paths: short argv)
    sources = [f"src/{name}.json" for name in names]
    veins = [f"steps/{name}.vein" for name in names]
    arg_bytes = max(sum(len(a) + 1 for a in files) for files in (sources, veins))
    try:
        arg_max = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        arg_max = 0
    if arg_max and arg_bytes > arg_max // 2:
        sys.exit(f"bench_verify: {arg_bytes} bytes of file arguments may exceed ARG_MAX ({arg_max}); use fewer --steps")
    compile_cmd = Stats("lodec compile", [str(lodec), "compile", *sources, "-o", "steps/", "-q"], work)
    build_cmd = Stats(
        "lodec stack build",
        [str(lodec), "stack", "build", *veins, "--name", "bench-stack", "--version", "1.0.0",
         "--description", f"Synthetic {n}-step stack from GitHub Actions step shapes", "-o", "stack.json"],
        work,
    )  # fmt: skip
    for r in range(args.build_runs):
        compile_cmd.times.append(run_once(compile_cmd.argv, work))
        build_cmd.times.append(run_once(build_cmd.argv, work))
        _progress(f"compile + stack build {r + 1}/{args.build_runs}")
    vein_bytes = sum((steps_dir / f"{name}.vein").stat().st_size for name in names)
    if len(list(steps_dir.iterdir())) != n:
        sys.exit(f"bench_verify: expected {n} veins in {steps_dir}")

    # ---- checksum files for the peers, over the same .vein files
    with open(work / "b3.txt", "wb") as out:
        run_once(["b3sum", *(f"{name}.vein" for name in names)], steps_dir, stdout=out)
    with open(work / "sha256.txt", "wb") as out:
        run_once(["sha256sum", *(f"{name}.vein" for name in names)], steps_dir, stdout=out)

    # ---- the same records as protobuf, for the Python protobuf + sha256 peer
    pb_ok = protobuf_peer_files(python, work, src, names)

    # ---- the same stack as one .lodepack (unsigned)
    run_once([str(lodec), "pack", "stack.json", "-o", "bench.lodepack"], work)

    # ---- the verify group, interleaved
    group = [
        Stats("lodec verify", [str(lodec), "verify", "stack.json"], work),
        Stats("lodec verify (.lodepack)", [str(lodec), "verify", "bench.lodepack"], work),
        Stats("b3sum --check", ["b3sum", "--check", "../b3.txt"], steps_dir),
        Stats("sha256sum -c", ["sha256sum", "-c", "../sha256.txt"], steps_dir),
        *([Stats("protobuf + sha256 (Python)", [str(python), str(PB_VERIFY), "pb-manifest.json"], work)]
          if pb_ok else []),
        Stats("python -c pass", [str(python), "-c", "pass"], work),
        Stats("lodec --version", [str(lodec), "--version"], work),
        Stats("true", ["true"], work),
    ]
    for path, py in extras:
        tag = f"{install_kind(py)}: {path}"
        group.append(Stats(f"lodec verify [{tag}]", [str(path), "verify", "stack.json"], work))
        group.append(Stats(f"lodec --version [{tag}]", [str(path), "--version"], work))
    rounds = interleaved(group, args.runs, args.warmups)
    inproc = in_process(python, work, args.runs, n)

    # ---- results
    base = next(c for c in group if c.label == "b3sum --check")
    rows = []
    for c in [compile_cmd, build_cmd, *group]:
        row = c.summary(n)
        row["cwd"] = os.path.relpath(c.cwd, work) if c.cwd != work else "."
        if c in group:
            paired = sorted(r[c.label] / r[base.label] for r in rounds)
            row["ratio_to_b3sum"] = c.median / base.median
            row["paired_ratio_min"], row["paired_ratio_max"] = paired[0], paired[-1]
        rows.append(row)
    verify_row = rows[2]
    ratio = verify_row["ratio_to_b3sum"]
    pack_ratio = rows[3]["ratio_to_b3sum"]
    result: dict[str, Any] = {
        "benchmark": "bench_verify",
        "date": dt.date.today().isoformat(),
        "machine": machine(python, lodec),
        "workdir": str(work),
        "steps": n,
        "corpus_shapes": len(shapes),
        "seed": args.seed,
        "runs": args.runs,
        "warmups": args.warmups,
        "build_runs": args.build_runs,
        "source_bytes": src_bytes,
        "vein_bytes": vein_bytes,
        "manifest_bytes": manifest.stat().st_size,
        "rows": rows,
        "in_process_verify": inproc,
        "loadavg_start_end": [load_start, os.getloadavg()],
        "target": {"ratio_max": TARGET_RATIO, "ratio": ratio, "met": ratio <= TARGET_RATIO},
        "target_pack": {"ratio_max": TARGET_PACK_RATIO, "ratio": pack_ratio, "met": pack_ratio <= TARGET_PACK_RATIO},
    }
    pb_rows = [r for r in rows if r["label"].startswith("protobuf + sha256")]
    if pb_rows:
        paired = sorted(r["lodec verify"] / r[pb_rows[0]["label"]] for r in rounds)
        result["lodec_vs_protobuf_peer"] = {
            "ratio": verify_row["median_ms"] / pb_rows[0]["median_ms"], "paired_min": paired[0], "paired_max": paired[-1],
        }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


def print_report(res: dict[str, Any]) -> None:
    m = res["machine"]
    n = res["steps"]
    print(f"bench_verify  {res['date']}")
    print(f"machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), Linux {m['kernel']}")
    print(f"         {m['python']} ({m['python_path']})")
    print(f"         {m['lodec']} ({m['lodec_install']} install: {m['lodec_path']}; repo HEAD {m['lodec_commit']})")
    print(f"         {m['b3sum']}; {m['sha256sum']}")
    print(
        f"input:   {n} steps from {res['corpus_shapes']} corpus step shapes (seed {res['seed']}); "
        f"sources {res['source_bytes'] / 1e6:.2f} MB, veins {res['vein_bytes'] / 1e6:.2f} MB "
        f"(mean {res['vein_bytes'] / n:.0f} B), manifest {res['manifest_bytes'] / 1e6:.2f} MB"
    )
    print(
        f"method:  whole processes, wall time; compile/build {res['build_runs']} runs; verify group interleaved, "
        f"{res['warmups']} warm-up + {res['runs']} kept rounds; warm page cache"
    )
    (a1, a5, _), (b1, b5, _) = res["loadavg_start_end"]
    print(f"load:    1/5-min load average {a1:.2f}/{a5:.2f} at start, {b1:.2f}/{b5:.2f} at end (the bench itself adds ~1)")
    print(f"workdir: {res['workdir']}")
    print()
    head = f"{'command':<28} {'median ms':>10} {'min':>9} {'max':>9} {'steps/s':>10} {'x b3sum':>8} {'paired range':>13}"
    print(head)
    print("-" * len(head))
    for r in res["rows"]:
        ratio = f"{r['ratio_to_b3sum']:.2f}" if "ratio_to_b3sum" in r else ""
        rng = f"{r['paired_ratio_min']:.2f}-{r['paired_ratio_max']:.2f}" if "ratio_to_b3sum" in r else ""
        sps = "" if r["label"].startswith(("python -c", "lodec --version", "true")) else f"{r['steps_per_s']:,.0f}"
        label = r["label"] if len(r["label"]) <= 28 else r["label"][:25] + "..."
        print(
            f"{label:<28} {r['median_ms']:>10.1f} {r['min_ms']:>9.1f} {r['max_ms']:>9.1f} {sps:>10} {ratio:>8} {rng:>13}"
        )
    ip = res["in_process_verify"]
    print()
    print(
        f"in-process lodec.verify_stack_files: median {ip['median_ms']:.1f} ms (min {ip['min_ms']:.1f}, "
        f"max {ip['max_ms']:.1f}, {ip['runs']} calls) = {ip['us_per_step']:.1f} us/step, "
        f"{ip['steps_per_s']:,.0f} steps/s; first call {ip['first_call_ms']:.1f} ms; "
        f"import lodec + verify modules {ip['import_ms']:.1f} ms"
    )
    print(
        f"in-process lodec.compile_file x {n}, no writes: median {ip['compile_no_write_median_ms']:.0f} ms "
        f"= {ip['compile_no_write_steps_per_s']:,.0f} steps/s (3 runs; the CLI also fsyncs each .vein)"
    )
    t = res["target"]
    verdict = "PASS" if t["met"] else "MISS"
    print(f"target:  lodec verify <= {t['ratio_max']:g}x b3sum --check: {verdict} ({t['ratio']:.2f}x)")
    t = res["target_pack"]
    print(f"         lodec verify of the .lodepack <= {t['ratio_max']:g}x b3sum --check on the loose veins: "
          f"{'PASS' if t['met'] else 'MISS'} ({t['ratio']:.2f}x)")
    if "lodec_vs_protobuf_peer" in res:
        pb = res["lodec_vs_protobuf_peer"]
        print(f"         lodec verify / protobuf + sha256 (Python): {pb['ratio']:.2f}x "
              f"(per round {pb['paired_min']:.2f}-{pb['paired_max']:.2f})")
    print()
    print("commands (cwd relative to workdir):")
    for r in res["rows"]:
        print(f"  [{r['cwd']}] {r['command']}")


if __name__ == "__main__":
    sys.exit(main())
