"""Stack versions compare by Semantic Versioning 2.0.0 (semver.org §11), via the ``semver`` library.

Build metadata (``+...``) does not affect precedence, so ``1.0.0+a`` and
``1.0.0+b`` are the same version: with different digests, the second is
refused as a conflicting re-use of a version.

Validity is checked with the regular expression semver.org publishes (the
one the ``semver`` library uses); the library itself is imported only to
order two different versions, which keeps it off the start-up path of a
verification that re-checks the recorded version.
"""

from __future__ import annotations

import re

# semver.org, "Is there a suggested regular expression (RegEx) to check a SemVer string?" Compiled by `re` the
# first time a version is not plain (``re`` caches it): compiling it costs more than a signed verify's other checks.
_SEMVER = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


def _plain(text: str) -> bool:
    """``MAJOR.MINOR.PATCH`` of ASCII digits without leading zeros: the common case, which ``_SEMVER`` accepts."""
    parts = text.split(".")
    return len(parts) == 3 and all(p.isdigit() and p.isascii() and (p[0] != "0" or p == "0") for p in parts)


def check_version(text: str) -> None:
    """Raise ``ValueError`` unless ``text`` is a semantic version such as ``1.4.0`` or ``2.0.0-rc.1``."""
    if not (_plain(text) or re.fullmatch(_SEMVER, text)):
        raise ValueError(f"{text!r} is not a semantic version such as 1.4.0 (semver.org)")


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` precedes, equals or follows ``b`` (SemVer §11 precedence).

    Raises:
        ValueError: either is not a semantic version.
    """
    check_version(a)
    check_version(b)
    if a == b:
        return 0
    import semver

    return int(semver.Version.parse(a).compare(semver.Version.parse(b)))
