"""The signed payload: an in-toto Statement v1 approving one stack.

Shape (``docs/signing.md``; in-toto attestation framework, Statement v1)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": STACK_NAME,
                  "digest": {"blake3": HEX, "sha256": HEX}}],
     "predicateType": "https://lodec.dev/attestation/stack-approval/v1",
     "predicate": {"stack": {"name": STACK_NAME, "version": VERSION,
                             "digest": "blake3:HEX"},
                   "expires": "YYYY-MM-DDTHH:MM:SSZ"}}

The subject digests are plain BLAKE3 and SHA-256 of the manifest file's
exact bytes (what ``b3sum`` / ``sha256sum`` print), so in-toto tooling and
shell tools can match the subject; ``predicate.stack.digest`` is lodec's
canonical manifest digest (``docs/vein-format.md``), which binds every step
fingerprint and the schema. The payload is serialised with sorted keys and
no whitespace, so one approval always has one byte form.

Reading follows the in-toto parsing rules where they apply (unknown fields,
other subjects, subject ``uri``/``annotations``, other digest algorithms
are ignored) and is strict on everything lodec decides by: the predicate,
and the stack's own subject and its two digests (``statement_from_json``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from ..errors import EnvelopeError, LodecError
from ..format.fingerprint import is_fingerprint
from ..format.records import FrozenRecord
from ..limits import Limits
from ..format.strictjson import loads_strict

if TYPE_CHECKING:
    from datetime import date, datetime, timedelta, timezone
else:
    try:
        # CPython's C classes, the very ones the `datetime` module exports: importing that module first defines
        # its pure-Python fallback only to replace it (5M instructions, 0.7 ms of every signed verify).
        # `policy` and `app.options` take `date`, `datetime` and `timezone` from here.
        from _datetime import date, datetime, timedelta, timezone  # noqa: F401
    except ImportError:  # an interpreter without the C module
        from datetime import date, datetime, timedelta, timezone  # noqa: F401

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://lodec.dev/attestation/stack-approval/v1"
#: The digest algorithms of the stack's subject that lodec requires and checks (plain, of the file bytes).
STACK_DIGESTS = ("blake3", "sha256")

# Patterns are compiled by `re` on first use (and cached there); the common forms are checked without them.
_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
_DATE = r"\d{4}-\d{2}-\d{2}"
_DURATION = r"(\d{1,6})([smhdw])"
_HEX_DIGITS = "0123456789abcdef"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Annotations may nest any JSON (ResourceDescriptor); 16 levels bound the parser, not the spec.
_PAYLOAD_LIMITS = Limits(max_file_bytes=64 * 1024, max_text_bytes=64 * 1024, max_json_depth=16)


class Approval(FrozenRecord):
    """What a statement approves.

    Attributes:
        name, version: the stack's name and version (SkillStack fields).
        digest: the canonical manifest digest, ``blake3:<hex>``.
        expires: UTC expiry (second precision).
        subject_digests: ``{"blake3": hex, "sha256": hex}`` of the manifest file bytes.
    """

    __slots__ = ("name", "version", "digest", "expires", "subject_digests")
    name: str
    version: str
    digest: str
    expires: datetime
    subject_digests: dict[str, str]

    def __init__(self, name: str, version: str, digest: str, expires: datetime,
                 subject_digests: dict[str, str]) -> None:
        setter = object.__setattr__
        setter(self, "name", name)
        setter(self, "version", version)
        setter(self, "digest", digest)
        setter(self, "expires", expires)
        setter(self, "subject_digests", subject_digests)


def format_time(when: datetime) -> str:
    """RFC 3339 UTC with second precision, e.g. ``2027-01-31T00:00:00Z``."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp with a time zone (``Z`` or ``±hh:mm``), or a date ``YYYY-MM-DD`` (midnight UTC).

    Returns an aware UTC datetime truncated to the second.

    Raises:
        ValueError: not such a timestamp, or no time zone.
    """
    text = text.strip()
    if len(text) == 10 and re.fullmatch(_DATE, text):
        text += "T00:00:00Z"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 timestamp such as 2027-01-31T00:00:00Z") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z for UTC")
    return when.astimezone(timezone.utc).replace(microsecond=0)


def _is_utc_second(text: str) -> bool:
    """``YYYY-MM-DDTHH:MM:SSZ`` with ASCII digits: the form lodec writes, which ``_TIME`` accepts."""
    return (len(text) == 20 and text.isascii() and text[4] == text[7] == "-" and text[10] == "T"
            and text[13] == text[16] == ":" and text[19] == "Z"
            and (text[:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]).isdigit())


def _is_hex64(text: str) -> bool:
    """64 lowercase hex digits (``[0-9a-f]{64}``): stripping every hex digit leaves nothing."""
    return len(text) == 64 and not text.strip(_HEX_DIGITS)


def parse_duration(text: str) -> timedelta:
    """Parse ``<n><unit>`` with unit s, m, h, d or w (e.g. ``90d``, ``12h``).

    Raises:
        ValueError: another shape, or zero.
    """
    m = re.fullmatch(_DURATION, text.strip())
    if m is None or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration such as 90d, 12h, 30m or 2w")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def subject_digests(manifest_bytes: bytes) -> dict[str, str]:
    """The stack subject's digest set: ``{"blake3": hex, "sha256": hex}`` of the manifest file's exact bytes.

    The same values as ``lodec.format.fingerprint.file_digests`` (plain BLAKE3
    and SHA-256, as ``b3sum`` / ``sha256sum`` print them); SHA-256 comes from
    ``cryptography`` (``lodec.sign.keys.sha256_hex``), which signing and
    signed verification load anyway for Ed25519.
    """
    from .keys import sha256_hex

    return {"blake3": blake3(manifest_bytes).hexdigest(), "sha256": sha256_hex(manifest_bytes)}


def build_statement(manifest_bytes: bytes, *, name: str, version: str, digest: str, expires: datetime) -> bytes:
    """The payload bytes approving the manifest ``manifest_bytes`` (see the module docstring)."""
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": subject_digests(manifest_bytes)}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "stack": {"name": name, "version": version, "digest": digest},
            "expires": format_time(expires),
        },
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _obj(value: Any, keys: set[str], at: str, file: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EnvelopeError("must be an object", code="statement_invalid", file=file, location=at)
    extra = sorted(set(value) - keys)
    if extra:
        # Fail closed: a field this lodec does not understand may be a restriction it would miss.
        raise EnvelopeError(f"unknown field {extra[0]!r}", code="statement_invalid", file=file, location=f"{at}/{extra[0]}")
    missing = sorted(keys - set(value))
    if missing:
        raise EnvelopeError(f"missing field {missing[0]!r}", code="statement_invalid", file=file, location=at)
    return value


def _str(value: Any, at: str, file: str) -> str:
    if not isinstance(value, str) or not value:
        raise EnvelopeError("must be a non-empty string", code="statement_invalid", file=file, location=at)
    return value


def parse_statement(payload: bytes, *, file: str = "<envelope>") -> Approval:
    """Parse a signed payload strictly into an ``Approval`` (``load_payload`` + ``statement_from_json``).

    Call only on a payload whose signatures verified.

    Raises:
        EnvelopeError: code ``statement_invalid`` (see ``statement_from_json``).
    """
    return statement_from_json(load_payload(payload, file=file), file=file)


def load_payload(payload: bytes, *, file: str = "<envelope>") -> Any:
    """The payload as strict JSON (at most 64 KiB, 16 levels, no duplicate keys).

    Raises:
        EnvelopeError: code ``statement_invalid``.
    """
    where = f"{file}#payload"
    try:
        return loads_strict(payload, file=where, limits=_PAYLOAD_LIMITS)
    except LodecError as exc:
        raise EnvelopeError(f"payload is not strict JSON: {exc.message}", code="statement_invalid", file=where,
                            location=exc.location) from None


def statement_from_json(doc: Any, *, file: str = "<envelope>") -> Approval:
    """Check a parsed payload against the stack-approval Statement (in-toto Statement v1).

    What lodec reads is strict; what the in-toto parsing rules tell a
    consumer to ignore is ignored (``docs/signing.md`` §What is strict):

    - strict: ``_type``, ``predicateType``, the whole ``predicate`` (lodec's
      own closed type: every field required, unknown fields refused), and
      the one subject whose ``name`` is the stack's: its digest set must
      hold ``blake3`` and ``sha256`` as 64 lowercase hex digits each;
    - ignored: unknown top-level fields, other subjects (each still needs a
      ``digest`` object of strings, as Statement v1 requires), every other
      field of a subject (``uri``, ``annotations``, ``mediaType``, ...)
      and every other digest algorithm (DigestSet: "consumers MUST ignore
      unrecognized or unaccepted algorithms").

    Raises:
        EnvelopeError: code ``statement_invalid``, located by JSON pointer
            inside the payload (``FILE#payload: /predicate/expires``, ...).
    """
    where = f"{file}#payload"
    if not isinstance(doc, dict):
        raise EnvelopeError("must be an object", code="statement_invalid", file=where, location="")
    for key in ("_type", "subject", "predicateType", "predicate"):
        if key not in doc:
            raise EnvelopeError(f"missing field {key!r}", code="statement_invalid", file=where, location="")
    if doc["_type"] != STATEMENT_TYPE:
        raise EnvelopeError(f"_type is not {STATEMENT_TYPE}", code="statement_invalid", file=where, location="/_type")
    if doc["predicateType"] != PREDICATE_TYPE:
        raise EnvelopeError(f"predicateType is not {PREDICATE_TYPE}", code="statement_invalid", file=where,
                            location="/predicateType")
    predicate = _obj(doc["predicate"], {"stack", "expires"}, "/predicate", where)
    stack = _obj(predicate["stack"], {"name", "version", "digest"}, "/predicate/stack", where)
    name = _str(stack["name"], "/predicate/stack/name", where)
    version = _str(stack["version"], "/predicate/stack/version", where)
    digest = _str(stack["digest"], "/predicate/stack/digest", where)
    if not is_fingerprint(digest):
        raise EnvelopeError("must be blake3:<64 lowercase hex>", code="statement_invalid", file=where,
                            location="/predicate/stack/digest")
    expires_text = _str(predicate["expires"], "/predicate/expires", where)
    if not (_is_utc_second(expires_text) or re.fullmatch(_TIME, expires_text)):
        raise EnvelopeError("must be YYYY-MM-DDTHH:MM:SSZ", code="statement_invalid", file=where,
                            location="/predicate/expires")
    try:
        expires = parse_time(expires_text)
    except ValueError as exc:
        raise EnvelopeError(str(exc), code="statement_invalid", file=where, location="/predicate/expires") from None
    return Approval(name, version, digest, expires, _stack_subject(doc["subject"], name, where))


def _stack_subject(subjects: Any, name: str, where: str) -> dict[str, str]:
    """The ``{"blake3", "sha256"}`` digests of the one subject named ``name`` (see ``statement_from_json``)."""
    if not isinstance(subjects, list) or not subjects:
        raise EnvelopeError("subject must be a non-empty list", code="statement_invalid", file=where,
                            location="/subject")
    found: int | None = None
    for i, subject in enumerate(subjects):
        at = f"/subject/{i}"
        if not isinstance(subject, dict):
            raise EnvelopeError("must be an object", code="statement_invalid", file=where, location=at)
        digests = subject.get("digest")
        # Statement v1: every subject MUST have a digest set (algorithm -> string).
        if not isinstance(digests, dict) or not digests:
            raise EnvelopeError("must have a digest set", code="statement_invalid", file=where, location=f"{at}/digest")
        bad = next((alg for alg, value in digests.items() if not isinstance(value, str)), None)
        if bad is not None:
            raise EnvelopeError("must be a string", code="statement_invalid", file=where, location=f"{at}/digest/{bad}")
        if "name" in subject and not isinstance(subject["name"], str):
            raise EnvelopeError("must be a string", code="statement_invalid", file=where, location=f"{at}/name")
        if subject.get("name") == name:
            if found is not None:
                # Two digest sets for one stack: which one was approved is ambiguous.
                raise EnvelopeError(f"a second subject named {name!r} (the first is /subject/{found})",
                                    code="statement_invalid", file=where, location=f"{at}/name")
            found = i
    if found is None:
        raise EnvelopeError(f"no subject is named {name!r}, the stack in predicate.stack.name",
                            code="statement_invalid", file=where, location="/subject")
    digests = subjects[found]["digest"]
    out = {}
    for alg in STACK_DIGESTS:
        value = digests.get(alg)
        if value is None:
            raise EnvelopeError(f"the stack's subject must have a {alg!r} digest (lodec requires both "
                                f"{' and '.join(STACK_DIGESTS)})", code="statement_invalid", file=where,
                                location=f"/subject/{found}/digest")
        if not _is_hex64(value):
            raise EnvelopeError("must be 64 lowercase hex digits", code="statement_invalid", file=where,
                                location=f"/subject/{found}/digest/{alg}")
        out[alg] = value
    return out
