"""The name rule: step names become file names and must not escape a directory."""

from __future__ import annotations

import pytest

from lodec.errors import UnsafeNameError
from lodec.names import check_name, is_safe_name


@pytest.mark.parametrize("name", ["lint", "static-analysis", "a", "0", "job.step_1", "A" * 128, "a..b"])
def test_safe_names_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("..", "start with a letter or digit"),
        (".", "start with a letter or digit"),
        (".hidden", "start with a letter or digit"),
        ("../etc/passwd", "start with a letter or digit"),
        ("a/b", "contains '/'"),
        ("a\\b", "contains '\\\\'"),
        ("/abs", "start with a letter or digit"),
        ("a\x00b", "contains '\\x00'"),
        ("", "is empty"),
        ("A" * 129, "129 characters"),
        ("-rf", "start with a letter or digit"),
        ("naïve", "contains 'ï'"),
        ("a b", "contains ' '"),
    ],
)
def test_path_escaping_and_bad_names_refused(name: str, why: str) -> None:
    with pytest.raises(UnsafeNameError) as info:
        check_name(name)
    assert why in info.value.message
    assert not is_safe_name(name)


def test_non_string_name_refused() -> None:
    with pytest.raises(UnsafeNameError, match="must be a string"):
        check_name(5)
