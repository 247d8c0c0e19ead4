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


def test_readme_python_example_runs(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    monkeypatch.chdir(ROOT)
    exec(compile(block.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "87 blake3:8056a1a0" in out and "('lint', 'static-analysis', 'ai-review')" in out
