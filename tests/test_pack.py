"""Packs (.lodepack): deterministic, verified from the pack alone, extracted only after verification.

Attacks on the container (issue 3): mix-and-match, endless data, path
traversal, duplicate members; each refused with exit 1 and nothing written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cbor2
import pytest

import lodec
from lodec.format.cbor import encode
from lodec.format.codec import header
from lodec.format.pack import MAX_MEMBER_BYTES, MAX_PACK_BYTES, read_pack
from lodec.format.schema import builtin_schema_bytes, lodepack_schema

from .conftest import EXPIRES, SEED_SOURCES, VERIFY_AT, run_cli, sign_cli, verify_signed


def pack(manifest: Path, out: Path) -> bytes:
    code, _, err = run_cli("pack", manifest, "-o", out)
    assert code == 0, err
    return out.read_bytes()


def trusted(keys: dict[str, Path], *names: str) -> list[str]:
    return [a for n in names for a in ("--key", f"{keys[n]}.pub")]


def members(data: bytes) -> dict[int, object]:
    """The pack's CBOR body as {field id: value}."""
    return cbor2.loads(data[13:])


def craft(fields: dict[int, object]) -> bytes:
    """A pack built by hand (canonical CBOR, any member names or sizes)."""
    return header(lodepack_schema()) + encode(fields)


def unpack_refused(pack_file: Path, keys: dict[str, Path], code_expected: str) -> None:
    out = pack_file.parent / "out"
    code, _, err = run_cli("unpack", pack_file, "-o", out, *trusted(keys, "alice"), "--now", VERIFY_AT,
                           "--state", pack_file.parent / "state.json")
    assert code == 1 and "Traceback" not in err and f"[{code_expected}]" in err, err
    assert not out.exists()


def test_pack_built_twice_is_byte_identical(signed_stack: Path, tmp_path: Path) -> None:
    first = pack(signed_stack, tmp_path / "a.lodepack")
    second = pack(signed_stack, tmp_path / "b.lodepack")
    assert first == second
    code, out, _ = run_cli("pack", "--json", signed_stack, "-o", tmp_path / "c.lodepack")
    assert json.loads(out)["digest"]["sha256"] == hashlib.sha256(first).hexdigest()


def test_unsigned_seed_pack_golden_digest(seed_stack: Path, tmp_path: Path) -> None:
    data = pack(seed_stack, tmp_path / "seed.lodepack")
    golden = json.loads((Path(__file__).parent / "golden" / "seed-vectors.json").read_text())["pack"]
    assert len(data) == golden["bytes"]
    assert hashlib.sha256(data).hexdigest() == golden["sha256"]


