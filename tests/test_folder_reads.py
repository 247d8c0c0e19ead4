"""``files.FolderReads`` (each folder opened once, one call per file) against ``files.read_bounded``.

``lodec compile`` reads its sources, and the veins it may leave alone, this
way. Every plant an attacker or an accident could put at a source's path
must give exactly what ``read_bounded`` gives: the same bytes or the same
error (class, code, message), with and without ``follow``; both
implementations of the one-call read (native where it was built, and
Python) are checked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lodec import files as lodec_files
from lodec.errors import LodecError
from lodec.files import FolderReads, read_bounded

from .plants import PLANTS, READERS, plant, use_reader

LIMIT = 64


@pytest.fixture(autouse=True, params=sorted(READERS))
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    return use_reader(request, monkeypatch, lodec_files)


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    plant(d, ".json", b'{"a": 1}', LIMIT)
    (tmp_path / "linked-folder").symlink_to(d)
    (tmp_path / "not-a-folder").write_bytes(b"")
    return d


NAMES = PLANTS


def outcome(read: Any, path: Any, follow: bool) -> tuple[Any, ...]:
    try:
        return ("bytes", read(path, LIMIT, follow=follow))
    except LodecError as exc:
        return ("error", type(exc).__name__, exc.code, str(exc))
    except ValueError as exc:  # read_bounded's own answer to a NUL in a path: the same here
        return ("ValueError", str(exc))


def paths(src: Path, name: str) -> list[str]:
    root = src.parent
    return [f"{src}/{name}.json", f"{root}/linked-folder/{name}.json", f"{root}/not-a-folder/{name}.json",
            f"{root}/absent-folder/{name}.json", f"{src}/./{name}.json", f"{src}/{name}.json/"]


@pytest.mark.parametrize("follow", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_a_plant_at_a_source_reads_as_read_bounded_reads_it(src: Path, name: str, follow: bool) -> None:
    with FolderReads() as reads:
        for path in paths(src, name):
            assert outcome(reads.read, path, follow) == outcome(read_bounded, path, follow), path
            assert outcome(reads.read, path, follow) == outcome(read_bounded, path, follow), path  # folder cached


def test_relative_paths_and_odd_names_read_as_read_bounded(src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(src)
    odd = ["plain.json", "./plain.json", "../src/plain.json", "", ".", "..", "a\x00b.json", "\udcff.json",
           "a-fifo.json", Path("plain.json")]
    with FolderReads() as reads:
        for path in odd:
            assert outcome(reads.read, path, False) == outcome(read_bounded, path, False), path


def test_a_fifo_fed_a_source_is_refused_without_waiting(src: Path) -> None:
    """O_NONBLOCK: opening the FIFO does not wait for a writer, and it is refused as not a regular file."""
    with FolderReads() as reads:
        verdict = outcome(reads.read, str(src / "a-fifo.json"), False)
    assert verdict[0] == "error" and "FIFO" in verdict[3]


def test_close_closes_every_folder(src: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    reads = FolderReads()
    for name in NAMES:
        outcome(reads.read, str(src / f"{name}.json"), False)
    outcome(reads.read, str(src.parent / "linked-folder" / "plain.json"), False)
    assert len(os.listdir("/proc/self/fd")) == before + 2
    reads.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_plain_source_takes_the_one_call_read(src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("read_bounded called for a plain file")

    monkeypatch.setattr(lodec_files, "read_bounded", no)
    with FolderReads() as reads:
        assert reads.read(str(src / "plain.json"), LIMIT) == b'{"a": 1}'
