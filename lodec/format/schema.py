"""``.lode`` schemas: parsing, validation and the schema digest.

A schema is JSON (seed 004)::

    {"schema": "lode", "version": 1, "name": "SkillStep",
     "fields": [{"id": 1, "name": "stepName", "type": "string", "required": true}, ...],
     "reserved": [7, "oldName"]}

Field ids are the wire identity (never reused: retire them in ``reserved``);
names are the source identity. Types: ``string``, ``int`` (64-bit signed),
``bool``, ``bytes``, ``T[]`` and ``map<string,T>`` over those scalars.

The schema digest is BLAKE3 ``derive_key`` (context
``SCHEMA_DIGEST_CONTEXT``) over the schema's canonical CBOR form
(``docs/vein-format.md`` §Schema digest).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from . import cbor
from ..errors import LimitExceeded, LodecError, SchemaError
from .fingerprint import schema_digest
from .records import FrozenRecord
from ..limits import DEFAULT_LIMITS, INT64_MAX, INT64_MIN, Limits
from .strictjson import loads_strict

if TYPE_CHECKING:
    from pathlib import Path

SCALARS = ("string", "int", "bool", "bytes")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SCHEMA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,127}")
MAX_FIELD_ID = 2**32 - 1
SELF_FINGERPRINT_FIELD = "fingerprint"


class FieldType(FrozenRecord):
    """A parsed field type: ``kind`` is ``scalar``, ``array`` or ``map``; ``scalar`` the element type."""

    __slots__ = ("kind", "scalar")
    kind: str
    scalar: str

    def __init__(self, kind: str, scalar: str) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "scalar", scalar)

    @property
    def spelling(self) -> str:
        """The canonical spelling, e.g. ``string[]`` or ``map<string,int>``."""
        if self.kind == "array":
            return f"{self.scalar}[]"
        if self.kind == "map":
            return f"map<string,{self.scalar}>"
        return self.scalar


def parse_type(text: str) -> FieldType:
    """Parse a type spelling; raise ``ValueError`` with a hint if unknown."""
    if text in SCALARS:
        return FieldType("scalar", text)
    if text.endswith("[]") and text[:-2] in SCALARS:
        return FieldType("array", text[:-2])
    if text.startswith("map<string,") and text.endswith(">") and text[11:-1] in SCALARS:
        return FieldType("map", text[11:-1])
    hint = "; containers hold scalars only (no nesting)" if ("[]" in text or "map<" in text) else ""
    raise ValueError(
        f"unknown type {text!r}: use string, int, bool, bytes, T[] or map<string,T> "
        f"(T a scalar, no spaces){hint}"
    )


class Field(FrozenRecord):
    """One schema field: wire ``id``, source ``name``, ``type`` and ``required``."""

    __slots__ = ("id", "name", "type", "required")
    id: int
    name: str
    type: FieldType
    required: bool

    def __init__(self, id: int, name: str, type: FieldType, required: bool) -> None:  # noqa: A002
        setter = object.__setattr__
        setter(self, "id", id)
        setter(self, "name", name)
        setter(self, "type", type)
        setter(self, "required", required)


_EMPTY_IDS: frozenset[int] = frozenset()
_EMPTY_NAMES: frozenset[str] = frozenset()


class Schema(FrozenRecord):
    """A validated ``.lode`` schema. Immutable; equal (and hashed) by its definition and digest.

    Attributes:
        name, version: as written.
        fields: sorted by id.
        reserved_ids, reserved_names: retired identities no field may use.
        digest: 32-byte schema digest (BLAKE3 derive_key over canonical CBOR).
        schema_id: first 8 bytes of ``digest``, written in every vein header.
        self_fingerprint: the optional field named ``fingerprint`` of type
            ``string`` if the schema has one (left out of fingerprinted
            bytes), else ``None``.
    """

    __slots__ = ("name", "version", "fields", "reserved_ids", "reserved_names", "source", "digest", "by_id",
                 "by_name", "self_fingerprint", "required_names")
    name: str
    version: int
    fields: tuple[Field, ...]
    reserved_ids: frozenset[int]
    reserved_names: frozenset[str]
    source: str
    digest: bytes
    by_id: dict[int, Field]
    by_name: dict[str, Field]
    self_fingerprint: Field | None
    required_names: frozenset[str]

    def __init__(
        self,
        name: str,
        version: int,
        fields: tuple[Field, ...],
        reserved_ids: frozenset[int] = _EMPTY_IDS,
        reserved_names: frozenset[str] = _EMPTY_NAMES,
        source: str = "<schema>",
        digest: bytes = b"",
        by_id: dict[int, Field] | None = None,
        by_name: dict[str, Field] | None = None,
        self_fingerprint: Field | None = None,
        required_names: frozenset[str] = _EMPTY_NAMES,
    ) -> None:
        setter = object.__setattr__
        setter(self, "name", name)
        setter(self, "version", version)
        setter(self, "fields", fields)
        setter(self, "reserved_ids", reserved_ids)
        setter(self, "reserved_names", reserved_names)
        setter(self, "source", source)
        setter(self, "digest", digest)
        setter(self, "by_id", {} if by_id is None else by_id)
        setter(self, "by_name", {} if by_name is None else by_name)
        setter(self, "self_fingerprint", self_fingerprint)
        setter(self, "required_names", required_names)

    def _values(self) -> tuple[Any, ...]:
        # Equality, hash and repr by the definition: by_id, by_name, self_fingerprint and required_names
        # follow from it (and the dicts are unhashable).
        return (self.name, self.version, self.fields, self.reserved_ids, self.reserved_names, self.source,
                self.digest)

    def __repr__(self) -> str:
        return ("Schema(name={!r}, version={!r}, fields={!r}, reserved_ids={!r}, reserved_names={!r}, source={!r}, "
                "digest={!r})".format(*self._values()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Schema, (*self._values(), self.by_id, self.by_name, self.self_fingerprint, self.required_names))

    @property
    def schema_id(self) -> bytes:
        return self.digest[:8]

    def canonical_cbor(self) -> bytes:
        """The schema's canonical CBOR form, input of the schema digest."""
        return schema_canonical_cbor(self.name, self.version, self.fields, self.reserved_ids, self.reserved_names)


