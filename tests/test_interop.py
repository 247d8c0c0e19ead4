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


def test_securesystemslib_verifies_the_envelope_pushed_as_an_oci_referrer(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    # `lodec push` to an OCI image layout: every DSSE envelope among its blobs is one lodec wrote.
    code, _, err = run_cli("pack", signed_stack, "-o", tmp_path / "s.lodepack")
    assert code == 0, err
    code, _, err = run_cli("push", tmp_path / "s.lodepack", f"oci-layout:{tmp_path / 'layout'}:v1")
    assert code == 0, err
    envelopes = []
    for blob in (tmp_path / "layout" / "blobs" / "sha256").iterdir():
        try:
            doc = json.loads(blob.read_bytes())
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(doc, dict) and "payloadType" in doc:
            envelopes.append(blob.read_bytes())
    assert len(envelopes) == 1
    pubs = [Path(f"{keys[w]}.pub") for w in ("alice", "bob")]
    assert sslib_verify(envelopes[0], pubs, 2) == {keyid(keys, "alice"), keyid(keys, "bob")}
    intoto_validate(payload_of(envelopes[0]))


# ------------------------------------------------------------------ statements


def test_in_toto_attestation_validates_the_approval_statement(signed_stack: Path) -> None:
    statement = payload_of(signed_stack.with_name(signed_stack.name + ".dsse").read_bytes())
    intoto_validate(statement)


def test_in_toto_attestation_refuses_a_statement_without_a_subject_digest() -> None:
    # The validator is real: a subject with no digest fails it.
    with pytest.raises(ValueError, match="digest"):
        intoto_validate({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "x"}],
                         "predicateType": "https://example.com/p", "predicate": {"a": 1}})


# ------------------------------------------------------------------ statements the spec allows


def resign(manifest: Path, keys: dict[str, Path], statement: dict[str, Any], *signers: str) -> Path:
    """Replace ``manifest``'s envelope with one over ``statement`` (as JSON), signed by ``signers``' keys."""
    from lodec.sign import Envelope, Signature, load_private_key

    env = Envelope("application/vnd.in-toto+json", json.dumps(statement).encode(), ())
    for who in signers:
        key = load_private_key(f"{keys[who]}.key")
        env = env.with_signature(Signature(key.public.keyid, key.sign(env.pae())))
    path = manifest.with_name(manifest.name + ".dsse")
    path.write_bytes(env.to_json())
    return path


def approval(manifest: Path) -> dict[str, Any]:
    return payload_of(manifest.with_name(manifest.name + ".dsse").read_bytes())


def extended(statement: dict[str, Any]) -> dict[str, Any]:
    """``statement`` with everything in-toto Statement v1 lets a producer add and a consumer ignore."""
    subject = statement["subject"][0]
    subject["digest"]["sha512"] = "ab" * 64
    subject["digest"]["gitBlob"] = "not checked: lodec ignores algorithms it does not know"
    subject["uri"] = "https://example.com/stacks/code-review-pipeline/1.0.0/stack.json"
    subject["annotations"] = {"reviewedIn": {"pr": 42, "labels": ["security", None]}, "twoPartyReview": True}
    subject["mediaType"] = "application/json"
    subject["example_extension"] = {"any": "value"}
    statement["subject"].append({"name": "release-notes.md", "uri": "https://example.com/notes",
                                 "digest": {"sha256": "cd" * 32}})
    statement["example_extension"] = [1, 2, 3]
    return statement


def test_statement_with_extra_digests_uri_and_annotations_is_accepted(signed_stack: Path, keys: dict[str, Path]) -> None:
    from .conftest import verify_signed

    statement = extended(approval(signed_stack))
    resign(signed_stack, keys, statement, "alice", "bob")
    code, report, err = verify_signed(signed_stack, "--key", f"{keys['alice']}.pub", "--key", f"{keys['bob']}.pub",
                                      "--threshold", "2")
    assert code == 0 and report["ok"], err
    # What was accepted is still a valid in-toto Statement (minus the extension fields the
    # protobuf schema has no name for).
    del statement["example_extension"], statement["subject"][0]["example_extension"]
    intoto_validate(statement)


@pytest.mark.parametrize("alg", ["blake3", "sha256"])
def test_attack_extended_statement_whose_stack_digest_differs_is_refused(
    signed_stack: Path, keys: dict[str, Path], alg: str
) -> None:
    from .conftest import verify_signed

    # A validly signed statement with every allowed extra, and the right digest under every
    # other algorithm, but one of lodec's own two digests of the manifest is another file's.
    import hashlib

    statement = extended(approval(signed_stack))
    ours = statement["subject"][0]["digest"]
    ours["sha512"] = hashlib.sha512(signed_stack.read_bytes()).hexdigest()
    # The manifest's real digest is in the statement, but on another subject.
    statement["subject"][1]["digest"][alg] = ours[alg]
    ours[alg] = "0" * 64
    resign(signed_stack, keys, statement, "alice")
    code, report, err = verify_signed(signed_stack, "--key", f"{keys['alice']}.pub")
    assert code == 1 and not report["ok"]
    assert [p["code"] for p in report["problems"]] == ["digest_mismatch"], report["problems"]
    assert "is not the manifest that was signed" in report["problems"][0]["message"]


