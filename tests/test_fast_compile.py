"""The fast path of ``compile_source`` against the reference (``compile_source_reference``).

The fast path (the standard JSON reader without hooks, one check generated
per schema that also counts the record's strings, cbor2, a copied BLAKE3
state) must agree with the reference (strict JSON with duplicate-key,
non-finite, range and surrogate checks, ``record_from_json``,
``encode_record``) on every input: the same record (in the same order),
fingerprint and bytes, or the same error (class, code, location and
message). A fast path that accepts anything the reference refuses is a
defect. Inputs: random schemas and records written as JSON in random ways
(hypothesis), byte-level mutations of them, arbitrary bytes and JSON, the
repository's step sources and fuzz seeds, and hand-made attacks on what
parsing without hooks would let through (duplicate keys hidden by escapes,
quotes and backslashes that could fool the string count, NaN, 1e400, big
integers, lone surrogates).
"""

from __future__ import annotations

import json
import os
import random
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lodec
from lodec.errors import LodecError
from lodec.format.codec import record_to_json
from lodec.format.compiler import _fast_compiler, compile_source, compile_source_reference
from lodec.format.schema import builtin_schema, schema_from_json
from lodec.limits import DEFAULT_LIMITS, Limits

from .conftest import SEED_SOURCES
from .test_properties import SETTINGS, nfc_text, schema_and_record

ROOT = Path(__file__).resolve().parent.parent
STEP = builtin_schema("skill-step-v1")
STEP2 = builtin_schema("skill-step-v2")
SMALL_LIMITS = [
    Limits(max_text_bytes=4),
    Limits(max_entries=1),
    Limits(max_entries=2),
    Limits(max_json_depth=1),
    Limits(max_json_depth=2),
    Limits(max_file_bytes=60),
]


def outcome(compile: Any, data: bytes, schema: lodec.Schema, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, ...]:
    try:
        vein = compile(data, schema, file="src.json", limits=limits)
    except LodecError as exc:
        return ("refused", type(exc).__name__, exc.code, exc.file, exc.location, exc.message)
    # repr: the record's field and map-entry order too, not only its equality.
    return ("accepted", repr(vein.record), vein.fingerprint, vein.data)


def assert_agree(data: bytes, schema: lodec.Schema, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, ...]:
    """Compile ``data`` on both paths and assert the same outcome; return it.

    Also asks the generated fast path alone: whatever it answers, the reference accepts alike.
    """
    reference = outcome(compile_source_reference, data, schema, limits)
    assert outcome(compile_source, data, schema, limits) == reference, data
    fast = _fast_compiler(schema, limits)
    vein = fast(data) if fast is not None else None
    if vein is not None:
        assert ("accepted", repr(vein.record), vein.fingerprint, vein.data) == reference, data
    return reference


def fast_answers(data: bytes, schema: lodec.Schema, limits: Limits = DEFAULT_LIMITS) -> bool:
    fast = _fast_compiler(schema, limits)
    return fast is not None and fast(data) is not None


def mutations(data: bytes, limit: int = 64) -> list[bytes]:
    """Every one-byte deletion, some insertions, and bit flips (in the first ``limit`` bytes)."""
    out = []
    for i in range(min(len(data), limit)):
        out.append(data[:i] + data[i + 1:])
        for bit in (0, 1, 5, 7):
            out.append(data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:])
        for b in (b'"', b"\\", b",", b"{", b"]", b":", b" ", b"0", b"\xff"):
            out.append(data[:i] + b + data[i:])
    return out


def write_json(value: Any, rnd: random.Random) -> bytes:
    """``value`` as JSON text, with random indentation, key order and escapes (all valid, all the same value)."""
    def shuffle(v: Any) -> Any:
        if isinstance(v, dict):
            items = list(v.items())
            rnd.shuffle(items)
            return {k: shuffle(x) for k, x in items}
        if isinstance(v, list):
            return [shuffle(x) for x in v]
        return v

    text = json.dumps(shuffle(value), indent=rnd.choice([None, 0, 1, 4]), ensure_ascii=rnd.random() < 0.5)
    if rnd.random() < 0.3:
        text = text.replace("/", "\\/")  # a legal escape that changes no value
    return text.encode("utf-8")


