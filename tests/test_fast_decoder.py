"""The fast paths of ``decode_vein`` against the reference decoder (``decode_vein_reference``).

Every comparison here is made for both fast paths: the Python one (the
module's tests run with the native decoder switched off, so the Python fast
path's own caches and generated checks are what they test) and the native
one (``lodec/format/_veinc.c``), which ``assert_agree`` switches on for a
second pass over the same input.

The fast path (cbor2 in C, then checks generated per schema and per shape of
field ids, then a byte-exact re-encoding) must agree with the strict
decoder on every input: the same record and fingerprint, or the same error
(class, code, location and message). A fast path that accepts anything the
reference refuses is a defect. Inputs: random schemas and records
(hypothesis), byte-level mutations of them, every fuzz seed and kept fuzz
input with mutations, and hand-made attacks on what a cbor2 round trip alone
would let through.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lodec
from lodec.errors import LodecError
from lodec.format import codec
from lodec.format.codec import (
    _GENERATE_AT,
    HEADER_SIZE,
    _compiled,
    _fast_decode,
    decode_vein,
    decode_vein_reference,
    fast_vein_decoder,
    header,
)
from lodec.format.schema import BUILTIN_SCHEMAS, builtin_schema, schema_from_json
from lodec.limits import DEFAULT_LIMITS, Limits

from .test_properties import SETTINGS, ascii_text, schema_and_record

ROOT = Path(__file__).resolve().parent.parent
STEP = builtin_schema("skill-step-v1")


#: The native decoder type, as imported (None where it was not built: ``test_native_decoder_is_built``).
NATIVE = codec._NativeDecoder


@pytest.fixture(autouse=True)
def _python_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test meets the Python fast path; ``native_on`` brings the native one back for a comparison."""
    monkeypatch.setattr(codec, "_NativeDecoder", None)


@contextmanager
def native_on() -> Iterator[None]:
    saved = codec._NativeDecoder
    codec._NativeDecoder = NATIVE
    try:
        yield
    finally:
        codec._NativeDecoder = saved


def native_record(data: bytes, schema: lodec.Schema, limits: Limits = DEFAULT_LIMITS) -> Any:
    """What the native decoder alone returns for ``data``: a record, or None ("ask the Python decoders")."""
    with native_on():
        decoder = _compiled(schema).native(limits)
    assert decoder is not None
    record = decoder.decode(data)
    vein = decoder.vein(data)  # the whole Vein: the same verdict and record, and the reference's fingerprint
    assert (vein is None) == (record is None)
    if vein is not None:
        assert vein.record == record and vein.data == data and vein.schema is schema
        assert vein.fingerprint == decode_vein_reference(data, schema, limits=limits).fingerprint
    return record


def outcome(decode: Any, data: bytes, schema: lodec.Schema, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, ...]:
    try:
        vein = decode(data, schema, file="x.vein", limits=limits)
    except LodecError as exc:
        return ("refused", type(exc).__name__, exc.code, exc.location, exc.message)
    return ("accepted", vein.record, vein.fingerprint, vein.data)


def assert_agree(data: bytes, schema: lodec.Schema, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, ...]:
    """Decode ``data`` on both paths and assert the same outcome.

    The fast path is asked ``_GENERATE_AT`` times: the first times a shape of field ids is met it is left to
    the strict decoder, so a single call would compare the reference with itself for every input whose
    shape is new (an unsorted or incomplete key tuple, say) and never reach the shape checks in ``learn``.
    """
    reference = outcome(decode_vein_reference, data, schema, limits)
    for _ in range(_GENERATE_AT):
        assert outcome(decode_vein, data, schema, limits) == reference, data.hex()
    # Stack verification's loop decoder: what it settles, the reference accepts alike.
    vein = fast_vein_decoder(schema, limits)(data)
    if vein is not None:
        assert ("accepted", vein.record, vein.fingerprint, vein.data) == reference, data.hex()
    if NATIVE is not None:
        record = native_record(data, schema, limits)
        if record is not None:  # what the native decoder accepts, the reference accepts as the same record
            assert reference[0] == "accepted" and record == reference[1], data.hex()
        with native_on():
            assert outcome(decode_vein, data, schema, limits) == reference, data.hex()
            vein = fast_vein_decoder(schema, limits)(data)
            if vein is not None:
                assert ("accepted", vein.record, vein.fingerprint, vein.data) == reference, data.hex()
    return reference


