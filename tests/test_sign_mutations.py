"""Mutation sweeps: no single-byte change to an envelope or a pack yields other verified content.

A mutation may leave verification passing only where the bytes are not
authenticated (a keyid hint, JSON whitespace); then the verified manifest
and steps must be exactly the original ones. Every other mutation is
refused with a stable code, never an exception.
"""

from __future__ import annotations

import random
from pathlib import Path

from lodec.format.pack import read_pack
from lodec.sign.pack import verify_pack
from lodec.sign import load_public_key, policy_from_keys, verify_signed_stack
from lodec.sign.statement import parse_time
from lodec.errors import LodecError

from .conftest import VERIFY_AT, run_cli


def _policy(keys: dict[str, Path]):  # type: ignore[no-untyped-def]
    return policy_from_keys([load_public_key(f"{keys[n]}.pub") for n in ("alice", "bob")], 2)


def test_every_byte_of_the_envelope_flipped(signed_stack: Path, keys: dict[str, Path]) -> None:
    manifest = signed_stack.read_bytes()
    envelope = signed_stack.with_name(signed_stack.name + ".dsse").read_bytes()
    steps = {p.stem: p.read_bytes() for p in (signed_stack.parent / "steps").iterdir()}
    policy, now = _policy(keys), parse_time(VERIFY_AT)
    passed = refused = 0
    for i in range(len(envelope)):
        mutated = envelope[:i] + bytes([envelope[i] ^ 0x01]) + envelope[i + 1 :]
        report = verify_signed_stack(manifest, mutated, steps.get, policy=policy, now=now)
        if report.ok:
            v = report.require()
            assert v.manifest_bytes == manifest and {n: s.data for n, s in v.steps.items()} == steps
            passed += 1
        else:
            assert report.problems and all(p.code for p in report.problems)
            refused += 1
    assert refused > len(envelope) * 0.8  # payload and signatures dominate the file
    assert passed > 0  # the keyid hints are not authenticated, by design (DSSE)


def test_random_bit_flips_in_a_signed_pack(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run_cli("pack", signed_stack, "-o", tmp_path / "cr.lodepack")
    assert code == 0, err
    data = (tmp_path / "cr.lodepack").read_bytes()
    original = read_pack(data)
    policy, now = _policy(keys), parse_time(VERIFY_AT)
    rng = random.Random(20261121)
    for _ in range(400):
        i, bit = rng.randrange(len(data)), 1 << rng.randrange(8)
        mutated = data[:i] + bytes([data[i] ^ bit]) + data[i + 1 :]
        try:
            pack = read_pack(mutated)
            report = verify_pack(pack, policy=policy, now=now)
        except LodecError as exc:
            assert exc.code
            continue
        if report.ok:
            v = report.require()
            assert v.manifest_bytes == original.manifest
            assert {n: s.data for n, s in v.steps.items()} == dict(original.steps)
