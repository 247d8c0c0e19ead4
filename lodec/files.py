"""File I/O at the edges: bounded reads and atomic writes.

The verification core never calls this module; loaders and the CLI do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import LimitExceeded, LodecError


def read_bounded(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes`` bytes.

    The size is checked on the open file (``fstat``) before reading, and
    the read itself stops one byte past the limit, so a file that grows in
    between is still refused.

    Raises:
        LimitExceeded: the file is larger than ``max_bytes``.
        LodecError: code ``file_unreadable`` (missing, a directory, no permission).
    """
    label = str(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise LimitExceeded(f"file is {size} bytes; the limit is {max_bytes}", file=label)
            data = fh.read(max_bytes + 1)
    except LimitExceeded:
        raise
    except FileNotFoundError:
        raise LodecError("no such file", code="file_not_found", file=label) from None
    except IsADirectoryError:
        raise LodecError("is a directory, not a file", code="file_unreadable", file=label) from None
    except OSError as exc:
        raise LodecError(exc.strerror or str(exc), code="file_unreadable", file=label) from None
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
