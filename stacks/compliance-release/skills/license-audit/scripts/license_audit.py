#!/usr/bin/env python3
"""license-audit: classify the licenses of a project's direct dependencies.

Reads the lodec step request (JSON) on stdin and the dependency manifests at
the workspace root (package.json, requirements.txt, pyproject.toml, go.mod).
Licenses come from what is installed locally: node_modules/<dep>/package.json,
the Python distributions' metadata (importlib.metadata) and the Go module
cache's LICENSE/COPYING files. Never uses the network. SPDX expressions are
parsed with `license_expression`. Writes $LODEC_OUTPUT_DIR/artifact.json.
Exit 2 when the request is unusable.
"""

import glob
import importlib.metadata
import json
import os
import re
import sys
import tomllib

try:
    from license_expression import LicenseWithExceptionSymbol, get_spdx_licensing
except ImportError:  # pragma: no cover - reported as a usage error below
    get_spdx_licensing = None

SKILL = "license-audit"
MANIFESTS = ("package.json", "requirements.txt", "pyproject.toml", "go.mod")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_LICENSE_BYTES = 1024 * 1024
CLASSES = ("permissive", "weak_copyleft", "unknown", "strong_copyleft")  # least to most restrictive
RANK = {name: index for index, name in enumerate(CLASSES)}

# ----------------------------------------------------------------------------- classification tables

PERMISSIVE = {
    "0bsd", "afl-2.1", "afl-3.0", "apache-1.0", "apache-1.1", "apache-2.0", "artistic-2.0", "blueoak-1.0.0",
    "bsd-1-clause", "bsd-2-clause", "bsd-2-clause-patent", "bsd-3-clause", "bsd-3-clause-clear",
    "bsd-4-clause", "bsl-1.0", "bzip2-1.0.6", "cc-by-3.0", "cc-by-4.0", "cc0-1.0", "cnri-python", "curl",
    "ftl", "hpnd", "ijg", "isc", "libpng", "libpng-2.0", "mit", "mit-0", "mit-cmu", "ms-pl",
    "mulanpsl-2.0", "ncsa", "openssl", "postgresql", "psf-2.0", "python-2.0", "python-2.0.1",
    "unicode-3.0", "unicode-dfs-2016", "unlicense", "upl-1.0", "w3c", "wtfpl", "x11", "zlib", "zpl-2.0",
    "zpl-2.1",
    # not SPDX ids, but unambiguous about permissiveness (see KNOWN_NAMES)
    "bsd",
}
WEAK_PREFIXES = ("lgpl-", "mpl-", "epl-", "cddl-", "cpl-", "ms-rl", "apsl-", "ofl-", "erlpl-", "cecill-c",
                 "lgpllr", "eupl-1.0")
STRONG_PREFIXES = ("gpl-", "agpl-", "sspl-", "osl-", "eupl-", "rpl-", "rpsl-", "sleepycat", "qpl-",
                   "cc-by-sa-", "gfdl-", "cecill-2", "cecill-1")
