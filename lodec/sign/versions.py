"""Stack versions compare by Semantic Versioning 2.0.0 (semver.org §11), via the ``semver`` library.

Build metadata (``+...``) does not affect precedence, so ``1.0.0+a`` and
``1.0.0+b`` are the same version: with different digests, the second is
refused as a conflicting re-use of a version.
"""

from __future__ import annotations

from typing import Any


def parse_version(text: str) -> Any:
    """The ``semver.Version`` of ``text``.

    Raises:
        ValueError: ``text`` is not a semantic version such as ``1.4.0`` or ``2.0.0-rc.1``.
    """
    import semver

    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        raise ValueError(f"{text!r} is not a semantic version such as 1.4.0 (semver.org)") from None


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` precedes, equals or follows ``b`` (SemVer §11).

    Raises:
        ValueError: either is not a semantic version.
    """
    va = parse_version(a)
    vb = parse_version(b)
    return int(va.compare(vb))
