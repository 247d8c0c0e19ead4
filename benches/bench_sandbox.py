#!/usr/bin/env python3
"""Benchmark: the per-step cost of a sealed step, ``lodec run`` against the same steps under bare ``bwrap``.

What is measured
    Two stacks of independent trivial steps (no ``dependsOn``), N = 20 and
    N = 200 by default (``--sizes``). Every step runs the same skill,
    ``tiny`` (concurrency ``read``, no capabilities), whose command is a
    two-line shell script::

        #!/bin/sh
        printf x > "$LODEC_OUTPUT_DIR/out.txt"

    writing its one declared output. The stacks are compiled, built and
    locked with the measured lodec's own command line (``lodec compile``,
    ``lodec stack build``, ``lodec lock``). Three commands per N, as whole
    processes, interleaved round by round (the order rotates each round):

    a. ``lodec run STACK --workspace WS --jobs 2``: the console script of
       the measured install, stdout to /dev/null, exit status 0 checked
       (lodec exits 1 if any step did not succeed).
    b. the floor: the same steps under bare bubblewrap, through
       ``xargs -0 -P2 -n K /usr/bin/bwrap``. The bwrap command lines are the
       exact ones lodec built for each step of a real run (recorded, see
       below), one per step, K arguments each, NUL-separated in a file; the
       work and output folders they bind are created beforehand (untimed).
       The environment is the one lodec gave the steps (``PATH``, ``LANG``,
       ``LODEC_*``) minus ``LODEC_STEP``, which the script does not read
       (``xargs`` gives every command the same environment). No stdin
       request (the script does not read it): ``xargs`` gives /dev/null.
    c. context, no sandbox: the same script file run straight through
       ``xargs -0 -P2 -n2 env LODEC_OUTPUT_DIR=<host out folder> <script>``
       (one ``env`` exec per step, which execs the script in place: no
       extra fork).

    Before each b and c run the ``out.txt`` files of the previous run are
    removed (untimed), so every step creates its file, as under lodec. After
    each run every output is checked (``x``, 1 byte), and lodec's new run
    folder is deleted (untimed).

    Recording the argv: one real ``lodec run`` of each stack (not timed; it
    also serves as a warm-up) runs lodec's own CLI entry point
    (``lodec.cli.main``) in lodec's interpreter, with
    ``lodec.run.executor.bwrap_argv`` and ``step_environment`` wrapped to
    record what they return; the console script's folder is put first on
    ``sys.path`` as the ``lodec`` script has it, since the sandbox binds the
    import path. So b runs each step's script in the same sandbox, bound
    from the same folders (that run's private skill copy and step folders).

    Each run: wall time (``time.perf_counter`` around the process) and CPU
    time (user + system from ``os.wait4``: the process and every descendant
    it waited for, so the bwrap processes and the scripts too). Reported:
    median and IQR; per step = median / N; lodec's added cost per step =
    (a - b) / N, per round (paired) and of the medians; a/b and b/c; and the
    slope between the two sizes, (t(200) - t(20)) / 180 per command, which
    separates the fixed cost of a run from the cost of each further step.

Target
    lodec's added cost per step at most 2 ms above bare bwrap. Checked two
    ways, both must hold: amortised at the largest N, (a - b) / N, and the
    marginal slope, ((a200 - a20) - (b200 - b20)) / 180.

Profile
    When the target is missed (or with ``--profile``): ``python -X
    importtime`` of one ``lodec run`` of the small stack (the top imports by
    cumulative time); an in-process ``lodec.app.runs.run`` over the large
    stack with timers around its phases (verify and bind, private skill
    copy, run records, the scheduling loop, journal, provenance; and inside
    each step's worker thread: ``bwrap_argv``, starting bwrap, the sandbox's
    lifetime, collecting the output); and ``cProfile`` of the same call,
    the main thread and every worker thread (one profiler per step, merged),
    sorted by cumulative time.

Run
    python benches/bench_sandbox.py [--lodec /tmp/benchvenv/bin/lodec] [--rounds 10] [--sizes 20,200] [--json]

Everything goes into a new temporary folder (``tempfile.mkdtemp``; removed at
the end unless ``--keep``), with ``LODEC_HOME`` pointing into it, so no
state of yours is touched. Needs Linux, ``bwrap`` (bubblewrap) that can make
user namespaces, GNU ``xargs``. Use a regular (non-editable) install of
lodec for headline figures. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_verify import (
    cpu_model,
    default_lodec,
    install_kind,
    lodec_python,
    usable_cores,
)

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 2.0
SKILL = "tiny"
SKILL_MD = f"""---
name: {SKILL}
description: Writes one byte to its one declared output; used by lodec's sandbox benchmark.
---

# {SKILL}

Writes `x` to `$LODEC_OUTPUT_DIR/out.txt`.
"""
LODEC_TOML = """command = ["run.sh"]
concurrency = "read"
timeout = 60