def mutations(data: bytes, limit: int = 48) -> list[bytes]:
    """Every one-byte deletion, a few insertions, and three bit flips per byte (in the first ``limit`` bytes)."""
    out = []
    for i in range(min(len(data), limit)):
        out.append(data[:i] + data[i + 1:])
        for bit in (0, 5, 7):
            out.append(data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:])
        for b in (0x00, 0x18, 0xF5, 0xF6, 0xFF):
            out.append(data[:i] + bytes([b]) + data[i:])
    return out


# ------------------------------------------------------------ random schemas


@SETTINGS
@given(schema_and_record())
def test_fast_path_accepts_every_canonical_record_as_the_reference_does(pair: tuple[lodec.Schema, dict[str, Any]]) -> None:
    schema, record = pair
    vein = lodec.encode_record(schema, record)
    assert assert_agree(vein.data, schema)[0] == "accepted"
    # The fast path itself settles canonical records (else it would not be a fast path), from the
    # _GENERATE_AT-th record of a shape on: the first ones are left to the strict decoder.
    for _ in range(_GENERATE_AT - 1):
        _fast_decode(vein.body, schema, DEFAULT_LIMITS)
    assert _fast_decode(vein.body, schema, DEFAULT_LIMITS) is not None
    # The native decoder settles every canonical record whose text is ASCII (non-ASCII text, whose NFC check
    # needs the pinned Unicode tables, is left to the Python paths), on its first meeting.
    if NATIVE is not None and _all_ascii(record):
        assert native_record(vein.data, schema) == decode_vein_reference(vein.data, schema).record


def _all_ascii(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii()
    if isinstance(value, dict):
        return all(_all_ascii(k) and _all_ascii(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(_all_ascii, value))
    return True


@SETTINGS
@given(schema_and_record(text=ascii_text), st.data())
def test_native_decoder_and_reference_agree_on_ascii_records_mutated_and_under_small_limits(
        pair: tuple[lodec.Schema, dict[str, Any]], data: st.DataObject) -> None:
    """ASCII records are the ones the native decoder settles itself: mutations and limits must meet its checks."""
    schema, record = pair
    vein = lodec.encode_record(schema, record)
    limits = Limits(max_text_bytes=data.draw(st.integers(min_value=0, max_value=14)),
                    max_entries=data.draw(st.integers(min_value=0, max_value=8)))
    assert assert_agree(vein.data, schema)[0] == "accepted"
    assert_agree(vein.data, schema, limits)
    body = bytearray(vein.body)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        i = data.draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        if body:
            body[i] = data.draw(st.integers(min_value=0, max_value=255))
    assert_agree(header(schema) + bytes(body), schema)


def test_native_decoder_leaves_a_string_over_the_limit_to_the_reference() -> None:
    if NATIVE is None:
        from .conftest import unavailable

        unavailable("lodec._native was not built (or LODEC_PURE_PYTHON is set)")
    vein = lodec.encode_record(STEP, {"stepName": "abcdef", "skillRef": "skill:xyz"})
    assert native_record(vein.data, STEP) == {"stepName": "abcdef", "skillRef": "skill:xyz"}
    for limits in (Limits(max_text_bytes=5), Limits(max_entries=1), Limits(max_file_bytes=len(vein.data) - 1)):
        assert native_record(vein.data, STEP, limits) is None
        assert assert_agree(vein.data, STEP, limits)[:3] == ("refused", "LimitExceeded", "limit_exceeded")


def test_native_decoder_is_built() -> None:
    """The install built the native decoder (a C compiler was there); without one lodec still works, slower."""
    if NATIVE is None:
        from .conftest import unavailable

        unavailable("lodec.format._veinc was not built (no C compiler at install time?)")


@SETTINGS
@given(schema_and_record(), st.data())
def test_fast_path_and_reference_agree_on_mutated_records(pair: tuple[lodec.Schema, dict[str, Any]],
                                                          data: st.DataObject) -> None:
    schema, record = pair
    vein = lodec.encode_record(schema, record)
    for _ in range(_GENERATE_AT):  # the shape is learned first: mutations then meet a warm cache
        assert_agree(vein.data, schema)
    body = bytearray(vein.body)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "replace"]))
        i = data.draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[i] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif op == "insert":
            body.insert(i, data.draw(st.integers(min_value=0, max_value=255)))
        elif op == "delete" and body:
            del body[i]
        elif body:
            body[i] = data.draw(st.integers(min_value=0, max_value=255))
    assert_agree(header(schema) + bytes(body), schema)


