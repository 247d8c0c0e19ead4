"""Canonical CBOR encoding: RFC 8949 §4.2.1 core deterministic encoding.

Restricted to the dCBOR subset lodec uses (see ``docs/vein-format.md``):
unsigned and negative integers within 64-bit signed range, byte strings,
UTF-8 text, arrays, maps, ``true`` / ``false``. No floats, no tags, no
``null``, no indefinite lengths. Integers and lengths use their shortest
form; map entries are sorted by the bytewise order of their encoded keys.

The decoder that proves canonical form lives in ``lodec.codec`` (it is
schema-directed); this module only encodes.
"""

from __future__ import annotations

from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def head(major: int, value: int) -> bytes:
    """Encode a CBOR head (major type 0-7, argument) in its shortest form (RFC 8949 §3, §4.2.1)."""
    mt = major << 5
    if value < 24:
        return bytes((mt | value,))
    if value < 0x100:
        return bytes((mt | 24, value))
    if value < 0x10000:
        return bytes((mt | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((mt | 26,)) + value.to_bytes(4, "big")
    return bytes((mt | 27,)) + value.to_bytes(8, "big")


def _encode(value: Any, out: bytearray) -> None:
    # bool before int: bool is a subclass of int.
    if value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"integer {value} outside the 64-bit signed range")
        out += head(0, value) if value >= 0 else head(1, -1 - value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += head(3, len(raw))
        out += raw
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out += head(2, len(value))
        out += value
    elif isinstance(value, (list, tuple)):
        out += head(4, len(value))
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        entries = []
        for key, item in value.items():
            kb = bytearray()
            _encode(key, kb)
            entries.append((bytes(kb), item))
        entries.sort(key=lambda e: e[0])
        out += head(5, len(entries))
        previous = None
        for kb, item in entries:
            if kb == previous:
                raise ValueError("duplicate map key")
            previous = kb
            out += kb
            _encode(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} in canonical CBOR")


def encode(value: Any) -> bytes:
    """Encode ``value`` in canonical CBOR.

    Args:
        value: ``bool``, ``int`` (64-bit signed), ``str``, ``bytes``,
            ``list``/``tuple`` or ``dict`` of these.

    Raises:
        ValueError: integer out of range, duplicate map key.
        TypeError: unsupported type (``float``, ``None``, ...).
    """
    out = bytearray()
    _encode(value, out)
    return bytes(out)
