"""The compliance-release skills, run directly: tool-evidence, license-audit, privacy-check, release-readiness.

Each script is run as lodec runs it (request JSON on stdin, LODEC_* environment,
a fresh output directory) and the artifact is checked. The tool-evidence
fixtures in stacks/compliance-release/example/reports/ are real ruff, bandit and pytest output
(see PROVENANCE.md there).
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli

SKILLS = ROOT / "stacks" / "compliance-release" / "skills"
REPORTS = ROOT / "stacks" / "compliance-release" / "example" / "reports"
SCRIPTS = {
    "tool-evidence": "tool_evidence.py",
    "license-audit": "license_audit.py",
    "privacy-check": "privacy_check.py",
    "release-readiness": "release_readiness.py",
}
CANARY = "CANARY-7f3e9b1c-never-read-me"


def script(skill: str) -> Path:
    return SKILLS / skill / "scripts" / SCRIPTS[skill]


def skill_env(skill: str, workspace: Path, out: Path, phase: str,
              extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONDONTWRITEBYTECODE": "1",  # never leave __pycache__ in a skill folder (it would change the digest)
        "LODEC_OUTPUT_DIR": str(out),
        "LODEC_WORKSPACE": str(workspace),
        "LODEC_SKILL_DIR": str(SKILLS / skill),
        "LODEC_STEP": phase,
        "LODEC_RUN_ID": "test-run",
        "LODEC_PYTHON": sys.executable,
    }
    env.update(extra or {})
    return env


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str], out: Path):
        self.rc, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        path = out / "artifact.json"
        self.text = path.read_text(encoding="utf-8") if path.exists() else ""
        self.artifact: dict[str, Any] = json.loads(self.text) if self.text else {}
        self.outputs = sorted(p.name for p in out.iterdir())

    @property
    def summary(self) -> dict[str, Any]:
        return self.artifact["summary"]


_counter = [0]


def run_skill(skill: str, workspace: Path, *, inputs: dict[str, str] | None = None, phase: str | None = None,
              extra_request: dict[str, Any] | None = None, env: dict[str, str] | None = None,
              argv: list[str] | None = None) -> Result:
    _counter[0] += 1
    out = workspace.parent / f"out-{skill}-{_counter[0]}"
    out.mkdir()
    phase = phase or skill
    request: dict[str, Any] = {
        "request": "lodec-step-request/v1",
        "run": "test-run",
        "step": {"name": phase, "skillRef": f"skill:{skill}", "outputs": ["artifact.json"]},
        "inputs": inputs or {},
        "workspace": str(workspace),
        "output_dir": str(out),
        "trust": "normal",
        "upstream_artifacts": {},
        "upstream_status": {},
    }
    request.update(extra_request or {})
    proc = subprocess.run(argv or [sys.executable, str(script(skill))], input=json.dumps(request),
                          capture_output=True, text=True, cwd=out.parent,
                          env=skill_env(skill, workspace, out, phase, env), timeout=60)
    return Result(proc, out)


def check_common(result: Result, phase: str, *, rc: int = 0) -> None:
    assert result.rc == rc, result.stderr
    assert result.outputs == ["artifact.json"]
    assert result.text.endswith("}\n") and json.dumps(result.artifact, indent=2, sort_keys=True) + "\n" == result.text
    assert result.artifact["phase"] == phase
    assert result.summary["status"] in ("OK", "WARN", "BLOCKED", "MISSING")
    assert isinstance(result.summary["headline"], str) and result.summary["headline"]
    assert isinstance(result.summary["next_action"], str) and result.summary["next_action"]
    checkpoint = result.artifact["context_checkpoint"]
    assert sorted(checkpoint) == ["decisions_made", "key_files", "open_questions", "summary"]
    assert result.stdout.splitlines()[0].endswith(result.summary["headline"])


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return workspace


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ======================================================================== the skill folders

@pytest.mark.parametrize("skill", sorted(SCRIPTS))
def test_skill_folder_passes_lodec_skill_check(skill: str) -> None:
    folder = SKILLS / skill
    code, out, err = run_cli("skill", "check", folder)
    assert code == 0, out + err
    assert f"{skill} ok" in out and "network no" in out
    assert (folder / "bin" / "run").read_text() == (
        '#!/bin/sh\nexec "${LODEC_PYTHON:-python3}" "$LODEC_SKILL_DIR/scripts/%s" "$@"\n' % SCRIPTS[skill])
    for path in (folder / "bin" / "run", script(skill)):
        assert path.stat().st_mode & stat.S_IXUSR
    assert not any(p.is_symlink() for p in folder.rglob("*"))
    assert not any(p.name == "__pycache__" for p in folder.rglob("*"))
    assert f"name: {skill}\n" in (folder / "SKILL.md").read_text()


# ======================================================================== tool-evidence

def evidence(ws: Path, fmt: str, report: str | None, phase: str = "qa", **kw: Any) -> Result:
    inputs = {"format": fmt}
    if report is not None:
        inputs["report"] = report
    return run_skill("tool-evidence", ws, inputs=inputs, phase=phase, **kw)


def with_report(ws: Path, name: str, target: str | None = None) -> str:
    target = target or f"reports/{name}"
    (ws / target).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPORTS / name, ws / target)
    return target


@pytest.mark.parametrize(("fmt", "fixture", "status", "counts"), [
    ("ruff-json", "ruff-findings.json", "WARN", {"diagnostics": 3, "syntax_errors": 0, "files": 1}),
    ("ruff-json", "ruff-clean.json", "OK", {"diagnostics": 0, "syntax_errors": 0, "files": 0}),
    ("ruff-json", "ruff-syntax.json", "BLOCKED", {"diagnostics": 2, "syntax_errors": 2, "files": 1}),
    ("junit-xml", "pytest-pass.xml", "OK", {"tests": 3, "passed": 2, "failures": 0, "errors": 0, "skipped": 1}),
    ("junit-xml", "pytest-fail.xml", "BLOCKED", {"tests": 3, "passed": 1, "failures": 1, "errors": 1, "skipped": 0}),
    ("bandit-json", "bandit-high.json", "BLOCKED", {"high": 1, "medium": 1, "low": 2, "errors": 0}),
    ("bandit-json", "bandit-medium.json", "WARN", {"high": 0, "medium": 1, "low": 1, "errors": 0}),
    ("bandit-json", "bandit-clean.json", "OK", {"high": 0, "medium": 0, "low": 0, "errors": 0}),
])
def test_tool_evidence_real_reports(ws: Path, fmt: str, fixture: str, status: str, counts: dict[str, int]) -> None:
    report = with_report(ws, fixture)
    result = evidence(ws, fmt, report, phase="security")
    check_common(result, "security")
    s = result.summary
    assert (s["status"], s["counts"], s["report"], s["format"]) == (status, counts, report, fmt)
    assert s["tool"] == {"ruff-json": "ruff", "junit-xml": "pytest", "bandit-json": "bandit"}[fmt]
    assert s["truncated"] == 0
    assert result.artifact["context_checkpoint"]["key_files"][0] == report
    for f in s["findings"]:
        assert sorted(f) == ["file", "line", "message", "rule", "severity"]
        assert not f["file"].startswith("/")
    assert (s["next_action"] == "None.") == (status == "OK")
    assert str(ws) not in result.text and "/work/" not in result.text


def test_tool_evidence_findings_content(ws: Path) -> None:
    ruff = evidence(ws, "ruff-json", with_report(ws, "ruff-findings.json")).summary
    assert [(f["file"], f["line"], f["rule"], f["severity"]) for f in ruff["findings"]] == [
        ("app.py", 3, "F401", "warning"), ("app.py", 6, "F401", "warning"), ("app.py", 21, "F821", "warning")]
    syntax = evidence(ws, "ruff-json", with_report(ws, "ruff-syntax.json")).summary
    assert {f["rule"] for f in syntax["findings"]} == {"invalid-syntax"} and "broken.py" in syntax["headline"]
    bandit = evidence(ws, "bandit-json", with_report(ws, "bandit-high.json")).summary
    assert [(f["rule"], f["severity"], f["file"], f["line"]) for f in bandit["findings"]][:2] == [
        ("B602", "high", "app.py", 11), ("B301", "medium", "app.py", 16)]
    assert "B602 in app.py:11" in bandit["next_action"]
    junit = evidence(ws, "junit-xml", with_report(ws, "pytest-fail.xml")).summary
    assert [(f["rule"], f["file"], f["line"]) for f in junit["findings"]] == [
        ("error", "sample_failing_checks.py", 10), ("failure", "sample_failing_checks.py", 18)]
    assert junit["findings"][1]["message"] == "sample_failing_checks::test_add_wrong: AssertionError: two plus two"
    assert "test_add_wrong" in junit["next_action"]


@pytest.mark.parametrize(("fmt", "command"), [
    ("ruff-json", "ruff check --output-format json -o reports/ruff.json ."),
    ("junit-xml", "pytest --junitxml reports/junit.xml"),
    ("bandit-json", "bandit -r . -f json -o reports/bandit.json"),
])
def test_tool_evidence_missing_report_is_missing_not_a_crash(ws: Path, fmt: str, command: str) -> None:
    result = evidence(ws, fmt, None)  # the default report path, which does not exist
    check_common(result, "qa")
    s = result.summary
    assert s["status"] == "MISSING" and s["counts"] == {} and s["findings"] == []
    assert "is missing" in s["headline"] and command in s["headline"] and command in s["next_action"]
    assert result.artifact["context_checkpoint"]["key_files"] == []


@pytest.mark.parametrize(("fmt", "content", "reason"), [
    ("ruff-json", "{not json", "not valid JSON"),
    ("ruff-json", '{"diagnostics": []}', "expected a JSON array"),
    ("ruff-json", '[{"code": "F401"}]', "lacks code/message/filename"),
    ("bandit-json", "[]", "\"results\" array"),
    ("bandit-json", '{"results": [{"issue_severity": "SEVERE"}]}', "lacks issue_severity"),
    ("junit-xml", "<testsuite><testcase", "not well-formed XML"),
    ("junit-xml", "<html><body/></html>", "root element is <html>"),
    ("junit-xml", '<testsuite tests="many"/>', "not a number"),
    ("junit-xml", '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n'
                  '<testsuite tests="1"><testcase name="&lol2;"/></testsuite>', "DOCTYPE or ENTITY"),
    ("junit-xml", '<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                  '<testsuite><testcase name="&xxe;"/></testsuite>', "DOCTYPE or ENTITY"),
])
def test_tool_evidence_malformed_report_is_blocked(ws: Path, fmt: str, content: str, reason: str) -> None:
    write(ws, "reports/bad", content)
    result = evidence(ws, fmt, "reports/bad")
    check_common(result, "qa")
    s = result.summary
    tool = {"ruff-json": "ruff", "junit-xml": "pytest", "bandit-json": "bandit"}[fmt]
    assert s["status"] == "BLOCKED" and s["findings"] == [] and s["counts"] == {}
    assert s["headline"].startswith(f"reports/bad is not valid {tool} output: ") and reason in s["headline"]
    assert "root:" not in result.text  # no entity was expanded


def test_tool_evidence_utf16_doctype_is_refused(ws: Path) -> None:
    xml = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><testsuite/>'
    (ws / "r.xml").write_bytes(xml.encode("utf-16"))
    s = evidence(ws, "junit-xml", "r.xml").summary
    assert s["status"] == "BLOCKED" and "DOCTYPE" in s["headline"]


def test_tool_evidence_absolute_paths_become_workspace_relative(ws: Path) -> None:
    diagnostics = json.loads((REPORTS / "ruff-findings.json").read_text())
    diagnostics[0]["filename"] = str(ws / "src" / "app.py")
    diagnostics[1]["filename"] = "/elsewhere/outside.py"
    diagnostics[2]["message"] = f"see {ws}/src/app.py"
    write(ws, "reports/ruff.json", json.dumps(diagnostics))
    result = evidence(ws, "ruff-json", "reports/ruff.json")
    files = [f["file"] for f in result.summary["findings"]]
    assert files == ["app.py", "outside.py", "src/app.py"]
    assert str(ws) not in result.text and "/elsewhere" not in result.text
    bandit = json.loads((REPORTS / "bandit-medium.json").read_text())
    for item in bandit["results"]:
        item["filename"] = str(ws / "pkg" / "medium.py")
    write(ws, "reports/bandit.json", json.dumps(bandit))
    result = evidence(ws, "bandit-json", "reports/bandit.json")
    assert {f["file"] for f in result.summary["findings"]} == {"pkg/medium.py"}
    assert "pkg/medium.py" in result.artifact["context_checkpoint"]["key_files"]


def test_tool_evidence_junit_counts_from_testcases(ws: Path) -> None:
    write(ws, "no-attrs.xml", '<testsuites><testsuite name="s"><testcase classname="pkg.mod" name="a"/>'
                              '<testcase classname="pkg.mod" name="b"><failure message="boom"/></testcase>'
                              '<testcase classname="pkg.mod" name="c"><skipped/></testcase></testsuite></testsuites>')
    s = evidence(ws, "junit-xml", "no-attrs.xml").summary
    assert s["status"] == "BLOCKED"
    assert s["counts"] == {"tests": 3, "passed": 1, "failures": 1, "errors": 0, "skipped": 1}
    assert s["findings"] == [{"file": "pkg/mod.py", "line": None, "rule": "failure", "severity": "error",
                              "message": "pkg.mod::b: boom"}]
    # attributes that understate the failures do not hide them
    write(ws, "lying.xml", '<testsuite tests="1" failures="0" errors="0"><testcase name="x"><error/></testcase>'
                           '</testsuite>')
    assert evidence(ws, "junit-xml", "lying.xml").summary["status"] == "BLOCKED"
    write(ws, "empty.xml", '<testsuites><testsuite name="pytest" tests="0" failures="0"/></testsuites>')
    empty = evidence(ws, "junit-xml", "empty.xml").summary
    assert (empty["status"], empty["headline"]) == ("WARN", "pytest ran no tests.")


def test_tool_evidence_bandit_scan_errors_warn(ws: Path) -> None:
    report = json.loads((REPORTS / "bandit-clean.json").read_text())
    report["errors"] = [{"filename": "./broken.py", "reason": "syntax error while parsing AST from file"}]
    report["results"] = [dict(json.loads((REPORTS / "bandit-high.json").read_text())["results"][0])]  # one LOW
    write(ws, "b.json", json.dumps(report))
    s = evidence(ws, "bandit-json", "b.json").summary
    assert s["status"] == "WARN" and s["counts"] == {"high": 0, "medium": 0, "low": 1, "errors": 1}
    assert {(f["rule"], f["file"]) for f in s["findings"]} == {("scan-error", "broken.py"), ("B403", "app.py")}


def test_tool_evidence_caps_findings(ws: Path) -> None:
    one = json.loads((REPORTS / "ruff-findings.json").read_text())[0]
    write(ws, "many.json", json.dumps([dict(one, location={"row": i, "column": 1}) for i in range(1, 151)]))
    s = evidence(ws, "ruff-json", "many.json").summary
    assert s["counts"]["diagnostics"] == 150 and len(s["findings"]) == 100 and s["truncated"] == 50
    assert [f["line"] for f in s["findings"]] == list(range(1, 101))


@pytest.mark.parametrize(("inputs", "message"), [
    ({"format": "eslint-json", "report": "r.json"}, "input format 'eslint-json' is not one of"),
    ({"report": "r.json"}, "input format '' is not one of"),
    ({"format": "ruff-json", "report": "/etc/passwd"}, "must be relative to the workspace"),
    ({"format": "ruff-json", "report": "../outside.json"}, "leaves the workspace"),
])
def test_tool_evidence_usage_errors(ws: Path, inputs: dict[str, str], message: str) -> None:
    result = run_skill("tool-evidence", ws, inputs=inputs)
    assert result.rc == 2 and result.outputs == []
    assert result.stderr.startswith("tool-evidence: ") and message in result.stderr


def test_tool_evidence_via_bin_run_is_deterministic(ws: Path) -> None:
    report = with_report(ws, "bandit-high.json")
    argv = [str(SKILLS / "tool-evidence" / "bin" / "run")]
    first = evidence(ws, "bandit-json", report, phase="security", argv=argv)
    second = evidence(ws, "bandit-json", report, phase="security", argv=argv)
    check_common(first, "security")
    assert first.text == second.text and first.summary["status"] == "BLOCKED"


# ======================================================================== license-audit

@pytest.fixture(scope="module")
def audit_module() -> dict[str, Any]:
    return runpy.run_path(str(script("license-audit")), run_name="license_audit_under_test")


@pytest.mark.parametrize(("expression", "normalised", "cls"), [
    ("MIT", "MIT", "permissive"),
    ("mit", "MIT", "permissive"),
    ("MIT License", "MIT", "permissive"),
    ("Apache 2.0", "Apache-2.0", "permissive"),
    ("(MIT OR Apache-2.0) AND BSD-3-Clause", "(MIT OR Apache-2.0) AND BSD-3-Clause", "permissive"),
    ("MIT OR GPL-3.0-only", "MIT OR GPL-3.0-only", "permissive"),
    ("LGPL-2.1-only OR GPL-2.0-only", "LGPL-2.1-only OR GPL-2.0-only", "weak_copyleft"),
    ("Apache-2.0 AND GPL-2.0-only", "Apache-2.0 AND GPL-2.0-only", "strong_copyleft"),
    ("MIT AND MPL-2.0", "MIT AND MPL-2.0", "weak_copyleft"),
    ("GPL-2.0+", "GPL-2.0-or-later", "strong_copyleft"),
    ("GPL-3.0-or-later", "GPL-3.0-or-later", "strong_copyleft"),
    ("AGPL-3.0", "AGPL-3.0-only", "strong_copyleft"),
    ("SSPL-1.0", "SSPL-1.0", "strong_copyleft"),
    ("OSL-3.0", "OSL-3.0", "strong_copyleft"),
    ("LGPL-3.0-or-later", "LGPL-3.0-or-later", "weak_copyleft"),
    ("MPL-2.0", "MPL-2.0", "weak_copyleft"),
    ("EPL-2.0", "EPL-2.0", "weak_copyleft"),
    ("GPL-2.0-only WITH Classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0", "weak_copyleft"),
    ("GPL-3.0-only WITH GCC-exception-3.1", "GPL-3.0-only WITH GCC-exception-3.1", "weak_copyleft"),
    ("Apache-2.0 WITH LLVM-exception", "Apache-2.0 WITH LLVM-exception", "permissive"),
    ("GPL-2.0-only WITH OpenVPN-openssl-exception", "GPL-2.0-only WITH openvpn-openssl-exception",
     "strong_copyleft"),
    ("LicenseRef-Proprietary", "LicenseRef-Proprietary", "unknown"),
    ("MIT AND LicenseRef-x", "MIT AND LicenseRef-x", "unknown"),
    ("GPL-3.0-only OR LicenseRef-x", "GPL-3.0-only OR LicenseRef-x", "unknown"),
    ("GPL-3.0-only AND LicenseRef-x", "GPL-3.0-only AND LicenseRef-x", "strong_copyleft"),
    ("UNLICENSED", "UNLICENSED", "unknown"),
    ("SEE LICENSE IN LICENSE.md", "SEE LICENSE IN LICENSE.md", "unknown"),
    ("Some Custom Terms v2", "Some Custom Terms v2", "unknown"),
    ("Elastic-2.0", "Elastic-2.0", "unknown"),
    ("", None, "unknown"),
    (None, None, "unknown"),
])
def test_license_classification(audit_module: dict[str, Any], expression: str | None, normalised: str | None,
                                cls: str) -> None:
    license_, got, reason = audit_module["Classifier"]().classify(expression)
    assert (license_, got) == (normalised, cls)
    assert (reason is not None) == (cls in ("unknown", "strong_copyleft"))


def node_package(ws: Path, name: str, meta: dict[str, Any]) -> None:
    write(ws, f"node_modules/{name}/package.json", json.dumps(dict({"name": name, "version": "1.0.0"}, **meta)))


def test_license_audit_npm_blocks_on_gpl(ws: Path) -> None:
    write(ws, "package.json", json.dumps({
        "name": "app", "license": "MIT",
        "dependencies": {"left-pad": "^1", "legacy-obj": "1", "legacy-arr": "1", "@scope/pkg": "2", "gone": "1"},
        "devDependencies": {"gpl-tool": "1", "lgpl-lib": "1"},
    }))
    node_package(ws, "left-pad", {"license": "WTFPL OR MIT"})
    node_package(ws, "legacy-obj", {"license": {"type": "ISC", "url": "https://example.invalid"}})
    node_package(ws, "legacy-arr", {"licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]})
    node_package(ws, "@scope/pkg", {"license": "SEE LICENSE IN EULA.txt"})
    node_package(ws, "gpl-tool", {"license": "GPL-3.0-or-later"})
    node_package(ws, "lgpl-lib", {"license": "LGPL-2.1-only"})
    result = run_skill("license-audit", ws)
    check_common(result, "license-audit")
    s = result.summary
    assert s["status"] == "BLOCKED"
    assert s["counts"] == {"total": 7, "permissive": 3, "weak_copyleft": 1, "strong_copyleft": 1, "unknown": 2}
    assert [(f["name"], f["class"]) for f in s["flagged"]] == [
        ("gpl-tool", "strong_copyleft"), ("@scope/pkg", "unknown"), ("gone", "unknown")]
    assert s["flagged"][0]["license"] == "GPL-3.0-or-later" and "gpl-tool (GPL-3.0-or-later)" in s["headline"]
    assert "not installed" in s["flagged"][2]["reason"]
    deps = {d["name"]: d for d in result.artifact["dependencies"]}
    assert deps["legacy-obj"]["license"] == "ISC"
    assert deps["legacy-obj"]["source"] == "node_modules/legacy-obj/package.json:license"
    assert deps["legacy-arr"] == {"name": "legacy-arr", "ecosystem": "npm", "manifest": "package.json",
                                  "scope": "dependencies", "license": "MIT OR Apache-2.0",
                                  "source": "node_modules/legacy-arr/package.json:licenses", "class": "permissive"}
    assert deps["gpl-tool"]["scope"] == "devDependencies" and deps["lgpl-lib"]["class"] == "weak_copyleft"
    assert [d["name"] for d in result.artifact["dependencies"]] == sorted(deps, key=lambda n: n.encode())
    assert result.artifact["environment"] is None
    assert result.artifact["context_checkpoint"]["key_files"] == ["package.json"]
    assert str(ws) not in result.text


def test_license_audit_npm_unknown_warns_and_clean_is_ok(ws: Path) -> None:
    write(ws, "package.json", json.dumps({"dependencies": {"a": "1", "b": "1"}}))
    node_package(ws, "a", {"license": "MIT"})
    node_package(ws, "b", {})
    warn = run_skill("license-audit", ws).summary
    assert warn["status"] == "WARN" and warn["counts"]["unknown"] == 1
    assert warn["flagged"] == [{"name": "b", "ecosystem": "npm", "license": None, "class": "unknown",
                                "reason": "no license field in node_modules/b/package.json"}]
    node_package(ws, "b", {"license": "MPL-2.0"})
    ok = run_skill("license-audit", ws).summary
    assert (ok["status"], ok["flagged"], ok["next_action"]) == ("OK", [], "None.")
    assert ok["headline"] == "No GPL/AGPL licenses found in 2 direct dependencies."


def dist(site: Path, name: str, *, expression: str | None = None, license_: str | None = None,
         classifiers: tuple[str, ...] = ()) -> None:
    lines = ["Metadata-Version: 2.4", f"Name: {name}", "Version: 1.0"]
    if expression:
        lines.append(f"License-Expression: {expression}")
    if license_:
        body = license_.replace("\n", "\n        ")
        lines.append(f"License: {body}")
    lines += [f"Classifier: {c}" for c in classifiers]
    folder = site / f"{name.replace('-', '_')}-1.0.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text("\n".join(lines) + "\n\n", encoding="utf-8")


BSD_TEXT = ("Copyright (c) 2020 Somebody\nAll rights reserved.\n\nRedistribution and use in source and binary forms, "
            "with or without\nmodification, are permitted provided that the following conditions are met:\n"
            "3. Neither the name of the copyright holder nor the names of its contributors may be used\n")


def test_license_audit_python_metadata_priority(ws: Path) -> None:
    write(ws, "requirements.txt", "\n".join([
        "# pinned deps",
        "-r other.txt",
        "--index-url https://example.invalid/simple",
        "-e git+https://example.invalid/repo.git#egg=editable",
        "Expr_Pkg[extra1]>=1.0 ; python_version >= '3.8'  # inline comment",
        "short-license==2.0 \\",
        "    --hash=sha256:0123456789abcdef",
        "Classified.Pkg~=3.1",
        "fulltext-only",
        "https://example.invalid/wheel-1.0-py3-none-any.whl",
        "not-installed",
    ]) + "\n")
    write(ws, "pyproject.toml", "\n".join([
        "[project]",
        'name = "app"',
        'dependencies = ["expr-pkg>=1", "gpl-pkg", "weird-license"]',
        "[project.optional-dependencies]",
        'docs = ["lgpl-pkg"]',
        "[tool.poetry.dependencies]",
        'python = "^3.11"',
        'poetry-dep = "^1"',
    ]) + "\n")
    site = ws / "site"
    dist(site, "expr.pkg", expression="MIT OR Apache-2.0", license_="GPL", classifiers=(
        "License :: OSI Approved :: GNU General Public License v3 (GPLv3)",))
    dist(site, "short-license", license_="MIT License")
    dist(site, "classified-pkg", license_="Copyright (c) 2020 Somebody\nAll rights reserved.\nLong text " * 3,
         classifiers=("License :: OSI Approved :: Apache Software License", "License :: OSI Approved :: BSD License",
                      "Programming Language :: Python :: 3"))
    dist(site, "fulltext-only", license_=BSD_TEXT)
    dist(site, "gpl-pkg", classifiers=("License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)",))
    dist(site, "weird-license", license_="Proprietary-ish")
    dist(site, "lgpl-pkg", expression="LGPL-3.0-or-later")
    dist(site, "poetry-dep", license_="BSD")
    result = run_skill("license-audit", ws, inputs={"site-packages": "site"})
    check_common(result, "license-audit")
    deps = {d["name"]: d for d in result.artifact["dependencies"]}
    assert sorted(deps) == ["classified-pkg", "expr-pkg", "fulltext-only", "gpl-pkg", "lgpl-pkg", "not-installed",
                            "poetry-dep", "short-license", "weird-license"]
    got = {n: (d["license"], d["source"], d["class"], d["manifest"], d["scope"]) for n, d in deps.items()}
    assert got == {
        "expr-pkg": ("MIT OR Apache-2.0", "metadata:License-Expression", "permissive", "requirements.txt",
                     "requirements"),
        "short-license": ("MIT", "metadata:License", "permissive", "requirements.txt", "requirements"),
        "classified-pkg": ("Apache-2.0 OR BSD", "metadata:Classifier", "permissive", "requirements.txt",
                           "requirements"),
        "fulltext-only": ("BSD-3-Clause", "metadata:License (text)", "permissive", "requirements.txt",
                          "requirements"),
        "not-installed": (None, None, "unknown", "requirements.txt", "requirements"),
        "gpl-pkg": ("GPL-2.0-or-later", "metadata:Classifier", "strong_copyleft", "pyproject.toml", "dependencies"),
        "weird-license": ("Proprietary-ish", "metadata:License", "unknown", "pyproject.toml", "dependencies"),
        "lgpl-pkg": ("LGPL-3.0-or-later", "metadata:License-Expression", "weak_copyleft", "pyproject.toml",
                     "optional:docs"),
        "poetry-dep": ("BSD", "metadata:License", "permissive", "pyproject.toml", "poetry"),
    }
    s = result.summary
    assert s["status"] == "BLOCKED" and s["counts"]["strong_copyleft"] == 1 and s["counts"]["unknown"] == 2
    assert {f["name"]: f["reason"] for f in s["flagged"]}["not-installed"] == "not installed in site"
    assert result.artifact["environment"] == {"kind": "input", "path": "site"}
    assert result.artifact["context_checkpoint"]["key_files"] == ["requirements.txt", "pyproject.toml"]
    assert "editable" not in deps and "python" not in deps and "other" not in deps


def test_license_audit_defaults_to_the_workspace_venv(ws: Path) -> None:
    write(ws, "requirements.txt", "agpl-thing\n")
    dist(ws / ".venv" / "lib" / "python3.11" / "site-packages", "agpl-thing", expression="AGPL-3.0-only")
    result = run_skill("license-audit", ws)
    assert result.artifact["environment"] == {"kind": "workspace-venv", "path": ".venv/lib/python3.11/site-packages"}
    assert result.summary["status"] == "BLOCKED"
    assert result.summary["flagged"][0]["reason"] == "AGPL-3.0-only is strong copyleft"


def go_module(cache: Path, module: str, version: str, files: dict[str, str]) -> None:
    escaped = "".join("!" + c.lower() if c.isupper() else c for c in module)
    for name, text in files.items():
        write(cache, f"{escaped}@{version}/{name}", text)


MIT_TEXT = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n"
APACHE_TEXT = "                                 Apache License\n                           Version 2.0, January 2004\n"
GPL3_TEXT = "                    GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007\n"


def test_license_audit_go_module_cache(ws: Path, tmp_path: Path) -> None:
    write(ws, "go.mod", "\n".join([
        "module example.com/app",
        "",
        "go 1.22",
        "",
        "require github.com/BurntSushi/toml v1.3.2",
        "",
        "require (",
        "\tgolang.org/x/text v0.14.0",
        "\tgithub.com/dual/lib v1.0.0 // a comment",
        "\texample.com/gone v1.0.0",
        "\texample.com/nolicense v0.1.0",
        "\tgithub.com/indirect/dep v2.0.0+incompatible // indirect",
        ")",
    ]) + "\n")
    cache = tmp_path / "gomodcache"
    go_module(cache, "github.com/BurntSushi/toml", "v1.3.2", {"COPYING": MIT_TEXT})
    go_module(cache, "golang.org/x/text", "v0.14.0", {"LICENSE": BSD_TEXT})
    go_module(cache, "github.com/dual/lib", "v1.0.0", {"LICENSE-MIT": MIT_TEXT, "LICENSE-APACHE": APACHE_TEXT})
    go_module(cache, "example.com/nolicense", "v0.1.0", {"README.md": "hello"})
    go_module(cache, "github.com/indirect/dep", "v2.0.0+incompatible", {"LICENSE": GPL3_TEXT})
    result = run_skill("license-audit", ws, env={"GOMODCACHE": str(cache)})
    check_common(result, "license-audit")
    deps = {d["name"]: (d["license"], d["class"], d["source"]) for d in result.artifact["dependencies"]}
    assert deps == {
        "github.com/BurntSushi/toml": ("MIT", "permissive", "module cache:COPYING"),
        "golang.org/x/text": ("BSD-3-Clause", "permissive", "module cache:LICENSE"),
        "github.com/dual/lib": ("Apache-2.0 OR MIT", "permissive", "module cache:LICENSE-APACHE,LICENSE-MIT"),
        "example.com/gone": (None, "unknown", None),
        "example.com/nolicense": (None, "unknown", None),
    }
    s = result.summary
    assert s["status"] == "WARN" and s["counts"]["total"] == 5
    assert {f["name"]: f["reason"] for f in s["flagged"]} == {
        "example.com/gone": "not in the Go module cache",
        "example.com/nolicense": "no LICENSE or COPYING file in the module cache"}
    assert str(tmp_path) not in result.text
    # GPL text in the cache blocks; GOPATH/pkg/mod is the fallback, input gomodcache wins over the environment
    go_module(tmp_path / "gopath" / "pkg" / "mod", "example.com/gone", "v1.0.0", {"LICENSE": GPL3_TEXT})
    via_gopath = run_skill("license-audit", ws, env={"GOPATH": str(tmp_path / "gopath")})
    gone = {d["name"]: d for d in via_gopath.artifact["dependencies"]}["example.com/gone"]
    assert (gone["license"], gone["class"]) == ("GPL-3.0-only", "strong_copyleft")
    assert via_gopath.summary["status"] == "BLOCKED"
    via_input = run_skill("license-audit", ws, inputs={"gomodcache": str(cache)},
                          env={"GOPATH": str(tmp_path / "gopath")})
    assert via_input.summary["status"] == "WARN"


def test_license_audit_without_manifests_warns(ws: Path) -> None:
    result = run_skill("license-audit", ws)
    check_common(result, "license-audit")
    s = result.summary
    assert s["status"] == "WARN" and s["headline"].startswith("No dependency manifest found")
    assert s["counts"] == {"total": 0, "permissive": 0, "weak_copyleft": 0, "strong_copyleft": 0, "unknown": 0}
    assert result.artifact["dependencies"] == [] and result.artifact["context_checkpoint"]["key_files"] == []


def test_license_audit_bad_site_packages_is_a_usage_error(ws: Path) -> None:
    write(ws, "requirements.txt", "x\n")
    result = run_skill("license-audit", ws, inputs={"site-packages": "nope"})
    assert result.rc == 2 and result.stderr.startswith("license-audit: ") and result.outputs == []
    assert "input site-packages 'nope' is not a directory" in result.stderr


# ======================================================================== privacy-check

SIGNUP = """import posthog from 'posthog-js';