@SETTINGS
@given(schema_and_record(), st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_fast_path_and_reference_agree_under_small_limits(pair: tuple[lodec.Schema, dict[str, Any]],
                                                          max_text: int, max_entries: int) -> None:
    schema, record = pair
    data = lodec.encode_record(schema, record).data
    assert_agree(data, schema)  # the shape is learned first: a limit, not a cold cache, must refuse
    assert_agree(data, schema, Limits(max_text_bytes=max_text, max_entries=max_entries))


@SETTINGS
@given(st.binary(max_size=80))
def test_fast_path_and_reference_agree_on_arbitrary_bodies(blob: bytes) -> None:
    for name in BUILTIN_SCHEMAS:
        schema = builtin_schema(name)
        assert_agree(header(schema) + blob, schema)
        assert_agree(blob, schema)


# ------------------------------------------------------------ fuzz seeds


def _fuzz_inputs() -> list[Path]:
    return sorted([*(ROOT / "fuzz" / "seeds" / "vein").glob("*"), *(ROOT / "tests" / "fuzz_regressions" / "vein").glob("*")])


@pytest.mark.parametrize("path", _fuzz_inputs(), ids=lambda p: p.name[:12])
def test_fast_path_and_reference_agree_on_fuzz_seeds_and_their_mutations(path: Path) -> None:
    raw = path.read_bytes()
    if not raw:
        return
    schemas = [builtin_schema(n) for n in BUILTIN_SCHEMAS]
    schema = schemas[(raw[0] & 0x7F) % len(schemas)]  # as fuzz/targets.py's vein target picks it
    blob = header(schema) + raw[1:] if raw[0] & 0x80 else raw[1:]
    assert_agree(blob, schema)
    for mutated in mutations(blob[HEADER_SIZE:] if len(blob) > HEADER_SIZE else blob):
        assert_agree(header(schema) + mutated, schema)


def test_the_fuzz_seeds_include_accepted_veins() -> None:
    accepted = 0
    schemas = [builtin_schema(n) for n in BUILTIN_SCHEMAS]
    for path in _fuzz_inputs():
        raw = path.read_bytes()
        if raw:
            schema = schemas[(raw[0] & 0x7F) % len(schemas)]
            blob = header(schema) + raw[1:] if raw[0] & 0x80 else raw[1:]
            accepted += outcome(decode_vein, blob, schema)[0] == "accepted"
    assert accepted >= 3  # else the seed test above would only compare refusals


# ------------------------------------------------------------ attacks on the round trip


def _step_vein(body: bytes) -> bytes:
    return header(STEP) + body


VALID = cbor2.dumps({1: "a", 2: "skill:x"})  # a2 01 61 61 02 67 ...


def _learned() -> None:
    """Decode a valid two-field step first (twice: a shape's checker is made the second time it is
    met), so its shape (1, 2) is in the cache the attacks meet."""
    for _ in range(_GENERATE_AT):
        assert decode_vein(_step_vein(VALID), STEP).record == {"stepName": "a", "skillRef": "skill:x"}
    assert (1, 2) in _compiled(STEP).shapes


ATTACKS = {
    # cbor2 decodes these to a dict equal to a valid one ({True: ..} == {1: ..}) and re-encodes them
    # byte for byte: only a type check on the keys refuses them.
    "bool_key_true_for_field_1": b"\xa2\xf5\x61a\x02\x67skill:x",
    "float_key_1_0_for_field_1": b"\xa2\xf9\x3c\x00\x61a\x02\x67skill:x",
    "float32_key_for_field_2": b"\xa2\x01\x61a\xfa\x40\x00\x00\x00\x67skill:x",
    "null_for_a_present_field": b"\xa2\x01\xf6\x02\x67skill:x",
    "undefined_for_a_present_field": b"\xa2\x01\xf7\x02\x67skill:x",
    "tag_32_uri_text": b"\xa2\x01\xd8\x20\x61a\x02\x67skill:x",
    "bignum_key": b"\xa2\xc2\x41\x01\x61a\x02\x67skill:x",
    "stringref_namespace": b"\xd9\x01\x00\xa2\x01\x67skill:x\x02\xd8\x19\x00",
    "shared_value": b"\xa2\x01\xd8\x1c\x61a\x02\x67skill:x",
    "non_shortest_key": b"\xa2\x18\x01\x61a\x02\x67skill:x",
    "non_shortest_length": b"\xa2\x01\x78\x01a\x02\x67skill:x",
    "indefinite_text": b"\xa2\x01\x7f\x61a\xff\x02\x67skill:x",
    "indefinite_map": b"\xbf\x01\x61a\x02\x67skill:x\xff",
    "duplicate_field": b"\xa3\x01\x61a\x01\x61a\x02\x67skill:x",
    "unsorted_fields": b"\xa2\x02\x67skill:x\x01\x61a",
    "trailing_byte": VALID + b"\x00",
    "unknown_field": b"\xa3\x01\x61a\x02\x67skill:x\x07\x61b",
    "missing_required": b"\xa1\x01\x61a",
    "empty_optional_array": b"\xa3\x01\x61a\x02\x67skill:x\x03\x80",
    "empty_optional_map": b"\xa3\x01\x61a\x02\x67skill:x\x04\xa0",
    "unsorted_map_keys": b"\xa3\x01\x61a\x02\x67skill:x\x04\xa2\x61b\x61x\x61a\x61y",
    "map_key_longer_first": b"\xa3\x01\x61a\x02\x67skill:x\x04\xa2\x62aa\x61x\x61b\x61y",
    "duplicate_map_key": b"\xa3\x01\x61a\x02\x67skill:x\x04\xa2\x61a\x61x\x61a\x61y",
    "non_ascii_unsorted_map_keys": "\xa3\x01\x61a\x02\x67skill:x\x04\xa2".encode("latin-1")
    + b"\x62\xc3\xa9\x61x\x62\xc3\xa8\x61y",
    "not_nfc_text": b"\xa2\x01\x63e\xcc\x81\x02\x67skill:x",
    "not_nfc_in_array": b"\xa3\x01\x61a\x02\x67skill:x\x03\x81\x63e\xcc\x81",
    "not_nfc_map_key": b"\xa3\x01\x61a\x02\x67skill:x\x04\xa1\x63e\xcc\x81\x61x",
    "int_in_string_array": b"\xa3\x01\x61a\x02\x67skill:x\x03\x82\x61b\x01",
    "bytes_for_text": b"\xa2\x01\x41a\x02\x67skill:x",
    "lone_surrogate_text": b"\xa2\x01\x63\xed\xa0\x80\x02\x67skill:x",
    "overlong_utf8": b"\xa2\x01\x62\xc1\x81\x02\x67skill:x",
    "array_body": b"\x82\x01\x02",
    "empty_body": b"",
    "tag_on_body": b"\xd9\xd9\xf7" + VALID,
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_round_trip_trick_is_refused_with_the_reference_error(name: str) -> None:
    _learned()
    data = _step_vein(ATTACKS[name])
    verdict = assert_agree(data, STEP)
    assert verdict[0] == "refused", f"{name} accepted: {verdict}"


def test_the_attacks_decode_in_cbor2_to_what_a_round_trip_check_alone_would_pass() -> None:
    # Why the key type check exists: cbor2 maps these to dicts equal to the valid record.
    assert cbor2.loads(ATTACKS["bool_key_true_for_field_1"]) == cbor2.loads(VALID)
    assert cbor2.dumps(cbor2.loads(ATTACKS["bool_key_true_for_field_1"])) == ATTACKS["bool_key_true_for_field_1"]
    assert cbor2.loads(ATTACKS["float_key_1_0_for_field_1"]) == cbor2.loads(VALID)


NUMBERS = schema_from_json({"schema": "lode", "version": 1, "name": "Numbers", "fields": [
    {"id": 1, "name": "n", "type": "int", "required": True},
    {"id": 2, "name": "note", "type": "string", "required": False},
    {"id": 3, "name": "blob", "type": "bytes", "required": False},
    {"id": 4, "name": "flag", "type": "bool", "required": False},
]})

SCALAR_ATTACKS = {
    # Canonical CBOR that cbor2 decodes and re-encodes byte for byte, so only the generated value checks
    # can refuse them on the fast path.
    "int_just_over_int64_max": b"\xa1\x01\x1b\x80\x00\x00\x00\x00\x00\x00\x00",
    "uint64_max": b"\xa1\x01\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
    "int_just_under_int64_min": b"\xa1\x01\x3b\x80\x00\x00\x00\x00\x00\x00\x00",
    "empty_optional_string": b"\xa2\x01\x01\x02\x60",
    "empty_optional_bytes": b"\xa2\x01\x01\x03\x40",
    "int_for_bool": b"\xa2\x01\x01\x04\x01",
    "null_for_bool": b"\xa2\x01\x01\x04\xf6",
    "bool_for_int": b"\xa1\x01\xf5",
    "text_for_bytes": b"\xa2\x01\x01\x03\x61y",
}


@pytest.mark.parametrize("name", sorted(SCALAR_ATTACKS))
def test_attack_wrong_scalar_out_of_range_int_or_empty_optional_is_refused_on_the_fast_path_too(name: str) -> None:
    for good in ({"n": 2**63 - 1}, {"n": -(2**63), "note": "x"}, {"n": 1, "blob": b"y"}, {"n": 1, "flag": False}):
        assert assert_agree(lodec.encode_record(NUMBERS, good).data, NUMBERS)[0] == "accepted"
    shape = tuple(cbor2.loads(SCALAR_ATTACKS[name]))
    assert shape in _compiled(NUMBERS).shapes  # the attack meets a generated checker, not only the strict decoder
    verdict = assert_agree(header(NUMBERS) + SCALAR_ATTACKS[name], NUMBERS)
    assert verdict[0] == "refused", f"{name} accepted: {verdict}"


def test_a_self_fingerprint_field_is_checked_on_the_fast_path_too() -> None:
    record = {"stepName": "a", "skillRef": "skill:x"}
    vein = lodec.encode_record(STEP, record)
    good = lodec.encode_record(STEP, {**record, "fingerprint": vein.fingerprint})
    assert assert_agree(good.data, STEP)[0] == "accepted"
    wrong = _step_vein(cbor2.dumps({1: "a", 2: "skill:x", 6: "blake3:" + "0" * 64}))
    verdict = assert_agree(wrong, STEP)
    assert verdict[:3] == ("refused", "DecodeError", "fingerprint_mismatch")


def test_many_shapes_past_the_cache_still_decode_alike() -> None:
    fields = [{"id": i, "name": f"f{i}", "type": "int", "required": False} for i in range(1, 11)]
    schema = schema_from_json({"schema": "lode", "version": 1, "name": "Wide", "fields": fields})
    for mask in range(1, 1 << 10, 3):  # 341 shapes: more than the cache keeps
        record = {f"f{i}": i for i in range(1, 11) if mask & (1 << (i - 1))}
        for _ in range(_GENERATE_AT):
            assert assert_agree(lodec.encode_record(schema, record).data, schema)[0] == "accepted"
    assert len(_compiled(schema).shapes) <= 256


# ------------------------------------------------------------ the strict decoder's inline map entries


def _strict(data: bytes, schema: lodec.Schema, limits: Limits, inline: bool) -> tuple[Any, ...]:
    from lodec.format import codec

    saved = codec._INLINE_MAPS
    codec._INLINE_MAPS = inline
    try:
        return outcome(decode_vein_reference, data, schema, limits)
    finally:
        codec._INLINE_MAPS = saved


MAPS = schema_from_json({"schema": "lode", "version": 1, "name": "Maps", "fields": [
    {"id": 1, "name": "texts", "type": "map<string,string>", "required": True},
    {"id": 2, "name": "blobs", "type": "map<string,bytes>", "required": False},
    {"id": 3, "name": "after", "type": "int", "required": False},
]})
keys = st.text(max_size=30).map(lambda s: unicodedata.normalize("NFC", s))
blobs = st.one_of(st.binary(max_size=30), st.binary(min_size=250, max_size=300), st.binary(min_size=65530, max_size=65540))


@SETTINGS
@given(st.dictionaries(keys, keys, max_size=6), st.dictionaries(keys, blobs, max_size=4), st.data())
def test_inline_map_entries_read_as_entry_by_entry_does(texts: dict[str, str], blobs_: dict[str, bytes],
                                                         data: st.DataObject) -> None:
    record: dict[str, Any] = {"texts": texts}
    if blobs_:
        record["blobs"] = blobs_
    body = bytearray(lodec.encode_record(MAPS, record).body)
    limits = Limits(max_text_bytes=data.draw(st.sampled_from([DEFAULT_LIMITS.max_text_bytes, 20, 300])))
    for _ in range(data.draw(st.integers(min_value=0, max_value=2))):
        i = data.draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "replace"]))
        if op == "flip" and body:
            body[i] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif op == "insert":
            body.insert(i, data.draw(st.sampled_from([0x00, 0x18, 0x40, 0x58, 0x59, 0x60, 0x78, 0x7F, 0xC3, 0xFF])))
        elif op == "delete" and body:
            del body[i]
        elif body:
            body[i] = data.draw(st.integers(min_value=0, max_value=255))
    vein = header(MAPS) + bytes(body)
    inline = _strict(vein, MAPS, limits, True)
    assert inline == _strict(vein, MAPS, limits, False), vein.hex()
    assert outcome(decode_vein, vein, MAPS, limits) == inline


