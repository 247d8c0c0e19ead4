"""In-memory builders for the core attack tests: stacks, envelopes, keys, packs as bytes.

Nothing here touches the file system or the CLI. A ``Stack`` is the bytes a
verifier is handed (manifest JSON and step veins by name); attacks are new
``Stack`` values made from it. Envelopes an attacker forges are built here
from the wire format (DSSE PAE, the in-toto Statement of ``docs/signing.md``)
rather than with lodec's own writers, so the tests pin the format, not the
implementation. Genuine signatures come from ``lodec.sign.signer.sign_stack``.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from blake3 import blake3

from lodec.format.codec import Vein, encode_record
from lodec.format.compiler import compile_value
from lodec.format.pack import build_pack
from lodec.format.schema import builtin_schema_bytes, lodepack_schema, skill_step_schema
from lodec.sign.keys import PrivateKey, generate_key
from lodec.sign.policy import TrustPolicy, policy_from_keys
from lodec.sign.signer import sign_stack
from lodec.sign.trust import verify_signed_stack
from lodec.stack.manifest import build_manifest, manifest_json, manifest_vein
from lodec.stack.verify import VerificationReport, verify_stack

STEP_SCHEMA = skill_step_schema()

#: The seed code-review pipeline (``steps/*.json``), as values.
SEED_SOURCES: dict[str, dict[str, Any]] = {
    "lint": {
        "stepName": "lint",
        "skillRef": "skill:eslint-check",
        "dependsOn": [],
        "inputs": {"configPath": ".eslintrc.json"},
        "outputs": ["lint-report.json"],
    },
    "static-analysis": {
        "stepName": "static-analysis",
        "skillRef": "skill:static-analysis",
        "dependsOn": ["lint"],
        "inputs": {"language": "typescript", "strictMode": "true"},
        "outputs": ["report.json", "annotations.sarif"],
    },
    "ai-review": {
        "stepName": "ai-review",
        "skillRef": "skill:code-review",
        "dependsOn": ["lint", "static-analysis"],
        "inputs": {"model": "claude-opus-4-6", "maxTokens": "4096"},
        "outputs": ["review-comments.json"],
    },
}
STACK_NAME = "code-review-pipeline"


def compile_step(source: Mapping[str, Any]) -> Vein:
    """A step compiled from a JSON value (what an author, or an attacker, can always do)."""
    return compile_value(dict(source), STEP_SCHEMA)


@dataclass(frozen=True)
class Stack:
    """What a verifier is handed: manifest bytes and ``step name -> vein bytes``."""

    manifest: bytes
    steps: Mapping[str, bytes] = field(default_factory=dict)

    def read_step(self, name: str) -> bytes | None:
        return self.steps.get(name)

    def doc(self) -> dict[str, Any]:
        """The manifest as a JSON value (a fresh copy to edit)."""
        return json.loads(self.manifest)

    def with_doc(self, edit: Callable[[dict[str, Any]], None]) -> Stack:
        """The manifest re-written by ``edit`` (in place on a copy), as ``lodec stack build`` formats it."""
        doc = self.doc()
        edit(doc)
        return replace(self, manifest=manifest_json(doc))

    def with_step(self, name: str, data: bytes) -> Stack:
        return replace(self, steps={**self.steps, name: data})

    def without_step(self, name: str) -> Stack:
        return replace(self, steps={k: v for k, v in self.steps.items() if k != name})

    def repinned(self, source: Mapping[str, Any], *, drop_entry: bool = False) -> Stack:
        """An insider's swap: compile a new step, ship it, and re-pin it in the manifest."""
        vein = compile_step(source)
        name = vein.record["stepName"]

        def edit(doc: dict[str, Any]) -> None:
            doc["stepFingerprints"][name] = vein.fingerprint
            if drop_entry:
                doc.pop("entryPoint", None)

        return self.with_step(name, vein.data).with_doc(edit)


def seed_stack(*, name: str = STACK_NAME, version: str = "1.0.0", description: str | None = None,
               sources: Mapping[str, Mapping[str, Any]] = SEED_SOURCES) -> Stack:
    """The seed stack built as ``lodec stack build`` builds it (entry point ``lint``)."""
    veins = [compile_step(s) for s in sources.values()]
    manifest = build_manifest(
        veins, name=name, version=version,
        description=description or "Lint, analyze, and AI-review code changes",
        entry="lint", metadata={"team": "platform", "triggerOn": "pull_request"},
    )
    return Stack(manifest_json(manifest), {v.record["stepName"]: v.data for v in veins})


def canonical_digest(stack: Stack) -> str:
    """The manifest's canonical digest (``blake3:<hex>``), as verify computes it."""
    return manifest_vein(stack.doc()).fingerprint


def codes(report: VerificationReport) -> list[str]:
    return sorted(p.code for p in report.problems)