def schema_canonical_cbor(
    name: str,
    version: int,
    fields: tuple[Field, ...],
    reserved_ids: frozenset[int],
    reserved_names: frozenset[str],
) -> bytes:
    # Written in canonical key order (by encoded length, then bytes: name, fields, schema, version,
    # reserved; id, name, type, required), so cbor2 encodes it as it is: cbor.encode would sort the
    # same keys again, for every schema lodec loads (tests/test_schema.py compares the two).
    doc: dict[str, Any] = {
        "name": name,
        "fields": [
            {"id": f.id, "name": f.name, "type": f.type.spelling, "required": f.required}
            for f in sorted(fields, key=lambda f: f.id)
        ],
        "schema": "lode",
        "version": version,
    }
    if reserved_ids or reserved_names:
        doc["reserved"] = [*sorted(reserved_ids), *sorted(reserved_names)]
    if type(version) is not int or not INT64_MIN <= version <= INT64_MAX:
        return cbor.encode(doc)  # refuses it as before
    return cbor.encode_sorted(doc)


class _FieldDoc:
    __slots__ = ("id", "name", "type", "required")

    def __init__(self, d: dict[str, Any]) -> None:
        self.id, self.name, self.type = d["id"], d["name"], d["type"]
        self.required = d.get("required", False)


class _Doc:
    __slots__ = ("schema", "version", "name", "fields", "reserved")

    def __init__(self, d: dict[str, Any]) -> None:
        self.schema, self.version, self.name = d["schema"], d["version"], d["name"]
        self.fields = [_FieldDoc(f) for f in d["fields"]]
        self.reserved = d.get("reserved", [])


_TOP_KEYS = {"schema": str, "version": int, "name": str, "fields": list, "reserved": list}
_FIELD_KEYS = {"id": int, "name": str, "type": str, "required": bool}
_JSON_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "an array"}


def _check_shape(obj: Any, spec: dict[str, type], required: tuple[str, ...], source: str, at: str) -> None:
    if not isinstance(obj, dict):
        raise SchemaError("expected an object", file=source, location=at or "/")
    for key in obj:
        if key not in spec:
            raise SchemaError(
                f"unknown key {key!r} (allowed: {', '.join(spec)})", file=source, location=f"{at}/{key}"
            )
    for key in required:
        if key not in obj:
            raise SchemaError(f"missing key {key!r}", file=source, location=f"{at}/{key}")
    for key, want in spec.items():
        if key in obj:
            value = obj[key]
            # bool is an int in Python; JSON keeps them apart.
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise SchemaError(
                    f"{key!r} must be {_JSON_NAMES[want]}", file=source, location=f"{at}/{key}"
                )