export function Signup() {
  return (
    <form onSubmit={submit}>
      <input type="email" name="email" />
      <button>Join</button>
    </form>
  );
}
"""


def test_privacy_check_email_without_note_warns(ws: Path) -> None:
    write(ws, "src/signup.js", SIGNUP.replace("import posthog from 'posthog-js';\n", ""))
    write(ws, "README.md", "# App\n\nA small app.\n")
    result = run_skill("privacy-check", ws)
    check_common(result, "privacy-check")
    s = result.summary
    assert s["status"] == "WARN" and s["missing"] == ["privacy_note"]
    assert s["headline"] == "Email collection detected but no privacy note found."
    assert s["signals"] == [{"kind": "personal_data", "file": "src/signup.js", "line": 5, "evidence": "email"}]
    checkpoint = result.artifact["context_checkpoint"]
    assert checkpoint["open_questions"] == ["Where should the privacy note live?"]
    assert checkpoint["key_files"] == ["src/signup.js"]
    assert result.stdout.splitlines()[-1] == "privacy-check: release hygiene check only, not a legal review."


@pytest.mark.parametrize(("files", "note"), [
    ({"PRIVACY.md": "# Privacy\nWe store your email.\n"}, "PRIVACY.md"),
    ({"privacy.md": "We store your email.\n"}, "privacy.md"),
    ({"docs/Privacy.md": "We store your email.\n"}, "docs/Privacy.md"),
    ({"README.md": "# App\n\n## Privacy and data\n\nWe store your email.\n"}, "README.md"),
    ({"README.rst": "App\n===\n\nPrivacy\n-------\n\nWe store your email.\n"}, "README.rst"),
])
def test_privacy_check_note_present_is_ok(ws: Path, files: dict[str, str], note: str) -> None:
    write(ws, "app/api/signup/route.ts", "export async function POST(req) {\n"
                                         "  const { email, phoneNumber } = await req.json();\n}\n")
    for name, text in files.items():
        write(ws, name, text)
    result = run_skill("privacy-check", ws)
    check_common(result, "privacy-check")
    s = result.summary
    assert (s["status"], s["missing"], s["next_action"]) == ("OK", [], "None.")
    assert s["headline"] == f"Email and phone collection detected; privacy note found ({note})."
    assert note in result.artifact["context_checkpoint"]["key_files"]


def test_privacy_check_readme_mentioning_privacy_without_heading_is_not_a_note(ws: Path) -> None:
    write(ws, "src/signup.js", SIGNUP)
    write(ws, "README.md", "# App\n\nWe care about privacy.\n")
    s = run_skill("privacy-check", ws).summary
    assert s["status"] == "WARN" and s["missing"] == ["privacy_note"]
    assert s["headline"] == "Email collection plus telemetry (posthog) detected but no privacy note found."


def test_privacy_check_telemetry_words(ws: Path) -> None:
    write(ws, "lib/telemetry.js", "\n".join([
        "import * as Sentry from '@sentry/browser';",     # 1 sentry (twice on the line: one signal)
        "Sentry.init({ dsn });",                          # 2 sentry
        "gtag('config', 'G-XXXX');",                      # 3 gtag(
        "window.ga('send', 'pageview');",                 # 4 not ga( (a method call)
        "ga('create');",                                  # 5 ga(
        "const segmentation = mega(1) + omega(2);",       # 6 nothing
        "mixpanel.track('x'); trackingId = 1;",           # 7 mixpanel, tracking
        "const analyticsEnabled = TELEMETRY_ON;",         # 8 analytics, telemetry
        "// a line segment",                              # 9 segment
    ]) + "\n")
    write(ws, "lib/format.js", "export function formatEmail(email) { return email.trim(); }\n")  # not a form/route
    s = run_skill("privacy-check", ws).summary
    got = [(x["line"], x["evidence"]) for x in s["signals"] if x["file"] == "lib/telemetry.js"]
    assert got == [(1, "sentry"), (2, "sentry"), (3, "gtag("), (5, "ga("), (7, "mixpanel"), (7, "tracking"),
                   (8, "analytics"), (8, "telemetry"), (9, "segment")]
    assert all(x["kind"] == "telemetry" for x in s["signals"]) and all(x["file"] != "lib/format.js"
                                                                        for x in s["signals"])
    assert s["status"] == "WARN" and s["missing"] == ["privacy_note"]
    # a TELEMETRY.md documents telemetry (but would not cover collected personal data)
    write(ws, "TELEMETRY.md", "We use Sentry for crash reports.\n")
    documented = run_skill("privacy-check", ws)
    assert documented.summary["status"] == "OK" and documented.summary["missing"] == []
    assert any("TELEMETRY.md" in d for d in documented.artifact["context_checkpoint"]["decisions_made"])
    write(ws, "src/signup.js", SIGNUP)
    assert run_skill("privacy-check", ws).summary["missing"] == ["privacy_note"]


def test_privacy_check_personal_data_categories(ws: Path) -> None:
    write(ws, "server/routes.py", "\n".join([
        "@app.post('/profile')",
        "def profile():",
        "    first_name = request.form['firstName']",
        "    street = request.form['billing_address']",
        "    card = request.form['cardNumber']",
        "    key = request.form['api_key']",
        "    token = request.form['authToken']",
        "    csrf = request.form['csrfToken']",
        "    ip = request.remote_addr; ipAddress = ip",
        "    avatar = request.files['avatar']",
    ]) + "\n")
    s = run_skill("privacy-check", ws).summary
    got = [(x["line"], x["evidence"]) for x in s["signals"]]
    assert got == [(3, "name"), (4, "address"), (4, "payment"), (5, "payment"), (6, "api key"), (7, "token"),
                   (10, "file upload")]
    assert s["headline"].startswith("Name, address, payment and more collection detected")


def test_privacy_check_unsafe_env_template(ws: Path) -> None:
    secret_value = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
    db_password = "Zx9-qP4-rT7-kL2"
    write(ws, ".env.example", "\n".join([
        "# copy to .env",
        "API_KEY=your-api-key-here",
        f"STRIPE_SECRET_KEY={secret_value}",
        "DB_PASSWORD=",
        f"DATABASE_URL=postgres://app:{db_password}@localhost/app",
        "PLACEHOLDER_URL=postgres://user:password@localhost/app",
        "NEXT_PUBLIC_ANALYTICS_KEY=pk_abc123def456",
        "SESSION_SECRET=changeme",
        "JWT_SECRET='a8f5f167f44f4964e6c998dee827110c'",
        "PORT=3000",
    ]) + "\n")
    write(ws, ".env.sample", "GITHUB_TOKEN=${GITHUB_TOKEN}\n")
    result = run_skill("privacy-check", ws)
    check_common(result, "privacy-check")
    s = result.summary
    assert s["status"] == "WARN" and s["missing"] == []
    assert s["signals"] == [
        {"kind": "unsafe_env_example", "file": ".env.example", "line": 3, "evidence": "STRIPE_SECRET_KEY"},
        {"kind": "unsafe_env_example", "file": ".env.example", "line": 5, "evidence": "DATABASE_URL"},
        {"kind": "unsafe_env_example", "file": ".env.example", "line": 9, "evidence": "JWT_SECRET"},
    ]
    assert "DATABASE_URL, JWT_SECRET, STRIPE_SECRET_KEY" in s["headline"]
    for value in (secret_value, db_password, "a8f5f167f44f4964e6c998dee827110c"):
        assert value not in result.text and value not in result.stdout + result.stderr
    assert result.artifact["context_checkpoint"]["key_files"] == [".env.example", ".env.sample"]


def canary_workspace(ws: Path) -> list[str]:
    forbidden = [".env", ".env.local", ".env.production", "credentials.json", "id_rsa", "server.pem",
                 "service-account.json", "src/.env", "src/tls.key", "config/app-secret.json", "prod.env"]
    for name in forbidden:
        write(ws, name, f"SECRET_TOKEN={CANARY}\n")
    write(ws, "src/signup.js", SIGNUP)
    write(ws, ".env.example", "API_KEY=your-key-here\n")
    write(ws, "README.md", "# App\n")
    # links with innocent names that lead to a secret are skipped, never followed
    (ws / "src" / "config.js").symlink_to(ws / ".env")
    (ws / ".env.sample").symlink_to(ws / ".env.production")
    return forbidden + ["src/config.js", ".env.sample"]


HARNESS = r"""
import os, runpy, sys
log = open(sys.argv[1], "w", encoding="utf-8")
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        log.write(os.fsdecode(args[0]) + "\n")
        log.flush()
