"""Keys, DSSE, the signed statement, trust policies and rollback state: behaviour and formats."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import lodec
from lodec.sign.dsse import b64decode, pae, parse_envelope
from lodec.sign.statement import PAYLOAD_TYPE, PREDICATE_TYPE, parse_duration, parse_time

from .conftest import EXPIRES, SIGNED_AT, VERIFY_AT, run_cli, sign_cli, verify_signed

# ------------------------------------------------------------------ DSSE


def test_dsse_pae_test_vector() -> None:
    # DSSE v1.0.0 protocol.md "Test Vectors", verbatim.
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    envelope = parse_envelope(
        b'{"payload": "aGVsbG8gd29ybGQ=",\n "payloadType": "http://example.com/HelloWorld",\n'
        b' "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}'
    )
    assert envelope.payload == b"hello world" and envelope.signatures[0].keyid is None
    # The spec's ECDSA P-256 key verifies its signature over our PAE bytes.
    public = ec.EllipticCurvePublicNumbers(
        46950820868899156662930047687818585632848591499744589407958293238635476079160,
        5640078356564379163099075877009565129882514886557779369047442380624545832820,
        ec.SECP256R1(),
    ).public_key()
    raw = envelope.signatures[0].sig
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, envelope.pae(), ec.ECDSA(hashes.SHA256()))


def test_pae_lengths_are_utf8_byte_lengths() -> None:
    assert pae("tÿpe", "héllo".encode()) == "DSSEv1 5 tÿpe 6 héllo".encode()
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_envelope_accepts_url_safe_and_unpadded_base64() -> None:
    assert b64decode("-_8") == b"\xfb\xff" == b64decode("+/8=")
    with pytest.raises(ValueError):
        b64decode("+_8=")  # mixed alphabets
    with pytest.raises(ValueError):
        b64decode("a b")


@pytest.mark.parametrize(
    "doc, where",
    [
        ("[]", "/"),
        ('{"payloadType": "x", "signatures": []}', "/payload"),
        ('{"payload": "!!", "payloadType": "x", "signatures": []}', "/payload"),
        ('{"payload": "", "payloadType": "x", "signatures": {}}', "/signatures"),
        ('{"payload": "", "payloadType": "x", "signatures": [{"keyid": 1, "sig": ""}]}', "/signatures/0/keyid"),
        ('{"payload": "", "payloadType": "x", "signatures": [{"keyid": "k"}]}', "/signatures/0/sig"),
    ],
)
def test_malformed_envelopes_name_the_place(doc: str, where: str) -> None:
    with pytest.raises(lodec.LodecError) as info:
        parse_envelope(doc.encode(), file="s.dsse")
    assert info.value.code == "envelope_malformed" and info.value.location == where


# ------------------------------------------------------------------ keys


def test_key_generate_writes_pkcs8_0600_and_spki(tmp_path: Path) -> None:
    code, out, err = run_cli("key", "generate", tmp_path / "keys" / "alice", "--json")
    assert code == 0, err
    info = json.loads(out)
    private, public = tmp_path / "keys" / "alice.key", tmp_path / "keys" / "alice.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    der = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert info["keyid"] == "sha256:" + hashlib.sha256(der).hexdigest()
    code, out, _ = run_cli("key", "id", public)
    assert code == 0 and out.strip() == info["keyid"]
    code, out, _ = run_cli("key", "id", private)
    assert code == 0 and out.strip() == info["keyid"]


def test_key_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    assert run_cli("key", "generate", tmp_path / "a")[0] == 0
    before = (tmp_path / "a.key").read_bytes()
    code, _, err = run_cli("key", "generate", tmp_path / "a")
    assert code == 1 and "[file_exists]" in err and (tmp_path / "a.key").read_bytes() == before
    assert run_cli("key", "generate", tmp_path / "a", "--force")[0] == 0
    assert (tmp_path / "a.key").read_bytes() != before


def test_encrypted_key_needs_its_passphrase(seed_stack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODEC_TEST_PW", "correct horse")
    assert run_cli("key", "generate", tmp_path / "enc", "--passphrase-env", "LODEC_TEST_PW")[0] == 0
    assert (tmp_path / "enc.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    code, _, err = run_cli("sign", seed_stack, "--key", tmp_path / "enc.key")
    assert code == 1 and "[key_encrypted]" in err and "--passphrase-env" in err
    monkeypatch.setenv("LODEC_WRONG_PW", "battery staple")
    code, _, err = run_cli("sign", seed_stack, "--key", tmp_path / "enc.key", "--passphrase-env", "LODEC_WRONG_PW")
    assert code == 1 and "[key_passphrase]" in err
    assert not seed_stack.with_name(seed_stack.name + ".dsse").exists()
    code, _, err = run_cli("sign", seed_stack, "--key", tmp_path / "enc.key", "--passphrase-env", "LODEC_TEST_PW")
    assert code == 0, err


def test_openssh_ed25519_keys_are_accepted(seed_stack: Path, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "id_ed25519").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    (tmp_path / "id_ed25519.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b" ops@example\n")
    (tmp_path / "same.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert run_cli("key", "id", tmp_path / "id_ed25519.pub")[1] == run_cli("key", "id", tmp_path / "same.pub")[1]
    code, _, err = run_cli("sign", seed_stack, "--key", tmp_path / "id_ed25519", "--now", SIGNED_AT)
    assert code == 0, err
    code, report, _ = verify_signed(seed_stack, "--key", str(tmp_path / "id_ed25519.pub"))
    assert code == 0 and report["ok"]


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_non_ed25519_keys_are_refused(tmp_path: Path, kind: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "k.pub"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    code, _, err = run_cli("key", "id", pub)
    assert code == 1 and "[key_unsupported]" in err and "Ed25519" in err


def test_a_private_key_is_not_accepted_as_a_trusted_key(signed_stack: Path, keys: dict[str, Path]) -> None:
    code, _, err = run_cli("verify", signed_stack, "--key", f"{keys['alice']}.key", "--state", signed_stack.parent / "s")
    assert code == 1 and "[key_invalid]" in err and "public key" in err


# ---------------------------------------------------------------- signing


def test_signed_payload_is_an_in_toto_statement_binding_the_stack(signed_stack: Path) -> None:
    env = json.loads(signed_stack.with_name(signed_stack.name + ".dsse").read_text())
    assert env["payloadType"] == PAYLOAD_TYPE == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(env["payload"]))
    manifest = signed_stack.read_bytes()
    from blake3 import blake3

    assert statement == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "code-review-pipeline",
                     "digest": {"blake3": blake3(manifest).hexdigest(), "sha256": hashlib.sha256(manifest).hexdigest()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"stack": {"name": "code-review-pipeline", "version": "1.0.0",
                                "digest": "blake3:de24fb6a607221c41cdd31be5c70ba334b5f01d1bc11b359e55fe3bf9e87da31"},
                      "expires": EXPIRES},
    }
    # One byte form: sorted keys, no whitespace.
    assert base64.b64decode(env["payload"]) == json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def test_signing_again_with_the_same_key_adds_nothing(signed_stack: Path, keys: dict[str, Path]) -> None:
    env = signed_stack.with_name(signed_stack.name + ".dsse")
    before = env.read_bytes()
    code, out, _ = run_cli("sign", "--json", signed_stack, "--key", f"{keys['alice']}.key", "--now", SIGNED_AT)
    assert code == 0 and json.loads(out)["added"] is False and json.loads(out)["signatures"] == 2
    assert env.read_bytes() == before


def test_cosigning_with_another_expiry_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    code, _, err = run_cli("sign", signed_stack, "--key", f"{keys['mallory']}.key", "--expires", "2030-01-01",
                           "--now", SIGNED_AT)
    assert code == 1 and "[expires_conflict]" in err


def test_cosigning_a_changed_manifest_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    data = json.loads(signed_stack.read_text())
    data["description"] = "changed"
    signed_stack.write_bytes(lodec.manifest_json(data))
    code, _, err = run_cli("sign", signed_stack, "--key", f"{keys['mallory']}.key", "--now", SIGNED_AT)
    assert code == 1 and "[envelope_stale]" in err and "remove it" in err


def test_an_invalid_stack_is_not_signed(seed_stack: Path, keys: dict[str, Path]) -> None:
    (seed_stack.parent / "steps" / "lint.vein").write_bytes(b"VEIN")
    code, _, err = run_cli("sign", seed_stack, "--key", f"{keys['alice']}.key")
    assert code == 1 and "[verification_failed]" in err
    assert not seed_stack.with_name(seed_stack.name + ".dsse").exists()


def test_a_non_semver_version_is_not_signed(tmp_path: Path, seed_stack: Path, keys: dict[str, Path]) -> None:
    data = json.loads(seed_stack.read_text())
    data["version"] = "v1"
    seed_stack.write_bytes(lodec.manifest_json(data))
    code, _, err = run_cli("sign", seed_stack, "--key", f"{keys['alice']}.key")
    assert code == 1 and "[version_invalid]" in err and "semantic version" in err


def test_expiry_options(seed_stack: Path, keys: dict[str, Path]) -> None:
    code, _, err = run_cli("sign", seed_stack, "--key", f"{keys['alice']}.key", "--expires", "2020-01-01")
    assert code == 1 and "[expires_in_past]" in err
    code, _, err = run_cli("sign", seed_stack, "--key", f"{keys['alice']}.key", "--expires-in", "soon")
    assert code == 2 and "90d" in err
    code, _, _ = run_cli("sign", seed_stack, "--key", f"{keys['alice']}.key", "--expires", EXPIRES, "--expires-in", "1d")
    assert code == 2
    code, out, _ = run_cli("sign", "--json", seed_stack, "--key", f"{keys['alice']}.key", "--now", SIGNED_AT)
    assert code == 0 and json.loads(out)["expires"] == "2027-02-19T00:00:00Z"  # the 90-day default


def test_time_and_duration_parsing() -> None:
    utc = timezone.utc
    assert parse_time("2027-01-31") == datetime(2027, 1, 31, tzinfo=utc)
    assert parse_time("2027-01-31T02:00:00+02:00") == datetime(2027, 1, 31, tzinfo=utc)
    with pytest.raises(ValueError, match="time zone"):
        parse_time("2027-01-31T00:00:00")
    assert parse_duration("2w").days == 14 and parse_duration("36h").total_seconds() == 129600
    for bad in ("0d", "1y", "-1d", "1.5d", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


# ----------------------------------------------------------------- policy


def write_policy(folder: Path, keys: dict[str, Path], body: str) -> Path:
    policy = folder / "trust.toml"
    inline_bob = Path(f"{keys['bob']}.pub").read_text()
    policy.write_text(
        f'version = 1\n\n[keys]\nalice = "{keys["alice"]}.pub"\nbob = """{inline_bob}"""\n'
        f'mallory = "{keys["mallory"]}.pub"\n\n{body}'
    )
    return policy


def test_policy_thresholds_per_stack_name_pattern(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    strict = write_policy(tmp_path, keys, '[[rules]]\nstacks = "code-review-*"\nkeys = ["alice", "bob", "mallory"]\n'
                                          'threshold = 3\n\n[[rules]]\nstacks = "*"\nkeys = ["alice"]\nthreshold = 1\n')
    code, report, _ = verify_signed(signed_stack, "--policy", str(strict))
    assert code == 1 and report["trust"]["rule"] == "code-review-*" and report["trust"]["threshold"] == 3
    assert [p["code"] for p in report["problems"]] == ["threshold_not_met"]
    ok = write_policy(tmp_path, keys, '[[rules]]\nstacks = "code-review-*"\nkeys = ["alice", "bob"]\nthreshold = 2\n')
    code, report, _ = verify_signed(signed_stack, "--policy", str(ok))
    assert code == 0 and len(report["trust"]["signedBy"]) == 2


def test_policy_without_a_matching_rule_refuses(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    policy = write_policy(tmp_path, keys, '[[rules]]\nstacks = "release-*"\nkeys = ["alice"]\nthreshold = 1\n')
    code, report, _ = verify_signed(signed_stack, "--policy", str(policy))
    assert code == 1 and [p["code"] for p in report["problems"]] == ["policy_no_rule"]


@pytest.mark.parametrize(
    "body, where",
    [
        ('[[rules]]\nstacks = "*"\nkeys = ["alice"]\nthreshold = 2\n', "/rules/0/threshold"),
        ('[[rules]]\nstacks = "*"\nkeys = ["alice", "alice"]\nthreshold = 2\n', "/rules/0/threshold"),
        ('[[rules]]\nstacks = "*"\nkeys = ["carol"]\nthreshold = 1\n', "/rules/0/keys/0"),
        ('[[rules]]\nstacks = "*"\nkeys = ["alice"]\nthreshold = 1\nexpires = "never"\n', "/rules/0/expires"),
        ("", "/rules"),
        ('[[rules]]\nstacks = "r\u0435lease-*"\nkeys = ["alice"]\nthreshold = 1\n', "/rules/0/stacks"),  # Cyrillic е
        ('[[rules]]\nstacks = "release *"\nkeys = ["alice"]\nthreshold = 1\n', "/rules/0/stacks"),
    ],
)
def test_invalid_policies_name_the_place(keys: dict[str, Path], tmp_path: Path, body: str, where: str) -> None:
    policy = write_policy(tmp_path, keys, body)
    code, _, err = run_cli("verify", tmp_path / "x.json", "--policy", policy)
    assert code == 1 and f"{policy}: {where}:" in err and "[policy_invalid]" in err


def test_policy_and_keys_together_is_a_usage_error(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    policy = write_policy(tmp_path, keys, '[[rules]]\nstacks = "*"\nkeys = ["alice"]\nthreshold = 1\n')
    code, _, err = run_cli("verify", signed_stack, "--policy", policy, "--key", f"{keys['alice']}.pub")
    assert code == 2 and "either" in err


# ------------------------------------------------------------------ state


def test_state_records_only_upward(signed_stack: Path, keys: dict[str, Path]) -> None:
    from lodec.store.rollback import load_state, record_verified

    state = signed_stack.parent / "state.json"
    code, _, _ = verify_signed(signed_stack, "--key", f"{keys['alice']}.pub")
    assert code == 0
    rec = load_state(state)["code-review-pipeline"]
    assert rec.version == "1.0.0" and rec.digest.startswith("blake3:de24fb6a") and rec.verified_at == VERIFY_AT
    when = datetime(2026, 12, 2, tzinfo=timezone.utc)
    assert record_verified(state, "code-review-pipeline", "2.0.0", "blake3:" + "1" * 64, when) is True
    assert record_verified(state, "code-review-pipeline", "1.5.0", "blake3:" + "2" * 64, when) is False
    assert load_state(state)["code-review-pipeline"].version == "2.0.0"


def test_unsigned_verify_records_nothing(seed_stack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert run_cli("verify", seed_stack)[0] == 0
    assert not (tmp_path / "home").exists()


def test_corrupt_state_is_a_clear_error(signed_stack: Path, keys: dict[str, Path]) -> None:
    (signed_stack.parent / "state.json").write_text('{"format": "something else"}')
    code, _, err = run_cli("verify", signed_stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT,
                           "--state", signed_stack.parent / "state.json")
    assert code == 1 and "[state_invalid]" in err and "Traceback" not in err


def test_default_state_is_at_the_git_root_not_the_subdirectory(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    sub = repo / "deep" / "sub"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    code, _, err = run_cli("verify", signed_stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT)
    assert code == 0, err
    assert (repo / ".lodec" / "trusted-stacks.json").is_file()
    assert os.listdir(sub) == [] and not (tmp_path / "home").exists()


def test_default_state_outside_git_is_lodec_home(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.delenv("LODEC_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "fakehome"))
    if lodec.store.workspace.find_git_root(outside) is not None:
        pytest.skip("the temp directory is inside a git repository")
    code, _, err = run_cli("verify", signed_stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT)
    assert code == 0, err
    assert (tmp_path / "fakehome" / ".lodec" / "trusted-stacks.json").is_file()
    assert os.listdir(outside) == []


# ---------------------------------------------------------- verified bytes


def test_signed_verification_hands_on_the_bytes_it_verified(signed_stack: Path, keys: dict[str, Path]) -> None:
    from lodec.sign import load_public_key, policy_from_keys, verify_signed_stack

    manifest = signed_stack.read_bytes()
    envelope = signed_stack.with_name(signed_stack.name + ".dsse").read_bytes()
    reads: list[str] = []

    def read_step(name: str) -> bytes:
        reads.append(name)
        return (signed_stack.parent / "steps" / f"{name}.vein").read_bytes()

    report = verify_signed_stack(
        manifest, envelope, read_step, policy=policy_from_keys([load_public_key(f"{keys['alice']}.pub")]),
        now=parse_time(VERIFY_AT),
    )
    v = report.require()
    assert v.manifest_bytes is manifest and v.envelope is envelope
    assert sorted(reads) == sorted(v.steps) and len(reads) == 3  # each step read once
    assert v.expires == parse_time(EXPIRES) and v.signed_by == (load_public_key(f"{keys['alice']}.pub").keyid,)


def test_lodec_verify_without_keys_says_signatures_were_not_checked(signed_stack: Path) -> None:
    code, out, _ = run_cli("verify", signed_stack)
    assert code == 0 and "signatures not checked" in out


def test_signature_failures_print_one_line_each(seed_stack: Path, keys: dict[str, Path]) -> None:
    sign_cli(seed_stack, keys["mallory"], "--expires", EXPIRES)
    code, _, err = run_cli("verify", seed_stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT,
                           "--state", seed_stack.parent / "s.json")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 3  # untrusted signature, threshold, summary
    assert lines[0].endswith("[signature_untrusted]") and lines[1].endswith("[threshold_not_met]")


def test_versions_compare_by_semver_precedence() -> None:
    from lodec.sign.versions import check_version, compare_versions

    assert compare_versions("1.10.0", "1.9.0") == 1
    assert compare_versions("2.0.0-rc.1", "2.0.0") == -1
    assert compare_versions("1.0.0-alpha", "1.0.0-alpha.1") == -1
    assert compare_versions("1.0.0+build.1", "1.0.0+build.2") == 0  # build metadata has no precedence
    for bad in ("v1.0.0", "1.0", "01.0.0", "1.0.0-", "1.0.0+", "1.0.0 "):
        with pytest.raises(ValueError):
            check_version(bad)


def _signed_envelope(keys: dict[str, Path], payload: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    from lodec.sign import Envelope, Signature, load_private_key

    key = load_private_key(f"{keys['alice']}.key")
    env = Envelope(payload_type, payload, ())
    return env.with_signature(Signature(key.public.keyid, key.sign(env.pae()))).to_json()


@pytest.mark.parametrize(
    "payload, payload_type, code",
    [
        (b"not json", PAYLOAD_TYPE, "statement_invalid"),
        (b'{"_type": "https://in-toto.io/Statement/v1"}', PAYLOAD_TYPE, "statement_invalid"),
        (b"{}", "application/json", "payload_type_mismatch"),
    ],
)
def test_validly_signed_but_not_a_stack_approval_is_refused(
    seed_stack: Path, keys: dict[str, Path], payload: bytes, payload_type: str, code: str
) -> None:
    from lodec.sign import load_public_key, policy_from_keys, verify_signed_stack

    report = verify_signed_stack(
        seed_stack.read_bytes(), _signed_envelope(keys, payload, payload_type), lambda name: None,
        policy=policy_from_keys([load_public_key(f"{keys['alice']}.pub")]), now=parse_time(VERIFY_AT),
    )
    assert [p.code for p in report.problems] == [code]
    assert report.signature is not None and report.signature.signatures[0].status == "valid"


# ------------------------------------------------------------------ key lifecycle


def lifecycle_policy(folder: Path, keys: dict[str, Path], *, revoked: tuple[str, ...] = (), alice: str = "",
                     threshold: int = 2) -> Path:
    """A policy trusting alice and bob for every stack; ``alice`` is extra TOML for alice's key table."""
    from lodec.sign import load_public_key

    ids = ", ".join(f'"{load_public_key(f"{keys[w]}.pub").keyid}"' for w in revoked)
    path = folder / "lifecycle.toml"
    path.write_text(
        f"version = 1\nrevoked = [{ids}]\n\n[keys]\n"
        f'alice = {{ key = "{keys["alice"]}.pub"{", " + alice if alice else ""} }}\n'
        f'bob = "{keys["bob"]}.pub"\n\n'
        f'[[rules]]\nstacks = "*"\nkeys = ["alice", "bob"]\nthreshold = {threshold}\n'
    )
    return path