@pytest.mark.parametrize("tail", [
    b"\x78\x05abcde\x60",  # a key head not in shortest form
    b"\x61b\x79\x00\x05hello",  # a value length not in shortest form
    b"\x61a\x61x",  # a duplicate key
    b"\x60\x61x",  # a key before the previous one
    b"\x61b\x7a\x00\x00\x00\x01",  # a value longer than what is left
    b"\x61b\x63e\xcc\x81",  # a value not in NFC
    b"\x63e\xcc\x81\x61x",  # a key not in NFC
    b"\x61b\xc0\x61x",  # a tag
])
def test_a_bad_entry_after_a_good_one_is_refused_by_the_entry_by_entry_reading(tail: bytes) -> None:
    body = b"\xa1\x01\xa2\x61a\x61x" + tail
    vein = header(MAPS) + body
    refused = _strict(vein, MAPS, DEFAULT_LIMITS, True)
    assert refused[0] == "refused" and refused == _strict(vein, MAPS, DEFAULT_LIMITS, False)


def test_the_first_records_of_a_shape_are_left_to_the_strict_decoder_then_the_checker_is_generated() -> None:
    schema = schema_from_json({"schema": "lode", "version": 1, "name": "Once", "fields": [
        {"id": 1, "name": "a", "type": "string", "required": True}]})
    body = lodec.encode_record(schema, {"a": "x"}).body
    for _ in range(_GENERATE_AT - 1):
        assert _fast_decode(body, schema, DEFAULT_LIMITS) is None and (1,) not in _compiled(schema).shapes
    assert _fast_decode(body, schema, DEFAULT_LIMITS) == {"a": "x"} and (1,) in _compiled(schema).shapes


