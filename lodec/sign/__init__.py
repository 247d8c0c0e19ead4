"""Signed distribution: keys, DSSE envelopes, trust policies, rollback state.

The pipeline's "sign" stage (``docs/signing.md``):

- ``keys``: Ed25519 keys (PKCS#8 / SPKI PEM, OpenSSH), keyid = SHA-256 of the SPKI DER;
- ``dsse``: DSSE v1 envelope and PAE;
- ``statement``: the signed payload, an in-toto Statement v1 approving one stack;
- ``signer``: create or extend an envelope;
- ``policy``: trusted keys and t-of-n thresholds per stack-name pattern, revoked keyids, key validity windows;
- ``state`` / ``versions``: rollback protection by semantic version;
- ``trust``: the I/O-free signed verification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Lazy attributes: `lodec verify --key` imports only the modules it uses.
_EXPORTS = {
    "Envelope": "dsse", "Signature": "dsse", "pae": "dsse", "parse_envelope": "dsse",
    "PrivateKey": "keys", "PublicKey": "keys", "generate_key": "keys", "load_any_key": "keys",
    "load_private_key": "keys", "load_public_key": "keys",
    "KeyWindow": "policy", "TrustPolicy": "policy", "TrustRule": "policy", "load_policy": "policy",
    "parse_policy": "policy",
    "policy_from_keys": "policy",
    "DEFAULT_VALIDITY": "signer", "sign_stack": "signer",
    "TrustedVersion": "state",
    "PAYLOAD_TYPE": "statement", "PREDICATE_TYPE": "statement", "Approval": "statement",
    "parse_statement": "statement",
    "SignatureCheck": "trust", "check_signatures": "trust", "verify_signed_stack": "trust",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lodec.sign' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .dsse import Envelope, Signature, pae, parse_envelope
    from .keys import PrivateKey, PublicKey, generate_key, load_any_key, load_private_key, load_public_key
    from .policy import KeyWindow, TrustPolicy, TrustRule, load_policy, parse_policy, policy_from_keys
    from .signer import DEFAULT_VALIDITY, sign_stack
    from .state import TrustedVersion
    from .statement import PAYLOAD_TYPE, PREDICATE_TYPE, Approval, parse_statement
    from .trust import SignatureCheck, check_signatures, verify_signed_stack
