"""Strict JSON reading (RFC 8259) for sources, schemas and manifests.

Refused, each with a one-line error naming the file and the place (a line
and column for syntax, an RFC 6901 JSON pointer for values): duplicate
object keys, ``NaN`` / ``Infinity``, integers outside the 64-bit signed
range, a byte order mark, invalid UTF-8, lone surrogates, nesting deeper
than ``Limits.max_json_depth``, more than ``Limits.max_entries`` arrays and
objects in all, and files over ``Limits.max_file_bytes``.
Floats are returned as ``float`` and refused later by the schema check
(format v1 has no floats).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import LimitExceeded, SourceError
from ..limits import DEFAULT_LIMITS, INT64_MAX, INT64_MIN, Limits


class _DuplicateKey:
    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class _NonFinite:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _BigInt:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Markers:
    """Hooks for one parse; they leave markers, found with their JSON pointer by ``_walk``."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = False

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            self.seen = True
            counts: dict[str, int] = {}
            for key, _ in pairs:
                counts[key] = counts.get(key, 0) + 1
            for key, n in counts.items():
                if n > 1:
                    obj[key] = _DuplicateKey(key)
        return obj

    def constant(self, text: str) -> _NonFinite:
        self.seen = True
        return _NonFinite(text)

    def integer(self, text: str) -> int | _BigInt:
        # Check the digit count first: int() of a huge literal costs quadratic time.
        if len(text) > 20:
            self.seen = True
            return _BigInt(text)
        value = int(text)
        if value < INT64_MIN or value > INT64_MAX:
            self.seen = True
            return _BigInt(text)
        return value


# A lone surrogate can only come from a \uD800-\uDFFF escape: raw UTF-8
# cannot encode one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


_KEEP = b'[]{}"'
_NOT_KEPT = bytes(b for b in range(256) if b not in _KEEP)
_QUOTED = re.compile(rb'"[^"]*+"')


def _brackets(data: bytes) -> bytes:
    """The document's brackets and braces outside strings, in order.

    Built with bytes operations whose memory is a few copies of ``data``:
    a regular expression over the text would allocate one object per string
    or per gap between brackets (~500 MB for 16 MiB of ``[],``). Escaped
    backslashes, then escaped quotes, are dropped (pairs of backslashes go
    left to right, as a JSON reader pairs them); then everything but
    brackets and quotes; then each quoted run, which now holds brackets only
    (one object per run lives at a time).
    ASCII bytes never occur inside multi-byte UTF-8 sequences.
    """
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_KEPT)
    # Adjacent quotes, paired left to right: an empty run, or the end of one
    # run and the start of the next (merging them). Either way the parity of
    # the quotes after them is kept. Usually no quote is left.
    kept = kept.replace(b'""', b"")
    if b'"' not in kept:
        return kept
    out = bytearray()  # some string holds a bracket: drop each quoted run
    pos = 0
    for m in _QUOTED.finditer(kept):
        out += kept[pos : m.start()]
        pos = m.end()
    out += kept[pos:]
    return bytes(out)


def _max_depth(stripped: bytes) -> int:
    depth = deepest = 0
    for ch in stripped:
        if ch == 91 or ch == 123:  # "[" or "{"
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def pointer(parts: list[str | int]) -> str:
    """RFC 6901 JSON pointer for a path, e.g. ``["inputs", "a/b"]`` -> ``/inputs/a~1b``."""
    if not parts:
        return "/"
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _walk(value: Any, path: list[str | int], file: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path + [key], file)
            if isinstance(item, _DuplicateKey):
                raise SourceError(
                    f"duplicate key {key!r}", code="duplicate_key", file=file, location=pointer(path + [key])
                )
            _walk(item, path + [key], file)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, path + [index], file)
    elif isinstance(value, str):
        _check_text(value, path, file)
    elif isinstance(value, _NonFinite):
        raise SourceError(
            f"{value.text} is not a JSON number", code="non_finite_number", file=file, location=pointer(path)
        )
    elif isinstance(value, _BigInt):
        shown = value.text if len(value.text) <= 24 else value.text[:20] + "..."
        raise SourceError(
            f"integer {shown} is outside the 64-bit signed range",
            code="integer_out_of_range",
            file=file,
            location=pointer(path),
        )


def _check_text(text: str, path: list[str | int], file: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise SourceError(
                "text contains a lone surrogate (\\ud800-\\udfff escape without its pair)",
                code="invalid_text",
                file=file,
                location=pointer(path),
            ) from None


def loads_strict(data: bytes, *, file: str = "<input>", limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse one JSON document strictly.

    Args:
        data: the file's bytes (UTF-8, no byte order mark).
        file: label used in error messages.
        limits: size and depth limits.

    Returns:
        ``dict`` / ``list`` / ``str`` / ``int`` / ``float`` / ``bool`` / ``None``.

    Raises:
        LimitExceeded: file larger than ``max_file_bytes``, nested deeper
            than ``max_json_depth``, or with more than ``max_entries``
            arrays and objects in all.
        SourceError: syntax error (with line and column), duplicate key,
            non-finite number, 64-bit overflow, invalid UTF-8 or lone
            surrogate (with the JSON pointer).
    """
    if len(data) > limits.max_file_bytes:
        raise LimitExceeded(
            f"file is {len(data)} bytes; the limit is {limits.max_file_bytes}", file=file
        )
    if data.startswith(b"\xef\xbb\xbf"):
        raise SourceError("starts with a UTF-8 byte order mark; save it without one", file=file, location="byte 0")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"invalid UTF-8 ({exc.reason})", file=file, location=f"byte {exc.start}") from None
    stripped = _brackets(data)
    # Every array or object costs ~60-200 bytes of Python objects for 3 bytes
    # of text (16 MiB of "[]," would take ~500 MB before the entry limit is
    # reached): bound their number on the text, before parsing. No record,
    # manifest or schema within the other limits comes near it.
    containers = stripped.count(b"[") + stripped.count(b"{")
    if containers > limits.max_entries:
        raise LimitExceeded(
            f"JSON has {containers} arrays and objects; the limit is {limits.max_entries}", file=file
        )
    depth = _max_depth(stripped)
    if depth > limits.max_json_depth:
        raise LimitExceeded(
            f"JSON nested {depth} levels deep; the limit is {limits.max_json_depth}", file=file
        )
    markers = _Markers()
    try:
        value = json.loads(
            text,
            object_pairs_hook=markers.pairs,
            parse_constant=markers.constant,
            parse_int=markers.integer,
        )
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"invalid JSON: {exc.msg}", code="json_syntax", file=file, location=f"line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise LimitExceeded("JSON nested too deeply", file=file) from None
    if markers.seen or _SURROGATE_ESCAPE.search(text):
        _walk(value, [], file)
    return value
