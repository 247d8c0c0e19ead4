"""Documented resource limits, checked before the work they bound.

Every reader (strict JSON sources, ``.lode`` schemas, vein decoding) takes a
``Limits``; the defaults are the numbers in ``docs/vein-format.md`` §Limits.
A limit is checked before the memory or time it protects is spent: file
size before reading, declared lengths and counts before allocating.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The 64-bit signed integer range: the only integers format v1 carries
#: (CBOR major types 0 and 1 within it; JSON sources are checked against it).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits (bytes, entries, levels).

    Attributes:
        max_file_bytes: largest vein, JSON source or schema file (bytes).
        max_text_bytes: largest single string or byte string (UTF-8 bytes).
        max_entries: most items in one array or entries in one map.
        max_json_depth: deepest nesting of arrays/objects in a JSON source.
    """

    max_file_bytes: int = 16 * 1024 * 1024
    max_text_bytes: int = 1024 * 1024
    max_entries: int = 1024 * 1024
    max_json_depth: int = 32


DEFAULT_LIMITS = Limits()
