"""Signed distribution: keys, DSSE envelopes, trust policies, rollback state.

The pipeline's "sign" stage (``docs/signing.md``):

- ``keys``: Ed25519 keys (PKCS#8 / SPKI PEM, OpenSSH), keyid = SHA-256 of the SPKI DER;
- ``dsse``: DSSE v1 envelope and PAE;
- ``statement``: the signed payload, an in-toto Statement v1 approving one stack;
- ``signer``: create or extend an envelope;
- ``policy``: trusted keys and t-of-n thresholds per stack-name pattern;
- ``state`` / ``versions``: rollback protection by semantic version;
- ``trust``: the I/O-free signed verification.
"""

from __future__ import annotations

from .dsse import Envelope, Signature, pae, parse_envelope
from .keys import PrivateKey, PublicKey, generate_key, load_any_key, load_private_key, load_public_key
from .policy import TrustPolicy, TrustRule, load_policy, parse_policy, policy_from_keys
from .signer import DEFAULT_VALIDITY, sign_stack
from .state import TrustedVersion, default_state_path, load_state, record_verified
from .statement import PAYLOAD_TYPE, PREDICATE_TYPE, Approval, parse_statement
from .trust import SignatureCheck, check_signatures, verify_signed_stack

__all__ = [
    "Approval", "DEFAULT_VALIDITY", "Envelope", "PAYLOAD_TYPE", "PREDICATE_TYPE", "PrivateKey", "PublicKey",
    "Signature", "SignatureCheck", "TrustPolicy", "TrustRule", "TrustedVersion", "check_signatures",
    "default_state_path", "generate_key", "load_any_key", "load_policy", "load_private_key", "load_public_key",
    "load_state", "pae", "parse_envelope", "parse_policy", "parse_statement", "policy_from_keys",
    "record_verified", "sign_stack", "verify_signed_stack",
]