@pytest.mark.parametrize(
    "change, where",
    [
        # lodec requires both of its algorithms on the stack's subject: one alone is not enough.
        (lambda s: s["subject"][0]["digest"].pop("blake3"), "/subject/0/digest"),
        (lambda s: s["subject"][0]["digest"].pop("sha256"), "/subject/0/digest"),
        (lambda s: s["subject"][0]["digest"].update(sha256="AB" * 32), "/subject/0/digest/sha256"),
        # The stack's subject is the one named as the stack; none, or two, is refused.
        (lambda s: s["subject"][0].update(name="another-stack"), "/subject"),
        (lambda s: s["subject"].append(dict(s["subject"][0], digest={"sha256": "cd" * 32})), "/subject/1/name"),
        # Statement v1: every subject has a digest set of strings.
        (lambda s: s["subject"].append({"name": "x", "uri": "https://example.com/x"}), "/subject/1/digest"),
        (lambda s: s["subject"][0]["digest"].update(sha512=512), "/subject/0/digest/sha512"),
        # lodec's own predicate is closed: a field it does not know may be a restriction it would miss.
        (lambda s: s["predicate"].update(allowedRunners=["ci"]), "/predicate/allowedRunners"),
        (lambda s: s["predicate"]["stack"].update(example_extension=1), "/predicate/stack/example_extension"),
    ],
)
def test_strict_parts_of_the_statement_are_refused(
    signed_stack: Path, keys: dict[str, Path], change: Any, where: str
) -> None:
    from .conftest import verify_signed

    statement = approval(signed_stack)
    change(statement)
    resign(signed_stack, keys, statement, "alice")
    code, report, err = verify_signed(signed_stack, "--key", f"{keys['alice']}.pub")
    assert code == 1 and [p["code"] for p in report["problems"]] == ["statement_invalid"], report["problems"]
    message = report["problems"][0]["message"]
    assert f"#payload: {where}:" in message, message


def test_cosigning_an_extended_statement_keeps_its_payload(signed_stack: Path, keys: dict[str, Path]) -> None:
    from .conftest import verify_signed

    statement = extended(approval(signed_stack))
    envelope = resign(signed_stack, keys, statement, "alice")
    payload = json.loads(envelope.read_bytes())["payload"]
    sign_cli(signed_stack, keys["bob"])
    after = json.loads(envelope.read_bytes())
    assert after["payload"] == payload and len(after["signatures"]) == 2
    code, report, err = verify_signed(signed_stack, "--key", f"{keys['alice']}.pub", "--key", f"{keys['bob']}.pub",
                                      "--threshold", "2")
    assert code == 0, err


# ------------------------------------------------------------------ run provenance (SLSA Provenance v1)


def slsa_validate(statement: dict[str, Any]) -> Any:
    """Validate a run's provenance with in-toto-attestation: the Statement, then its predicate parsed with
    the bindings' SLSA Provenance v1 schema (unknown fields refused) and each ResourceDescriptor validated."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor

    intoto_validate(statement)
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    pb = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    for rd in [*pb.build_definition.resolved_dependencies, *pb.run_details.byproducts]:
        ResourceDescriptor.copy_from_pb(rd).validate()
    assert pb.build_definition.build_type and pb.run_details.builder.id
    return pb


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The state directory of runs outside git ($LODEC_HOME), inside the test's folder."""
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "lodec-home"))
    return tmp_path / "lodec-home"


