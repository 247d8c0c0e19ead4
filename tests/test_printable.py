"""Text that is safe to print: ``lodec.names.printable`` and the front end's copy of it.

Every string lodec did not write itself (a step's headline, a stack name
from an older manifest, a message quoting a file) is escaped before it
reaches a terminal or the journal, so it can neither forge a line nor
hide one.
"""

from __future__ import annotations

import json
import unicodedata

import pytest

from lodec.cli import render
from lodec.errors import UnsafeNameError
from lodec.names import (
    check_name,
    check_version,
    is_safe_name,
    is_safe_version,
    name_problem,
    printable,
    version_problem,
)

#: Characters a terminal or a viewer acts on instead of showing.
HOSTILE = [
    "\x00", "\x07", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1b", "\x7f",  # C0 and DEL
    "\x85", "\x9b", "\x9d",                                                    # C1: NEL, CSI, OSC
    "\u200b", "\u200d", "\u200e", "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff",  # format (Cf): bidi, zero width
    "\u2028", "\u2029",                                                        # line / paragraph separators
    "\ud800",                                                                  # a lone surrogate (cannot be encoded)
    "\U000e0041",                                                              # a tag character (Cf)
]


@pytest.mark.parametrize("char", HOSTILE, ids=lambda c: f"U+{ord(c):04X}")
def test_every_control_and_format_character_is_escaped(char: str) -> None:
    out = printable(f"a{char}b")
    assert char not in out and out.isascii()
    assert out.startswith("a\\") and out.endswith("b")


def test_escapes_are_python_escapes_and_decode_back() -> None:
    text = "\x1b]0;pwned\x07ok\r\nFAKE:\t\u202eevil\U000e0041"
    out = printable(text)
    assert out == "\\x1b]0;pwned\\x07ok\\r\\nFAKE:\\t\\u202eevil\\U000e0041"
    assert out.encode().decode("unicode_escape") == text  # no backslash of its own: exactly reversible


@pytest.mark.parametrize("text", ["code-review-pipeline", "naïve résumé", "rеlease-prod", "日本語 テキスト",
                                  "a\u00a0b\u3000c", "emoji 🙂 ok", "repr 'a\\nb' stays", "e\u0301"])
def test_ordinary_text_of_any_script_is_kept(text: str) -> None:
    assert printable(text) == text


def test_the_front_end_escapes_with_the_same_rule() -> None:
    assert render.printable is printable  # one rule, reached through lodec.app


def test_escaped_categories_are_exactly_the_invisible_ones() -> None:
    # The assigned planes, the tags and the start of the private-use planes (the rest is unassigned).
    chars = [chr(i) for r in (range(0x30000), range(0xE0000, 0xE0200), range(0xF0000, 0xF0100)) for i in r]
    shown = "".join(c for c in chars if c.isprintable())
    assert printable(shown) == shown  # letters, marks, numbers, punctuation, symbols, the space
    others = [c for c in chars if not c.isprintable()]
    kept = {c for c in others if printable(c) == c}
    assert kept == {c for c in others if unicodedata.category(c) == "Zs"}  # the other spaces
    assert {unicodedata.category(c) for c in others if c not in kept} == {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def test_json_output_escapes_what_a_terminal_acts_on_and_keeps_the_values() -> None:
    value = {"stack": "a\x9b2Jb\u202ec\x7fd\U000e0041", "ok": "naïve → 日本"}
    text = render.json_text(value)
    assert all(c == "\n" or c.isprintable() for c in text)
    assert "naïve → 日本" in text  # ordinary text is not \u-escaped
    assert json.loads(text) == value


# ------------------------------------------------------------------ the rules


@pytest.mark.parametrize("name", ["rel\nease", "rel\rease", "release\x1b[2K", "r\u0435lease-prod", "release\u202e",
                                  "release prod", "release/prod"])
def test_unsafe_stack_names_are_refused_with_the_reason(name: str) -> None:
    assert not is_safe_name(name) and name_problem(name)
    with pytest.raises(UnsafeNameError) as info:
        check_name(name, what="stack name", code="stack_name_unsafe")
    assert info.value.code == "stack_name_unsafe"
    assert printable(info.value.message) == info.value.message  # the message itself is safe to print


def test_a_look_alike_letter_is_named_by_its_code_point() -> None:
    assert "U+0435" in (name_problem("r\u0435lease-prod") or "")


@pytest.mark.parametrize("version", ["1.0.0", "1", "2.0.0-rc.1+build.5", "v1.0", "2024.01_a", "~1:2.0"])
def test_safe_versions_accepted(version: str) -> None:
    assert is_safe_version(version) and check_version(version) == version


@pytest.mark.parametrize("version", ["", "1.0 beta", "1.0\n", "1.0.0\x1b[2K", "1.0.0\u202e", "１.0", "1" * 129, 5])
def test_unsafe_versions_refused(version: object) -> None:
    assert not is_safe_version(version) and version_problem(version)
    with pytest.raises(UnsafeNameError) as info:
        check_version(version)
    assert info.value.code == "stack_version_unsafe"
