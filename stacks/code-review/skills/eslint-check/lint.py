#!/usr/bin/env python3
"""eslint-check: a small, honest subset of ESLint in the Python standard library.

Reads the lodec step request (JSON) on stdin, loads the ESLint config named by
inputs.configPath (relative to $LODEC_WORKSPACE, default ".eslintrc.json"),
scans src/ for *.ts, *.tsx and *.js files and writes an ESLint-style JSON
report to $LODEC_OUTPUT_DIR/lint-report.json. See SKILL.md for the rules and
their limits. Findings are data: the exit status is 0 whenever the report was
written, 2 when the request or the config is unusable.
"""

import json
import os
import re
import sys

OUTPUT_NAME = "lint-report.json"
DEFAULT_CONFIG = ".eslintrc.json"
SOURCE_DIR = "src"
EXTENSIONS = (".ts", ".tsx", ".js")
IMPLEMENTED = ("eqeqeq", "max-len", "no-console", "no-var", "semi")

# Lines whose (comment- and string-free) code ends with one of these cannot be
# the end of a statement, so `semi` leaves them alone.
OPEN_ENDINGS = tuple(";{},([")
OPERATOR_ENDINGS = tuple("+-*/%=&|^!~?:<>.")
# A line followed by a line starting with one of these continues onto it.
CONTINUATION_STARTS = tuple(".?:)],{=+*/%|&<>^")
CONTINUATION_WORDS = {"as", "extends", "from", "implements", "in", "instanceof", "satisfies"}
BLOCK_KEYWORDS = {"if", "else", "for", "while", "do", "switch", "try", "catch", "finally"}
REGEX_PREFIX_WORDS = {
    "return", "typeof", "case", "do", "else", "in", "of", "new", "delete",
    "void", "throw", "yield", "await",
}
LITERAL_BRACE_WORDS = {"return", "import", "export", "yield", "await", "typeof", "in", "of"}
INTERFACE_LINE = re.compile(r"^\s*(?:export\s+)?(?:declare\s+)?(?:const\s+)?(?:interface|enum)\b")

NO_VAR = re.compile(r"(?<![\w$.])var\s+[A-Za-z_$\[{]")
EQEQ = re.compile(r"(?<![=!<>])([=!]=)(?!=)")
CONSOLE = re.compile(r"(?<![\w$.])console\s*\.\s*([A-Za-z_$][\w$]*)")
NULL_OPERAND_AFTER = re.compile(r"\s*null\b")
NULL_OPERAND_BEFORE = re.compile(r"\bnull\s*$")


class UsageError(Exception):
    """The request or the configuration cannot be used (exit 2)."""


def fail(message):
    sys.stderr.write("eslint-check: " + message + "\n")
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


def workspace_path(workspace, relative):
    """Join a workspace-relative path, refusing absolute paths and escapes."""
    if not isinstance(relative, str) or not relative:
        raise UsageError("configPath must be a non-empty string")
    if os.path.isabs(relative) or "\\" in relative:
        raise UsageError("configPath %r must be relative to the workspace" % relative)
    normal = os.path.normpath(relative)
    if normal == ".." or normal.startswith("../"):
        raise UsageError("configPath %r leaves the workspace" % relative)
    return os.path.join(workspace, normal)


def severity_of(rule, value):
    setting = value
    if isinstance(setting, list):
        if not setting:
            raise UsageError("rule %r has an empty setting" % rule)
        setting = setting[0]
    if isinstance(setting, bool):
        raise UsageError("rule %r has an invalid severity %r" % (rule, setting))
    levels = {0: 0, 1: 1, 2: 2, "off": 0, "warn": 1, "error": 2}
    if not isinstance(setting, (int, str)) or setting not in levels:
        raise UsageError("rule %r has an invalid severity %r" % (rule, setting))
    return levels[setting]


def rule_options(value):
    return value[1:] if isinstance(value, list) else []


def load_config(path, display, notes):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise UsageError("config %s not found in the workspace" % display)
    except OSError as exc:
        raise UsageError("config %s cannot be read: %s" % (display, exc.strerror))
    try:
        config = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError("config %s is not valid JSON: %s" % (display, exc))
    if not isinstance(config, dict):
        raise UsageError("config %s is not a JSON object" % display)
    rules = config.get("rules", {})
    if not isinstance(rules, dict):
        raise UsageError("config %s: \"rules\" is not an object" % display)
    if "extends" in config or "overrides" in config:
        notes.append("\"extends\" and \"overrides\" are not followed; only \"rules\" is applied")
    active = {}
    for rule in sorted(rules):
        level = severity_of(rule, rules[rule])
        if level == 0:
            continue
        if rule not in IMPLEMENTED:
            notes.append("rule %s is not implemented by eslint-check and was not checked" % rule)
            continue
        active[rule] = (level, rule_options(rules[rule]))
    return active


