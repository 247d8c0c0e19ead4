"""Safe names and versions, and text that is safe to print.

**Name rule** (step names, record names, stack names): 1–128 characters of
``[A-Za-z0-9._-]``, the first a letter or digit. Step and record names
become file names (``<name>.vein``), so ``..``, ``.hidden``, ``a/b``, NUL,
the empty string and over-long names are refused and no name can escape its
directory. Stack names follow the same rule because they are printed and
matched against trust-policy patterns: ASCII only, so ``rеlease-prod`` (a
Cyrillic ``е``) cannot pass for ``release-prod``, and no control character
can forge or hide a line of output.

**Version rule** (stack versions): 1–128 visible ASCII characters
(``!`` to ``~``: no space, no control character). Signing further requires a
semantic version (``lodec.sign.versions``).

**Printing**: ``printable`` escapes what a terminal or a Markdown viewer
would act on instead of show, so text from a step, a file or an older
manifest cannot move the cursor, set a window title, reorder a line or
start a fake one.
"""

from __future__ import annotations

import re

from .errors import UnsafeNameError

MAX_NAME_LENGTH = 128
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_VERSION_LENGTH = 128
VERSION_PATTERN = re.compile(r"[!-~]{1,128}")
#: The name rule in a sentence, for messages and documentation.
NAME_RULE = "1-128 of A-Z a-z 0-9 . _ -, the first a letter or digit"
#: The version rule in a sentence.
VERSION_RULE = "1-128 visible ASCII characters (! to ~)"


def is_safe_name(name: object) -> bool:
    """True if ``name`` is a ``str`` that satisfies the name rule."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


_ALL_NAMES: re.Pattern[str] | None = None


def all_safe_names(names: list[str]) -> bool:
    """Whether every item of ``names`` is a safe name (``is_safe_name``), in one regular-expression pass.

    Many names are joined by ``\n`` and matched at once; a name containing
    the separator would split into two, so the separators are counted first.
    """
    global _ALL_NAMES
    if len(names) < 16:
        return all(map(is_safe_name, names))
    try:
        joined = "\n".join(names) + "\n"
    except TypeError:
        return False
    if _ALL_NAMES is None:
        _ALL_NAMES = re.compile(rf"(?:{NAME_PATTERN.pattern}\n)*")
    return joined.count("\n") == len(names) and _ALL_NAMES.fullmatch(joined) is not None


def is_safe_version(version: object) -> bool:
    """True if ``version`` is a ``str`` that satisfies the version rule."""
    return isinstance(version, str) and VERSION_PATTERN.fullmatch(version) is not None


def _shown(char: str) -> str:
    # A look-alike letter reads as the letter it imitates: name its code point too.
    return repr(char) if char.isascii() else f"{char!r} (U+{ord(char):04X})"


def name_problem(name: object) -> str | None:
    """Why ``name`` breaks the name rule (``"contains '\\n'; allowed are …"``), or ``None`` if it is safe."""
    if is_safe_name(name):
        return None
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if name == "":
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long (at most {MAX_NAME_LENGTH})"
    if not name[0].isascii() or not name[0].isalnum():
        return "must start with a letter or digit" + ("" if name[0].isascii() else f", not {_shown(name[0])}")
    bad = next(c for c in name if not (c.isascii() and (c.isalnum() or c in "._-")))
    return f"contains {_shown(bad)}; allowed are A-Z a-z 0-9 . _ -"


def version_problem(version: object) -> str | None:
    """Why ``version`` breaks the version rule, or ``None`` if it is safe."""
    if is_safe_version(version):
        return None
    if not isinstance(version, str):
        return f"must be a string, got {type(version).__name__}"
    if version == "":
        return "is empty"
    if len(version) > MAX_VERSION_LENGTH:
        return f"is {len(version)} characters long (at most {MAX_VERSION_LENGTH})"
    bad = next(c for c in version if not "!" <= c <= "~")
    return f"contains {_shown(bad)}; allowed are the visible ASCII characters ! to ~"


def check_name(name: object, *, what: str = "step name", code: str | None = None) -> str:
    """Return ``name`` unchanged if it is safe.

    ``code`` overrides the error's code (default ``unsafe_name``; stack
    names at signing use ``stack_name_unsafe``).

    Raises:
        UnsafeNameError: ``name`` breaks the rule; the message says how.
    """
    reason = name_problem(name)
    if reason is None:
        return name  # type: ignore[return-value]
    raise UnsafeNameError(f"{what} {name!r} {reason}", code=code)


def check_version(version: object, *, what: str = "stack version") -> str:
    """Return ``version`` unchanged if it satisfies the version rule.

    Raises:
        UnsafeNameError: code ``stack_version_unsafe``; the message says how.
    """
    reason = version_problem(version)
    if reason is None:
        return version  # type: ignore[return-value]
    raise UnsafeNameError(f"{what} {version!r} {reason}", code="stack_version_unsafe", location="/version")


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on escaped, visibly, as Python escapes it.

    Escaped: every character ``str.isprintable`` refuses except spaces
    (category Zs): C0 and C1 controls and DEL (``\\x1b``, ``\\r``, ``\\n``,
    ``\\t``, ``\\x9b``), format characters such as the bidi controls and
    zero-width joiners (``\\u202e``, ``\\u200d``), line and paragraph
    separators (``\\u2028``), surrogates, private-use and unassigned code
    points (``\\U000f0000``). Each becomes its Python escape: ``\\t``
    ``\\n`` ``\\r``, else ``\\xHH`` below U+0100, ``\\uHHHH`` below
    U+10000, ``\\UHHHHHHHH`` above. Letters of any script, marks, symbols and
    spaces are kept. So is the backslash, so text already escaped
    (``repr``) reads the same; the escapes can be undone exactly when the
    text held no backslash of its own.

    Use it on text for a terminal or a text file (``journal.md``), never on
    data: JSON output carries the raw value.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in SPACE_SEPARATORS else _escape(c) for c in text)


def _escape(char: str) -> str:
    point = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
#: Unicode category Zs (space separators): not "printable" to Python, but shown as space.
SPACE_SEPARATORS = frozenset("\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                    "\u202f\u205f\u3000")