sys.addaudithook(hook)
target = sys.argv[2]
sys.argv = [target]
runpy.run_path(target, run_name="__main__")
"""


def test_privacy_check_canary_never_opened(ws: Path, tmp_path: Path) -> None:
    forbidden = canary_workspace(ws)
    opened_log = tmp_path / "opened.log"
    result = run_skill("privacy-check", ws,
                       argv=[sys.executable, "-c", HARNESS, str(opened_log), str(script("privacy-check"))])
    check_common(result, "privacy-check")
    opened = {os.path.normpath(p) for p in opened_log.read_text(encoding="utf-8").splitlines()}
    # the hook demonstrably sees the skill's reads ...
    assert str(ws / ".env.example") in opened and str(ws / "src" / "signup.js") in opened
    assert str(ws / "README.md") in opened
    # ... and none of them is a forbidden file
    for name in forbidden:
        assert str(ws / name) not in opened, name
    assert not [p for p in opened if p.startswith(str(ws)) and CANARY in Path(p).read_text(errors="replace")]
    everything = result.text + result.stdout + result.stderr
    assert CANARY not in everything
    assert result.summary["status"] == "WARN" and result.summary["missing"] == ["privacy_note"]
    decisions = " ".join(result.artifact["context_checkpoint"]["decisions_made"])
    for name in (".env", ".env.local", ".env.production", "credentials.json", "id_rsa", "server.pem", "src/.env"):
        assert name in decisions  # named as not opened, by name only


def test_privacy_check_guard_aborts_on_a_forbidden_open(ws: Path) -> None:
    canary_workspace(ws)
    code = r"""
