"""The rollback state on disk: read it, and record a verified version under a lock.

Updates take an exclusive ``flock`` on the workspace's lock file beside the
state (``Workspace.rollback_lock``), re-read the state under it, and replace
the file atomically, so concurrent verifications never lose a record.
Records only move up. The format is ``lodec.sign.state``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..errors import FileMissing, FileUnwritable
from ..files import atomic_write, read_bounded
from ..sign.state import MAX_STATE_BYTES, TrustedVersion, parse_state, state_json


def load_state(path: str | os.PathLike[str]) -> dict[str, TrustedVersion]:
    """The records in ``path``; an absent file is an empty state."""
    try:
        data = read_bounded(path, MAX_STATE_BYTES)
    except FileMissing:
        return {}
    return parse_state(data, file=os.fspath(path))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record_verified(path: str | os.PathLike[str], name: str, version: str, digest: str, when: datetime) -> bool:
    """Record ``version``/``digest`` for ``name`` if it is higher than the recorded version.

    Returns True if the file changed. Never lowers a record (another
    verification may have recorded a higher version meanwhile).

    Raises:
        LodecError: ``state_invalid`` or ``file_unwritable``.
    """
    from ..sign.statement import format_time
    from ..sign.versions import compare_versions

    target = Path(path)
    try:
        with _locked(target):
            records = load_state(target)
            current = records.get(name)
            if current is not None and compare_versions(version, current.version) <= 0:
                return False
            records[name] = TrustedVersion(version, digest, format_time(when))
            atomic_write(target, state_json(records))
    except OSError as exc:
        raise FileUnwritable(exc.strerror or str(exc), file=str(target)) from None
    return True
