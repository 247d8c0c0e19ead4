"""The signed path's checks without regular expressions give the verdicts of the regular expressions they skip.

``dsse.b64decode``, ``versions.check_version`` and the statement's time and
hex checks first try the common form with string methods and fall back to
the published patterns (compiled only then). Each is compared here with the
pattern alone, on chosen cases and on generated text mixing the characters
the patterns care about (ASCII and non-ASCII digits among them: ``\\d``
matches both).
"""

from __future__ import annotations

import base64
import binascii
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lodec.sign import dsse, statement, versions


def reference_b64decode(text: str) -> bytes:
    """``dsse.b64decode`` as the two DSSE alphabets' patterns define it."""
    if re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        altchars = None
    elif re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        altchars = b"-_"
    else:
        raise ValueError("not base64")
    padded = text.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64 ({exc})") from None


def outcome(fn, text: str) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    try:
        return "ok", fn(text)
    except ValueError as exc:
        return "error", str(exc)


B64_CHARS = st.sampled_from(list("AQgw+/-_=") + ["a", "Z", "0", "9", " ", "\n", "é", "\u0663", "\x00"])


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(B64_CHARS, max_size=16),
                 st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
                 st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
                 st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode().rstrip("=")),
                 st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))))
@example("")
@example("QQ")
@example("QQ=")
@example("QQ==")
@example("QQ===")
@example("Q")
@example("QQ=Q")
@example("-_8")
@example("+/-_")
@example("+/8=")
def test_b64decode_equals_the_patterns(text: str) -> None:
    assert outcome(dsse.b64decode, text) == outcome(reference_b64decode, text)


VERSION_CHARS = st.sampled_from(list("0123.-+aZ") + ["00", "1", "9", "\u0663", "\uff11", " "])


def semver_verdict(text: str) -> bool:
    return re.fullmatch(versions._SEMVER, text) is not None


@settings(max_examples=3000, deadline=None)
@given(st.lists(VERSION_CHARS, max_size=12).map("".join))
def test_check_version_equals_the_semver_pattern(text: str) -> None:
    assert outcome(versions.check_version, text)[0] == ("ok" if semver_verdict(text) else "error")


@pytest.mark.parametrize("text, ok", [
    ("1.4.0", True), ("0.0.0", True), ("10.20.30", True), ("2.0.0-rc.1", True), ("1.0.0+build.5", True),
    ("01.0.0", False), ("1.00.0", False), ("1.0", False), ("1.0.0.0", False), ("", False), ("1..0", False),
    ("\u0661.0.0", False), ("1\u0663.0.0", True),  # \d is any decimal digit after a first ASCII 1-9
    ("1.0.0 ", False), ("v1.0.0", False),
])  # fmt: skip
def test_check_version_cases(text: str, ok: bool) -> None:
    assert semver_verdict(text) == ok
    assert outcome(versions.check_version, text)[0] == ("ok" if ok else "error")


TIME_CHARS = st.sampled_from(list("0129-T:Z ") + ["\u0663", "t", "z"])


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.lists(TIME_CHARS, min_size=18, max_size=21).map("".join),
                 st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))))
@example("2027-01-31T00:00:00Z")
@example("2027-01-31T00:00:00z")
@example("2027-01-31t00:00:00Z")
@example("2027-01-31T00:00:0\u0663Z")
def test_utc_second_check_is_within_the_time_pattern(text: str) -> None:
    matches = re.fullmatch(statement._TIME, text) is not None
    if statement._is_utc_second(text):
        assert matches
    else:  # only non-ASCII digits take the pattern
        assert not matches or not text.isascii()


HEX_CHARS = st.sampled_from(list("0123456789abcdefABCDEFg \n") + ["\u0663", "é"])


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(HEX_CHARS, min_size=62, max_size=66), st.binary(min_size=31, max_size=33).map(bytes.hex)))
@example("0" * 64)
@example("0" * 63 + "A")
@example("0" * 63 + "\n")
@example(" " + "0" * 63)
def test_hex64_check_equals_the_pattern(text: str) -> None:
    assert statement._is_hex64(text) == (re.fullmatch(r"[0-9a-f]{64}", text) is not None)


@pytest.mark.parametrize("text", ["2027-01-31", "2027-1-31", "2027-01-31T00:00:00Z", "\u0662027-01-31"])
def test_parse_time_date_form(text: str) -> None:
    expect = "ok"
    try:
        statement.parse_time(text)
    except ValueError:
        expect = "error"
    assert expect == ("ok" if text in ("2027-01-31", "2027-01-31T00:00:00Z") else "error")


@pytest.mark.parametrize("name", ["", "a", "release-prod", "x.y_z-1", "A" * 128])
def test_the_match_all_rule_matches_what_fnmatch_matches(name: str) -> None:
    from fnmatch import fnmatchcase

    from lodec.sign.policy import TrustPolicy, TrustRule

    policy = TrustPolicy((TrustRule("*", (), 1),))
    assert fnmatchcase(name, "*")
    assert policy.rule_for(name) is policy.rules[0]


def test_the_signed_path_uses_the_datetime_modules_own_classes() -> None:
    import datetime

    from lodec.sign import policy

    assert (statement.date, statement.datetime, statement.timedelta, statement.timezone) == (
        datetime.date, datetime.datetime, datetime.timedelta, datetime.timezone)
    assert (policy.date, policy.datetime, policy.timezone) == (datetime.date, datetime.datetime, datetime.timezone)
    when = statement.parse_time("2027-01-31T00:00:00+01:00")
    assert type(when) is datetime.datetime and when == datetime.datetime(2027, 1, 30, 23, tzinfo=datetime.timezone.utc)