import runpy, sys
g = runpy.run_path(sys.argv[1], run_name="privacy_guard_under_test")
g["install_guard"](sys.argv[2])
with open(sys.argv[2] + "/.env.example") as handle:   # allowed
    handle.read()
print("template read", flush=True)
open(sys.argv[2] + "/.env").read()                    # must never happen
print("LEAKED", flush=True)
"""
    proc = subprocess.run([sys.executable, "-c", code, str(script("privacy-check")), str(ws)],
                          capture_output=True, text=True, env={"PATH": os.environ.get("PATH", ""),
                                                               "PYTHONDONTWRITEBYTECODE": "1"}, timeout=30)
    assert proc.returncode == 3
    assert proc.stdout == "template read\n"
    assert "privacy-check: guard: refusing to open .env" in proc.stderr
    assert CANARY not in proc.stdout + proc.stderr


def test_privacy_check_guard_catches_a_patched_script(ws: Path, tmp_path: Path) -> None:
    """If a change to the scan ever opened .env, the run aborts instead of reading it."""
    canary_workspace(ws)
    source = script("privacy-check").read_text(encoding="utf-8")
    patched = source.replace("    files, refused = source_files(workspace)\n",
                             "    read_text.__globals__['forbidden'] = lambda path: False\n"
                             "    read_text(workspace, '.env')\n"
                             "    files, refused = source_files(workspace)\n")
    assert patched != source
    copy = tmp_path / "patched_privacy_check.py"
    copy.write_text(patched, encoding="utf-8")
    result = run_skill("privacy-check", ws, argv=[sys.executable, str(copy)])
    assert result.rc == 3 and result.outputs == []
    assert "guard: refusing to open .env" in result.stderr and CANARY not in result.stdout + result.stderr


@pytest.mark.parametrize(("path", "expected"), [
    (".env", True), (".env.local", True), (".env.production", True), (".ENV.Development", True), ("prod.env", True),
    ("src/.env", True), ("credentials.json", True), ("credentials-prod.json", True), ("client_secret_123.json", True),
    ("service-account.json", True), ("service_account_key.json", True), ("gcp.key.json", True),
    ("id_rsa", True), ("id_rsa.pub", True), ("id_ed25519", True), ("id_ecdsa_sk", True), ("id_dsa", True),
    ("server.pem", True), ("tls.key", True), ("cert.p12", True), ("cert.pfx", True), (".npmrc", True),
    (".ssh/config", True), (".aws/credentials", True),
    (".env.example", False), (".env.sample", False), (".env.template", False), (".ENV.EXAMPLE", False),
    ("src/signup.js", False), ("package.json", False), ("README.md", False), ("keys.json", False),
    ("environment.ts", False), ("src/envelope.js", False),
])
def test_privacy_check_forbidden_predicate(path: str, expected: bool) -> None:
    forbidden = runpy.run_path(str(script("privacy-check")), run_name="privacy_predicate_under_test")["forbidden"]
    assert forbidden(path) is expected


def test_privacy_check_skips_links_node_modules_git_and_huge_files(ws: Path, tmp_path: Path) -> None:
    write(ws, "src/node_modules/pkg/form.js", "<form><input type='email'></form>\n")
    write(ws, "src/.git/form.js", "<form><input type='email'></form>\n")
    write(ws, "src/huge.js", "<form><input type='email'></form>\n" + "x" * (1024 * 1024 + 10))
    outside = write(tmp_path, "outside/form.js", "<form><input type='email'></form>\n")
    (ws / "src" / "linked.js").symlink_to(outside)
    (ws / "app").symlink_to(outside.parent, target_is_directory=True)
    s = run_skill("privacy-check", ws).summary
    assert (s["status"], s["signals"], s["headline"]) == (
        "OK", [], "No personal-data collection or telemetry signals found.")


def test_privacy_check_makes_no_legal_claims(ws: Path) -> None:
    write(ws, "src/signup.js", SIGNUP)
    write(ws, ".env.example", "API_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n")
    result = run_skill("privacy-check", ws)
    skill_md = (SKILLS / "privacy-check" / "SKILL.md").read_text()
    assert "not a legal review" in skill_md and "not a legal review" in result.stdout
    for text in (skill_md, result.text, result.stdout, script("privacy-check").read_text()):
        for claim in ("GDPR", "CCPA", "compliant", "compliance"):
            assert claim.lower() not in text.lower(), claim


# ======================================================================== release-readiness

PHASES = ["review", "qa", "security", "license-audit", "privacy-check"]


def upstream(tmp_path: Path, statuses: dict[str, str], lodec_status: dict[str, str] | None = None
             ) -> dict[str, Any]:
    """Upstream artifacts with the given summary statuses; lodec_status overrides lodec's per-phase status."""
    store = tmp_path / "cas"
    store.mkdir(exist_ok=True)
    artifacts, status = {}, {}
    for phase in PHASES:
        path = store / f"{phase}.json"
        value = statuses.get(phase, "OK")
        path.write_text(json.dumps({"phase": phase, "summary": {
            "status": value, "headline": f"{phase} says {value}.",
            "next_action": "None." if value == "OK" else f"Fix the {phase} findings."}}))
        lodec = (lodec_status or {}).get(phase, "verified")
        if lodec == "absent":
            continue
        artifacts[f"{phase}/artifact.json"] = None if lodec in ("missing", "skipped") else str(path)
        status[f"{phase}/artifact.json"] = lodec
    return {"upstream_artifacts": artifacts, "upstream_status": status}


