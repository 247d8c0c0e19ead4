"""Signing: approve a verified stack with an Ed25519 key, in a DSSE envelope.

The first signer creates the envelope (payload: the in-toto Statement of
``lodec.sign.statement``, with the expiry); each further signer adds a
signature over the same payload, after checking that the payload approves
exactly the manifest they hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..errors import LodecError
from ..names import check_name
from ..stack.verify import VerifiedStack
from .dsse import Envelope, Signature
from .keys import PrivateKey
from .policy import TrustRule
from .statement import PAYLOAD_TYPE, build_statement, format_time, parse_statement, subject_digests
from .trust import check_signatures
from .versions import check_version

#: Expiry of a new envelope when neither ``--expires`` nor ``--expires-in`` is given.
DEFAULT_VALIDITY = timedelta(days=90)


def sign_stack(
    stack: VerifiedStack,
    key: PrivateKey,
    *,
    now: datetime,
    expires: datetime | None = None,
    existing: Envelope | None = None,
    envelope_file: str = "stack.json.dsse",
) -> tuple[Envelope, bool]:
    """Sign ``stack`` (which must have passed ``verify_stack``) with ``key``.

    Args:
        stack: the verified stack; its exact manifest bytes are the subject.
        key: the signer's Ed25519 key.
        now: the reference time (for the default expiry and the past-expiry check).
        expires: the expiry of a new envelope (default ``now + DEFAULT_VALIDITY``);
            with an existing envelope it must be ``None`` or equal to the signed one.
        existing: the current envelope, to add a signature to.

    Returns:
        ``(envelope, added)``; ``added`` is False if ``key`` had already signed.

    Raises:
        UnsafeNameError: ``stack_name_unsafe``: the stack name breaks the
            name rule (``lodec.names``); an approval names only stacks that
            print as themselves and match policies as themselves.
        LodecError: ``version_invalid`` (not semver), ``expires_in_past``,
            ``envelope_stale`` (the existing envelope approves other bytes),
            ``expires_conflict``, ``statement_invalid``.
    """
    # verify_stack already refuses such a manifest; a VerifiedStack made by hand is refused here.
    check_name(stack.name, what="stack name", code="stack_name_unsafe")
    try:
        check_version(stack.version)
    except ValueError as exc:
        raise LodecError(str(exc), code="version_invalid", location="/version") from None
    if existing is not None:
        if existing.payload_type != PAYLOAD_TYPE:
            raise LodecError(f"payloadType is {existing.payload_type!r}, not {PAYLOAD_TYPE!r}",
                             code="payload_type_mismatch", file=envelope_file)
        approval = parse_statement(existing.payload, file=envelope_file)
        if approval.subject_digests != subject_digests(stack.manifest_bytes) or approval.digest != stack.digest:
            raise LodecError(
                f"approves another manifest ({approval.name} {approval.version}, {approval.digest}); "
                "remove it to start a new envelope for this one",
                code="envelope_stale", file=envelope_file,
            )
        if expires is not None and expires != approval.expires:
            raise LodecError(
                f"the envelope already expires at {format_time(approval.expires)}; co-signers sign the same "
                "payload, so leave out --expires, or remove the envelope and collect every signature again",
                code="expires_conflict", file=envelope_file,
            )
        _, signed_by = check_signatures(existing, TrustRule("*", (key.public,), 1))
        if signed_by:
            return existing, False
        return existing.with_signature(Signature(key.public.keyid, key.sign(existing.pae()))), True
    when = expires if expires is not None else now + DEFAULT_VALIDITY
    if when <= now:
        raise LodecError(f"expiry {format_time(when)} is not after now ({format_time(now)})", code="expires_in_past")
    payload = build_statement(stack.manifest_bytes, name=stack.name, version=stack.version, digest=stack.digest,
                              expires=when)
    envelope = Envelope(PAYLOAD_TYPE, payload, ())
    return envelope.with_signature(Signature(key.public.keyid, key.sign(envelope.pae()))), True