# A strong copyleft licence WITH one of these exceptions only reaches the
# library itself, not the program linking it: counted as weak copyleft.
LINKING_EXCEPTIONS = {
    "autoconf-exception-2.0", "autoconf-exception-3.0", "bison-exception-2.2", "classpath-exception-2.0",
    "ecos-exception-2.0", "fltk-exception", "font-exception-2.0", "freertos-exception-2.0",
    "gcc-exception-2.0", "gcc-exception-3.1", "gnat-exception", "gnu-javamail-exception",
    "i2p-gpl-java-exception", "lgpl-3.0-linking-exception", "libtool-exception", "linux-syscall-note",
    "llvm-exception", "mif-exception", "ocaml-lgpl-linking-exception", "openjdk-assembly-exception-1.0",
    "qt-gpl-exception-1.0", "qt-lgpl-exception-1.1", "universal-foss-exception-1.0",
    "wxwindows-exception-3.1",
}
# Free-text names found in License fields and npm manifests, lower case, with a
# trailing "license"/"licence" and punctuation removed -> the expression to use.
KNOWN_NAMES = {
    "mit": "MIT", "the mit": "MIT", "expat": "MIT", "mit-0": "MIT-0",
    "apache 2.0": "Apache-2.0", "apache 2": "Apache-2.0", "apache-2": "Apache-2.0", "apache v2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "apache version 2.0": "Apache-2.0", "apache software": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0", "apache 2.0 license": "Apache-2.0", "asl 2.0": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0", "apache license v2": "Apache-2.0", "apache": "Apache-2.0",
    "bsd": "BSD", "bsd-style": "BSD", "new bsd": "BSD-3-Clause", "modified bsd": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause", "bsd 3-clause": "BSD-3-Clause", "bsd-3": "BSD-3-Clause",
    "revised bsd": "BSD-3-Clause", "simplified bsd": "BSD-2-Clause", "2-clause bsd": "BSD-2-Clause",
    "bsd 2-clause": "BSD-2-Clause", "freebsd": "BSD-2-Clause",
    "isc": "ISC", "zlib": "Zlib", "zlib/libpng": "Zlib", "unlicense": "Unlicense", "the unlicense": "Unlicense",
    "cc0": "CC0-1.0", "cc0 1.0 universal": "CC0-1.0", "boost": "BSL-1.0", "boost software": "BSL-1.0",
    "psf": "PSF-2.0", "python software foundation": "PSF-2.0", "psfl": "PSF-2.0",
    "mpl 2.0": "MPL-2.0", "mpl-2": "MPL-2.0", "mozilla public 2.0": "MPL-2.0", "mpl2": "MPL-2.0",
    "lgpl": "LGPL-2.0-or-later", "lgplv2": "LGPL-2.1-only", "lgplv2+": "LGPL-2.1-or-later",
    "lgplv3": "LGPL-3.0-only", "lgplv3+": "LGPL-3.0-or-later", "lgpl v3": "LGPL-3.0-only",
    "gpl": "GPL-2.0-or-later", "gplv2": "GPL-2.0-only", "gplv2+": "GPL-2.0-or-later", "gpl v2": "GPL-2.0-only",
    "gplv3": "GPL-3.0-only", "gplv3+": "GPL-3.0-or-later", "gpl v3": "GPL-3.0-only", "gnu gpl v3": "GPL-3.0-only",
    "agpl": "AGPL-3.0-only", "agplv3": "AGPL-3.0-only", "agplv3+": "AGPL-3.0-or-later",
    "eclipse public 2.0": "EPL-2.0", "epl 2.0": "EPL-2.0",
}
# Trove classifiers (the part after "License :: ") -> expression.
CLASSIFIERS = {
    "OSI Approved :: MIT License": "MIT",
    "OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "OSI Approved :: Apache Software License": "Apache-2.0",
    "OSI Approved :: BSD License": "BSD",
    "OSI Approved :: ISC License (ISCL)": "ISC",
    "OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "OSI Approved :: zlib/libpng License": "Zlib",
    "OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
    "OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "OSI Approved :: Universal Permissive License (UPL)": "UPL-1.0",
    "OSI Approved :: Academic Free License (AFL)": "AFL-3.0",
    "OSI Approved :: Artistic License": "Artistic-2.0",
    "OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "HPND",
    "OSI Approved :: Zope Public License": "ZPL-2.1",
    "OSI Approved :: Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "OSI Approved :: Eclipse Public License 1.0 (EPL-1.0)": "EPL-1.0",
    "OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "OSI Approved :: Common Development and Distribution License 1.0 (CDDL-1.0)": "CDDL-1.0",
    "OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "OSI Approved :: GNU Library or Lesser General Public License (LGPL)": "LGPL-2.0-or-later",
    "OSI Approved :: GNU General Public License (GPL)": "GPL-2.0-or-later",
    "OSI Approved :: GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "OSI Approved :: GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "OSI Approved :: GNU Affero General Public License v3": "AGPL-3.0-only",
    "OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)": "EUPL-1.2",
    "OSI Approved :: Open Software License 3.0 (OSL-3.0)": "OSL-3.0",
    "OSI Approved :: Server Side Public License (SSPL)": "SSPL-1.0",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "CC0-1.0",
    "GNU General Public License (GPL)": "GPL-2.0-or-later",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL-2.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
}
# Licence texts, recognised by phrases (lower case, whitespace collapsed), first match wins.
TEXT_PHRASES = (
    ("AGPL-3.0-only", ("gnu affero general public license",)),
    ("LGPL-3.0-only", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1-only", ("gnu lesser general public license",)),
    ("LGPL-2.0-only", ("gnu library general public license",)),
    ("GPL-3.0-only", ("gnu general public license", "version 3")),
    ("GPL-2.0-only", ("gnu general public license", "version 2")),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("MIT", ("permission is hereby granted, free of charge",)),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "neither the name")),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "names of its contributors")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
    ("ISC", ("permission to use, copy, modify, and/or distribute this software for any purpose",)),
    ("ISC", ("permission to use, copy, modify, and distribute this software for any purpose",)),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
)


