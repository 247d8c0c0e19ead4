"""Hostile input through the CLI: each refused with one clear line, exit 1, no traceback, bounded memory and time.

The library-level refusals are in ``test_strictjson.py``, ``test_schema.py``
and ``test_codec.py``; here each attack goes through ``lodec compile`` (or
``inspect`` for veins) at least once, and nothing is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lodec
from lodec.format.codec import header

from .conftest import run_cli

STEP = b'{"stepName": "x", "skillRef": "skill:s"'


def refused(tmp_path: Path, source: bytes, code: str, *, schema: bytes | None = None, where: str | None = None) -> str:
    """Compile ``source`` (and ``schema``) with the CLI; assert exit 1, one line ending in ``[code]``, no output."""
    src = tmp_path / "src.json"
    src.write_bytes(source)
    args = ["compile", src, "-o", tmp_path / "out.vein"]
    if schema is not None:
        (tmp_path / "t.lode").write_bytes(schema)
        args += ["-s", tmp_path / "t.lode"]
    status, out, err = run_cli(*args)
    assert status == 1, (status, out, err)
    assert err.count("\n") == 1 and err.startswith("lodec: ") and err.rstrip().endswith(f"[{code}]"), err
    assert "Traceback" not in err and out == ""
    if where is not None:
        assert f": {where}: " in err, err
    assert not (tmp_path / "out.vein").exists()
    return err


def lode(fields: list[dict], **top: object) -> bytes:
    return json.dumps({"schema": "lode", "version": 1, "name": "T", "fields": fields, **top}).encode()


INT_SCHEMA = lode([{"id": 1, "name": "name", "type": "string", "required": True}, {"id": 2, "name": "n", "type": "int"}])


# Started from a small interpreter: a child forked (vfork) straight from pytest inherits pytest's RSS
# high-water mark through exec, so its ru_maxrss would measure pytest, not lodec.
_MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read()
_, status, usage = os.wait4(proc.pid, 0)
sys.stderr.buffer.write(err)
print(os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss / 1024)
"""