# ------------------------------------------------------------ the fast path answers


@pytest.mark.parametrize("name", sorted(SEED_SOURCES))
def test_fast_path_answers_for_the_step_sources_with_the_reference_vein(name: str) -> None:
    data = SEED_SOURCES[name].read_bytes()
    assert fast_answers(data, STEP)
    assert assert_agree(data, STEP)[0] == "accepted"


def test_fast_path_answers_for_unicode_escapes_and_backslashes() -> None:
    """Escaped quotes, backslash runs and \\u escapes are strings like any other: the fast path takes them."""
    record = {"stepName": "a", "skillRef": 'gha:x"y\\', "inputs": {"k\\\\\"": "é\u00e9\\\"", "\\": "\""},
              "outputs": ["\\\\", "\"", "\u2603"], "dependsOn": []}
    for ensure_ascii in (True, False):
        data = json.dumps(record, ensure_ascii=ensure_ascii).encode()
        assert fast_answers(data, STEP), data
        assert assert_agree(data, STEP)[0] == "accepted"


# ------------------------------------------------------------ attacks


ATTACKS = [
    # Duplicate keys: the hook-less reader keeps the last; the string count must see the lost one.
    b'{"stepName": "a", "skillRef": "x", "stepName": "a"}',
    b'{"stepName": "a", "skillRef": "x", "stepName": "b"}',
    b'{"stepName": "a", "skillRef": "x", "st\\u0065pName": "a"}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"k": "v", "k": "v"}}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"k": "v", "\\u006b": "v"}}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"k\\"": "v", "k\\"": "w"}}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"\\\\": "v", "\\\\": "\\\\"}}',
    b'{"stepName": "a", "skillRef": "x\\\\", "outputs": [], "outputs": []}',
    b'{"stepName": "a", "skillRef": "x", "dependsOn": [], "dependsOn": ["b"]}',
    b'{"stepName": "a", "skillRef": "x", "dependsOn": ["b"], "dependsOn": []}',
    b'{"stepName": "a", "skillRef": "x", "fingerprint": "", "fingerprint": ""}',
    # Quotes and backslashes around a duplicate, to fool a naive quote count.
    b'{"stepName": "a\\"", "skillRef": "x", "inputs": {"a": "\\"", "a": "b"}}',
    b'{"stepName": "a", "skillRef": "\\\\\\"\\\\", "inputs": {"q": "1", "q": "2"}}',
    # What only the reference's hooks refuse.
    b'{"stepName": "a", "skillRef": NaN}',
    b'{"stepName": "a", "skillRef": "x", "outputs": [Infinity]}',
    b'{"stepName": "a", "skillRef": "x", "outputs": [-Infinity]}',
    b'{"stepName": "a", "skillRef": "x", "outputs": [1e400]}',
    b'{"stepName": "a", "skillRef": "x", "outputs": [9223372036854775808]}',
    b'{"stepName": "a", "skillRef": "x", "outputs": [1' + b"0" * 5000 + b"]}",
    b'{"stepName": "a", "skillRef": "\\ud800"}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"\\udfff": "v"}}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"k": "\\ud83d"}}',
    b'{"stepName": "a", "skillRef": "\\ud83d\\ude00"}',
    # Text and names.
    b'{"stepName": "a", "skillRef": "e\\u0301"}',
    b'{"stepName": "a", "skillRef": "e\xcc\x81"}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"e\xcc\x81": "v"}}',
    b'{"stepName": "../a", "skillRef": "x"}',
    b'{"stepName": "", "skillRef": "x"}',
    b'{"stepName": ".a", "skillRef": "x"}',
    b'{"stepName": "a\\u0000", "skillRef": "x"}',
    b'{"stepName": "\xd0\xb0", "skillRef": "x"}',
    # Types and shapes.
    b'{"stepName": "a", "skillRef": 1}',
    b'{"stepName": "a", "skillRef": true}',
    b'{"stepName": "a", "skillRef": null}',
    b'{"stepName": "a", "skillRef": "x", "outputs": "o"}',
    b'{"stepName": "a", "skillRef": "x", "outputs": [1]}',
    b'{"stepName": "a", "skillRef": "x", "outputs": [1.0]}',
    b'{"stepName": "a", "skillRef": "x", "outputs": [["o"]]}',
    b'{"stepName": "a", "skillRef": "x", "inputs": []}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"k": 1}}',
    b'{"stepName": "a", "skillRef": "x", "inputs": {"k": {"k": "v"}}}',
    b'{"stepName": "a", "skillRef": "x", "extra": "y"}',
    b'{"stepName": "a"}',
    b'["stepName", "a"]',
    b'"a"',
    b"{}",
    # Map order and the self-fingerprint.
    b'{"stepName": "a", "skillRef": "x", "inputs": {"bb": "1", "a": "2", "c": "3", "\xc3\xa9": "4", "z": "5"}}',
    b'{"stepName": "a", "skillRef": "x", "fingerprint": "blake3:' + b"0" * 64 + b'"}',
    b'{"stepName": "a", "skillRef": "x", "fingerprint": ""}',
    b'{"stepName": "a", "skillRef": "x", "fingerprint": 1}',
    # Bytes and syntax.
    b'\xef\xbb\xbf{"stepName": "a", "skillRef": "x"}',
    b'{"stepName": "a", "skillRef": "\xff"}',
    b'{"stepName": "a", "skillRef": "\xed\xa0\x80"}',
    b'{"stepName": "a", "skillRef": "x"} ',
    b' \t\r\n{"stepName": "a", "skillRef": "x"}\n',
    b'\x0c{"stepName": "a", "skillRef": "x"}',
    b'{"stepName": "a", "skillRef": "x"}\x0b',
    b'{"stepName": "a", "skillRef": "x"}{}',
    b'{"stepName": "a", "skillRef": "x",}',
    b'{"stepName": "a", "skillRef": "x\x01"}',
    b'{"stepName": "a", "skillRef": "x"',
    b"",
    b"[" * 5000 + b"]" * 5000,
    b'{"stepName": "a", "skillRef": "x", "outputs": ' + b"[" * 40 + b"]" * 40 + b"}",
]


