#!/usr/bin/env python3
"""tool-evidence: normalise a real tool's report into a release-evidence artifact.

Reads the lodec step request (JSON) on stdin. Input `format` names the report
format (ruff-json, junit-xml, bandit-json) and `report` its workspace-relative
path. Writes $LODEC_OUTPUT_DIR/artifact.json with the phase status (OK, WARN,
BLOCKED, MISSING), counts and the findings. A missing report is MISSING and a
malformed one BLOCKED: both are evidence, so the exit status is still 0. Exit 2
when the request itself is unusable. Python standard library only.
"""

import json
import os
import re
import sys
import xml.etree.ElementTree as ElementTree
import xml.parsers.expat

SKILL = "tool-evidence"
MAX_FINDINGS = 100
MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_MESSAGE = 300
SEVERITY_RANK = {"error": 0, "high": 0, "medium": 1, "warning": 1, "low": 2, "note": 3}

FORMATS = {
    "ruff-json": {
        "tool": "ruff",
        "default": "reports/ruff.json",
        "produce": "ruff check --output-format json -o {report} .",
    },
    "junit-xml": {
        "tool": "pytest",
        "default": "reports/junit.xml",
        "produce": "pytest --junitxml {report}",
    },
    "bandit-json": {
        "tool": "bandit",
        "default": "reports/bandit.json",
        "produce": "bandit -r . -f json -o {report}",
    },
}
RUFF_SYNTAX_CODES = {None, "invalid-syntax", "E999"}
BANDIT_SEVERITIES = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low", "UNDEFINED": "low"}


class UsageError(Exception):
    """The request cannot be used (exit 2)."""


class Malformed(Exception):
    """The report is not valid output of its tool (status BLOCKED)."""


def fail(message):
    sys.stderr.write(SKILL + ": " + message + "\n")
    sys.exit(2)


# --------------------------------------------------------------------------- request

def read_request():
    raw = sys.stdin.read()
    try:
        request = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise UsageError("the request on stdin is not valid JSON: %s" % exc)
    if not isinstance(request, dict):
        raise UsageError("the request on stdin is not a JSON object")
    kind = request.get("request", "lodec-step-request/v1")
    if kind != "lodec-step-request/v1":
        raise UsageError("unsupported request type %r" % (kind,))
    inputs = request.get("inputs", {})
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        raise UsageError("request.inputs must be an object of strings")
    return request, inputs


def phase_name(request):
    step = request.get("step")
    if isinstance(step, dict) and isinstance(step.get("name"), str) and step["name"]:
        return step["name"]
    return os.environ.get("LODEC_STEP") or SKILL


def workspace_of(request):
    workspace = request.get("workspace") or os.environ.get("LODEC_WORKSPACE")
    if not isinstance(workspace, str) or not workspace:
        raise UsageError("no workspace: set request.workspace or LODEC_WORKSPACE")
    if not os.path.isabs(workspace) or not os.path.isdir(workspace):
        raise UsageError("workspace %r is not an absolute path to a directory" % workspace)
    return os.path.realpath(workspace)


def report_path(workspace, relative):
    """Validate the `report` input; return the absolute path inside the workspace."""
    if not relative or "\0" in relative:
        raise UsageError("input report must be a non-empty workspace-relative path")
    if os.path.isabs(relative) or relative.startswith("\\"):
        raise UsageError("input report %r must be relative to the workspace" % relative)
    parts = relative.replace("\\", "/").split("/")
    if ".." in parts:
        raise UsageError("input report %r leaves the workspace" % relative)
    full = os.path.join(workspace, *[p for p in parts if p not in ("", ".")])
    real = os.path.realpath(full)
    if real != workspace and not real.startswith(workspace + os.sep):
        raise UsageError("input report %r resolves outside the workspace" % relative)
    return full


def clean_relative(relative):
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


# --------------------------------------------------------------------------- paths

class Paths:
    """Turns file names found in a report into workspace-relative POSIX paths."""

    def __init__(self, workspace):
        self.prefixes = sorted({workspace, os.path.abspath(os.environ.get("LODEC_WORKSPACE", workspace))},
                               key=len, reverse=True)

    def inside(self, name):
        name = name.replace("\\", "/")
        return any(name.startswith(p.replace("\\", "/").rstrip("/") + "/") for p in self.prefixes)

    def file(self, name):
        if not isinstance(name, str) or not name:
            return ""
        name = name.replace("\\", "/")
        if name.startswith("/"):
            for prefix in self.prefixes:
                prefix = prefix.replace("\\", "/").rstrip("/") + "/"
                if name.startswith(prefix):
                    return clean_relative(name[len(prefix):])
            return name.rsplit("/", 1)[-1]  # outside the workspace: never an absolute path
        if re.match(r"^[A-Za-z]:/", name):
            return name.rsplit("/", 1)[-1]
        return clean_relative(name)

    def text(self, message):
        if not isinstance(message, str):
            return ""
        for prefix in self.prefixes:
            message = message.replace(prefix.rstrip("/") + "/", "")
        message = " ".join(message.split())
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE - 3] + "..."
        return message