def _child_rss_mb(argv: list[str], cwd: Path) -> tuple[int, str, float, float]:
    """Run a real ``lodec`` process; (exit status, stderr, wall seconds, its own peak RSS in MB)."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, *argv], cwd=cwd, capture_output=True, check=True)
    status, wall, rss = done.stdout.decode().split()
    return int(status), done.stderr.decode(), float(wall), float(rss)


# ------------------------------------------------------------- JSON sources


def test_duplicate_keys_refused_by_compile(tmp_path: Path) -> None:
    refused(tmp_path, b'{"stepName": "x", "skillRef": "skill:a", "skillRef": "skill:b"}', "duplicate_key", where="/skillRef")


def test_duplicate_keys_inside_inputs_refused_by_compile(tmp_path: Path) -> None:
    refused(tmp_path, STEP + b', "inputs": {"model": "a", "model": "b"}}', "duplicate_key", where="/inputs/model")


def test_ten_thousand_levels_of_nesting_refused_by_compile_before_parsing(tmp_path: Path) -> None:
    start = time.perf_counter()
    err = refused(tmp_path, STEP + b', "inputs": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "limit_exceeded")
    assert "10001 levels" in err and time.perf_counter() - start < 2


def test_ten_thousand_levels_of_objects_refused_by_compile(tmp_path: Path) -> None:
    refused(tmp_path, b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "limit_exceeded")


def test_hundred_megabyte_string_refused_unread(tmp_path: Path) -> None:
    """100 MB is over max_file_bytes (16 MiB): refused from fstat, before reading, in a real process."""
    src = tmp_path / "huge.json"
    chunk = b"a" * (1 << 20)
    with src.open("wb") as fh:
        fh.write(b'{"stepName": "x", "skillRef": "')
        for _ in range(100):
            fh.write(chunk)
        fh.write(b'"}')
    assert src.stat().st_size > 100 * (1 << 20)
    status, err, wall, rss = _child_rss_mb(
        [sys.executable, "-m", "lodec", "compile", str(src), "-o", str(tmp_path / "out.vein")], tmp_path
    )
    assert status == 1 and err.count("\n") == 1 and err.rstrip().endswith("[limit_exceeded]"), err
    assert "limit is 16777216" in err and "Traceback" not in err
    assert wall < 5  # no 100 MB read, no parse: start-up dominates
    assert rss < 90, rss  # the interpreter and lodec (~40 MB here), not the 100 MB file
    assert not (tmp_path / "out.vein").exists()


def test_million_empty_arrays_refused_before_parsing(tmp_path: Path) -> None:
    """16 MiB of ``[],`` once made lodec build ~5.6 M lists (~510 MB) before the entry limit fired.

    Found while measuring this suite; now the number of arrays and objects is
    bounded on the text (``max_entries``), before parsing."""
    item = b"[],"
    n = ((16 << 20) - 100) // len(item)
    src = tmp_path / "amp.json"
    src.write_bytes(STEP + b', "outputs": [' + item * (n - 1) + b"[]]}")
    status, err, wall, rss = _child_rss_mb(
        [sys.executable, "-m", "lodec", "compile", str(src), "-o", str(tmp_path / "out.vein")], tmp_path
    )
    assert status == 1 and err.rstrip().endswith("[limit_exceeded]") and "arrays and objects" in err, err
    assert rss < 200, rss  # was ~510 MB
    assert wall < 5


def test_integer_beyond_64_bits_refused_by_compile(tmp_path: Path) -> None:
    for value in (b"9223372036854775808", b"-9223372036854775809", b"18446744073709551616", b"1" + b"0" * 4000):
        err = refused(tmp_path, b'{"name": "x", "n": ' + value + b"}", "integer_out_of_range", schema=INT_SCHEMA, where="/n")
        assert len(err) < 300  # a 4001-digit literal is not echoed whole
    (tmp_path / "src.json").write_bytes(b'{"name": "x", "n": 9223372036854775807}')
    status, _, err = run_cli("compile", tmp_path / "src.json", "-s", tmp_path / "t.lode", "-o", tmp_path / "ok.vein")
    assert status == 0, err  # the bound itself is an int64


def test_integer_beyond_64_bits_in_a_vein_refused_by_inspect(tmp_path: Path) -> None:
    """CBOR can carry 0 .. 2^64-1 and -2^64 .. -1; format v1 ints stop at 2^63-1 and -2^63."""
    schema = lodec.parse_schema(INT_SCHEMA)
    (tmp_path / "t.lode").write_bytes(INT_SCHEMA)
    for head in (b"\x1b\x80\x00\x00\x00\x00\x00\x00\x00", b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
                 b"\x3b\x80\x00\x00\x00\x00\x00\x00\x00", b"\x3b\xff\xff\xff\xff\xff\xff\xff\xff"):
        vein = tmp_path / "big.vein"
        vein.write_bytes(header(schema) + b"\xa2\x01\x61x\x02" + head)
        status, out, err = run_cli("inspect", vein, "-s", tmp_path / "t.lode")
        assert status == 1 and err.count("\n") == 1 and err.rstrip().endswith("[integer_out_of_range]"), err
        assert "byte 18" in err and out == ""
    edge = header(schema) + b"\xa2\x01\x61x\x02\x3b\x7f\xff\xff\xff\xff\xff\xff\xff"
    assert lodec.decode_vein(edge, schema).record["n"] == -(2**63)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_refused_by_compile(tmp_path: Path, literal: bytes) -> None:
    refused(tmp_path, b'{"name": "x", "n": ' + literal + b"}", "non_finite_number", schema=INT_SCHEMA, where="/n")


def test_float_overflowing_to_infinity_refused_by_compile(tmp_path: Path) -> None:
    # 1e999 parses to inf without the NaN/Infinity tokens: it must still not become a value.
    err = refused(tmp_path, b'{"name": "x", "n": 1e999}', "wrong_type", schema=INT_SCHEMA, where="/n")
    assert "floats are not allowed" in err


@pytest.mark.parametrize(
    ("escaped", "where"),
    [
        (b'"skillRef": "\\ud800"', "/skillRef"),  # lone high surrogate
        (b'"skillRef": "\\uDC00x"', "/skillRef"),  # lone low surrogate, upper-case escape
        (b'"skillRef": "\\udc00\\ud800"', "/skillRef"),  # a pair in the wrong order
        (b'"skillRef": "s", "inputs": {"\\ud83d": "v"}', "/inputs/\ud83d"),  # in a map key
    ],
)
def test_lone_surrogate_escape_refused_by_compile(tmp_path: Path, escaped: bytes, where: str) -> None:
    err = refused(tmp_path, b'{"stepName": "x", ' + escaped + b"}", "invalid_text")
    assert "lone surrogate" in err


def test_surrogate_encoded_as_raw_utf8_refused_by_compile(tmp_path: Path) -> None:
    # CESU-8 / WTF-8 style: ED A0 80 is U+D800 written as UTF-8, which UTF-8 forbids.
    err = refused(tmp_path, b'{"stepName": "x", "skillRef": "\xed\xa0\x80"}', "source_invalid", where="byte 31")
    assert "invalid UTF-8" in err


def test_escaped_backslash_before_u_d800_is_not_a_surrogate(tmp_path: Path) -> None:
    """``"\\\\ud800"`` is a backslash followed by the text ``ud800``: valid, and compiled as such."""
    src = tmp_path / "ok.json"
    src.write_bytes(b'{"stepName": "x", "skillRef": "\\\\ud800"}')
    status, _, err = run_cli("compile", src, "-o", tmp_path / "ok.vein")
    assert status == 0, err
    assert lodec.decode_vein((tmp_path / "ok.vein").read_bytes(), lodec.skill_step_schema()).record["skillRef"] == "\\ud800"


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ('"skillRef": "caf\u0065\u0301"', "/skillRef"),  # combining acute, written raw
        ('"skillRef": "caf\\u0065\\u0301"', "/skillRef"),  # the same as escapes
        ('"skillRef": "s", "inputs": {"\u212b": "v"}', "/inputs/\u212b"),  # ANGSTROM SIGN (NFC: U+00C5) as a key
        ('"skillRef": "s", "outputs": ["\u1100\u1161"]', "/outputs/0"),  # conjoining jamo (NFC: U+AC00)
    ],
)
def test_non_nfc_text_refused_not_normalised_by_compile(tmp_path: Path, source: str, where: str) -> None:
    """docs/vein-format.md §8.1: a non-NFC source is refused, not repaired."""
    err = refused(tmp_path, ('{"stepName": "x", ' + source + "}").encode(), "not_nfc")
    assert f": {where}: " in err


def test_nfc_text_is_accepted_as_written(tmp_path: Path) -> None:
    src = tmp_path / "ok.json"
    src.write_bytes('{"stepName": "x", "skillRef": "caf\u00e9 \ufb01"}'.encode())  # NFC (the ligature is only NFKC-foldable)
    status, _, err = run_cli("compile", src, "-o", tmp_path / "ok.vein")
    assert status == 0, err
    vein = lodec.decode_vein((tmp_path / "ok.vein").read_bytes(), lodec.skill_step_schema())
    assert vein.record["skillRef"] == "caf\u00e9 \ufb01"


# ------------------------------------------------------- malformed schemas

F = {"id": 1, "name": "name", "type": "string", "required": True}

MALFORMED_SCHEMAS = {
    "duplicate_field_ids": (lode([F, {"id": 1, "name": "b", "type": "int"}]), "schema_invalid", "/fields/1/id"),
    "duplicate_field_names": (lode([F, {"id": 2, "name": "name", "type": "int"}]), "schema_invalid", "/fields/1/name"),
    "unknown_type": (lode([F, {"id": 2, "name": "b", "type": "float"}]), "schema_invalid", "/fields/1/type"),
    "nested_container_type": (lode([F, {"id": 2, "name": "b", "type": "string[][]"}]), "schema_invalid", "/fields/1/type"),
    "type_with_space": (lode([F, {"id": 2, "name": "b", "type": "map<string, int>"}]), "schema_invalid", "/fields/1/type"),
    "recursive_type_reference": (lode([F, {"id": 2, "name": "child", "type": "T"}]), "schema_invalid", "/fields/1/type"),
    "recursive_array_reference": (lode([F, {"id": 2, "name": "kids", "type": "T[]"}]), "schema_invalid", "/fields/1/type"),
    "reserved_id_in_use": (lode([F, {"id": 2, "name": "b", "type": "int"}], reserved=[2]), "schema_invalid", "/fields/1/id"),
    "reserved_name_in_use": (lode([F, {"id": 2, "name": "b", "type": "int"}], reserved=["b"]), "schema_invalid", "/fields/1/name"),
    "reserved_id_out_of_range": (lode([F], reserved=[4294967296]), "schema_invalid", "/reserved/0"),
    "reserved_bool": (lode([F], reserved=[True]), "schema_invalid", "/reserved/0"),
    "empty_field_name": (lode([F, {"id": 2, "name": "", "type": "int"}]), "schema_invalid", "/fields/1/name"),
    "empty_schema_name": (lode([F], name=""), "schema_invalid", "/name"),
    "non_ascii_field_name": (lode([F, {"id": 2, "name": "na\u00efve", "type": "int"}]), "schema_invalid", "/fields/1/name"),
    "field_id_zero": (lode([F, {"id": 0, "name": "b", "type": "int"}]), "schema_invalid", "/fields/1/id"),
    "field_id_over_32_bits": (lode([F, {"id": 4294967296, "name": "b", "type": "int"}]), "schema_invalid", "/fields/1/id"),
    "field_id_over_64_bits": (lode([F, {"id": 2**64, "name": "b", "type": "int"}]), "integer_out_of_range", "/fields/1/id"),
    "field_id_float": (lode([F, {"id": 2.0, "name": "b", "type": "int"}]), "schema_invalid", "/fields/1/id"),
    "no_fields": (lode([]), "schema_invalid", "/fields"),
    "duplicate_json_keys": (b'{"schema":"lode","version":1,"name":"T","name":"U","fields":[]}', "duplicate_key", "/name"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_SCHEMAS))
def test_malformed_schema_refused_by_compile(tmp_path: Path, case: str) -> None:
    schema, code, where = MALFORMED_SCHEMAS[case]
    refused(tmp_path, b'{"name": "x"}', code, schema=schema, where=where)



# ------------------------------------------------------------------ stacks


def test_cycle_hidden_in_a_huge_stack_is_reported_in_linear_time() -> None:
    """30,000 pinned steps in a chain plus one 2-step cycle: verify must name the cycle quickly.

    Finding: listing the steps left over by the topological sort rebuilt a set
    of the whole order for every step, O(n^2): ~1.5 s at 10,000 steps and ~30 s
    here; a 16 MiB manifest holds ~130,000 steps (minutes).
    """
    n = 30_000
    records = [{"stepName": f"s{i:05d}", "skillRef": "skill:x", **({"dependsOn": [f"s{i - 1:05d}"]} if i else {})}
               for i in range(n)]
    records += [{"stepName": "c1", "skillRef": "skill:x", "dependsOn": ["c2"]},
                {"stepName": "c2", "skillRef": "skill:x", "dependsOn": ["c1"]}]
    veins = {r["stepName"]: lodec.encode_record(lodec.skill_step_schema(), r) for r in records}
    manifest = {"name": "big", "version": "1.0.0", "description": "d", "steps": list(veins),
                "stepFingerprints": {name: v.fingerprint for name, v in veins.items()}}
    data = {name: v.data for name, v in veins.items()}
    start = time.perf_counter()
    report = lodec.verify_stack(lodec.manifest_json(manifest), data.get)
    elapsed = time.perf_counter() - start
    assert [(p.code, p.step) for p in report.problems] == [("cycle", "c1")]
    assert "c1 -> c2 -> c1" in report.problems[0].message
    assert elapsed < 5, elapsed  # ~0.5 s; it was ~30 s


# ------------------------------------------------------------------- packs


def _evil_pack(step_fields: list[dict], step: dict, *, stack_schema: bytes | None = None,
               manifest_extra: dict | None = None, drop: tuple[str, ...] = ()) -> bytes:
    """A canonical pack whose schema members are hand-made, with pins computed under them (so they match)."""
    from lodec.format.pack import PACK_LIMITS
    from lodec.format.schema import builtin_schema_bytes, lodepack_schema

    step_schema = lode(step_fields, name="EvilStep")
    vein = lodec.encode_record(lodec.parse_schema(step_schema), step)
    manifest = {"name": "evil", "version": "1.0.0", "description": "d", "steps": ["a"],
                "stepFingerprints": {"a": vein.fingerprint}, **(manifest_extra or {})}
    for key in drop:
        manifest.pop(key)
    record = {"manifestName": "evil.json", "manifest": lodec.manifest_json(manifest),
              "stepSchema": step_schema, "stackSchema": stack_schema or builtin_schema_bytes("skill-stack-v2"),
              "steps": {"a": vein.data}}
    return lodec.encode_record(lodepack_schema(), record, limits=PACK_LIMITS).data


STEP_NAME = {"id": 1, "name": "stepName", "type": "string", "required": True}
SKILL_REF = {"id": 2, "name": "skillRef", "type": "string", "required": True}
INT_DEPENDS = {"id": 3, "name": "dependsOn", "type": "int", "required": True}
SKILL_PINS = {"skillDigests": {"skill:x": "blake3:" + "0" * 64}}


def _verify_pack_cli(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "evil.lodepack"
    path.write_bytes(data)
    status, out, err = run_cli("verify", path)
    assert status == 1 and err.count("\n") == 1 and "Traceback" not in err, (status, out, err)
    return err


def test_pack_whose_step_schema_retypes_depends_on_is_refused(tmp_path: Path) -> None:
    """Finding (review): ``dependsOn`` as an ``int`` in the pack's own step schema made
    ``lodec verify PACK`` crash with ``TypeError: 'int' object is not iterable``."""
    pack = _evil_pack([STEP_NAME, SKILL_REF, INT_DEPENDS], {"stepName": "a", "skillRef": "skill:x", "dependsOn": 5},
                      manifest_extra=SKILL_PINS)
    err = _verify_pack_cli(tmp_path, pack)
    assert "#stepSchema: field 'dependsOn': " in err and err.rstrip().endswith("[schema_invalid]")


def test_pack_whose_step_schema_has_no_skill_ref_is_refused(tmp_path: Path) -> None:
    """Finding (review): a v2 manifest over steps of a schema without ``skillRef`` crashed with ``KeyError``."""
    pack = _evil_pack([STEP_NAME], {"stepName": "a"}, manifest_extra=SKILL_PINS)
    err = _verify_pack_cli(tmp_path, pack)
    assert "#stepSchema: field 'skillRef': " in err and err.rstrip().endswith("[schema_invalid]")


def test_pack_whose_stack_schema_makes_name_optional_is_refused(tmp_path: Path) -> None:
    from lodec.format.schema import builtin_schema_bytes

    doc = json.loads(builtin_schema_bytes("skill-stack-v1"))
    for f in doc["fields"]:
        if f["name"] == "name":
            f["required"] = False
    pack = _evil_pack([STEP_NAME, SKILL_REF], {"stepName": "a", "skillRef": "skill:x"},
                      stack_schema=json.dumps(doc).encode(), drop=("name",))
    err = _verify_pack_cli(tmp_path, pack)
    assert "#stackSchema: field 'name': " in err and err.rstrip().endswith("[schema_invalid]")


# --------------------------------------------------------------- policies


@pytest.mark.parametrize("nesting", [b"[" * 5000 + b"]" * 5000, b"{b=" * 5000 + b"1" + b"}" * 5000])
def test_deeply_nested_trust_policy_refused(seed_stack: Path, nesting: bytes) -> None:
    """Finding (review): tomllib recurses per level, so ``--policy`` with 5,000 nested
    arrays or inline tables crashed ``lodec verify`` with a RecursionError traceback."""
    policy = seed_stack.parent / "trust.toml"
    policy.write_bytes(b"version = 1\na = " + nesting + b"\n")
    status, out, err = run_cli("verify", seed_stack, "--policy", policy)
    assert status == 1 and err.count("\n") == 1 and "Traceback" not in err, (status, out, err)
    assert "nested too deeply" in err and "[policy_invalid]" in err