# ------------------------------------------------------------ the generated record check (compile, manifests)


def _validates(schema: lodec.Schema, record: Any, limits: Limits) -> tuple[Any, ...]:
    from lodec.format.codec import validate_record

    try:
        validate_record(schema, record, file="x", limits=limits)
    except LodecError as exc:
        return ("refused", type(exc).__name__, exc.code, exc.location, exc.message)
    return ("accepted",)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64), st.text(max_size=6),
              st.binary(max_size=4), st.floats(allow_nan=False)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


@SETTINGS
@given(schema_and_record(), st.data())
def test_generated_record_check_agrees_with_validate_record(pair: tuple[lodec.Schema, dict[str, Any]],
                                                            data: st.DataObject) -> None:
    from lodec.format.codec import _compiled as compiled

    schema, record = pair
    record = dict(record)
    for _ in range(data.draw(st.integers(min_value=0, max_value=2))):  # break it: other types, unknown or missing fields
        op = data.draw(st.sampled_from(["replace", "drop", "add", "non_nfc", "surrogate"]))
        name = data.draw(st.sampled_from([f.name for f in schema.fields]))
        if op == "replace":
            record[name] = data.draw(json_values)
        elif op == "drop":
            record.pop(name, None)
        elif op == "add":
            record[data.draw(st.text(max_size=5))] = data.draw(json_values)
        elif op == "non_nfc":
            record[name] = "e\u0301"
        else:
            record[name] = ["\ud800"] if data.draw(st.booleans()) else {"\ud800": "x"}
    limits = Limits(max_text_bytes=data.draw(st.sampled_from([DEFAULT_LIMITS.max_text_bytes, 3])),
                    max_entries=data.draw(st.sampled_from([DEFAULT_LIMITS.max_entries, 2])))
    generic = _validates_generic(schema, record, limits)
    compiled(schema).valid(record, limits.max_text_bytes, limits.max_entries)  # the first call only counts
    fast = compiled(schema).valid(record, limits.max_text_bytes, limits.max_entries)
    if fast:
        assert generic == ("accepted",)
    assert _validates(schema, record, limits) == generic
    if generic == ("accepted",):
        assert fast  # records of exact JSON types take the generated check


