"""The native decoder (``lodec/_native.c``) against the reference decoder, one input at a time.

Plain Python (no atheris), shared by the ``native`` fuzz target
(``targets.py``, ``fuzz_native.py``), the deterministic run of
``native_check.py`` and the seed writer. It compares whatever
``lodec.format.codec._NativeDecoder`` is at the time of the call: the regular
build, or the AddressSanitizer + UndefinedBehaviorSanitizer build that
``native_asan.py`` makes and ``use_native`` loads in its place.

Input layout: byte 0 picks the schema (``SCHEMAS``; bit 7 set: the header is
written here, so the rest is the body), byte 1 picks the limits
(``limits_of``), the rest is the vein (or its body).
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import lodec
from lodec.errors import LodecError
from lodec.format import codec
from lodec.format.codec import decode_vein, decode_vein_reference, fast_vein_decoder, header
from lodec.format.schema import BUILTIN_SCHEMAS, builtin_schema, schema_from_json
from lodec.limits import DEFAULT_LIMITS, Limits

# The built-in schemas hold text and byte strings only; these add every scalar type in every kind, ids that
# take a two-byte head (>= 24) and gaps between ids, so the native int, bool and key paths are reached too.
_EVERY_TYPE = schema_from_json({"schema": "lode", "version": 1, "name": "NativeEveryType", "fields": [
    {"id": 1, "name": "n", "type": "int", "required": True},
    {"id": 2, "name": "flag", "type": "bool", "required": False},
    {"id": 3, "name": "blob", "type": "bytes", "required": False},
    {"id": 4, "name": "note", "type": "string", "required": False},
    {"id": 5, "name": "ns", "type": "int[]", "required": False},
    {"id": 6, "name": "flags", "type": "bool[]", "required": False},
    {"id": 7, "name": "blobs", "type": "bytes[]", "required": False},
    {"id": 8, "name": "notes", "type": "string[]", "required": False},
    {"id": 9, "name": "counts", "type": "map<string,int>", "required": False},
    {"id": 10, "name": "switches", "type": "map<string,bool>", "required": False},
    {"id": 11, "name": "payloads", "type": "map<string,bytes>", "required": False},
    {"id": 12, "name": "labels", "type": "map<string,string>", "required": False},
    {"id": 13, "name": "fingerprint", "type": "string", "required": False},
]})
_SPARSE = schema_from_json({"schema": "lode", "version": 1, "name": "NativeSparse", "fields": [
    {"id": 1, "name": "one", "type": "int", "required": False},
    {"id": 23, "name": "small", "type": "bool", "required": True},
    {"id": 24, "name": "wide", "type": "string[]", "required": False},
    {"id": 255, "name": "byte", "type": "map<string,int>", "required": True},
    {"id": 256, "name": "short", "type": "bytes", "required": False},
    {"id": 4294967295, "name": "largest", "type": "int[]", "required": False},
]})
_REQUIRED = schema_from_json({"schema": "lode", "version": 1, "name": "NativeAllRequired", "fields": [
    {"id": 1, "name": "a", "type": "string", "required": True},
    {"id": 2, "name": "b", "type": "int[]", "required": True},
    {"id": 3, "name": "c", "type": "map<string,bytes>", "required": True},
    {"id": 4, "name": "fingerprint", "type": "string", "required": True},  # required: not a self-fingerprint
]})

#: The built-in schemas (in ``BUILTIN_SCHEMAS`` order, as the ``vein`` target numbers them), then the three above.
SCHEMAS: list[lodec.Schema] = [builtin_schema(n) for n in BUILTIN_SCHEMAS] + [_EVERY_TYPE, _SPARSE, _REQUIRED]

_TEXT_LIMITS = (0, 1, 2, 5, 23, 24, 256, DEFAULT_LIMITS.max_text_bytes)
_ENTRY_LIMITS = (0, 1, 2, 3, 23, 24, 256, DEFAULT_LIMITS.max_entries)
#: The limits byte for ``DEFAULT_LIMITS``.
DEFAULT = 0x80


def limits_of(b: int) -> Limits:
    """Bit 7: the default limits; else bits 0-2 pick max_text_bytes, bits 3-5 max_entries, bit 6 a 64-byte file limit."""
    if b & 0x80:
        return DEFAULT_LIMITS
    return Limits(max_file_bytes=64 if b & 0x40 else DEFAULT_LIMITS.max_file_bytes,
                  max_text_bytes=_TEXT_LIMITS[b & 7], max_entries=_ENTRY_LIMITS[(b >> 3) & 7])


def case_of(data: bytes) -> tuple[lodec.Schema, Limits, bytes] | None:
    """(schema, limits, vein) of a fuzz input, or None when it is too short to say."""
    if len(data) < 2:
        return None
    schema = SCHEMAS[(data[0] & 0x7F) % len(SCHEMAS)]
    blob = data[2:]
    if data[0] & 0x80:
        blob = header(schema) + blob
    return schema, limits_of(data[1]), blob


def input_of(schema_index: int, limits_byte: int, vein: bytes) -> bytes:
    """The fuzz input for a whole vein (the inverse of ``case_of`` without bit 7)."""
    return bytes([schema_index, limits_byte]) + vein


def same(a: Any, b: Any) -> bool:
    """Equal with the same types and the same order everywhere (``True == 1`` and dict order do not hide a difference)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def all_ascii(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii()
    if isinstance(value, dict):
        return all(all_ascii(k) and all_ascii(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(all_ascii, value))
    return True


def _outcome(decode: Any, blob: bytes, schema: lodec.Schema, limits: Limits) -> tuple[Any, ...]:
    try:
        vein = decode(blob, schema, file="x.vein", limits=limits)
    except LodecError as exc:
        return ("refused", type(exc).__name__, exc.code, exc.location, exc.message)
    return ("accepted", vein.record, vein.fingerprint, vein.data)


def check(schema: lodec.Schema, limits: Limits, blob: bytes) -> str:
    """Compare the native decoder with ``decode_vein_reference`` on one vein; AssertionError on any disagreement.

    Soundness: what the native decoder returns, the reference accepts as the same record (same types, same
    order), and ``Decoder.vein`` returns the reference's ``Vein`` (fingerprint included). Completeness: a record the reference accepts within ``limits`` whose text is all ASCII and that
    holds no self-fingerprint field, the native decoder settles itself. ``decode_vein`` and
    ``fast_vein_decoder`` (native on) give the reference's outcome. Returns "accepted", "asked" (the native
    decoder left it to Python) or "no-native" (no native decoder is loaded).
    """
    decoder = codec._compiled(schema).native(limits)
    if decoder is None:
        return "no-native"
    record = decoder.decode(blob)
    native_vein = decoder.vein(blob)
    reference = _outcome(decode_vein_reference, blob, schema, limits)
    if record is not None:
        assert reference[0] == "accepted", f"native accepted what the reference refuses {reference[1:3]}: {blob.hex()}"
        assert same(record, reference[1]), f"native record {record!r} != reference {reference[1]!r}: {blob.hex()}"
    # Decoder.vein settles exactly what decode settles, as the reference's Vein (record, data, fingerprint).
    assert (native_vein is None) == (record is None), f"vein and decode disagree: {blob.hex()}"
    if native_vein is not None:
        assert type(native_vein) is lodec.Vein and native_vein.schema is schema, blob.hex()
        assert same(native_vein.record, reference[1]) and native_vein.data is blob, blob.hex()
        assert native_vein.fingerprint == reference[2], f"native fingerprint {native_vein.fingerprint}: {blob.hex()}"
    elif reference[0] == "accepted":
        sf = schema.self_fingerprint
        if all_ascii(reference[1]) and (sf is None or sf.name not in reference[1]):
            raise AssertionError(f"native left an ASCII canonical record to Python ({schema.name}): {blob.hex()}")
    public = _outcome(decode_vein, blob, schema, limits)
    assert public[0] == reference[0] and public[1:] == reference[1:], f"decode_vein {public[:3]} != reference {reference[:3]}: {blob.hex()}"
    if public[0] == "accepted":
        assert same(public[1], reference[1]), blob.hex()
    vein = fast_vein_decoder(schema, limits)(blob)
    if vein is not None:
        assert reference[0] == "accepted" and same(vein.record, reference[1]), blob.hex()
        assert (vein.fingerprint, vein.data) == reference[2:], blob.hex()
    return "accepted" if record is not None else "asked"


def native(data: bytes) -> None:
    """The fuzz target: ``check`` on the case ``data`` encodes (see the module docstring)."""
    case = case_of(data)
    if case is not None:
        check(*case)


# ------------------------------------------------------------ loading a native build from a file


def load(path: str | Path) -> ModuleType:
    """Import the extension module built at ``path`` (any folder) without putting it in ``sys.modules``."""
    spec = importlib.util.spec_from_file_location("lodec._native", str(path))
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def use_native(path: str | Path) -> ModuleType:
    """Make the build at ``path`` lodec's native decoder (``codec._NativeDecoder``) for this process."""
    module = load(path)
    codec._NativeDecoder = module.Decoder
    codec._COMPILED.clear()  # decoders made from the previous build are dropped with their schemas' plans
    return module


# ------------------------------------------------------------ generated veins


_EDGE_INTS = (0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, -1, -24, -25, -256, -257,
              -65537, -(2**32) - 1, -(2**63))
_ASCII = "abcxyz019 -_:/.\t\n\x00\x7f\"\\"


def _text(rng: random.Random, ascii_only: bool) -> str:
    n = rng.choice((0, 1, 2, 3, 5, 8, 13, 23, 24, 30)) if rng.random() < 0.95 else rng.choice((255, 256, 300))
    text = "".join(rng.choice(_ASCII) for _ in range(n))
    if not ascii_only and rng.random() < 0.3:
        text += rng.choice(("é", "Ω", "文", "\U0001f600"))
    return text


def _scalar(scalar: str, rng: random.Random, ascii_only: bool) -> Any:
    if scalar == "string":
        return _text(rng, ascii_only)
    if scalar == "int":
        return rng.choice(_EDGE_INTS) if rng.random() < 0.6 else rng.randint(-(2**63), 2**63 - 1) >> rng.randint(0, 63)
    if scalar == "bool":
        return rng.random() < 0.5
    return rng.randbytes(rng.choice((0, 1, 2, 5, 23, 24, 40, 256)))


def random_record(schema: lodec.Schema, rng: random.Random, ascii_only: bool = True) -> dict[str, Any]:
    """A record of ``schema`` that ``lodec.encode_record`` accepts (optional fields present or not)."""
    record: dict[str, Any] = {}
    for f in schema.fields:
        if f is schema.self_fingerprint or not (f.required or rng.random() < 0.6):
            continue
        kind, scalar = f.type.kind, f.type.scalar
        n = rng.choice((0, 1, 2, 3, 5, 24)) if kind != "scalar" else 0
        if kind == "scalar":
            record[f.name] = _scalar(scalar, rng, ascii_only)
        elif kind == "array":
            record[f.name] = [_scalar(scalar, rng, ascii_only) for _ in range(n)]
        else:
            record[f.name] = {_text(rng, ascii_only): _scalar(scalar, rng, ascii_only) for _ in range(n)}
    sf = schema.self_fingerprint
    if sf is not None and rng.random() < 0.2:
        record[sf.name] = lodec.encode_record(schema, record).fingerprint
    return record


def random_veins(rng: random.Random, count: int, ascii_only: bool = True) -> list[bytes]:
    """``count`` fuzz inputs: veins of random records of every schema in turn, under the default limits."""
    out = []
    for i in range(count):
        index = i % len(SCHEMAS)
        schema = SCHEMAS[index]
        out.append(input_of(index, DEFAULT, lodec.encode_record(schema, random_record(schema, rng, ascii_only)).data))
    return out
