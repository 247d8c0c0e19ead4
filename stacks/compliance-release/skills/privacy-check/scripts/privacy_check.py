#!/usr/bin/env python3
"""privacy-check: deterministic release hygiene for data handling. Not a legal review.

Reads the lodec step request (JSON) on stdin, scans source files under src/,
app/, pages/, server/, api/ and lib/ for personal-data collection in forms and
API routes and for telemetry, looks for a privacy note (PRIVACY.md, a README
heading, TELEMETRY.md) and checks env templates (.env.example, .env.sample,
.env.template) for real-looking secret values. Writes
$LODEC_OUTPUT_DIR/artifact.json. Exit 2 when the request is unusable.

It never opens real env files, secret JSON files or private keys: every open
goes through `forbidden()` first, and an audit hook aborts the process (exit 3)
if anything opens such a path anyway. Standard library only.
"""

import json
import os
import re
import sys

SKILL = "privacy-check"
SOURCE_DIRS = ("src", "app", "pages", "server", "api", "lib")
SOURCE_EXTENSIONS = {
    ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".vue", ".svelte", ".astro",
    ".html", ".htm", ".ejs", ".hbs", ".erb", ".php", ".py", ".rb", ".go",
    ".java", ".kt", ".cs", ".rs", ".jinja", ".j2",
}
SKIP_DIRS = {"node_modules", "__pycache__"}
ENV_TEMPLATES = (".env.example", ".env.sample", ".env.template")
MAX_FILE_BYTES = 1024 * 1024
MAX_SIGNALS = 200
GUARD_EXIT = 3

# ----------------------------------------------------------------------------- the guard

PRIVATE_KEY_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".p8", ".ppk", ".jks", ".keystore")
PRIVATE_KEY_PREFIXES = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")
SECRET_DIRS = {".ssh", ".aws", ".gnupg"}
SECRET_DOTFILES = {".netrc", ".npmrc", ".pypirc", ".git-credentials"}


def forbidden(path):
    """True for paths this skill must never open, whatever their contents.

    Real env files (`.env`, `.env.*` other than the three templates, `*.env`),
    secret JSON files (`credentials*.json`, `*secret*.json`,
    `service-account*.json`, `service_account*.json`, `*.key.json`), private
    keys (`*.pem`, `*.key`, `*.p12`, `*.pfx`, `*.p8`, `*.ppk`, `*.jks`,
    `*.keystore`, `id_rsa*`, `id_dsa*`, `id_ecdsa*`, `id_ed25519*`), credential
    dotfiles (`.netrc`, `.npmrc`, `.pypirc`, `.git-credentials`) and anything
    inside `.ssh/`, `.aws/` or `.gnupg/`. Matching is on the name, ignoring case.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    parts = [p for p in str(path).replace("\\", "/").split("/") if p]
    if not parts:
        return False
    if any(p.lower() in SECRET_DIRS for p in parts[:-1]):
        return True
    base = parts[-1].lower()
    if base in ENV_TEMPLATES:
        return False
    if base == ".env" or base.startswith(".env.") or base.endswith(".env"):
        return True
    if base in SECRET_DOTFILES:
        return True
    if base.endswith(".json") and (
            base.startswith(("credentials", "service-account", "service_account"))
            or "secret" in base or base.endswith(".key.json")):
        return True
    return base.endswith(PRIVATE_KEY_SUFFIXES) or base.startswith(PRIVATE_KEY_PREFIXES)


def guard_path(path, workspace):
    """The part of `path` the guard judges: workspace-relative when inside it."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    path = str(path)
    if workspace and os.path.isabs(path):
        prefix = workspace.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            return path[len(prefix):]
        return os.path.basename(path)
    return path


def install_guard(workspace, _forbidden=forbidden, _guard_path=guard_path):
    """Defence in depth: abort (exit 3) if anything opens a forbidden path.

    The predicate is bound when the guard is installed, so a later change to
    the module's `forbidden` (a bug, a monkeypatch) cannot switch it off.
    """
    def hook(event, args):
        if event != "open" or not args or not isinstance(args[0], (str, bytes)):
            return
        if _forbidden(_guard_path(args[0], workspace)):
            sys.stderr.write("%s: guard: refusing to open %s (secret-looking file); aborting\n"
                             % (SKILL, _guard_path(args[0], workspace)))
            sys.stderr.flush()
            os._exit(GUARD_EXIT)
    sys.addaudithook(hook)


