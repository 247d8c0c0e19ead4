"""Signed verification: bytes in, a report out, no I/O.

``verify_signed_stack`` judges a manifest, its DSSE envelope and its steps
against a trust policy, a reference time and the rollback state, in this
order (each stage runs only on what the previous one authenticated):

1. the envelope parses (DSSE v1 JSON, at most ``MAX_SIGNATURES``);
2. the stack name (``expected_name``, else the name the payload claims)
   must follow the name rule of ``lodec.names`` before a policy rule is
   chosen for it (``stack_name_unsafe``); then signatures: each is checked
   over ``PAE(payloadType, payload)`` against
   every trusted key of the policy rule for the stack (the keyid is only a
   hint for which key to try first). Valid signatures from at least
   ``threshold`` distinct trusted keys are required; two signatures by one
   key count once, and one by a key the policy revokes, or whose validity
   window does not hold ``now``, counts for nothing. Otherwise every bad
   signature is reported and nothing else is parsed;
3. ``payloadType`` is in-toto's, and the payload is a lodec stack-approval
   Statement (``lodec.sign.statement``);
4. the manifest's exact bytes have the signed subject digests (BLAKE3 and
   SHA-256). From here the manifest is authenticated;
5. the manifest's canonical digest, name and version equal the signed ones;
   the name is the one expected (``expected_name``); the version is a
   semantic version; ``now`` is before the signed expiry (freeze); the
   version is not below the recorded one (rollback) nor equal to it with
   another digest;
6. the core step checks of ``lodec.stack.verify`` on the same bytes.

Every failure is a ``Problem`` with its own stable code (``docs/errors.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import LodecError
from ..limits import DEFAULT_LIMITS, Limits
from ..names import name_problem
from ..format.schema import Schema
from ..stack.signature import SignatureCheck, SignatureReport
from ..stack.verify import (
    Candidate,
    StepReader,
    VerificationReport,
    gc_paused,
    parse_manifest,
    sealed,
    sealed_on_first_use,
    verify_steps,
)
from .dsse import Envelope, parse_envelope
from .keys import PublicKey
from .policy import TrustPolicy, TrustRule
from .state import TrustedVersion
from .statement import PAYLOAD_TYPE, Approval, format_time, load_payload, statement_from_json, subject_digests
from .versions import compare_versions, check_version

if TYPE_CHECKING:
    from datetime import datetime

ED25519_SIGNATURE_BYTES = 64


_SIG_CODES = {
    "invalid": "signature_invalid",
    "untrusted": "signature_untrusted",
    "malformed": "signature_malformed",
    "duplicate": "signature_duplicate",
    "revoked": "signature_revoked",
    "outside_window": "signature_key_outside_window",
}


def check_signatures(
    envelope: Envelope, rule: TrustRule, *, policy: TrustPolicy | None = None, now: datetime | None = None
) -> tuple[list[SignatureCheck], tuple[str, ...]]:
    """Check every signature of ``envelope`` against ``rule.keys`` (DSSE v1 multi-signature verification).

    With ``policy``, a signature that verifies under a key the policy
    revoked, or under a key whose validity window does not hold ``now``
    (the verification time), is reported (``revoked``, ``outside_window``)
    and does not count.

    Returns the per-signature outcomes and the keyids of the distinct
    trusted keys that signed, in signature order.
    """
    message = envelope.pae()
    trusted = {k.keyid: k for k in rule.keys}
    accepted: list[str] = []
    checks = []
    for i, s in enumerate(envelope.signatures):
        if len(s.sig) != ED25519_SIGNATURE_BYTES:
            checks.append(SignatureCheck(i, s.keyid, "malformed", None))
            continue
        # The keyid only orders the keys tried: a wrong or spoofed keyid changes nothing.
        hinted = trusted.get(s.keyid) if s.keyid else None
        candidates: list[PublicKey] = [hinted] if hinted else []
        candidates += [k for k in rule.keys if k is not hinted]
        match = next((k for k in candidates if k.verify(s.sig, message)), None)
        if match is None:
            checks.append(SignatureCheck(i, s.keyid, "invalid" if hinted else "untrusted", None))
        elif policy is not None and (status := policy.key_status(match.keyid, now)) != "valid":
            checks.append(SignatureCheck(i, s.keyid, status, match.keyid))
        elif match.keyid in accepted:
            checks.append(SignatureCheck(i, s.keyid, "duplicate", match.keyid))
        else:
            accepted.append(match.keyid)
            checks.append(SignatureCheck(i, s.keyid, "valid", match.keyid))
    return checks, tuple(accepted)


def _claimed_name(doc: Any) -> str:
    # Only to choose the policy rule before the payload is authenticated; the
    # signatures then decide, and the name is checked again once trusted.
    try:
        name = doc["predicate"]["stack"]["name"]
    except (KeyError, TypeError):
        return ""
    return name if isinstance(name, str) else ""


@gc_paused()
def check_signed_stack(
    manifest_bytes: bytes,
    envelope_bytes: bytes | None,
    read_step: StepReader,
    *,
    policy: TrustPolicy,
    now: datetime,
    trusted_versions: Mapping[str, TrustedVersion] | None = None,
    expected_name: str | None = None,
    manifest_file: str = "stack.json",
    envelope_file: str = "stack.json.dsse",
    step_file: Callable[[str], str] = lambda name: f"steps/{name}.vein",
    step_schema: Schema | None = None,
    stack_schema: Schema | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[VerificationReport, Candidate | None]:
    """The checks of a signed stack without the verdict: ``(report, candidate)`` for ``seal``.

    Args:
        manifest_bytes: the manifest JSON, as read.
        envelope_bytes: the DSSE envelope JSON, or ``None`` if there is none.
        read_step: ``name -> vein bytes | None``, as for ``lodec.stack.verify.check_stack``.
        policy: the trusted keys and thresholds.
        now: the one reference time for the whole verification (aware, UTC).
        trusted_versions: stack name -> highest version verified before.
        expected_name: the stack name the caller asked for; another is refused.

    ``report.signature`` holds the envelope, signers and expiry only once
    every signature-stage check passed; ``seal`` carries them into the
    ``VerifiedStack``. Never raises for bad input. ``verify_signed_stack``
    is these checks sealed.
    """
    trusted_versions = trusted_versions or {}
    report = VerificationReport()
    sig = SignatureReport(now=format_time(now))
    report.signature = sig
    if envelope_bytes is None:
        report.add("envelope_missing", None, f"no signature envelope {envelope_file}: the stack is unsigned")
        return report, None
    try:
        envelope = parse_envelope(envelope_bytes, file=envelope_file)
    except LodecError as exc:
        report.add(exc.code, None, str(exc))
        return report, None

    # The payload is parsed once, here; nothing in it is trusted before stage 3.
    payload_doc: Any = None
    payload_error: LodecError | None = None
    try:
        payload_doc = load_payload(envelope.payload, file=envelope_file)
    except LodecError as exc:
        payload_error = exc

    # Stage 2: signatures.
    rule_name = expected_name if expected_name is not None else _claimed_name(payload_doc)
    # A look-alike or control character must not pick a weaker rule; "" is "no name claimed".
    why = name_problem(rule_name) if rule_name else None
    if why is not None:
        what = "--name" if expected_name is not None else f"{envelope_file}: the stack name the payload claims,"
        report.add("stack_name_unsafe", None, f"{what} {rule_name!r} {why}; no policy rule applies to it")
        return report, None
    rule = policy.rule_for(rule_name)
    if rule is None:
        report.add("policy_no_rule", None, f"{policy.source}: no rule matches stack name {rule_name!r}")
        return report, None
    sig.rule, sig.threshold = rule.pattern, rule.threshold
    if not envelope.signatures:
        report.add("envelope_unsigned", None, f"{envelope_file}: the envelope has no signatures (stripped?)")
        return report, None
    checks, signed_by = check_signatures(envelope, rule, policy=policy, now=now)
    sig.signatures = tuple(checks)
    sig.signed_by = signed_by
    if len(signed_by) < rule.threshold:
        for c in checks:
            if c.status != "valid":
                report.add(_SIG_CODES[c.status], None, _signature_message(c, envelope_file, policy, now))
        report.add(
            "threshold_not_met", None,
            f"{envelope_file}: {len(signed_by)} valid signature(s) from distinct trusted keys; "
            f"{rule.threshold} required (rule {rule.pattern!r}, {len(rule.keys)} trusted key(s))",
        )
        return report, None

    # Stage 3: what was signed.
    if envelope.payload_type != PAYLOAD_TYPE:
        report.add("payload_type_mismatch", None,
                   f"{envelope_file}: payloadType is {envelope.payload_type!r}, not {PAYLOAD_TYPE!r}")
        return report, None
    try:
        if payload_error is not None:
            raise payload_error
        approval = statement_from_json(payload_doc, file=envelope_file)
    except LodecError as exc:
        report.add(exc.code, None, str(exc))
        return report, None
    sig.expires = format_time(approval.expires)

    # Stage 4: these exact manifest bytes.
    actual = subject_digests(manifest_bytes)
    if actual != approval.subject_digests:
        report.stack, report.version = approval.name, approval.version
        report.add("digest_mismatch", None,
                   f"{manifest_file} is not the manifest that was signed: sha256 {actual['sha256']}, "
                   f"signed {approval.subject_digests['sha256']}")
        return report, None

    # Stage 5: the authenticated manifest against the approval, the clock and the state.
    parsed = parse_manifest(report, manifest_bytes, manifest_file, stack_schema, limits)
    if parsed is None:
        return report, None
    manifest, digest = parsed
    _check_approval(report, approval, manifest, digest, expected_name, now, trusted_versions, manifest_file)
    # The approval is authenticated: seal may carry it into the verified stack.
    sig.envelope, sig.expires_at = envelope_bytes, approval.expires

    # Stage 6: the steps.
    return report, verify_steps(report, manifest_bytes, manifest, digest, read_step, step_file, step_schema, limits)


_VERIFY_DOC = """Verify a signed stack (see the module docstring for the stages).

