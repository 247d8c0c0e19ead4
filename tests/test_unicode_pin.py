"""One canonical form on every interpreter: NFC is judged against the pinned Unicode version.

Python's ``unicodedata`` follows the interpreter (3.11: Unicode 14), and NFC
changes when Unicode adds a composition. These tests find every canonical
composition that exists in the pinned tables (``unicodedata2``) but not in
the interpreter's, and check that lodec gives each the pinned verdict when
compiling a source and when decoding a vein, so a record cannot verify on
one Python and fail on another.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
import unicodedata2

import lodec
from lodec.errors import DecodeError, SourceError
from lodec.format import cbor
from lodec.format.codec import header
from lodec.format.unicode import UNICODE_VERSION, is_nfc

ROOT = Path(__file__).resolve().parents[1]


def _newer_compositions() -> list[tuple[str, str]]:
    """(decomposed, composed) for every canonical composition in the pinned tables that the interpreter's
    tables do not know: the decomposed pair is NFC for the interpreter, and not for the pin."""
    out = []
    for cp in range(0x110000):
        c = chr(cp)
        d = unicodedata2.decomposition(c)
        hangul = 0xAC00 <= cp <= 0xD7A3  # composed algorithmically, not by the tables (same in every version)
        if d and not d.startswith("<") and not hangul and unicodedata.decomposition(c) == "":
            nfd = unicodedata2.normalize("NFD", c)
            if unicodedata2.normalize("NFC", nfd) == c:
                out.append((nfd, c))
    return out


NEWER = _newer_compositions()


def test_the_pin_is_the_documented_version() -> None:
    pinned = re.search(r'"unicodedata2==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned is not None and UNICODE_VERSION == pinned.group(1) == "18.0.0"
    assert "as of Unicode 18.0.0" in (ROOT / "docs" / "vein-format.md").read_text()


@pytest.mark.skipif(unicodedata.unidata_version >= "16", reason="this interpreter's tables already compose them")
def test_the_interpreter_and_the_pin_disagree_on_twenty_sequences() -> None:
    # The premise: on Unicode 14 tables these decomposed pairs look NFC.
    assert len(NEWER) == 20
    assert all(unicodedata.is_normalized("NFC", nfd) for nfd, _ in NEWER)


@pytest.mark.parametrize("decomposed, composed", NEWER, ids=[f"U+{ord(c):04X}" for _, c in NEWER])
def test_compile_refuses_the_decomposed_form_and_accepts_the_composed_one(decomposed: str, composed: str) -> None:
    schema = lodec.skill_step_schema()
    with pytest.raises(SourceError) as caught:
        lodec.compile_value({"stepName": "a", "skillRef": "skill:" + decomposed}, schema, file="s.json")
    assert caught.value.code == "not_nfc" and caught.value.location == "/skillRef"
    vein = lodec.compile_value({"stepName": "a", "skillRef": "skill:" + composed}, schema, file="s.json")
    assert lodec.decode_vein(vein.data, schema).record["skillRef"] == "skill:" + composed
    assert not is_nfc(decomposed) and is_nfc(composed)


@pytest.mark.parametrize("decomposed, composed", NEWER[:5], ids=[f"U+{ord(c):04X}" for _, c in NEWER[:5]])
def test_decode_refuses_a_vein_holding_the_decomposed_form(decomposed: str, composed: str) -> None:
    # Bytes an encoder on Unicode 14 tables would write: canonical CBOR, but the text is not NFC under the pin.
    schema = lodec.skill_step_schema()
    ids = {f.name: f.id for f in schema.fields}
    data = header(schema) + cbor.encode({ids["stepName"]: "a", ids["skillRef"]: "skill:" + decomposed})
    with pytest.raises(DecodeError) as caught:
        lodec.decode_vein(data, schema)
    assert caught.value.code == "not_nfc"


def test_the_documented_v2_manifest_digest_and_schema_id_hold() -> None:
    # docs/vein-format.md §2 and §9: a manifest with skillDigests is read as skill-stack-v2.
    from lodec.format.schema import builtin_schema
    from lodec.stack.manifest import manifest_vein, stack_schema_for

    doc = (ROOT / "docs" / "vein-format.md").read_text()
    v2 = builtin_schema("skill-stack-v2")
    assert f"schema id `{v2.schema_id.hex()}`" in doc
    manifest = __import__("json").loads((ROOT / "stacks" / "code-review" / "code-review-stack.json").read_text())
    assert stack_schema_for(manifest) is v2
    digest = manifest_vein(manifest).fingerprint
    assert digest == "blake3:862ed39f41f92e8537e9d3a32b8b8fc78fda01ec08e9246d72ee5b56b98d8569" and digest in doc


def test_the_documented_order_of_head_checks_holds() -> None:
    # docs/vein-format.md §5: codes and offsets for items that break more than one rule at once.
    schema = lodec.skill_step_schema()
    head = header(schema)

    def refused(body_hex: str) -> tuple[str, str | None]:
        with pytest.raises(DecodeError) as caught:
            lodec.decode_vein(head + bytes.fromhex(body_hex), schema)
        return caught.value.code, caught.value.location

    code, where = refused("a2 01 c1")
    assert code == "tag_not_allowed" and where is not None and where.startswith("byte 15")
    assert refused("a2 01 7f")[0] == "indefinite_length"  # ai 31 before any length check
    assert refused("a2 01 78")[0] == "truncated"  # argument bytes missing before shortest form
    assert refused("a2 01 7801")[0] == "non_canonical"  # shortest form before the length/limit checks
    assert refused("a2 01 1801")[0] == "non_canonical"  # shortest form before the type check
    code, where = refused("a3 01 6161 02 6162 05 9a00010000")
    assert code == "truncated" and where is not None and where.startswith("byte 26")  # after the array head