def finding(file, line, rule, severity, message):
    return {"file": file, "line": line if isinstance(line, int) and not isinstance(line, bool) else None,
            "rule": rule, "severity": severity, "message": message}


def finding_key(f):
    return (SEVERITY_RANK.get(f["severity"], 9), f["file"].encode("utf-8"),
            f["line"] if f["line"] is not None else -1, f["rule"], f["message"])


def plural(count, word, plural_word=None):
    return "%d %s" % (count, word if count == 1 else (plural_word or word + "s"))


def load_json(data):
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed("not valid JSON (%s)" % str(exc).split(":")[0])


# --------------------------------------------------------------------------- ruff

def parse_ruff(data, paths):
    report = load_json(data)
    if not isinstance(report, list):
        raise Malformed("expected a JSON array of diagnostics")
    findings, syntax = [], 0
    for index, item in enumerate(report):
        if not isinstance(item, dict):
            raise Malformed("diagnostic %d is not an object" % index)
        code, message, filename = item.get("code"), item.get("message"), item.get("filename")
        if not (code is None or isinstance(code, str)) or not isinstance(message, str) \
                or not isinstance(filename, str):
            raise Malformed("diagnostic %d lacks code/message/filename" % index)
        location = item.get("location")
        if location is not None and not isinstance(location, dict):
            raise Malformed("diagnostic %d has a malformed location" % index)
        row = (location or {}).get("row")
        is_syntax = code in RUFF_SYNTAX_CODES or message.startswith("SyntaxError")
        syntax += is_syntax
        findings.append(finding(paths.file(filename), row, code or "invalid-syntax",
                                "error" if is_syntax else "warning", paths.text(message)))
    files = sorted({f["file"] for f in findings})
    counts = {"diagnostics": len(findings), "syntax_errors": syntax, "files": len(files)}
    if syntax:
        status = "BLOCKED"
        bad = sorted({f["file"] for f in findings if f["severity"] == "error"})
        headline = "ruff found %s in %s; the code does not parse." % (
            plural(syntax, "syntax error"), ", ".join(bad[:3]) + (" and others" if len(bad) > 3 else ""))
        next_action = "Fix the syntax errors in %s, then re-run ruff." % ", ".join(bad[:5])
    elif findings:
        status = "WARN"
        codes = sorted({f["rule"] for f in findings})
        headline = "ruff reported %s in %s (%s)." % (
            plural(len(findings), "diagnostic"), plural(len(files), "file"),
            ", ".join(codes[:5]) + (", ..." if len(codes) > 5 else ""))
        next_action = "Fix or explicitly suppress the ruff diagnostics (ruff check --fix handles the fixable ones)."
    else:
        status, headline, next_action = "OK", "ruff reported no diagnostics.", "None."
    return status, headline, counts, findings, next_action, []


# --------------------------------------------------------------------------- junit

def refuse_declarations(data):
    """A first pass with expat, refusing any DOCTYPE or ENTITY declaration.

    The report is untrusted: a DOCTYPE can declare entities (billion laughs,
    external entities). Expat decodes the declared encoding itself, so the
    check cannot be bypassed with UTF-16 or similar.
    """
    def refuse(*_args):
        raise Malformed("declares a DOCTYPE or ENTITY, which is refused in untrusted XML")

    parser = xml.parsers.expat.ParserCreate()
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise Malformed("not well-formed XML (%s)" % xml.parsers.expat.ErrorString(exc.code))


def int_attr(element, name):
    value = element.get(name)
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        try:
            number = int(float(value.strip()))
        except ValueError:
            raise Malformed("attribute %s=%r of <%s> is not a number" % (name, value, element.tag))
    if number < 0:
        raise Malformed("attribute %s=%r of <%s> is negative" % (name, value, element.tag))
    return number


TRACEBACK_LOCATION = re.compile(r"^(\S[^\n:]*\.py):(\d+): ", re.MULTILINE)


def testcase_location(case, text, paths):
    """The failing line from the traceback when it is in the project, else the test's file."""
    for match in reversed(list(TRACEBACK_LOCATION.finditer(text or ""))):
        name = match.group(1)
        if not name.startswith("/") or paths.inside(name):
            return paths.file(name), int(match.group(2))
    if case.get("file"):
        line = case.get("line")
        return paths.file(case.get("file")), int(line) if line and line.isdigit() else None
    classname = case.get("classname") or ""
    if classname:
        return classname.replace(".", "/") + ".py", None
    return "", None