def read_text(workspace, relative):
    """Read a workspace file as text, or None if it is forbidden, a link, huge or unreadable."""
    if forbidden(relative):
        return None
    full = os.path.join(workspace, *relative.split("/"))
    try:
        if os.path.islink(full) or not os.path.isfile(full) or os.path.getsize(full) > MAX_FILE_BYTES:
            return None
        with open(full, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ----------------------------------------------------------------------------- request

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
    workspace = request.get("workspace") or os.environ.get("LODEC_WORKSPACE")
    if not isinstance(workspace, str) or not os.path.isabs(workspace) or not os.path.isdir(workspace):
        raise UsageError("no usable workspace: set request.workspace or LODEC_WORKSPACE to an absolute directory")
    return request, os.path.realpath(workspace)


# ----------------------------------------------------------------------------- detection

FORM_MARKERS = re.compile(
    r"<form\b|<input\b|<textarea\b|<select\b|\bFormData\b|\buseForm\b|\bformData\b|\bonSubmit\b"
    r"|\bForm\(|\bforms\.\w*Field\b|\bFileField\b|\bUploadFile\b", re.IGNORECASE)
ROUTE_MARKERS = re.compile(
    r"\b(?:app|router|server|api|bp|blueprint|fastify)\.(?:get|post|put|patch|delete|route|all)\s*\("
    r"|@(?:app|router|api|bp|blueprint)\.(?:route|get|post|put|patch|delete)\b"
    r"|\bexport\s+(?:async\s+)?function\s+(?:GET|POST|PUT|PATCH|DELETE)\b"
    r"|\bexport\s+default\s+(?:async\s+)?function\s+handler\b"
    r"|\breq\.(?:body|files?|query)\b|\brequest\.(?:body|form|files|json|get_json|POST|FILES)\b"
    r"|\bhttp\.HandleFunc\b|\.PostForm(?:Value)?\(|\bFormValue\(|\bmulter\b|@(?:Post|Put)Mapping\b")

def ident(*words, sep="[ _-]?"):
    """A regex for an identifier or label made of `words`, in any usual casing.

    `ident("first", "name")` matches `first_name`, `first-name`, `first name`,
    `firstname`, `firstName`, `userFirstName`, `First Name` and `FIRST_NAME`,
    but not `firstnames` or `afirstname`: the words must start and end on a
    word or camelCase boundary.
    """
    lower = sep.join(words)
    camel = words[0] + "".join(sep + w.capitalize() for w in words[1:])
    pascal = sep.join(w.capitalize() for w in words)
    upper = sep.join(w.upper() for w in words)
    return ("(?:(?<![A-Za-z0-9])(?:%s|%s)(?![a-z0-9])" % (lower, camel)
            + "|(?<![A-Z0-9])%s(?![a-z0-9])" % pascal
            + "|(?<![A-Za-z0-9])%s(?![A-Za-z0-9]))" % upper)


def anyof(*patterns):
    return re.compile("|".join(patterns))


# category: (evidence, pattern, text that must not come just before a match)
PERSONAL_DATA = (
    ("email", anyof(ident("email"), ident("e", "mail", sep="-")), None),
    ("name", anyof(ident("first", "name"), ident("last", "name"), ident("full", "name"),
                   ident("given", "name"), ident("family", "name"), ident("display", "name"),
                   ident("user", "name"), ident("surname"),
                   r"\bname\s*=\s*[\"']name[\"']", r"[\"']name[\"']\s*:"), None),
    ("phone", anyof(ident("phone"), ident("telephone"), ident("mobile", "number"),
                    r"type\s*=\s*[\"']tel[\"']"), None),
    ("address", anyof(ident("address"), ident("street"), ident("postcode"), ident("postal", "code"),
                      ident("zip", "code")),
     re.compile(r"(?:e-?mail|\bip|mac|wallet|web|server|remote|bind|listen)[ _-]?$", re.IGNORECASE)),
    ("payment", anyof(ident("payment"), ident("billing"), ident("credit", "card"), ident("card", "number"),
                      ident("cvc"), ident("cvv"), ident("iban"), r"autocomplete\s*=\s*[\"']cc-"), None),
    ("token", anyof(ident("token")), re.compile(r"(?:csrf|xsrf)[ _-]?$", re.IGNORECASE)),
    ("api key", anyof(ident("api", "key")), None),
    ("file upload", anyof(r"type\s*=\s*[\"']file[\"']", ident("upload"), ident("uploads"), ident("uploaded"),
                          ident("multipart"), ident("multer"), r"\b(?:req|request)\.files?\b",
                          r"\bUploadFile\b", r"\bFileField\b"), None),
)
TELEMETRY = [(word, anyof(*[ident(*parts, sep="") for parts in variants]), None) for word, variants in (
    ("analytics", [("analytics",)]),
    ("tracking", [("tracking",)]),
    ("telemetry", [("telemetry",)]),
    ("segment", [("segment",)]),
    ("posthog", [("posthog",), ("post", "hog")]),
    ("mixpanel", [("mixpanel",), ("mix", "panel")]),
    ("sentry", [("sentry",)]),
)]
TELEMETRY.append(("ga(", re.compile(r"(?<![\w$.])ga\s*\("), None))
TELEMETRY.append(("gtag(", re.compile(r"(?<![\w$.])gtag\s*\("), None))


def matches(pattern, exclude_before, line):
    for match in pattern.finditer(line):
        if exclude_before is None or not exclude_before.search(line[:match.start()]):
            return True
    return False


def is_route_path(relative):
    parts = relative.split("/")
    return "api" in parts[:-1] or "routes" in parts[:-1] or parts[0] == "api"


def scan_source(relative, text):
    signals = []
    surface = bool(FORM_MARKERS.search(text) or ROUTE_MARKERS.search(text) or is_route_path(relative))
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) > 2000:
            line = line[:2000]
        if surface:
            for evidence, pattern, exclude in PERSONAL_DATA:
                if matches(pattern, exclude, line):
                    signals.append({"kind": "personal_data", "file": relative, "line": number,
                                    "evidence": evidence})
        for evidence, pattern, exclude in TELEMETRY:
            if matches(pattern, exclude, line):
                signals.append({"kind": "telemetry", "file": relative, "line": number, "evidence": evidence})
    return signals