EVERY_TYPE = schema_from_json({"schema": "lode", "version": 1, "name": "EveryType", "fields": [
    {"id": 1, "name": "n", "type": "int", "required": True},
    {"id": 2, "name": "flag", "type": "bool", "required": False},
    {"id": 3, "name": "blob", "type": "bytes", "required": False},
    {"id": 4, "name": "ns", "type": "int[]", "required": False},
    {"id": 5, "name": "blobs", "type": "map<string,bytes>", "required": False},
]})


@pytest.mark.parametrize("record", [
    {"n": 2**63}, {"n": -(2**63) - 1}, {"n": True}, {"n": 1, "flag": 1}, {"n": 1, "flag": None},
    {"n": 1, "blob": b"four"}, {"n": 1, "blob": "abc"}, {"n": 1, "ns": [1, 2**63]}, {"n": 1, "ns": [False]},
    {"n": 1, "blobs": {"k": b"four"}}, {"n": 1, "blobs": {"k": "abc"}}, {"n": 1, "ns": [1, 2, 3]},
], ids=repr)
def test_generated_record_check_refuses_what_validate_record_refuses(record: dict[str, Any]) -> None:
    from lodec.format.codec import _compiled as compiled

    limits = Limits(max_text_bytes=3, max_entries=2)
    generic = _validates_generic(EVERY_TYPE, record, limits)
    assert generic[0] == "refused"
    compiled(EVERY_TYPE).valid({"n": 1}, 3, 2)  # the first call only counts
    assert not compiled(EVERY_TYPE).valid(record, limits.max_text_bytes, limits.max_entries)
    assert _validates(EVERY_TYPE, record, limits) == generic


