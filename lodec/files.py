"""File I/O at the edges: safe bounded reads, atomic writes, and lock files.

The verification core never calls this module; loaders and the CLI do.

Every file lodec reads is opened here (``read_bounded``, or
``open_regular`` for a streamed read) with ``O_NOFOLLOW | O_NONBLOCK |
O_CLOEXEC``, then checked to be a regular file on the open descriptor:

- a symbolic link at the final component is refused (``file_link``) unless
  the caller passes ``follow=True``, which it does only for a path the user
  named (on the command line, or in a policy they wrote): that path is
  resolved once and the resolved path is opened with ``O_NOFOLLOW``. Files
  lodec finds by itself (step veins, envelopes beside a manifest, the
  rollback state, run records, CAS blobs) are never followed;
- a FIFO, socket, device or directory is refused (``file_unreadable``);
  ``O_NONBLOCK`` means opening a FIFO never waits for a writer.

The rule is documented in ``docs/errors.md`` (§Links and special files).
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from .errors import FileMissing, FileUnreadable, FileUnwritable, LimitExceeded

#: The message for a symbolic link where lodec does not follow links (code ``file_link``).
LINK_MESSAGE = "is a symbolic link; lodec does not follow links here"

_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))
_LOCK_FLAGS = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))


def _kind(mode: int) -> str:
    """``" (a FIFO)"`` etc. for a file that is not regular; ``""`` for a directory.

    A directory keeps the bare message it always had ("not a regular file").
    """
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return f" ({kind})"
    return ""


def _not_regular(mode: int) -> str:
    return "not a regular file" + _kind(mode)


def _open_error(cls: type[FileUnreadable | FileUnwritable], exc: OSError, path: str | os.PathLike[str],
                label: str) -> FileUnreadable | FileUnwritable:
    """The one-line error for a failed ``os.open`` of ``path`` (a link, a special file, or the OS's reason)."""
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        return cls(LINK_MESSAGE, code="file_link", file=label)
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        return cls(_not_regular(st.st_mode), file=label)  # a socket: open() says only ENXIO
    return cls(exc.strerror or str(exc), file=label)


def _open_regular_fd(path: str | os.PathLike[str], label: str, follow: bool) -> tuple[int, os.stat_result]:
    target: str | os.PathLike[str] = os.path.realpath(path) if follow else path
    try:
        fd = os.open(target, _READ_FLAGS)
    except FileNotFoundError:
        raise FileMissing("no such file", file=label) from None
    except OSError as exc:
        raise _open_error(FileUnreadable, exc, target, label) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileUnreadable(_not_regular(st.st_mode), file=label)
        os.set_blocking(fd, True)  # O_NONBLOCK was for the open; reads of a regular file block as usual
    except OSError as exc:
        os.close(fd)
        raise FileUnreadable(exc.strerror or str(exc), file=label) from None
    except BaseException:
        os.close(fd)
        raise
    return fd, st


@contextmanager
def open_regular(path: str | os.PathLike[str], *, follow: bool = False) -> Iterator[BinaryIO]:
    """Open a regular file for a streamed read, as safely as ``read_bounded`` (no size bound).

    Yields a binary file object. Errors while reading inside the block are
    the caller's (``OSError``).

    Raises (on entry):
        FileMissing: no such file.
        FileUnreadable: a symbolic link without ``follow`` (code
            ``file_link``), not a regular file, no permission, an I/O error.
    """
    fd, _ = _open_regular_fd(path, os.fspath(path), follow)
    with os.fdopen(fd, "rb") as fh:
        yield fh


def read_bounded(path: str | os.PathLike[str], max_bytes: int, *, follow: bool = False) -> bytes:
    """Read a regular file of at most ``max_bytes`` bytes.

    Opened with ``O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`` and checked to be a
    regular file on the open descriptor. ``follow=True`` (only for paths
    the user named) resolves the path once and opens the resolved path,
    still with ``O_NOFOLLOW``. The size is checked on the open file
    (``fstat``) before reading, and the read asks for one byte more than
    that size, so a file that grew in between is still caught.

    Raises:
        LimitExceeded: the file is larger than ``max_bytes``.
        FileMissing: no such file (code ``file_not_found``).
        FileUnreadable: a symbolic link without ``follow`` (code
            ``file_link``: "is a symbolic link; lodec does not follow links
            here"); a directory ("not a regular file"), a FIFO, socket or
            device ("not a regular file (a FIFO)", ...); no permission or an
            I/O error (the OS's message); code ``file_unreadable``.
    """
    label = os.fspath(path)
    fd, st = _open_regular_fd(path, label, follow)
    try:
        if st.st_size > max_bytes:
            raise LimitExceeded(f"file is {st.st_size} bytes; the limit is {max_bytes}", file=label)
        data = os.read(fd, st.st_size + 1)
        if len(data) != st.st_size:
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


def _read_whole_at(dir_fd: int, name: str, max_bytes: int) -> bytes | None:
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_size <= max_bytes:
            data = os.read(fd, st.st_size + 1)
            if len(data) == st.st_size:
                return data
    except OSError:
        pass
    finally:
        os.close(fd)
    return None


#: The native fast paths of verification (``lodec/_native.c``): its vein decoder type and its one-call read, or
#: ``None`` where it was not built (no C compiler at install time) or ``LODEC_PURE_PYTHON`` is set. The one place
#: that decides: without them lodec reads and decodes the same, in Python, more slowly
#: (``docs/adr/0004-native-vein-decoder.md``).
NativeDecoder: Any = None
_native_read_whole_at: Any = None
if not os.environ.get("LODEC_PURE_PYTHON"):
    try:
        from ._native import Decoder as NativeDecoder
        from ._native import read_regular as _native_read_whole_at
    except ImportError:
        pass

#: ``read_whole_at(dir_fd, name, max_bytes) -> bytes | None``: the bytes of the regular file ``name`` in the
#: folder open as ``dir_fd`` (no link followed, no wait on a FIFO; one ``fstat``, one ``read``), if it is at most
#: ``max_bytes`` and reads whole; ``None`` for anything else, meaning "read it with ``read_bounded``", which
#: gives the verdict and its message. Native where built (above); never raises ``OSError``.
read_whole_at = _native_read_whole_at or _read_whole_at


class FolderReads:
    """Bounded reads of many files named by path, each folder opened once (a context manager).

    ``read(path, max_bytes, follow=False)`` gives what ``read_bounded`` gives:
    it first tries ``read_whole_at`` in the folder's descriptor (one call per
    file where the native module was built), and leaves anything it declines
    (a link, a FIFO, a folder, over the limit, absent, a name it cannot pass)
    to ``read_bounded``, which reads it or names the problem. The folder part
    of a path is opened as ``read_bounded``'s open would walk it (links
    there followed); the file itself is never followed unless ``follow``.
    """

    __slots__ = ("_fds",)

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def __enter__(self) -> FolderReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            if fd >= 0:
                os.close(fd)

    def read(self, path: str | os.PathLike[str], max_bytes: int, *, follow: bool = False) -> bytes:
        """The bytes of the regular file ``path``; raises as ``read_bounded``."""
        if not follow and type(path) is str:
            cut = path.rfind("/") + 1  # os.path.split without stripping the folder's slashes: it names the same folder
            folder, name = path[:cut], path[cut:]
            fd = self._fds.get(folder)
            if fd is None:
                try:
                    fd = os.open(folder or ".", _FOLDER_FLAGS)
                except (OSError, ValueError):
                    fd = -1  # read_bounded says why, file by file
                self._fds[folder] = fd
            if fd >= 0 and name:
                try:
                    data = read_whole_at(fd, name, max_bytes)
                except ValueError:  # NUL, or a name that is not UTF-8 text
                    data = None
                if data is not None:
                    return data
        return read_bounded(path, max_bytes, follow=follow)


_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may be short; most files take one)."""
    written = os.write(fd, data)
    if written != len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]


# Temp names: ``.<name>.<8 hex>.tmp`` beside the target (as long as ``tempfile.mkstemp``'s), the 8 hex digits
# from the process id and a per-process counter. Predictable names are safe because the file is created with
# O_CREAT | O_EXCL | O_NOFOLLOW: anything already there (a leftover, another writer's file, a planted link) is
# never opened, only skipped for the next name.
_counter = itertools.count()
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_TMP_ATTEMPTS = 10000  # as tempfile.TMP_MAX


def _umask() -> int | None:
    """The process umask, read without changing it (``os.umask`` sets it, racing other threads); None if unknown."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _chmod_needed(mode: int) -> bool:
    """Whether a file created with ``mode`` needs an ``fchmod`` to end with exactly ``mode`` (the umask strips bits)."""
    umask = _umask()
    return umask is None or bool(mode & umask)


