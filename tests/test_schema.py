"""`.lode` schema validation: the seed schemas, and every malformed shape named in the issue."""

from __future__ import annotations

import json

import pytest

import lodec
from lodec.errors import SchemaError
from lodec.format.schema import parse_schema

from .conftest import ROOT, run_cli


def schema_bytes(fields: list[dict], **top: object) -> bytes:
    doc = {"schema": "lode", "version": 1, "name": "T", "fields": fields, **top}
    return json.dumps(doc).encode()


def test_seed_schemas_load_field_for_field() -> None:
    step = lodec.skill_step_schema()
    assert [(f.id, f.name, f.type.spelling, f.required) for f in step.fields] == [
        (1, "stepName", "string", True),
        (2, "skillRef", "string", True),
        (3, "dependsOn", "string[]", False),
        (4, "inputs", "map<string,string>", False),
        (5, "outputs", "string[]", False),
        (6, "fingerprint", "string", False),
    ]
    stack = lodec.skill_stack_schema()
    assert [f.name for f in stack.fields] == [
        "name", "version", "description", "steps", "stepFingerprints", "entryPoint", "metadata"
    ]
    assert [f.name for f in stack.fields if f.required] == ["name", "version", "description", "steps", "stepFingerprints"]


def test_repo_schemas_dir_matches_package_data() -> None:
    for name in ("skill-step-v1", "skill-stack-v1"):
        assert (ROOT / "schemas" / f"{name}.lode").read_bytes() == (ROOT / "lodec" / "schemas" / f"{name}.lode").read_bytes()


def test_schema_digest_ignores_formatting_and_field_order() -> None:
    a = parse_schema(schema_bytes([{"id": 1, "name": "a", "type": "int", "required": True},
                                   {"id": 2, "name": "b", "type": "string", "required": False}]))
    b = parse_schema(b'{"fields":[{"name":"b","id":2,"type":"string"},'
                     b'{"required":true,"type":"int","name":"a","id":1}],"name":"T","version":1,"schema":"lode"}')
    assert a.digest == b.digest and len(a.digest) == 32


def test_schema_digest_changes_with_any_field_change() -> None:
    base = [{"id": 1, "name": "a", "type": "int", "required": True}]
    digests = {
        parse_schema(schema_bytes(base)).digest,
        parse_schema(schema_bytes([{**base[0], "id": 2}])).digest,
        parse_schema(schema_bytes([{**base[0], "name": "b"}])).digest,
        parse_schema(schema_bytes([{**base[0], "type": "string"}])).digest,
        parse_schema(schema_bytes([{**base[0], "required": False}])).digest,
        parse_schema(schema_bytes(base, version=2)).digest,
        parse_schema(schema_bytes(base, reserved=[9])).digest,
    }
    assert len(digests) == 7


@pytest.mark.parametrize(
    ("fields", "top", "location", "words"),
    [
        ([{"id": 1, "name": "a", "type": "int"}, {"id": 1, "name": "b", "type": "int"}], {}, "/fields/1/id", "already used by field 'a'"),
        ([{"id": 1, "name": "a", "type": "int"}, {"id": 2, "name": "a", "type": "int"}], {}, "/fields/1/name", "name used twice"),
        ([{"id": 1, "name": "a", "type": "float"}], {}, "/fields/0/type", "unknown type 'float'"),
        ([{"id": 1, "name": "a", "type": "string[][]"}], {}, "/fields/0/type", "no nesting"),
        ([{"id": 1, "name": "a", "type": "map<string,string[]>"}], {}, "/fields/0/type", "no nesting"),
        ([{"id": 1, "name": "a", "type": "map<int,string>"}], {}, "/fields/0/type", "unknown type"),
        ([{"id": 1, "name": "a", "type": "T"}], {}, "/fields/0/type", "unknown type 'T'"),
        ([{"id": 0, "name": "a", "type": "int"}], {}, "/fields/0/id", "must be between 1"),
        ([{"id": -3, "name": "a", "type": "int"}], {}, "/fields/0/id", "must be between 1"),
        ([{"id": 1, "name": "", "type": "int"}], {}, "/fields/0/name", "field name ''"),
        ([{"id": 1, "name": "a b", "type": "int"}], {}, "/fields/0/name", "must match"),
        ([{"id": 7, "name": "a", "type": "int"}], {"reserved": [7]}, "/fields/0/id", "id 7 is reserved"),
        ([{"id": 1, "name": "old", "type": "int"}], {"reserved": ["old"]}, "/fields/0/name", "name is reserved"),
        ([{"id": 1, "name": "a", "type": "int", "required": "yes"}], {}, "/fields/0/required", "true or false"),
        ([{"id": True, "name": "a", "type": "int"}], {}, "/fields/0/id", "an integer"),
        ([{"id": 1, "name": "a", "type": "int", "default": 3}], {}, "/fields/0/default", "unknown key"),
        ([], {}, "/fields", "at least one field"),
        ([{"id": 1, "name": "a", "type": "int"}], {"schema": "proto"}, "/schema", 'must be "lode"'),
        ([{"id": 1, "name": "a", "type": "int"}], {"version": "1"}, "/version", "an integer"),
        ([{"id": 1, "name": "a", "type": "int"}], {"version": 0}, "/version", "positive"),
        ([{"id": 1, "name": "a", "type": "int"}], {"name": ""}, "/name", "schema name"),
        ([{"id": 1, "name": "a", "type": "int"}], {"reserved": [2, 2]}, "/reserved/1", "listed twice"),
    ],
)
def test_malformed_schema_is_refused_naming_the_field(fields: list, top: dict, location: str, words: str) -> None:
    with pytest.raises(SchemaError) as info:
        parse_schema(schema_bytes(fields, **top), source="bad.lode")
    assert info.value.location == location
    assert words in info.value.message
    assert str(info.value).startswith(f"bad.lode: {location}: ")