def schema_from_json(doc: Any, *, source: str = "<schema>") -> Schema:
    """Validate a parsed ``.lode`` document and build a ``Schema``.

    Raises:
        SchemaError: naming the offending field (``/fields/2/id: field 'x':
            id 3 is already used by field 'y'``): wrong shape or unknown
            keys, ``schema`` not ``"lode"``, bad version, bad or duplicate
            ids or names, unknown types, reserved ids or names in use.
    """
    _check_shape(doc, _TOP_KEYS, ("schema", "version", "name", "fields"), source, "")
    for index, fd in enumerate(doc["fields"]):
        _check_shape(fd, _FIELD_KEYS, ("id", "name", "type"), source, f"/fields/{index}")
    for index, item in enumerate(doc.get("reserved", [])):
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise SchemaError("reserved entries are field ids or field names", file=source, location=f"/reserved/{index}")
    parsed = _Doc(doc)
    if parsed.schema != "lode":
        raise SchemaError(f'"schema" must be "lode", got {parsed.schema!r}', file=source, location="/schema")
    if parsed.version < 1:
        raise SchemaError(f"version must be a positive integer, got {parsed.version}", file=source, location="/version")
    if not _SCHEMA_NAME.fullmatch(parsed.name):
        raise SchemaError(
            f"schema name {parsed.name!r} must be 1-128 characters of A-Z a-z 0-9 _ . -, starting with a letter",
            file=source,
            location="/name",
        )
    reserved_ids: set[int] = set()
    reserved_names: set[str] = set()
    for index, item in enumerate(parsed.reserved):
        where = f"/reserved/{index}"
        if isinstance(item, int):
            if not 1 <= item <= MAX_FIELD_ID:
                raise SchemaError(f"reserved id {item} is not a valid field id", file=source, location=where)
            if item in reserved_ids:
                raise SchemaError(f"reserved id {item} listed twice", file=source, location=where)
            reserved_ids.add(item)
        else:
            if not _FIELD_NAME.fullmatch(item):
                raise SchemaError(f"reserved name {item!r} is not a valid field name", file=source, location=where)
            if item in reserved_names:
                raise SchemaError(f"reserved name {item!r} listed twice", file=source, location=where)
            reserved_names.add(item)
    if not parsed.fields:
        raise SchemaError("a schema needs at least one field", file=source, location="/fields")
    fields: list[Field] = []
    seen_ids: dict[int, str] = {}
    seen_names: set[str] = set()
    for index, fd in enumerate(parsed.fields):
        where = f"/fields/{index}"
        label = f"field {fd.name!r}"
        if not _FIELD_NAME.fullmatch(fd.name):
            raise SchemaError(
                f"field name {fd.name!r} must match [A-Za-z_][A-Za-z0-9_]* (at most 64 characters)",
                file=source,
                location=where + "/name",
            )
        if not 1 <= fd.id <= MAX_FIELD_ID:
            raise SchemaError(f"{label}: id {fd.id} must be between 1 and {MAX_FIELD_ID}", file=source, location=where + "/id")
        if fd.id in seen_ids:
            raise SchemaError(
                f"{label}: id {fd.id} is already used by field {seen_ids[fd.id]!r}", file=source, location=where + "/id"
            )
        if fd.name in seen_names:
            raise SchemaError(f"{label}: name used twice", file=source, location=where + "/name")
        if fd.id in reserved_ids:
            raise SchemaError(f"{label}: id {fd.id} is reserved", file=source, location=where + "/id")
        if fd.name in reserved_names:
            raise SchemaError(f"{label}: name is reserved", file=source, location=where + "/name")
        try:
            ftype = parse_type(fd.type)
        except ValueError as exc:
            raise SchemaError(f"{label}: {exc}", file=source, location=where + "/type") from None
        seen_ids[fd.id] = fd.name
        seen_names.add(fd.name)
        fields.append(Field(fd.id, fd.name, ftype, fd.required))
    fields.sort(key=lambda f: f.id)
    frozen = tuple(fields)
    digest = schema_digest(
        schema_canonical_cbor(parsed.name, parsed.version, frozen, frozenset(reserved_ids), frozenset(reserved_names))
    )
    by_id = {f.id: f for f in frozen}
    by_name = {f.name: f for f in frozen}
    self_fp = by_name.get(SELF_FINGERPRINT_FIELD)
    # Only an optional string field can be a self-fingerprint: a required one
    # would have to be present before its own value could be computed.
    if self_fp is not None and (self_fp.type != FieldType("scalar", "string") or self_fp.required):
        self_fp = None
    return Schema(
        name=parsed.name,
        version=parsed.version,
        fields=frozen,
        reserved_ids=frozenset(reserved_ids),
        reserved_names=frozenset(reserved_names),
        source=source,
        digest=digest,
        by_id=by_id,
        by_name=by_name,
        self_fingerprint=self_fp,
        required_names=frozenset(f.name for f in frozen if f.required),
    )