class UsageError(Exception):
    """The request cannot be used (exit 2)."""


def fail(message):
    sys.stderr.write(SKILL + ": " + message + "\n")
    sys.exit(2)


# ----------------------------------------------------------------------------- licences

class Classifier:
    def __init__(self):
        self.licensing = get_spdx_licensing()
        self.notes = set()

    def key_class(self, key):
        lower = key.lower()
        if lower in PERMISSIVE:
            return "permissive", None
        if lower.startswith(WEAK_PREFIXES):
            return "weak_copyleft", None
        if lower.startswith(STRONG_PREFIXES):
            return "strong_copyleft", None
        if lower.startswith(("licenseref-", "documentref-")):
            return "unknown", "%s is a custom license reference" % key
        if lower in ("unlicensed", "proprietary", "commercial"):
            return "unknown", "%s: not an open source license" % key
        return "unknown", "unknown license key %s" % key

    def node_class(self, node):
        """(class, reason) of a parsed expression node."""
        if isinstance(node, LicenseWithExceptionSymbol):
            base, reason = self.key_class(node.license_symbol.key)
            exception = node.exception_symbol.key
            if base == "strong_copyleft" and exception.lower() in LINKING_EXCEPTIONS:
                self.notes.add("%s counted as weak copyleft (the exception limits it to the library)." % node)
                return "weak_copyleft", None
            return base, reason
        if isinstance(node, self.licensing.OR) or isinstance(node, self.licensing.AND):
            parts = [self.node_class(arg) for arg in node.args]
            pick = min if isinstance(node, self.licensing.OR) else max
            best = pick(RANK[c] for c, _ in parts)
            reasons = [r for c, r in parts if RANK[c] == best and r]
            return CLASSES[best], reasons[0] if reasons else None
        return self.key_class(node.key)

    def classify(self, expression):
        """(normalised expression or the raw text, class, reason) of a license string."""
        if expression is None or not str(expression).strip():
            return None, "unknown", "no license declared"
        text = " ".join(str(expression).split())
        if text.upper().startswith("SEE LICENSE IN") or text.upper().startswith("SEE LICENCE IN"):
            return text[:200], "unknown", "license is in a file (%s), not an SPDX expression" % text[:200]
        named = known_name(text)
        if named:
            text = named
        try:
            parsed = self.licensing.parse(text, validate=False)
        except Exception as exc:  # ExpressionError and its relatives, or worse: still just "unknown"
            return text[:200], "unknown", "not an SPDX expression (%s)" % str(exc).split(":")[0][:120]
        if parsed is None:
            return None, "unknown", "no license declared"
        cls, reason = self.node_class(parsed)
        if cls == "strong_copyleft" and not reason:
            reason = "%s is strong copyleft" % parsed
        return str(parsed), cls, reason

    def id_like(self, text):
        """True if `text` is a known name or an SPDX expression whose keys are all known."""
        if known_name(text):
            return True
        try:
            parsed = self.licensing.parse(text, validate=False)
        except Exception:
            return False
        if parsed is None:
            return False
        unknown = self.licensing.unknown_license_keys(parsed)
        return all(key.lower() in PERMISSIVE or key.lower().startswith("licenseref-") for key in unknown)


def known_name(text):
    lower = " ".join(text.lower().replace(",", " ").split())
    lower = re.sub(r"^\((.*)\)$", r"\1", lower)
    lower = re.sub(r"\s+(?:license|licence)$", "", lower)
    return KNOWN_NAMES.get(lower) or KNOWN_NAMES.get(re.sub(r"^the\s+", "", lower))


def identify_text(text):
    flat = " ".join(text.lower().split())
    for spdx, phrases in TEXT_PHRASES:
        if all(phrase in flat for phrase in phrases):
            return spdx
    return None


# ----------------------------------------------------------------------------- files