def source_files(workspace):
    found, refused = [], []
    for top in SOURCE_DIRS:
        root = os.path.join(workspace, top)
        if os.path.islink(root) or not os.path.isdir(root):
            continue
        for directory, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
                                 and not os.path.islink(os.path.join(directory, d)))
            for name in sorted(filenames):
                full = os.path.join(directory, name)
                relative = os.path.relpath(full, workspace).replace(os.sep, "/")
                if forbidden(relative):
                    refused.append(relative)
                    continue
                if os.path.splitext(name)[1].lower() in SOURCE_EXTENSIONS and not os.path.islink(full):
                    found.append(relative)
    key = lambda p: p.encode("utf-8")  # noqa: E731
    return sorted(found, key=key), sorted(refused, key=key)


# ----------------------------------------------------------------------------- privacy note

README = re.compile(r"^readme(?:\.(?:md|markdown|rst|txt|adoc))?$", re.IGNORECASE)
MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+.*\bprivacy\b", re.IGNORECASE)
UNDERLINE = re.compile(r"^\s{0,3}(?:=+|-+|~+|\^+|\*+)\s*$")
ADOC_HEADING = re.compile(r"^={1,6}\s+.*\bprivacy\b", re.IGNORECASE)


def has_privacy_heading(text):
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if MD_HEADING.match(line) or ADOC_HEADING.match(line):
            return True
        if re.search(r"\bprivacy\b", line, re.IGNORECASE) and index + 1 < len(lines) \
                and line.strip() and UNDERLINE.match(lines[index + 1]):
            return True
    return False


def listing(workspace, relative_dir=""):
    try:
        return sorted(os.listdir(os.path.join(workspace, relative_dir)))
    except OSError:
        return []


def find_notes(workspace, root_names):
    """(privacy note files, telemetry note files); root_names: the listing of the workspace root."""
    privacy, telemetry = [], []
    for folder, names in (("", root_names), ("docs", listing(workspace, "docs"))):
        for name in names:
            relative = folder + "/" + name if folder else name
            full = os.path.join(workspace, relative)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            lower = name.lower()
            if lower in ("privacy.md", "privacy.txt", "privacy.rst", "privacy"):
                privacy.append(relative)
            elif lower == "telemetry.md" and read_text(workspace, relative) is not None:
                telemetry.append(relative)
            elif not folder and README.match(name):
                text = read_text(workspace, relative)
                if text is not None and has_privacy_heading(text):
                    privacy.append(relative)
    return privacy, telemetry


