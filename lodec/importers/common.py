"""What the importers share: reading a source file, safe and unique step names, describing a YAML value."""

from __future__ import annotations

import os
import re

from ..errors import FileMissing, FileUnreadable, LimitExceeded, SourceError
from ..files import read_bounded
from ..format.unicode import nfc
from ..names import MAX_NAME_LENGTH, check_name

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def read_source(path: str | os.PathLike[str], max_bytes: int, what: str) -> bytes:
    """The bytes of the source file at ``path`` (links followed), at most ``max_bytes``.

    Raises:
        LimitExceeded: larger than ``max_bytes`` ("<what> is larger than N bytes").
        FileMissing, FileUnreadable: ``file_not_found`` / ``file_unreadable``, as for every command.
    """
    label = os.fspath(path)
    try:
        return read_bounded(path, max_bytes, follow=True)
    except LimitExceeded:
        raise LimitExceeded(f"{what} is larger than {max_bytes} bytes", file=label) from None
    except (FileMissing, FileUnreadable) as exc:
        raise exc.with_file(label) from None


def read_source_text(path: str | os.PathLike[str], max_bytes: int, what: str) -> str:
    """``read_source`` decoded as UTF-8.

    Raises:
        as ``read_source``; SourceError: not UTF-8 (location ``@<byte offset>``).
    """
    data = read_source(path, max_bytes, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{what} is not valid UTF-8", file=os.fspath(path), location=f"@{exc.start}") from exc


def safe_name(raw: str, *, fallback: str = "step") -> str:
    """Make ``raw`` fit the name rule of :mod:`lodec.names`.

    NFC-normalise, replace every character outside ``[A-Za-z0-9._-]`` with
    ``-``, strip leading characters that are not a letter or digit (use
    ``fallback`` if nothing is left), keep at most 128 characters.
    Uniqueness is not handled here.

    >>> safe_name("build (linux/x64).cache")
    'build--linux-x64-.cache'
    >>> safe_name("__init.0")
    'init.0'
    """
    name = _UNSAFE_NAME_CHARS.sub("-", nfc(raw))
    name = name.lstrip("._-")[:MAX_NAME_LENGTH]
    return name or fallback


class Namer:
    """Hands out safe names that are unique across one workflow."""

    def __init__(self) -> None:
        # Compared in lower case: names become file names, and two names that
        # differ only in case would clash on case-insensitive file systems.
        self._taken: set[str] = set()

    def claim(self, raw: str) -> str:
        base = safe_name(raw)
        name = base
        counter = 1
        while name.lower() in self._taken:
            counter += 1
            suffix = f"-{counter}"
            name = base[: MAX_NAME_LENGTH - len(suffix)] + suffix
        self._taken.add(name.lower())
        return check_name(name)


def yaml_kind(value: object) -> str:
    """A short, bounded description of a YAML value's type (never its content)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"
