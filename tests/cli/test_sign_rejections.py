"""The command line's side of signed verification's refusals (TUF's attack list; design.md threat model).

Each starts from the seed stack signed by alice and bob, applies one
attack, and checks that `lodec verify` refuses it: exit 1, the attack's
stable code, one line per problem and no traceback. The core judges the
same attacks from bytes in ``tests/core/test_sign_attacks.py``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import lodec
from lodec.sign.dsse import parse_envelope

from tests.conftest import EXPIRES, SEED_SOURCES, VERIFY_AT, run_cli, sign_cli, verify_signed


def refused(target: Path, *args: str, codes: tuple[str, ...]) -> dict:
    code, report, _ = verify_signed(target, *args)
    assert code == 1 and report["ok"] is False
    found = [p["code"] for p in report["problems"]]
    for c in codes:
        assert c in found, (c, report["problems"])
    code2, _, err = run_cli("verify", target, "--now", VERIFY_AT, "--state", target.parent / "state.json", *args)
    assert code2 == 1 and "Traceback" not in err and "nothing may run" in err
    return report


def trusted(keys: dict[str, Path], *names: str) -> list[str]:
    out = []
    for n in names:
        out += ["--key", f"{keys[n]}.pub"]
    return out


def envelope_of(manifest: Path) -> dict:
    return json.loads(manifest.with_name(manifest.name + ".dsse").read_text())


def write_envelope(manifest: Path, doc: dict) -> None:
    manifest.with_name(manifest.name + ".dsse").write_text(json.dumps(doc))


def with_version(manifest: Path, version: str, **changes: str) -> Path:
    """A copy of the stack in a sibling folder with another version (and other changes)."""
    folder = manifest.parent / f"v{version}-{len(changes)}"
    (folder / "steps").mkdir(parents=True)
    for vein in (manifest.parent / "steps").iterdir():
        (folder / "steps" / vein.name).write_bytes(vein.read_bytes())
    data = json.loads(manifest.read_text())
    data["version"] = version
    data.update(changes)
    out = folder / manifest.name
    out.write_bytes(lodec.manifest_json(data))
    return out


def test_signed_stack_verifies_with_threshold_two(signed_stack: Path, keys: dict[str, Path]) -> None:
    code, report, _ = verify_signed(signed_stack, *trusted(keys, "alice", "bob"), "--threshold", "2")
    assert code == 0 and report["ok"] is True
    assert report["trust"]["threshold"] == 2 and len(report["trust"]["signedBy"]) == 2
    assert [s["status"] for s in report["trust"]["signatures"]] == ["valid", "valid"]


def test_wrong_key_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    report = refused(signed_stack, *trusted(keys, "mallory"), codes=("signature_untrusted", "threshold_not_met"))
    assert report["steps"] == []  # nothing past the signatures was looked at


def test_tampered_payload_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    doc = envelope_of(signed_stack)
    payload = base64.b64decode(doc["payload"]).replace(EXPIRES.encode(), b"2099-01-01T00:00:00Z")
    doc["payload"] = base64.b64encode(payload).decode()
    write_envelope(signed_stack, doc)
    refused(signed_stack, *trusted(keys, "alice"), codes=("signature_invalid", "threshold_not_met"))


def test_tampered_payload_type_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    doc = envelope_of(signed_stack)
    doc["payloadType"] = "application/json"  # PAE binds the type: signatures break
    write_envelope(signed_stack, doc)
    refused(signed_stack, *trusted(keys, "alice"), codes=("signature_invalid", "threshold_not_met"))


def test_tampered_signature_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    doc = envelope_of(signed_stack)
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    doc["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    write_envelope(signed_stack, doc)
    refused(signed_stack, *trusted(keys, "alice"), codes=("signature_invalid", "threshold_not_met"))


def test_truncated_signature_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    doc = envelope_of(signed_stack)
    doc["signatures"][0]["sig"] = base64.b64encode(base64.b64decode(doc["signatures"][0]["sig"])[:63]).decode()
    write_envelope(signed_stack, doc)
    refused(signed_stack, *trusted(keys, "alice"), codes=("signature_malformed", "threshold_not_met"))


def test_stripped_signature_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    doc = envelope_of(signed_stack)
    doc["signatures"] = []
    write_envelope(signed_stack, doc)
    refused(signed_stack, *trusted(keys, "alice"), codes=("envelope_unsigned",))


def test_one_of_two_signatures_stripped_is_refused_at_threshold_two(signed_stack: Path, keys: dict[str, Path]) -> None:
    doc = envelope_of(signed_stack)
    doc["signatures"] = doc["signatures"][:1]
    write_envelope(signed_stack, doc)
    refused(signed_stack, *trusted(keys, "alice", "bob"), "--threshold", "2", codes=("threshold_not_met",))


def test_stripped_envelope_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    signed_stack.with_name(signed_stack.name + ".dsse").unlink()
    refused(signed_stack, *trusted(keys, "alice"), codes=("envelope_missing",))


def test_threshold_not_met_by_one_valid_signature(seed_stack: Path, keys: dict[str, Path]) -> None:
    sign_cli(seed_stack, keys["alice"], "--expires", EXPIRES)
    refused(seed_stack, *trusted(keys, "alice", "bob"), "--threshold", "2", codes=("threshold_not_met",))


def test_threshold_not_met_by_two_signatures_from_the_same_key(seed_stack: Path, keys: dict[str, Path]) -> None:
    sign_cli(seed_stack, keys["alice"], "--expires", EXPIRES)
    doc = envelope_of(seed_stack)
    # The same signature again, under another keyid hint: one key still counts once.
    doc["signatures"].append({"keyid": "bob", "sig": doc["signatures"][0]["sig"]})
    write_envelope(seed_stack, doc)
    report = refused(seed_stack, *trusted(keys, "alice", "bob"), "--threshold", "2",
                     codes=("signature_duplicate", "threshold_not_met"))
    assert [s["status"] for s in report["trust"]["signatures"]] == ["valid", "duplicate"]


def test_the_same_key_given_twice_counts_once(signed_stack: Path, keys: dict[str, Path]) -> None:
    code, _, err = run_cli("verify", signed_stack, "--key", f"{keys['alice']}.pub", "--key", f"{keys['alice']}.pub",
                           "--threshold", "2", "--now", VERIFY_AT, "--state", signed_stack.parent / "s.json")
    assert code == 2 and "distinct" in err


def test_keyid_spoofing_is_refused(seed_stack: Path, keys: dict[str, Path]) -> None:
    sign_cli(seed_stack, keys["mallory"], "--expires", EXPIRES)
    doc = envelope_of(seed_stack)
    alice_keyid = lodec.sign.load_public_key(f"{keys['alice']}.pub").keyid
    doc["signatures"][0]["keyid"] = alice_keyid  # mallory's signature claims to be alice's
    write_envelope(seed_stack, doc)
    report = refused(seed_stack, *trusted(keys, "alice"), codes=("signature_invalid", "threshold_not_met"))
    assert report["trust"]["signedBy"] == []


def test_rollback_to_an_older_signed_version_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    newer = with_version(signed_stack, "1.1.0")
    sign_cli(newer, keys["alice"], "--expires", EXPIRES)
    state = ["--state", signed_stack.parent / "state.json"]
    code, _, err = run_cli("verify", newer, *trusted(keys, "alice"), "--now", VERIFY_AT, *state)
    assert code == 0, err
    refused(signed_stack, *trusted(keys, "alice"), codes=("rollback",))


def test_same_version_with_a_different_digest_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    code, _, _ = verify_signed(signed_stack, *trusted(keys, "alice"))
    assert code == 0
    other = with_version(signed_stack, "1.0.0", description="same version, other content")
    sign_cli(other, keys["alice"], "--expires", EXPIRES)
    (other.parent / "state.json").write_bytes((signed_stack.parent / "state.json").read_bytes())
    refused(other, *trusted(keys, "alice"), codes=("version_conflict",))


def test_freeze_with_an_expired_envelope_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    code, out, err = run_cli("verify", "--json", signed_stack, *trusted(keys, "alice"), "--now", "2027-01-01T00:00:00Z",
                             "--state", signed_stack.parent / "state.json")
    assert code == 1 and [p["code"] for p in json.loads(out)["problems"]] == ["expired"]
    assert not (signed_stack.parent / "state.json").exists()  # a refused stack records nothing


def test_wrong_name_a_validly_signed_stack_served_as_another_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    refused(signed_stack, *trusted(keys, "alice"), "--name", "deploy-production", codes=("name_mismatch",))


def test_manifest_swapped_under_a_valid_envelope_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    data = json.loads(signed_stack.read_text())
    data["description"] = "edited after signing"
    signed_stack.write_bytes(lodec.manifest_json(data))
    refused(signed_stack, *trusted(keys, "alice"), codes=("digest_mismatch",))


def test_envelope_of_another_stack_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    other = with_version(signed_stack, "2.0.0", name="other-stack")
    sign_cli(other, keys["alice"], "--expires", EXPIRES)
    signed_stack.with_name(signed_stack.name + ".dsse").write_bytes(other.with_name(other.name + ".dsse").read_bytes())
    refused(signed_stack, *trusted(keys, "alice"), codes=("digest_mismatch",))


def test_step_edited_after_signing_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    lint = signed_stack.parent / "steps" / "lint.vein"
    data = bytearray(lint.read_bytes())
    data[-2] ^= 0x01
    lint.write_bytes(bytes(data))
    refused(signed_stack, *trusted(keys, "alice"), codes=("step_tampered",))


def test_step_swapped_with_a_repinned_manifest_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    # An insider recompiles a step and repins it; the signatures no longer cover the manifest.
    src = json.loads(SEED_SOURCES["lint"].read_text())
    src["inputs"]["target"] = "evil/"
    vein = lodec.compile_value(src, lodec.skill_step_schema())
    (signed_stack.parent / "steps" / "lint.vein").write_bytes(vein.data)
    data = json.loads(signed_stack.read_text())
    data["stepFingerprints"]["lint"] = vein.fingerprint
    signed_stack.write_bytes(lodec.manifest_json(data))
    refused(signed_stack, *trusted(keys, "alice"), codes=("digest_mismatch",))


def test_envelope_with_duplicate_json_keys_is_refused(signed_stack: Path, keys: dict[str, Path]) -> None:
    env = signed_stack.with_name(signed_stack.name + ".dsse")
    text = env.read_text()
    env.write_text(text.replace('"payloadType"', '"payload": "e30=",\n  "payloadType"', 1))
    refused(signed_stack, *trusted(keys, "alice"), codes=("envelope_malformed",))


def test_too_many_signatures_are_refused_before_checking(signed_stack: Path, keys: dict[str, Path]) -> None:
    doc = envelope_of(signed_stack)
    doc["signatures"] = doc["signatures"] * 40
    write_envelope(signed_stack, doc)
    refused(signed_stack, *trusted(keys, "alice"), codes=("limit_exceeded",))


def test_dsse_keyid_is_only_a_hint(signed_stack: Path, keys: dict[str, Path]) -> None:
    # Not an attack that must fail: a missing or wrong keyid on a genuine signature still verifies.
    doc = envelope_of(signed_stack)
    doc["signatures"][0].pop("keyid")
    doc["signatures"][1]["keyid"] = "not-a-keyid"
    write_envelope(signed_stack, doc)
    code, report, _ = verify_signed(signed_stack, *trusted(keys, "alice", "bob"), "--threshold", "2")
    assert code == 0, report["problems"]
    assert parse_envelope(signed_stack.with_name(signed_stack.name + ".dsse").read_bytes()).signatures[0].keyid is None