def keyid_of(keys: dict[str, Path], who: str) -> str:
    from lodec.sign import load_public_key

    return load_public_key(f"{keys[who]}.pub").keyid


def test_attack_threshold_two_with_one_signer_revoked_is_refused(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    code, report, _ = verify_signed(signed_stack, "--policy", str(lifecycle_policy(tmp_path, keys)))
    assert code == 0 and report["ok"]  # the same signatures, nothing revoked
    policy = lifecycle_policy(tmp_path, keys, revoked=("bob",))
    code, report, _ = verify_signed(signed_stack, "--policy", str(policy))
    assert code == 1 and not report["ok"]
    assert [p["code"] for p in report["problems"]] == ["signature_revoked", "threshold_not_met"]
    assert [s["status"] for s in report["trust"]["signatures"]] == ["valid", "revoked"]
    assert report["trust"]["signatures"][1]["key"] == keyid_of(keys, "bob") and report["trust"]["signedBy"] == [
        keyid_of(keys, "alice")]
    code, out, err = run_cli("verify", signed_stack, "--policy", policy, "--now", VERIFY_AT,
                             "--state", tmp_path / "state.json")
    assert code == 1
    assert f"signature 1 (keyid {keyid_of(keys, 'bob')}) is by {keyid_of(keys, 'bob')}, which {policy} revokes" in err
    assert "[signature_revoked]" in err and "[threshold_not_met]" in err


def test_a_revoked_signer_beyond_the_threshold_is_reported_not_counted(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    code, report, _ = verify_signed(signed_stack, "--policy",
                                    str(lifecycle_policy(tmp_path, keys, revoked=("bob",), threshold=1)))
    assert code == 0 and report["trust"]["signedBy"] == [keyid_of(keys, "alice")]
    assert [s["status"] for s in report["trust"]["signatures"]] == ["valid", "revoked"]


def test_attack_signature_by_a_key_after_its_not_after_is_refused(
    seed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    # alice's key was retired on 2026-11-20; this signature is made with it on 2026-11-21 (SIGNED_AT).
    sign_cli(seed_stack, keys["alice"], "--expires", EXPIRES)
    policy = lifecycle_policy(tmp_path, keys, alice="not-after = 2026-11-20T00:00:00Z", threshold=1)
    code, report, _ = verify_signed(seed_stack, "--policy", str(policy))
    assert code == 1 and [p["code"] for p in report["problems"]] == ["signature_key_outside_window",
                                                                     "threshold_not_met"]
    assert report["trust"]["signatures"][0]["status"] == "outside_window"
    code, _, err = run_cli("verify", seed_stack, "--policy", policy, "--now", VERIFY_AT,
                           "--state", tmp_path / "state.json")
    assert code == 1 and "[signature_key_outside_window]" in err
    assert "valid until 2026-11-20T00:00:00Z" in err and "the verification time is 2026-12-01T00:00:00Z" in err


@pytest.mark.parametrize(
    "window, now, ok",
    [
        ("not-before = 2026-11-01T00:00:00Z, not-after = 2026-12-31T00:00:00Z", VERIFY_AT, True),
        ('not-after = "2026-12-01T00:00:01Z"', VERIFY_AT, True),
        ('not-after = "2026-12-01T00:00:00Z"', VERIFY_AT, False),  # not-after is exclusive
        ("not-before = 2026-12-02", VERIFY_AT, False),  # not yet valid
        ("not-before = 2026-12-02T01:00:00+01:00", VERIFY_AT, False),  # = 2026-12-02T00:00:00Z
        # The window is checked at the verification time, not at signing (which lodec cannot know):
        # a key retired on 2026-11-30 still counts when verifying as of 2026-11-29 ...
        ("not-after = 2026-11-30T00:00:00Z", "2026-11-29T00:00:00Z", True),
        # ... and no longer on 2026-12-01, though the signature was made on 2026-11-21 inside the window.
        ("not-after = 2026-11-30T00:00:00Z", VERIFY_AT, False),
    ],
)
def test_key_validity_window_is_checked_at_the_verification_time(
    seed_stack: Path, keys: dict[str, Path], tmp_path: Path, window: str, now: str, ok: bool
) -> None:
    sign_cli(seed_stack, keys["alice"], "--expires", EXPIRES)
    policy = lifecycle_policy(tmp_path, keys, alice=window, threshold=1)
    code, out, err = run_cli("verify", "--json", seed_stack, "--policy", policy, "--now", now,
                             "--state", tmp_path / "state.json")
    report = json.loads(out)
    assert report["ok"] is ok and code == (0 if ok else 1), err
    assert report["trust"]["signatures"][0]["status"] == ("valid" if ok else "outside_window")


@pytest.mark.parametrize(
    "body, where",
    [
        ('revoked = ["alice"]\n', "/revoked/0"),
        ('revoked = "sha256:' + "0" * 64 + '"\n', "/revoked"),
        ('[keys]\ncarol = { key = "x.pub", expires = 2027-01-01 }\n', "/keys/carol/expires"),
        ('[keys]\ncarol = { key = "x.pub", not-after = 2027-01-01T00:00:00 }\n', "/keys/carol/not-after"),
        ('[keys]\ncarol = { key = "x.pub", not-after = "next year" }\n', "/keys/carol/not-after"),
        ('[keys]\ncarol = { key = "x.pub", not-before = 2027-01-01, not-after = 2026-01-01 }\n',
         "/keys/carol/not-after"),
        ('[keys]\ncarol = { not-after = 2027-01-01 }\n', "/keys/carol/key"),
    ],
)
def test_invalid_key_lifecycle_entries_name_the_place(tmp_path: Path, body: str, where: str) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("version = 1\n" + body + '\n[[rules]]\nstacks = "*"\nkeys = ["carol"]\nthreshold = 1\n')
    code, _, err = run_cli("verify", tmp_path / "x.json", "--policy", policy)
    assert code == 1 and f"{policy}: {where}:" in err and "[policy_invalid]" in err, err


def test_attack_revocation_is_not_bypassed_by_keyid_spelling_or_key_encoding(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    """Revocation dodged by spelling: a keyid written in capitals or with ``SHA256:`` would match no key and
    revoke nothing, so it is refused outright (policy_invalid at its place); and the revoked key trusted again
    under another label, written inline in OpenSSH form instead of its PEM file, is still revoked (keyids are
    computed from the key, not from how the policy spells it)."""
    from cryptography.hazmat.primitives import serialization

    bob = keyid_of(keys, "bob")
    for spelled in (bob.upper(), "SHA256:" + bob.split(":")[1], bob.split(":")[1], " " + bob):
        policy = lifecycle_policy(tmp_path, keys)
        policy.write_text(policy.read_text().replace("revoked = []", f'revoked = ["{spelled}"]'))
        code, _, err = run_cli("verify", signed_stack, "--policy", policy, "--now", VERIFY_AT,
                               "--state", tmp_path / "state.json")
        assert code == 1 and f"{policy}: /revoked/0:" in err and "[policy_invalid]" in err, (spelled, err)
    pem = Path(f"{keys['bob']}.pub").read_bytes()
    ssh = serialization.load_pem_public_key(pem).public_bytes(serialization.Encoding.OpenSSH,
                                                               serialization.PublicFormat.OpenSSH).decode()
    policy = tmp_path / "inline.toml"
    policy.write_text(f'version = 1\nrevoked = ["{bob}"]\n\n[keys]\nalice = "{keys["alice"]}.pub"\n'
                      f'robert = "{ssh}"\n\n[[rules]]\nstacks = "*"\nkeys = ["alice", "robert"]\nthreshold = 2\n')
    code, report, _ = verify_signed(signed_stack, "--policy", str(policy))
    assert code == 1 and [p["code"] for p in report["problems"]] == ["signature_revoked", "threshold_not_met"]
    policy.write_text(policy.read_text().replace(f'revoked = ["{bob}"]', "revoked = []"))
    assert verify_signed(signed_stack, "--policy", str(policy))[0] == 0  # the inline key is bob's: it counts