def readiness(ws: Path, extra: dict[str, Any], inputs: dict[str, str] | None = None, **kw: Any) -> Result:
    result = run_skill("release-readiness", ws, inputs=inputs, extra_request=extra, **kw)
    if result.rc != 2:
        # The gate: BLOCKED exits 1 (its step, and so the run, fails), with the decision on stdout and stderr.
        blocked = result.artifact.get("summary", {}).get("status") == "BLOCKED"
        check_common(result, "release-readiness", rc=1 if blocked else 0)
        if blocked:
            s = result.summary
            assert json.loads(result.stdout.split("\n", 1)[1]) == result.artifact
            err = result.stderr.splitlines()
            assert err[0] == f"release-readiness: BLOCKED: {s['headline']}"
            flagged = [c for c in s["checks"] if c["status"] != "OK" and not c["accepted"]]
            assert [e.split(":")[1].strip() for e in err[1:-1]] == [f"{c['phase']} {c['status']}" for c in flagged]
            assert err[-1] == f"release-readiness: next: {s['next_action']}"
        else:
            assert result.stderr == ""
        assert [c["phase"] for c in result.summary["checks"]] == (
            (inputs or {}).get("require", ",".join(PHASES)).split(","))
    return result


def test_release_readiness_all_ok(ws: Path, tmp_path: Path) -> None:
    result = readiness(ws, upstream(tmp_path, {}))
    s = result.summary
    assert (s["status"], s["headline"], s["next_action"]) == (
        "OK", "Release ready: all 5 required checks OK.", "Proceed to /ship.")
    assert s["checks"][0] == {"phase": "review", "status": "OK", "evidence": "artifact", "upstream_status": "verified",
                              "headline": "review says OK.", "accepted": False, "reason": None}
    assert str(tmp_path) not in result.text


