"""File I/O at the edges: bounded reads and atomic writes.

The verification core never calls this module; loaders and the CLI do.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .errors import FileMissing, FileUnreadable, FileUnwritable, LimitExceeded


def read_bounded(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes`` bytes.

    The size is checked on the open file (``fstat``) before reading, and
    the read asks for one byte more than that size, so a file that grew in
    between is still caught.

    Raises:
        LimitExceeded: the file is larger than ``max_bytes``.
        FileMissing: no such file (code ``file_not_found``).
        FileUnreadable: a directory, not a regular file, no permission or
            an I/O error (code ``file_unreadable``).
    """
    label = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileMissing("no such file", file=label) from None
    except OSError as exc:
        raise FileUnreadable(exc.strerror or str(exc), file=label) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileUnreadable("not a regular file", file=label)
        if st.st_size > max_bytes:
            raise LimitExceeded(f"file is {st.st_size} bytes; the limit is {max_bytes}", file=label)
        data = os.read(fd, st.st_size + 1)
        if len(data) > st.st_size or len(data) < st.st_size:
            # Grew or shrank since fstat (or a short read): read to the end, bounded.
            chunks = [data]
            total = len(data)
            while total <= max_bytes:
                chunk = os.read(fd, max_bytes + 1 - total)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            data = b"".join(chunks)
    except OSError as exc:
        raise FileUnreadable(exc.strerror or str(exc), file=label) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise LimitExceeded(f"file is over the {max_bytes}-byte limit", file=label)
    return data


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, rename.

    A crash leaves either the old file or the new one at ``path``, never a
    partial one. Parent directories are created.

    Raises:
        FileUnwritable: code ``file_unwritable``.
    """
    import tempfile  # only writers pay for it

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FileUnwritable(exc.strerror or str(exc), file=str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise FileUnwritable(exc.strerror or str(exc), file=str(path)) from None
        raise


def atomic_write_many(items: Sequence[tuple[str | os.PathLike[str], bytes]], *, mode: int = 0o644) -> None:
    """Write many files atomically, with one flush to disk for the batch.

    Every file is first written to a temp file beside its target; then the
    data is flushed once (``os.sync``; an fsync per file costs ~0.5 ms each,
    most of a 10,000-step compile); then each temp file is renamed over its
    target and each directory is fsynced. A crash at any point leaves every
    target either absent, as it was, or complete: never partial.

    Raises:
        FileUnwritable: code ``file_unwritable``; temp files are removed.
    """
    if len(items) <= 1:
        for path, data in items:
            atomic_write(path, data, mode=mode)
        return
    import tempfile
    staged: list[tuple[str, Path]] = []
    current = ""
    try:
        for path, data in items:
            target = Path(path)
            current = str(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            staged.append((tmp, target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, mode)
        os.sync()
        for tmp, target in staged:
            current = str(target)
            os.replace(tmp, target)
        for directory in {target.parent for _, target in staged}:
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException as exc:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise FileUnwritable(exc.strerror or str(exc), file=current) from None
        raise