def _validates_generic(schema: lodec.Schema, record: Any, limits: Limits) -> tuple[Any, ...]:
    from lodec.format import codec

    class Never:
        def valid(self, *args: Any) -> bool:
            return False

    saved = codec._compiled
    codec._compiled = lambda s: Never()  # type: ignore[assignment,return-value]
    try:
        return _validates(schema, record, limits)
    finally:
        codec._compiled = saved


# ------------------------------------------------------------ names and pins checked all at once


name_like = st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,130}", fullmatch=True), st.text(max_size=8),
                      st.sampled_from(["a\nb", "a\n", "\n", "", ".x", "x" * 128, "x" * 129, "é"]))
pin_like = st.one_of(st.from_regex(r"blake3:[0-9a-f]{64}", fullmatch=True), st.text(max_size=75),
                     st.sampled_from(["blake3:" + "A" * 64, "blake3:" + "0" * 63, "blake3:" + "0" * 65,
                                      "blake3:" + "0" * 63 + "blake3:" + "0" * 8]))


@SETTINGS
@given(st.lists(name_like, max_size=40), st.lists(pin_like, max_size=40))
def test_names_and_pins_checked_at_once_agree_with_one_by_one(names: list[str], pins: list[str]) -> None:
    from lodec.format.fingerprint import is_fingerprint
    from lodec.names import all_safe_names, is_safe_name
    from lodec.stack.verify import _all_fingerprints

    for n in (names, names * 3):  # below and above the size where the one-pass check takes over
        assert all_safe_names(n) == all(map(is_safe_name, n))
    for p in (pins, pins * 3):
        assert _all_fingerprints(p) == all(map(is_fingerprint, p))


def test_a_process_that_reads_many_schemas_keeps_a_bounded_number_of_decoders() -> None:
    from lodec.format import codec

    for i in range(3 * codec._MAX_COMPILED):  # as a worker verifying many packs parses each pack's schemas
        schema = schema_from_json({"schema": "lode", "version": 1, "name": f"S{i}", "fields": [
            {"id": 1, "name": "a", "type": "string", "required": True}]})
        vein = lodec.encode_record(schema, {"a": str(i)})
        for _ in range(_GENERATE_AT):
            assert decode_vein(vein.data, schema).record == {"a": str(i)}
    assert len(codec._COMPILED) <= codec._MAX_COMPILED
