"""Signed results as the verification report carries them (filled by ``lodec.sign.trust``).

Kept apart from ``lodec.stack.verify`` so that an unsigned ``lodec verify``
does not pay for defining them at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..format.records import FrozenRecord, Record

if TYPE_CHECKING:
    from datetime import datetime


class SignatureCheck(FrozenRecord):
    """The outcome of one envelope signature.

    ``status``: ``valid`` (counts toward the threshold), ``duplicate`` (valid,
    by a key already counted), ``invalid`` (its keyid names a trusted key
    but it verifies under none: tampered payload or signature, or a spoofed
    keyid), ``untrusted`` (verifies under no trusted key: signed by another
    key), ``malformed`` (not a 64-byte Ed25519 signature), ``revoked``
    (valid, by a key the trust policy revokes) or ``outside_window`` (valid,
    by a key whose validity window does not hold the verification time);
    only ``valid`` counts. ``key`` is the keyid of the trusted key it
    verified under, if any.
    """

    __slots__ = ("index", "keyid", "status", "key")
    index: int
    keyid: str | None
    status: str
    key: str | None

    def __init__(self, index: int, keyid: str | None, status: str, key: str | None) -> None:
        setter = object.__setattr__
        setter(self, "index", index)
        setter(self, "keyid", keyid)
        setter(self, "status", status)
        setter(self, "key", key)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "keyid": self.keyid, "status": self.status, "key": self.key}


class SignatureReport(Record):
    """What signed verification (``lodec.sign.trust``) found, whether or not the stack verified.

    Attributes:
        now: the reference time (``YYYY-MM-DDTHH:MM:SSZ``).
        rule: the trust-policy rule pattern applied, or ``None`` if none matched.
        threshold: valid signatures required from distinct trusted keys.
        signed_by: keyids of the distinct trusted keys with a valid signature.
        signatures: each signature's outcome, in envelope order.
        expires: the signed expiry (``YYYY-MM-DDTHH:MM:SSZ``) once the payload is authenticated.
        envelope: the envelope bytes checked (``None`` when there was none).
        expires_at: ``expires`` as an aware UTC ``datetime``.
    """

    __slots__ = ("now", "rule", "threshold", "signed_by", "signatures", "expires", "envelope", "expires_at")
    now: str
    rule: str | None
    threshold: int | None
    signed_by: tuple[str, ...]
    signatures: tuple[SignatureCheck, ...]
    expires: str | None
    envelope: bytes | None
    expires_at: datetime | None

    def __init__(self, now: str, rule: str | None = None, threshold: int | None = None,
                 signed_by: tuple[str, ...] = (), signatures: tuple[SignatureCheck, ...] = (),
                 expires: str | None = None, envelope: bytes | None = None,
                 expires_at: datetime | None = None) -> None:
        self.now = now
        self.rule = rule
        self.threshold = threshold
        self.signed_by = signed_by
        self.signatures = signatures
        self.expires = expires
        self.envelope = envelope
        self.expires_at = expires_at

    def to_dict(self) -> dict[str, Any]:
        """The ``"trust"`` member of ``--json``: ``{"now", "rule", "threshold", "signedBy", "signatures", "expires"}``."""
        return {"now": self.now, "rule": self.rule, "threshold": self.threshold, "signedBy": list(self.signed_by),
                "signatures": [c.to_dict() for c in self.signatures], "expires": self.expires}