def test_signed_pack_verifies_from_the_pack_alone(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "download"
    elsewhere.mkdir()
    pack(signed_stack, elsewhere / "cr.lodepack")
    for f in list(signed_stack.parent.glob("*.json*")) + [signed_stack.parent / "steps"]:
        f.rename(tmp_path / f"gone-{f.name}")  # nothing beside the pack remains
    code, report, _ = verify_signed(elsewhere / "cr.lodepack", *trusted(keys, "alice", "bob"), "--threshold", "2")
    assert code == 0 and report["ok"] and len(report["trust"]["signedBy"]) == 2


def test_unpack_writes_exactly_the_verified_bytes(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    data = pack(signed_stack, tmp_path / "cr.lodepack")
    out = tmp_path / "out"
    code, _, err = run_cli("unpack", tmp_path / "cr.lodepack", "-o", out, *trusted(keys, "alice", "bob"),
                           "--threshold", "2", "--now", VERIFY_AT, "--state", tmp_path / "state.json")
    assert code == 0, err
    m = members(data)
    assert (out / signed_stack.name).read_bytes() == m[2] == signed_stack.read_bytes()
    assert (out / f"{signed_stack.name}.dsse").read_bytes() == m[3]
    for name in SEED_SOURCES:
        assert (out / "steps" / f"{name}.vein").read_bytes() == (signed_stack.parent / "steps" / f"{name}.vein").read_bytes()
    assert (out / "schemas" / "step.lode").read_bytes() == builtin_schema_bytes("skill-step-v1")
    assert all(p.is_file() and not p.is_symlink() for p in out.rglob("*") if not p.is_dir())
    code, _, err = run_cli("verify", out / signed_stack.name, *trusted(keys, "alice"), "--now", VERIFY_AT,
                           "--state", tmp_path / "state.json")
    assert code == 0, err


def test_unpack_refuses_a_non_empty_output(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    pack(signed_stack, tmp_path / "cr.lodepack")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run_cli("unpack", tmp_path / "cr.lodepack", "-o", out, *trusted(keys, "alice"),
                           "--now", VERIFY_AT, "--state", tmp_path / "state.json")
    assert code == 1 and "[output_not_empty]" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_unpack_without_keys_is_a_usage_error(signed_stack: Path, tmp_path: Path) -> None:
    pack(signed_stack, tmp_path / "cr.lodepack")
    code, _, err = run_cli("unpack", tmp_path / "cr.lodepack", "-o", tmp_path / "out")
    assert code == 2 and "--key" in err and not (tmp_path / "out").exists()


def test_mix_and_match_step_from_another_version_in_pack(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    v1 = members(pack(signed_stack, tmp_path / "v1.lodepack"))
    # Version 2 changes the lint step and is signed too.
    src = json.loads(SEED_SOURCES["lint"].read_text())
    src["inputs"]["configPath"] = ".eslintrc.v2.json"
    vein2 = lodec.compile_value(src, lodec.skill_step_schema())
    (signed_stack.parent / "steps" / "lint.vein").write_bytes(vein2.data)
    data = json.loads(signed_stack.read_text())
    data["version"], data["stepFingerprints"]["lint"] = "2.0.0", vein2.fingerprint
    signed_stack.write_bytes(lodec.manifest_json(data))
    signed_stack.with_name(signed_stack.name + ".dsse").unlink()
    sign_cli(signed_stack, keys["alice"], "--expires", EXPIRES)
    v2 = members(pack(signed_stack, tmp_path / "v2.lodepack"))
    # Each pack is fine alone; v1's manifest and signatures with v2's lint step is not.
    mixed = dict(v1)
    mixed[6] = {**v1[6], "lint": v2[6]["lint"]}  # type: ignore[dict-item]
    (tmp_path / "mixed.lodepack").write_bytes(craft(mixed))
    code, report, err = verify_signed(tmp_path / "mixed.lodepack", *trusted(keys, "alice"))
    assert code == 1 and "step_tampered" in [p["code"] for p in report["problems"]], err
    unpack_refused(tmp_path / "mixed.lodepack", keys, "step_tampered")


def test_extra_unlisted_member_in_pack_is_refused(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    m = members(pack(signed_stack, tmp_path / "cr.lodepack"))
    m[6] = {**m[6], "smuggled": b"VEIN..."}  # type: ignore[dict-item]
    (tmp_path / "extra.lodepack").write_bytes(craft(m))
    code, report, _ = verify_signed(tmp_path / "extra.lodepack", *trusted(keys, "alice"))
    assert code == 1 and [p["code"] for p in report["problems"]] == ["pack_member_unlisted"]


def test_endless_data_an_oversized_pack_member_is_refused(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    m = members(pack(signed_stack, tmp_path / "cr.lodepack"))
    m[6] = {**m[6], "lint": b"\0" * (MAX_MEMBER_BYTES + 1)}  # type: ignore[dict-item]
    (tmp_path / "big.lodepack").write_bytes(craft(m))
    unpack_refused(tmp_path / "big.lodepack", keys, "limit_exceeded")


def test_endless_data_a_declared_length_beyond_the_file_is_refused_before_allocating(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    m = members(pack(signed_stack, tmp_path / "cr.lodepack"))
    # Fields 1-5 as packed, then field 6: one member claiming 2**40 bytes, and the file ends.
    head = bytes([0xA0 + len(m)]) + encode({k: v for k, v in m.items() if k != 6})[1:]
    data = header(lodepack_schema()) + head + b"\x06" + b"\xa1" + encode("lint") + b"\x5b" + (2**40).to_bytes(8, "big")
    (tmp_path / "endless.lodepack").write_bytes(data)
    with pytest.raises(lodec.LodecError) as info:
        read_pack(data)
    assert info.value.code == "limit_exceeded"
    unpack_refused(tmp_path / "endless.lodepack", keys, "limit_exceeded")


def test_endless_data_a_pack_over_the_size_cap_is_refused_unread(keys: dict[str, Path], tmp_path: Path) -> None:
    big = tmp_path / "huge.lodepack"
    with open(big, "wb") as fh:
        fh.write(b"VEIN")
        fh.truncate(MAX_PACK_BYTES + 1)  # sparse: no disk used, and it must not be read
    unpack_refused(big, keys, "limit_exceeded")


@pytest.mark.parametrize("name", ["../evil", "../../etc/cron.d/x", "/tmp/abs", "a/b", "..", ".hidden\0x"])
def test_path_traversal_in_a_pack_member_name_is_refused(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path, name: str
) -> None:
    m = members(pack(signed_stack, tmp_path / "cr.lodepack"))
    m[6] = {**m[6], name: m[6]["lint"]}  # type: ignore[dict-item]
    (tmp_path / "evil.lodepack").write_bytes(craft(m))
    unpack_refused(tmp_path / "evil.lodepack", keys, "unsafe_name")
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_path_traversal_in_the_pack_manifest_name_is_refused(
    signed_stack: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    m = members(pack(signed_stack, tmp_path / "cr.lodepack"))
    m[1] = "../stack.json"
    (tmp_path / "evil.lodepack").write_bytes(craft(m))
    unpack_refused(tmp_path / "evil.lodepack", keys, "unsafe_name")


def test_duplicate_members_in_a_pack_are_refused(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    m = members(pack(signed_stack, tmp_path / "cr.lodepack"))
    steps: dict[str, bytes] = m[6]  # type: ignore[assignment]
    # Field 6 by hand: the lint member twice (a canonical map cannot hold it twice).
    dup = bytes([0xA0 + len(steps) + 1])
    for k in sorted(steps, key=lambda s: (len(s.encode()), s.encode())):
        dup += encode(k) + encode(steps[k])
        if k == "lint":
            dup += encode(k) + encode(b"VEIN other lint")
    head = bytes([0xA0 + len(m)]) + encode({k: v for k, v in m.items() if k != 6})[1:]
    (tmp_path / "dup.lodepack").write_bytes(header(lodepack_schema()) + head + b"\x06" + dup)
    unpack_refused(tmp_path / "dup.lodepack", keys, "duplicate_key")