def test_in_toto_attestation_validates_run_provenance(tmp_path: Path, home: Path) -> None:
    from .runkit import make_skill, make_stack, run_json, step

    make_skill(tmp_path / "stack" / "skills", "ok")
    make_skill(tmp_path / "stack" / "skills", "bad", "sys.exit(3)\n")
    (tmp_path / "ws").mkdir()
    stack = make_stack(tmp_path / "stack", [step("a", "ok", outputs=["x.txt", "y.txt"]), step("b", "ok", deps=["a"])])
    code, record, err = run_json(stack, tmp_path / "ws", "--allow-unsandboxed")
    assert code == 0, err
    statement = json.loads((home / "runs" / record["run"] / "provenance.json").read_text())
    pb = slsa_validate(statement)
    assert pb.run_details.metadata.invocation_id == record["run"]
    # The timestamps are RFC 3339 as the protobuf Timestamp reads them, to the microsecond.
    assert pb.run_details.metadata.started_on.ToJsonString() == record["started"]
    assert pb.run_details.metadata.finished_on.ToJsonString() == record["ended"]
    assert {d.uri for d in pb.build_definition.resolved_dependencies} == {
        "lodec:stack:test-stack@1.0.0", "lodec:step:a", "lodec:step:b", "skill:ok"}

    # A failed run: provenance for the artifacts that were made, still valid.
    failing = make_stack(tmp_path / "stack", [step("a", "ok"), step("b", "bad", deps=["a"]),
                                              step("c", "ok", deps=["b"])], name="failing-stack")
    code, record, err = run_json(failing, tmp_path / "ws", "--allow-unsandboxed")
    assert code == 1 and record["status"] == "failed"
    statement = json.loads((home / "runs" / record["run"] / "provenance.json").read_text())
    slsa_validate(statement)
    assert [s["name"] for s in statement["subject"]] == ["a/out.txt"]
    [record_descriptor] = statement["predicate"]["runDetails"]["byproducts"]
    assert record_descriptor["annotations"] == {"status": "failed", "exitCode": 1,
                                                "steps": {"a": "succeeded", "b": "failed", "c": "skipped"}}


def test_a_run_without_artifacts_writes_no_provenance(tmp_path: Path, home: Path) -> None:
    from .runkit import make_skill, make_stack, step

    make_skill(tmp_path / "stack" / "skills", "quiet", "print('nothing to write')\n")
    (tmp_path / "ws").mkdir()
    stack = make_stack(tmp_path / "stack", [step("a", "quiet", outputs=[])])
    code, out, err = run_cli("run", stack, "--workspace", tmp_path / "ws", "--allow-unsandboxed")
    assert code == 0, err
    # An in-toto Statement needs a subject: with no artifact there is nothing to attest.
    assert "Provenance: none (the run produced no artifact)" in out
    [run_dir] = (home / "runs").iterdir()
    assert (run_dir / "run.json").is_file() and not (run_dir / "provenance.json").exists()


def golden_provenance(seed_stack: Path) -> dict[str, Any]:
    """``provenance`` of a fixed run record of the seed stack (``tests/golden/run-provenance.json``)."""
    import lodec
    from lodec.run.reports import provenance
    from lodec.store.cas import digest_bytes
    from lodec.store.records import RUN_FORMAT, RunRecord, StackRef, StepResult

    folder = seed_stack.parent
    verified = lodec.verify_stack(seed_stack.read_bytes(),
                                  lambda name: (folder / "steps" / f"{name}.vein").read_bytes()).require()
    fingerprints = verified.manifest["stepFingerprints"]

    def result(name: str, status: str, outputs: dict[str, bytes]) -> StepResult:
        return StepResult(status=status, skill=f"skill:{name}", skillDigest="blake3:" + "5" * 64,
                          fingerprint=fingerprints[name], concurrency="read", exit_code=0 if outputs else 1,
                          started="2026-11-21T10:00:01.000000Z", ended="2026-11-21T10:00:02.000000Z",
                          duration_ms=1000.0, reason=None if outputs else "exit_nonzero",
                          artifacts={k: digest_bytes(v) for k, v in outputs.items()})

    record = RunRecord(
        format=RUN_FORMAT, run="20261121T100000.000000Z-0123abcd", status="failed", exit_code=1,
        stack=StackRef(name=verified.name, version=verified.version, digest=verified.digest, signedBy=["sha256:" + "a" * 64]),
        skills={"skill:eslint-check": "blake3:" + "e" * 64, "skill:static-analysis": "blake3:" + "f" * 64},
        workspace="/work", trust="strict", jobs=2, sandbox="bubblewrap 0.8.0: user, pid namespaces",
        started="2026-11-21T10:00:00.000000Z", ended="2026-11-21T10:00:03.500000Z", duration_ms=3500.0,
        order=["lint", "static-analysis"],
        steps={"lint": result("lint", "succeeded", {"lint-report.json": b'{"errors": 0}\n'}),
               "static-analysis": result("static-analysis", "failed", {})},
    )
    return provenance(record, verified)


def test_run_provenance_golden_vector(seed_stack: Path) -> None:
    # The wire form of run provenance is pinned: a change to it is deliberate (update the file with
    # the change, and docs/run-records.md). Only lodec's version is not pinned.
    from lodec.run.reports import lodec_version

    text = json.dumps(golden_provenance(seed_stack), indent=2, sort_keys=True) + "\n"
    text = text.replace(f"lodec@{lodec_version()}", "lodec@VERSION").replace(
        f'"lodec": "{lodec_version()}"', '"lodec": "VERSION"')
    golden = Path(__file__).parent / "golden" / "run-provenance.json"
    assert text == golden.read_text()
    slsa_validate(json.loads(text))