def source_files(workspace):
    """Workspace-relative POSIX paths of the files to lint, in sorted order."""
    found = []
    root = os.path.join(workspace, SOURCE_DIR)
    if not os.path.isdir(root) or os.path.islink(root):
        return found
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d != "node_modules" and not os.path.islink(os.path.join(directory, d)))
        for name in sorted(filenames):
            full = os.path.join(directory, name)
            if not name.endswith(EXTENSIONS) or os.path.islink(full) or not os.path.isfile(full):
                continue
            relative = os.path.relpath(full, workspace).replace(os.sep, "/")
            found.append(relative)
    return sorted(found, key=lambda p: p.encode("utf-8"))


def read_text(path):
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def mask(text):
    """Blank out comments and the contents of string, template and regex literals.

    Returns (code, open_at_eol): `code` has the same length and line breaks as
    `text`, with every character that is not code replaced by a space (string
    and template quotes are kept, so `"..."` stays a visible token), and
    open_at_eol[i] is True when line i ends inside a block comment or template
    literal. Template substitutions `${...}` are blanked with the template.
    """
    out = list(text)
    open_lines = set()
    i, n, line = 0, len(text), 0
    prev = ""  # previous significant code token: a punctuation char or a word

    def blank(start, end):
        for k in range(start, end):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
            continue
        if c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for k in range(i, end):
                if text[k] == "\n":
                    open_lines.add(line)
                    line += 1
            blank(i, end)
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
                if ch == "\n":
                    open_lines.add(line)
                    line += 1
                elif depth == 0 and ch == "`":
                    break
                elif ch == "$" and text.startswith("${", k):
                    depth += 1
                    k += 2
                    continue
                elif depth and ch == "{":
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
    return "".join(out), open_lines


def first_word(code):
    match = re.match(r"\s*([A-Za-z_$][\w$]*)", code)
    return match.group(1) if match else ""


def missing_semicolons(code_lines, open_lines):
    """Line numbers (0-based) and columns of statement-ish lines lacking a `;`."""
    found = []
    stack = []  # open brackets: "(", "[", "{" (block) or "o" (object/type/import braces)
    prev = ""   # previous significant token across lines
    for index, code in enumerate(code_lines):
        for match in re.finditer(r"[A-Za-z_$][\w$]*|=>|\S", code):
            token = match.group(0)
            if token in ("(", "["):
                stack.append(token)
            elif token == "{":
                before = code[:match.start()]
                literal = (prev in ("=", ":", "(", ",", "[", "?", "!", "&", "|", "&&", "||")
                           or prev in LITERAL_BRACE_WORDS
                           or bool(INTERFACE_LINE.match(before)))
                stack.append("o" if literal else "{")
            elif token in (")", "]", "}"):
                if stack:
                    stack.pop()
            prev = token
        stripped = code.strip()
        if not stripped or index in open_lines:
            continue
        if stack and stack[-1] != "{":
            continue
        if stripped.endswith(OPEN_ENDINGS) or stripped.endswith("=>"):
            continue
        if stripped.endswith(OPERATOR_ENDINGS) and not stripped.endswith(("++", "--")):
            continue
        if stripped.startswith("@") or first_word(stripped.lstrip("}").strip()) in BLOCK_KEYWORDS:
            continue
        following = next((c.strip() for c in code_lines[index + 1:] if c.strip()), "")
        if following.startswith(CONTINUATION_STARTS) or first_word(following) in CONTINUATION_WORDS:
            continue
        found.append((index, len(code.rstrip()) + 1))
    return found


def line_length(line, tab_width):
    extra = 0
    for match in re.finditer("\t", line):
        offset = match.start() + extra
        spaces = tab_width - (offset % tab_width if tab_width else 0)
        extra += spaces - 1
    return len(line) + extra


