#!/usr/bin/env python3
"""Benchmark: verify a signed ``.lodepack`` vs ``in-toto-verify`` on an equivalent layout (issue 3).

What is measured
    For each size N (default 100, 1,000 and 10,000 steps), as whole processes:

    lodec
        ``lodec verify bench.lodepack --key alice.pub --key bob.pub --threshold 2 --state S``,
        the headline: one pack holding the manifest, the N veins, the schemas
        and a DSSE envelope with two Ed25519 signatures. Also with one key
        (``--key alice.pub --threshold 1``), and, as context, the signed
        ``stack.json`` + ``stack.json.dsse`` over the N loose ``.vein`` files
        (2 keys), the same unsigned (``lodec verify stack.json``), and the pack
        verified with no key (``lodec verify bench.lodepack``: its signatures
        are not checked), so the difference to the headline is what checking
        them costs.
    in-toto
        ``in-toto-verify --layout root.layout --verification-keys alice.pub bob.pub
        --link-dir links`` on the equivalent supply chain: one in-toto step per
        lodec step, whose ``expected_products`` pin that step's ``.vein``
        (``CREATE sNNNNNN.vein``, ``DISALLOW *``); a layout signed by the same
        two keys as the lodec manifest (in-toto requires a valid layout
        signature from every key passed, so two of two, like
        ``--threshold 2``); one link per step recording the vein's SHA-256,
        signed by a functionary key. This is the row the ratio and the target
        use. It never reads the ``.vein`` files: it checks the signed links
        against the signed layout.
        A second layout, ``root-inspect.layout``, adds what makes in-toto check
        the delivered files themselves, as ``lodec verify`` does: one
        inspection (it runs ``true`` and records every file in its working
        directory) whose material rules ``MATCH sNNNNNN.vein WITH PRODUCTS FROM
        sNNNNNN`` for every step, then ``DISALLOW *``.
    context
        ``python -c pass``, ``lodec --version`` and ``in-toto-verify --version``:
        the start-up cost each whole process pays.

How
    Sources are the synthetic SkillStep sources of ``bench_verify.py`` (real
    step shapes from the GitHub Actions corpus, seed 2026, 0-3 dependencies per
    step), compiled, built, signed and packed with the lodec CLI. The keys are
    made by ``lodec key generate`` and the same ``alice``/``bob`` files sign
    the in-toto layout. The in-toto layout, links and signatures are made
    with the in-toto Python API (DSSE envelopes by default, as lodec uses;
    ``--in-toto-format metablock`` for in-toto's classic signed JSON). The
    in-toto files sit in their own directory with their own copy of the veins.
    None of that setup is timed.

    Before timing, each size checks what every verifier refuses (exit 1): a
    stranger's key instead of bob's (lodec and in-toto), one changed byte of
    one vein inside the pack (lodec) or on disk (in-toto with the inspection).
    The links-only in-toto layout must pass that changed vein (exit 0): it does
    not read the veins, and the report says so.

    Each command's wall time is taken by ``hyperfine -N --runs 1`` when
    hyperfine is on PATH (one hyperfine call per run, so that the runs can be
    interleaved), else by ``time.perf_counter`` around ``subprocess``; CPU time
    (user + system) comes from hyperfine or from ``getrusage``. Per size, all
    commands run in rounds, A B C D E, then B C D E A, ..., so machine noise and
    order hit both tools alike; ``--warmups`` rounds (default 1) are dropped and
    ``--repeats`` rounds (default 10) kept. Reported: median, min, max and the
    interquartile range; the ratio in-toto/lodec of the medians and the range
    of the per-round (paired) ratios. Target: ``in-toto-verify`` at least 10x
    the time of ``lodec verify`` of the pack at 1,000 steps. An in-toto
    command whose warm-up run exceeds ``--in-toto-limit`` seconds (default
    120) is killed and skipped at that size and all larger ones.

Run
    python benches/bench_signed.py [--sizes 100,1000,10000] [--repeats 10] [--json | --json-out FILE]

    with a Python that has lodec (a regular install) and in-toto, e.g.
    ``python -m venv /tmp/signbench-venv && /tmp/signbench-venv/bin/pip install in-toto .``
    then ``/tmp/signbench-venv/bin/python benches/bench_signed.py``.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_verify import (  # noqa: E402  (the sibling benchmark: same synthetic stack)
    DEFAULT_CORPUS,
    SEED,
    corpus_shapes,
    cpu_model,
    install_kind,
    lodec_python,
    synthetic_sources,
    usable_cores,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO / "benches" / "out"
DEFAULT_SIZES = (100, 1_000, 10_000)
TARGET_SIZE = 1_000
TARGET_RATIO = 10.0
STACK_NAME = "bench-signed"
OWNERS = ("alice", "bob")  # sign the lodec manifest and the in-toto layout
FUNCTIONARY = "carol"  # signs the in-toto links
STRANGER = "mallory"  # trusted by nobody: the refusal checks
INSPECTION = "check-veins"
PACKAGES = ("lodec", "in-toto", "securesystemslib", "cryptography", "blake3", "cbor2", "click", "PyYAML", "semver")


def _progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _die(msg: str) -> NoReturn:
    sys.exit(f"bench_signed: {msg}")


# ------------------------------------------------------------------ timing


@dataclass
class Cmd:
    """One command of a group: its argv, where it runs, and its kept wall and CPU times (seconds)."""

    key: str
    label: str
    tool: str  # "lodec", "in-toto" or "context"
    argv: list[str]
    cwd: Path
    limit: float | None = None  # seconds; a slower warm-up run skips the command
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    skipped: str = ""

    def summary(self, steps: int | None) -> dict[str, Any]:
        row: dict[str, Any] = {"key": self.key, "label": self.label, "tool": self.tool, "command": _show(self.argv)}
        row["cwd"] = str(self.cwd)
        if self.skipped:
            row["skipped"] = self.skipped
            return row
        t = sorted(self.times)
        q = statistics.quantiles(t, n=4, method="inclusive") if len(t) >= 2 else [t[0]] * 3
        med = statistics.median(t)
        row.update(
            runs=len(t),
            median_ms=1e3 * med,
            min_ms=1e3 * t[0],
            max_ms=1e3 * t[-1],
            p25_ms=1e3 * q[0],
            p75_ms=1e3 * q[2],
            cpu_median_ms=1e3 * statistics.median(self.cpu),
            times_ms=[1e3 * x for x in self.times],
        )
        if steps:
            row["steps_per_s"] = steps / med
            row["us_per_step"] = 1e6 * med / steps
        return row


class Timer:
    """Runs one command once and returns (wall s, CPU s): through hyperfine if given, else perf_counter."""

    def __init__(self, hyperfine: str | None) -> None:
        self.hyperfine = hyperfine
        self._tmp = Path(tempfile.mkdtemp(prefix="bench_signed-"))

    @property
    def name(self) -> str:
        return "hyperfine -N --runs 1" if self.hyperfine else "time.perf_counter + getrusage"

    def run(self, argv: Sequence[str], cwd: Path, limit: float | None = None) -> tuple[float, float]:
        """Time ``argv``; raise ``TimeoutError`` past ``limit``; exit with its stderr if it fails."""
        if self.hyperfine:
            out = self._tmp / "h.json"
            cmd = [self.hyperfine, "-N", "--runs", "1", "--style", "none", "--export-json", str(out)]
            code, _ = _run([*cmd, shlex.join(argv)], cwd, limit)
            if code == 0:
                res = json.loads(out.read_text())["results"][0]
                return res["times"][0], res["user"] + res["system"]
        else:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            code, _ = _run(argv, cwd, limit)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if code == 0:
                return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        code, err = _run(argv, cwd, limit, capture=True)
        _die(f"`{_show(argv)}` exited {code} in {cwd}\n{err[-3000:]}")

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def _run(argv: Sequence[str], cwd: Path, limit: float | None, capture: bool = False) -> tuple[int, str]:
    """Run ``argv`` in its own process group; kill the whole group and raise TimeoutError past ``limit``."""
    proc = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError(f"{_show(argv)} took more than {limit:g} s") from None
    return proc.returncode, (err or b"").decode(errors="replace")


def rounds(cmds: list[Cmd], timer: Timer, repeats: int, warmups: int, what: str) -> list[dict[str, float]]:
    """Interleaved rounds, each starting one command later; the warm-ups are dropped and enforce ``limit``."""
    kept: list[dict[str, float]] = []
    for r in range(warmups + repeats):
        live = [c for c in cmds if not c.skipped]
        shift = r % len(live)
        times: dict[str, float] = {}
        for c in live[shift:] + live[:shift]:
            try:
                wall, cpu = timer.run(c.argv, c.cwd, c.limit if r < warmups else None)
            except TimeoutError:
                c.skipped = f"skipped: a run took more than {c.limit:g} s"
                _progress(f"{c.label}: {c.skipped}")
                continue
            if r >= warmups:
                c.times.append(wall)
                c.cpu.append(cpu)
                times[c.key] = wall
        if r >= warmups:
            kept.append(times)
        _progress(f"{what}: round {r + 1}/{warmups + repeats}" + (" (warm-up)" if r < warmups else ""))
    return kept


# ------------------------------------------------------------------ setup: lodec


def run_setup(argv: Sequence[str], cwd: Path, expect: int = 0) -> float:
    """Run a setup command (not part of the figures); exit unless it returns ``expect``. Returns its wall time."""
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect:
        err = (proc.stderr or proc.stdout).decode(errors="replace").strip()[-3000:]
        _die(f"`{_show(argv)}` exited {proc.returncode}, expected {expect}, in {cwd}\n{err}")
    return elapsed


def make_keys(lodec: Path, keys: Path) -> None:
    """Ed25519 key pairs by ``lodec key generate``: the owners, the in-toto functionary and a stranger."""
    if keys.exists():
        shutil.rmtree(keys)
    keys.mkdir(parents=True)
    for name in (*OWNERS, FUNCTIONARY, STRANGER):
        run_setup([str(lodec), "key", "generate", str(keys / name)], keys)
        for ext in ("key", "pub"):
            if not (keys / f"{name}.{ext}").is_file():
                _die(f"`lodec key generate {keys / name}` wrote no {name}.{ext}")


def build_lodec(
    lodec: Path, work: Path, keys: Path, shapes: Any, n: int, seed: int
) -> tuple[list[str], dict[str, Any]]:
    """Sources, compile, stack build, two signatures, pack. Returns the step names and setup facts."""
    src, steps = work / "src", work / "steps"
    for d in (src, steps):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    for f in ("stack.json", "stack.json.dsse", "bench.lodepack"):
        (work / f).unlink(missing_ok=True)
    names: list[str] = []
    for record in synthetic_sources(shapes, n, seed):
        data = json.dumps(record, ensure_ascii=False, indent=1).encode()
        (src / f"{record['stepName']}.json").write_bytes(data)
        names.append(record["stepName"])
    setup: dict[str, float] = {}
    # relative paths keep the argv short (10,000 steps is about 200 KB of arguments)
    setup["compile"] = run_setup(
        [str(lodec), "compile", *(f"src/{s}.json" for s in names), "-o", "steps/", "-q"], work
    )
    setup["stack build"] = run_setup(
        [str(lodec), "stack", "build", *(f"steps/{s}.vein" for s in names), "--name", STACK_NAME,
         "--version", "1.0.0", "--description", f"Synthetic {n}-step stack for the signed-verify benchmark",
         "-o", "stack.json"],
        work,
    )  # fmt: skip
    for i, owner in enumerate(OWNERS):
        expires = ["--expires-in", "30d"] if i == 0 else []
        setup[f"sign ({owner})"] = run_setup(
            [str(lodec), "sign", "stack.json", "--key", str(keys / f"{owner}.key"), *expires], work
        )
    setup["pack"] = run_setup([str(lodec), "pack", "stack.json", "-o", "bench.lodepack"], work)
    facts = {
        "setup_s": setup,
        "vein_bytes": sum((steps / f"{s}.vein").stat().st_size for s in names),
        "manifest_bytes": (work / "stack.json").stat().st_size,
        "envelope_bytes": (work / "stack.json.dsse").stat().st_size,
        "pack_bytes": (work / "bench.lodepack").stat().st_size,
    }
    return names, facts


# ------------------------------------------------------------------ setup: in-toto


def build_in_toto(work: Path, names: Sequence[str], veins: Path, keys: Path, fmt: str) -> dict[str, Any]:
    """The equivalent in-toto supply chain in ``work``: layouts, links, and a copy of the veins in ``artifacts/``.

    One step per lodec step, authorised for the functionary key, threshold 1, whose
    ``expected_products`` are ``CREATE <step>.vein`` then ``DISALLOW *``; one link per step
    recording that product's SHA-256 (in-toto's default hash), signed by the functionary.
    ``root.layout`` has the steps only; ``root-inspect.layout`` adds one inspection that
    matches every file in ``artifacts/`` against the product of its step. Both layouts
    expire in 30 days and are signed by both owners.
    """
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from in_toto.models.layout import Inspection, Layout, Step
    from in_toto.models.link import FILENAME_FORMAT, Link
    from in_toto.models.metadata import Envelope, Metablock
    from securesystemslib.signer import CryptoSigner

    start = time.perf_counter()
    if work.exists():
        shutil.rmtree(work)
    links, artifacts = work / "links", work / "artifacts"
    links.mkdir(parents=True)
    artifacts.mkdir()

    def signer(name: str) -> CryptoSigner:
        return CryptoSigner(load_pem_private_key((keys / f"{name}.key").read_bytes(), None))

    def wrap(signable: Any) -> Any:
        return Envelope.from_signable(signable) if fmt == "dsse" else Metablock(signed=signable)

    owners = [signer(o) for o in OWNERS]
    functionary = signer(FUNCTIONARY)
    probe = Layout()
    fkey = probe.add_functionary_key_from_path(str(keys / f"{FUNCTIONARY}.pub"))
    keyid = fkey["keyid"]
    if keyid != functionary.public_key.keyid:
        _die("in-toto computed different key ids for the functionary's .pub and .key")

    steps = [
        Step(name=s, pubkeys=[keyid], threshold=1, expected_command=[], expected_materials=[],
             expected_products=[["CREATE", f"{s}.vein"], ["DISALLOW", "*"]])
        for s in names
    ]  # fmt: skip
    inspection = Inspection(
        name=INSPECTION,
        run=["true"],
        expected_materials=[
            *(["MATCH", f"{s}.vein", "WITH", "PRODUCTS", "FROM", s] for s in names),
            ["ALLOW", f"{INSPECTION}.link"],  # the inspection link in-toto-verify leaves behind
            ["DISALLOW", "*"],
        ],
        expected_products=[["ALLOW", "*"]],
    )
    files = {}
    for layout_file, inspect in (("root.layout", []), ("root-inspect.layout", [inspection])):
        layout = Layout(steps=steps, inspect=inspect, keys={keyid: fkey}, readme=f"{len(names)}-step lodec stack")
        layout.set_relative_expiration(days=30)
        layout.validate()
        md = wrap(layout)
        for o in owners:
            md.create_signature(o)
        md.dump(str(work / layout_file))
        files[layout_file] = (work / layout_file).stat().st_size

    link_bytes = 0
    for s in names:
        data = (veins / f"{s}.vein").read_bytes()
        (artifacts / f"{s}.vein").write_bytes(data)
        link = Link(
            name=s, materials={}, products={f"{s}.vein": {"sha256": hashlib.sha256(data).hexdigest()}},
            byproducts={"return-value": 0, "stdout": "", "stderr": ""}, command=[], environment={},
        )  # fmt: skip
        md = wrap(link)
        md.create_signature(functionary)
        path = links / FILENAME_FORMAT.format(step_name=s, keyid=keyid)
        md.dump(str(path))
        link_bytes += path.stat().st_size
    return {
        "format": fmt,
        "layout_bytes": files["root.layout"],
        "inspect_layout_bytes": files["root-inspect.layout"],
        "link_bytes": link_bytes,
        "links": len(names),
        "setup_s": time.perf_counter() - start,
    }


# ------------------------------------------------------------------ the commands


def lodec_verify(
    lodec: Path, keys: Path, owners: Sequence[str], state: Path, target: str = "bench.lodepack"
) -> list[str]:
    argv = [str(lodec), "verify", target]
    for o in owners:
        argv += ["--key", str(keys / f"{o}.pub")]
    return [*argv, "--threshold", str(len(owners)), "--state", str(state)]


def in_toto_verify(exe: Path, layout: Path, keys: Path, owners: Sequence[str], links: Path) -> list[str]:
    return [
        str(exe), "--layout", str(layout), "--verification-keys", *(str(keys / f"{o}.pub") for o in owners),
        "--link-dir", str(links),
    ]  # fmt: skip


def size_group(
    args: argparse.Namespace, lodec: Path, intoto: Path, work: Path, keys: Path, skip: set[str]
) -> list[Cmd]:
    it = work / "in-toto"
    state = work / "state" / "trusted-stacks.json"
    cmds = [
        Cmd("lodec2", "lodec verify pack, 2 keys, threshold 2", "lodec",
            lodec_verify(lodec, keys, OWNERS, state), work),
        Cmd("lodec1", "lodec verify pack, 1 key", "lodec", lodec_verify(lodec, keys, OWNERS[:1], state), work),
        Cmd("lodec2_loose", "lodec verify stack.json + .dsse, 2 keys", "lodec",
            lodec_verify(lodec, keys, OWNERS, state, "stack.json"), work),
        Cmd("lodec0", "lodec verify stack.json (unsigned)", "lodec", [str(lodec), "verify", "stack.json"], work),
        # The same pack with no key: the difference to lodec2 is what checking the signatures costs.
        Cmd("lodec0_pack", "lodec verify pack, no key (unsigned)", "lodec", [str(lodec), "verify", "bench.lodepack"],
            work),
        Cmd("intoto", "in-toto-verify, layout + links", "in-toto",
            in_toto_verify(intoto, it / "root.layout", keys, OWNERS, it / "links"), it / "artifacts",
            args.in_toto_limit),
        Cmd("intoto_insp", "in-toto-verify + inspection of the veins", "in-toto",
            in_toto_verify(intoto, it / "root-inspect.layout", keys, OWNERS, it / "links"), it / "artifacts",
            args.in_toto_limit),
    ]  # fmt: skip
    for c in cmds:
        if c.key in skip:
            c.skipped = "skipped: too slow at a smaller size"
    return cmds


def _flip_last_byte(data: bytes) -> bytes:
    """``data`` with its last byte changed (x ^ 1: in a vein that is the last character of a string)."""
    return data[:-1] + bytes([data[-1] ^ 1])


def _check(what: str, argv: Sequence[str], cwd: Path, expect: int, limit: float | None = None) -> dict[str, str]:
    """Run one correctness check (not timed); exit unless it returns ``expect``. Past ``limit`` s it is not checked."""
    try:
        code, out = _run(argv, cwd, limit, capture=True)
    except TimeoutError:
        return {"what": what, "command": _show(argv), "exit": "-", "said": f"not checked: over {limit:g} s"}
    out = out.strip()
    if code != expect:
        _die(f"check failed: {what}: `{_show(argv)}` exited {code}, expected {expect}, in {cwd}\n" + out[-3000:])
    first = next((line.strip() for line in out.splitlines() if line.strip()), "")
    return {"what": what, "command": _show(argv), "exit": str(code), "said": first[:160]}


def refusal_checks(
    lodec: Path, intoto: Path, work: Path, keys: Path, names: Sequence[str], limit: float | None, skip: set[str]
) -> list[dict[str, str]]:
    """What each verifier refuses, before anything is timed.

    A stranger's key instead of bob's: both must refuse (exit 1). One changed byte in one
    step: the pack (that vein's bytes inside it) must be refused by lodec, and the copied vein
    by in-toto with the inspection layout; the links-only layout does not read the veins and
    is expected to pass (exit 0), which the report states. in-toto checks obey the in-toto
    limit, and are left out at sizes where in-toto is skipped.
    """
    signers = (OWNERS[0], STRANGER)
    state = work / "state" / "refusal-check.json"
    it = work / "in-toto"
    victim = names[len(names) // 2]
    vein = (work / "steps" / f"{victim}.vein").read_bytes()
    pack = (work / "bench.lodepack").read_bytes()
    if pack.count(vein) != 1:
        _die(f"cannot find {victim}.vein exactly once inside bench.lodepack")
    (work / "tampered.lodepack").write_bytes(pack.replace(vein, _flip_last_byte(vein)))
    checks = [
        _check("lodec, a stranger's key instead of bob's", lodec_verify(lodec, keys, signers, state), work, 1),
        _check(f"lodec, one byte of {victim}.vein changed inside the pack",
               lodec_verify(lodec, keys, OWNERS, state, "tampered.lodepack"), work, 1),
    ]  # fmt: skip
    tampered = it / "tampered-artifacts"
    if tampered.exists():
        shutil.rmtree(tampered)
    shutil.copytree(it / "artifacts", tampered)
    (tampered / f"{victim}.vein").write_bytes(_flip_last_byte(vein))
    root, inspect = it / "root.layout", it / "root-inspect.layout"
    if "intoto" not in skip:
        checks.append(_check("in-toto, a stranger's key instead of bob's",
                             in_toto_verify(intoto, root, keys, signers, it / "links"), it / "artifacts", 1, limit))
        checks.append(_check(f"in-toto links only, one byte of {victim}.vein changed (passes: the veins are not read)",
                             in_toto_verify(intoto, root, keys, OWNERS, it / "links"), tampered, 0, limit))
    if "intoto_insp" not in skip:
        checks.append(_check(f"in-toto + inspection, one byte of {victim}.vein changed",
                             in_toto_verify(intoto, inspect, keys, OWNERS, it / "links"), tampered, 1, limit))
    return checks


# ------------------------------------------------------------------ facts about the machine


def _show(argv: Sequence[str]) -> str:
    """Shell form of ``argv``, long file lists abbreviated as ``first ... last (N files)``."""
    args = list(argv)
    files = [a for a in args if a.endswith((".json", ".vein")) and "/" in a]
    if len(files) > 6:
        i = args.index(files[0])
        args = [*args[:i], files[0], "...", files[-1], f"({len(files)} files)", *args[i + len(files) :]]
        return " ".join(a if a == "..." or a.startswith("(") else shlex.quote(a) for a in args)
    return shlex.join(args)


def _first_line(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    except OSError:
        return "?"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "def v(p):\n"
        "    try: return m.version(p)\n"
        "    except m.PackageNotFoundError: return '-'\n"
        f"print(json.dumps({{p: v(p) for p in {list(PACKAGES)!r}}}))"
    )
    out = subprocess.run([str(python), "-P", "-c", code], cwd="/", capture_output=True, text=True, check=True)
    result: dict[str, str] = json.loads(out.stdout)
    return result


def installed_vs_tree(python: Path) -> str:
    """Whether the measured lodec's package files are byte for byte those of this working tree's ``lodec/``."""
    code = "import lodec, pathlib; print(pathlib.Path(lodec.__file__).parent)"
    out = subprocess.run([str(python), "-P", "-c", code], cwd="/", capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return "?"
    installed = Path(out.stdout.strip())
    tree = REPO / "lodec"
    if installed.resolve() == tree.resolve():
        return "is the working tree (editable)"
    ours = {f.relative_to(tree) for f in tree.rglob("*") if f.is_file() and f.suffix in (".py", ".lode")}
    theirs = {f.relative_to(installed) for f in installed.rglob("*") if f.is_file() and f.suffix in (".py", ".lode")}
    differ = sorted(str(f) for f in ours | theirs if f not in ours or f not in theirs
                    or (tree / f).read_bytes() != (installed / f).read_bytes())  # fmt: skip
    if not differ:
        return f"same files as the working tree's lodec/ ({len(ours)} files)"
    return f"DIFFERS from the working tree's lodec/ in {len(differ)} file(s): {', '.join(differ[:5])}"


def machine(python: Path, lodec: Path, intoto: Path, timer: Timer) -> dict[str, Any]:
    commit = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "lodec", "pyproject.toml"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    if dirty:
        commit += " (lodec/ or pyproject.toml modified)"
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable_cores(),
        "kernel": platform.release(),
        "python": _first_line([str(python), "--version"]),
        "python_path": str(python),
        "packages": versions(python),
        "lodec_path": str(lodec),
        "lodec_install": install_kind(python),
        "repo_commit": commit,
        "lodec_vs_tree": installed_vs_tree(python),
        "in_toto_verify_path": str(intoto),
        "in_toto_python": str(lodec_python(intoto)),
        "timer": timer.name,
        "hyperfine": _first_line([timer.hyperfine, "--version"]) if timer.hyperfine else "-",
    }


# ------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], epilog="See the module docstring for the method.")
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                   help="comma-separated step counts (default 100,1000,10000)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=10, help="kept interleaved rounds per size (default 10)")
    p.add_argument("--warmups", type=int, default=1, help="dropped warm-up rounds per size (default 1)")
    p.add_argument("--in-toto-limit", type=float, default=120.0,
                   help="seconds an in-toto warm-up run may take before it is skipped at that size and larger "
                        "(default 120)")  # fmt: skip
    p.add_argument("--in-toto-format", choices=("dsse", "metablock"), default="dsse",
                   help="in-toto metadata: DSSE envelopes as lodec uses (default), or classic signed JSON")  # fmt: skip
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="work directory (default benches/out/)")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="GitHub Actions workflows (*.yml)")
    p.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    p.add_argument("--lodec", type=Path, default=None, help="lodec executable (default: the one beside this Python)")
    p.add_argument("--in-toto-verify", dest="in_toto_verify", type=Path, default=None,
                   help="in-toto-verify executable (default: the one beside this Python)")  # fmt: skip
    p.add_argument("--no-hyperfine", action="store_true", help="time with perf_counter even if hyperfine is on PATH")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the tables")
    p.add_argument("--json-out", type=Path, default=None, metavar="FILE", help="also write the results as JSON to FILE")
    args = p.parse_args(argv)
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        p.error("--sizes takes comma-separated integers, e.g. 100,1000,10000")
    if not args.sizes or args.sizes[0] < 1 or args.repeats < 1 or args.warmups < 1:
        p.error("--sizes must be >= 1, --repeats >= 1 and --warmups >= 1 (the warm-up enforces --in-toto-limit)")
    return args


def find_exe(given: Path | None, name: str) -> Path:
    if given is None:
        beside = Path(sys.executable).parent / name
        found = beside if beside.exists() else (Path(w) if (w := shutil.which(name)) else None)
        if found is None:
            _die(f"no {name} executable beside {sys.executable} or on PATH")
        given = found
    exe = given.absolute()
    if not os.access(exe, os.X_OK):
        _die(f"{exe} is not executable")
    return exe


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import in_toto  # noqa: F401  (the layout and links are made in this process)
    except ImportError:
        _die(
            "this Python has no in-toto; run the benchmark with a venv that has in-toto and lodec:\n"
            "  python3 -m venv /tmp/signbench-venv && /tmp/signbench-venv/bin/pip install in-toto .\n"
            "  /tmp/signbench-venv/bin/python benches/bench_signed.py"
        )
    lodec = find_exe(args.lodec, "lodec")
    intoto = find_exe(args.in_toto_verify, "in-toto-verify")
    python = lodec_python(lodec)
    for sub in (["pack", "--help"], ["sign", "--help"], ["key", "generate", "--help"]):
        if subprocess.run([str(lodec), *sub], capture_output=True, check=False).returncode != 0:
            _die(f"{lodec} has no `lodec {' '.join(sub[:-1])}` command: it predates signing")
    hyperfine = None if args.no_hyperfine else shutil.which("hyperfine")
    timer = Timer(hyperfine)
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_start = os.getloadavg()
    facts = machine(python, lodec, intoto, timer)  # before timing: the commit the run started from
    base = (args.workdir / "signed").absolute()
    keys = base / "keys"
    try:
        make_keys(lodec, keys)
        shapes = corpus_shapes(args.corpus)

        # ---- start-up context, once
        startup = [
            Cmd("py", "python -c pass", "context", [str(python), "-c", "pass"], base),
            Cmd("lodec_version", "lodec --version", "context", [str(lodec), "--version"], base),
            Cmd("intoto_version", "in-toto-verify --version", "context", [str(intoto), "--version"], base),
        ]
        rounds(startup, timer, args.repeats, args.warmups, "start-up")

        sizes: list[dict[str, Any]] = []
        skip: set[str] = set()
        for n in args.sizes:
            work = base / f"n{n}"
            work.mkdir(parents=True, exist_ok=True)
            _progress(f"{n} steps: building the lodec stack, signing and packing in {work}")
            names, lodec_facts = build_lodec(lodec, work, keys, shapes, n, args.seed)
            _progress(f"{n} steps: building the in-toto layout and {n} links")
            it_facts = build_in_toto(work / "in-toto", names, work / "steps", keys, args.in_toto_format)
            state_dir = work / "state"
            if state_dir.exists():
                shutil.rmtree(state_dir)
            state_dir.mkdir()
            checked = refusal_checks(lodec, intoto, work, keys, names, args.in_toto_limit, skip)
            cmds = size_group(args, lodec, intoto, work, keys, skip)
            kept = rounds(cmds, timer, args.repeats, args.warmups, f"{n} steps")
            skip |= {c.key for c in cmds if c.skipped}
            rows = [c.summary(n) for c in cmds]
            sizes.append({
                "steps": n, "lodec": lodec_facts, "in_toto": it_facts, "refusal_checks": checked,
                "rows": rows, "ratios": ratios(cmds, kept),
            })  # fmt: skip
        result = {
            "benchmark": "bench_signed",
            "date": started,
            "finished": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python " + shlex.join(["benches/bench_signed.py", *(sys.argv[1:] if argv is None else argv)]),
            "machine": facts,
            "workdir": str(base),
            "seed": args.seed,
            "corpus_shapes": len(shapes),
            "repeats": args.repeats,
            "warmups": args.warmups,
            "in_toto_limit_s": args.in_toto_limit,
            "startup": [c.summary(None) for c in startup],
            "sizes": sizes,
            "loadavg_start_end": [load_start, os.getloadavg()],
        }
        result["target"] = target(sizes)
    finally:
        timer.close()
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


PAIRS = (("intoto", "lodec2"), ("intoto_insp", "lodec2"), ("intoto", "lodec1"))
SHORT = {"lodec2": "lodec, 2 keys", "lodec1": "lodec, 1 key",
         "intoto": "in-toto", "intoto_insp": "in-toto + inspection"}


def ratios(cmds: list[Cmd], kept: list[dict[str, float]]) -> list[dict[str, Any]]:
    """in-toto / lodec: ratio of medians and the range of the per-round ratios."""
    by = {c.key: c for c in cmds}
    out = []
    for num, den in PAIRS:
        a, b = by[num], by[den]
        if a.skipped or b.skipped:
            continue
        paired = sorted(r[num] / r[den] for r in kept if num in r and den in r)
        out.append({
            "num": num, "den": den, "label": f"{SHORT[num]} / {SHORT[den]}",
            "ratio": statistics.median(a.times) / statistics.median(b.times),
            "paired_min": paired[0], "paired_max": paired[-1],
        })  # fmt: skip
    return out


def target(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    t: dict[str, Any] = {"steps": TARGET_SIZE, "ratio_min": TARGET_RATIO, "pair": "intoto / lodec2"}
    for s in sizes:
        if s["steps"] == TARGET_SIZE:
            for r in s["ratios"]:
                if (r["num"], r["den"]) == ("intoto", "lodec2"):
                    t.update(ratio=r["ratio"], paired_min=r["paired_min"], met=r["ratio"] >= TARGET_RATIO)
    if "ratio" not in t:
        t["met"] = None
    return t


def print_report(res: dict[str, Any]) -> None:
    m = res["machine"]
    pk = m["packages"]
    print(f"bench_signed  started {res['date']}, finished {res['finished']}")
    print(f"command: {res['command']}")
    print(f"machine: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), Linux {m['kernel']}")
    print(f"         {m['python']} ({m['python_path']}); repo HEAD {m['repo_commit']} at the start")
    print(f"         lodec {pk['lodec']} ({m['lodec_install']} install: {m['lodec_path']}; {m['lodec_vs_tree']})")
    print(f"         in-toto {pk['in-toto']} ({m['in_toto_verify_path']}), securesystemslib {pk['securesystemslib']}")
    print("         " + ", ".join(f"{p} {pk[p]}" for p in PACKAGES[3:]))
    print(f"timer:   {m['timer']}" + (f" ({m['hyperfine']})" if m["hyperfine"] != "-" else ""))
    print(
        f"method:  whole processes, wall time, warm page cache; per size {res['warmups']} warm-up + "
        f"{res['repeats']} kept rounds, interleaved and rotated; in-toto limit {res['in_toto_limit_s']:g} s per run"
    )
    (a1, a5, _), (b1, b5, _) = res["loadavg_start_end"]
    print(f"load:    1/5-min load average {a1:.2f}/{a5:.2f} at start, {b1:.2f}/{b5:.2f} at end (the bench itself adds ~1)")
    print(f"input:   synthetic SkillStep stacks from {res['corpus_shapes']} corpus step shapes (seed {res['seed']})")
    print(f"workdir: {res['workdir']}")
    print()
    head = f"{'command':<44} {'median ms':>10} {'min':>9} {'max':>9} {'IQR':>17} {'cpu ms':>8} {'us/step':>8}"
    print("start-up")
    print(head)
    print("-" * len(head))
    for r in res["startup"]:
        _row(r)
    for s in res["sizes"]:
        n = s["steps"]
        lf, itf = s["lodec"], s["in_toto"]
        print()
        print(
            f"{n:,} steps: pack {lf['pack_bytes'] / 1e6:.2f} MB (veins {lf['vein_bytes'] / 1e6:.2f} MB, "
            f"manifest {lf['manifest_bytes'] / 1e6:.2f} MB, envelope {lf['envelope_bytes'] / 1e3:.1f} kB); "
            f"in-toto ({itf['format']}) layout {itf['layout_bytes'] / 1e6:.2f} MB, "
            f"{itf['links']:,} links {itf['link_bytes'] / 1e6:.2f} MB"
        )
        setup = ", ".join(f"{k} {v:.2f} s" for k, v in lf["setup_s"].items())
        print(f"  setup (not timed): {setup}; in-toto files {itf['setup_s']:.2f} s")
        print(head)
        print("-" * len(head))
        for r in s["rows"]:
            _row(r)
        for r in s["ratios"]:
            print(f"  ratio {r['label']}: {r['ratio']:.2f}x (per round {r['paired_min']:.2f}-{r['paired_max']:.2f})")
    t = res["target"]
    print()
    if t["met"] is None:
        print(f"target:  in-toto-verify >= {t['ratio_min']:g}x lodec verify at {t['steps']:,} steps: NOT MEASURED")
    else:
        verdict = "PASS" if t["met"] else "MISS"
        print(
            f"target:  in-toto-verify (layout + links) >= {t['ratio_min']:g}x lodec verify (pack, 2 keys) "
            f"at {t['steps']:,} steps: {verdict} ({t['ratio']:.2f}x)"
        )
    print()
    print("commands (cwd):")
    seen = set()
    for group in [res["startup"], *(s["rows"] for s in res["sizes"])]:
        for r in group:
            if r["key"] not in seen:
                seen.add(r["key"])
                print(f"  [{r['cwd']}] {r['command']}")
    if res["sizes"]:
        s = res["sizes"][0]
        print(f"checks before timing, at {s['steps']:,} steps (every size: see --json):")
        for c in s["refusal_checks"]:
            print(f"  exit {c['exit']}: {c['what']}" + (f": {c['said']}" if c["said"] else ""))


def _row(r: dict[str, Any]) -> None:
    label = r["label"] if len(r["label"]) <= 44 else r["label"][:41] + "..."
    if "skipped" in r:
        print(f"{label:<44} {r['skipped']}")
        return
    iqr = f"{r['p25_ms']:.1f}-{r['p75_ms']:.1f}"
    ups = f"{r['us_per_step']:.1f}" if "us_per_step" in r else ""
    print(
        f"{label:<44} {r['median_ms']:>10.1f} {r['min_ms']:>9.1f} {r['max_ms']:>9.1f} {iqr:>17} "
        f"{r['cpu_median_ms']:>8.1f} {ups:>8}"
    )


if __name__ == "__main__":
    sys.exit(main())
