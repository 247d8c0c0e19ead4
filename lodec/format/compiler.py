"""Compile strict JSON sources into veins (generic over any ``.lode`` schema).

A source is one JSON object whose keys are the schema's field names
(``docs/vein-format.md`` §Source JSON). Reading is strict (``strictjson``);
the record is checked against the schema, the ``stepName`` field (when the
schema has one) against the name rule, and the record's own ``fingerprint``
field (when present) against the computed fingerprint.

``compile_source`` first tries a fast path generated once per schema and
limits (``_fast_compiler``): the standard library's JSON reader without
hooks (the reference's grammar, in C), one generated function that checks
the record as ``validate_record`` does, counts its strings and builds the
canonical field-id map, then cbor2 and a BLAKE3 state copied per record.
It answers only for records it can prove the reference accepts, with the
same vein; anything else (a duplicate key, a float, a bytes field, a
self-fingerprint, any error) goes to ``compile_source_reference``, which
is authoritative and names the problem. ``tests/test_fast_compile.py``
checks that both agree on every input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blake3 import blake3
from cbor2 import dumps as _cbor2_dumps

from .codec import _ABSENT, HEADER_SIZE, INT64_TEST, Vein, _sorted_keys, _text_ok, encode_record, header, record_from_json
from ..errors import FileUnreadable, LodecError, UnsafeNameError
from ..files import FolderReads, read_bounded
from ..limits import DEFAULT_LIMITS, Limits
from ..names import NAME_PATTERN, check_name
from .fingerprint import FINGERPRINT_CONTEXT, PREFIX
from .schema import Schema
from .strictjson import loads_strict, pointer
from .unicode import is_nfc

if TYPE_CHECKING:
    from collections.abc import Callable

NAME_FIELDS = ("stepName", "name")
_JSON_DECODER = json.JSONDecoder()  # no hooks: the C scanner does everything


def compile_value(obj: Any, schema: Schema, *, file: str = "<source>", limits: Limits = DEFAULT_LIMITS) -> Vein:
    """Compile an already-parsed JSON value.

    Raises:
        SourceError: the value does not fit the schema (JSON pointer given);
            code ``fingerprint_mismatch`` for a wrong own ``fingerprint``.
        UnsafeNameError: ``stepName`` breaks the name rule.
        LimitExceeded: over a documented limit.
    """
    record = record_from_json(obj, schema, file=file, limits=limits)
    if "stepName" in schema.by_name and "stepName" in record:
        _check_name_at(record["stepName"], file, ["stepName"])
    return encode_record(schema, record, file=file, limits=limits, _validated=True)


def compile_source(data: bytes, schema: Schema, *, file: str = "<source>", limits: Limits = DEFAULT_LIMITS) -> Vein:
    """Compile source JSON bytes into a vein. Raises as ``loads_strict`` and ``compile_value``.

    The same vein, or the same error, as ``compile_source_reference``; most
    records take the generated fast path (module docstring).
    """
    fast = _fast_compiler(schema, limits)
    if fast is not None:
        vein = fast(data)
        if vein is not None:
            return vein
    return compile_value(loads_strict(data, file=file, limits=limits), schema, file=file, limits=limits)


def compile_source_reference(data: bytes, schema: Schema, *, file: str = "<source>",
                             limits: Limits = DEFAULT_LIMITS) -> Vein:
    """``compile_source`` without the fast path: strict JSON, ``record_from_json``, ``encode_record``."""
    return compile_value(loads_strict(data, file=file, limits=limits), schema, file=file, limits=limits)


def compile_file(path: str | os.PathLike[str], schema: Schema, *, limits: Limits = DEFAULT_LIMITS,
                 reads: FolderReads | None = None) -> Vein:
    """Read and compile one source file. Raises ``LodecError`` subclasses naming ``path``.

    ``reads``: for many sources, their folders opened once (``files.FolderReads``); the same bytes and errors.
    """
    label = str(path)
    try:
        # Read as named; only a link at the last component needs the path resolved first
        # (read_bounded's follow=True: an lstat per component, for every source).
        data = read_bounded(path, limits.max_file_bytes) if reads is None else reads.read(path, limits.max_file_bytes)
    except FileUnreadable as exc:
        if exc.code != "file_link":
            raise
        data = read_bounded(path, limits.max_file_bytes, follow=True)
    return compile_source(data, schema, file=label, limits=limits)


def source_compiler(schema: Schema, *, limits: Limits = DEFAULT_LIMITS,
                    reads: FolderReads | None = None) -> Callable[[str | os.PathLike[str]], Vein]:
    """``compile_file`` for many sources of one schema: ``(path) -> Vein``, raising as ``compile_file``.

    The fast path is looked up once and each source read once: one the fast
    path does not answer for goes to ``compile_source_reference`` with the
    bytes read, which names any problem; one ``compile_file`` would read
    differently (a link the user named) or refuse to read goes to it.
    """
    fast = _fast_compiler(schema, limits)
    if fast is None:
        return lambda path: compile_file(path, schema, limits=limits, reads=reads)
    read = read_bounded if reads is None else reads.read
    max_bytes = limits.max_file_bytes

    def compile_one(path: str | os.PathLike[str]) -> Vein:
        try:
            data = read(path, max_bytes)
        except LodecError:
            return compile_file(path, schema, limits=limits, reads=reads)
        vein = fast(data)
        return vein if vein is not None else compile_source_reference(data, schema, file=str(path), limits=limits)

    return compile_one


def output_name(vein: Vein, *, file: str = "<source>") -> str | None:
    """The file stem a record is written under in directory mode: its ``stepName``, else its ``name``.

    Returns ``None`` if the schema has neither field (callers then use the
    source file's stem). Raises ``UnsafeNameError`` for an unsafe name.
    """
    for field in NAME_FIELDS:
        if field in vein.schema.by_name and isinstance(vein.record.get(field), str):
            return _check_name_at(vein.record[field], file, [field])
    return None


def _check_name_at(name: str, file: str, path: list[str | int]) -> str:
    try:
        return check_name(name, what="name" if path[0] == "name" else "stepName")
    except UnsafeNameError as exc:
        raise UnsafeNameError(exc.message, file=file, location=pointer(path)) from None


def default_output_path(source: str | os.PathLike[str], vein: Vein, out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir/<name>.vein`` (see ``output_name``), falling back to the source file's stem."""
    name = output_name(vein, file=str(source))
    if name is None:
        stem = Path(source).name.removesuffix(".json")
        try:
            name = check_name(stem, what="file stem")
        except LodecError as exc:
            raise UnsafeNameError(exc.message, file=str(source)) from None
    return Path(out_dir) / f"{name}.vein"


# ------------------------------------------------------------------ fast path

#: Sources up to this size may take the fast path. The standard JSON reader builds every object before any
#: limit could be checked (16 MiB of "[]," would take ~500 MB), so larger sources go to ``loads_strict``,
#: which counts arrays and objects on the text first. Real step sources are < 4 KiB.
FAST_PATH_MAX_BYTES = 64 * 1024

_FAST: dict[int, tuple[Schema, Limits, Callable[[bytes], Vein | None] | None]] = {}
#: Schemas with a fast path kept at once (a long-running process may load many).
_MAX_FAST = 64


def _fast_compiler(schema: Schema, limits: Limits) -> Callable[[bytes], Vein | None] | None:
    """The fast path for ``schema`` and ``limits`` (generated on first use), or ``None`` if it has none."""
    entry = _FAST.get(id(schema))
    if entry is None or entry[0] is not schema or (entry[1] is not limits and entry[1] != limits):
        if len(_FAST) >= _MAX_FAST:
            _FAST.pop(next(iter(_FAST), None), None)  # the oldest (threads may race here: no KeyError)
        entry = _FAST[id(schema)] = (schema, limits, _generate_fast(schema, limits))
    return entry[2]


def _texts_ok(values: Any, max_text: int) -> bool:
    """Every item of ``values`` passes ``_text_ok``."""
    return all(_text_ok(v, max_text) for v in values)


_SCALAR_OK = {
    "string": "(type({v}) is str and {v}.isascii() or _text_ok({v}, max_text))",
    "int": INT64_TEST,
    "bool": "type({v}) is bool",
}


def _items_lines(items: str, scalar: str, long_ok: bool) -> list[str]:
    """Lines that ``return None`` unless every value of the iterable ``items`` is a valid ``scalar``."""
    if scalar != "string":
        return [f"        if not all({_SCALAR_OK[scalar].format(v='x')} for x in {items}): return None"]
    lines = ["        try:",  # str.isascii over the items in C; a TypeError for an item that is not a str
             f"            if not all(map(str.isascii, {items})) and not _texts_ok({items}, max_text): return None",
             "        except TypeError: return None"]
    if not long_ok:
        lines.append(f"        if any(len(x.encode('utf-8')) > max_text for x in {items}): return None")
    return lines


def _generate_fast(schema: Schema, limits: Limits) -> Callable[[bytes], Vein | None] | None:
    """Generate ``(source bytes) -> Vein``, or ``None`` for "ask the reference"; ``None`` if no fast path fits.

    The reference refuses what the fast path cannot see once parsed:
    duplicate keys (the hook-less reader keeps the last), ``NaN`` and
    ``Infinity`` (floats here, refused by the type checks), integers out of
    range (the range check), lone surrogates (the text check). A duplicate
    key drops at least its key's string from the parsed value, so a source
    whose text holds exactly as many strings as the checked record is free
    of them: the record's strings are counted by its schema (keys, string
    values, items, map keys and values), the text's by its unescaped quotes.
    A checked record is at most two levels deep and holds at most one array
    or object per field, so the reference's depth and container limits hold
    when ``limits`` allow that much; and the source is at most
    ``FAST_PATH_MAX_BYTES``, so parsing it is bounded. No decoded string is
    longer in UTF-8 than its source text (an escape is never shorter than
    what it stands for), so under a ``max_text_bytes`` at least that long no
    string is measured.
    """
    fields = schema.fields
    if any(f.type.scalar not in _SCALAR_OK for f in fields):
        return None  # bytes fields come from base64: left to record_from_json
    if limits.max_json_depth < 2 or 1 + sum(f.type.kind != "scalar" for f in fields) > limits.max_entries:
        return None
    step = schema.by_name.get("stepName")
    if step is not None and step.type.spelling != "string":
        return None  # compile_value checks a stepName of any type: leave other types to it
    max_bytes = min(FAST_PATH_MAX_BYTES, limits.max_file_bytes)
    long_ok = limits.max_text_bytes >= max_bytes  # then no string can be over the limit: none is measured
    sf = schema.self_fingerprint
    lines = ["def fast(data):",
             "    if len(data) > max_bytes: return None",
             # JSONDecoder.decode, inlined: JSON whitespace around one value read by the C scanner.
             "    try:",
             "        t = data.decode('utf-8')",
             "        r, end = scan(t, 0 if t[:1] == '{' else len(t) - len(t.lstrip(' \\t\\n\\r')))",
             "    except Exception: return None  # anything unusual: the reference names it",
             "    if end != len(t) and t[end:].strip(' \\t\\n\\r'): return None",
             "    if type(r) is not dict or not known.issuperset(r): return None",
             "    n = len(r)",
             "    b = {}"]
    for f in fields:
        kind, scalar, fid = f.type.kind, f.type.scalar, f.id
        lines.append(f"    v = r.get({f.name!r}, ABSENT)")
        lines.append("    if v is ABSENT:")
        lines.append("        return None" if f.required else "        pass")
        lines.append("    else:")
        if kind == "scalar":
            lines.append(f"        if not {_SCALAR_OK[scalar].format(v='v')}: return None")
            if scalar == "string" and not long_ok:
                lines.append("        if len(v.encode('utf-8')) > max_text: return None")
            if scalar == "string":
                lines.append("        n += 1")
            if f is sf:
                # A self-fingerprint is compared with the computed one by encode_record: rare, left to it.
                lines.append("        if v: return None")
                continue
            if f.required or scalar != "string":
                lines.append(f"        b[{fid}] = v")
            else:
                lines.append(f"        if v: b[{fid}] = v")
            if f.name == "stepName":
                lines.append("        if name_ok(v) is None: return None")
            continue
        container = "list" if kind == "array" else "dict"
        lines.append(f"        if type(v) is not {container} or len(v) > max_entries: return None")
        if kind == "array":
            lines += _items_lines("v", scalar, long_ok)
            if scalar == "string":
                lines.append("        n += len(v)")
        else:
            lines += [*_items_lines("v", "string", long_ok), *_items_lines("v.values()", scalar, long_ok),
                      f"        n += {2 if scalar == 'string' else 1} * len(v)"]
            lines += ["        if len(v) > 1:",
                      "            mk = list(v)",
                      "            sk = _sorted_keys(mk)",
                      "            if sk != mk: v = {k: v[k] for k in sk}"]
        if f.required:
            lines.append(f"        b[{fid}] = v")
        else:
            lines.append(f"        if v: b[{fid}] = v")
    lines += [
        # Strings in the text: quotes, less escaped ones (backslash pairs first, left to right, as JSON reads them).
        r"""    q = data.replace(b'\\\\', b'').replace(b'\\"', b'').count(b'"') if b'\\' in data else data.count(b'"')""",
        "    if q != 2 * n: return None  # a duplicate key",
        "    body = dumps(b)",
        "    if len(body) > max_body: return None",
        "    h = hasher.copy()",
        "    h.update(body)",
        "    return Vein(schema, r, head + body, PREFIX + h.hexdigest())",
    ]
    namespace: dict[str, Any] = {
        "max_bytes": max_bytes, "max_text": limits.max_text_bytes,
        "max_entries": limits.max_entries, "max_body": limits.max_file_bytes - HEADER_SIZE,
        "scan": _JSON_DECODER.scan_once, "known": frozenset(schema.by_name), "ABSENT": _ABSENT,
        "_text_ok": _text_ok, "_texts_ok": _texts_ok, "_sorted_keys": _sorted_keys, "name_ok": NAME_PATTERN.fullmatch,
        "dumps": _cbor2_dumps, "hasher": blake3(schema.digest, derive_key_context=FINGERPRINT_CONTEXT),
        "Vein": Vein, "schema": schema, "head": header(schema), "PREFIX": PREFIX,
    }
    exec(compile("\n".join(lines), "<lodec fast compile>", "exec"), namespace)
    fast: Callable[[bytes], Vein | None] = namespace["fast"]
    return fast

