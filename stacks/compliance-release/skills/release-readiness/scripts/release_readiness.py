#!/usr/bin/env python3
"""release-readiness: compose upstream evidence into a release decision.

Reads the lodec step request (JSON) on stdin, looks at the artifact of every
required phase (`<phase>/artifact.json` in upstream_artifacts and
upstream_status) and writes $LODEC_OUTPUT_DIR/artifact.json with OK, WARN or
BLOCKED. Read-only: it never ships, commits, tags or deploys. Only `verified`
artifacts are opened. Exit 1 on BLOCKED (the gate fails its step, and so the
run), after printing the decision; exit 2 when the request is unusable.
Standard library only.
"""

import json
import os
import re
import sys

SKILL = "release-readiness"
DEFAULT_REQUIRE = ("review", "qa", "security", "license-audit", "privacy-check")
UPSTREAM_STATUSES = ("OK", "WARN", "BLOCKED", "MISSING")
MAX_ARTIFACT_BYTES = 16 * 1024 * 1024
MAX_TEXT = 300
PHASE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class UsageError(Exception):
    """The request cannot be used (exit 2)."""


def fail(message):
    sys.stderr.write(SKILL + ": " + message + "\n")
    sys.exit(2)


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
    for key in ("upstream_artifacts", "upstream_status"):
        value = request.get(key, {})
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise UsageError("request.%s must be an object" % key)
        request[key] = value
    return request, inputs


def phase_list(text, name):
    phases = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if not PHASE.match(item):
            raise UsageError("input %s: %r is not a step name" % (name, item))
        if item not in phases:
            phases.append(item)
    return phases


def clip(text):
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


def read_artifact(path, phase):
    """(status, headline, next_action, reason) from a verified upstream artifact."""
    if not isinstance(path, str) or not path:
        return "BLOCKED", None, None, "verified but no path was given"
    try:
        if os.path.getsize(path) > MAX_ARTIFACT_BYTES:
            return "BLOCKED", None, None, "artifact larger than 16 MiB"
        with open(path, "rb") as handle:
            artifact = json.loads(handle.read().decode("utf-8"))
    except OSError as exc:
        return "BLOCKED", None, None, "artifact unreadable (%s)" % (exc.strerror or exc.__class__.__name__)
    except (UnicodeDecodeError, ValueError):
        return "BLOCKED", None, None, "artifact is not valid JSON"
    if not isinstance(artifact, dict) or not isinstance(artifact.get("summary"), dict):
        return "BLOCKED", None, None, "artifact has no summary object"
    summary = artifact["summary"]
    headline, next_action = clip(summary.get("headline")), clip(summary.get("next_action"))
    if "phase" in artifact and artifact["phase"] != phase:
        return "BLOCKED", headline, None, "artifact is for phase %r, not %r" % (artifact["phase"], phase)
    status = summary.get("status")
    if status not in UPSTREAM_STATUSES:
        return "BLOCKED", headline, None, "artifact status %r is not one of %s" % (
            status, ", ".join(UPSTREAM_STATUSES))
    return status, headline, next_action, None


def check_phase(request, phase, accepted):
    key = phase + "/artifact.json"
    lodec_status = request["upstream_status"].get(key)
    if lodec_status is None and key in request["upstream_artifacts"]:
        lodec_status = "verified" if request["upstream_artifacts"][key] else "missing"
    check = {"phase": phase, "status": "MISSING", "evidence": None, "upstream_status": lodec_status,
             "headline": None, "accepted": False, "reason": None}
    next_action = None
    if lodec_status is None:
        check["reason"] = "no %s step upstream of this one (add it to dependsOn)" % phase
    elif lodec_status in ("missing", "skipped"):
        check["reason"] = "its step %s" % ("was skipped" if lodec_status == "skipped" else "left no artifact")
    elif lodec_status == "integrity_mismatch":
        # Never opened: its bytes changed after the step recorded them.
        check["status"] = "TAMPERED"
        check["reason"] = "artifact changed after its step recorded it (integrity_mismatch); not read"
    elif lodec_status == "verified":
        status, headline, next_action, reason = read_artifact(request["upstream_artifacts"].get(key), phase)
        check.update(status=status, headline=headline, reason=reason)
        if reason is None or headline is not None:
            check["evidence"] = "artifact"
        if status == "WARN" and phase in accepted:
            check["accepted"] = True
    else:
        check["status"] = "BLOCKED"
        check["reason"] = "unknown upstream status %r; not read" % (lodec_status,)
    return check, next_action


