"""Packs: one file holding a stack's manifest, step veins, schemas and envelope.

A ``.lodepack`` is a vein (``docs/vein-format.md``) of the built-in
``lodepack-v1`` schema (``docs/pack-format.md``): a 13-byte header, then
canonical CBOR. So a pack is deterministic (same members, same bytes), its
members are unique by construction (canonical maps have sorted, distinct
keys), it cannot express links or directories, and every length is checked
against the caps below before anything is allocated.

Reading a pack proves only its shape; ``lodec.sign.pack.verify_pack`` then
runs the same verification as for files (signed or not) on the members'
bytes, and ``lodec.app`` unpacks exactly those verified bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .codec import decode_vein, encode_record
from ..errors import LimitExceeded, LodecError
from ..limits import Limits
from ..names import is_safe_name
from .schema import lodepack_schema


#: Largest pack file (bytes), checked before reading.
MAX_PACK_BYTES = 256 * 1024 * 1024
#: Largest single member (manifest, envelope, schema or step vein), checked before allocating.
MAX_MEMBER_BYTES = 16 * 1024 * 1024
#: Most step members in one pack.
MAX_PACK_STEPS = 1024 * 1024

PACK_LIMITS = Limits(max_file_bytes=MAX_PACK_BYTES, max_text_bytes=MAX_MEMBER_BYTES, max_entries=MAX_PACK_STEPS)


@dataclass(frozen=True)
class Pack:
    """A decoded pack (not yet verified).

    Attributes:
        manifest_name: the manifest's file name (a safe name ending ``.json``).
        manifest, envelope: the members' bytes (``envelope`` ``None`` if unsigned).
        step_schema, stack_schema: the ``.lode`` bytes of the two schemas.
        steps: step name -> vein bytes.
        data: the whole pack's bytes.
    """

    manifest_name: str
    manifest: bytes
    envelope: bytes | None
    step_schema: bytes
    stack_schema: bytes
    steps: Mapping[str, bytes]
    data: bytes


def build_pack(
    *,
    manifest_name: str,
    manifest: bytes,
    steps: Mapping[str, bytes],
    step_schema: bytes,
    stack_schema: bytes,
    envelope: bytes | None = None,
) -> bytes:
    """The pack bytes for a stack's members (deterministic: same inputs, same bytes).

    Pass a verified stack's exact bytes (``VerifiedStack.manifest_bytes`` and
    each step's ``Vein.data``): a pack carries nothing unverified.

    Raises:
        LodecError: ``unsafe_name`` (``manifest_name``), ``limit_exceeded`` (a member over the cap).
    """
    _check_manifest_name(manifest_name, "<pack>")
    record: dict[str, object] = {
        "manifestName": manifest_name,
        "manifest": manifest,
        "stepSchema": step_schema,
        "stackSchema": stack_schema,
        "steps": dict(steps),
    }
    if envelope is not None:
        record["envelope"] = envelope
    return encode_record(lodepack_schema(), record, file="<pack>", limits=PACK_LIMITS).data


def _check_manifest_name(name: str, file: str) -> None:
    if not (is_safe_name(name) and name.endswith(".json")):
        raise LodecError(f"manifest name {name!r} is not a safe file name ending in .json",
                         code="unsafe_name", file=file, location="manifestName")


def read_pack(data: bytes, *, file: str = "<pack>") -> Pack:
    """Decode a pack and check its member names; nothing is verified yet.

    Raises:
        LimitExceeded: the pack or a member is over its cap (before allocation).
        DecodeError: not a canonical ``lodepack-v1`` vein (including duplicate
            or unsorted members).
        LodecError: ``unsafe_name``: a member name that is not a safe file
            name (``../x``, ``/etc/x``, NUL, ...).
    """
    if len(data) > MAX_PACK_BYTES:
        raise LimitExceeded(f"pack is {len(data)} bytes; the limit is {MAX_PACK_BYTES}", file=file)
    record = decode_vein(data, lodepack_schema(), file=file, limits=PACK_LIMITS).record
    _check_manifest_name(record["manifestName"], file)
    steps: dict[str, bytes] = record["steps"]
    for name in steps:
        if not is_safe_name(name):
            raise LodecError(f"member name {name!r} is not a safe file name (1-128 of A-Z a-z 0-9 . _ -)",
                             code="unsafe_name", file=file, location="steps")
    return Pack(record["manifestName"], record["manifest"], record.get("envelope"), record["stepSchema"],
                record["stackSchema"], steps, data)
