#!/usr/bin/env python3
"""static-analysis: a few TypeScript checks in the Python standard library.

Reads the lodec step request (JSON) on stdin, scans src/**/*.ts and *.tsx
under $LODEC_WORKSPACE and writes report.json and annotations.sarif (SARIF
2.1.0) to $LODEC_OUTPUT_DIR. See SKILL.md for the rules and their limits.
Findings are data: the exit status is 0 whenever both files were written,
2 when the request is unusable (for example an unsupported language).
"""

import json
import os
import re
import sys
from urllib.parse import quote

TOOL = "lodec-static-analysis"
VERSION = "1"
SOURCE_DIR = "src"
EXTENSIONS = {"typescript": (".ts", ".tsx")}
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

RULES = {
    "explicit-any": ("warning", "Explicit 'any' type (checked in strict mode only)."),
    "no-eval": ("error", "Use of eval(), which executes arbitrary code."),
    "hardcoded-secret": ("error", "Secret-looking name assigned a string literal."),
    "todo-comment": ("note", "TODO or FIXME comment."),
}
SEVERITIES = ("error", "warning", "note")

REGEX_PREFIX_WORDS = {
    "return", "typeof", "case", "do", "else", "in", "of", "new", "delete",
    "void", "throw", "yield", "await",
}
ANY = re.compile(r"(?<![\w$.])any(?![\w$])")
ANY_CONTEXT = re.compile(r"(?:[:<,|&]|(?<![\w$])(?:as|keyof))$")
EVAL = re.compile(r"(?<![\w$.])eval\s*\(")
ASSIGNMENT = re.compile(
    r"(?<![\w$])([A-Za-z_$][\w$]*)\??"           # name (optionally `name?`)
    r"(?:\s*:\s*[A-Za-z_$][\w$.<>\[\]| ]*?)?"   # optional type annotation
    r"\s*[:=]\s*([\"'`])")                      # `=` or `:` then a quote
SECRET_WORDS = {"secret", "token", "password", "passwd", "pwd", "apikey", "credential", "credentials"}
SECRET_PAIRS = {"apikey", "privatekey", "accesskey", "secretkey", "clientsecret", "authtoken"}
# Names that talk *about* a secret rather than holding one: `tokenUrl`, `passwordLabel`.
NOT_A_VALUE = {"name", "names", "id", "url", "uri", "path", "file", "type", "label",
               "field", "header", "env", "var", "prefix", "length", "hint", "placeholder"}
TODO = re.compile(r"\b(TODO|FIXME)\b:?\s*(.*)")


class UsageError(Exception):
    """The request cannot be used (exit 2)."""


def fail(message):
    sys.stderr.write("static-analysis: " + message + "\n")
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
    inputs = request.get("inputs", {})
    if not isinstance(inputs, dict):
        raise UsageError("request.inputs is not an object")
    return inputs


def parse_inputs(inputs):
    language = inputs.get("language", "typescript")
    if not isinstance(language, str) or language.strip().lower() not in EXTENSIONS:
        raise UsageError("language %r is not supported (supported: %s)"
                         % (language, ", ".join(sorted(EXTENSIONS))))
    strict = inputs.get("strictMode", "false")
    if isinstance(strict, bool):
        return language.strip().lower(), strict
    if isinstance(strict, str) and strict.strip().lower() in ("true", "false"):
        return language.strip().lower(), strict.strip().lower() == "true"
    raise UsageError("strictMode must be \"true\" or \"false\", not %r" % (strict,))


def source_files(workspace, extensions):
    """Workspace-relative POSIX paths of the files to analyse, in sorted order."""
    found = []
    root = os.path.join(workspace, SOURCE_DIR)
    if not os.path.isdir(root) or os.path.islink(root):
        return found
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d != "node_modules" and not os.path.islink(os.path.join(directory, d)))
        for name in sorted(filenames):
            full = os.path.join(directory, name)
            if not name.endswith(extensions) or os.path.islink(full) or not os.path.isfile(full):
                continue
            found.append(os.path.relpath(full, workspace).replace(os.sep, "/"))
    return sorted(found, key=lambda p: p.encode("utf-8"))


def read_text(path):
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split(text):
    """Separate code from comments, keeping every character's position.

    Returns (code, comments), both the length of `text` with its line breaks:
    `code` has comments and the contents of string, template and regex
    literals blanked to spaces (the quotes stay); `comments` has everything
    except comments blanked. Template substitutions `${...}` are blanked with
    their template.
    """
    code = list(text)
    comments = [ch if ch == "\n" else " " for ch in text]
    i, n = 0, len(text)
    prev = ""  # previous significant code token: a punctuation char or a word

    def blank(start, end, keep_comment=False):
        for k in range(start, end):
            if code[k] != "\n":
                if keep_comment:
                    comments[k] = text[k]
                code[k] = " "

    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end, keep_comment=True)
            i = end
            continue
        if c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            blank(i, end, keep_comment=True)
            i = end
            continue
        if c in "'\"":
            k = i + 1
            while k < n and text[k] != c and text[k] != "\n":
                k += 2 if text[k] == "\\" and k + 1 < n and text[k + 1] != "\n" else 1
            blank(i + 1, k)
            i = k + 1 if k < n and text[k] == c else k
            prev = c
            continue
        if c == "`":
            k, depth = i + 1, 0
            while k < n:
                ch = text[k]
                if ch == "\\":
                    k += 2
                    continue
                if depth == 0 and ch == "`":
                    break
                if ch == "$" and text.startswith("${", k):
                    depth += 1
                    k += 2
                    continue
                if depth and ch == "{":
                    depth += 1
                elif depth and ch == "}":
                    depth -= 1
                k += 1
            k = min(k, n)
            blank(i + 1, k)
            i = k + 1
            prev = "`"
            continue
        if c == "/" and (prev == "" or prev in "(,=:[!&|?{};+-*%<>~^" or prev in REGEX_PREFIX_WORDS):
            k, in_class = i + 1, False
            while k < n and text[k] != "\n":
                ch = text[k]
                if ch == "\\":
                    k += 2
                    continue
                if ch == "[":
                    in_class = True
                elif ch == "]":
                    in_class = False
                elif ch == "/" and not in_class:
                    break
                k += 1
            if k < n and text[k] == "/":
                blank(i + 1, k)
                i = k + 1
                prev = "/"
                continue
        if c.isspace():
            i += 1
            continue
        if c.isalnum() or c in "_$":
            k = i
            while k < n and (text[k].isalnum() or text[k] in "_$"):
                k += 1
            prev = text[i:k]
            i = k
            continue
        prev = c
        i += 1
    return "".join(code), "".join(comments)


