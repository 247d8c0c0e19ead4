"""File I/O at the edges: bounded reads and atomic writes.

The verification core never calls this module; loaders and the CLI do.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import LimitExceeded, LodecError


def read_bounded(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes`` bytes.

    The size is checked on the open file (``fstat``) before reading, and
    the read asks for one byte more than that size, so a file that grew in
    between is still caught.

    Raises:
        LimitExceeded: the file is larger than ``max_bytes``.
        LodecError: code ``file_not_found``, or ``file_unreadable`` (a
            directory, not a regular file, no permission).
    """
    label = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise LodecError("no such file", code="file_not_found", file=label) from None
    except OSError as exc:
        raise LodecError(exc.strerror or str(exc), code="file_unreadable", file=label) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LodecError("not a regular file", code="file_unreadable", file=label)
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
        raise LodecError(exc.strerror or str(exc), code="file_unreadable", file=label) from None
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
        LodecError: code ``file_unwritable``.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise LodecError(exc.strerror or str(exc), code="file_unwritable", file=str(path)) from None
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
            raise LodecError(exc.strerror or str(exc), code="file_unwritable", file=str(path)) from None
        raise