@pytest.mark.parametrize("data", ATTACKS, ids=range(len(ATTACKS)))
@pytest.mark.parametrize("schema", [STEP, STEP2], ids=["v1", "v2"])
def test_attacks_get_the_reference_verdict(data: bytes, schema: lodec.Schema) -> None:
    assert_agree(data, schema)
    for limits in SMALL_LIMITS:
        assert_agree(data, schema, limits)


@pytest.mark.parametrize("data", ATTACKS[:13], ids=range(13))
def test_every_duplicate_key_is_refused_as_the_reference_refuses_it(data: bytes) -> None:
    verdict = assert_agree(data, STEP)
    assert verdict[0] == "refused" and verdict[2] == "duplicate_key"
    assert not fast_answers(data, STEP)


def test_the_duplicate_key_attack_fails_without_the_string_count() -> None:
    """Without the count the hook-less reader would accept a duplicate: the count is what refuses it."""
    data = b'{"stepName": "a", "skillRef": "x", "inputs": {"k": "v", "k": "w"}}'
    assert json.loads(data) == {"stepName": "a", "skillRef": "x", "inputs": {"k": "w"}}  # the last wins
    assert not fast_answers(data, STEP)
    assert fast_answers(data.replace(b'"k": "v", ', b""), STEP)


def test_limits_on_the_fast_path() -> None:
    source = b'{"stepName": "abcde", "skillRef": "x", "outputs": ["a", "b"]}'
    assert fast_answers(source, STEP)
    assert outcome(compile_source, source, STEP, Limits(max_text_bytes=4))[2] == "limit_exceeded"
    assert outcome(compile_source, source, STEP, Limits(max_entries=1))[2] == "limit_exceeded"
    assert outcome(compile_source, source, STEP, Limits(max_json_depth=1))[2] == "limit_exceeded"
    assert outcome(compile_source, source, STEP, Limits(max_file_bytes=40))[2] == "limit_exceeded"
    for limits in SMALL_LIMITS:
        assert_agree(source, STEP, limits)


