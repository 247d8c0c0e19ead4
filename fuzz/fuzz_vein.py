"""Fuzz the vein decoder (``lodec.codec.decode_vein``) against the four built-in schemas.

The first input byte picks the schema; the rest is the vein. An accepted
vein must re-encode to exactly its bytes (one record, one encoding).
"""

import atheris

with atheris.instrument_imports(include=["lodec"]):
    from _common import main
    from lodec.codec import decode_vein, encode_record, header
    from lodec.errors import LodecError
    from lodec.schema import BUILTIN_SCHEMAS, builtin_schema

SCHEMAS = [builtin_schema(n) for n in BUILTIN_SCHEMAS]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    schema = SCHEMAS[data[0] % len(SCHEMAS)]
    blob = data[1:]
    if data[0] & 0x80:  # half the time, a correct header so the body gets the attention
        blob = header(schema) + blob
    try:
        vein = decode_vein(blob, schema)
    except LodecError:
        return
    again = encode_record(schema, vein.record)
    if again.data != blob or again.fingerprint != vein.fingerprint:
        raise AssertionError(f"accepted a non-canonical vein: {blob.hex()}")


if __name__ == "__main__":
    main(test_one_input)