def name_words(name):
    """`apiKey`, `API_KEY`, `api-key` -> ["api", "key"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.replace("$", " "))
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w.lower() for w in re.split(r"[\s_\-]+", spaced) if w]


def is_secret_name(name):
    words = name_words(name)
    if not words or words[-1] in NOT_A_VALUE:
        return False
    if any(w in SECRET_WORDS for w in words):
        return True
    return any(a + b in SECRET_PAIRS for a, b in zip(words, words[1:]))


def analyse(relative, text, strict):
    findings = []
    code, comments = split(text)
    raw_lines = text.split("\n")
    code_lines = code.split("\n")
    comment_lines = comments.split("\n")

    def report(rule, index, message):
        findings.append({"rule": rule, "severity": RULES[rule][0], "file": relative,
                         "line": index + 1, "message": message})

    for index, line in enumerate(code_lines):
        raw = raw_lines[index]
        if strict:
            for match in ANY.finditer(line):
                if ANY_CONTEXT.search(line[:match.start()].rstrip()):
                    report("explicit-any", index,
                           "Explicit 'any' disables type checking; use a precise type or 'unknown'.")
        for match in EVAL.finditer(line):
            report("no-eval", index, "eval() executes arbitrary code; parse or dispatch explicitly instead.")
        for match in ASSIGNMENT.finditer(line):
            name, quote_char = match.group(1), match.group(2)
            start = match.end()
            end = line.find(quote_char, start)
            if end < 0 or not is_secret_name(name):
                continue
            value = raw[start:end]
            if not value.strip() or (quote_char == "`" and "${" in value):
                continue
            report("hardcoded-secret", index,
                   "'%s' is assigned a hard-coded string literal; load secrets from the environment "
                   "or a secret store." % name)
        match = TODO.search(comment_lines[index])
        if match:
            detail = re.sub(r"\s*\*/\s*$", "", match.group(2)).strip()
            if len(detail) > 120:
                detail = detail[:117] + "..."
            report("todo-comment", index, "%s: %s" % (match.group(1), detail) if detail else match.group(1))
    return findings


def sarif(findings, rules):
    rule_ids = sorted(rules)
    index = {rule: i for i, rule in enumerate(rule_ids)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL,
                "version": VERSION,
                "rules": [{
                    "id": rule,
                    "shortDescription": {"text": RULES[rule][1]},
                    "defaultConfiguration": {"level": RULES[rule][0]},
                } for rule in rule_ids],
            }},
            "results": [{
                "ruleId": f["rule"],
                "ruleIndex": index[f["rule"]],
                "level": f["severity"],
                "message": {"text": f["message"]},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": quote(f["file"])},
                    "region": {"startLine": f["line"]},
                }}],
            } for f in findings],
        }],
    }


def plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def write_json(output_dir, name, value):
    with open(os.path.join(output_dir, name), "w", encoding="utf-8", newline="\n") as handle:
        handle.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def main():
    try:
        output_dir = os.environ["LODEC_OUTPUT_DIR"]
        workspace = os.environ["LODEC_WORKSPACE"]
    except KeyError as exc:
        fail("environment variable %s is not set" % exc.args[0])
    try:
        language, strict = parse_inputs(read_request())
    except UsageError as exc:
        fail(str(exc))

    files = source_files(workspace, EXTENSIONS[language])
    findings = []
    for relative in files:
        try:
            text = read_text(os.path.join(workspace, relative))
        except OSError as exc:
            fail("cannot read %s: %s" % (relative, exc.strerror))
        findings.extend(analyse(relative, text, strict))
    findings.sort(key=lambda f: (f["file"].encode("utf-8"), f["line"], f["rule"], f["message"]))

    rules = sorted(r for r in RULES if strict or r != "explicit-any")
    summary = {level: sum(1 for f in findings if f["severity"] == level) for level in SEVERITIES}
    write_json(output_dir, "report.json", {
        "tool": TOOL,
        "version": VERSION,
        "language": language,
        "strictMode": strict,
        "findings": findings,
        "summary": summary,
    })
    write_json(output_dir, "annotations.sarif", sarif(findings, rules))

    flagged = len({f["file"] for f in findings})
    print("static-analysis: %s, %s, %s in %d of %s (%s, strict mode %s)" % (
        plural(summary["error"], "error"), plural(summary["warning"], "warning"),
        plural(summary["note"], "note"), flagged, plural(len(files), "file"),
        language, "on" if strict else "off"))
    print("rules checked: %s" % ", ".join(rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
