"""Compile strict JSON sources into veins (generic over any ``.lode`` schema).

A source is one JSON object whose keys are the schema's field names
(``docs/vein-format.md`` §Source JSON). Reading is strict (``strictjson``);
the record is checked against the schema, the ``stepName`` field (when the
schema has one) against the name rule, and the record's own ``fingerprint``
field (when present) against the computed fingerprint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .codec import Vein, encode_record, record_from_json
from ..errors import FileUnreadable, LodecError, UnsafeNameError
from ..files import read_bounded
from ..limits import DEFAULT_LIMITS, Limits
from ..names import check_name
from .schema import Schema
from .strictjson import loads_strict, pointer

NAME_FIELDS = ("stepName", "name")


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
    """Compile source JSON bytes into a vein. Raises as ``loads_strict`` and ``compile_value``."""
    return compile_value(loads_strict(data, file=file, limits=limits), schema, file=file, limits=limits)


def compile_file(path: str | os.PathLike[str], schema: Schema, *, limits: Limits = DEFAULT_LIMITS) -> Vein:
    """Read and compile one source file. Raises ``LodecError`` subclasses naming ``path``."""
    label = str(path)
    try:
        # Read as named; only a link at the last component needs the path resolved first
        # (read_bounded's follow=True: an lstat per component, for every source).
        data = read_bounded(path, limits.max_file_bytes)
    except FileUnreadable as exc:
        if exc.code != "file_link":
            raise
        data = read_bounded(path, limits.max_file_bytes, follow=True)
    return compile_source(data, schema, file=label, limits=limits)


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