[capabilities]
network = false
env = []
read = []
write = []
"""
RUN_SH = '#!/bin/sh\nprintf x > "$LODEC_OUTPUT_DIR/out.txt"\n'

# Runs lodec's own CLI entry point in lodec's interpreter, recording each step's bwrap argv and environment.
# argv: OUT.json SCRIPT_DIR LODEC_PATH CLI-ARGS...
RECORDER = r"""
import json, sys
out, script_dir, lodec_path, cli = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
sys.path.insert(0, script_dir)  # as the `lodec` console script has it: the sandbox binds the import path
import lodec.run.executor as ex
argvs, envs = [], []
real_argv, real_env = ex.bwrap_argv, ex.step_environment
def bwrap_argv(*a, **k):
    r = real_argv(*a, **k); argvs.append(r); return r
def step_environment(*a, **k):
    r = real_env(*a, **k); envs.append(r); return r
ex.bwrap_argv, ex.step_environment = bwrap_argv, step_environment
from lodec.cli import main
sys.argv = [lodec_path, *cli]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
with open(out, "w") as fh:
    json.dump({"exit": code, "argv": argvs, "env": envs}, fh)
"""

# In-process lodec.app.runs.run over a stack: phase timers, or cProfile of every thread.
# argv: OUT.json SCRIPT_DIR STACK WORKSPACE JOBS MODE(phases|cprofile) TOP
INPROCESS = r"""
import json, sys, threading, time
out, script_dir, stack, ws, jobs, mode, top = sys.argv[1:8]
jobs, top = int(jobs), int(top)
sys.path.insert(0, script_dir)
import subprocess
import lodec.app.runs as runs
import lodec.run.executor as ex
import lodec.run.reports as reports
import lodec.store.records as records
from lodec.store.workspace import Workspace

lock = threading.Lock()
acc = {}  # phase -> [seconds, calls]

def add(name, seconds):
    with lock:
        a = acc.setdefault(name, [0.0, 0])
        a[0] += seconds
        a[1] += 1

def timed(name, fn):
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            add(name, time.perf_counter() - t0)
    return wrapper

