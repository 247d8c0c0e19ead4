"""Documented resource limits, checked before the work they bound.

Every reader (strict JSON sources, ``.lode`` schemas, vein decoding) takes a
``Limits``; the defaults are the numbers in ``docs/vein-format.md`` §Limits.
A limit is checked before the memory or time it protects is spent: file
size before reading, declared lengths and counts before allocating.
"""

from __future__ import annotations

#: The 64-bit signed integer range: the only integers format v1 carries
#: (CBOR major types 0 and 1 within it; JSON sources are checked against it).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class Limits:
    """Resource limits (bytes, entries, levels). Immutable; equal when all four are equal.

    Attributes:
        max_file_bytes: largest vein, JSON source or schema file (bytes).
        max_text_bytes: largest single string or byte string (UTF-8 bytes).
        max_entries: most items in one array or entries in one map.
        max_json_depth: deepest nesting of arrays/objects in a JSON source.
    """

    # A plain class, not a dataclass: `dataclasses` imports `inspect`, ~8 ms of every `lodec verify`.
    __slots__ = ("max_file_bytes", "max_text_bytes", "max_entries", "max_json_depth")
    max_file_bytes: int
    max_text_bytes: int
    max_entries: int
    max_json_depth: int

    def __init__(self, max_file_bytes: int = 16 * 1024 * 1024, max_text_bytes: int = 1024 * 1024,
                 max_entries: int = 1024 * 1024, max_json_depth: int = 32) -> None:
        setter = object.__setattr__
        setter(self, "max_file_bytes", max_file_bytes)
        setter(self, "max_text_bytes", max_text_bytes)
        setter(self, "max_entries", max_entries)
        setter(self, "max_json_depth", max_json_depth)

    def _key(self) -> tuple[int, int, int, int]:
        return (self.max_file_bytes, self.max_text_bytes, self.max_entries, self.max_json_depth)

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if type(other) is Limits else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return ("Limits(max_file_bytes={!r}, max_text_bytes={!r}, max_entries={!r}, max_json_depth={!r})"
                .format(*self._key()))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: Limits is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: Limits is immutable")

    def __reduce__(self) -> tuple[type[Limits], tuple[int, int, int, int]]:
        return (Limits, self._key())


DEFAULT_LIMITS = Limits()