Takes ``check_signed_stack``'s arguments. Returns a ``VerificationReport``
with ``signature`` set; on success ``report.verified`` carries the envelope,
the signing keyids and the expiry. Never raises for bad input.
"""

if TYPE_CHECKING:
    verify_signed_stack = sealed(check_signed_stack, "verify_signed_stack", _VERIFY_DOC)

else:  # `lodec verify` calls check_signed_stack and seals its result itself
    __getattr__ = sealed_on_first_use(globals(), "verify_signed_stack", check_signed_stack, _VERIFY_DOC)


def _signature_message(c: SignatureCheck, envelope_file: str, policy: TrustPolicy, now: datetime) -> str:
    hint = f"keyid {c.keyid}" if c.keyid else "no keyid"
    if c.status == "revoked":
        return f"{envelope_file}: signature {c.index} ({hint}) is by {c.key}, which {policy.source} revokes; it counts for nothing"
    if c.status == "outside_window":
        window = policy.windows.get(c.key) if c.key else None
        bounds = window.describe() if window is not None else "a validity window"
        return (f"{envelope_file}: signature {c.index} ({hint}) is by {c.key}, {bounds} in {policy.source}, "
                f"and the verification time is {format_time(now)}; it counts for nothing")
    what = {
        "invalid": "does not verify under the trusted key its keyid names, nor any other: "
                   "payload or signature altered, or keyid spoofed",
        "untrusted": "was not made by any trusted key",
        "malformed": f"is not a {ED25519_SIGNATURE_BYTES}-byte Ed25519 signature",
        "duplicate": f"is a second signature by {c.key}; it counts once",
    }[c.status]
    return f"{envelope_file}: signature {c.index} ({hint}) {what}"


def _check_approval(
    report: VerificationReport,
    approval: Approval,
    manifest: dict[str, Any],
    digest: str,
    expected_name: str | None,
    now: datetime,
    trusted_versions: Mapping[str, TrustedVersion],
    manifest_file: str,
) -> None:
    name, version = manifest["name"], manifest["version"]
    if approval.digest != digest:
        report.add("digest_mismatch", None,
                   f"{manifest_file}: canonical digest {digest}; the signature approves {approval.digest}")
    if approval.name != name:
        report.add("name_mismatch", None, f"{manifest_file}: stack {name!r} but the signature approves {approval.name!r}")
    if expected_name is not None and approval.name != expected_name:
        report.add("name_mismatch", None,
                   f"{manifest_file}: a validly signed stack named {approval.name!r} was served as {expected_name!r}")
    if approval.version != version:
        report.add("version_mismatch", None,
                   f"{manifest_file}: version {version!r} but the signature approves {approval.version!r}")
    try:
        check_version(version)
    except ValueError as exc:
        report.add("version_invalid", None, f"{manifest_file}: /version: {exc}")
        return
    if now >= approval.expires:
        report.add("expired", None,
                   f"the signatures on {name} {version} expired at {format_time(approval.expires)} "
                   f"(now {format_time(now)}): refused as a possible freeze attack; ask the signers to re-sign")
    last = trusted_versions.get(name)
    if last is None:
        return
    try:
        order = compare_versions(version, last.version)
    except ValueError:
        order = 1  # an unparsable record cannot block; it is replaced on success
    if order < 0:
        report.add("rollback", None,
                   f"{name} {version} is older than {last.version}, verified before: refused as a rollback")
    elif order == 0 and last.digest != digest:
        report.add("version_conflict", None,
                   f"{name} {version} was verified before with digest {last.digest}; this one is {digest}: "
                   "a version may not be reused for other content")
