#!/usr/bin/env python3
"""code-review: a deterministic local reviewer (no model, no network).

Reads the lodec step request (JSON) on stdin, loads the upstream lint and
static-analysis reports whose status is "verified", and writes
$LODEC_OUTPUT_DIR/review-comments.json: a verdict plus one comment per
finding. Upstream artifacts that are not verified are recorded, never read.
See SKILL.md for the exact rules.
"""

import json
import os
import sys

OUTPUT_NAME = "review-comments.json"
REVIEWER = "lodec-local-reviewer"
DEFAULT_MAX_TOKENS = 4096
TOKENS_PER_COMMENT = 64
SEVERITY_RANK = {"error": 0, "warning": 1, "note": 2}
LINT_SEVERITY = {2: "error", 1: "warning"}
STATIC_TOOL = "lodec-static-analysis"


class UsageError(Exception):
    """The request or a verified upstream report cannot be used (exit 2)."""


def fail(message):
    sys.stderr.write("code-review: " + message + "\n")
    sys.exit(2)


def read_request():
    raw = sys.stdin.read()
    if not raw.strip():
        return {}
    try:
        request = json.loads(raw)
    except ValueError as exc:
        raise UsageError("the request on stdin is not valid JSON: %s" % exc)
    if not isinstance(request, dict):
        raise UsageError("the request on stdin is not a JSON object")
    kind = request.get("request", "lodec-step-request/v1")
    if kind != "lodec-step-request/v1":
        raise UsageError("unsupported request type %r" % (kind,))
    for field in ("inputs", "upstream_artifacts", "upstream_status"):
        if not isinstance(request.get(field, {}), dict):
            raise UsageError("request.%s is not an object" % field)
    return request


def max_comments(inputs):
    value = inputs.get("maxTokens", str(DEFAULT_MAX_TOKENS))
    try:
        tokens = int(str(value).strip())
    except ValueError:
        raise UsageError("maxTokens must be an integer, not %r" % (value,))
    return max(tokens, 0) // TOKENS_PER_COMMENT


def relative_path(path, workspace):
    """Report paths as workspace-relative POSIX paths (real ESLint writes absolute ones)."""
    path = str(path).replace("\\", "/")
    root = workspace.replace("\\", "/").rstrip("/") + "/"
    if path.startswith(root):
        return path[len(root):]
    return path


def as_line(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def lint_comments(key, report, workspace):
    comments = []
    for entry in report:
        if not isinstance(entry, dict) or not isinstance(entry.get("messages", []), list):
            raise UsageError("upstream %s is not an ESLint-style report" % key)
        path = relative_path(entry.get("filePath", ""), workspace)
        for message in entry.get("messages", []):
            if not isinstance(message, dict):
                raise UsageError("upstream %s is not an ESLint-style report" % key)
            severity = LINT_SEVERITY.get(message.get("severity"))
            if severity is None:
                continue  # severity 0 (off) is not a finding
            rule = message.get("ruleId") or "eslint"
            comments.append({
                "file": path,
                "line": as_line(message.get("line")),
                "severity": severity,
                "source": "lint",
                "rule": str(rule),
                "body": str(message.get("message", "")).strip(),
            })
    return comments


def static_comments(key, report, workspace):
    findings = report.get("findings")
    if not isinstance(findings, list):
        raise UsageError("upstream %s has no findings list" % key)
    comments = []
    for finding in findings:
        if not isinstance(finding, dict) or finding.get("severity") not in SEVERITY_RANK:
            raise UsageError("upstream %s has a malformed finding" % key)
        rule = str(finding.get("rule", "static-analysis"))
        comments.append({
            "file": relative_path(finding.get("file", ""), workspace),
            "line": as_line(finding.get("line")),
            "severity": finding["severity"],
            "source": "static-analysis",
            "rule": rule,
            "body": str(finding.get("message", "")).strip(),
        })
    return comments


def load(key, path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except OSError as exc:
        raise UsageError("verified upstream %s cannot be read: %s" % (key, exc.strerror))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError("verified upstream %s is not valid JSON: %s" % (key, exc))


def collect(request, workspace):
    """Return (statuses, comments, notes) from the request's upstream maps."""
    artifacts = request.get("upstream_artifacts", {})
    statuses_in = request.get("upstream_status", {})
    statuses, comments, notes = {}, [], []
    for key in sorted(set(artifacts) | set(statuses_in)):
        status = statuses_in.get(key)
        status = status if isinstance(status, str) else "unknown"
        statuses[key] = status
        if status != "verified":
            notes.append("%s: %s, not read" % (key, status))
            continue
        path = artifacts.get(key)
        if not isinstance(path, str) or not path:
            raise UsageError("upstream %s is verified but has no path" % key)
        if not key.endswith(".json"):
            notes.append("%s: verified, not used (only the JSON reports are read)" % key)
            continue
        report = load(key, path)
        if isinstance(report, list):
            comments.extend(lint_comments(key, report, workspace))
        elif isinstance(report, dict) and report.get("tool") == STATIC_TOOL:
            comments.extend(static_comments(key, report, workspace))
        else:
            notes.append("%s: verified, not a recognised report; not used" % key)
    return statuses, comments, notes


def sort_key(comment):
    return (comment["file"].encode("utf-8"), comment["line"], comment["rule"],
            comment["source"], SEVERITY_RANK[comment["severity"]], comment["body"])


def main():
    try:
        workspace = os.environ["LODEC_WORKSPACE"]
        output_dir = os.environ["LODEC_OUTPUT_DIR"]
    except KeyError as exc:
        fail("environment variable %s is not set" % exc.args[0])
    try:
        request = read_request()
        inputs = request.get("inputs", {})
        cap = max_comments(inputs)
        statuses, comments, notes = collect(request, workspace)
    except UsageError as exc:
        fail(str(exc))

    severities = {c["severity"] for c in comments}
    unread = [key for key, status in statuses.items() if status != "verified"]
    if "error" in severities:
        verdict = "request_changes"
    elif comments or unread:
        verdict = "comment"  # nothing to approve on when an input could not be read
    else:
        verdict = "approve"

    # Keep the most severe comments when capping, then present them in file order.
    kept = sorted(comments, key=lambda c: (SEVERITY_RANK[c["severity"]],) + sort_key(c))[:cap]
    kept.sort(key=sort_key)
    omitted = len(comments) - len(kept)
    if omitted:
        notes.append("%d of %d comments omitted: maxTokens allows %d" % (omitted, len(comments), cap))

    model = inputs.get("model")
    review = {
        "reviewer": REVIEWER,
        "model": model if isinstance(model, str) else None,
        "modelCalled": False,
        "verdict": verdict,
        "upstream": statuses,
        "comments": kept,
        "omittedComments": omitted,
        "notes": notes,
    }
    with open(os.path.join(output_dir, OUTPUT_NAME), "w", encoding="utf-8", newline="\n") as handle:
        handle.write(json.dumps(review, indent=2, sort_keys=True) + "\n")

    detail = "%d comment%s" % (len(kept), "" if len(kept) == 1 else "s")
    if omitted:
        detail += ", %d omitted" % omitted
    if unread:
        detail += ", %d upstream not verified" % len(unread)
    print("code-review: %s (%s)" % (verdict, detail))
    for note in notes:
        print("note: " + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
