"""Canonical CBOR encoding: RFC 8949 §4.2.1 core deterministic encoding.

Restricted to the dCBOR subset lodec uses (see ``docs/vein-format.md``):
unsigned and negative integers within 64-bit signed range, byte strings,
UTF-8 text, arrays, maps, ``true`` / ``false``. No floats, no tags, no
``null``, no indefinite lengths. Integers and lengths use their shortest
form; map entries are sorted by the bytewise order of their encoded keys.

The decoder that proves canonical form lives in ``lodec.format.codec`` (it is
schema-directed); this module only encodes: ``encode`` handles generic
values (schema documents), ``encode_sorted`` record maps the codec has
already put in canonical order. An independent struct-based reference
encoder in ``tests/test_properties.py`` checks both.
"""

from __future__ import annotations

from typing import Any

from cbor2 import dumps as _dumps

from ..limits import INT64_MAX, INT64_MIN


def _sort_key(encoded_text: bytes) -> tuple[int, bytes]:
    return (len(encoded_text), encoded_text)


def canonicalize(value: Any) -> Any:
    """Return ``value`` with every map rebuilt in canonical key order.

    Key order is the bytewise order of the encoded keys (RFC 8949 §4.2.1).
    For keys of one major type this equals (encoded length, bytes): the head
    grows with the length. Keys must be all unsigned integers or all text.

    Raises:
        TypeError: a type outside the subset (``float``, ``None``, mixed key types).
        ValueError: an integer outside the 64-bit signed range.
    """
    if isinstance(value, dict):
        keys = list(value)
        if all(type(k) is int and k >= 0 for k in keys):
            ordered = sorted(keys)
        elif all(type(k) is str for k in keys):
            ordered = sorted(keys, key=lambda k: _sort_key(k.encode("utf-8")))
        else:
            raise TypeError("map keys must be all unsigned integers or all text")
        return {k: canonicalize(value[k]) for k in ordered}
    if isinstance(value, (list, tuple)):
        return [canonicalize(v) for v in value]
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"integer {value} outside the 64-bit signed range")
        return value
    raise TypeError(f"cannot encode {type(value).__name__} in canonical CBOR")


def encode(value: Any) -> bytes:
    """Encode ``value`` in canonical CBOR.

    ``canonicalize`` fixes the map order; cbor2 (in C) writes the bytes, and
    always writes shortest-form integers and definite lengths. The
    equivalence with a direct RFC 8949 §4.2.1 encoder is tested
    (``tests/test_properties.py``).

    Args:
        value: ``bool``, ``int`` (64-bit signed), ``str``, ``bytes``,
            ``list``/``tuple`` or ``dict`` of these.

    Raises:
        ValueError, TypeError: see ``canonicalize``.
    """
    return _dumps(canonicalize(value))


def encode_sorted(value: Any) -> bytes:
    """Encode a value whose maps are already in canonical order (hot path, no checks)."""
    return _dumps(value)
