"""Safe names: step and record names become file names (``<name>.vein``).

Rule: 1–128 characters of ``[A-Za-z0-9._-]``, the first a letter or digit.
So ``..``, ``.hidden``, ``a/b``, NUL, the empty string and over-long names
are refused; no name can escape its directory.
"""

from __future__ import annotations

import re

from .errors import UnsafeNameError

MAX_NAME_LENGTH = 128
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_safe_name(name: object) -> bool:
    """True if ``name`` is a ``str`` that satisfies the name rule."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: object, *, what: str = "step name") -> str:
    """Return ``name`` unchanged if it is safe.

    Raises:
        UnsafeNameError: ``name`` breaks the rule; the message says how.
    """
    if is_safe_name(name):
        return name  # type: ignore[return-value]
    if not isinstance(name, str):
        reason = f"must be a string, got {type(name).__name__}"
    elif name == "":
        reason = "is empty"
    elif len(name) > MAX_NAME_LENGTH:
        reason = f"is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    elif not name[0].isascii() or not name[0].isalnum():
        reason = "must start with a letter or digit"
    else:
        bad = next(c for c in name if not (c.isascii() and (c.isalnum() or c in "._-")))
        reason = f"contains {bad!r}; allowed are A-Z a-z 0-9 . _ -"
    raise UnsafeNameError(f"{what} {name!r} {reason}")
