"""The rollback state on disk: read it, and record a verified version under a lock.

Updates take an exclusive ``flock`` on the workspace's lock file beside the
state (``Workspace.rollback_lock``, through ``lodec.files.locked``), re-read
the state under it, and replace the file atomically, so concurrent
verifications never lose a record. Records only move up. The format is
``lodec.sign.state``.

The state is never read through a symbolic link, even when ``--state``
names it: a link there could point the rollback check at an older record
(``docs/errors.md`` §Links and special files).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FileMissing, FileUnwritable
from ..files import atomic_write, locked, read_bounded
from ..sign.state import MAX_STATE_BYTES, TrustedVersion, parse_state, state_json

if TYPE_CHECKING:
    from datetime import datetime


def load_state(path: str | os.PathLike[str]) -> dict[str, TrustedVersion]:
    """The records in ``path``; an absent file is an empty state.

    Raises:
        StateInvalid: the file is malformed (``state_invalid``).
        FileUnreadable: a link (``file_link``), a FIFO or other non-regular
            file, no permission.
        LimitExceeded: over ``MAX_STATE_BYTES``.
    """
    try:
        data = read_bounded(path, MAX_STATE_BYTES)
    except FileMissing:
        return {}
    return parse_state(data, file=os.fspath(path))


def record_verified(path: str | os.PathLike[str], name: str, version: str, digest: str, when: datetime) -> bool:
    """Record ``version``/``digest`` for ``name`` if it is higher than the recorded version.

    Returns True if the file changed. Never lowers a record (another
    verification may have recorded a higher version meanwhile).

    Raises:
        StateInvalid: the recorded state is malformed (never reset).
        FileUnreadable: the state is a link, a FIFO, ... (as ``load_state``).
        FileUnwritable: the lock file or the state cannot be written (a
            read-only directory, a full disk); the state is left as it was.
    """
    from ..sign.statement import format_time
    from ..sign.versions import compare_versions

    target = Path(path)
    try:
        with locked(target.with_name(target.name + ".lock")):
            records = load_state(target)
            current = records.get(name)
            if current is not None and compare_versions(version, current.version) <= 0:
                return False
            records[name] = TrustedVersion(version, digest, format_time(when))
            atomic_write(target, state_json(records))
    except OSError as exc:
        raise FileUnwritable(exc.strerror or str(exc), file=str(target)) from None
    return True