def read_file(path, limit):
    if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > limit:
        return None
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def rel(path, workspace):
    """Workspace-relative POSIX path, or None when `path` is outside the workspace."""
    real, root = os.path.realpath(path), os.path.realpath(workspace)
    if real == root:
        return "."
    if real.startswith(root + os.sep):
        return os.path.relpath(real, root).replace(os.sep, "/")
    return None


def pep503(name):
    return re.sub(r"[-_.]+", "-", name).lower()


# ----------------------------------------------------------------------------- npm

def npm_dependencies(workspace, classifier, problems):
    text = read_file(os.path.join(workspace, "package.json"), MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(text or "")
    except ValueError:
        problems.append("package.json is not valid JSON; its dependencies were not read.")
        return []
    if not isinstance(manifest, dict):
        problems.append("package.json is not a JSON object; its dependencies were not read.")
        return []
    found = []
    for scope in ("dependencies", "devDependencies"):
        section = manifest.get(scope) or {}
        if not isinstance(section, dict):
            problems.append("package.json %s is not an object; skipped." % scope)
            continue
        for name in sorted(section):
            found.append(npm_entry(workspace, name, scope, classifier))
    return found


def npm_license_field(meta):
    value = meta.get("license")
    if isinstance(value, dict):  # legacy {"type": "MIT", "url": ...}
        value = value.get("type")
    if isinstance(value, str) and value.strip():
        return value.strip(), "license"
    licenses = meta.get("licenses")  # legacy array: dual licensing
    if isinstance(licenses, list):
        types = []
        for item in licenses:
            item = item.get("type") if isinstance(item, dict) else item
            if isinstance(item, str) and item.strip() and item.strip() not in types:
                types.append(item.strip())
        if types:
            parts = [known_name(t) or t for t in types]
            return " OR ".join(p if " " not in p else "(%s)" % p for p in parts), "licenses"
    return None, None


def npm_entry(workspace, name, scope, classifier):
    entry = {"name": name, "ecosystem": "npm", "manifest": "package.json", "scope": scope}
    segments = name.split("/")
    valid = 1 <= len(segments) <= 2 and all(s and s not in (".", "..") and "\\" not in s for s in segments) \
        and (len(segments) == 1 or segments[0].startswith("@"))
    if not valid:
        return dict(entry, license=None, source=None, cls="unknown", reason="not a valid package name")
    meta_path = os.path.join(workspace, "node_modules", *segments, "package.json")
    shown = "node_modules/%s/package.json" % name
    if not os.path.exists(meta_path) or rel(meta_path, workspace) is None:
        return dict(entry, license=None, source=None, cls="unknown",
                    reason="not installed (no %s)" % shown)
    try:
        meta = json.loads(read_file(os.path.realpath(meta_path), MAX_MANIFEST_BYTES) or "")
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        return dict(entry, license=None, source=shown, cls="unknown", reason="%s is not readable JSON" % shown)
    value, field = npm_license_field(meta)
    if value is None:
        return dict(entry, license=None, source=shown, cls="unknown", reason="no license field in %s" % shown)
    license_, cls, reason = classifier.classify(value)
    return dict(entry, license=license_, source="%s:%s" % (shown, field), cls=cls, reason=reason)


# ----------------------------------------------------------------------------- python

REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def requirement_name(spec):
    """The distribution name of a PEP 508 string, or None."""
    if not isinstance(spec, str):
        return None
    match = REQUIREMENT_NAME.match(spec)
    return match.group(1) if match else None


def requirements_txt(workspace):
    text = read_file(os.path.join(workspace, "requirements.txt"), MAX_MANIFEST_BYTES) or ""
    names = []
    logical = text.replace("\\\r\n", " ").replace("\\\n", " ")
    for line in logical.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line or line.startswith("-"):  # -r, -c, -e, --hash, --index-url, ...
            continue
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", line) or line.startswith((".", "/")):
            continue  # a URL or a path, not a named requirement
        name = requirement_name(line)
        if name:
            names.append((name, "requirements"))
    return names


def pyproject(workspace, problems):
    text = read_file(os.path.join(workspace, "pyproject.toml"), MAX_MANIFEST_BYTES) or ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append("pyproject.toml is not valid TOML (%s); its dependencies were not read." % exc)
        return []
    names = []
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    for spec in project.get("dependencies") or []:
        name = requirement_name(spec)
        if name:
            names.append((name, "dependencies"))
    optional = project.get("optional-dependencies") or {}
    if isinstance(optional, dict):
        for group in sorted(optional):
            for spec in optional[group] if isinstance(optional[group], list) else []:
                name = requirement_name(spec)
                if name:
                    names.append((name, "optional:%s" % group))
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    poetry = tool.get("poetry") if isinstance(tool.get("poetry"), dict) else {}
    deps = poetry.get("dependencies") if isinstance(poetry.get("dependencies"), dict) else {}
    for name in sorted(deps):
        if name.lower() != "python" and requirement_name(name) == name:
            names.append((name, "poetry"))
    return names


class PythonEnvironment:
    """Installed distributions' metadata (parsed once), looked up by PEP 503 name."""

    def __init__(self, workspace, site_packages):
        self.kind, self.path, search = "interpreter", None, None
        if site_packages:
            full = site_packages if os.path.isabs(site_packages) else os.path.join(workspace, site_packages)
            if not os.path.isdir(full):
                raise UsageError("input site-packages %r is not a directory" % site_packages)
            self.kind, search = "input", [full]
        else:
            venvs = sorted(glob.glob(os.path.join(workspace, ".venv", "lib", "python*", "site-packages"))) \
                + sorted(glob.glob(os.path.join(workspace, ".venv", "Lib", "site-packages")))
            if venvs:
                self.kind, search = "workspace-venv", [venvs[-1]]
        if search:
            self.path = rel(search[0], workspace)
            distributions = importlib.metadata.distributions(path=search)
        else:
            distributions = importlib.metadata.distributions()
        self.by_name = {}
        for dist in distributions:
            try:
                meta = dist.metadata  # a property that reads and parses METADATA on every access
                name = meta["Name"]
            except Exception:
                continue
            if name:
                self.by_name.setdefault(pep503(name), meta)

    def describe(self):
        if self.kind == "interpreter":
            return "the interpreter's environment"
        return self.path or "a site-packages directory outside the workspace"

    def record(self):
        return {"kind": self.kind, "path": self.path}


def python_license(meta, classifier):
    """(license, source, class, reason) from a distribution's metadata."""
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        license_, cls, reason = classifier.classify(expression)
        return license_, "metadata:License-Expression", cls, reason
    field = (meta.get("License") or "").strip()
    short = field and "\n" not in field and len(field) <= 100 and field.upper() != "UNKNOWN"
    if short and classifier.id_like(field):
        license_, cls, reason = classifier.classify(field)
        return license_, "metadata:License", cls, reason
    mapped = []
    for trove in meta.get_all("Classifier") or []:
        if trove.startswith("License :: "):
            value = CLASSIFIERS.get(trove[len("License :: "):].strip())
            if value and value not in mapped:
                mapped.append(value)
    if mapped:
        license_, cls, reason = classifier.classify(" OR ".join(sorted(mapped)))
        return license_, "metadata:Classifier", cls, reason
    if field and field.upper() != "UNKNOWN":
        if not short:
            spdx = identify_text(field)
            if spdx:
                license_, cls, reason = classifier.classify(spdx)
                return license_, "metadata:License (text)", cls, reason
            return None, "metadata:License", "unknown", "License field is a text that was not recognised"
        license_, cls, reason = classifier.classify(field)
        return license_, "metadata:License", cls, reason
    return None, None, "unknown", "no License-Expression, License or license classifier in the metadata"


def python_entries(pairs, manifest, environment, classifier):
    entries = []
    for name, scope in pairs:
        normal = pep503(name)
        entry = {"name": normal, "ecosystem": "pypi", "manifest": manifest, "scope": scope}
        meta = environment.by_name.get(normal)
        if meta is None:
            entries.append(dict(entry, license=None, source=None, cls="unknown",
                                reason="not installed in %s" % environment.describe()))
            continue
        license_, source, cls, reason = python_license(meta, classifier)
        entries.append(dict(entry, license=license_, source=source, cls=cls, reason=reason))
    return entries


# ----------------------------------------------------------------------------- go

def go_requirements(workspace):
    text = read_file(os.path.join(workspace, "go.mod"), MAX_MANIFEST_BYTES) or ""
    found, block = [], False
    for raw in text.splitlines():
        line, _, comment = raw.partition("//")
        indirect = re.search(r"\bindirect\b", comment) is not None
        line = line.strip()
        if block:
            if line.startswith(")"):
                block = False
                continue
            parts = line.split()
        elif re.match(r"^require\s*\($", line):
            block = True
            continue
        elif line.startswith("require "):
            parts = line.split()[1:]
        else:
            continue
        if len(parts) >= 2 and not indirect:
            found.append((parts[0].strip('"'), parts[1].strip('"')))
    return found


def go_escape(path):
    """Module cache escaping: every upper-case letter becomes '!' + its lower case."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def go_cache(inputs, workspace):
    value = inputs.get("gomodcache") or os.environ.get("GOMODCACHE")
    if value:
        return value if os.path.isabs(value) else os.path.join(workspace, value), "gomodcache"
    gopath = os.environ.get("GOPATH")
    if gopath:
        first = gopath.split(os.pathsep)[0]
        return os.path.join(first, "pkg", "mod"), "GOPATH"
    return None, None


def go_entries(requirements, cache, classifier):
    entries = []
    for module, version in requirements:
        entry = {"name": module, "ecosystem": "go", "manifest": "go.mod", "scope": "require"}
        if not cache or ".." in module.split("/") or ".." in version:
            entries.append(dict(entry, license=None, source=None, cls="unknown",
                                reason="no Go module cache (set GOMODCACHE or GOPATH, or input gomodcache)"
                                if not cache else "not a valid module path"))
            continue
        directory = os.path.join(cache, *(go_escape(module) + "@" + go_escape(version)).split("/"))
        if not os.path.isdir(directory):
            entries.append(dict(entry, license=None, source=None, cls="unknown",
                                reason="not in the Go module cache"))
            continue
        candidates = sorted(n for n in os.listdir(directory)
                            if re.match(r"^(?:licen[cs]e|copying)", n, re.IGNORECASE))
        identified = []
        for name in candidates:
            text = read_file(os.path.join(directory, name), MAX_LICENSE_BYTES)
            spdx = identify_text(text) if text else None
            if spdx and spdx not in identified:
                identified.append(spdx)
        if not candidates:
            entries.append(dict(entry, license=None, source=None, cls="unknown",
                                reason="no LICENSE or COPYING file in the module cache"))
        elif not identified:
            entries.append(dict(entry, license=None, source="module cache:%s" % candidates[0], cls="unknown",
                                reason="license text in %s not recognised" % candidates[0]))
        else:
            # Several licence files (LICENSE-MIT, LICENSE-APACHE) mean a choice.
            license_, cls, reason = classifier.classify(" OR ".join(identified))
            entries.append(dict(entry, license=license_, source="module cache:%s" % ",".join(candidates),
                                cls=cls, reason=reason))
    return entries


# ----------------------------------------------------------------------------- main

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
    return request, inputs, os.path.realpath(workspace)


def names_list(entries, limit=5):
    shown = ["%s (%s)" % (e["name"], e["license"]) if e["license"] else e["name"] for e in entries[:limit]]
    return ", ".join(shown) + (" and %d more" % (len(entries) - limit) if len(entries) > limit else "")


def main():
    try:
        output_dir = os.environ["LODEC_OUTPUT_DIR"]
    except KeyError:
        fail("environment variable LODEC_OUTPUT_DIR is not set")
    try:
        request, inputs, workspace = read_request()
        if get_spdx_licensing is None:
            raise UsageError("the license_expression package is not importable by %s" % sys.executable)
        present = [m for m in MANIFESTS if os.path.isfile(os.path.join(workspace, m))
                   and not os.path.islink(os.path.join(workspace, m))]
        classifier = Classifier()
        problems, entries, environment = [], [], None
        if "package.json" in present:
            entries += npm_dependencies(workspace, classifier, problems)
        python_manifests = [m for m in ("requirements.txt", "pyproject.toml") if m in present]
        if python_manifests:
            environment = PythonEnvironment(workspace, inputs.get("site-packages", "").strip())
            if "requirements.txt" in present:
                entries += python_entries(requirements_txt(workspace), "requirements.txt",
                                          environment, classifier)
            if "pyproject.toml" in present:
                entries += python_entries(pyproject(workspace, problems), "pyproject.toml", environment, classifier)
        cache_note = None
        if "go.mod" in present:
            cache, origin = go_cache(inputs, workspace)
            entries += go_entries(go_requirements(workspace), cache, classifier)
            if cache:
                shown = rel(cache, workspace)
                cache_note = "Go licenses read from the module cache %s%s." % (
                    "(%s)" % origin if origin != "gomodcache" else "", " at " + shown if shown else "")
    except UsageError as exc:
        fail(str(exc))

    # One entry per dependency (PyPI names are already PEP 503): the first manifest and scope that declares it wins.
    seen, dependencies = set(), []
    for entry in entries:
        key = (entry["ecosystem"], entry["name"])
        if key not in seen:
            seen.add(key)
            dependencies.append(entry)
    dependencies.sort(key=lambda e: (e["ecosystem"], e["name"].encode("utf-8"), e["manifest"], e["scope"]))

    counts = {"total": len(dependencies), "permissive": 0, "weak_copyleft": 0, "strong_copyleft": 0, "unknown": 0}
    for entry in dependencies:
        counts[entry["cls"]] += 1
    strong = [e for e in dependencies if e["cls"] == "strong_copyleft"]
    unknown = [e for e in dependencies if e["cls"] == "unknown"]
    flagged = [{"name": e["name"], "ecosystem": e["ecosystem"], "license": e["license"], "class": e["cls"],
                "reason": e["reason"] or ("license unknown" if e["cls"] == "unknown" else "strong copyleft")}
               for e in strong + unknown]

    decisions = sorted(classifier.notes)
    if environment is not None:
        decisions.append("Python licenses read from %s." % (
            environment.describe() if environment.kind != "input" or environment.path
            else "the site-packages directory given as input"))
    if cache_note:
        decisions.append(cache_note)
    questions = []
    if not present:
        status = "WARN"
        headline = "No dependency manifest found (package.json, requirements.txt, pyproject.toml, go.mod)."
        next_action = "Check that the workspace is the project root, or add the project's dependency manifest."
        questions.append("Where are this project's dependencies declared?")
    elif strong:
        status = "BLOCKED"
        headline = "Strong copyleft license%s in %d direct %s: %s." % (
            "s" if len(strong) > 1 else "", len(strong), "dependency" if len(strong) == 1 else "dependencies",
            names_list(strong))
        next_action = "Replace %s, or record an explicit legal approval for %s, before release." % (
            names_list(strong), "it" if len(strong) == 1 else "them")
    elif unknown:
        status = "WARN"
        headline = "No GPL/AGPL licenses found, but %d of %d direct dependencies %s an unknown license: %s." % (
            len(unknown), counts["total"], "has" if len(unknown) == 1 else "have", names_list(unknown))
        next_action = "Confirm the licenses of %s (install the dependencies locally and re-run, or check " \
                      "their LICENSE files) before release." % names_list(unknown)
        questions.append("What are the licenses of %s?" % names_list(unknown))
    elif counts["total"] == 0:
        status = "OK"
        headline = "No direct dependencies declared in %s." % ", ".join(present)
        next_action = "None."
    else:
        status = "OK"
        headline = "No GPL/AGPL licenses found in %d direct %s." % (
            counts["total"], "dependency" if counts["total"] == 1 else "dependencies")
        next_action = "None."
    if problems:
        questions.extend(problems)
        if status == "OK":
            status = "WARN"
            headline = headline.rstrip(".") + "; some manifests could not be read."
            next_action = "Fix the manifests that could not be read, then re-run license-audit."

    step = request.get("step")
    phase = step["name"] if isinstance(step, dict) and isinstance(step.get("name"), str) and step["name"] \
        else os.environ.get("LODEC_STEP") or SKILL
    artifact = {
        "phase": phase,
        "summary": {
            "status": status,
            "headline": headline,
            "counts": counts,
            "flagged": flagged,
            "next_action": next_action,
        },
        "dependencies": [{"name": e["name"], "ecosystem": e["ecosystem"], "manifest": e["manifest"],
                          "scope": e["scope"], "license": e["license"], "source": e["source"],
                          "class": e["cls"]} for e in dependencies],
        "environment": environment.record() if environment is not None else None,
        "context_checkpoint": {
            "summary": "License audit of %d direct %s completed: %s." % (
                counts["total"], "dependency" if counts["total"] == 1 else "dependencies", status),
            "key_files": present,
            "decisions_made": decisions,
            "open_questions": questions,
        },
    }
    with open(os.path.join(output_dir, "artifact.json"), "w", encoding="utf-8", newline="\n") as handle:
        handle.write(json.dumps(artifact, indent=2, sort_keys=True) + "\n")
    print("%s: %s: %s" % (SKILL, status, headline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
