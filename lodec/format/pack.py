"""Packs: one file holding a stack's manifest, step veins, schemas and envelope.

A ``.lodepack`` is a vein (``docs/vein-format.md``) of the built-in
``lodepack-v1`` schema (``docs/pack-format.md``): a 13-byte header, then
canonical CBOR. So a pack is deterministic (same members, same bytes), its
members are unique by construction (canonical maps have sorted, distinct
keys), it cannot express links or directories, and every length is checked
against the caps below before anything is allocated.

Reading a pack proves only its shape; ``verify_pack`` then runs the same
verification as for files (signed or not) on the members' bytes, and
``unpack`` writes exactly those verified bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .codec import decode_vein, encode_record
from ..errors import LodecError, SchemaError
from ..limits import Limits
from ..names import is_safe_name
from .schema import Schema, lodepack_schema, parse_schema
from ..stack.verify import VerificationReport, VerifiedStack, verify_stack

if TYPE_CHECKING:
    from ..sign.policy import TrustPolicy
    from ..sign.state import TrustedVersion

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
    stack: VerifiedStack,
    *,
    manifest_name: str,
    step_schema: bytes,
    stack_schema: bytes,
    envelope: bytes | None = None,
) -> bytes:
    """The pack bytes for a verified stack (deterministic: same inputs, same bytes).

    Raises:
        LodecError: ``unsafe_name`` (``manifest_name``), ``limit_exceeded`` (a member over the cap).
    """
    _check_manifest_name(manifest_name, "<pack>")
    record: dict[str, object] = {
        "manifestName": manifest_name,
        "manifest": stack.manifest_bytes,
        "stepSchema": step_schema,
        "stackSchema": stack_schema,
        "steps": {name: vein.data for name, vein in stack.steps.items()},
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
        raise LodecError(f"pack is {len(data)} bytes; the limit is {MAX_PACK_BYTES}", code="limit_exceeded", file=file)
    record = decode_vein(data, lodepack_schema(), file=file, limits=PACK_LIMITS).record
    _check_manifest_name(record["manifestName"], file)
    steps: dict[str, bytes] = record["steps"]
    for name in steps:
        if not is_safe_name(name):
            raise LodecError(f"member name {name!r} is not a safe file name (1-128 of A-Z a-z 0-9 . _ -)",
                             code="unsafe_name", file=file, location="steps")
    return Pack(record["manifestName"], record["manifest"], record.get("envelope"), record["stepSchema"],
                record["stackSchema"], steps, data)


#: The fields verification (and ``lodec run``) reads from a step or a manifest,
#: with the type and ``required`` flag they have in the built-in schemas. A
#: pack's schema members must keep them so: any schema verifies under pins
#: that were computed with it, so without this check a hand-made schema
#: (``dependsOn`` an ``int``, no ``skillRef``) reached code that assumes them.
_STEP_FIELDS = {"stepName": ("string", True), "skillRef": ("string", True), "dependsOn": ("string[]", False)}
_STACK_FIELDS = {
    "name": ("string", True), "version": ("string", True), "description": ("string", True),
    "steps": ("string[]", True), "stepFingerprints": ("map<string,string>", True),
    "entryPoint": ("string", False), "metadata": ("map<string,string>", False),
    "skillDigests": ("map<string,string>", False),
}


def _check_fields(schema: Schema, spec: dict[str, tuple[str, bool]], source: str) -> Schema:
    for name, (spelling, required) in spec.items():
        f = schema.by_name.get(name)
        if f is None and not required:
            continue
        if f is None or f.type.spelling != spelling or (required and not f.required):
            want = f"{'a required' if required else 'an optional'} {spelling} field {name!r}"
            raise SchemaError(f"schema {schema.name} must have {want}, as verification reads it",
                              file=source, location=f"field {name!r}")
    return schema


def _schemas(pack: Pack, file: str) -> tuple[Schema, Schema]:
    step, stack = f"{file}#stepSchema", f"{file}#stackSchema"
    return (_check_fields(parse_schema(pack.step_schema, source=step), _STEP_FIELDS, step),
            _check_fields(parse_schema(pack.stack_schema, source=stack), _STACK_FIELDS, stack))


def verify_pack(
    pack: Pack,
    *,
    file: str = "<pack>",
    policy: TrustPolicy | None = None,
    now: datetime | None = None,
    trusted_versions: Mapping[str, TrustedVersion] | None = None,
    expected_name: str | None = None,
) -> VerificationReport:
    """Verify a pack from its members alone.

    With ``policy`` (a ``lodec.sign.TrustPolicy``) and ``now`` this is
    ``lodec.sign.verify_signed_stack`` on the members; without, the core
    ``verify_stack``. A step member the manifest does not list is a problem
    (``pack_member_unlisted``): a pack carries nothing unverified.

    Raises:
        SchemaError: a schema member is not a valid ``.lode`` schema, or
            lacks (or retypes) a field verification reads: ``stepName``,
            ``skillRef``, ``dependsOn`` of a step; ``name``, ``version``,
            ``description``, ``steps``, ``stepFingerprints``, ``entryPoint``,
            ``metadata``, ``skillDigests`` of a manifest (code ``schema_invalid``).
    """
    step_schema, stack_schema = _schemas(pack, file)
    manifest_file = f"{file}#{pack.manifest_name}"

    def step_file(name: str) -> str:
        return f"{file}#steps/{name}.vein"

    read_step = pack.steps.get
    if policy is not None:
        from ..sign.trust import verify_signed_stack

        if now is None:
            raise ValueError("signed verification needs the reference time `now`")
        report = verify_signed_stack(
            pack.manifest, pack.envelope, read_step, policy=policy, now=now,
            trusted_versions=trusted_versions, expected_name=expected_name,
            manifest_file=manifest_file, envelope_file=f"{file}#envelope", step_file=step_file,
            step_schema=step_schema, stack_schema=stack_schema,
        )
    else:
        report = verify_stack(pack.manifest, read_step, manifest_file=manifest_file, step_file=step_file,
                              step_schema=step_schema, stack_schema=stack_schema)
    if report.digest is not None:
        # Once the manifest is parsed, report.steps names every step it lists or pins.
        for name in sorted(set(pack.steps) - {s.name for s in report.steps}):
            report.add("pack_member_unlisted", name, f"{file}: member steps/{name}.vein is not a step of the stack")
        if report.problems:
            report.verified = None
    return report


def unpack(pack: Pack, stack: VerifiedStack, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write a verified pack's members into ``out_dir`` (absent or empty; created).

    Layout: ``<manifestName>``, ``<manifestName>.dsse`` (if signed),
    ``steps/<name>.vein``, ``schemas/step.lode``, ``schemas/stack.lode``.
    Only the bytes in ``stack`` (the verified ones) and the pack's schema
    members are written, each atomically, as regular files.

    Raises:
        LodecError: ``output_not_empty`` or ``file_unwritable``.
    """
    from ..files import atomic_write_many

    out = Path(out_dir)
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(out.iterdir()))):
        raise LodecError("output must be a new or empty directory (nothing is overwritten)",
                         code="output_not_empty", file=str(out))
    files: list[tuple[str | os.PathLike[str], bytes]] = [
        (out / "schemas" / "step.lode", pack.step_schema),
        (out / "schemas" / "stack.lode", pack.stack_schema),
    ]
    files += [(out / "steps" / f"{name}.vein", vein.data) for name, vein in stack.steps.items()]
    if stack.envelope is not None:
        files.append((out / f"{pack.manifest_name}.dsse", stack.envelope))
    # The manifest last: its presence means every member is in place.
    atomic_write_many(files)
    atomic_write_many([(out / pack.manifest_name, stack.manifest_bytes)])
    return [Path(p) for p, _ in files] + [out / pack.manifest_name]