def parse_schema(data: bytes, *, source: str = "<schema>", limits: Limits = DEFAULT_LIMITS) -> Schema:
    """Parse and validate ``.lode`` bytes (strict JSON). Raises ``SchemaError`` / ``SourceError`` / ``LimitExceeded``."""
    try:
        doc = loads_strict(data, file=source, limits=limits)
    except LimitExceeded:
        raise
    except LodecError as exc:
        raise SchemaError(exc.message, code=exc.code, file=source, location=exc.location) from None
    return schema_from_json(doc, source=source)


def load_schema(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> Schema:
    """Read and validate a ``.lode`` file. Raises ``SchemaError`` (also for unreadable files)."""
    from ..files import read_bounded

    return parse_schema(read_bounded(path, limits.max_file_bytes, follow=True), source=str(path), limits=limits)


_BUILTIN_CACHE: dict[str, Schema] = {}

# Order matters to the fuzz harness (fuzz/targets.py picks a schema by index): new ones go last.
BUILTIN_SCHEMAS = ("skill-step-v1", "skill-stack-v1", "skill-stack-v2", "lodepack-v1", "lodepack-v2", "skill-tree-v1",
                   "skill-step-v2", "gha-step-v1", "argo-step-v1")


def builtin_schema_bytes(name: str) -> bytes:
    """The ``.lode`` file bytes of a built-in schema (as packed into ``.lodepack`` files)."""
    if name not in BUILTIN_SCHEMAS:
        raise SchemaError(f"no built-in schema {name!r}; known: {', '.join(BUILTIN_SCHEMAS)}")
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "schemas", f"{name}.lode"), "rb") as fh:
        return fh.read()


def builtin_schema(name: str) -> Schema:
    """A schema shipped with lodec: ``skill-step-v1``, ``skill-stack-v1`` (seed 004, verbatim),
    ``skill-stack-v2`` (v1 plus required field 8 ``skillDigests``), ``lodepack-v1``, ``lodepack-v2``
    (v1 plus required field 7 ``skills``) or ``skill-tree-v1`` (one skill's files, inside a v2 pack)."""
    if name not in _BUILTIN_CACHE:
        _BUILTIN_CACHE[name] = parse_schema(builtin_schema_bytes(name), source=f"{name}.lode")
    return _BUILTIN_CACHE[name]


def skill_step_schema() -> Schema:
    """The SkillStep schema (``schemas/skill-step-v1.lode``)."""
    return builtin_schema("skill-step-v1")


#: The built-in schemas a stack's step may be written for, the default first
#: (``docs/vein-format.md`` §2.7): a step vein's header names its schema.
STEP_SCHEMAS = ("skill-step-v1", "skill-step-v2", "gha-step-v1", "argo-step-v1")


def step_schema_for(data: bytes) -> Schema:
    """The built-in step schema whose id is in ``data``'s vein header (bytes 5-13), else ``skill-step-v1``.

    Step schemas: ``skill-step-v1``, ``-v2`` (run conditions) and
    ``gha-step-v1`` (a GitHub Actions step as imported, ``docs/import-github-actions.md``),
    ``argo-step-v1`` (an Argo task or step, ``docs/import-argo.md``).

    Never raises: a vein naming no step schema is then refused by the decoder
    as written for another schema (``schema_mismatch``), as before.
    """
    head = data[5:13]
    for name in STEP_SCHEMAS:
        schema = builtin_schema(name)
        if schema.schema_id == head:
            return schema
    return builtin_schema(STEP_SCHEMAS[0])


def skill_stack_schema() -> Schema:
    """The SkillStack schema (``schemas/skill-stack-v1.lode``)."""
    return builtin_schema("skill-stack-v1")


def lodepack_schema() -> Schema:
    """The pack container schema (``schemas/lodepack-v1.lode``, ``docs/pack-format.md``)."""
    return builtin_schema("lodepack-v1")


def lodepack_v2_schema() -> Schema:
    """The pack container that carries skills (``schemas/lodepack-v2.lode``, ``docs/pack-format.md``)."""
    return builtin_schema("lodepack-v2")


def skill_tree_schema() -> Schema:
    """One skill folder's files in a v2 pack (``schemas/skill-tree-v1.lode``, ``docs/pack-format.md``)."""
    return builtin_schema("skill-tree-v1")