def parse_junit(data, paths):
    refuse_declarations(data)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise Malformed("not well-formed XML (%s)" % exc)
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = [s for s in root.iter("testsuite") if s.find("testsuite") is None]
    else:
        raise Malformed("the root element is <%s>, not <testsuites> or <testsuite>" % root.tag)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    findings = []
    for suite in suites:
        cases = suite.findall("testcase")
        counted = {
            "tests": len(cases),
            "failures": sum(1 for c in cases if c.find("failure") is not None),
            "errors": sum(1 for c in cases if c.find("failure") is None and c.find("error") is not None),
            "skipped": sum(1 for c in cases if c.find("skipped") is not None),
        }
        for key in totals:
            declared = int_attr(suite, key)
            # Trust the evidence: attributes never hide a failing testcase.
            totals[key] += max(declared, counted[key]) if declared is not None else counted[key]
        for case in cases:
            for kind in ("failure", "error"):
                element = case.find(kind)
                if element is None:
                    continue
                text = (element.text or "")
                file, line = testcase_location(case, text, paths)
                test_id = "%s::%s" % (case.get("classname") or "", case.get("name") or "")
                detail = (element.get("message") or text.strip() or kind).strip().split("\n")[0]
                findings.append(finding(file, line, kind, "error",
                                        paths.text("%s: %s" % (test_id.strip(":"), detail))))
                break
    totals["passed"] = max(0, totals["tests"] - totals["failures"] - totals["errors"] - totals["skipped"])
    counts = dict(totals)
    if totals["failures"] or totals["errors"]:
        status = "BLOCKED"
        parts = []
        if totals["failures"]:
            parts.append("%d failed" % totals["failures"])
        if totals["errors"]:
            parts.append(plural(totals["errors"], "error"))
        headline = "pytest: %s of %s." % (", ".join(parts), plural(totals["tests"], "test"))
        names = [f["message"].split(": ", 1)[0] for f in sorted(findings, key=finding_key)]
        next_action = "Fix the failing tests (%s) and re-run pytest." % (
            ", ".join(names[:3]) + (", ..." if len(names) > 3 else ""))
    elif totals["tests"] == 0:
        status = "WARN"
        headline = "pytest ran no tests."
        next_action = "Check that pytest collects the project's tests, then re-run it."
    else:
        status = "OK"
        headline = "pytest: %d passed%s of %s." % (
            totals["passed"], ", %d skipped" % totals["skipped"] if totals["skipped"] else "",
            plural(totals["tests"], "test"))
        next_action = "None."
    decisions = ["%s counted but not treated as failures." % plural(totals["skipped"], "skipped test")] \
        if totals["skipped"] else []
    return status, headline, counts, findings, next_action, decisions


# --------------------------------------------------------------------------- bandit

def parse_bandit(data, paths):
    report = load_json(data)
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        raise Malformed("expected an object with a \"results\" array")
    errors = report.get("errors", [])
    if not isinstance(errors, list):
        raise Malformed("\"errors\" is not an array")
    findings = []
    counts = {"high": 0, "medium": 0, "low": 0, "errors": len(errors)}
    for index, item in enumerate(report["results"]):
        if not isinstance(item, dict):
            raise Malformed("result %d is not an object" % index)
        severity = item.get("issue_severity")
        test_id, filename, text = item.get("test_id"), item.get("filename"), item.get("issue_text")
        line = item.get("line_number")
        if severity not in BANDIT_SEVERITIES or not isinstance(test_id, str) \
                or not isinstance(filename, str) or not isinstance(text, str) \
                or not (line is None or (isinstance(line, int) and not isinstance(line, bool))):
            raise Malformed("result %d lacks issue_severity/test_id/filename/line_number/issue_text" % index)
        level = BANDIT_SEVERITIES[severity]
        counts[level] += 1
        confidence = item.get("issue_confidence")
        message = text + (" (confidence %s)" % confidence if isinstance(confidence, str) else "")
        findings.append(finding(paths.file(filename), line, test_id, level, paths.text(message)))
    for item in errors:
        if isinstance(item, dict):
            name, reason = item.get("filename"), item.get("reason")
        else:
            name, reason = None, item
        findings.append(finding(paths.file(name) if isinstance(name, str) else "", None, "scan-error",
                                "warning", paths.text("bandit could not scan: %s" % (reason,))))
    summary = "%d HIGH, %d MEDIUM, %d LOW" % (counts["high"], counts["medium"], counts["low"])
    scan_errors = " and %s" % plural(counts["errors"], "file it could not scan") if counts["errors"] else ""
    decisions = ["%s counted, not flagged (LOW does not warn)." % plural(counts["low"], "LOW severity issue")] \
        if counts["low"] else []
    if counts["high"]:
        status = "BLOCKED"
        headline = "bandit found %s severity issues%s." % (summary, scan_errors)
        where = ["%s in %s:%s" % (f["rule"], f["file"], f["line"])
                 for f in sorted(findings, key=finding_key) if f["severity"] == "high"]
        next_action = ("Fix the HIGH severity issues (%s), or justify each with a reasoned # nosec, "
                       "then re-run bandit." % (", ".join(where[:3]) + (", ..." if len(where) > 3 else "")))
    elif counts["medium"] or counts["errors"]:
        status = "WARN"
        headline = "bandit found %s severity issues%s." % (summary, scan_errors)
        if counts["medium"] and counts["errors"]:
            next_action = "Review the MEDIUM severity issues and the files bandit could not scan, then re-run bandit."
        elif counts["medium"]:
            next_action = "Review the MEDIUM severity issues, then re-run bandit."
        else:
            next_action = "Fix the files bandit could not scan, then re-run bandit."
    else:
        status = "OK"
        headline = "bandit found no HIGH or MEDIUM severity issues (%s LOW)." % counts["low"]
        next_action = "None."
    return status, headline, counts, findings, next_action, decisions