def test_release_readiness_one_warn(ws: Path, tmp_path: Path) -> None:
    result = readiness(ws, upstream(tmp_path, {"privacy-check": "WARN"}))
    s = result.summary
    assert s["status"] == "WARN" and s["headline"] == "Release needs attention: privacy-check WARN."
    assert s["next_action"] == ("privacy-check: Fix the privacy-check findings. "
                                "Then re-run /release-readiness before /ship.")
    assert result.artifact["context_checkpoint"]["open_questions"] == [
        "Is the privacy-check WARN acceptable for this release? If so, pin it with accept-warn."]


def test_release_readiness_accepted_warn(ws: Path, tmp_path: Path) -> None:
    result = readiness(ws, upstream(tmp_path, {"privacy-check": "WARN", "license-audit": "WARN"}),
                       inputs={"accept-warn": "privacy-check, license-audit"})
    s = result.summary
    assert s["status"] == "OK"
    assert s["headline"] == "Release ready: all 5 required checks OK (accepted WARN: license-audit, privacy-check)."
    assert [c["accepted"] for c in s["checks"]] == [False, False, False, True, True]
    assert [c["status"] for c in s["checks"]][3:] == ["WARN", "WARN"]
    decisions = result.artifact["context_checkpoint"]["decisions_made"]
    assert decisions == [
        "Accepted the license-audit WARN (input accept-warn, pinned in the signed stack): license-audit says WARN.",
        "Accepted the privacy-check WARN (input accept-warn, pinned in the signed stack): privacy-check says WARN."]


