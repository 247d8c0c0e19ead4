"""DSSE v1 envelopes: pre-authentication encoding, parsing, serialisation.

Follows the DSSE specification v1.0.0 (secure-systems-lab/dsse,
``protocol.md`` and ``envelope.md``): a signature is made over
``PAE(UTF8(payloadType), payload)``, never over the envelope's JSON, so the
JSON around it may be reformatted without affecting any signature. The
``keyid`` of a signature is an unauthenticated hint and is never used to
decide trust (see ``lodec.sign.trust``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from ..errors import EnvelopeError, LimitExceeded, LodecError
from ..limits import Limits
from ..format.records import FrozenRecord
from ..format.strictjson import loads_strict

#: Largest envelope file read (bytes). An envelope holds one payload of a few
#: hundred bytes and up to ``MAX_SIGNATURES`` signatures.
MAX_ENVELOPE_BYTES = 1024 * 1024
#: Most signatures one envelope may carry; more is refused before any is checked
#: (each costs one Ed25519 verification per trusted key).
MAX_SIGNATURES = 64

_ENVELOPE_LIMITS = Limits(max_file_bytes=MAX_ENVELOPE_BYTES, max_text_bytes=MAX_ENVELOPE_BYTES, max_json_depth=8)
# Compiled by `re` only for what the strict standard-alphabet decoding refuses (see b64decode).
_B64_STD = r"[A-Za-z0-9+/]*={0,2}"
_B64_URL = r"[A-Za-z0-9_-]*={0,2}"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (``protocol.md`` §Signature Definition).

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, where LEN is the
    ASCII decimal byte length (no leading zeros) and ``type`` is the UTF-8
    encoding of ``payload_type``.
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64 (DSSE: verifiers must accept either), padding optional.

    Raises:
        ValueError: not base64 in one of the two alphabets.
    """
    # The common case first: standard alphabet, at most two "=". Where strict decoding accepts the text, the
    # checks below would choose the standard alphabet and decode the same string; anything else takes them.
    stripped = text.rstrip("=")
    if len(text) - len(stripped) <= 2 and stripped.isascii():
        try:
            return binascii.a2b_base64(stripped + "=" * (-len(stripped) % 4), strict_mode=True)
        except binascii.Error:
            pass
    if re.fullmatch(_B64_STD, text):
        altchars = None
    elif re.fullmatch(_B64_URL, text):
        altchars = b"-_"
    else:
        raise ValueError("not base64")
    padded = text.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64 ({exc})") from None


class Signature(FrozenRecord):
    """One envelope signature: raw ``sig`` bytes and the ``keyid`` hint (or ``None``)."""

    __slots__ = ("keyid", "sig")
    keyid: str | None
    sig: bytes

    def __init__(self, keyid: str | None, sig: bytes) -> None:
        object.__setattr__(self, "keyid", keyid)
        object.__setattr__(self, "sig", sig)


class Envelope(FrozenRecord):
    """A DSSE envelope: ``payload_type``, raw ``payload`` bytes, ``signatures``."""

    __slots__ = ("payload_type", "payload", "signatures")
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def __init__(self, payload_type: str, payload: bytes, signatures: tuple[Signature, ...]) -> None:
        object.__setattr__(self, "payload_type", payload_type)
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "signatures", signatures)

    def pae(self) -> bytes:
        """The bytes every signature is over."""
        return pae(self.payload_type, self.payload)

    def with_signature(self, signature: Signature) -> Envelope:
        """A copy with ``signature`` appended."""
        return Envelope(self.payload_type, self.payload, (*self.signatures, signature))

    def to_json(self) -> bytes:
        """The envelope as JSON (``envelope.md``): standard base64, fixed key order, one trailing newline."""
        sigs = []
        for s in self.signatures:
            entry = {"keyid": s.keyid} if s.keyid is not None else {}
            entry["sig"] = base64.b64encode(s.sig).decode("ascii")
            sigs.append(entry)
        doc = {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": sigs,
        }
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def parse_envelope(data: bytes, *, file: str = "<envelope>") -> Envelope:
    """Parse a DSSE JSON envelope strictly.

    ``payload`` and ``payloadType`` are required strings; ``signatures`` a
    list (at most ``MAX_SIGNATURES``) of objects with a base64 ``sig`` and an
    optional string ``keyid``. Unknown members are ignored (they are not
    signed and nothing reads them). Duplicate JSON keys are refused, so two
    parsers cannot see two different envelopes in one file.

    Raises:
        EnvelopeError: code ``envelope_malformed``, located by JSON pointer.
        LimitExceeded: the envelope is over ``MAX_ENVELOPE_BYTES`` or has
            more than ``MAX_SIGNATURES`` signatures.
    """
    if len(data) > MAX_ENVELOPE_BYTES:
        raise LimitExceeded(f"envelope is {len(data)} bytes; the limit is {MAX_ENVELOPE_BYTES}", file=file)
    try:
        doc = loads_strict(data, file=file, limits=_ENVELOPE_LIMITS)
    except LimitExceeded:
        raise
    except LodecError as exc:
        raise EnvelopeError(f"not a DSSE envelope: {exc.message}", file=file, location=exc.location) from None
    if not isinstance(doc, dict):
        raise EnvelopeError("a DSSE envelope is a JSON object", file=file, location="/")
    for name in ("payload", "payloadType"):
        if not isinstance(doc.get(name), str):
            raise EnvelopeError(f'"{name}" must be a string', file=file, location=f"/{name}")
    try:
        payload = b64decode(doc["payload"])
    except ValueError as exc:
        raise EnvelopeError(f'"payload" is {exc}', file=file, location="/payload") from None
    sigs_doc = doc.get("signatures")
    if not isinstance(sigs_doc, list):
        raise EnvelopeError('"signatures" must be a list', file=file, location="/signatures")
    if len(sigs_doc) > MAX_SIGNATURES:
        raise LimitExceeded(
            f"{len(sigs_doc)} signatures; the limit is {MAX_SIGNATURES}", file=file, location="/signatures"
        )
    signatures = []
    for i, s in enumerate(sigs_doc):
        at = f"/signatures/{i}"
        if not isinstance(s, dict):
            raise EnvelopeError("a signature is an object {keyid, sig}", file=file, location=at)
        if not isinstance(s.get("sig"), str):
            raise EnvelopeError('"sig" must be a base64 string', file=file, location=f"{at}/sig")
        keyid = s.get("keyid")
        if keyid is not None and not isinstance(keyid, str):
            raise EnvelopeError('"keyid" must be a string', file=file, location=f"{at}/keyid")
        try:
            sig = b64decode(s["sig"])
        except ValueError as exc:
            raise EnvelopeError(f'"sig" is {exc}', file=file, location=f"{at}/sig") from None
        signatures.append(Signature(keyid or None, sig))
    return Envelope(doc["payloadType"], payload, tuple(signatures))
