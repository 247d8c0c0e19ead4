"""Independent verifiers accept what lodec signs and attests.

- ``securesystemslib`` (the DSSE implementation of the in-toto / TUF projects)
  verifies every DSSE envelope lodec writes, at threshold 1 and 2, with
  lodec's keyid (``sha256:`` + SHA-256 of the DER SubjectPublicKeyInfo) as
  its keyid;
- ``in-toto-attestation`` (the in-toto project's Python bindings) parses
  every in-toto Statement lodec writes with its protobuf schema (unknown
  field names refused) and validates it, the SLSA Provenance v1 predicate
  of run provenance included.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

# Both are in the `test` extra: a missing one fails the suite rather than skipping these tests.
import in_toto_attestation  # noqa: F401
import securesystemslib  # noqa: F401

from .conftest import EXPIRES, run_cli, sign_cli


# ------------------------------------------------------------------ the independent verifiers


def sslib_key(pub: Path) -> Any:
    """``pub`` as a securesystemslib key whose keyid is lodec's keyid for it."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    from lodec.sign.keys import load_public_key

    return SSlibKey.from_crypto(load_pem_public_key(pub.read_bytes()), keyid=load_public_key(str(pub)).keyid)


def sslib_verify(envelope: bytes, pubs: list[Path], threshold: int) -> set[str]:
    """The keyids securesystemslib accepts for ``envelope`` at ``threshold`` (raises if it refuses)."""
    from securesystemslib.dsse import Envelope

    accepted = Envelope.from_dict(json.loads(envelope)).verify([sslib_key(p) for p in pubs], threshold)
    return set(accepted)


def intoto_validate(statement: dict[str, Any]) -> None:
    """Parse ``statement`` with in-toto-attestation's Statement schema (unknown fields refused) and validate it."""
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()


def payload_of(envelope: bytes) -> dict[str, Any]:
    doc = json.loads(envelope)
    assert doc["payloadType"] == "application/vnd.in-toto+json"
    return json.loads(base64.b64decode(doc["payload"]))


def keyid(keys: dict[str, Path], who: str) -> str:
    from lodec.sign.keys import load_public_key

    return load_public_key(f"{keys[who]}.pub").keyid


# ------------------------------------------------------------------ envelopes


def test_securesystemslib_verifies_a_single_signature_envelope(seed_stack: Path, keys: dict[str, Path]) -> None:
    sign_cli(seed_stack, keys["alice"], "--expires", EXPIRES)
    envelope = seed_stack.with_name(seed_stack.name + ".dsse").read_bytes()
    assert sslib_verify(envelope, [Path(f"{keys['alice']}.pub")], 1) == {keyid(keys, "alice")}


def test_securesystemslib_verifies_a_threshold_two_envelope(signed_stack: Path, keys: dict[str, Path]) -> None:
    envelope = signed_stack.with_name(signed_stack.name + ".dsse").read_bytes()
    pubs = [Path(f"{keys[w]}.pub") for w in ("alice", "bob")]
    assert sslib_verify(envelope, pubs, 2) == {keyid(keys, "alice"), keyid(keys, "bob")}


def test_securesystemslib_verifies_the_envelope_a_pack_carries(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    from lodec.format.pack import read_pack


    code, _, err = run_cli("pack", signed_stack, "-o", tmp_path / "s.lodepack")
    assert code == 0, err
    pack = read_pack((tmp_path / "s.lodepack").read_bytes())
    assert pack.envelope is not None
    pubs = [Path(f"{keys[w]}.pub") for w in ("alice", "bob")]
    assert sslib_verify(pack.envelope, pubs, 2) == {keyid(keys, "alice"), keyid(keys, "bob")}


def test_securesystemslib_refuses_what_lodec_refuses(signed_stack: Path, keys: dict[str, Path]) -> None:
    # The independent verifier is really checking: a tampered payload, a missing signer and a
    # keyid other than lodec's all fail it.
    from securesystemslib.exceptions import VerificationError

    envelope = signed_stack.with_name(signed_stack.name + ".dsse").read_bytes()
    doc = json.loads(envelope)
    statement = payload_of(envelope)
    statement["predicate"]["expires"] = "2099-01-01T00:00:00Z"
    doc["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    pubs = [Path(f"{keys[w]}.pub") for w in ("alice", "bob")]
    with pytest.raises(VerificationError):
        sslib_verify(json.dumps(doc).encode(), pubs, 1)
    with pytest.raises(VerificationError):
        sslib_verify(envelope, [Path(f"{keys['alice']}.pub"), Path(f"{keys['mallory']}.pub")], 2)
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    default_keyid = SSlibKey.from_crypto(load_pem_public_key(Path(f"{keys['alice']}.pub").read_bytes()))
    with pytest.raises(VerificationError):
        Envelope.from_dict(doc | {"payload": json.loads(envelope)["payload"]}).verify([default_keyid], 1)


# ------------------------------------------------------------------ statements


def test_in_toto_attestation_validates_the_approval_statement(signed_stack: Path) -> None:
    statement = payload_of(signed_stack.with_name(signed_stack.name + ".dsse").read_bytes())
    intoto_validate(statement)


def test_in_toto_attestation_refuses_a_statement_without_a_subject_digest() -> None:
    # The validator is real: a subject with no digest fails it.
    with pytest.raises(ValueError, match="digest"):
        intoto_validate({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "x"}],
                         "predicateType": "https://example.com/p", "predicate": {"a": 1}})
