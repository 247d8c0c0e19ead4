"""``StepFiles.read_step`` (one descriptor of the steps folder, one read per vein) against the reference read.

The fast read only takes a plain regular file within the limit that reads
whole; everything else must give exactly what ``read_optional`` (that is,
``files.read_bounded`` on the full path) gives: the same bytes, ``None``,
or the same error. Named for the plants an attacker could put at a step.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from lodec.app import verify as app_verify
from lodec.app.verify import StepFiles, read_optional, verify_stack_files
from lodec.errors import LodecError

from .plants import PLANTS, READERS, plant, use_reader

LIMIT = 64


@pytest.fixture(autouse=True, params=sorted(READERS))
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    return use_reader(request, monkeypatch, app_verify)


def reference(steps: Path, name: str) -> Any:
    try:
        return ("bytes", read_optional(steps / f"{name}.vein", LIMIT))
    except LodecError as exc:
        return ("error", type(exc).__name__, exc.code, str(exc))


def fast(steps: Path, name: str) -> Any:
    with StepFiles(steps, LIMIT) as files:
        try:
            return ("bytes", files.read_step(name))
        except LodecError as exc:
            return ("error", type(exc).__name__, exc.code, str(exc))


@pytest.fixture()
def steps(tmp_path: Path) -> Path:
    d = tmp_path / "steps"
    d.mkdir()
    plant(d, ".vein", b"VEIN plain", LIMIT)
    return d


NAMES = PLANTS


@pytest.mark.parametrize("name", NAMES)
def test_a_plant_at_a_step_reads_as_the_reference_reads_it(steps: Path, name: str) -> None:
    assert fast(steps, name) == reference(steps, name)


@pytest.mark.parametrize("name", NAMES)
def test_the_one_call_read_takes_only_a_plain_regular_file_within_the_limit(steps: Path, name: str, reader: Any) -> None:
    fd = os.open(steps, os.O_RDONLY | os.O_DIRECTORY)
    try:
        got = reader(fd, f"{name}.vein", LIMIT)
    finally:
        os.close(fd)
    taken = {"plain": b"VEIN plain", "empty": b"", "at-limit": b"x" * LIMIT}
    assert got == taken.get(name)


def test_the_fast_read_returns_the_bytes_and_none_for_an_absent_step(steps: Path) -> None:
    assert fast(steps, "plain") == ("bytes", b"VEIN plain")
    assert fast(steps, "absent") == ("bytes", None)
    assert fast(steps, "a-link")[:3] == ("error", "FileUnreadable", "file_link")
    assert fast(steps, "a-fifo")[:3] == ("error", "FileUnreadable", "file_unreadable")


def test_a_missing_steps_folder_reads_every_step_as_missing(tmp_path: Path) -> None:
    assert fast(tmp_path / "no-such-folder", "plain") == ("bytes", None) == reference(tmp_path / "no-such-folder", "plain")


def test_attack_a_fifo_with_a_writer_feeding_a_valid_vein_is_refused(tmp_path: Path, seed_stack: Path) -> None:
    """The regular-file check is on the open descriptor: a FIFO that would deliver the right bytes is still refused."""
    steps = seed_stack.parent / "steps"
    victim = sorted(steps.glob("*.vein"))[0]
    good = victim.read_bytes()
    victim.unlink()
    os.mkfifo(victim)

    def feed() -> None:
        for _ in range(4):  # every open for reading gets the valid bytes
            try:
                fd = os.open(victim, os.O_WRONLY)
            except OSError:
                return
            try:
                os.write(fd, good)
            except OSError:
                pass
            finally:
                os.close(fd)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    report = verify_stack_files(seed_stack)
    assert not report.ok
    assert [p.code for p in report.problems] == ["file_unreadable"]
    assert "FIFO" in report.problems[0].message
    # Let the writer go.
    for _ in range(4):
        try:
            fd = os.open(victim, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            break


def test_attack_a_step_file_swapped_for_a_link_to_its_own_bytes_is_refused_not_followed(
        tmp_path: Path, seed_stack: Path) -> None:
    """A link at a step file is refused even when the file it names holds exactly the pinned vein: verification
    reads only regular files lodec found itself (with both step reads: the native one and the Python one), so
    what is verified is what sits in the steps folder, not whatever a link points to later."""
    steps = seed_stack.parent / "steps"
    victim = sorted(steps.glob("*.vein"))[0]
    outside = tmp_path / "elsewhere.vein"
    outside.write_bytes(victim.read_bytes())
    victim.unlink()
    victim.symlink_to(outside)
    report = verify_stack_files(seed_stack)
    assert not report.ok
    assert [p.code for p in report.problems] == ["file_link"]
