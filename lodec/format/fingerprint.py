"""Digests: domain-separated BLAKE3 schema digests and record fingerprints,
and the plain BLAKE3 + SHA-256 digest pair of a file's bytes.

Schema digests and fingerprints use BLAKE3 in ``derive_key`` mode (BLAKE3
spec §2.3), each with its own fixed context string, so a schema digest can
never equal a fingerprint of the same bytes. Printed form:
``blake3:<64 lowercase hex>`` (the OCI ``algorithm:encoded`` digest
convention). ``file_digests`` is neither: plain hashes of exact bytes, as
``b3sum`` / ``sha256sum`` print them (in-toto subjects, packs, artifacts).
"""

from __future__ import annotations

import re

from blake3 import blake3

SCHEMA_DIGEST_CONTEXT = "lodec 2026-11-21 lode schema v1 digest"
FINGERPRINT_CONTEXT = "lodec 2026-11-21 vein v1 record fingerprint"
PREFIX = "blake3:"
FINGERPRINT_PATTERN = re.compile(r"blake3:[0-9a-f]{64}")


def schema_digest(canonical_schema: bytes) -> bytes:
    """32-byte BLAKE3 derive_key(``SCHEMA_DIGEST_CONTEXT``) of a schema's canonical CBOR."""
    return blake3(canonical_schema, derive_key_context=SCHEMA_DIGEST_CONTEXT).digest()


def fingerprint_bytes(schema_digest_32: bytes, body: bytes) -> bytes:
    """32-byte record fingerprint.

    BLAKE3 derive_key(``FINGERPRINT_CONTEXT``) over ``schema_digest_32 || body``,
    where ``body`` is the canonical CBOR map without the self-fingerprint
    field (``docs/vein-format.md`` §Fingerprint).

    Raises:
        ValueError: ``schema_digest_32`` is not 32 bytes.
    """
    if len(schema_digest_32) != 32:
        raise ValueError("schema digest must be 32 bytes")
    h = blake3(schema_digest_32, derive_key_context=FINGERPRINT_CONTEXT)
    h.update(body)
    return h.digest()


def format_fingerprint(raw: bytes) -> str:
    """``blake3:<64 hex>`` for a 32-byte digest."""
    return PREFIX + raw.hex()


def is_fingerprint(text: object) -> bool:
    """True if ``text`` is a well-formed ``blake3:<64 lowercase hex>`` string."""
    return isinstance(text, str) and FINGERPRINT_PATTERN.fullmatch(text) is not None


def file_digests(data: bytes) -> dict[str, str]:
    """The in-toto digest set of ``data``: ``{"blake3": hex, "sha256": hex}``.

    Plain (unkeyed, no context) BLAKE3 and SHA-256 of the exact bytes, each
    64 lowercase hex digits: what ``b3sum`` and ``sha256sum`` print.
    """
    import hashlib  # loads OpenSSL; only signing, packs and artifacts need it

    return {"blake3": blake3(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