def action_for(check, upstream_action):
    phase, status = check["phase"], check["status"]
    if status == "TAMPERED":
        return "Re-run /%s: its artifact changed after it was recorded." % phase
    if check["evidence"] is None and status in ("MISSING", "BLOCKED"):
        if status == "MISSING":
            return "Run /%s." % phase
        return "Re-run /%s (%s)." % (phase, check["reason"])
    if upstream_action and upstream_action.lower().rstrip(".") not in ("none", ""):
        return "%s: %s" % (phase, upstream_action if upstream_action.endswith(".") else upstream_action + ".")
    if check["reason"]:
        return "Re-run /%s (%s)." % (phase, check["reason"])
    return "Resolve the %s %s." % (phase, status)


def describe(check):
    phase, status = check["phase"], check["status"]
    if status == "MISSING":
        return "%s evidence missing" % phase
    if status == "TAMPERED":
        return "%s evidence tampered" % phase
    if status == "BLOCKED" and check["reason"]:
        return "%s evidence unusable" % phase
    return "%s %s" % (phase, status)


def main():
    try:
        output_dir = os.environ["LODEC_OUTPUT_DIR"]
    except KeyError:
        fail("environment variable LODEC_OUTPUT_DIR is not set")
    try:
        request, inputs = read_request()
        require = phase_list(inputs.get("require", ",".join(DEFAULT_REQUIRE)), "require")
        if not require:
            raise UsageError("input require names no phase")
        accepted = phase_list(inputs.get("accept-warn", ""), "accept-warn")
        strays = [p for p in accepted if p not in require]
        if strays:
            raise UsageError("input accept-warn names %s, which %s not required" % (
                ", ".join(strays), "is" if len(strays) == 1 else "are"))
    except UsageError as exc:
        fail(str(exc))

    step = request.get("step")
    phase = step["name"] if isinstance(step, dict) and isinstance(step.get("name"), str) and step["name"] \
        else os.environ.get("LODEC_STEP") or SKILL

    checks, flagged, actions, decisions, questions = [], [], [], [], []
    for name in require:
        check, upstream_action = check_phase(request, name, accepted)
        checks.append(check)
        if check["status"] == "OK":
            continue
        if check["accepted"]:
            decisions.append("Accepted the %s WARN (input accept-warn, pinned in the signed stack): %s" % (
                name, check["headline"] or "no headline"))
            continue
        flagged.append(check)
        if name in accepted:
            decisions.append("accept-warn for %s not applied: %s cannot be accepted, only WARN can." % (
                name, check["status"]))
        actions.append(action_for(check, upstream_action))
        if check["status"] == "WARN":
            questions.append("Is the %s WARN acceptable for this release? If so, pin it with accept-warn." % name)

    # flagged: every check neither OK nor an accepted WARN; any but a WARN blocks (MISSING, TAMPERED, BLOCKED).
    problems = "; ".join(describe(c) for c in flagged)
    accepted_note = [c["phase"] for c in checks if c["accepted"]]
    if any(c["status"] != "WARN" for c in flagged):
        status, headline = "BLOCKED", "Release blocked: %s." % problems
    elif flagged:
        status, headline = "WARN", "Release needs attention: %s." % problems
    else:
        status = "OK"
        headline = "Release ready: all %d required checks OK%s." % (
            len(checks), " (accepted WARN: %s)" % ", ".join(accepted_note) if accepted_note else "")
    if actions:
        next_action = " ".join(actions) + " Then re-run /%s before /ship." % phase
    else:
        next_action = "Proceed to /ship."

    artifact = {
        "phase": phase,
        "summary": {
            "status": status,
            "headline": headline,
            "checks": checks,
            "next_action": next_action,
        },
        "context_checkpoint": {
            "summary": "Release readiness composed %d upstream %s: %s." % (
                len(checks), "artifact" if len(checks) == 1 else "artifacts", status),
            "key_files": [],
            "decisions_made": decisions,
            "open_questions": questions,
        },
    }
    with open(os.path.join(output_dir, "artifact.json"), "w", encoding="utf-8", newline="\n") as handle:
        handle.write(json.dumps(artifact, indent=2, sort_keys=True) + "\n")
    print("%s: %s: %s" % (SKILL, status, headline))
    if status != "BLOCKED":
        return 0
    # A gate that blocks fails its step: lodec then discards the step's outputs, so the whole decision goes
    # to stdout (`lodec logs release-readiness --stdout`) and its reasons to stderr (the run's failure lines).
    print(json.dumps(artifact, indent=2, sort_keys=True))
    sys.stderr.write("%s: BLOCKED: %s\n" % (SKILL, headline))
    for check in flagged:
        sys.stderr.write("%s: %s %s%s\n" % (SKILL, check["phase"], check["status"],
                                             ": " + check["reason"] if check["reason"] else ""))
    sys.stderr.write("%s: next: %s\n" % (SKILL, next_action))
    return 1


if __name__ == "__main__":
    sys.exit(main())
