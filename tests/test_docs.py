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


def test_readme_signing_walkthrough_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import shlex
    import shutil

    from .conftest import run_cli

    text = (ROOT / "README.md").read_text()
    section = text.split("## Signed distribution", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    shutil.copytree(ROOT / "stacks" / "code-review", tmp_path / "cr")
    monkeypatch.chdir(tmp_path / "cr")
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    ran = 0
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] != "lodec":
            continue
        code, out, err = run_cli(*words[1:])
        assert code == 0, (line, err)
        ran += 1
    assert ran == 7 and "Verified code-review-pipeline 1.0.0 and unpacked" in out
    assert (tmp_path / "cr" / "unpacked" / "code-review-stack.json.dsse").is_file()


def test_readme_run_walkthrough_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The "Run a stack" commands, word for word, in a copy of the repository's example (a git repo)."""
    import json
    import shlex
    import shutil

    from .conftest import run_cli

    text = (ROOT / "README.md").read_text()
    section = text.split("## Run a stack", 1)[1].split("\n## ", 1)[0]
    run_block, drift_block = re.findall(r"```sh\n(.*?)```", section, re.S)[:2]
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    shutil.copytree(ROOT / "stacks" / "code-review", repo / "stacks" / "code-review")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    outputs = []
    for line in run_block.splitlines():
        words = shlex.split(line, comments=True)
        assert words and words[0] == "lodec", line
        if words[1:3] == ["skill", "check"]:
            words = words[:3] + sorted(str(p) for p in (repo / "stacks/code-review/skills").iterdir())
        code, out, err = run_cli(*words[1:])
        assert code == 0, (line, err)
        outputs.append(out)
    assert json.loads(outputs[1].splitlines()[0]) == {"batch": 1, "type": "read", "steps": ["lint"]}
    assert "succeeded: 3 succeeded" in outputs[2]
    assert "## lint" in outputs[3] and "code-review: request_changes" in outputs[3]
    assert "1 run(s): 1 succeeded" in outputs[4]
    [run_dir] = (repo / ".lodec" / "runs").iterdir()
    assert {"run.json", "journal.md", "provenance.json"} <= {p.name for p in run_dir.iterdir()}

    drift = str(tmp_path / "cr-drift")
    lines = [line.replace("/tmp/cr-drift", drift) for line in drift_block.splitlines()]
    assert lines[0].startswith("cp -r stacks/code-review ")
    shutil.copytree(repo / "stacks" / "code-review", drift)
    assert lines[1].startswith("echo '# edited' >> ")
    with open(f"{drift}/skills/eslint-check/lint.py", "a") as fh:
        fh.write("# edited\n")
    words = shlex.split(lines[2].split(";")[0])
    code, _out, err = run_cli(*words[1:])
    assert code == 1 and "skill:eslint-check drifted: pinned blake3:ecdb6336" in err and "[skill_drifted]" in err


def test_architecture_names_every_module_and_readme_every_package_and_doc() -> None:
    """docs/architecture.md's module map names every module; README's Layout every package, Documents every doc."""
    arch = (ROOT / "docs" / "architecture.md").read_text()
    modules = arch.split("## Modules", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_.]+)`(?: \([a-z]+\))? \| (.*) \|$", modules, re.M))
    missing = []
    for path in sorted((ROOT / "lodec").rglob("*.py")):
        package = ".".join(path.relative_to(ROOT).parent.parts)
        name = path.stem
        if name == "__init__" and package != "lodec.cli":
            continue
        if package not in rows or f"`{name}`" not in rows[package]:
            missing.append(f"{package}.{name}")
    assert missing == []
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    packages = {p.parent.name for p in (ROOT / "lodec").glob("*/__init__.py")}
    assert {p for p in packages if f"`{p}/`" not in layout} == set()
    documents = readme.split("## Documents", 1)[1].split("\n## ", 1)[0]
    docs = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert {d for d in docs if f"docs/{d}" not in documents} == set()