def _stage(parent: str, name: str, data: bytes, mode: int, *, fsync: bool, chmod: bool,
           dir_fd: int | None = None, pid: int | None = None) -> str:
    """Write ``data`` to a new temp file in ``parent`` beside ``name``; return its path.

    With ``dir_fd`` (``parent`` open as a folder) the file is created by name
    in it and that name is returned. ``pid``: ``os.getpid() << 16``, when the
    caller stages many. The file ends with exactly ``mode`` (created with it;
    ``fchmod`` too if ``chmod``, when the umask would strip bits) and is
    fsynced if ``fsync``. It is removed if writing it fails.
    """
    if pid is None:
        pid = os.getpid() << 16
    for _ in range(_TMP_ATTEMPTS):
        tmp = f".{name}.{(pid + next(_counter)) & 0xFFFFFFFF:08x}.tmp"
        if dir_fd is None:
            tmp = os.path.join(parent, tmp)
        try:
            fd = os.open(tmp, _TMP_FLAGS, mode, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no unused temporary file name", os.path.join(parent, f".{name}.*.tmp"))
    try:
        try:
            _write_all(fd, data)
            if chmod:
                os.fchmod(fd, mode)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _unlink_quietly(tmp, dir_fd)
        raise
    return tmp


def _unlink_quietly(path: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except OSError:
        pass


def _unwritable(exc: OSError, path: str) -> FileUnwritable:
    return FileUnwritable(exc.strerror or str(exc), file=path)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, rename.

    A crash leaves either the old file or the new one at ``path``, never a
    partial one. Parent directories are created. The rename replaces
    whatever is at ``path`` (a symbolic link is replaced, never written
    through).

    Raises:
        FileUnwritable: code ``file_unwritable``, naming ``path``: a
            read-only or vanished directory, a directory at ``path``, a
            full disk, any other ``OSError``. The temp file is removed and
            ``path`` is left as it was.
    """
    target = Path(path)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _stage(str(target.parent), target.name, data, mode, fsync=True, chmod=_chmod_needed(mode))
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            _unlink_quietly(tmp)
        if isinstance(exc, OSError):
            raise _unwritable(exc, os.fspath(path)) from None
        raise


def atomic_write_many(items: Sequence[tuple[str | os.PathLike[str], bytes]], *, mode: int = 0o644) -> None:
    """Write many files atomically, with one flush to disk for the batch.

    Every file is first written to a temp file beside its target; then the
    data is flushed once (``os.sync``; an fsync per file costs ~0.5 ms each,
    most of a 10,000-step compile); then each temp file is renamed over its
    target and each directory is fsynced. A crash at any point leaves every
    target either absent, as it was, or complete: never partial.

    Raises:
        FileUnwritable: code ``file_unwritable``, naming the file that
            failed; every temp file is removed. A failure while staging
            leaves every target as it was; one while renaming leaves each
            target as it was or complete.
    """
    if len(items) <= 1:
        for path, data in items:
            atomic_write(path, data, mode=mode)
        return
    # Each folder is opened once: temp files are created, renamed and removed by name in it (no path walked per
    # file), and the descriptor is what is fsynced after the renames.
    staged: list[tuple[int, str, str, str]] = []  # (folder descriptor, temp name, name, target path)
    folders: dict[str, int] = {}
    current = ""
    chmod = _chmod_needed(mode)
    pid = os.getpid() << 16
    try:
        for path, data in items:
            current = os.fspath(path)
            # A str per file, not a Path (10,000 steps make 10,000); os.path.split without stripping the folder's
            # trailing slashes, which name the same folder.
            cut = current.rfind("/") + 1
            parent, name = current[:cut], current[cut:]
            if not name:  # "dir/": as Path names it
                target = Path(current)
                parent, name = str(target.parent), target.name
            parent = parent or "."
            dfd = folders.get(parent)
            if dfd is None:
                os.makedirs(parent, exist_ok=True)
                dfd = folders[parent] = os.open(parent, _FOLDER_FLAGS)
            staged.append((dfd, _stage(parent, name, data, mode, fsync=False, chmod=chmod, dir_fd=dfd, pid=pid),
                           name, current))
        os.sync()
        for dfd, tmp, name, current in staged:
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        for current, dfd in folders.items():
            current = current.rstrip("/") or current
            os.fsync(dfd)
    except BaseException as exc:
        for dfd, tmp, _, _ in staged:
            _unlink_quietly(tmp, dfd)  # already renamed ones are gone: ENOENT, ignored
        if isinstance(exc, OSError):
            raise _unwritable(exc, current) from None
        raise
    finally:
        for dfd in folders.values():
            os.close(dfd)


@contextmanager
def locked(path: str | os.PathLike[str], *, remove: bool = False, shared: bool = False,
           wait: bool = True) -> Iterator[None]:
    """Hold an exclusive (``shared``: a shared) ``flock`` on the lock file ``path`` for the ``with`` block.

    ``wait=False`` does not wait for another holder: ``BlockingIOError`` is
    raised instead (the caller says what is busy).

    The lock file is created (mode 0644, parent directories too) with
    ``O_NOFOLLOW`` and must be a regular file. ``remove=True`` deletes it
    when the block ends (for lock files beside a user's files); a waiter
    that then holds a lock on the deleted file notices (the path no longer
    names the file it locked) and locks the new one, so two holders never
    overlap.

    Raises (on entry):
        FileUnwritable: the lock file cannot be created or locked (a
            read-only directory, a link (code ``file_link``), a FIFO or
            other non-regular file at ``path``), naming ``path``.
    """
    import fcntl

    label = os.fspath(path)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(exc, label) from None
    while True:
        try:
            fd = os.open(path, _LOCK_FLAGS, 0o644)
        except OSError as exc:
            raise _open_error(FileUnwritable, exc, path, label) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FileUnwritable(f"lock file is {_not_regular(st.st_mode)}", file=label)
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
            if remove and not _still_named(path, st):
                os.close(fd)  # locked a file another holder deleted on release: lock the current one
                continue
        except BlockingIOError:
            os.close(fd)
            raise
        except OSError as exc:
            os.close(fd)
            raise _unwritable(exc, label) from None
        except BaseException:
            os.close(fd)
            raise
        break
    try:
        yield
    finally:
        if remove:
            _unlink_quietly(label)  # while still holding the lock: see the docstring
        os.close(fd)


def _still_named(path: str | os.PathLike[str], st: os.stat_result) -> bool:
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)

