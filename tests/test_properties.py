"""Property tests: random schemas and records, mutated and arbitrary bytes.

The strict decoder, the cbor2 fast path, and an independent reference
encoder written here from RFC 8949 §4.2.1 must all agree.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from typing import Any

import cbor2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lodec
from lodec.format import cbor
from lodec.format.codec import HEADER_SIZE, _fast_decode, _strict_decode_body, decode_vein, record_to_json
from lodec.errors import LodecError
from lodec.limits import DEFAULT_LIMITS
from lodec.format.schema import schema_from_json

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = ["string", "int", "bool", "bytes"]
nfc_text = st.text(max_size=12).map(lambda s: unicodedata.normalize("NFC", s)).filter(
    lambda s: unicodedata.is_normalized("NFC", s)
)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
#: ASCII text: what the native decoder settles itself (it leaves non-ASCII text to the Python paths).
ascii_text = st.text(alphabet=st.characters(max_codepoint=127), max_size=12)
SCALAR_VALUES = {"string": nfc_text, "int": int64, "bool": st.booleans(), "bytes": st.binary(max_size=12)}


def reference_encode(value: Any) -> bytes:
    """Independent RFC 8949 §4.2.1 encoder (struct-based), for differential testing."""

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
            if n < 1 << (8 * struct.calcsize(fmt)):
                return bytes([major << 5 | ai]) + struct.pack(fmt, n)
        raise ValueError(n)

    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, str):
        raw = value.encode()
        return head(3, len(raw)) + raw
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(reference_encode(v) for v in value)
    items = sorted((reference_encode(k), reference_encode(v)) for k, v in value.items())
    return head(5, len(items)) + b"".join(k + v for k, v in items)


@st.composite
def schemas(draw: st.DrawFn) -> lodec.Schema:
    n = draw(st.integers(min_value=1, max_value=6))
    ids = draw(st.lists(st.integers(min_value=1, max_value=70000), min_size=n, max_size=n, unique=True))
    fields = []
    for i, fid in enumerate(ids):
        scalar = draw(st.sampled_from(SCALARS))
        kind = draw(st.sampled_from(["{}", "{}[]", "map<string,{}>"]))
        fields.append({"id": fid, "name": f"f{i}", "type": kind.format(scalar), "required": draw(st.booleans())})
    return schema_from_json({"schema": "lode", "version": 1, "name": "R", "fields": fields})


@st.composite
def schema_and_record(draw: st.DrawFn, text: st.SearchStrategy[str] = nfc_text) -> tuple[lodec.Schema, dict[str, Any]]:
    """A random schema and a record of it; ``text`` draws its strings (values and map keys)."""
    schema = draw(schemas())
    record: dict[str, Any] = {}
    for f in schema.fields:
        if not f.required and draw(st.booleans()):
            continue
        values = text if f.type.scalar == "string" else SCALAR_VALUES[f.type.scalar]
        if f.type.kind == "scalar":
            record[f.name] = draw(values)
        elif f.type.kind == "array":
            record[f.name] = draw(st.lists(values, max_size=4))
        else:
            record[f.name] = draw(st.dictionaries(text, values, max_size=4))
    return schema, record


def canonical_record(schema: lodec.Schema, record: dict[str, Any]) -> dict[str, Any]:
    return {
        f.name: record[f.name]
        for f in schema.fields
        if f.name in record and (f.required or record[f.name] not in ("", b"", [], {}))
    }


@SETTINGS
@given(schema_and_record())
def test_encode_decode_round_trips_exactly(pair: tuple[lodec.Schema, dict[str, Any]]) -> None:
    schema, record = pair
    vein = lodec.encode_record(schema, record)
    decoded = decode_vein(vein.data, schema)
    assert decoded.record == canonical_record(schema, record)
    assert decoded.fingerprint == vein.fingerprint
    # JSON source round trip gives identical bytes.
    again = lodec.compile_source(json.dumps(record_to_json(decoded.record, schema)).encode(), schema)
    assert again.data == vein.data


@SETTINGS
@given(schema_and_record())
def test_encoder_matches_independent_reference_and_cbor2(pair: tuple[lodec.Schema, dict[str, Any]]) -> None:
    schema, record = pair
    body = lodec.encode_record(schema, record).body
    by_id = {schema.by_name[k].id: v for k, v in canonical_record(schema, record).items()}
    assert body == reference_encode(by_id)
    assert cbor2.loads(body) == by_id
    assert cbor.encode(by_id) == body


@SETTINGS
@given(schema_and_record())
def test_fast_path_and_strict_decoder_agree_on_valid_input(pair: tuple[lodec.Schema, dict[str, Any]]) -> None:
    schema, record = pair
    body = lodec.encode_record(schema, record).body
    strict = _strict_decode_body(body, schema, file="x", limits=DEFAULT_LIMITS, base=HEADER_SIZE)
    for _ in range(2):  # None for the first records of a shape (left to the strict decoder)
        first = _fast_decode(body, schema, DEFAULT_LIMITS)
        assert first is None or first == strict
    assert _fast_decode(body, schema, DEFAULT_LIMITS) == strict


@SETTINGS
@given(schema_and_record(), st.data())
def test_mutated_bytes_are_refused_or_canonical(pair: tuple[lodec.Schema, dict[str, Any]], data: st.DataObject) -> None:
    """No two byte strings decode to the same record: whatever is accepted re-encodes to itself."""
    schema, record = pair
    body = bytearray(lodec.encode_record(schema, record).body)
    op = data.draw(st.sampled_from(["flip", "insert", "delete", "replace"]))
    i = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    if op == "flip":
        body[i] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    elif op == "insert":
        body.insert(i, data.draw(st.integers(min_value=0, max_value=255)))
    elif op == "delete":
        del body[i]
    else:
        body[i] = data.draw(st.integers(min_value=0, max_value=255))
    mutated = bytes(body)
    fast = _fast_decode(mutated, schema, DEFAULT_LIMITS)
    try:
        strict = _strict_decode_body(mutated, schema, file="x", limits=DEFAULT_LIMITS, base=HEADER_SIZE)
    except LodecError:
        assert fast is None  # the fast path never accepts what the strict decoder refuses
        return
    assert fast is None or fast == strict
    assert lodec.encode_record(schema, strict).body == mutated


@SETTINGS
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_lodec_errors(blob: bytes) -> None:
    schema = lodec.skill_step_schema()
    for data in (blob, lodec.format.codec.header(schema) + blob):
        try:
            vein = decode_vein(data, schema)
        except LodecError:
            continue
        assert lodec.encode_record(schema, vein.record).data == data


@SETTINGS
@given(st.lists(st.sampled_from([0x80, 0x81, 0x9F, 0xA1, 0xBF, 0xC0, 0xD8, 0xF6, 0xFB, 0x7F, 0x61, 0x01, 0xFF]), max_size=200))
def test_structural_garbage_raises_only_lodec_errors(items: list[int]) -> None:
    schema = lodec.skill_step_schema()
    try:
        decode_vein(lodec.format.codec.header(schema) + b"\xa2\x01\x61x\x02" + bytes(items), schema)
    except LodecError:
        pass


@SETTINGS
@given(st.text(max_size=30))
def test_strict_json_raises_only_lodec_errors(text: str) -> None:
    assume(text.strip())
    try:
        lodec.compile_source(text.encode("utf-8", "surrogatepass"), lodec.skill_step_schema())
    except LodecError:
        pass
