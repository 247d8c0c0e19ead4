"""The vein codec: golden vectors, determinism, and every non-canonical form refused."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lodec
from lodec.format import cbor
from lodec.format.codec import HEADER_SIZE, decode_body, decode_vein, encode_record, header
from lodec.format.compiler import compile_source
from lodec.errors import DecodeError, LimitExceeded, SourceError
from lodec.limits import DEFAULT_LIMITS, Limits

DEFAULT_TEXT = DEFAULT_LIMITS.max_text_bytes

from .conftest import ROOT

GOLDEN = json.loads((ROOT / "tests" / "golden" / "seed-vectors.json").read_text())
STEP = lodec.skill_step_schema()


# ------------------------------------------------------------ golden vectors


@pytest.mark.parametrize("name", ["lint", "static-analysis", "ai-review"])
def test_golden_vector_bytes_and_fingerprint(name: str) -> None:
    vector = GOLDEN["steps"][name]
    vein = lodec.compile_file(ROOT / vector["source"], STEP)
    assert vein.data.hex() == vector["hex"]
    assert vein.fingerprint == vector["fingerprint"]
    assert vein.size == vector["bytes"]


def test_golden_schema_digests() -> None:
    assert lodec.format_fingerprint(STEP.digest) == GOLDEN["schema"]["skill-step-v1"]
    assert lodec.format_fingerprint(lodec.skill_stack_schema().digest) == GOLDEN["schema"]["skill-stack-v1"]


def test_golden_manifest_digest() -> None:
    manifest = json.loads((ROOT / GOLDEN["manifest"]["source"]).read_text())
    assert lodec.manifest_vein(manifest).fingerprint == GOLDEN["manifest"]["lockedDigest"]
    del manifest["skillDigests"]  # a v1 manifest: its digest did not change when v2 arrived
    assert lodec.manifest_vein(manifest).fingerprint == GOLDEN["manifest"]["digest"]


def test_lint_step_is_at_most_92_bytes_header_included() -> None:
    assert lodec.compile_file(ROOT / "steps" / "lint-step.json", STEP).size <= 92


def test_fingerprint_is_blake3_derive_key_over_schema_digest_and_body() -> None:
    from blake3 import blake3

    vein = lodec.compile_file(ROOT / "steps" / "lint-step.json", STEP)
    expected = blake3(STEP.digest + vein.body, derive_key_context="lodec 2026-11-21 vein v1 record fingerprint")
    assert vein.fingerprint == "blake3:" + expected.hexdigest()


# --------------------------------------------------------------- determinism


def test_compiling_twice_gives_identical_bytes() -> None:
    src = (ROOT / "steps" / "review-step.json").read_bytes()
    assert compile_source(src, STEP).data == compile_source(src, STEP).data


def test_key_order_and_whitespace_change_nothing() -> None:
    original = json.loads((ROOT / "steps" / "review-step.json").read_text())
    reordered = dict(reversed(list(original.items())))
    reordered["inputs"] = dict(reversed(list(original["inputs"].items())))
    compact = json.dumps(reordered, separators=(",", ":")).encode()
    spaced = json.dumps(reordered, indent=7).encode().replace(b"\n", b"\r\n\t ")
    a = compile_source((ROOT / "steps" / "review-step.json").read_bytes(), STEP)
    assert compile_source(compact, STEP).data == a.data
    assert compile_source(spaced, STEP).data == a.data


def test_empty_optional_fields_are_omitted() -> None:
    with_empty = compile_source(b'{"stepName":"x","skillRef":"s","dependsOn":[],"inputs":{},"outputs":[],"fingerprint":""}', STEP)
    without = compile_source(b'{"stepName":"x","skillRef":"s"}', STEP)
    assert with_empty.data == without.data
    assert without.body == cbor.encode({1: "x", 2: "s"})


def test_map_keys_sorted_bytewise_by_encoding() -> None:
    vein = compile_source('{"stepName":"x","skillRef":"s","inputs":{"b":"1","aa":"2","é":"3","Z":"4"}}'.encode(), STEP)
    assert vein.record["inputs"] == {"b": "1", "aa": "2", "é": "3", "Z": "4"}
    body = vein.body
    # "Z" (61 5a) < "b" (61 62) < "aa" (62 61 61) < "é" (62 c3 a9)
    positions = [body.index(k) for k in (b"\x61Z", b"\x61b", b"\x62aa", b"\x62\xc3\xa9")]
    assert positions == sorted(positions)


# ------------------------------------------------------- self-fingerprint


def test_self_fingerprint_field_is_left_out_of_fingerprinted_bytes() -> None:
    plain = compile_source(b'{"stepName":"x","skillRef":"s"}', STEP)
    pinned = compile_source(
        json.dumps({"stepName": "x", "skillRef": "s", "fingerprint": plain.fingerprint}).encode(), STEP
    )
    assert pinned.fingerprint == plain.fingerprint
    assert pinned.data != plain.data
    assert decode_vein(pinned.data, STEP).fingerprint == plain.fingerprint


def test_wrong_self_fingerprint_refused_at_compile() -> None:
    wrong = "blake3:" + "0" * 64
    with pytest.raises(SourceError) as info:
        compile_source(json.dumps({"stepName": "x", "skillRef": "s", "fingerprint": wrong}).encode(), STEP, file="x.json")
    assert info.value.code == "fingerprint_mismatch" and info.value.location == "/fingerprint"


def test_wrong_self_fingerprint_refused_at_decode() -> None:
    body = cbor.encode({1: "x", 2: "s", 6: "blake3:" + "0" * 64})
    with pytest.raises(DecodeError) as info:
        decode_vein(header(STEP) + body, STEP)
    assert info.value.code == "fingerprint_mismatch"


# ------------------------------------------------- non-canonical refusals

LINT = lodec.compile_file(ROOT / "steps" / "lint-step.json", STEP)


def refuse(body: bytes, code: str) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_vein(header(STEP) + body, STEP, file="t.vein")
    assert info.value.code == code, str(info.value)
    assert info.value.location and info.value.location.startswith(("byte", "field"))
    return info.value


def test_lint_body_is_canonical_reference() -> None:
    assert decode_vein(header(STEP) + LINT.body, STEP).record["stepName"] == "lint"


def test_non_shortest_integer_refused() -> None:
    refuse(b"\xa2\x18\x01\x61x\x02\x61s", "non_canonical")  # key 1 as 0x18 0x01


def test_non_shortest_length_refused() -> None:
    refuse(b"\xa2\x01\x78\x01x\x02\x61s", "non_canonical")  # "x" with a 1-byte length argument


def test_non_shortest_map_count_refused() -> None:
    refuse(b"\xb8\x02\x01\x61x\x02\x61s", "non_canonical")


def test_unsorted_keys_refused() -> None:
    refuse(b"\xa2\x02\x61s\x01\x61x", "unsorted_keys")


def test_duplicate_field_refused() -> None:
    refuse(b"\xa3\x01\x61x\x01\x61y\x02\x61s", "duplicate_key")


def test_unsorted_map_entries_refused() -> None:
    refuse(b"\xa3\x01\x61x\x02\x61s\x04\xa2\x61b\x611\x61a\x612", "unsorted_keys")


def test_duplicate_map_entries_refused() -> None:
    refuse(b"\xa3\x01\x61x\x02\x61s\x04\xa2\x61a\x611\x61a\x612", "duplicate_key")


def test_indefinite_length_array_refused() -> None:
    refuse(b"\xa3\x01\x61x\x02\x61s\x03\x9f\x61a\xff", "indefinite_length")


def test_indefinite_length_text_refused() -> None:
    refuse(b"\xa2\x01\x7f\x61x\xff\x02\x61s", "indefinite_length")


def test_indefinite_length_map_refused() -> None:
    refuse(b"\xbf\x01\x61x\x02\x61s\xff", "indefinite_length")


def test_tag_refused() -> None:
    refuse(b"\xa2\x01\xd8\x20\x61x\x02\x61s", "tag_not_allowed")


def test_shared_reference_tags_refused() -> None:
    # tag 28 (shareable) + tag 29 (sharedref): decodes "the same" in cbor2
    refuse(b"\xa4\x01\x61x\x02\x61s\x03\xd8\x1c\x81\x63abc\x05\xd8\x1d\x00", "tag_not_allowed")


def test_float_refused() -> None:
    refuse(b"\xa2\x01\x61x\x02\xf9\x3c\x00", "float_or_simple_not_allowed")


def test_null_refused() -> None:
    refuse(b"\xa2\x01\x61x\x02\xf6", "float_or_simple_not_allowed")


def test_trailing_bytes_refused() -> None:
    refuse(LINT.body + b"\x00", "trailing_bytes")


def test_unknown_field_id_refused() -> None:
    refuse(b"\xa3\x01\x61x\x02\x61s\x07\x61z", "unknown_field")


def test_wrong_type_refused() -> None:
    refuse(b"\xa2\x01\x61x\x02\x05", "wrong_type")
    refuse(b"\xa2\x01\x41x\x02\x61s", "wrong_type")  # bytes where text is required
    refuse(b"\xa3\x01\x61x\x02\x61s\x03\x61a", "wrong_type")  # text where an array is required


def test_missing_required_field_refused() -> None:
    refuse(b"\xa1\x01\x61x", "missing_field")


def test_non_nfc_text_refused() -> None:
    decomposed = unicodedata.normalize("NFD", "é").encode()
    refuse(b"\xa2\x01\x61x\x02" + bytes([0x60 + len(decomposed)]) + decomposed, "not_nfc")


def test_invalid_utf8_refused() -> None:
    refuse(b"\xa2\x01\x61\xff\x02\x61s", "invalid_text")


def test_empty_optional_present_refused() -> None:
    refuse(b"\xa3\x01\x61x\x02\x61s\x03\x80", "empty_optional")


def test_body_not_a_map_refused() -> None:
    refuse(b"\x80", "wrong_type")


def test_truncated_body_refused() -> None:
    for cut in range(len(LINT.body)):
        with pytest.raises(DecodeError):
            decode_vein(header(STEP) + LINT.body[:cut], STEP)


def test_bad_header_refused() -> None:
    for data, code in [
        (b"VEI", "truncated"),
        (b"NOPE" + LINT.data[4:], "bad_magic"),
        (b"VEIN\x02" + LINT.data[5:], "unsupported_version"),
        (LINT.data[:5] + lodec.skill_stack_schema().schema_id + LINT.data[13:], "schema_mismatch"),
    ]:
        with pytest.raises(DecodeError) as info:
            decode_vein(data, STEP)
        assert info.value.code == code


# -------------------------------------------------------------------- limits


def test_oversized_vein_refused_before_decoding() -> None:
    with pytest.raises(LimitExceeded, match="limit is 50"):
        decode_vein(LINT.data, STEP, limits=Limits(max_file_bytes=50))


def test_declared_string_length_over_limit_refused_before_allocation() -> None:
    body = b"\xa2\x01\x7a\x7f\xff\xff\xff"  # text of 2 GiB declared in a 7-byte body
    with pytest.raises(LimitExceeded):
        decode_body(body, STEP)


def test_declared_count_over_remaining_bytes_refused() -> None:
    with pytest.raises(lodec.LodecError) as info:
        decode_body(b"\xa3\x01\x61x\x02\x61s\x03\x9a\x00\xff\xff\xff", STEP)
    # 0x9a: array of 16M entries; over the limit or over what remains, never allocated
    assert info.value.code in ("truncated", "limit_exceeded")


def test_declared_count_within_limit_but_beyond_data_refused() -> None:
    with pytest.raises(DecodeError) as info:
        decode_body(b"\xa3\x01\x61x\x02\x61s\x03\x99\xff\xff", STEP)  # 65535 entries, 0 bytes left
    assert info.value.code == "truncated"


def test_entry_limit_enforced() -> None:
    vein = compile_source(b'{"stepName":"x","skillRef":"s","outputs":["a","b","c"]}', STEP)
    with pytest.raises(LimitExceeded):
        decode_vein(vein.data, STEP, limits=Limits(max_entries=2))
    with pytest.raises(LimitExceeded):
        compile_source(b'{"stepName":"x","skillRef":"s","outputs":["a","b","c"]}', STEP, limits=Limits(max_entries=2))


def test_text_limit_enforced_on_both_paths() -> None:
    vein = compile_source(b'{"stepName":"x","skillRef":"' + b"s" * 100 + b'"}', STEP)
    with pytest.raises(LimitExceeded):
        decode_vein(vein.data, STEP, limits=Limits(max_text_bytes=99))
    assert decode_vein(vein.data, STEP, limits=Limits(max_text_bytes=100)).record["skillRef"] == "s" * 100


# ---------------------------------------------------------- source mapping


@pytest.mark.parametrize(
    ("source", "code", "location"),
    [
        (b'{"stepName":"x","skillRef":"s","extra":1}', "unknown_field", "/extra"),
        (b'{"stepName":"x"}', "missing_field", "/skillRef"),
        (b'{"stepName":"x","skillRef":5}', "wrong_type", "/skillRef"),
        (b'{"stepName":"x","skillRef":"s","dependsOn":["a",3]}', "wrong_type", "/dependsOn/1"),
        (b'{"stepName":"x","skillRef":"s","inputs":{"k":true}}', "wrong_type", "/inputs/k"),
        (b'{"stepName":"x","skillRef":"s","inputs":{"k":1.5}}', "wrong_type", "/inputs/k"),
        (b'{"stepName":"x","skillRef":"s","inputs":{"k":null}}', "wrong_type", "/inputs/k"),
        ('{"stepName":"x","skillRef":"e\u0301"}'.encode(), "not_nfc", "/skillRef"),
        (b'{"stepName":"../x","skillRef":"s"}', "unsafe_name", "/stepName"),
        (b'[1]', "wrong_type", "/"),
    ],
)
def test_source_errors_give_json_pointer(source: bytes, code: str, location: str) -> None:
    with pytest.raises(lodec.LodecError) as info:
        compile_source(source, STEP, file="s.json")
    assert info.value.code == code
    assert info.value.location == location


def test_bytes_fields_use_canonical_base64() -> None:
    schema = lodec.parse_schema(b'{"schema":"lode","version":1,"name":"B","fields":[{"id":1,"name":"b","type":"bytes","required":true}]}')
    assert compile_source(b'{"b":"AP8="}', schema).record["b"] == b"\x00\xff"
    for bad in (b'{"b":"AP8"}', b'{"b":"AP9="}', b'{"b":"A P8="}'):
        with pytest.raises(SourceError) as info:
            compile_source(bad, schema)
        assert info.value.code == "bad_base64"


def test_encode_record_api_validates() -> None:
    with pytest.raises(SourceError):
        encode_record(STEP, {"stepName": "x", "skillRef": "s", "outputs": "not-a-list"})
    assert encode_record(STEP, {"stepName": "x", "skillRef": "s"}).data[:HEADER_SIZE] == header(STEP)


def test_large_hostile_body_takes_strict_path_with_bounded_memory() -> None:
    """An array of 1M empty maps: cbor2 would build ~1M dicts; the strict decoder stops at the first item."""
    import tracemalloc

    n = 1_000_000
    body = b"\xa3\x01\x61x\x02\x61s\x03\x9a" + n.to_bytes(4, "big") + b"\xa0" * n
    tracemalloc.start()
    with pytest.raises(DecodeError) as info:
        decode_vein(header(STEP) + body, STEP)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert info.value.code == "wrong_type"
    assert peak < 8 * len(body)  # a copy or two of the input, not a Python object per entry


def test_encoder_refuses_vein_over_size_limit() -> None:
    record = {"stepName": "x", "skillRef": "s", "outputs": ["a" * 100, "b" * 100]}
    with pytest.raises(LimitExceeded):
        encode_record(STEP, record, limits=Limits(max_file_bytes=150))


def test_compile_honours_looser_limits() -> None:
    big = b'{"stepName":"x","skillRef":"' + b"s" * (DEFAULT_TEXT + 1) + b'"}'
    with pytest.raises(LimitExceeded):
        compile_source(big, STEP)
    loose = Limits(max_text_bytes=2 * DEFAULT_TEXT)
    assert compile_source(big, STEP, limits=loose).record["skillRef"] == "s" * (DEFAULT_TEXT + 1)


def test_required_fingerprint_field_is_not_a_self_fingerprint() -> None:
    schema = lodec.parse_schema(
        b'{"schema":"lode","version":1,"name":"F","fields":[{"id":1,"name":"fingerprint","type":"string","required":true}]}'
    )
    assert schema.self_fingerprint is None
    assert encode_record(schema, {"fingerprint": "anything"}).record == {"fingerprint": "anything"}



@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(alphabet="ABCDEFabcdef0123456789+/=\n -_é", max_size=16),
                 st.binary(max_size=12).map(lambda b: __import__("base64").b64encode(b).decode())))
def test_bytes_field_base64_agrees_with_the_base64_module(text: str) -> None:
    # codec decodes base64 with binascii (start-up); it must accept exactly what base64.b64decode(validate=True)
    # accepts and re-encodes to the same text (canonical form), and nothing else.
    import base64
    import binascii

    from lodec.format.codec import _b64
    from lodec.errors import SourceError

    try:
        raw = base64.b64decode(text, validate=True)
        expected: bytes | None = raw if base64.b64encode(raw).decode("ascii") == text else None
    except (binascii.Error, ValueError):
        expected = None
    try:
        got: bytes | None = _b64(text, ["f"], "<t>")
    except SourceError as exc:
        assert exc.code == "bad_base64"
        got = None
    assert got == expected
