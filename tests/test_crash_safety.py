"""Crash safety of ``lodec compile``: a SIGKILL mid-batch or a concurrent compile never leaves a partial file.

A 10,000-step batch is compiled by a real ``lodec`` process. ``compile``
writes every vein to a temp file beside its target, syncs once, then renames
each into place (``lodec.files.atomic_write_many``). Whatever the moment of
the kill, every file at a final name (``<stepName>.vein``) must be complete:
it decodes, verifies, and is byte for byte the vein of its source. The only
other files allowed are the hidden temp files (``.<name>.<random>.tmp``)
that a killed process cannot clean up, and they are never at a final name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import lodec

N_STEPS = 10_000
FINAL = re.compile(r"s\d{5}\.vein")
TEMP = re.compile(r"\.s\d{5}\.vein\..+\.tmp")
STEP = lodec.skill_step_schema()


def _write_sources(folder: Path, skill: str) -> dict[str, bytes]:
    """N small step sources (name s00000...); returns step name -> expected vein bytes."""
    folder.mkdir()
    expected = {}
    for i in range(N_STEPS):
        name = f"s{i:05d}"
        record = {"stepName": name, "skillRef": f"skill:{skill}", "inputs": {"i": str(i), "skill": skill}}
        if i:
            record["dependsOn"] = [f"s{i - 1:05d}"]
        (folder / f"{name}.json").write_text(json.dumps(record))
        expected[name] = lodec.encode_record(STEP, record).data
    return expected


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, bytes], dict[str, bytes]]]:
    """Two 10,000-step batches with the same step names and different content (skill a / skill b).

    On a RAM file system when there is one (/dev/shm): ~60,000 small files
    are written here, and on a shared disk under load that alone took 10 s,
    with each compile's os.sync() ~10 s more. A SIGKILL tests the rename
    protocol, which is the same on any file system (power loss is not tested).
    """
    shm = Path("/dev/shm")  # ~60,000 files of a 4 KiB page each: only if it has room (Docker's default is 64 MB)
    if shm.is_dir() and os.access(shm, os.W_OK) and _free_bytes(shm) > 1 << 30:
        root = Path(tempfile.mkdtemp(prefix="lodec-crash-", dir=shm))
    else:
        root = tmp_path_factory.mktemp("crash")
    try:
        a = _write_sources(root / "a", "a")
        b = _write_sources(root / "b", "b")
        yield root, a, b
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _compile(root: Path, batch_name: str, out: str) -> subprocess.Popen[bytes]:
    sources = sorted(os.listdir(root / batch_name))
    return subprocess.Popen(
        [sys.executable, "-m", "lodec", "compile", "-q", *(f"{batch_name}/{s}" for s in sources), "-o", f"{out}/"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _check_outputs(out: Path, *allowed: dict[str, bytes]) -> tuple[int, int]:
    """Every final file is one complete, verified vein of ``allowed``; returns (finals, temps)."""
    finals = temps = 0
    for entry in os.scandir(out):
        if FINAL.fullmatch(entry.name):
            finals += 1
            name = entry.name[:-5]
            data = Path(entry.path).read_bytes()
            vein = lodec.decode_vein(data, STEP, file=entry.path)  # canonical, complete, self-consistent
            assert vein.record["stepName"] == name
            assert any(data == a[name] for a in allowed), f"{entry.name} is not the vein of its source"
        elif TEMP.fullmatch(entry.name):
            temps += 1
        else:
            raise AssertionError(f"unexpected file {entry.name!r} in the output directory")
    return finals, temps


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.0002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stderr:
        proc.stderr.close()


def test_sigkill_while_renaming_leaves_only_complete_veins(batch: tuple[Path, dict[str, bytes], dict[str, bytes]]) -> None:
    """Killed once the first vein is in place: some but not all outputs exist, each complete."""
    root, a, _ = batch
    for attempt in range(3):  # the rename phase is short; retry if the kill lands after it
        out = root / f"out-rename-{attempt}"
        proc = _compile(root, "a", out.name)
        _kill_when(proc, lambda first=out / "s00000.vein": first.exists())
        assert proc.returncode == -signal.SIGKILL
        finals, temps = _check_outputs(out, a)
        if 0 < finals < N_STEPS:
            break
    assert 0 < finals < N_STEPS, f"the kill never landed mid-rename ({finals} finals)"
    assert finals + temps == N_STEPS  # every step is either in place or still staged, never both, never lost
    # A rerun completes the batch over the debris, and verifies.
    proc = _compile(root, "a", out.name)
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    assert _check_outputs(out, a)[0] == N_STEPS


def test_sigkill_while_staging_leaves_no_vein_at_a_final_name(batch: tuple[Path, dict[str, bytes], dict[str, bytes]]) -> None:
    """Killed while temp files are being written: nothing is at a final name yet."""
    root, a, _ = batch
    out = root / "out-staging"

    def staging() -> bool:
        try:
            return any(TEMP.fullmatch(e.name) for e in os.scandir(out))
        except FileNotFoundError:
            return False

    proc = _compile(root, "a", out.name)
    _kill_when(proc, staging)
    assert proc.returncode == -signal.SIGKILL
    finals, temps = _check_outputs(out, a)
    assert temps > 0 and finals == 0, (finals, temps)


def test_two_concurrent_compiles_into_one_directory_leave_only_complete_veins(
    batch: tuple[Path, dict[str, bytes], dict[str, bytes]],
) -> None:
    root, a, b = batch
    out = root / "out-concurrent"
    procs = [_compile(root, "a", out.name), _compile(root, "b", out.name)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    finals, temps = _check_outputs(out, a, b)
    assert (finals, temps) == (N_STEPS, 0)  # each file is wholly a's or wholly b's vein, none left staged