def test_sources_over_the_fast_path_bound_take_the_reference() -> None:
    from lodec.format.compiler import FAST_PATH_MAX_BYTES

    big = json.dumps({"stepName": "a", "skillRef": "x" * FAST_PATH_MAX_BYTES}).encode()
    assert not fast_answers(big, STEP)
    assert assert_agree(big, STEP)[0] == "accepted"


def test_a_schema_with_bytes_fields_has_no_fast_path_and_compiles_as_before() -> None:
    schema = schema_from_json({"schema": "lode", "version": 1, "name": "B", "fields": [
        {"id": 1, "name": "stepName", "type": "string", "required": True},
        {"id": 2, "name": "blob", "type": "bytes", "required": False}]})
    assert _fast_compiler(schema, DEFAULT_LIMITS) is None
    assert assert_agree(b'{"stepName": "a", "blob": "AAE="}', schema)[0] == "accepted"


def test_a_step_name_of_another_type_leaves_compile_to_the_reference() -> None:
    schema = schema_from_json({"schema": "lode", "version": 1, "name": "N", "fields": [
        {"id": 1, "name": "stepName", "type": "int", "required": True}]})
    assert _fast_compiler(schema, DEFAULT_LIMITS) is None
    assert assert_agree(b'{"stepName": 1}', schema)[0] == "refused"


# ------------------------------------------------------------ random records, mutations, arbitrary input


@SETTINGS
@given(schema_and_record(), st.randoms(use_true_random=False))
def test_random_records_agree_and_take_the_fast_path(pair: tuple[lodec.Schema, dict[str, Any]],
                                                     rnd: random.Random) -> None:
    schema, record = pair
    data = write_json(record_to_json(record, schema), rnd)
    verdict = assert_agree(data, schema)
    assert verdict[0] == "accepted"
    if all(f.type.scalar != "bytes" for f in schema.fields):
        assert fast_answers(data, schema)


@SETTINGS
@given(schema_and_record(), st.randoms(use_true_random=False))
def test_mutated_random_sources_agree(pair: tuple[lodec.Schema, dict[str, Any]], rnd: random.Random) -> None:
    schema, record = pair
    data = write_json(record_to_json(record, schema), rnd)
    for mutated in rnd.sample(mutations(data), k=min(60, len(mutations(data)))):
        assert_agree(mutated, schema)


step_records = st.fixed_dictionaries(
    {"stepName": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,8}", fullmatch=True) | nfc_text,
     "skillRef": nfc_text},
    optional={"dependsOn": st.lists(nfc_text, max_size=3), "inputs": st.dictionaries(nfc_text, nfc_text, max_size=4),
              "outputs": st.lists(nfc_text, max_size=3), "fingerprint": st.just("") | nfc_text},
)


@SETTINGS
@given(step_records, st.randoms(use_true_random=False))
def test_random_steps_and_their_mutations_agree(record: dict[str, Any], rnd: random.Random) -> None:
    data = write_json(record, rnd)
    assert_agree(data, STEP)
    for mutated in rnd.sample(mutations(data), k=min(40, len(mutations(data)))):
        assert_agree(mutated, STEP)


@st.composite
def duplicated(draw: st.DrawFn) -> bytes:
    """A valid step source with one member written twice, the second time with its key escaped at random."""
    record = draw(step_records)
    text = json.dumps(record)
    key = draw(st.sampled_from(sorted(record)))
    escaped = "".join(f"\\u{ord(c):04x}" if draw(st.booleans()) else c for c in key)
    return (text[:-1] + f', "{escaped}": ' + json.dumps(record[key]) + "}").encode()