# ----------------------------------------------------------------------------- env templates

ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*[=:]\s*(.*)$")
SECRET_KEY_WORDS = {"KEY", "APIKEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PWD", "PASS", "CREDENTIAL",
                    "CREDENTIALS", "PRIVATE", "AUTH", "SALT", "SIGNING", "PASSPHRASE", "CERT"}
PUBLIC_WORDS = {"PUBLIC", "PUBLISHABLE"}
PLACEHOLDER_WORDS = ("your", "change", "example", "placeholder", "xxx", "dummy", "sample", "replace",
                     "todo", "fixme", "insert", "redacted", "fake", "test", "here", "secret", "password",
                     "token", "none", "null", "undefined", "enter", "put-", "put_", "my-", "my_", "<", ">")
KNOWN_SECRET = re.compile(
    r"sk_live_[0-9A-Za-z]{8,}|rk_live_[0-9A-Za-z]{8,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,}"
    r"|glpat-[A-Za-z0-9_-]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")
URL_CREDENTIALS = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]+:([^@\s/]+)@")


def unquote(value):
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        return value[1:-1]
    if " #" in value:
        value = value.split(" #", 1)[0].rstrip()
    return value


def looks_placeholder(value):
    lower = value.lower()
    if not value or any(word in lower for word in PLACEHOLDER_WORDS):
        return True
    if re.fullmatch(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\{\{.*\}\}|\[.*\]|\*+|\.+|[xX0_.-]+", value):
        return True
    return len(set(value)) <= 2


def looks_real(value):
    if KNOWN_SECRET.search(value):
        return True
    if looks_placeholder(value):
        return False
    return len(value) >= 8 and bool(re.search(r"[A-Za-z]", value)) and bool(re.search(r"[0-9]", value))


def key_words(key):
    return [w for w in re.split(r"[_.\-]+", key.upper()) if w]


def scan_env_template(relative, text):
    signals = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.lstrip().startswith("#"):
            continue
        match = ENV_LINE.match(line)
        if not match:
            continue
        key, value = match.group(1), unquote(match.group(2))
        words = key_words(key)
        secret_name = any(w in SECRET_KEY_WORDS or w.endswith(("KEY", "SECRET", "TOKEN", "PASSWORD"))
                          for w in words) and not any(w in PUBLIC_WORDS for w in words)
        credentials = URL_CREDENTIALS.match(value)
        unsafe = bool(KNOWN_SECRET.search(value)) \
            or (secret_name and looks_real(value)) \
            or (credentials is not None and not looks_placeholder(credentials.group(1)))
        if unsafe:
            # The value is never copied: the key name is the evidence.
            signals.append({"kind": "unsafe_env_example", "file": relative, "line": number, "evidence": key})
    return signals


# ----------------------------------------------------------------------------- report

def join_words(words):
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


KIND_ORDER = {"personal_data": 0, "telemetry": 1, "unsafe_env_example": 2}
CATEGORY_ORDER = [category[0] for category in PERSONAL_DATA]


def main():
    try:
        output_dir = os.environ["LODEC_OUTPUT_DIR"]
    except KeyError:
        fail("environment variable LODEC_OUTPUT_DIR is not set")
    try:
        request, workspace = read_request()
    except UsageError as exc:
        fail(str(exc))
    install_guard(workspace)

    step = request.get("step")
    phase = step["name"] if isinstance(step, dict) and isinstance(step.get("name"), str) and step["name"] \
        else os.environ.get("LODEC_STEP") or SKILL

    files, refused = source_files(workspace)
    signals = []
    for relative in files:
        text = read_text(workspace, relative)
        if text is not None:
            signals.extend(scan_source(relative, text))

    root_names = listing(workspace)
    templates = []
    for name in root_names:
        if name.lower() in ENV_TEMPLATES:
            text = read_text(workspace, name)
            if text is not None:
                templates.append(name)
                signals.extend(scan_env_template(name, text))
    refused_root = [name for name in root_names
                    if forbidden(name) and os.path.isfile(os.path.join(workspace, name))]

    privacy_notes, telemetry_notes = find_notes(workspace, root_names)

    signals.sort(key=lambda s: (s["file"].encode("utf-8"), s["line"], KIND_ORDER[s["kind"]], s["evidence"]))
    personal = sorted({s["evidence"] for s in signals if s["kind"] == "personal_data"}, key=CATEGORY_ORDER.index)
    telemetry = sorted({s["evidence"] for s in signals if s["kind"] == "telemetry"})
    unsafe = [s for s in signals if s["kind"] == "unsafe_env_example"]

    needs_note = bool(personal) or (bool(telemetry) and not telemetry_notes)
    missing = ["privacy_note"] if needs_note and not privacy_notes else []

    detected = []
    if personal:
        first = personal[0].capitalize() if personal[0] != "api key" else "API key"
        detected.append("%s collection" % join_words([first] + personal[1:3]
                                                      + (["more"] if len(personal) > 3 else [])))
    if telemetry:
        detected.append("telemetry (%s)" % ", ".join(telemetry[:3] + (["..."] if len(telemetry) > 3 else [])))
    parts, actions, questions, decisions = [], [], [], []
    if missing:
        parts.append("%s detected but no privacy note found" % " plus ".join(detected))
        actions.append("Add a short privacy note (PRIVACY.md, or a Privacy section in the README) saying what "
                       "is collected, why, and where it goes, before shipping.")
        questions.append("Where should the privacy note live?")
    elif detected:
        notes = privacy_notes or telemetry_notes
        parts.append("%s detected; privacy note found (%s)" % (" plus ".join(detected), ", ".join(notes)))
    if unsafe:
        keys = sorted({s["evidence"] for s in unsafe})
        files_with = sorted({s["file"] for s in unsafe})
        parts.append("%s %s real-looking secret %s (%s)" % (
            join_words(files_with), "has" if len(files_with) == 1 else "have",
            "value" if len(unsafe) == 1 else "values", ", ".join(keys)))
        actions.append("Replace the values of %s in %s with placeholders (and rotate them if they were real)."
                       % (", ".join(keys), join_words(files_with)))
        questions.append("Were the values in %s ever real credentials?" % join_words(files_with))
    if telemetry and not missing and not privacy_notes and telemetry_notes:
        decisions.append("Telemetry documented in %s; that note covers telemetry signals only."
                         % ", ".join(telemetry_notes))
    if telemetry and missing:
        questions.append("Is telemetry opt-in or opt-out, and will the note say so?")
    not_opened = sorted(set(refused_root) | set(refused), key=lambda p: p.encode("utf-8"))
    if not_opened:
        decisions.append("Not opened (real env files, secret JSON and private keys are never read): %s."
                         % ", ".join(not_opened[:10] + (["..."] if len(not_opened) > 10 else [])))

    status = "WARN" if missing or unsafe else "OK"
    if parts:
        headline = "; ".join(parts) + "."
        headline = headline[0].upper() + headline[1:]
    else:
        headline = "No personal-data collection or telemetry signals found."
    kept = signals[:MAX_SIGNALS]
    key_files = sorted({s["file"] for s in kept}, key=lambda p: p.encode("utf-8"))[:20]
    key_files += [f for f in sorted(set(privacy_notes + telemetry_notes + templates)) if f not in key_files]

    artifact = {
        "phase": phase,
        "summary": {
            "status": status,
            "headline": headline,
            "signals": kept,
            "truncated": len(signals) - len(kept),
            "missing": missing,
            "next_action": " ".join(actions) if actions else "None.",
        },
        "context_checkpoint": {
            "summary": "Privacy check completed: %d source %s, %s, %s." % (
                len(files), "file" if len(files) == 1 else "files",
                "privacy note: " + ", ".join(privacy_notes) if privacy_notes else "no privacy note",
                "env templates: " + ", ".join(templates) if templates else "no env template"),
            "key_files": key_files,
            "decisions_made": decisions,
            "open_questions": questions,
        },
    }
    with open(os.path.join(output_dir, "artifact.json"), "w", encoding="utf-8", newline="\n") as handle:
        handle.write(json.dumps(artifact, indent=2, sort_keys=True) + "\n")
    print("%s: %s: %s" % (SKILL, status, headline))
    print("%s: release hygiene check only, not a legal review." % SKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