def max_len_options(options):
    code, tab_width = 80, 4
    if options and isinstance(options[0], int) and not isinstance(options[0], bool):
        code = options[0]
        if len(options) > 1 and isinstance(options[1], int) and not isinstance(options[1], bool):
            tab_width = options[1]
    for option in options:
        if isinstance(option, dict):
            code = option.get("code", code)
            tab_width = option.get("tabWidth", tab_width)
    for name, value in (("code", code), ("tabWidth", tab_width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UsageError("rule max-len: %s must be a non-negative integer" % name)
    return code, tab_width


def null_comparisons_allowed(options):
    for option in options:
        if option == "smart":
            return True
        if isinstance(option, dict) and option.get("null") == "ignore":
            return True
    return False


def console_allowed(options):
    for option in options:
        if isinstance(option, dict) and isinstance(option.get("allow"), list):
            return {str(name) for name in option["allow"]}
    return set()


def lint_text(text, active):
    raw_lines = text.split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    code, open_lines = mask(text)
    code_lines = code.split("\n")[:len(raw_lines)]
    messages = []

    def report(rule, index, column, message):
        messages.append({
            "ruleId": rule,
            "severity": active[rule][0],
            "message": message,
            "line": index + 1,
            "column": column,
        })

    if "no-var" in active:
        for index, line in enumerate(code_lines):
            for match in NO_VAR.finditer(line):
                report("no-var", index, match.start() + 1, "Unexpected var, use let or const instead.")
    if "eqeqeq" in active:
        allow_null = null_comparisons_allowed(active["eqeqeq"][1])
        for index, line in enumerate(code_lines):
            for match in EQEQ.finditer(line):
                operator = match.group(1)
                if allow_null and (NULL_OPERAND_AFTER.match(line, match.end())
                                   or NULL_OPERAND_BEFORE.search(line[:match.start()])):
                    continue
                report("eqeqeq", index, match.start() + 1,
                       "Expected '%s=' and instead saw '%s'." % (operator, operator))
    if "no-console" in active:
        allowed = console_allowed(active["no-console"][1])
        for index, line in enumerate(code_lines):
            for match in CONSOLE.finditer(line):
                if match.group(1) not in allowed:
                    report("no-console", index, match.start() + 1, "Unexpected console statement.")
    if "max-len" in active:
        limit, tab_width = max_len_options(active["max-len"][1])
        for index, line in enumerate(raw_lines):
            length = line_length(line, tab_width)
            if length > limit:
                report("max-len", index, 1,
                       "This line has a length of %d. Maximum allowed is %d." % (length, limit))
    if "semi" in active:
        for index, column in missing_semicolons(code_lines, open_lines):
            report("semi", index, column, "Missing semicolon.")
    messages.sort(key=lambda m: (m["line"], m["column"], m["ruleId"], m["message"]))
    return messages


def plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def main():
    try:
        output_dir = os.environ["LODEC_OUTPUT_DIR"]
        workspace = os.environ["LODEC_WORKSPACE"]
    except KeyError as exc:
        fail("environment variable %s is not set" % exc.args[0])
    notes = []
    try:
        inputs = read_request()
        config_path = inputs.get("configPath", DEFAULT_CONFIG)
        full_config = workspace_path(workspace, config_path)
        active = load_config(full_config, config_path, notes)
        if "semi" in active and active["semi"][1][:1] == ["never"]:
            notes.append("rule semi with \"never\" is not implemented and was not checked")
            del active["semi"]
        if "max-len" in active:
            max_len_options(active["max-len"][1])
    except UsageError as exc:
        fail(str(exc))

    results = []
    for relative in source_files(workspace):
        try:
            text = read_text(os.path.join(workspace, relative))
        except OSError as exc:
            fail("cannot read %s: %s" % (relative, exc.strerror))
        try:
            messages = lint_text(text, active)
        except UsageError as exc:
            fail(str(exc))
        results.append({
            "filePath": relative,
            "messages": messages,
            "errorCount": sum(1 for m in messages if m["severity"] == 2),
            "warningCount": sum(1 for m in messages if m["severity"] == 1),
        })

    with open(os.path.join(output_dir, OUTPUT_NAME), "w", encoding="utf-8", newline="\n") as handle:
        handle.write(json.dumps(results, indent=2, sort_keys=True) + "\n")

    errors = sum(r["errorCount"] for r in results)
    warnings = sum(r["warningCount"] for r in results)
    flagged = sum(1 for r in results if r["messages"])
    print("eslint-check: %s, %s in %d of %s" % (
        plural(errors, "error"), plural(warnings, "warning"), flagged, plural(len(results), "file")))
    print("rules checked: %s" % (", ".join(sorted(active)) or "none"))
    for note in notes:
        print("note: " + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
