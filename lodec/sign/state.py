"""Rollback state: the highest verified version of each stack name.

One JSON file (default ``<state dir>/trusted-stacks.json``, see
``lodec.store.workspace``)::

    {"format": "lodec-trusted-stacks-v1",
     "stacks": {"NAME": {"version": "1.2.0", "digest": "blake3:...",
                         "verifiedAt": "2026-11-21T10:00:00Z"}}}

TUF's rollback rule (TUF specification §5.3/5.4, "version number must not
decrease"): a signed stack whose version is lower than the recorded one is
refused, and the recorded version with a different digest is refused too.
Records only move up. Updates take an exclusive ``flock`` on a lock file
beside the state, re-read the state under it, and replace the file
atomically, so concurrent verifications never lose a record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import LodecError
from ..files import atomic_write, read_bounded
from ..format.fingerprint import is_fingerprint
from ..format.strictjson import loads_strict
from ..store.workspace import state_dir

STATE_FORMAT = "lodec-trusted-stacks-v1"
STATE_FILE_NAME = "trusted-stacks.json"
MAX_STATE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TrustedVersion:
    """The highest version of one stack verified so far, and its canonical manifest digest."""

    version: str
    digest: str
    verified_at: str


def default_state_path() -> Path:
    """``state_dir() / "trusted-stacks.json"``."""
    return state_dir() / STATE_FILE_NAME


def parse_state(data: bytes, *, file: str = "<state>") -> dict[str, TrustedVersion]:
    """Parse the state file's bytes.

    Raises:
        LodecError: code ``state_invalid`` naming the JSON pointer.
    """
    try:
        doc = loads_strict(data, file=file)
    except LodecError as exc:
        raise LodecError(exc.message, code="state_invalid", file=file, location=exc.location) from None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT or not isinstance(doc.get("stacks"), dict):
        raise LodecError(f'not a lodec state file (expected {{"format": "{STATE_FORMAT}", "stacks": {{...}}}})',
                         code="state_invalid", file=file, location="/")
    out: dict[str, TrustedVersion] = {}
    for name, entry in doc["stacks"].items():
        at = f"/stacks/{name}"
        if not (isinstance(entry, dict) and isinstance(entry.get("version"), str)
                and is_fingerprint(entry.get("digest")) and isinstance(entry.get("verifiedAt", ""), str)):
            raise LodecError("needs a version string and a blake3 digest", code="state_invalid", file=file, location=at)
        out[name] = TrustedVersion(entry["version"], entry["digest"], entry.get("verifiedAt", ""))
    return out


def load_state(path: str | os.PathLike[str]) -> dict[str, TrustedVersion]:
    """The records in ``path``; an absent file is an empty state."""
    try:
        data = read_bounded(path, MAX_STATE_BYTES)
    except LodecError as exc:
        if exc.code == "file_not_found":
            return {}
        raise
    return parse_state(data, file=os.fspath(path))


def state_json(records: Mapping[str, TrustedVersion]) -> bytes:
    """Serialise records (sorted by name, one trailing newline)."""
    doc = {
        "format": STATE_FORMAT,
        "stacks": {
            name: {"version": r.version, "digest": r.digest, "verifiedAt": r.verified_at}
            for name, r in sorted(records.items())
        },
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


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
    from .statement import format_time
    from .versions import compare_versions

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
        raise LodecError(exc.strerror or str(exc), code="file_unwritable", file=str(target)) from None
    return True
