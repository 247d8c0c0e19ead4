"""What an attacker or an accident can put where lodec reads a file, for the read tests.

``plant(folder, suffix, plain, limit)`` makes, in ``folder``, one entry per
name of ``PLANTS`` (``<name><suffix>``; ``absent`` is not made), and
``READERS`` holds both implementations of the one-call read
(``files.read_whole_at``): the Python one and the native one (``None`` where
it was not built).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lodec import files as lodec_files

PLANTS = ["plain", "empty", "at-limit", "over-limit", "a-directory", "a-fifo", "a-link", "a-dangling-link",
          "a-link-to-a-fifo", "absent"]

READERS = {"python": lodec_files._read_whole_at, "native": lodec_files._native_read_whole_at}


def plant(folder: Path, suffix: str, plain: bytes, limit: int) -> None:
    """Every plant of ``PLANTS`` but ``absent`` in ``folder``; ``plain`` is the regular file's content."""
    (folder / f"plain{suffix}").write_bytes(plain)
    (folder / f"empty{suffix}").write_bytes(b"")
    (folder / f"at-limit{suffix}").write_bytes(b"x" * limit)
    (folder / f"over-limit{suffix}").write_bytes(b"x" * (limit + 1))
    (folder / f"a-directory{suffix}").mkdir()
    os.mkfifo(folder / f"a-fifo{suffix}")
    (folder / f"a-link{suffix}").symlink_to(folder / f"plain{suffix}")
    (folder / f"a-dangling-link{suffix}").symlink_to(folder / f"nowhere{suffix}")
    (folder / f"a-link-to-a-fifo{suffix}").symlink_to(folder / f"a-fifo{suffix}")


def use_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, module: Any) -> Any:
    """Point ``module.read_whole_at`` at the reader ``request.param`` names (skip where it was not built)."""
    read = READERS[request.param]
    if read is None:
        from .conftest import unavailable

        unavailable("lodec._native was not built (no C compiler at install time?)")
    monkeypatch.setattr(module, "read_whole_at", read)
    return read
