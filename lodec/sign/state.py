"""Rollback state records (pure): the highest verified version of each stack name.

The file (``<state>/trusted-stacks.json``, see ``lodec.store.workspace``;
read and updated under a lock by ``lodec.store.rollback``)::

    {"format": "lodec-trusted-stacks-v1",
     "stacks": {"NAME": {"version": "1.2.0", "digest": "blake3:...",
                         "verifiedAt": "2026-11-21T10:00:00Z"}}}

TUF's rollback rule (TUF specification §5.3/5.4, "version number must not
decrease"): a signed stack whose version is lower than the recorded one is
refused, and the recorded version with a different digest is refused too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..errors import LodecError, StateInvalid
from ..format.fingerprint import is_fingerprint
from ..format.records import FrozenRecord
from ..format.strictjson import loads_strict

STATE_FORMAT = "lodec-trusted-stacks-v1"
MAX_STATE_BYTES = 16 * 1024 * 1024


class TrustedVersion(FrozenRecord):
    """The highest version of one stack verified so far, and its canonical manifest digest."""

    __slots__ = ("version", "digest", "verified_at")
    version: str
    digest: str
    verified_at: str

    def __init__(self, version: str, digest: str, verified_at: str) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "digest", digest)
        object.__setattr__(self, "verified_at", verified_at)


def parse_state(data: bytes, *, file: str = "<state>") -> dict[str, TrustedVersion]:
    """Parse the state file's bytes.

    Raises:
        StateInvalid: code ``state_invalid`` naming the JSON pointer (a
            state over the size limit or not strict JSON is invalid too).
    """
    try:
        doc = loads_strict(data, file=file)
    except LodecError as exc:
        raise StateInvalid(exc.message, file=file, location=exc.location) from None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT or not isinstance(doc.get("stacks"), dict):
        raise StateInvalid(f'not a lodec state file (expected {{"format": "{STATE_FORMAT}", "stacks": {{...}}}})',
                           file=file, location="/")
    out: dict[str, TrustedVersion] = {}
    for name, entry in doc["stacks"].items():
        at = f"/stacks/{name}"
        if not (isinstance(entry, dict) and isinstance(entry.get("version"), str)
                and is_fingerprint(entry.get("digest")) and isinstance(entry.get("verifiedAt", ""), str)):
            raise StateInvalid("needs a version string and a blake3 digest", file=file, location=at)
        out[name] = TrustedVersion(entry["version"], entry["digest"], entry.get("verifiedAt", ""))
    return out


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
