"""More properties of the vein format under hostile bytes (the robustness half of the hardening issue).

``tests/test_properties.py`` covers the encode/decode round trip on random
schemas, single mutations of valid bodies and short arbitrary bytes against
SkillStep. Here: arbitrary and structurally plausible bytes against *random*
schemas, injectivity stated directly (two different byte strings never
decode to the same record), and exhaustive truncation and bit-flip sweeps of
the golden veins and of the seed manifest in both its JSON and its compiled
(vein) form.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lodec
from lodec.format.codec import HEADER_SIZE, decode_vein, header
from lodec.errors import DecodeError, LodecError
from lodec.stack.verify import verify_stack

from .test_properties import schema_and_record, schemas

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "golden" / "seed-vectors.json").read_text())
GOLDEN_VEINS = {name: bytes.fromhex(v["hex"]) for name, v in GOLDEN["steps"].items()}
GOLDEN_PINS = {name: v["fingerprint"] for name, v in GOLDEN["steps"].items()}
STEP = lodec.skill_step_schema()

# LODEC_PROPERTY_EXAMPLES=5000 for a longer local run; CI keeps the default.
SETTINGS = settings(
    max_examples=int(os.environ.get("LODEC_PROPERTY_EXAMPLES", "200")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# CBOR heads a hostile writer would reach for: every major type, every
# additional-information class (short, 1/2/4/8-byte, reserved, indefinite),
# breaks, tags, floats and simple values.
CBOR_TOKENS = st.sampled_from(
    [
        b"\x00", b"\x01", b"\x06", b"\x17", b"\x18\x18", b"\x18\x01", b"\x19\x01\x00", b"\x1a\xff\xff\xff\xff",
        b"\x1b\x80\x00\x00\x00\x00\x00\x00\x00", b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff", b"\x20", b"\x3b\x7f\xff\xff\xff\xff\xff\xff\xff",
        b"\x3b\xff\xff\xff\xff\xff\xff\xff\xff", b"\x40", b"\x41\x00", b"\x5f", b"\x5a\xff\xff\xff\xff",
        b"\x60", b"\x61a", b"\x61\xff", b"\x62\xc3\xa9", b"\x63e\xcc\x81", b"\x7f", b"\x7b\x00\x00\x01\x00\x00\x00\x00\x00",
        b"\x80", b"\x81", b"\x82", b"\x9f", b"\x9a\x00\x01\x00\x00", b"\xa0", b"\xa1", b"\xa2", b"\xa5", b"\xbf",
        b"\xb8\x02", b"\xc0", b"\xd8\x1c", b"\xd9\xd9\xf7", b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf9\x3c\x00",
        b"\xfb\x00\x00\x00\x00\x00\x00\x00\x00", b"\xfc", b"\xff", b"\x1c", b"\x5c", b"\x9d",
    ]
)


def _accepted_or_refused(data: bytes, schema: lodec.Schema) -> lodec.Vein | None:
    """Decode; ``None`` when refused. Only lodec's own errors may escape ``decode_vein``:
    an IndexError, KeyError, RecursionError, MemoryError, UnicodeDecodeError or a
    cbor2 ValueError propagates and fails the test."""
    try:
        return decode_vein(data, schema)
    except LodecError as exc:
        assert exc.code and exc.code != "error"
        assert "\n" not in str(exc)
        return None


# ------------------------------------------------------------ random schemas


@SETTINGS
@given(schemas(), st.binary(max_size=96))
def test_arbitrary_bytes_against_random_schemas_raise_only_lodec_errors(schema: lodec.Schema, blob: bytes) -> None:
    for data in (blob, header(schema) + blob):
        vein = _accepted_or_refused(data, schema)
        if vein is not None:  # accepted: it must be the one encoding of its record
            assert lodec.encode_record(schema, vein.record).data == data


@SETTINGS
@given(schemas(), st.lists(CBOR_TOKENS, max_size=40))
def test_structural_garbage_against_random_schemas_raise_only_lodec_errors(
    schema: lodec.Schema, tokens: list[bytes]
) -> None:
    # Start with a plausible record-map head so the body decoder goes deep.
    for prefix in (b"", bytes([0xA0 + min(len(schema.fields), 23)])):
        data = header(schema) + prefix + b"".join(tokens)
        vein = _accepted_or_refused(data, schema)
        if vein is not None:
            assert lodec.encode_record(schema, vein.record).data == data


@SETTINGS
@given(schema_and_record(), st.data())
def test_no_two_byte_strings_decode_to_the_same_record(
    pair: tuple[lodec.Schema, dict[str, Any]], data: st.DataObject
) -> None:
    """Injectivity, stated directly: decode(a) == decode(b) implies a == b.

    ``a`` is a valid vein; ``b`` is ``a`` after 1-4 random edits (flip,
    insert, delete, replace, splice a CBOR token). Whenever ``b`` is accepted
    and is not ``a``, its record must differ from ``a``'s, and so must its
    fingerprint.
    """
    schema, record = pair
    a = lodec.encode_record(schema, record)
    b = bytearray(a.data)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "replace", "token"]))
        i = data.draw(st.integers(min_value=HEADER_SIZE, max_value=max(HEADER_SIZE, len(b) - 1)))
        if op == "flip" and i < len(b):
            b[i] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif op == "insert":
            b.insert(i, data.draw(st.integers(min_value=0, max_value=255)))
        elif op == "delete" and i < len(b):
            del b[i]
        elif op == "replace" and i < len(b):
            b[i] = data.draw(st.integers(min_value=0, max_value=255))
        elif op == "token":
            b[i:i] = data.draw(CBOR_TOKENS)
    other = _accepted_or_refused(bytes(b), schema)
    if other is None:
        return
    if bytes(b) == a.data:
        assert other.record == decode_vein(a.data, schema).record
    else:
        assert other.record != decode_vein(a.data, schema).record
        assert other.fingerprint != a.fingerprint
    assert lodec.encode_record(schema, other.record).data == bytes(b)


# ------------------------------------------------------------- golden sweeps


def test_truncating_each_golden_vein_at_every_byte_is_refused_as_truncated() -> None:
    for name, data in GOLDEN_VEINS.items():
        assert decode_vein(data, STEP).fingerprint == GOLDEN_PINS[name]
        for n in range(len(data)):
            try:
                decode_vein(data[:n], STEP)
            except DecodeError as exc:
                assert exc.code == "truncated", (name, n, exc)
            else:
                raise AssertionError(f"{name} truncated to {n} bytes was accepted")


def test_truncating_a_golden_step_at_every_byte_fails_stack_verification() -> None:
    manifest = (ROOT / "stacks" / "code-review" / "code-review-stack.json").read_bytes()
    assert verify_stack(manifest, GOLDEN_VEINS.get).ok
    data = GOLDEN_VEINS["ai-review"]
    for n in range(len(data)):
        report = verify_stack(manifest, {**GOLDEN_VEINS, "ai-review": data[:n]}.get)
        assert not report.ok and report.verified is None
        assert [(p.code, p.step) for p in report.problems] == [("step_malformed", "ai-review")], n
        assert "[truncated]" in report.problems[0].message


def _flips(data: bytes):  # type: ignore[no-untyped-def]
    for i in range(len(data)):
        for bit in range(8):
            yield i, bit, data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]


def test_every_bit_flip_of_every_golden_vein_is_refused_against_its_pin() -> None:
    """A flip either fails to decode, or decodes (canonically) to another record whose fingerprint misses the pin."""
    decoded_other = 0
    for name, data in GOLDEN_VEINS.items():
        for i, bit, flipped in _flips(data):
            vein = _accepted_or_refused(flipped, STEP)
            if vein is None:
                continue
            decoded_other += 1
            assert vein.fingerprint != GOLDEN_PINS[name], (name, i, bit)
            assert vein.record != decode_vein(data, STEP).record
            assert lodec.encode_record(STEP, vein.record).data == flipped
    assert decoded_other > 0  # flips inside text decode to other text: the pin is what refuses them


def _seed_manifest() -> bytes:
    return (ROOT / "stacks" / "code-review" / "code-review-stack.json").read_bytes()


def test_every_bit_flip_of_the_manifest_json_is_refused_or_changes_its_digest() -> None:
    """Unsigned, nothing pins the manifest itself: a flip must then be refused or yield another manifest digest."""
    manifest = _seed_manifest()
    original = verify_stack(manifest, GOLDEN_VEINS.get)
    assert original.ok
    refused = 0
    for i, bit, flipped in _flips(manifest):
        report = verify_stack(flipped, GOLDEN_VEINS.get)
        if report.ok:
            assert report.digest != original.digest, (i, bit, flipped[max(0, i - 20) : i + 20])
        else:
            refused += 1
            assert report.verified is None and all(p.code for p in report.problems)
    assert refused > 0.8 * 8 * len(manifest)  # 84%: the rest edit name, version, description or metadata


def test_every_bit_flip_of_the_signed_manifest_json_is_refused() -> None:
    from lodec.sign.keys import generate_key
    from lodec.sign.policy import policy_from_keys
    from lodec.sign.signer import sign_stack
    from lodec.sign.trust import verify_signed_stack

    manifest = _seed_manifest()
    stack = verify_stack(manifest, GOLDEN_VEINS.get).require()
    key = generate_key()
    signed_at = datetime(2026, 11, 21, tzinfo=timezone.utc)
    envelope, _ = sign_stack(stack, key, now=signed_at, expires=datetime(2027, 1, 1, tzinfo=timezone.utc))
    envelope_bytes = envelope.to_json()
    policy, now = policy_from_keys([key.public]), datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert verify_signed_stack(manifest, envelope_bytes, GOLDEN_VEINS.get, policy=policy, now=now).ok
    codes: set[str] = set()
    for i, bit, flipped in _flips(manifest):
        report = verify_signed_stack(flipped, envelope_bytes, GOLDEN_VEINS.get, policy=policy, now=now)
        assert not report.ok and report.verified is None, (i, bit)
        codes.update(p.code for p in report.problems)
    assert "digest_mismatch" in codes


def test_every_bit_flip_of_the_compiled_manifest_is_refused_against_its_digest() -> None:
    manifest = _seed_manifest()
    stack = verify_stack(manifest, GOLDEN_VEINS.get).require()
    compiled = lodec.manifest_vein(stack.manifest)
    schema = compiled.schema
    assert compiled.fingerprint == stack.digest == GOLDEN["manifest"]["lockedDigest"]
    for i, bit, flipped in _flips(compiled.data):
        vein = _accepted_or_refused(flipped, schema)
        if vein is not None:
            assert vein.fingerprint != stack.digest, (i, bit)
            assert lodec.encode_record(schema, vein.record).data == flipped


def test_truncating_the_manifest_at_every_byte_is_refused() -> None:
    manifest = _seed_manifest()
    assert manifest.endswith(b"}\n")
    for n in range(len(manifest) - 1):  # dropping only the final newline leaves the same JSON document
        report = verify_stack(manifest[:n], GOLDEN_VEINS.get)
        assert [p.code for p in report.problems] == ["manifest_invalid"], n
    stack = verify_stack(manifest, GOLDEN_VEINS.get).require()
    compiled = lodec.manifest_vein(stack.manifest)
    for n in range(len(compiled.data)):
        try:
            decode_vein(compiled.data[:n], compiled.schema)
        except DecodeError as exc:
            assert exc.code == "truncated", (n, exc)
        else:
            raise AssertionError(f"compiled manifest truncated to {n} bytes was accepted")


# ------------------------------------------------- strict JSON pre-scan


JSON_LEAF = st.one_of(
    st.text(alphabet='[]{}"\\/abé\u2028\n', max_size=8), st.integers(-5, 5), st.booleans(), st.none()
)
JSON_DOCS = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=4), inner, max_size=4),
    max_leaves=20,
)


def _structure_brackets(value: Any) -> bytes:
    if isinstance(value, list):
        return b"[" + b"".join(_structure_brackets(v) for v in value) + b"]"
    if isinstance(value, dict):
        return b"{" + b"".join(_structure_brackets(v) for v in value.values()) + b"}"
    return b""


@SETTINGS
@given(JSON_DOCS, st.booleans(), st.booleans())
def test_strict_json_bracket_prescan_ignores_brackets_inside_strings(doc: Any, ascii_only: bool, indent: bool) -> None:
    """The depth and container limits are judged on the text before parsing; strings
    full of brackets, quotes and backslashes must not count."""
    from lodec.format.strictjson import _brackets

    text = json.dumps(doc, ensure_ascii=ascii_only, indent=2 if indent else None).encode()
    assert _brackets(text) == _structure_brackets(doc)


def test_sampled_bit_flips_of_a_signed_manifest_are_refused_by_lodec_verify(signed_stack: Path, keys: dict) -> None:
    """The same sweep through the CLI, sampled: ``lodec verify --key --key --threshold 2`` exits 1 with
    one line per problem and no traceback, for flips anywhere in the manifest file."""
    import random

    from .conftest import verify_signed

    original = signed_stack.read_bytes()
    trust = ("--key", f"{keys['alice']}.pub", "--key", f"{keys['bob']}.pub", "--threshold", "2")
    code, report, _ = verify_signed(signed_stack, *trust)
    assert code == 0 and report["ok"]
    rng = random.Random(20261121)
    codes: set[str] = set()
    for _ in range(48):
        i, bit = rng.randrange(len(original)), rng.randrange(8)
        signed_stack.write_bytes(original[:i] + bytes([original[i] ^ (1 << bit)]) + original[i + 1 :])
        code, report, err = verify_signed(signed_stack, *trust)
        assert code == 1 and not report["ok"] and report["problems"], (i, bit)
        assert "Traceback" not in err
        codes.update(p["code"] for p in report["problems"])
    signed_stack.write_bytes(original)
    assert "digest_mismatch" in codes
