"""The vein format v1: header + canonical CBOR body (``docs/vein-format.md``).

Layout::

    offset 0  4 bytes  magic  "VEIN"
    offset 4  1 byte   format version (1)
    offset 5  8 bytes  schema id: the first 8 bytes of the schema digest
    offset 13 ...      body: one canonical CBOR map, field id -> value

The decoder is schema-directed and proves canonical form while it reads:
shortest integer and length forms, map keys strictly increasing in bytewise
order of their encoding (no duplicates), definite lengths only, no tags, no
floats or simple values other than ``true`` / ``false``, text valid UTF-8 in
NFC, no unknown field ids, no wrong types, required fields present, empty
optional fields absent, no trailing bytes. Every declared length and count
is checked against ``Limits`` and the bytes that remain *before* anything is
allocated. One record has exactly one encoding.

Bodies of at most ``FAST_PATH_MAX_BYTES`` (and no longer than any limit)
first try a fast path: cbor2 in C, then type and order checks generated once
per schema and shape of field ids, then a byte-exact re-encoding check.
Anything it does not accept goes to the strict decoder, which is
authoritative and names the problem; ``decode_vein_reference`` is
``decode_vein`` with the strict decoder alone, and the two are tested to
agree on every input (``docs/adr/0001-canonical-cbor-and-fast-path.md``,
``tests/test_fast_decoder.py``).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from cbor2 import dumps as _cbor2_dumps
from cbor2 import loads as _cbor2_loads

from . import cbor
from ..errors import DecodeError, LimitExceeded, SchemaMismatch, SourceError
from ..files import NativeDecoder
from blake3 import blake3

from .fingerprint import FINGERPRINT_CONTEXT, PREFIX, fingerprint_bytes, format_fingerprint
from ..limits import DEFAULT_LIMITS, INT64_MAX, INT64_MIN, Limits
from .records import FrozenRecord
from .schema import Field, Schema
from .strictjson import pointer
from .unicode import UNICODE_VERSION, is_nfc

if TYPE_CHECKING:
    from collections.abc import Callable

# The native fast path (lodec/_native.c; lodec.files decides whether it is in use). It accepts only what the
# Python decoders accept and returns None for anything else, so without it lodec decodes the same, more slowly.
_NativeDecoder: Any = NativeDecoder

#: True when the native fast path is in use (the benchmarks and tests say which).
NATIVE = _NativeDecoder is not None

# Bodies up to this size may take the cbor2 fast path. cbor2 builds every
# object before lodec can check a limit (an array of empty maps grows ~80x
# in memory), so larger bodies go to the strict decoder, which checks each
# declared length and count before allocating. Real steps are < 4 KiB.
FAST_PATH_MAX_BYTES = 64 * 1024

MAGIC = b"VEIN"
FORMAT_VERSION = 1
HEADER_SIZE = 13

Record = dict[str, Any]


class Vein(FrozenRecord):
    """A decoded (or freshly encoded) vein. Immutable; equal when all four attributes are.

    Attributes:
        schema: the schema it was decoded with.
        record: field name -> value (``str``, ``int``, ``bool``, ``bytes``,
            ``list`` of scalars, ``dict`` str -> scalar); absent fields missing.
        data: the whole vein (header + body), exactly as verified.
        fingerprint: ``blake3:<64 hex>``.
    """

    __slots__ = ("schema", "record", "data", "fingerprint")
    schema: Schema
    record: Record
    data: bytes
    fingerprint: str

    def __init__(self, schema: Schema, record: Record, data: bytes, fingerprint: str) -> None:
        setter = object.__setattr__
        setter(self, "schema", schema)
        setter(self, "record", record)
        setter(self, "data", data)
        setter(self, "fingerprint", fingerprint)

    __hash__ = None  # type: ignore[assignment]  # the record is a dict

    @property
    def body(self) -> bytes:
        return self.data[HEADER_SIZE:]

    @property
    def size(self) -> int:
        return len(self.data)


# ---------------------------------------------------------------- encoding


def _is_empty(value: Any) -> bool:
    return value in ("", b"") or (isinstance(value, (list, dict)) and not value)


def _map_order(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8")
    return (len(raw), raw)


def _sorted_keys(keys: list[str]) -> list[str]:
    """Map keys in canonical order (a new list): by UTF-8 length, then bytewise."""
    if all(map(str.isascii, keys)):  # ASCII: code point order is byte order, length is UTF-8 length
        out = sorted(keys)
        out.sort(key=len)
        return out
    return sorted(keys, key=_map_order)


def _by_id(schema: Schema, record: Record, *, skip_self: bool) -> dict[int, Any]:
    # Fields are sorted by id, so this dict is already in canonical key
    # order; only map<string,T> values need their keys sorted.
    skip = schema.self_fingerprint.name if (skip_self and schema.self_fingerprint) else None
    out: dict[int, Any] = {}
    for f in schema.fields:
        if f.name == skip or f.name not in record:
            continue
        value = record[f.name]
        if not f.required and _is_empty(value):
            continue  # canonical form: empty optional fields are omitted
        if f.type.kind == "map":
            value = {k: value[k] for k in _sorted_keys(list(value))}
        out[f.id] = value
    return out


def header(schema: Schema) -> bytes:
    """The 13-byte vein header for ``schema``."""
    return MAGIC + bytes((FORMAT_VERSION,)) + schema.schema_id


def encode_record(
    schema: Schema,
    record: Record,
    *,
    file: str = "<record>",
    limits: Limits = DEFAULT_LIMITS,
    _validated: bool = False,
) -> Vein:
    """Validate ``record`` against ``schema`` and encode it as a vein.

    Args:
        schema: the schema.
        record: field name -> Python value (see ``Vein.record``).
        file: label for error messages.

    Returns:
        the ``Vein`` (bytes and fingerprint).

    Raises:
        SourceError: the record does not fit the schema (with JSON pointer),
            or its ``fingerprint`` field disagrees with the computed one
            (code ``fingerprint_mismatch``).
        LimitExceeded: a string or container exceeds ``limits``, or the
            whole vein would exceed ``limits.max_file_bytes`` (a decoder
            with the same limits could not read it back).
    """
    if not _validated:
        validate_record(schema, record, file=file, limits=limits)
    body = cbor.encode_sorted(_by_id(schema, record, skip_self=False))
    if HEADER_SIZE + len(body) > limits.max_file_bytes:
        raise LimitExceeded(
            f"vein would be {HEADER_SIZE + len(body)} bytes; the limit is {limits.max_file_bytes}", file=file
        )
    fp = _fingerprint_of(schema, record, body)
    sf = schema.self_fingerprint
    if sf is not None and record.get(sf.name) and record[sf.name] != fp:
        raise SourceError(
            f"fingerprint field says {record[sf.name]}, but the record's fingerprint is {fp}",
            code="fingerprint_mismatch",
            file=file,
            location=pointer([sf.name]),
        )
    return Vein(schema, record, header(schema) + body, fp)


def _fingerprint_of(schema: Schema, record: Record, body: bytes) -> str:
    sf = schema.self_fingerprint
    if sf is not None and record.get(sf.name):
        body = cbor.encode_sorted(_by_id(schema, record, skip_self=True))
    return format_fingerprint(fingerprint_bytes(schema.digest, body))


_SCALAR_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "int": (int,), "bool": (bool,), "bytes": (bytes,)}


def _check_scalar(value: Any, scalar: str, path: list[str | int], file: str, limits: Limits) -> None:
    ok = isinstance(value, _SCALAR_TYPES[scalar]) and not (scalar == "int" and isinstance(value, bool))
    if not ok:
        raise SourceError(
            f"expected {scalar}, got {_json_type(value)}", code="wrong_type", file=file, location=pointer(path)
        )
    if scalar == "string":
        _check_text(value, path, file, limits)
    elif scalar == "int":
        if not INT64_MIN <= value <= INT64_MAX:
            raise SourceError(
                f"integer {value} is outside the 64-bit signed range",
                code="integer_out_of_range",
                file=file,
                location=pointer(path),
            )
    elif scalar == "bytes" and len(value) > limits.max_text_bytes:
        raise LimitExceeded(
            f"byte string of {len(value)} bytes; the limit is {limits.max_text_bytes}", file=file, location=pointer(path)
        )


def _check_text(value: str, path: list[str | int], file: str, limits: Limits) -> None:
    if value.isascii():
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise SourceError(
                "text contains a lone surrogate", code="invalid_text", file=file, location=pointer(path)
            ) from None
        if not is_nfc(value):
            raise SourceError(
                f"text is not in Unicode NFC (Unicode {UNICODE_VERSION}; normalise it first, e.g. with unicodedata2)",
                code="not_nfc",
                file=file,
                location=pointer(path),
            )
    if size > limits.max_text_bytes:
        raise LimitExceeded(
            f"string of {size} bytes; the limit is {limits.max_text_bytes}", file=file, location=pointer(path)
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number with a fraction or exponent (floats are not allowed in format v1)"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def validate_record(schema: Schema, record: Record, *, file: str = "<record>", limits: Limits = DEFAULT_LIMITS) -> None:
    """Check a Python record against ``schema`` (types, required fields, limits, NFC).

    Raises:
        SourceError: unknown field, missing required field, wrong type,
            out-of-range integer, non-NFC text (``location`` is a JSON pointer).
        LimitExceeded: a string, byte string or container is over its limit.
    """
    if _compiled(schema).valid(record, limits.max_text_bytes, limits.max_entries):
        return  # every check below would pass: the generated check says so in one call
    if not isinstance(record, dict):
        raise SourceError(f"expected an object, got {_json_type(record)}", code="wrong_type", file=file, location="/")
    by_name = schema.by_name
    for name in record:
        if name not in by_name:
            known = ", ".join(f.name for f in schema.fields)
            raise SourceError(
                f"unknown field {name!r} for schema {schema.name} (known: {known})",
                code="unknown_field",
                file=file,
                location=pointer([name]),
            )
    for f in schema.fields:
        if f.name not in record:
            if f.required:
                raise SourceError(
                    f"required field {f.name!r} is missing", code="missing_field", file=file, location=pointer([f.name])
                )
            continue
        value = record[f.name]
        kind, scalar = f.type.kind, f.type.scalar
        if kind == "scalar":
            _check_scalar(value, scalar, [f.name], file, limits)
            continue
        container = list if kind == "array" else dict
        if not isinstance(value, container):
            raise SourceError(
                f"expected {f.type.spelling}, got {_json_type(value)}",
                code="wrong_type",
                file=file,
                location=pointer([f.name]),
            )
        if len(value) > limits.max_entries:
            raise LimitExceeded(
                f"{len(value)} {'items' if kind == 'array' else 'entries'}; the limit is {limits.max_entries}",
                file=file,
                location=pointer([f.name]),
            )
        if isinstance(value, list):
            if scalar == "string" and _ascii_texts(value, limits.max_text_bytes):
                continue
            for index, item in enumerate(value):
                _check_scalar(item, scalar, [f.name, index], file, limits)
        else:
            if _ascii_texts(value, limits.max_text_bytes) and (
                    scalar != "string" or _ascii_texts(value.values(), limits.max_text_bytes)):
                if scalar == "string":
                    continue
                for key, item in value.items():
                    _check_scalar(item, scalar, [f.name, key], file, limits)
                continue
            for key, item in value.items():
                _check_text(key, [f.name, key], file, limits)
                _check_scalar(item, scalar, [f.name, key], file, limits)


def _ascii_texts(values: Any, max_text: int) -> bool:
    """Whether every value is ASCII text within ``max_text`` (checked in C loops), so each passes ``_check_text``.

    ASCII text is NFC and its UTF-8 size is its length. ``False`` sends the
    caller to the checks one by one, which name the first problem.
    """
    try:
        if not all(map(str.isascii, values)):
            return False
    except TypeError:  # not all str
        return False
    return max(map(len, values), default=0) <= max_text


# ------------------------------------------------------------ JSON mapping


def record_from_json(obj: Any, schema: Schema, *, file: str = "<source>", limits: Limits = DEFAULT_LIMITS) -> Record:
    """Turn parsed source JSON into a record: ``bytes`` fields come from base64 (RFC 4648 §4, padded).

    Raises:
        SourceError / LimitExceeded: as ``validate_record``; bad or
            non-canonical base64 (code ``bad_base64``).
    """
    if not isinstance(obj, dict):
        raise SourceError(f"expected an object, got {_json_type(obj)}", code="wrong_type", file=file, location="/")
    record = dict(obj)
    for f in schema.fields:
        if f.type.scalar != "bytes" or f.name not in record:
            continue
        value = record[f.name]
        if f.type.kind == "scalar":
            record[f.name] = _b64(value, [f.name], file)
        elif f.type.kind == "array" and isinstance(value, list):
            record[f.name] = [_b64(v, [f.name, i], file) for i, v in enumerate(value)]
        elif f.type.kind == "map" and isinstance(value, dict):
            record[f.name] = {k: _b64(v, [f.name, k], file) for k, v in value.items()}
    validate_record(schema, record, file=file, limits=limits)
    return record


def _b64(value: Any, path: list[str | int], file: str) -> Any:
    if not isinstance(value, str):
        return value  # validate_record reports the wrong type
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SourceError("bytes must be standard base64 with padding", code="bad_base64", file=file, location=pointer(path)) from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise SourceError("base64 is not in canonical form", code="bad_base64", file=file, location=pointer(path))
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def record_to_json(record: Record, schema: Schema) -> dict[str, Any]:
    """Source JSON for a record, fields in id order, ``bytes`` as base64. Compiling it again gives identical bytes."""
    out: dict[str, Any] = {}
    for f in schema.fields:
        if f.name not in record:
            continue
        value = record[f.name]
        if f.type.scalar == "bytes":
            enc = _b64encode
            if f.type.kind == "scalar":
                value = enc(value)
            elif f.type.kind == "array":
                value = [enc(v) for v in value]
            else:
                value = {k: enc(v) for k, v in value.items()}
        out[f.name] = value
    return out


# ---------------------------------------------------------------- decoding


class _Reader:
    """Cursor over a body; every read checks bounds and shortest form."""

    __slots__ = ("buf", "pos", "end", "file", "base", "limits", "context")

    def __init__(self, buf: bytes, base: int, file: str, limits: Limits) -> None:
        self.buf = buf
        self.pos = 0
        self.end = len(buf)
        self.base = base  # offset of the body in the file, for messages
        self.file = file
        self.limits = limits
        self.context = "body"

    def fail(self, message: str, code: str, at: int | None = None) -> DecodeError:
        where = f"byte {self.base + (self.pos if at is None else at)} ({self.context})"
        return DecodeError(message, code=code, file=self.file, location=where)

    def head(self) -> tuple[int, int]:
        buf, pos = self.buf, self.pos
        if pos >= self.end:
            raise self.fail("truncated: expected a data item", "truncated")
        ib = buf[pos]
        major, ai = ib >> 5, ib & 31
        if major == 6:
            raise self.fail("CBOR tags are not allowed", "tag_not_allowed")
        if major == 7 and ib not in (0xF4, 0xF5):
            kind = "float" if 25 <= ai <= 27 else ("indefinite-length break" if ai == 31 else "simple value")
            raise self.fail(f"{kind} not allowed (only true and false)", "float_or_simple_not_allowed")
        if ai < 24:
            self.pos = pos + 1
            return major, ai
        if ai == 31:
            raise self.fail("indefinite length not allowed", "indefinite_length")
        if ai > 27:
            raise self.fail(f"reserved additional information {ai}", "malformed")
        size = 1 << (ai - 24)
        if pos + 1 + size > self.end:
            raise self.fail("truncated inside an integer or length", "truncated")
        value = int.from_bytes(buf[pos + 1 : pos + 1 + size], "big")
        if value < (24 if size == 1 else 1 << (4 * size)):
            raise self.fail(f"non-shortest encoding of {value}", "non_canonical")
        self.pos = pos + 1 + size
        return major, value

    def count(self, n: int, what: str) -> int:
        # Every entry takes at least one byte: a count beyond what remains
        # cannot be honest, so refuse it before building anything.
        if n > self.limits.max_entries:
            raise LimitExceeded(
                f"{what} declares {n} entries; the limit is {self.limits.max_entries}",
                file=self.file,
                location=f"byte {self.base + self.pos} ({self.context})",
            )
        if n > self.end - self.pos:
            raise self.fail(f"{what} declares {n} entries but only {self.end - self.pos} bytes remain", "truncated")
        return n

    def text(self) -> str:
        start = self.pos
        major, n = self.head()
        if major != 3:
            raise self.fail(f"expected text, got {_MAJOR_NAMES[major]}", "wrong_type", start)
        raw = self._raw(n, start)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("text is not valid UTF-8", "invalid_text", start) from None
        if not value.isascii() and not is_nfc(value):
            raise self.fail("text is not in Unicode NFC", "not_nfc", start)
        return value

    def _raw(self, n: int, start: int) -> bytes:
        if n > self.limits.max_text_bytes:
            raise LimitExceeded(
                f"string of {n} bytes; the limit is {self.limits.max_text_bytes}",
                file=self.file,
                location=f"byte {self.base + start} ({self.context})",
            )
        if n > self.end - self.pos:
            raise self.fail(f"string of {n} bytes but only {self.end - self.pos} remain", "truncated", start)
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw

    def scalar(self, kind: str) -> Any:
        if kind == "string":
            return self.text()
        start = self.pos
        major, value = self.head()
        if kind == "int":
            if major == 0:
                if value > INT64_MAX:
                    raise self.fail("integer outside the 64-bit signed range", "integer_out_of_range", start)
                return value
            if major == 1:
                if value > INT64_MAX:
                    raise self.fail("integer outside the 64-bit signed range", "integer_out_of_range", start)
                return -1 - value
        elif kind == "bool":
            if major == 7:
                return value == 21
        elif kind == "bytes":
            if major == 2:
                return self._raw(value, start)
        raise self.fail(f"expected {kind}, got {_MAJOR_NAMES[major]}", "wrong_type", start)


_MAJOR_NAMES = ("unsigned integer", "negative integer", "byte string", "text", "array", "map", "tag", "bool")


#: Whether the strict decoder reads runs of simple map entries inline (``_simple_entries``); the
#: differential tests turn it off to compare with the entry-by-entry reading.
_INLINE_MAPS = True


def _simple_entries(r: _Reader, n: int, text_values: bool, out: dict[str, Any]) -> tuple[int, bytes]:
    """Read the leading entries of a ``map<string,string|bytes>`` that are plainly canonical, inline.

    An entry is taken here only if its key is text of at most 255 bytes and
    its value text or bytes (as the schema says) of less than 2**32 bytes,
    each head in shortest form and within ``max_text_bytes`` and the bytes
    left, the key valid UTF-8 in NFC and its encoding after the previous
    key's, and (text) the value valid UTF-8 in NFC: exactly what the
    entry-by-entry reading below accepts, without its method calls (a pack
    holds one such entry per step). At the first entry that is anything
    else, the reader is put back at that entry's first byte and the
    entry-by-entry reading takes over, so every refusal (and its offset)
    comes from there. Returns (entries read, the last one's encoded key).
    """
    buf, pos, end = r.buf, r.pos, r.end
    max_text = r.limits.max_text_bytes
    base = 0x60 if text_values else 0x40
    previous = b""
    i = 0
    while i < n:
        start = pos
        if pos >= end:
            break
        ib = buf[pos]
        if 0x60 <= ib <= 0x77:
            p, klen = pos + 1, ib - 0x60
        elif ib == 0x78 and pos + 1 < end and buf[pos + 1] >= 24:
            p, klen = pos + 2, buf[pos + 1]
        else:
            break
        kend = p + klen
        if klen > max_text or kend > end:
            break
        encoded = buf[start:kend]
        if i and encoded <= previous:
            break
        try:
            key = buf[p:kend].decode("utf-8")
        except UnicodeDecodeError:
            break
        if not key.isascii() and not is_nfc(key):
            break
        if kend >= end:
            break
        vb = buf[kend]
        if base <= vb <= base + 23:
            q, vlen = kend + 1, vb - base
        elif vb == base + 24 and kend + 1 < end and buf[kend + 1] >= 24:
            q, vlen = kend + 2, buf[kend + 1]
        elif vb == base + 25 and kend + 2 < end:
            q, vlen = kend + 3, int.from_bytes(buf[kend + 1:kend + 3], "big")
            if vlen < 256:
                break
        elif vb == base + 26 and kend + 4 < end:
            q, vlen = kend + 5, int.from_bytes(buf[kend + 1:kend + 5], "big")
            if vlen < 65536:
                break
        else:
            break
        vend = q + vlen
        if vlen > max_text or vend > end:
            break
        value: Any = buf[q:vend]
        if text_values:
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                break
            if not value.isascii() and not is_nfc(value):
                break
        out[key] = value
        previous = encoded
        pos = vend
        i += 1
    r.pos = start if i < n else pos
    return i, previous


def _decode_field(r: _Reader, f: Field) -> Any:
    kind, scalar = f.type.kind, f.type.scalar
    if kind == "scalar":
        return r.scalar(scalar)
    start = r.pos
    major, n = r.head()
    if kind == "array":
        if major != 4:
            raise r.fail(f"expected array, got {_MAJOR_NAMES[major]}", "wrong_type", start)
        r.count(n, "array")
        return [r.scalar(scalar) for _ in range(n)]
    if major != 5:
        raise r.fail(f"expected map, got {_MAJOR_NAMES[major]}", "wrong_type", start)
    r.count(n, "map")
    out: dict[str, Any] = {}
    previous = b""
    buf = r.buf
    first = 0
    if _INLINE_MAPS and scalar in ("string", "bytes"):
        first, previous = _simple_entries(r, n, scalar == "string", out)
    for i in range(first, n):
        kstart = r.pos
        key = r.text()
        encoded_key = buf[kstart : r.pos]
        if i and encoded_key <= previous:
            code = "duplicate_key" if encoded_key == previous else "unsorted_keys"
            raise r.fail(f"map key {key!r} is a duplicate or out of canonical order", code, kstart)
        previous = encoded_key
        out[key] = r.scalar(scalar)
    return out


class _Compiled:
    """What decoding one schema needs, worked out once per schema.

    ``shapes`` maps a field-id tuple already proven valid (ids increasing,
    all known, required ones present) to the checker generated for it
    (``_generate_shape``); ``hasher`` is the BLAKE3 derive-key state after
    the schema digest, copied per record.
    """

    __slots__ = ("schema", "header", "shapes", "seen", "hasher", "self_fp", "_valid", "_checked_once", "_native")

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.header = header(schema)
        self.shapes: dict[tuple[int, ...], Callable[[dict[Any, Any], tuple[Any, ...]], Record | None]] = {}
        self.seen: dict[tuple[int, ...], int] = {}  # valid shapes not generated yet: times met
        # fingerprint_bytes's state after the schema digest: copied per record, not derived again.
        self.hasher = blake3(schema.digest, derive_key_context=FINGERPRINT_CONTEXT)
        self.self_fp = schema.self_fingerprint.name if schema.self_fingerprint is not None else None
        self._valid: Callable[[Any, int, int], bool] | None = None
        self._checked_once = False
        self._native: dict[tuple[int, int, int], Any] = {}

    def native(self, limits: Limits) -> Any:
        """The native decoder (``lodec/_native.c``) under ``limits``, or ``None`` where it was not built.

        ``.decode(data) -> record | None`` and ``.vein(data) -> Vein | None``:
        ``None`` means "ask the Python decoders", never "refused"; what they
        return is exactly what ``decode_vein_reference`` returns for the same
        bytes. It checks every length and count against ``limits`` before
        allocating, so it takes a vein of any size up to ``limits.max_file_bytes``.
        """
        if _NativeDecoder is None:
            return None
        key = (limits.max_file_bytes, limits.max_text_bytes, limits.max_entries)
        decoder = self._native.get(key)
        if decoder is None:
            # A record holding its own fingerprint field is left to the Python paths (its check needs the
            # re-encoding without it): the native plan does not know that field, so such a record is "ask".
            fields = tuple(
                (f.id, f.name, _NATIVE_KINDS[f.type.kind], _NATIVE_SCALARS[f.type.scalar], f.required)
                for f in self.schema.fields
                if f.name != self.self_fp
            )
            decoder = self._native[key] = _NativeDecoder(self.header, *key, fields)
            decoder.bind_vein(Vein, self.schema, self.hasher)
        return decoder

    def valid(self, record: Any, max_text: int, max_entries: int) -> bool:
        """True only if ``validate_record`` would accept ``record`` (``False``: let it find the problem)."""
        if self._valid is None:
            if not self._checked_once:  # a schema checked once (a manifest) is not worth generating for
                self._checked_once = True
                return False
            self._valid = _generate_validator(self.schema)
        return self._valid(record, max_text, max_entries)

    def fast(self, body: bytes) -> Record | None:
        """The record if ``body`` is certainly canonical and of the schema, else ``None`` ("ask the strict decoder").

        Valid only for bodies no longer than any limit (``_fast_limit``), so
        no length or count needs checking. cbor2 decodes (in C); the key
        tuple must be a proven shape of unsigned integers; its checker
        (``_generate_shape``) tests each value against its field's type;
        and re-encoding must give back exactly ``body``: cbor2 writes
        shortest forms and definite lengths and keeps map order, so equal
        bytes prove the input used them and had no tags, duplicate keys or
        trailing bytes.
        """
        try:
            d = _cbor2_loads(body)
        except Exception:  # noqa: BLE001 - any failure means "ask the strict decoder"
            return None
        if type(d) is not dict:
            return None
        ks = tuple(d)
        check = self.shapes.get(ks)
        if check is None:
            check = self.learn(ks)
            if check is None:
                return None
        record = check(d, ks)
        if record is None:
            return None
        try:
            if _cbor2_dumps(d) != body:
                return None
        except Exception:  # noqa: BLE001
            return None
        return record

    def learn(self, keys: tuple[Any, ...]) -> Callable[[dict[Any, Any], tuple[Any, ...]], Record | None] | None:
        """The checker for records whose map keys are ``keys`` (in wire order), or ``None`` if no record has them.

        Valid keys are unsigned integers, strictly increasing, each a field
        id, with every required field among them. The checker is remembered
        for at most ``_MAX_SHAPES`` shapes per schema (a schema with k
        optional fields has 2**k); past that it is generated for each use.
        """
        by_id = self.schema.by_id
        previous = 0
        for key in keys:
            if type(key) is not int or key <= previous or key not in by_id:
                return None
            previous = key
        present = set(keys)
        if any(f.required and f.id not in present for f in self.schema.fields):
            return None
        met = self.seen.get(keys, 0) + 1
        if met < _GENERATE_AT and len(self.seen) < _MAX_SHAPES:
            # Generating a checker costs about what the strict decoder spends on several records:
            # the first records of a shape (a lone record, a small stack) are left to the strict decoder.
            self.seen[keys] = met
            return None
        check = _generate_shape([by_id[k] for k in keys])
        if len(self.shapes) < _MAX_SHAPES:
            self.shapes[keys] = check
        return check


#: Shapes remembered per schema.
_MAX_SHAPES = 256
#: A shape's checker is generated when the shape is met for this time.
_GENERATE_AT = 3

_COMPILED: dict[int, _Compiled] = {}

_NATIVE_KINDS = {"scalar": 0, "array": 1, "map": 2}
_NATIVE_SCALARS = {"string": 0, "int": 1, "bool": 2, "bytes": 3}


#: Schemas with a _Compiled kept at once: a long-running process that reads many packs (each carries its
#: schemas, parsed anew) keeps the latest, not every one it ever saw.
_MAX_COMPILED = 64


def _compiled(schema: Schema) -> _Compiled:
    c = _COMPILED.get(id(schema))
    if c is None or c.schema is not schema:
        if len(_COMPILED) >= _MAX_COMPILED:
            _COMPILED.pop(next(iter(_COMPILED), None), None)  # the oldest (threads may race here: no KeyError)
        c = _COMPILED[id(schema)] = _Compiled(schema)
    return c


def _strs_nfc(values: Any) -> bool:
    """Every item is a ``str`` in NFC (the non-ASCII case of a list or a map's keys or values)."""
    return all(type(v) is str and (v.isascii() or is_nfc(v)) for v in values)


def _keys_canonical(keys: list[str]) -> bool:
    """Map keys (``str``, distinct) in canonical order: by UTF-8 length, then bytewise."""
    return sorted(keys, key=_map_order) == keys


#: The generated checks' test that ``{v}`` is an ``int`` (not a ``bool``) in the 64-bit signed range (format v1 R7).
INT64_TEST = f"(type({{v}}) is int and {INT64_MIN} <= {{v}} <= {INT64_MAX})"

_SCALAR_TEST = {
    "string": "type({v}) is str and ({v}.isascii() or is_nfc({v}))",
    "int": INT64_TEST,
    "bool": "type({v}) is bool",
    "bytes": "type({v}) is bytes",
}


def _items_test(scalar: str, items: str) -> list[str]:
    """Lines that ``return None`` unless every value of the iterable ``items`` is a valid ``scalar``."""
    if scalar == "string":
        # Short ASCII text is the common case: str.isascii over the items runs in C, and raises
        # TypeError on an item that is not a str.
        return ["    try:",
                f"        if not all(map(str.isascii, {items})) and not _strs_nfc({items}): return None",
                "    except TypeError: return None"]
    test = _SCALAR_TEST[scalar].format(v="x")
    return [f"    if not all({test} for x in {items}): return None"]


_SHAPE_GLOBALS: dict[str, Any] = {"is_nfc": is_nfc, "_strs_nfc": _strs_nfc, "_keys_canonical": _keys_canonical}


def _generate_shape(fields: list[Field]) -> Callable[[dict[Any, Any], tuple[Any, ...]], Record | None]:
    """Generate the checker of one shape: ``(decoded map, its keys) -> record``, or ``None`` to refuse.

    ``fields`` are the fields present, in id order (the map's order). The
    checks are written out once per shape, like msgspec's specialised
    decoders, instead of dispatching on the field type for every value:
    keys are ``int`` (a shape is matched by equality, and ``True == 1``),
    each value of its field's type, text in NFC, map keys in canonical
    order, optional fields not empty. Lengths and counts are the caller's
    (``_fast_limit``).
    """
    n = len(fields)
    if n == 0:  # an empty map: a record of a schema whose fields are all optional
        return lambda d, ks: {}
    ks = ", ".join(f"k{i}" for i in range(n))
    vs = ", ".join(f"v{i}" for i in range(n))
    lines = ["def check(d, ks):", f"    {ks}, = ks", f"    {vs}, = d.values()"]
    lines.append("    if not (" + " and ".join(f"type(k{i}) is int" for i in range(n)) + "): return None")
    for i, f in enumerate(fields):
        v, kind, scalar = f"v{i}", f.type.kind, f.type.scalar
        if kind == "scalar":
            lines.append(f"    if not ({_SCALAR_TEST[scalar].format(v=v)}): return None")
            if not f.required and scalar in ("string", "bytes"):
                lines.append(f"    if not {v}: return None")
            continue
        lines.append(f"    if type({v}) is not {'list' if kind == 'array' else 'dict'}: return None")
        if not f.required:
            lines.append(f"    if not {v}: return None")
        if kind == "array":
            lines.extend(_items_test(scalar, v))
            continue
        lines += [
            f"    mk = list({v})",
            "    try:",
            "        ascii_keys = all(map(str.isascii, mk))",
            "    except TypeError: return None",
            "    if ascii_keys:",
            # ASCII: code point order is byte order, and length is UTF-8 length: two stable sorts in C.
            "        if len(mk) > 1:",
            "            sk = sorted(mk); sk.sort(key=len)",
            "            if sk != mk: return None",
            "    elif not _strs_nfc(mk) or not _keys_canonical(mk): return None",
        ]
        lines.extend(_items_test(scalar, f"{v}.values()"))
    lines.append("    return {" + ", ".join(f"{f.name!r}: v{i}" for i, f in enumerate(fields)) + "}")
    namespace = dict(_SHAPE_GLOBALS)
    exec(compile("\n".join(lines), "<lodec fast decoder>", "exec"), namespace)
    check: Callable[[dict[Any, Any], tuple[Any, ...]], Record | None] = namespace["check"]
    return check


def _text_ok(value: Any, max_text: int) -> bool:
    """``value`` passes ``_check_scalar(value, "string")``: a ``str``, no lone surrogate, NFC, within ``max_text``."""
    if type(value) is not str:
        return False
    if value.isascii():
        return len(value) <= max_text
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return size <= max_text and is_nfc(value)


_VALID_TEST = {
    "string": "(type({v}) is str and {v}.isascii() and len({v}) <= max_text or _text_ok({v}, max_text))",
    "int": INT64_TEST,
    "bool": "type({v}) is bool",
    "bytes": "(type({v}) is bytes and len({v}) <= max_text)",
}


def _valid_items(scalar: str, items: str) -> list[str]:
    if scalar == "string":
        return ["        try:",
                f"            if not (all(map(str.isascii, {items})) and max(map(len, {items}), default=0) <= max_text)"
                f" and not all(_text_ok(x, max_text) for x in {items}): return False",
                "        except TypeError: return False"]
    return [f"        if not all({_VALID_TEST[scalar].format(v='x')} for x in {items}): return False"]


def _generate_validator(schema: Schema) -> Callable[[Any, int, int], bool]:
    """Generate ``(record, max_text, max_entries) -> bool``: ``True`` only if ``validate_record`` accepts it.

    The same checks written out once for the schema (exact types, so a
    ``str`` subclass, say, is left to the generic checks); ``False`` sends
    the caller to ``validate_record``'s checks, which name the problem.
    """
    lines = ["def valid(record, max_text, max_entries):",
             "    if type(record) is not dict or not names.issuperset(record): return False"]
    for f in schema.fields:
        kind, scalar = f.type.kind, f.type.scalar
        lines.append(f"    v = record.get({f.name!r}, ABSENT)")
        lines.append("    if v is ABSENT:")
        lines.append("        return False" if f.required else "        pass")
        lines.append("    else:")
        if kind == "scalar":
            lines.append(f"        if not {_VALID_TEST[scalar].format(v='v')}: return False")
            continue
        container = "list" if kind == "array" else "dict"
        lines.append(f"        if type(v) is not {container} or len(v) > max_entries: return False")
        if kind == "map":
            lines.extend(_valid_items("string", "v"))
            lines.extend(_valid_items(scalar, "v.values()"))
        else:
            lines.extend(_valid_items(scalar, "v"))
    lines.append("    return True")
    namespace: dict[str, Any] = {"names": frozenset(schema.by_name), "ABSENT": _ABSENT, "_text_ok": _text_ok}
    exec(compile("\n".join(lines), "<lodec record check>", "exec"), namespace)
    valid: Callable[[Any, int, int], bool] = namespace["valid"]
    return valid


_ABSENT: Any = object()


def _fast_limit(limits: Limits) -> int:
    """The longest body the fast path takes: then no string or container in it can be over a limit.

    cbor2 builds every object before lodec could check a limit (an array of
    empty maps grows ~80x in memory), so larger bodies go to the strict
    decoder, which checks each declared length and count before allocating.
    """
    return min(FAST_PATH_MAX_BYTES, limits.max_text_bytes, limits.max_entries)


def _fast_decode(body: bytes, schema: Schema, limits: Limits) -> Record | None:
    """The fast path: the record if ``body`` is certainly canonical and of ``schema``, else ``None``.

    ``None`` sends the caller to the strict decoder, which is authoritative
    and names the exact problem; the fast path never accepts anything the
    strict decoder refuses (differential tests in ``tests/test_properties.py``
    and ``tests/test_fast_decoder.py``).
    """
    if len(body) > _fast_limit(limits):
        return None
    return _compiled(schema).fast(body)


def decode_body(body: bytes, schema: Schema, *, file: str = "<vein>", limits: Limits = DEFAULT_LIMITS, base: int = HEADER_SIZE) -> Record:
    """Decode a canonical CBOR body against ``schema`` (see module docstring for what is refused).

    Raises:
        DecodeError: malformed or non-canonical bytes, with a stable code
            (``non_canonical``, ``unsorted_keys``, ``duplicate_key``,
            ``indefinite_length``, ``tag_not_allowed``,
            ``float_or_simple_not_allowed``, ``trailing_bytes``,
            ``unknown_field``, ``wrong_type``, ``missing_field``,
            ``not_nfc``, ``empty_optional``, ``truncated`` ...) and the byte offset.
        LimitExceeded: a declared length or count over ``limits``.
    """
    record = _fast_decode(body, schema, limits)
    if record is not None:
        return record
    return _strict_decode_body(body, schema, file=file, limits=limits, base=base)


def _strict_decode_body(body: bytes, schema: Schema, *, file: str, limits: Limits, base: int) -> Record:
    """The authoritative decoder: proves canonical form byte by byte, names the first problem."""
    r = _Reader(body, base, file, limits)
    major, n = r.head()
    if major != 5:
        raise r.fail(f"body must be a map, got {_MAJOR_NAMES[major]}", "wrong_type", 0)
    r.count(n, "record map")
    by_id = schema.by_id
    record: Record = {}
    previous = -1
    for _ in range(n):
        kstart = r.pos
        r.context = "field key"
        major, key = r.head()
        if major != 0:
            raise r.fail(f"field key must be an unsigned integer, got {_MAJOR_NAMES[major]}", "wrong_type", kstart)
        if key <= previous:
            code = "duplicate_key" if key == previous else "unsorted_keys"
            raise r.fail(f"field id {key} is a duplicate or out of canonical order", code, kstart)
        previous = key
        f = by_id.get(key)
        if f is None:
            raise r.fail(f"unknown field id {key} for schema {schema.name}", "unknown_field", kstart)
        r.context = f'field "{f.name}", id {f.id}'
        vstart = r.pos
        value = _decode_field(r, f)
        if not f.required and _is_empty(value):
            raise r.fail("empty optional field must be omitted", "empty_optional", vstart)
        record[f.name] = value
    r.context = "body"
    if r.pos != r.end:
        raise r.fail(f"{r.end - r.pos} trailing bytes after the record", "trailing_bytes")
    for f in schema.fields:
        if f.required and f.name not in record:
            raise DecodeError(
                f"required field {f.name!r} (id {f.id}) is missing",
                code="missing_field",
                file=file,
                location=f'field "{f.name}", id {f.id}',
            )
    return record


def parse_header(data: bytes) -> tuple[int, bytes]:
    """``(format version, schema id)`` as a vein's header states them, without checking them.

    Header layout (``docs/vein-format.md``): ``VEIN`` (4 bytes), format
    version (1 byte), schema id (8 bytes). Bytes missing from a short input
    read as version 0 and a shorter schema id; ``check_header`` judges them.
    """
    return (data[4] if len(data) > 4 else 0), bytes(data[5:HEADER_SIZE])


def check_header(data: bytes, schema: Schema, *, file: str = "<vein>") -> None:
    """Check magic, format version and schema id.

    Raises:
        DecodeError: ``bad_magic``, ``unsupported_version``, ``truncated``,
            or ``schema_mismatch`` (the vein was written for another schema).
    """
    if len(data) < HEADER_SIZE:
        raise DecodeError(f"{len(data)} bytes is shorter than the {HEADER_SIZE}-byte header", code="truncated", file=file, location="byte 0 (header)")
    if data[:4] != MAGIC:
        raise DecodeError("not a vein file (magic is not 'VEIN')", code="bad_magic", file=file, location="byte 0 (header)")
    if data[4] != FORMAT_VERSION:
        raise DecodeError(f"vein format version {data[4]} is not supported (this lodec reads {FORMAT_VERSION})", code="unsupported_version", file=file, location="byte 4 (header)")
    if data[5:13] != schema.schema_id:
        raise SchemaMismatch(
            f"written for schema id {data[5:13].hex()}, not {schema.name} v{schema.version} ({schema.schema_id.hex()})",
            file=file,
            location="byte 5 (header)",
        )


def decode_vein(data: bytes, schema: Schema, *, file: str = "<vein>", limits: Limits = DEFAULT_LIMITS) -> Vein:
    """Decode and verify a whole vein: size limit, header, canonical body, self-fingerprint.

    Args:
        data: the vein's bytes.
        schema: the schema the vein must have been written for.

    Returns:
        the ``Vein``, holding ``data`` and its fingerprint.

    Raises:
        LimitExceeded: ``data`` is over ``limits.max_file_bytes`` (checked first).
        DecodeError: see ``check_header`` and ``decode_body``; code
            ``fingerprint_mismatch`` if the record's own ``fingerprint``
            field disagrees with the computed fingerprint.
    """
    if len(data) > limits.max_file_bytes:
        raise LimitExceeded(f"vein is {len(data)} bytes; the limit is {limits.max_file_bytes}", file=file)
    data = bytes(data)
    c = _compiled(schema)
    body = data[HEADER_SIZE:]
    native = c.native(limits)
    if native is not None:
        vein = native.vein(data)
        if vein is not None:
            return vein
    record = None
    if data[:HEADER_SIZE] == c.header and len(body) <= _fast_limit(limits):
        record = c.fast(body)
    if record is not None:
        if c.self_fp is not None and c.self_fp in record:
            return _vein_of(schema, record, data, body, file)
        h = c.hasher.copy()
        h.update(body)
        return Vein(schema, record, data, PREFIX + h.digest().hex())
    # Whatever the fast path did not settle: the reference, which names the first problem.
    return decode_vein_reference(data, schema, file=file, limits=limits)


def fast_vein_decoder(schema: Schema, limits: Limits = DEFAULT_LIMITS) -> Callable[[bytes], Vein | None]:
    """``data -> Vein`` for the veins the fast path settles, else ``None``: then call ``decode_vein``.

    For loops over many veins of one schema (stack verification): no file
    label is needed, because this never raises; whatever it does not
    accept, ``decode_vein`` decodes or refuses with the reference's error.
    A ``Vein`` it returns is the one ``decode_vein`` would return.
    """
    c = _compiled(schema)
    fast, hdr, hasher, self_fp = c.fast, c.header, c.hasher, c.self_fp
    longest = min(HEADER_SIZE + _fast_limit(limits), limits.max_file_bytes)
    native = c.native(limits)
    native_vein = native.vein if native is not None else None

    def decode(data: bytes) -> Vein | None:
        if native_vein is not None:
            vein = native_vein(data)
            if vein is not None:
                return vein
        if type(data) is not bytes or len(data) > longest or data[:HEADER_SIZE] != hdr:
            return None
        body = data[HEADER_SIZE:]
        record = fast(body)
        if record is None or (self_fp is not None and self_fp in record):
            return None
        h = hasher.copy()
        h.update(body)
        # As Vein(...) does, without the call of its __init__ (bytes.hex is also quicker than hexdigest).
        vein = new(Vein)
        set_schema(vein, schema)
        set_record(vein, record)
        set_data(vein, data)
        set_fingerprint(vein, PREFIX + h.digest().hex())
        return vein

    new = object.__new__
    set_schema, set_record = Vein.schema.__set__, Vein.record.__set__  # type: ignore[attr-defined]
    set_data, set_fingerprint = Vein.data.__set__, Vein.fingerprint.__set__  # type: ignore[attr-defined]
    return decode


def _vein_of(schema: Schema, record: Record, data: bytes, body: bytes, file: str) -> Vein:
    """The ``Vein`` of a decoded record, after checking its own ``fingerprint`` field (if any)."""
    fp = _fingerprint_of(schema, record, body)
    sf = schema.self_fingerprint
    if sf is not None and sf.name in record and record[sf.name] != fp:
        raise DecodeError(
            f"fingerprint field says {record[sf.name]}, but the record's fingerprint is {fp}",
            code="fingerprint_mismatch",
            file=file,
            location=f'field "{sf.name}", id {sf.id}',
        )
    return Vein(schema, record, data, fp)


def decode_vein_reference(data: bytes, schema: Schema, *, file: str = "<vein>", limits: Limits = DEFAULT_LIMITS) -> Vein:
    """``decode_vein`` without the fast path: the strict decoder alone, byte by byte.

    The reference the fast path is tested against (``tests/test_fast_decoder.py``):
    on every input both give the same record and fingerprint, or the same
    error (class, code, location, message). Raises as ``decode_vein``.
    """
    if len(data) > limits.max_file_bytes:
        raise LimitExceeded(f"vein is {len(data)} bytes; the limit is {limits.max_file_bytes}", file=file)
    data = bytes(data)
    check_header(data, schema, file=file)
    body = data[HEADER_SIZE:]
    record = _strict_decode_body(body, schema, file=file, limits=limits, base=HEADER_SIZE)
    return _vein_of(schema, record, data, body, file)