def assert_refused(report: VerificationReport, *expected: str) -> VerificationReport:
    """All or nothing: not ok, nothing verified, and exactly these problem codes (as a multiset)."""
    assert report.ok is False
    assert report.verified is None
    assert codes(report) == sorted(expected), [(p.code, p.step, p.message) for p in report.problems]
    return report


def assert_verified(report: VerificationReport) -> VerificationReport:
    assert report.problems == [], [(p.code, p.step, p.message) for p in report.problems]
    assert report.ok is True and report.verified is not None
    return report


def verify(stack: Stack, **kwargs: Any) -> VerificationReport:
    return verify_stack(stack.manifest, stack.read_step, **kwargs)


# ------------------------------------------------------------------ signing

SIGNED_AT = datetime(2026, 11, 21, tzinfo=UTC)
EXPIRES = datetime(2027, 1, 1, tzinfo=UTC)
VERIFY_AT = datetime(2026, 12, 1, tzinfo=UTC)


@cache
def key(name: str) -> PrivateKey:
    """A key pair generated in-process, one per name for the whole test session.

    alice, bob and carol are the trusted signers in these tests; mallory is not.
    """
    return generate_key()


def policy(*names: str, threshold: int | None = None) -> TrustPolicy:
    """The one-rule policy of ``lodec verify --key ... --threshold N``."""
    return policy_from_keys([key(n).public for n in names], threshold)


def sign(stack: Stack, *signers: str, expires: datetime = EXPIRES) -> bytes:
    """The envelope bytes after each of ``signers`` approved ``stack`` (the first creates the envelope)."""
    from lodec.sign.dsse import Envelope

    verified = verify(stack).require()
    envelope: Envelope | None = None
    for signer in signers:
        envelope, _ = sign_stack(verified, key(signer), now=SIGNED_AT,
                                 expires=expires if envelope is None else None, existing=envelope)
    assert envelope is not None
    return envelope.to_json()


def verify_signed(stack: Stack, envelope: bytes | None, *, trusted: Iterable[str] = ("alice",),
                  threshold: int | None = None, now: datetime = VERIFY_AT, **kwargs: Any) -> VerificationReport:
    return verify_signed_stack(stack.manifest, envelope, stack.read_step, policy=policy(*trusted, threshold=threshold),
                               now=now, **kwargs)


def envelope_doc(envelope: bytes) -> dict[str, Any]:
    return json.loads(envelope)


def envelope_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, from the spec (what every signature covers)."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def forge_envelope(payload_type: str, payload: bytes, *signers: str) -> bytes:
    """An envelope over any payload, validly signed by ``signers``' real keys."""
    sigs = [{"keyid": key(s).public.keyid, "sig": b64(key(s).sign(pae(payload_type, payload)))} for s in signers]
    return envelope_bytes({"payload": b64(payload), "payloadType": payload_type, "signatures": sigs})


IN_TOTO = "application/vnd.in-toto+json"


def statement(manifest: bytes, *, name: str, version: str, digest: str, expires: str = "2027-01-01T00:00:00Z",
              predicate_type: str = "https://lodec.dev/attestation/stack-approval/v1") -> bytes:
    """A stack-approval in-toto Statement (``docs/signing.md``), written from the documented shape."""
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"blake3": blake3(manifest).hexdigest(),
                                              "sha256": hashlib.sha256(manifest).hexdigest()}}],
        "predicateType": predicate_type,
        "predicate": {"stack": {"name": name, "version": version, "digest": digest}, "expires": expires},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# ------------------------------------------------------------------ packs

def pack(stack: Stack, envelope: bytes | None = None, *, steps: Mapping[str, bytes] | None = None) -> bytes:
    """Pack bytes holding ``stack``'s members (or ``steps`` instead of its own), as ``lodec pack`` writes them."""
    members = dict(stack.steps if steps is None else steps)
    common = {"manifest_name": "stack.json", "step_schema": builtin_schema_bytes("skill-step-v1"),
              "stack_schema": builtin_schema_bytes("skill-stack-v1"), "envelope": envelope}
    if "steps" in inspect.signature(build_pack).parameters:
        return build_pack(manifest=stack.manifest, steps=members, **common)
    # build_pack before the layering refactor took a VerifiedStack: write the same record directly.
    record: dict[str, Any] = {"manifestName": common["manifest_name"], "manifest": stack.manifest,
                              "stepSchema": common["step_schema"], "stackSchema": common["stack_schema"],
                              "steps": members}
    if envelope is not None:
        record["envelope"] = envelope
    return encode_record(lodepack_schema(), record, file="<pack>").data


def verify_pack(data: bytes, **kwargs: Any) -> VerificationReport:
    """``read_pack`` then the pack verifier, wherever the refactor has put it."""
    from lodec.format.pack import read_pack

    try:
        from lodec.sign.pack import verify_pack as verify_members
    except ImportError:  # before the layering refactor
        from lodec.format.pack import verify_pack as verify_members  # type: ignore[attr-defined,no-redef]
    return verify_members(read_pack(data), **kwargs)
