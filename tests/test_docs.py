"""Docs stay in step with the code: every stable code the code can emit is documented."""

from __future__ import annotations

import re

from .conftest import ROOT


def test_every_error_code_is_documented() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "lodec").rglob("*.py"))
    codes = set(re.findall(r'code(?:=| = )"([a-z_]+)"', source))
    codes |= set(re.findall(r'report\.add\(\s*"([a-z_]+)"', source))
    codes |= set(re.findall(r'problems\.append\(\("([a-z_]+)"', source))
    codes |= set(re.findall(r'(?:self\.fail|r\.fail)\([^\n]*?"([a-z_]+)"(?:, [a-z]+)?\)', source))
    codes -= {"error"}
    documented = set(re.findall(r"`([a-z_]+)`", (ROOT / "docs" / "errors.md").read_text()))
    assert codes, "no codes found: the scan is broken"
    assert {"step_tampered", "non_canonical", "trailing_bytes", "cycle"} <= codes
    assert codes - documented == set()