def test_schema_with_duplicate_json_keys_is_refused() -> None:
    with pytest.raises(SchemaError) as info:
        parse_schema(b'{"schema":"lode","version":1,"name":"T","name":"U","fields":[]}', source="d.lode")
    assert info.value.code == "duplicate_key" and info.value.location == "/name"


def test_schema_check_cli_ok_and_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("schema", "check", ROOT / "schemas" / "skill-step-v1.lode")
    digest = lodec.format_fingerprint(lodec.skill_step_schema().digest)
    assert code == 0 and "SkillStep v1, 6 fields" in out and digest in out
    bad = tmp_path / "bad.lode"
    bad.write_bytes(schema_bytes([{"id": 1, "name": "a", "type": "int"}, {"id": 1, "name": "b", "type": "int"}]))
    code, out, err = run_cli("schema", "check", bad)
    assert code == 1 and err.count("\n") == 1 and "/fields/1/id" in err and "'b'" in err
    code, out, _ = run_cli("schema", "check", "--json", bad)
    assert code == 1 and json.loads(out)["schemas"][0]["error"]["location"] == "/fields/1/id"


def test_generic_schema_compile_inspect_roundtrip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    schema = tmp_path / "thing.lode"
    schema.write_bytes(schema_bytes([
        {"id": 1, "name": "name", "type": "string", "required": True},
        {"id": 2, "name": "count", "type": "int", "required": True},
        {"id": 3, "name": "on", "type": "bool"},
        {"id": 4, "name": "blob", "type": "bytes"},
        {"id": 5, "name": "nums", "type": "int[]"},
        {"id": 6, "name": "flags", "type": "map<string,bool>"},
    ], name="Thing"))
    src = tmp_path / "t.json"
    src.write_text(json.dumps({"name": "widget", "count": -9223372036854775808, "on": False,
                               "blob": "AAEC/w==", "nums": [0, 23, 24, 255, 256, -1, -25], "flags": {"b": True, "aa": False}}))
    code, out, err = run_cli("compile", src, "-s", schema, "-o", f"{tmp_path}/out/")
    assert code == 0, err
    vein = tmp_path / "out" / "widget.vein"
    code, out, err = run_cli("inspect", vein, "-s", schema)
    assert code == 0, err
    again = tmp_path / "again.json"
    again.write_text(out)
    code, _, err = run_cli("compile", again, "-s", schema, "-o", tmp_path / "again.vein")
    assert code == 0, err
    assert (tmp_path / "again.vein").read_bytes() == vein.read_bytes()
    assert json.loads(out)["count"] == -9223372036854775808


def _generic_canonical(schema: lodec.Schema) -> bytes:
    """The schema's canonical CBOR by the generic encoder, which sorts every map itself."""
    from lodec.format import cbor

    doc: dict = {"schema": "lode", "version": schema.version, "name": schema.name,
                 "fields": [{"id": f.id, "name": f.name, "type": f.type.spelling, "required": f.required}
                            for f in schema.fields]}
    if schema.reserved_ids or schema.reserved_names:
        doc["reserved"] = [*sorted(schema.reserved_ids), *sorted(schema.reserved_names)]
    return cbor.encode(doc)


def test_schema_canonical_form_is_written_in_the_order_the_generic_encoder_sorts_it_into() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from lodec.format.schema import BUILTIN_SCHEMAS, builtin_schema, schema_from_json

    for name in BUILTIN_SCHEMAS:
        schema = builtin_schema(name)
        assert schema.canonical_cbor() == _generic_canonical(schema)

    names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,63}", fullmatch=True)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(names, min_size=1, max_size=6, unique=True), st.data())
    def check(field_names: list[str], data: st.DataObject) -> None:
        fields = [{"id": data.draw(st.integers(1, 2**32 - 1)), "name": n,
                   "type": data.draw(st.sampled_from(["string", "int[]", "map<string,bytes>"])),
                   "required": data.draw(st.booleans())} for n in field_names]
        if len({f["id"] for f in fields}) != len(fields):
            return
        reserved = data.draw(st.lists(st.integers(1, 2**32 - 1), max_size=3, unique=True))
        reserved = [r for r in reserved if r not in {f["id"] for f in fields}]
        schema = schema_from_json({"schema": "lode", "version": data.draw(st.integers(1, 2**63 - 1)),
                                   "name": data.draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
                                   "fields": fields, "reserved": reserved})
        assert schema.canonical_cbor() == _generic_canonical(schema)

    check()