def test_release_readiness_cannot_accept_blocked(ws: Path, tmp_path: Path) -> None:
    result = readiness(ws, upstream(tmp_path, {"security": "BLOCKED"}), inputs={"accept-warn": "security"})
    s = result.summary
    assert s["status"] == "BLOCKED" and s["headline"] == "Release blocked: security BLOCKED."
    assert "security: Fix the security findings." in s["next_action"]
    assert result.artifact["context_checkpoint"]["decisions_made"] == [
        "accept-warn for security not applied: BLOCKED cannot be accepted, only WARN can."]


@pytest.mark.parametrize("how", ["missing", "skipped", "absent"])
def test_release_readiness_missing_evidence_blocks(ws: Path, tmp_path: Path, how: str) -> None:
    result = readiness(ws, upstream(tmp_path, {"privacy-check": "WARN"}, {"qa": how}),
                       inputs={"accept-warn": "qa"} if how == "skipped" else None)
    s = result.summary
    qa = s["checks"][1]
    assert (qa["status"], qa["evidence"], qa["headline"]) == ("MISSING", None, None)
    assert qa["upstream_status"] == (None if how == "absent" else how)
    assert s["status"] == "BLOCKED"
    assert s["headline"] == "Release blocked: qa evidence missing; privacy-check WARN."
    assert s["next_action"] == ("Run /qa. privacy-check: Fix the privacy-check findings. "
                                "Then re-run /release-readiness before /ship.")