@SETTINGS
@given(duplicated())
def test_a_member_written_twice_is_never_taken_by_the_fast_path(data: bytes) -> None:
    assert not fast_answers(data, STEP)
    verdict = assert_agree(data, STEP)
    assert verdict[0] == "refused" and verdict[2] == "duplicate_key"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)


@SETTINGS
@given(json_values, st.randoms(use_true_random=False))
def test_arbitrary_json_agrees(value: Any, rnd: random.Random) -> None:
    data = write_json(value, rnd)
    assert_agree(data, STEP)
    assert_agree(write_json({"stepName": "a", "skillRef": "x", "inputs": value}, rnd), STEP)


@SETTINGS
@given(st.binary(max_size=80))
def test_arbitrary_bytes_agree(data: bytes) -> None:
    assert_agree(data, STEP)
    assert_agree(b'{"stepName": "a", "skillRef": "' + data + b'"}', STEP)


def test_text_in_every_normalisation_form_agrees() -> None:
    for text in ["\u00e9", "e\u0301", "\u1e9b\u0323", "\uac00", "\u1100\u1161", "\U00016d67\U00016d67", "\u212b"]:
        for form in ("NFC", "NFD", "NFKC", "NFKD"):
            value = unicodedata.normalize(form, text)
            for record in ({"stepName": "a", "skillRef": value}, {"stepName": "a", "skillRef": "x", "inputs": {value: value}}):
                for ensure_ascii in (True, False):
                    assert_agree(json.dumps(record, ensure_ascii=ensure_ascii).encode(), STEP)


def _fuzz_inputs() -> list[Path]:
    return sorted([*(ROOT / "fuzz" / "seeds").glob("*/*"), *(ROOT / "tests" / "fuzz_regressions").glob("*/*")])


@pytest.mark.parametrize("path", _fuzz_inputs(), ids=lambda p: f"{p.parent.name}-{p.name[:10]}")
def test_fuzz_seeds_and_their_mutations_agree(path: Path) -> None:
    data = path.read_bytes()[:4096]
    for schema in (STEP, STEP2):
        assert_agree(data, schema)
    for mutated in mutations(data, limit=32):
        assert_agree(mutated, STEP)


# ------------------------------------------------------------ the encoder's head forms


SIZES = [0, 1, 23, 24, 25, 255, 256, 257, 1000]
INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, -1, -24, -25, -256, -257, -65537,
        -(2**32) - 1, -(2**63)]


