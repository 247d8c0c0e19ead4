"""Fuzz the ``.lode`` schema loader (``lodec.schema.parse_schema``).

A schema that loads must have a stable digest and encode/decode a minimal record.
"""

import atheris

with atheris.instrument_imports(include=["lodec"]):
    from _common import main
    from lodec.codec import decode_vein, encode_record
    from lodec.errors import LodecError
    from lodec.schema import parse_schema, schema_from_json
    from lodec.strictjson import loads_strict

MINIMAL = {"string": "", "int": 0, "bool": False, "bytes": b""}


def test_one_input(data: bytes) -> None:
    try:
        schema = parse_schema(data)
    except LodecError:
        return
    again = schema_from_json(loads_strict(data))
    assert again.digest == schema.digest and len(schema.digest) == 32
    record = {}
    for f in schema.fields:
        if f.required:
            record[f.name] = MINIMAL[f.type.scalar] if f.type.kind == "scalar" else ([] if f.type.kind == "array" else {})
    vein = encode_record(schema, record)
    assert decode_vein(vein.data, schema).fingerprint == vein.fingerprint


if __name__ == "__main__":
    main(test_one_input)
