"""Typed options shared by the use cases, and the one error for options that do not go together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import LodecError
from ..format.records import Record

if TYPE_CHECKING:
    from datetime import datetime

    from ..sign.policy import TrustPolicy


class OptionsError(LodecError):
    """Options that do not go together, or a value the use case cannot take (code ``usage``).

    The CLI turns it into a usage error (exit 2); ``param_hint`` names the
    option concerned (``--threshold``), when there is one.
    """

    code = "usage"

    def __init__(self, message: str, *, param_hint: str | None = None) -> None:
        super().__init__(message)
        self.param_hint = param_hint


class TrustOptions(Record):
    """Who must have signed, and against what, for a signed verification.

    Attributes:
        keys: trusted public key files (PEM SubjectPublicKeyInfo or ``ssh-ed25519``).
        threshold: valid signatures needed from distinct ``keys`` (default 1).
        policy: a trust-policy file (TOML), instead of ``keys``/``threshold``.
        expected_name: the stack name asked for; a stack signed under another is refused.
        now: the reference time (aware UTC); ``None`` means the current time.
        require_signatures: refuse to verify without checking signatures
            (``signatures_required``), and so refuse an unsigned stack.

    With neither ``keys`` nor ``policy`` verification uses the workspace's
    default policy (``Workspace.policy_file``) when there is one, else is
    unsigned. Where the rollback state lives is the workspace's
    (``Workspace.rollback_state``).
    """

    __slots__ = ("keys", "threshold", "policy", "expected_name", "now", "require_signatures")

    def __init__(
        self,
        keys: tuple[str, ...] = (),
        threshold: int | None = None,
        policy: str | None = None,
        expected_name: str | None = None,
        now: datetime | None = None,
        require_signatures: bool = False,
    ) -> None:
        self.keys, self.threshold, self.policy = tuple(keys), threshold, policy
        self.expected_name, self.now, self.require_signatures = expected_name, now, require_signatures

    @property
    def signed(self) -> bool:
        return bool(self.keys) or self.policy is not None


def now_or(when: datetime | None) -> datetime:
    """``when``, or the current UTC time to the second."""
    if when is not None:
        return when
    from ..sign.statement import datetime, timezone  # not imported by an unsigned verify, which needs no time

    return datetime.now(timezone.utc).replace(microsecond=0)


def parse_now(text: str | None) -> datetime | None:
    """``--now TIMESTAMP`` (RFC 3339 ``YYYY-MM-DDTHH:MM:SSZ``), or ``None``.

    Raises:
        OptionsError: not such a timestamp (``param_hint`` ``--now``).
    """
    if text is None:
        return None
    from ..sign.statement import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise OptionsError(str(exc), param_hint="--now") from None


def trust_policy(trust: TrustOptions) -> TrustPolicy | None:
    """The trust policy of ``trust`` (``--policy``, or ``--key``/``--threshold``), or ``None`` for unsigned.

    Raises:
        OptionsError: ``policy`` with ``keys`` or ``threshold``; ``threshold``
            without keys, or above the number of keys.
        LodecError: a key or the policy file cannot be read or parsed.
    """
    if trust.policy is not None and (trust.keys or trust.threshold is not None):
        raise OptionsError("give either --policy or --key/--threshold, not both")
    if trust.policy is not None:
        from ..sign.policy import load_policy

        return load_policy(trust.policy)
    if trust.threshold is not None and not trust.keys:
        raise OptionsError("--threshold needs trusted keys: add --key A.pub (repeat for more)")
    if not trust.keys:
        return None
    from ..sign.keys import load_public_key
    from ..sign.policy import policy_from_keys

    loaded = [load_public_key(k) for k in trust.keys]
    try:
        return policy_from_keys(loaded, trust.threshold)
    except ValueError as exc:
        raise OptionsError(str(exc), param_hint="--threshold") from None