@pytest.mark.parametrize("size", SIZES)
def test_text_and_container_heads_of_every_size_match_the_reference(size: int) -> None:
    """Shortest-form heads at each boundary (RFC 8949 §4.2.1) for text, arrays and maps, on the fast path."""
    text = ("abcdefghij" * 101)[:size]
    records = [
        {"stepName": "a", "skillRef": text},
        {"stepName": "a", "skillRef": "x", "outputs": [text, text[: size // 2]]},
        {"stepName": "a", "skillRef": "x", "outputs": [f"o{i}" for i in range(size)]},
        {"stepName": "a", "skillRef": "x", "inputs": {f"k{i:04d}": text[: i % 40] for i in range(size)}},
        {"stepName": "a", "skillRef": "x", "inputs": {text: text, "b": "c"} if text else {"b": "c"}},
    ]
    for record in records:
        data = json.dumps(record).encode()
        assert fast_answers(data, STEP)
        assert assert_agree(data, STEP)[0] == "accepted"


def test_int_and_bool_fields_of_every_head_form_match_the_reference() -> None:
    schema = schema_from_json({"schema": "lode", "version": 1, "name": "I", "fields": [
        {"id": 1, "name": "n", "type": "int", "required": True},
        {"id": 23, "name": "flag", "type": "bool", "required": False},
        {"id": 24, "name": "ns", "type": "int[]", "required": False},
        {"id": 300, "name": "flags", "type": "map<string,bool>", "required": False},
        {"id": 70000, "name": "counts", "type": "map<string,int>", "required": True}]})
    for value in INTS:
        for record in ({"n": value, "counts": {}}, {"n": 0, "flag": False, "ns": [value, 0, value], "counts": {"a": value}},
                       {"n": 0, "flag": True, "flags": {"b": True, "a": False}, "counts": {"zz": value, "y": 1}}):
            data = json.dumps(record).encode()
            assert fast_answers(data, schema), data
            assert assert_agree(data, schema)[0] == "accepted"
    for bad in (2**63, -(2**63) - 1, True, 1.0):
        assert assert_agree(json.dumps({"n": bad, "counts": {}}).encode(), schema)[0] == "refused"


# ------------------------------------------------------------ many files


def test_source_compiler_gives_compile_files_veins_and_errors(tmp_path: Path) -> None:
    """source_compiler (the fast path looked up once, folders opened once) against compile_file, file by file."""
    from lodec.files import FolderReads
    from lodec.format.compiler import compile_file, source_compiler

    plants: dict[str, Any] = {
        "plain.json": SEED_SOURCES["lint"].read_bytes(),
        "dup.json": ATTACKS[0],
        "nan.json": ATTACKS[13],
        "not-nfc.json": ATTACKS[24],
        "bad-utf8.json": ATTACKS[51],
        "empty.json": b"",
    }
    for name, data in plants.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "link.json").symlink_to(tmp_path / "plain.json")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "absent.json")
    (tmp_path / "folder.json").mkdir()
    os.mkfifo(tmp_path / "fifo.json")
    names = [*plants, "link.json", "dangling.json", "folder.json", "fifo.json", "absent.json"]

    def result(compile: Any, path: str) -> tuple[Any, ...]:
        try:
            vein = compile(path)
        except LodecError as exc:
            return ("refused", type(exc).__name__, exc.code, exc.file, exc.location, exc.message)
        return ("accepted", repr(vein.record), vein.fingerprint, vein.data)

    for limits in (DEFAULT_LIMITS, Limits(max_file_bytes=40)):
        with FolderReads() as reads:
            for compile_many in (source_compiler(STEP, limits=limits, reads=reads), source_compiler(STEP, limits=limits)):
                for name in names:
                    path = str(tmp_path / name)
                    expected = result(lambda p: compile_file(p, STEP, limits=limits), path)
                    assert result(compile_many, path) == expected, name
    assert result(source_compiler(STEP), str(tmp_path / "link.json"))[0] == "accepted"  # a named link is followed


def test_source_compiler_reads_each_source_once(tmp_path: Path) -> None:
    """A source the fast path declines (a duplicate key; one over the fast path's size) is compiled by the
    reference from the bytes already read, not read a second time."""
    from lodec.files import FolderReads
    from lodec.format.compiler import FAST_PATH_MAX_BYTES, source_compiler

    reads_of: list[str] = []

    class CountingReads(FolderReads):
        def read(self, path: Any, max_bytes: int, *, follow: bool = False) -> bytes:
            reads_of.append(str(path))
            return super().read(path, max_bytes, follow=follow)

    plants = {
        "plain.json": SEED_SOURCES["lint"].read_bytes(),
        "dup.json": ATTACKS[0],
        "large.json": json.dumps({"stepName": "large", "skillRef": "x" * FAST_PATH_MAX_BYTES}).encode(),
    }
    for name, data in plants.items():
        (tmp_path / name).write_bytes(data)
    with CountingReads() as reads:
        compile_one = source_compiler(STEP, reads=reads)
        for name, data in plants.items():
            path = str(tmp_path / name)
            try:
                got: Any = compile_one(path).data
                want: Any = compile_source_reference(data, STEP, file=path).data
            except LodecError as exc:
                got = (exc.code, exc.file, exc.location, exc.message)
                with pytest.raises(LodecError) as caught:
                    compile_source_reference(data, STEP, file=path)
                want = (caught.value.code, caught.value.file, caught.value.location, caught.value.message)
            assert got == want, name
    assert reads_of == [str(tmp_path / name) for name in plants]