profiles = []
if mode == "phases":
    runs.prepare = timed("main: prepare (verify stack, load and check skills)", runs.prepare)
    ex._private_copy = timed("main: private skill copy", ex._private_copy)
    records.write_run = timed("main: write run.json (x2)", records.write_run)
    reports.write_journal = timed("main: journal.md", reports.write_journal)
    reports.write_provenance = timed("main: provenance.json", reports.write_provenance)
    ex._Executor._schedule = timed("main: scheduling loop (until the last step ends)", ex._Executor._schedule)
    ex._Executor._advance = timed("main: _advance (scan pending steps)", ex._Executor._advance)
    reports.upstream = timed("main: reports.upstream (per started step)", reports.upstream)
    ex._Executor._finish = timed("main: _finish (per finished step)", ex._Executor._finish)
    ex._Executor._execute = timed("worker: _execute, whole step", ex._Executor._execute)
    ex.bwrap_argv = timed("worker: bwrap_argv", ex.bwrap_argv)
    ex.step_environment = timed("worker: step_environment", ex.step_environment)
    ex._Executor._collect = timed("worker: _collect (scan out/, hash, CAS put)", ex._Executor._collect)
    ex._headline = timed("worker: _headline (read stdout.log)", ex._headline)
    ex._kill_group = timed("worker: _kill_group", ex._kill_group)
    ex.shutil.rmtree = timed("worker: shutil.rmtree (work/, out/)", ex.shutil.rmtree)
    real_popen = subprocess.Popen
    class Popen(real_popen):
        def __init__(self, *a, **k):
            t0 = time.perf_counter()
            super().__init__(*a, **k)
            main = threading.current_thread() is threading.main_thread()
            add("main: Popen (probe_sandbox)" if main else "worker: Popen (fork/exec bwrap)", time.perf_counter() - t0)
        def communicate(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return super().communicate(*a, **k)
            finally:
                add("worker: communicate (request in; bwrap runs until exit)", time.perf_counter() - t0)
        def wait(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return super().wait(*a, **k)
            finally:
                add("worker: Popen.wait (incl. the one inside communicate)", time.perf_counter() - t0)
    ex.subprocess.Popen = Popen
else:
    import cProfile
    real_worker = ex._Executor._worker
    def worker(self, *a):
        p = cProfile.Profile()
        p.enable()
        try:
            return real_worker(self, *a)
        finally:
            p.disable()
            with lock:
                profiles.append(p)
    ex._Executor._worker = worker
    main_profile = cProfile.Profile()

workspace = Workspace.discover(ws)
request = runs.RunRequest(jobs=jobs)
t0 = time.perf_counter()
if mode == "cprofile":
    main_profile.enable()
record = runs.run(stack, workspace, request=request)
if mode == "cprofile":
    main_profile.disable()
wall = time.perf_counter() - t0
res = {"wall_s": wall, "status": record.status, "steps": len(record.steps), "duration_ms": record.duration_ms,
       "run": record.run}

def rows(stats, n):
    import os
    out = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():
        short = file
        for marker in ("site-packages/", "lib/python3"):
            if marker in file:
                short = file.split(marker, 1)[1]
                break
        label = f"{short}:{line}({func})" if line else func
        out.append({"function": label, "calls": nc, "tottime_s": tt, "cumtime_s": ct})
    by_cum = sorted(out, key=lambda r: -r["cumtime_s"])[:n]
    by_tot = sorted(out, key=lambda r: -r["tottime_s"])[:n]
    return by_cum, by_tot

if mode == "phases":
    res["phases"] = {k: {"s": v[0], "calls": v[1]} for k, v in acc.items()}
else:
    import pstats
    m = pstats.Stats(main_profile)
    res["main_cum"], res["main_tot"] = rows(m, top)
    w = pstats.Stats(profiles[0])
    for p in profiles[1:]:
        w.add(p)
    res["worker_cum"], res["worker_tot"] = rows(w, top)
    res["worker_profiles"] = len(profiles)
with open(out, "w") as fh:
    json.dump(res, fh)
"""

# One step's recorded bwrap argv, outside lodec's executor: bwrap_argv's own cost (one thread), and how long
# lodec's way of waiting (communicate with a timeout: a poll loop with sleeps doubling from 0.5 ms to 50 ms)
# takes against a blocking wait (communicate without a timeout: write stdin, then waitpid), one sandbox at a
# time and two at once (two threads, as --jobs 2).
# argv: OUT.json SCRIPT_DIR RECORDED.json WORKSPACE ROUNDS
MICRO = r"""
import json, statistics, subprocess, sys, threading, time
from pathlib import Path
out, script_dir, recorded, ws_path, rounds = sys.argv[1:6]
rounds = int(rounds)
sys.path.insert(0, script_dir)
from lodec.run.sandbox import OUT_DIR, SKILL_DIR, WORK_DIR, StepMounts, bwrap_argv, probe_sandbox
from lodec.store.workspace import Workspace
rec = json.load(open(recorded))
argv, env = rec["argv"][0], rec["env"][0]
def src(target):
    i = next((i for i, a in enumerate(argv) if a in ("--bind", "--ro-bind") and argv[i + 2] == target), None)
    if i is None:  # not bound (the working folder is a tmpfs in newer lodec): any existing folder will do
        return src(OUT_DIR).parent
    return Path(argv[i + 1])
ws = Workspace.discover(ws_path)
sandbox = probe_sandbox()
mounts = StepMounts(workspace=ws.root, read=(), write=(), skill=src(SKILL_DIR), work=src(WORK_DIR), out=src(OUT_DIR),
                    inputs={}, hidden=ws.state_paths() + (ws.home,), network=False)
command = argv[argv.index("--") + 1:]
res = {"identical": bwrap_argv(sandbox, mounts, command) == argv}
t = []
for _ in range(rounds):
    t0 = time.perf_counter()
    bwrap_argv(sandbox, mounts, command)
    t.append(time.perf_counter() - t0)
res["bwrap_argv_ms"] = 1e3 * statistics.median(t)
request = json.dumps({"request": "lodec-step-request/v1", "pad": "x" * 900}).encode()
work = src(WORK_DIR)
LODEC, BLOCKING = "communicate(input, timeout=60) [lodec]", "communicate(input) [blocking waitpid]"

def one(label, times):
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    if label == LODEC:
        p.communicate(request, timeout=60)
    else:
        p.communicate(request)
    times.append(time.perf_counter() - t0)
    if p.returncode != 0:
        raise SystemExit(f"bwrap exited {p.returncode}")

timed = {f"{k}, {m}": [] for m in ("1 at a time", "2 at once") for k in (LODEC, BLOCKING)}
for r in range(rounds):
    for label in (LODEC, BLOCKING) if r % 2 == 0 else (BLOCKING, LODEC):
        one(label, timed[f"{label}, 1 at a time"])
        pair = [threading.Thread(target=one, args=(label, timed[f"{label}, 2 at once"])) for _ in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
res["wait_ms"] = {k: [1e3 * x for x in v] for k, v in timed.items()}
with open(out, "w") as fh:
    json.dump(res, fh)
"""


# ------------------------------------------------------------------ helpers


def progress(msg: str) -> None:
    print(f"[bench_sandbox] {msg}", file=sys.stderr, flush=True)


def check_call(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> str:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"bench_sandbox: `{shlex.join(argv)}` exited {out.returncode} in {cwd}\n{out.stderr[-3000:]}")
    return out.stdout


def timed_run(argv: Sequence[str], cwd: Path, env: dict[str, str], stdin_path: Path | None = None) -> tuple[float, float]:
    """Wall and CPU (user+sys, the process and its waited-for descendants) seconds of ``argv``; abort unless it exits 0.

    stdout goes to /dev/null, stderr to a temporary file (shown if the command fails), stdin is ``stdin_path``
    or /dev/null.
    """
    with contextlib.ExitStack() as files:
        stdin = files.enter_context(open(stdin_path, "rb")) if stdin_path is not None else subprocess.DEVNULL
        err = files.enter_context(tempfile.TemporaryFile())
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            text = err.read().decode(errors="replace")[-3000:]
            sys.exit(f"bench_sandbox: `{shlex.join(argv)}` exited {proc.returncode}\n{text}")
    return wall, usage.ru_utime + usage.ru_stime


def quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    t = sorted(xs)
    if len(t) == 1:
        return t[0], t[0], t[0]
    q = statistics.quantiles(t, n=4, method="inclusive")
    return q[0], statistics.median(t), q[2]


def first_line(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return "?"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def bind_source(argv: Sequence[str], target: str, *, required: bool = True) -> str | None:
    """The host path bound at ``target`` in a bwrap argv (``None`` when it is not bound and not ``required``)."""
    for i, a in enumerate(argv):
        if a in ("--bind", "--ro-bind") and i + 2 < len(argv) and argv[i + 2] == target:
            return argv[i + 1]
    if not required:
        return None
    sys.exit(f"bench_sandbox: no bind to {target} in the recorded bwrap argv")


# ------------------------------------------------------------------ set-up


def make_stack(lodec: Path, folder: Path, n: int, ws: Path, env: dict[str, str]) -> Path:
    """``folder/stack.json``: N independent steps of skill:tiny, compiled, built and locked by ``lodec``."""
    skill = folder / "skills" / SKILL
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(SKILL_MD)
    (skill / "lodec.toml").write_text(LODEC_TOML)
    (skill / "run.sh").write_text(RUN_SH)
    (skill / "run.sh").chmod(0o755)
    (folder / "src").mkdir()
    width = len(str(n))
    names = [f"s{i:0{width}d}" for i in range(1, n + 1)]
    for name in names:
        rec = {"stepName": name, "skillRef": f"skill:{SKILL}", "dependsOn": [], "outputs": ["out.txt"]}
        (folder / "src" / f"{name}.json").write_text(json.dumps(rec))
    check_call([str(lodec), "compile", *(f"src/{x}.json" for x in names), "-o", "steps/", "-q"], folder, env)
    check_call([str(lodec), "stack", "build", *(f"steps/{x}.vein" for x in names), "--name", f"sandbox-bench-{n}",
                "--version", "1.0.0", "--description", f"{n} independent one-byte steps", "-o", "stack.json"],
               folder, env)  # fmt: skip
    check_call([str(lodec), "lock", "stack.json", "--workspace", str(ws)], folder, env)
    return folder / "stack.json"


class Floors:
    """The peer command lines for one stack, made from the bwrap argv lodec recorded for each step."""

    def __init__(self, work: Path, n: int, recorded: dict[str, Any]) -> None:
        argvs: list[list[str]] = recorded["argv"]
        envs: list[dict[str, str]] = recorded["env"]
        if recorded["exit"] != 0 or len(argvs) != n or len(envs) != n:
            sys.exit(f"bench_sandbox: the recording run of the {n}-step stack exited {recorded['exit']} "
                     f"with {len(argvs)} sandboxed steps")  # fmt: skip
        if len({a[0] for a in argvs}) != 1 or len({len(a) for a in argvs}) != 1:
            sys.exit("bench_sandbox: the steps' bwrap command lines differ in program or length; xargs -n cannot split them")
        self.example = argvs[0]
        self.bwrap = argvs[0][0]
        self.k = len(argvs[0]) - 1
        self.outs: list[Path] = []
        self.bwrap_args = work / f"bwrap-{n}.args0"
        self.plain_args = work / f"plain-{n}.args0"
        skill_host = bind_source(argvs[0], "/run/lodec/skill")
        with open(self.bwrap_args, "wb") as fb, open(self.plain_args, "wb") as fp:
            for a in argvs:
                # The working folder is a tmpfs inside the sandbox in newer lodec (no host folder to make).
                work_host = bind_source(a, "/run/lodec/work", required=False)
                out_dir = Path(str(bind_source(a, "/run/lodec/out")))
                if work_host is not None:
                    Path(work_host).mkdir(parents=True, exist_ok=True)
                out_dir.mkdir(parents=True, exist_ok=True)
                self.outs.append(out_dir)
                fb.write(b"".join(x.encode() + b"\0" for x in a[1:]))
                fp.writelines(x.encode() + b"\0" for x in (f"LODEC_OUTPUT_DIR={out_dir}", f"{skill_host}/run.sh"))
        self.env_b = {k: v for k, v in envs[0].items() if k != "LODEC_STEP"}
        self.env_c = dict(self.env_b, LODEC_SKILL_DIR=skill_host)
        self.argv_b = ["xargs", "-0", "-P2", "-n", str(self.k), self.bwrap]
        self.argv_c = ["xargs", "-0", "-P2", "-n2", "env"]

    def clean(self) -> None:
        for d in self.outs:
            try:
                os.unlink(d / "out.txt")
            except FileNotFoundError:
                pass

    def check(self, what: str) -> None:
        for d in self.outs:
            try:
                data = (d / "out.txt").read_bytes()
            except FileNotFoundError:
                sys.exit(f"bench_sandbox: {what} left no {d / 'out.txt'}")
            if data != b"x":
                sys.exit(f"bench_sandbox: {what} wrote {data!r} to {d / 'out.txt'}")


# ------------------------------------------------------------------ profile


def importtime(python: Path, lodec: Path, stack: Path, ws: Path, cwd: Path, env: dict[str, str], top: int) -> dict[str, Any]:
    argv = [str(python), "-X", "importtime", str(lodec), "run", str(stack), "--workspace", str(ws), "--jobs", "2"]
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    rows = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append({"self_us": int(m[1]), "cum_us": int(m[2]), "depth": len(m[3]) // 2, "module": m[4]})
    tops = [r for r in rows if r["depth"] == 0]
    lodec_self = sum(r["self_us"] for r in rows if r["module"] == "lodec" or r["module"].startswith("lodec."))
    return {"command": shlex.join(argv), "exit": out.returncode, "modules": len(rows),
            "total_self_ms": sum(r["self_us"] for r in rows) / 1e3, "lodec_self_ms": lodec_self / 1e3,
            "top_level": sorted(tops, key=lambda r: -r["cum_us"])[:top],
            "top_cum": sorted(rows, key=lambda r: -r["cum_us"])[:top]}  # fmt: skip


def in_process(python: Path, lodec: Path, work: Path, stack: Path, ws: Path, env: dict[str, str], mode: str,
               top: int) -> dict[str, Any]:
    script, out = work / "inprocess.py", work / f"inprocess-{mode}.json"
    script.write_text(INPROCESS)
    argv = [str(python), "-P", str(script), str(out), str(lodec.parent), str(stack), str(ws), "2", mode, str(top)]
    check_call(argv, work, env)
    res = json.loads(out.read_text())
    res["command"] = shlex.join(argv)
    if res["status"] != "succeeded":
        sys.exit(f"bench_sandbox: the in-process {mode} run ended {res['status']}")
    return res


def micro(python: Path, lodec: Path, work: Path, recorded: Path, ws: Path, env: dict[str, str], rounds: int) -> dict[str, Any]:
    script, out = work / "micro.py", work / "micro.json"
    script.write_text(MICRO)
    argv = [str(python), "-P", str(script), str(out), str(lodec.parent), str(recorded), str(ws), str(rounds)]
    check_call(argv, work, env)
    res = json.loads(out.read_text())
    res["command"] = shlex.join(argv)
    res["wait"] = {k: quartiles(v) for k, v in res.pop("wait_ms").items()}
    return res


# ------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], epilog="See the module docstring for the method.")
    p.add_argument("--lodec", type=Path, default=None, help="lodec executable (default: the one beside this Python)")
    p.add_argument("--sizes", default="20,200", help="stack sizes, smallest and largest used for the slope (default 20,200)")
    p.add_argument("--rounds", type=int, default=10, help="kept rounds (default 10, at least 5)")
    p.add_argument("--warmups", type=int, default=1, help="dropped rounds (default 1)")
    p.add_argument("--profile", action="store_true", help="profile lodec even when it meets the target")
    p.add_argument("--no-profile", action="store_true", help="never profile")
    p.add_argument("--micro-rounds", type=int, default=40, help="rounds of the one-step profile (default 40)")
    p.add_argument("--top", type=int, default=15, help="profile rows to print (default 15)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if args.rounds < 5:
        p.error("--rounds must be at least 5")
    sizes = sorted({int(x) for x in args.sizes.split(",")})
    if len(sizes) < 2:
        p.error("--sizes needs at least two sizes")
    if not sys.platform.startswith("linux") or shutil.which("bwrap") is None or shutil.which("xargs") is None:
        sys.exit("bench_sandbox: needs Linux with bwrap (bubblewrap) and xargs on PATH")
    lodec = (args.lodec or default_lodec()).absolute()
    python = lodec_python(lodec)
    load = {"start": os.getloadavg()}
    work = Path(tempfile.mkdtemp(prefix="lodec-bench-sandbox-")).resolve()
    try:
        res = bench(args, sizes, lodec, python, work, load)
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        report(res)
    return 0


def bench(args: argparse.Namespace, sizes: list[int], lodec: Path, python: Path, work: Path,
          load: dict[str, Any]) -> dict[str, Any]:
    home, ws = work / "home", work / "ws"
    home.mkdir()
    ws.mkdir()
    env = dict(os.environ, LODEC_HOME=str(home))
    env.pop("LODEC_STATE", None)
    facts = {
        "cpu": cpu_model(), "nproc": os.cpu_count(), "cores_usable": usable_cores(), "kernel": platform.release(),
        "machine": platform.machine(), "bwrap": first_line(["bwrap", "--version"]),
        "xargs": first_line(["xargs", "--version"]), "python": first_line([str(python), "--version"]),
        "python_path": str(python), "lodec": first_line([str(lodec), "--version"]), "lodec_path": str(lodec),
        "lodec_install": install_kind(python),
        "repo_head": first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
    }  # fmt: skip
    progress(f"work folder {work}; building the stacks")
    stacks, floors = {}, {}
    (work / "recorder.py").write_text(RECORDER)
    for n in sizes:
        stacks[n] = make_stack(lodec, work / f"stack-{n}", n, ws, env)
        rec_out = work / f"recorded-{n}.json"
        check_call([str(python), "-P", str(work / "recorder.py"), str(rec_out), str(lodec.parent), str(lodec),
                    "run", str(stacks[n]), "--workspace", str(ws), "--jobs", "2"], work, env)  # fmt: skip
        floors[n] = Floors(work, n, json.loads(rec_out.read_text()))
    keep_runs = set(os.listdir(home / "runs"))
    load["after_setup"] = os.getloadavg()

    cmds: list[tuple[str, int, str]] = []
    for n in sizes:
        cmds += [(f"a lodec run, N={n}", n, "a"), (f"b bwrap via xargs -P2, N={n}", n, "b"),
                 (f"c no sandbox via xargs -P2, N={n}", n, "c")]  # fmt: skip
    argvs = {}
    for label, n, kind in cmds:
        if kind == "a":
            argvs[label] = [str(lodec), "run", str(stacks[n]), "--workspace", str(ws), "--jobs", "2"]
        elif kind == "b":
            argvs[label] = floors[n].argv_b
        else:
            argvs[label] = floors[n].argv_c
    walls: dict[str, list[float]] = {c[0]: [] for c in cmds}
    cpus: dict[str, list[float]] = {c[0]: [] for c in cmds}
    rounds: list[dict[str, float]] = []
    total = args.warmups + args.rounds
    for r in range(total):
        shift = r % len(cmds)
        got: dict[str, tuple[float, float]] = {}
        for label, n, kind in cmds[shift:] + cmds[:shift]:
            fl = floors[n]
            if kind == "a":
                got[label] = timed_run(argvs[label], work, env)
                for run_id in set(os.listdir(home / "runs")) - keep_runs:
                    shutil.rmtree(home / "runs" / run_id)
            else:
                fl.clean()
                if kind == "b":
                    got[label] = timed_run(argvs[label], work, fl.env_b, fl.bwrap_args)
                else:
                    got[label] = timed_run(argvs[label], work, fl.env_c, fl.plain_args)
                fl.check(label)
        if r >= args.warmups:
            rounds.append({k: v[0] for k, v in got.items()})
            for k, (w, c) in got.items():
                walls[k].append(w)
                cpus[k].append(c)
        progress(f"round {r + 1}/{total}" + (" (warm-up)" if r < args.warmups else "") + "  " +
                 "  ".join(f"{k.split(',')[0][0]}{n}={got[k][0] * 1e3:.0f}ms" for k, n, _ in cmds))
    load["after_timing"] = os.getloadavg()

    rows = []
    for label, n, kind in cmds:
        wq, cq = quartiles(walls[label]), quartiles(cpus[label])
        rows.append({"label": label, "n": n, "kind": kind, "command": shlex.join(argvs[label]),
                     "wall_ms": [1e3 * x for x in wq], "cpu_ms": [1e3 * x for x in cq],
                     "wall_per_step_ms": 1e3 * wq[1] / n, "cpu_per_step_ms": 1e3 * cq[1] / n,
                     "walls_ms": [1e3 * x for x in walls[label]], "cpus_ms": [1e3 * x for x in cpus[label]]})  # fmt: skip
    by = {(r["n"], r["kind"]): r for r in rows}

    def lab(n: int, kind: str) -> str:
        return by[(n, kind)]["label"]

    per_n = []
    for n in sizes:
        a, b, c = lab(n, "a"), lab(n, "b"), lab(n, "c")
        added = [1e3 * (rd[a] - rd[b]) / n for rd in rounds]
        ab = [rd[a] / rd[b] for rd in rounds]
        bc = [rd[b] / rd[c] for rd in rounds]
        ca, cb, cc = (statistics.median(cpus[x]) for x in (a, b, c))
        per_n.append({
            "n": n, "added_ms_paired": quartiles(added),
            "added_ms_medians": 1e3 * (statistics.median(walls[a]) - statistics.median(walls[b])) / n,
            "added_cpu_ms_medians": 1e3 * (ca - cb) / n,
            "a_over_b": statistics.median(walls[a]) / statistics.median(walls[b]), "a_over_b_paired": quartiles(ab),
            "b_over_c": statistics.median(walls[b]) / statistics.median(walls[c]), "b_over_c_paired": quartiles(bc),
            "a_over_b_cpu": ca / cb, "b_over_c_cpu": cb / cc,
        })  # fmt: skip
    lo, hi = sizes[0], sizes[-1]
    span = hi - lo
    slopes = {}
    for kind in "abc":
        wl, wh = statistics.median(walls[lab(lo, kind)]), statistics.median(walls[lab(hi, kind)])
        cl, ch = statistics.median(cpus[lab(lo, kind)]), statistics.median(cpus[lab(hi, kind)])
        s = 1e3 * (wh - wl) / span
        slopes[kind] = {"wall_ms_per_step": s, "fixed_wall_ms": 1e3 * wl - lo * s,
                        "cpu_ms_per_step": 1e3 * (ch - cl) / span,
                        "fixed_cpu_ms": 1e3 * cl - lo * 1e3 * (ch - cl) / span}  # fmt: skip
    paired_slope = [1e3 * ((rd[lab(hi, "a")] - rd[lab(lo, "a")]) - (rd[lab(hi, "b")] - rd[lab(lo, "b")])) / span
                    for rd in rounds]  # fmt: skip
    added_slope = slopes["a"]["wall_ms_per_step"] - slopes["b"]["wall_ms_per_step"]
    added_fixed = slopes["a"]["fixed_wall_ms"] - slopes["b"]["fixed_wall_ms"]
    amortised = per_n[-1]["added_ms_paired"][1]
    verdict = {
        "target_ms": TARGET_MS, "amortised_n": hi, "amortised_ms": amortised, "slope_ms": added_slope,
        "slope_ms_paired": quartiles(paired_slope), "fixed_added_ms": added_fixed,
        "amortised_met": amortised <= TARGET_MS, "slope_met": added_slope <= TARGET_MS,
    }  # fmt: skip
    verdict["met"] = verdict["amortised_met"] and verdict["slope_met"]

    profile: dict[str, Any] = {}
    if not args.no_profile and (args.profile or not verdict["met"]):
        progress("profiling: -X importtime")
        profile["importtime"] = importtime(python, lodec, stacks[lo], ws, work, env, args.top)
        progress(f"profiling: in-process phases over the {hi}-step stack")
        profile["phases"] = in_process(python, lodec, work, stacks[hi], ws, env, "phases", args.top)
        progress(f"profiling: cProfile over the {hi}-step stack")
        profile["cprofile"] = in_process(python, lodec, work, stacks[hi], ws, env, "cprofile", args.top)
        progress("profiling: one step's bwrap argv outside the executor: bwrap_argv alone; Popen + wait")
        profile["micro"] = micro(python, lodec, work, work / f"recorded-{hi}.json", ws, env, args.micro_rounds)
    load["end"] = os.getloadavg()
    return {
        "benchmark": "bench_sandbox",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": facts, "load": load, "sizes": sizes, "rounds": args.rounds, "warmups": args.warmups,
        "work": str(work), "rows": rows, "per_n": per_n, "slopes": slopes, "verdict": verdict,
        "example_bwrap_argv": floors[hi].example, "xargs_k": floors[hi].k, "env_b": floors[hi].env_b,
        "profile": profile,
    }  # fmt: skip


def report(res: dict[str, Any]) -> None:
    m, ld = res["machine"], res["load"]
    print(f"bench_sandbox  {res['date']}")
    print(f"machine: {m['cpu']}, nproc {m['nproc']} ({m['cores_usable']} usable), {m['machine']}, Linux {m['kernel']}")
    print(f"         {m['bwrap']}; {m['xargs']}")
    print(f"         {m['python']} ({m['python_path']}); {m['lodec']} ({m['lodec_install']} install: {m['lodec_path']}; "
          f"this checkout at {m['repo_head']}; the install may be of another commit)")
    print("load:    1/5/15-min load average " + "; ".join(
        f"{k.replace('_', ' ')} {a:.2f}/{b:.2f}/{c:.2f}" for k, (a, b, c) in ld.items()))
    print(f"method:  whole processes, interleaved and rotated, {res['warmups']} warm-up + {res['rounds']} kept rounds; "
          f"wall by perf_counter, CPU (user+sys incl. waited-for descendants) by wait4; --jobs 2 / xargs -P2; "
          f"work folder {res['work']}")
    print()
    head = f"{'command':<34} {'wall ms (IQR)':>22} {'ms/step':>8} {'cpu ms (IQR)':>22} {'cpu ms/step':>11}"
    print(head)
    print("-" * len(head))
    for r in res["rows"]:
        w, c = r["wall_ms"], r["cpu_ms"]
        print(f"{r['label']:<34} {w[1]:>8.0f} ({w[0]:>5.0f}-{w[2]:<5.0f}) {r['wall_per_step_ms']:>8.2f} "
              f"{c[1]:>8.0f} ({c[0]:>5.0f}-{c[2]:<5.0f}) {r['cpu_per_step_ms']:>11.2f}")
    print()
    print("lodec's added cost per step, (a - b) / N; ratios of medians [per-round median (IQR)]:")
    for p in res["per_n"]:
        q = p["added_ms_paired"]
        ab, bc = p["a_over_b_paired"], p["b_over_c_paired"]
        print(f"  N={p['n']:<4} (a-b)/N {q[1]:6.2f} ms (IQR {q[0]:.2f}-{q[2]:.2f}; of medians {p['added_ms_medians']:.2f}; "
              f"CPU {p['added_cpu_ms_medians']:.2f})   a/b {p['a_over_b']:.2f} [{ab[1]:.2f} ({ab[0]:.2f}-{ab[2]:.2f})]"
              f"   b/c {p['b_over_c']:.2f} [{bc[1]:.2f} ({bc[0]:.2f}-{bc[2]:.2f})]   CPU a/b {p['a_over_b_cpu']:.2f}, "
              f"b/c {p['b_over_c_cpu']:.2f}")
    lo, hi = res["sizes"][0], res["sizes"][-1]
    print(f"slope between N={lo} and N={hi}, (t{hi} - t{lo}) / {hi - lo}, and the fixed cost t{lo} - {lo} x slope:")
    names = {"a": "a lodec run", "b": "b bwrap via xargs", "c": "c no sandbox"}
    for kind, s in res["slopes"].items():
        print(f"  {names[kind]:<18} {s['wall_ms_per_step']:6.2f} ms/step wall, {s['cpu_ms_per_step']:6.2f} CPU; "
              f"fixed {s['fixed_wall_ms']:7.1f} ms wall, {s['fixed_cpu_ms']:7.1f} CPU")
    v = res["verdict"]
    sp = v["slope_ms_paired"]
    print(f"  lodec added: {v['slope_ms']:.2f} ms/step (per round {sp[1]:.2f}, IQR {sp[0]:.2f}-{sp[2]:.2f}); "
          f"fixed {v['fixed_added_ms']:.1f} ms per run")
    print()
    print(f"target:  lodec's added cost per step <= {v['target_ms']:g} ms above bare bwrap")
    print(f"         amortised at N={v['amortised_n']}: {v['amortised_ms']:.2f} ms -> {'PASS' if v['amortised_met'] else 'MISS'}")
    print(f"         marginal (slope):   {v['slope_ms']:.2f} ms -> {'PASS' if v['slope_met'] else 'MISS'}")
    print(f"verdict: {'PASS' if v['met'] else 'MISS'}")
    print()
    print("commands (cwd: the work folder; LODEC_HOME=<work>/home):")
    seen = set()
    for r in res["rows"]:
        if r["command"] not in seen:
            seen.add(r["command"])
            print(f"  {r['command']}")
    print(f"bwrap argv of one step of the N={hi} stack, as lodec built it (xargs -n {res['xargs_k']} gets all but argv[0]):")
    print(f"  {shlex.join(res['example_bwrap_argv'])}")
    print(f"environment of b: {' '.join(f'{k}={shlex.quote(v)}' for k, v in res['env_b'].items())}")
    prof = res["profile"]
    if not prof:
        return
    print()
    it = prof["importtime"]
    print(f"profile 1: {it['command']}")
    print(f"  {it['modules']} modules, {it['total_self_ms']:.1f} ms import time in all (self), of which lodec.* "
          f"{it['lodec_self_ms']:.1f} ms. Top-level imports by cumulative time:")
    for r in it["top_level"][:10]:
        print(f"    {r['cum_us'] / 1e3:7.2f} ms  {r['module']}")
    ph = prof["phases"]
    n = ph["steps"]
    print(f"profile 2: in-process lodec.app.runs.run over the {n}-step stack, timers around phases: "
          f"{ph['wall_s'] * 1e3:.0f} ms in all (run record duration_ms {ph['duration_ms']:.0f})")
    print(f"  {ph['command']}")
    print(f"  {'phase':<58} {'ms total':>9} {'calls':>6} {'ms/step':>8}")
    for k, x in sorted(ph["phases"].items(), key=lambda kv: (not kv[0].startswith("main"), -kv[1]["s"])):
        print(f"  {k:<58} {x['s'] * 1e3:>9.1f} {x['calls']:>6} {x['s'] * 1e3 / n:>8.3f}")
    cp = prof["cprofile"]
    print("  (worker rows are summed over both worker threads: per step, not wall time)")
    print(f"profile 3: cProfile of the same call ({cp['wall_s'] * 1e3:.0f} ms under the profiler), sorted by cumulative time")
    print(f"  {cp['command']}")
    for title, key in (("main thread", "main_cum"), (f"worker threads ({cp['worker_profiles']} profiles merged)", "worker_cum"),
                       ("main thread, by own time", "main_tot"), ("worker threads, by own time", "worker_tot")):
        print(f"  {title}:")
        print(f"    {'cum ms':>8} {'own ms':>8} {'calls':>7}  function")
        for r in cp[key][: len(cp[key])]:
            print(f"    {r['cumtime_s'] * 1e3:>8.1f} {r['tottime_s'] * 1e3:>8.1f} {r['calls']:>7}  {r['function']}")
    mi = prof["micro"]
    print("profile 4: one step's recorded bwrap argv, outside the executor: bwrap_argv alone; Popen + wait, "
          "1 at a time and 2 at once")
    print(f"  {mi['command']}")
    print(f"  bwrap_argv() called afresh gives the recorded argv: {mi['identical']}; it takes {mi['bwrap_argv_ms']:.3f} ms "
          "per call (median)")
    for k, q in mi["wait"].items():
        print(f"  Popen + {k:<55} {q[1]:7.2f} ms (IQR {q[0]:.2f}-{q[2]:.2f})")


if __name__ == "__main__":
    sys.exit(main())
