"""Strict source JSON: each hostile shape refused with a one-line error and a JSON pointer."""

from __future__ import annotations

import pytest

from lodec.errors import LimitExceeded, SourceError
from lodec.limits import Limits
from lodec.format.strictjson import loads_strict, pointer


@pytest.mark.parametrize(
    ("text", "code", "location"),
    [
        (b'{"a": {"b": 1, "b": 2}}', "duplicate_key", "/a/b"),
        (b'{"a": [1, NaN]}', "non_finite_number", "/a/1"),
        (b'{"a": Infinity}', "non_finite_number", "/a"),
        (b'{"a": -Infinity}', "non_finite_number", "/a"),
        (b'{"n": 9223372036854775808}', "integer_out_of_range", "/n"),
        (b'{"n": -9223372036854775809}', "integer_out_of_range", "/n"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "integer_out_of_range", "/n"),
        (b'{"s": "\\ud800"}', "invalid_text", "/s"),
        (b'{"a/b": {"~": "\\udfff"}}', "invalid_text", "/a~1b/~0"),
        (b'{"a": 1,}', "json_syntax", "line 1 column 9"),
    ],
)
def test_hostile_json_is_refused_with_pointer(text: bytes, code: str, location: str) -> None:
    with pytest.raises(SourceError) as info:
        loads_strict(text, file="src.json")
    assert info.value.code == code
    assert info.value.location == location
    assert "\n" not in str(info.value)


def test_int64_bounds_are_accepted() -> None:
    assert loads_strict(b"[9223372036854775807, -9223372036854775808]") == [2**63 - 1, -(2**63)]


def test_paired_surrogate_escape_is_accepted() -> None:
    assert loads_strict(b'["\\ud83d\\ude00"]') == ["\U0001F600"]


def test_byte_order_mark_is_refused() -> None:
    with pytest.raises(SourceError, match="byte order mark"):
        loads_strict(b'\xef\xbb\xbf{"a": 1}')


def test_invalid_utf8_is_refused_with_offset() -> None:
    with pytest.raises(SourceError) as info:
        loads_strict(b'{"a": "\xff"}')
    assert info.value.location == "byte 7"


def test_ten_thousand_levels_of_nesting_refused_before_parsing() -> None:
    with pytest.raises(LimitExceeded, match="10000 levels"):
        loads_strict(b"[" * 10000 + b"]" * 10000)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert loads_strict(b'["' + b"[" * 100 + b'"]') == ["[" * 100]


def test_oversized_file_refused_before_decoding() -> None:
    with pytest.raises(LimitExceeded, match="limit is 1000"):
        loads_strict(b'"' + b"x" * 2000 + b'"', limits=Limits(max_file_bytes=1000))


def test_pointer_escapes_rfc6901() -> None:
    assert pointer(["a/b", "m~n", 3]) == "/a~1b/m~0n/3"
    assert pointer([]) == "/"
