"""The fuzz targets, free of atheris so the test suite can replay inputs through them.

Each target takes one input (bytes) and returns normally when lodec accepted
it or refused it with one of its own errors (``lodec.errors.LodecError`` and
subclasses). Anything else escapes: an unexpected exception type, or an
``AssertionError`` from a property checked on accepted input. The atheris
harnesses (``fuzz_<target>.py``) run these under coverage guidance;
``tests/test_fuzz_regressions.py`` replays the seeds and every input kept in
``tests/fuzz_regressions/<target>/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from _common import GOLDEN, NOW, fixed_key, seed_step_veins
from native_diff import native

from lodec.format.codec import decode_vein, encode_record, header
from lodec.errors import LodecError
from lodec.format.pack import read_pack
from lodec.sign.pack import verify_pack
from lodec.format.schema import BUILTIN_SCHEMAS, builtin_schema, parse_schema, schema_from_json
from lodec.sign.dsse import parse_envelope
from lodec.sign.policy import policy_from_keys
from lodec.sign.statement import parse_statement
from lodec.sign.trust import check_signatures, verify_signed_stack  # noqa: F401 - imported for instrumentation
from lodec.format.strictjson import loads_strict
from lodec.stack.verify import verify_stack

SCHEMAS = [builtin_schema(n) for n in BUILTIN_SCHEMAS]
STEPS = seed_step_veins()
FINGERPRINTS = {name: v["fingerprint"] for name, v in GOLDEN["steps"].items()}
POLICY = policy_from_keys([fixed_key().public])
RULE = POLICY.rules[0]
MINIMAL = {"string": "", "int": 0, "bool": False, "bytes": b""}


def vein(data: bytes) -> None:
    """The vein decoder against the four built-in schemas.

    The first byte picks the schema (bit 7 set: the target writes the right
    header itself, so mutations go to the body). An accepted vein must
    re-encode to exactly its bytes: one record, one encoding.
    """
    if not data:
        return
    schema = SCHEMAS[(data[0] & 0x7F) % len(SCHEMAS)]  # bit 7 is the variant flag below, not the schema
    blob = data[1:]
    if data[0] & 0x80:
        blob = header(schema) + blob
    try:
        decoded = decode_vein(blob, schema)
    except LodecError:
        return
    again = encode_record(schema, decoded.record)
    assert again.data == blob and again.fingerprint == decoded.fingerprint, f"non-canonical vein accepted: {blob.hex()}"


def schema(data: bytes) -> None:
    """The ``.lode`` loader; a schema that loads has a stable digest and round-trips a minimal record."""
    try:
        loaded = parse_schema(data)
    except LodecError:
        return
    assert schema_from_json(loads_strict(data)).digest == loaded.digest and len(loaded.digest) == 32
    record = {}
    for f in loaded.fields:
        if f.required:
            record[f.name] = MINIMAL[f.type.scalar] if f.type.kind == "scalar" else ([] if f.type.kind == "array" else {})
    encoded = encode_record(loaded, record)
    assert decode_vein(encoded.data, loaded).fingerprint == encoded.fingerprint


def manifest(data: bytes) -> None:
    """Manifest parsing and verification (``verify_stack``) over the seed steps.

    ``verify_stack`` never raises for bad input, so here any exception is a
    finding. An ``ok`` report must carry the golden veins, and
    ``report.to_dict()`` must be JSON (what ``lodec verify --json`` prints).
    """
    report = verify_stack(data, STEPS.get)
    if report.ok:
        assert report.verified is not None and not report.problems
        for name, v in report.verified.steps.items():
            assert v.fingerprint == FINGERPRINTS[name]
    else:
        assert report.problems and report.verified is None
    json.dumps(report.to_dict())


def pack(data: bytes) -> None:
    """The pack reader, then pack verification unsigned and signed (fixed key, fixed time)."""
    try:
        p = read_pack(data)
    except LodecError:
        return
    for policy in (None, POLICY):
        try:
            report = verify_pack(p, policy=policy, now=NOW)
        except LodecError:  # e.g. a schema member that is not a valid .lode
            return
        assert report.ok == (report.verified is not None)
        json.dumps(report.to_dict())


def dsse(data: bytes) -> None:
    """The DSSE envelope parser (and signature check), and the signed-payload (Statement) parser."""
    try:
        envelope = parse_envelope(data)
    except LodecError:
        pass
    else:
        assert parse_envelope(envelope.to_json()) == envelope
        check_signatures(envelope, RULE)
        try:
            parse_statement(envelope.payload)
        except LodecError:
            pass
    try:
        parse_statement(data)
    except LodecError:
        pass


#: ``native``: the native decoder against the reference (``native_diff.py``; under the sanitizers: ``native_asan.py``).
TARGETS: dict[str, Callable[[bytes], None]] = {"vein": vein, "schema": schema, "manifest": manifest, "pack": pack, "dsse": dsse,
                                               "native": native}