PARSERS = {"ruff-json": parse_ruff, "junit-xml": parse_junit, "bandit-json": parse_bandit}


# --------------------------------------------------------------------------- main

def evaluate(fmt, relative, full, paths):
    spec = FORMATS[fmt]
    tool = spec["tool"]
    produce = spec["produce"].format(report=relative)
    if not os.path.lexists(full):
        return ("MISSING", "%s report %s is missing; produce it with `%s`." % (tool, relative, produce),
                {}, [], "Run `%s` in the workspace, then re-run this step." % produce, [], False)
    try:
        if os.path.islink(full) or not os.path.isfile(full):
            raise Malformed("not a regular file")
        if os.path.getsize(full) > MAX_REPORT_BYTES:
            raise Malformed("larger than %d MiB" % (MAX_REPORT_BYTES // (1024 * 1024)))
        with open(full, "rb") as handle:
            data = handle.read()
        status, headline, counts, findings, next_action, decisions = PARSERS[fmt](data, paths)
    except OSError as exc:
        reason = "unreadable (%s)" % (exc.strerror or exc.__class__.__name__)
    except Malformed as exc:
        reason = str(exc)
    else:
        return status, headline, counts, findings, next_action, decisions, True
    return ("BLOCKED", "%s is not valid %s output: %s." % (relative, tool, reason), {}, [],
            "Regenerate the report with `%s` and re-run this step." % produce, [], True)


def main():
    try:
        output_dir = os.environ["LODEC_OUTPUT_DIR"]
    except KeyError:
        fail("environment variable LODEC_OUTPUT_DIR is not set")
    try:
        request, inputs = read_request()
        workspace = workspace_of(request)
        fmt = inputs.get("format", "").strip()
        if fmt not in FORMATS:
            raise UsageError("input format %r is not one of %s" % (fmt, ", ".join(sorted(FORMATS))))
        given = inputs.get("report", FORMATS[fmt]["default"]).strip()
        full = report_path(workspace, given)
        relative = clean_relative(given)
    except UsageError as exc:
        fail(str(exc))

    paths = Paths(workspace)
    status, headline, counts, findings, next_action, decisions, present = evaluate(fmt, relative, full, paths)
    findings.sort(key=finding_key)
    kept = findings[:MAX_FINDINGS]
    phase = phase_name(request)
    tool = FORMATS[fmt]["tool"]
    key_files = ([relative] if present else []) + sorted(
        {f["file"] for f in kept if f["file"] and f["file"] != relative}, key=lambda p: p.encode("utf-8"))[:20]
    open_questions = []
    if status == "MISSING":
        open_questions.append("Which step produces %s?" % relative)
    artifact = {
        "phase": phase,
        "summary": {
            "status": status,
            "headline": headline,
            "tool": tool,
            "format": fmt,
            "report": relative,
            "counts": counts,
            "findings": kept,
            "truncated": len(findings) - len(kept),
            "next_action": next_action,
        },
        "context_checkpoint": {
            "summary": "%s evidence for %s normalised from %s: %s." % (tool, phase, relative, status),
            "key_files": key_files,
            "decisions_made": decisions,
            "open_questions": open_questions,
        },
    }
    with open(os.path.join(output_dir, "artifact.json"), "w", encoding="utf-8", newline="\n") as handle:
        handle.write(json.dumps(artifact, indent=2, sort_keys=True) + "\n")
    print("%s (%s): %s: %s" % (SKILL, phase, status, headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