def test_release_readiness_upstream_missing_status_blocks(ws: Path, tmp_path: Path) -> None:
    s = readiness(ws, upstream(tmp_path, {"qa": "MISSING"})).summary
    assert s["status"] == "BLOCKED" and s["checks"][1]["evidence"] == "artifact"
    assert s["headline"] == "Release blocked: qa evidence missing."


def test_release_readiness_tampered_is_never_opened(ws: Path, tmp_path: Path) -> None:
    extra = upstream(tmp_path, {}, {"security": "integrity_mismatch"})
    tampered = extra["upstream_artifacts"]["security/artifact.json"]
    assert json.loads(Path(tampered).read_text())["summary"]["status"] == "OK"  # its content would say OK
    opened_log = tmp_path / "opened.log"
    result = readiness(ws, extra, argv=[sys.executable, "-c", HARNESS, str(opened_log),
                                        str(script("release-readiness"))])
    opened = opened_log.read_text().splitlines()
    assert tampered not in opened
    assert extra["upstream_artifacts"]["review/artifact.json"] in opened  # the hook saw the verified reads
    s = result.summary
    assert s["checks"][2] == {"phase": "security", "status": "TAMPERED", "evidence": None,
                              "upstream_status": "integrity_mismatch", "headline": None, "accepted": False,
                              "reason": "artifact changed after its step recorded it (integrity_mismatch); not read"}
    assert s["status"] == "BLOCKED" and s["headline"] == "Release blocked: security evidence tampered."
    assert s["next_action"].startswith("Re-run /security: its artifact changed after it was recorded.")


def test_release_readiness_upstream_blocked_and_unusable(ws: Path, tmp_path: Path) -> None:
    extra = upstream(tmp_path, {"qa": "BLOCKED", "review": "GREEN"})
    Path(extra["upstream_artifacts"]["license-audit/artifact.json"]).write_text("{not json")
    s = readiness(ws, extra).summary
    assert [c["status"] for c in s["checks"]] == ["BLOCKED", "BLOCKED", "OK", "BLOCKED", "OK"]
    assert s["checks"][0]["reason"] == "artifact status 'GREEN' is not one of OK, WARN, BLOCKED, MISSING"
    assert s["checks"][3]["reason"] == "artifact is not valid JSON" and s["checks"][3]["evidence"] is None
    assert s["status"] == "BLOCKED"
    assert s["headline"] == "Release blocked: review evidence unusable; qa BLOCKED; license-audit evidence unusable."


def test_release_readiness_custom_require_and_usage_errors(ws: Path, tmp_path: Path) -> None:
    s = readiness(ws, upstream(tmp_path, {"privacy-check": "WARN"}), inputs={"require": "qa,security"}).summary
    assert s["status"] == "OK" and len(s["checks"]) == 2
    bad = readiness(ws, upstream(tmp_path, {}), inputs={"require": "qa", "accept-warn": "security"})
    assert bad.rc == 2 and bad.stderr.startswith("release-readiness: ") and bad.outputs == []
    assert "which is not required" in bad.stderr
    bad = readiness(ws, upstream(tmp_path, {}), inputs={"require": "qa;rm -rf"})
    assert bad.rc == 2 and "input require: 'qa;rm -rf' is not a step name" in bad.stderr
    bad = run_skill("release-readiness", ws, extra_request={"upstream_status": []})
    assert bad.rc == 2 and "request.upstream_status must be an object" in bad.stderr
