"""A deterministic differential run of the native module (lodec/_native.c) against the Python reference.

Run under the sanitizers by ``native_asan.py check`` and by
tests/test_native_sanitized.py (``LODEC_NATIVE_SO`` names the sanitized
build); without ``LODEC_NATIVE_SO`` it checks the regular build.

    python fuzz/native_check.py [--count N] [--seed S]

Inputs (all seeded, so a run is reproducible): every seed of the ``native``
and ``vein`` targets and every kept finding, each with N mutations and
under random limits; veins of random records of every schema (ASCII, and
with non-ASCII text), mutated; arbitrary bytes with and without the header;
hand-made heads truncated at the end; a 20,000-entry map; the Decoder
constructor and ``decode`` given wrong arguments; ``read_regular`` on the
plants an attacker could put at a step (FIFO, link, folder, over the limit,
bad names and descriptors), compared with the Python read. Exit 0 when every
input agrees; an AssertionError (exit 1) names the first that does not.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import native_diff
from native_diff import DEFAULT, SCHEMAS, case_of, check, input_of, random_veins

import lodec
from lodec import files
from lodec.format import codec
from lodec.format.codec import header
from lodec.format.schema import BUILTIN_SCHEMAS

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three byte edits (flip, insert, delete, replace) in the body (the header too, one time in ten)."""
    out = bytearray(data)
    skip = 2 if data[0] & 0x80 or rng.random() < 0.1 else 2 + len(header(SCHEMAS[0]))
    for _ in range(rng.randint(1, 3)):
        if len(out) <= skip:
            out.append(rng.randrange(256))
            continue
        i = rng.randrange(skip, len(out))
        op = rng.randrange(4)
        if op == 0:
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            out.insert(i, rng.choice((0x00, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1F, 0x40, 0x5B, 0x60, 0x7B, 0x80,
                                      0x9B, 0xA0, 0xBB, 0xC0, 0xF4, 0xF5, 0xF6, 0xFF, rng.randrange(256))))
        elif op == 2:
            del out[i]
        else:
            out[i] = rng.randrange(256)
    return bytes(out)


def _seed_inputs() -> list[bytes]:
    inputs = []
    for folder in ("native",):
        for base in (FUZZ / "seeds", ROOT / "tests" / "fuzz_regressions"):
            inputs += [p.read_bytes() for p in sorted((base / folder).glob("*")) if p.is_file()]
    for base in (FUZZ / "seeds", ROOT / "tests" / "fuzz_regressions"):  # the vein target's layout: no limits byte
        for p in sorted((base / "vein").glob("*")):
            raw = p.read_bytes()
            if raw:
                inputs.append(bytes([(raw[0] & 0x80) | (raw[0] & 0x7F) % len(BUILTIN_SCHEMAS), DEFAULT]) + raw[1:])
    return inputs


def _truncated_heads() -> list[bytes]:
    """Every head of every major type with a 1-8 byte argument, cut short or complete, at the end of a body."""
    out = []
    for index in (0, 5, 9):  # skill-step-v1, skill-tree-v1 (map<string,bytes>), NativeEveryType
        prefix = header(SCHEMAS[index])
        for major in range(8):
            for ai in range(24, 32):
                ib = bytes([major << 5 | ai])
                for tail in (b"", b"\xff" * 3, b"\xff" * 7, b"\x00" * 8, b"\x80" + b"\x00" * 7):
                    for body in (ib + tail, b"\xa1\x01" + ib + tail, b"\xa1\x01\x81" + ib + tail,
                                 b"\xa1\x01\xa1\x61k" + ib + tail, b"\xa1" + ib + tail):
                        out.append(input_of(index, DEFAULT, prefix + body))
                        out.append(input_of(index, 0x07, prefix + body))
    return out


def _big_map() -> bytes:
    tree = native_diff.SCHEMAS[5]  # skill-tree-v1: map<string,bytes>
    assert tree.name == "SkillTree", tree.name
    record = {"files": {f"f{i:05d}": bytes([i % 256]) * (i % 7) for i in range(20000)}}
    return input_of(5, DEFAULT, native_diff.lodec.encode_record(tree, record).data)


def check_inputs(count: int, rng: random.Random) -> Counter[str]:
    seen: Counter[str] = Counter()
    seeds = _seed_inputs()
    veins = random_veins(rng, 40 * len(SCHEMAS)) + random_veins(rng, 10 * len(SCHEMAS), ascii_only=False)
    inputs = list(seeds) + veins
    for data in seeds + veins:
        inputs += [_mutate(data, rng) for _ in range(count)]
        inputs += [data[:1] + bytes([rng.randrange(0x80)]) + data[2:] for _ in range(2)]  # under small limits
    for _ in range(40 * count):
        n = rng.randrange(80)
        inputs.append(bytes([rng.randrange(256), rng.choice((DEFAULT, rng.randrange(256)))]) + rng.randbytes(n))
    inputs += _truncated_heads()
    inputs.append(_big_map())
    for data in inputs:
        case = case_of(data)
        if case is not None:
            seen[check(*case)] += 1
    return seen


def check_decoder_arguments(module: object) -> int:
    """The constructor refuses bad plans with TypeError/ValueError; ``decode`` returns None for what is not bytes."""
    Decoder = module.Decoder  # type: ignore[attr-defined]
    hdr = header(SCHEMAS[0])
    good = ((1, "a", 0, 0, True),)
    bad = [
        ((b"short", 10, 1, 1, good), ValueError), ((hdr + b"x", 10, 1, 1, good), ValueError),
        ((hdr, 10, 1, 1, [(1, "a", 0, 0, True)]), TypeError), ((hdr, 10, 1, 1, ((1, "a", 0, 0),)), TypeError),
        ((hdr, 10, 1, 1, ((1, b"a", 0, 0, True),)), TypeError), ((hdr, 10, 1, 1, ([1, "a", 0, 0, True],)), TypeError),
        ((hdr, 10, 1, 1, ((1, "a", 3, 0, True),)), ValueError), ((hdr, 10, 1, 1, ((1, "a", 0, 4, True),)), ValueError),
        ((hdr, 10, 1, 1, ((1, "a", -1, 0, True),)), ValueError),
        ((hdr, 10, 1, 1, ((2, "a", 0, 0, True), (2, "b", 0, 0, True))), ValueError),
        ((hdr, 10, 1, 1, ((2, "a", 0, 0, True), (1, "b", 0, 0, True))), ValueError),
        ((hdr, 10, 1, 1, (("1", "a", 0, 0, True),)), TypeError), ((hdr, 2**70, 1, 1, good), OverflowError),
        ((None, 10, 1, 1, good), TypeError), ((hdr, 10, 1, 1, None), TypeError),
    ]
    for args, error in bad:
        try:
            Decoder(*args)
        except error:
            continue
        raise AssertionError(f"Decoder{args!r} did not raise {error.__name__}")
    checked = len(bad)
    for longest in (-1, 0, 12, 13, 14, 2**62):
        decoder = Decoder(hdr, longest, 2**64 - 1, 2**64 - 1, ((1, "a", 0, 0, True), (2**64 - 1, "z", 2, 3, False)))
        vein = hdr + b"\xa1\x01\x61x"
        expected = {"a": "x"} if longest >= len(vein) else None
        assert decoder.decode(vein) == expected, (longest, decoder.decode(vein))
        for other in (bytearray(vein), memoryview(vein), "x", None, 1, hdr[:5]):
            assert decoder.decode(other) is None, other
        checked += 1
    empty = Decoder(hdr, 100, 10, 10, ())
    assert empty.decode(hdr + b"\xa0") == {} and empty.decode(hdr + b"\xa1\x01\x00") is None
    # vein before bind_vein, and bind_vein given what is not a Vein type with settable slots.
    try:
        empty.vein(hdr + b"\xa0")
    except RuntimeError:
        checked += 1
    else:
        raise AssertionError("Decoder.vein before bind_vein did not raise RuntimeError")

    class NoSlots:
        schema = record = data = fingerprint = None

    compiled = codec._compiled(SCHEMAS[0])
    for args, error in [((), TypeError), ((lodec.Vein,), TypeError), (("Vein", None, None), TypeError),
                        ((NoSlots, None, None), TypeError), ((int, None, None), AttributeError)]:
        try:
            empty.bind_vein(*args)
        except error:
            checked += 1
            continue
        raise AssertionError(f"bind_vein{args!r} did not raise {error.__name__}")
    empty.bind_vein(lodec.Vein, SCHEMAS[0], compiled.hasher)
    for _ in range(3):  # bound again: the previous references are released, not leaked or freed twice
        empty.bind_vein(lodec.Vein, SCHEMAS[0], compiled.hasher.copy())
    vein = empty.vein(hdr + b"\xa0")
    assert type(vein) is lodec.Vein and vein.record == {} and vein.fingerprint.startswith("blake3:"), vein
    for other in (bytearray(hdr + b"\xa0"), hdr + b"\xa1", None, "x"):
        assert empty.vein(other) is None, other

    class BadDigest:
        def copy(self) -> BadDigest:
            return self

        def update(self, data: object) -> None:
            pass

        def digest(self) -> bytes:
            return b"short"

    class Borrowed:  # Vein's slot descriptors on a smaller type: setting them must refuse, not write past it
        schema, record, data, fingerprint = lodec.Vein.schema, lodec.Vein.record, lodec.Vein.data, lodec.Vein.fingerprint

    empty.bind_vein(Borrowed, SCHEMAS[0], compiled.hasher)
    try:
        empty.vein(hdr + b"\xa0")
    except TypeError:
        checked += 1
    else:
        raise AssertionError("Vein's slots set on another type did not raise TypeError")
    empty.bind_vein(lodec.Vein, SCHEMAS[0], BadDigest())
    try:
        empty.vein(hdr + b"\xa0")
    except TypeError:
        checked += 1
    else:
        raise AssertionError("a digest that is not 32 bytes did not raise TypeError")
    return checked + 2


def check_read_regular(module: object, rng: random.Random) -> int:
    """``read_regular`` against the Python read on plants and on bad arguments."""
    read_regular = module.read_regular  # type: ignore[attr-defined]
    checked = 0
    with tempfile.TemporaryDirectory(prefix="lodec-native-check-") as tmp:
        d = Path(tmp)
        sizes = (0, 1, 15, 16, 17, 63, 64, 65, 4095, 4096, 4097, 65536, 1 << 20)
        for size in sizes:
            (d / f"file-{size}").write_bytes(rng.randbytes(size))
        (d / "a-dir").mkdir()
        os.mkfifo(d / "a-fifo")
        (d / "a-link").symlink_to(d / "file-16")
        (d / "a-dangling-link").symlink_to(d / "nowhere")
        (d / "a-dir" / "inner").write_bytes(b"inner")
        names = [f"file-{s}" for s in sizes] + ["a-dir", "a-fifo", "a-link", "a-dangling-link", "absent", "",
                                                 ".", "..", "a-dir/inner", "a-dir/../file-1", "é", "x" * 300]
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in names:
                for limit in (0, 1, 16, 64, 4096, 1 << 20, (1 << 20) - 1, 2**62):
                    got = read_regular(fd, name, limit)
                    assert got == files._read_whole_at(fd, name, limit), (name, limit)
                    checked += 1
            not_a_dir = os.open(d / "file-1", os.O_RDONLY)
            try:
                for dir_fd in (-1, 10**6, not_a_dir):
                    assert read_regular(dir_fd, "file-1", 64) is None, dir_fd
                    checked += 1
            finally:
                os.close(not_a_dir)
            for args, error in [((fd, "a\0b", 64), ValueError), ((fd, "\udcff", 64), UnicodeEncodeError),
                                ((fd, "file-1", -1), ValueError), ((2**40, "file-1", 1), ValueError),
                                ((2**70, "file-1", 1), OverflowError), ((fd, "file-1", 2**70), OverflowError),
                                ((fd, b"file-1", 1), TypeError), (("3", "file-1", 1), TypeError),
                                ((fd, "file-1"), TypeError), ((fd, "file-1", 1, 2), TypeError)]:
                try:
                    read_regular(*args)
                except error:
                    checked += 1
                    continue
                raise AssertionError(f"read_regular{args!r} did not raise {error.__name__}")
        finally:
            os.close(fd)
    return checked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=16, help="mutations per seed and per generated vein (default 16)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    so = os.environ.get("LODEC_NATIVE_SO")
    module = native_diff.use_native(so) if so else __import__("lodec._native", fromlist=["Decoder"])
    assert codec._NativeDecoder is module.Decoder
    start = time.perf_counter()
    rng = random.Random(args.seed)
    seen = check_inputs(args.count, rng)
    calls = check_decoder_arguments(module)
    reads = check_read_regular(module, rng)
    print(f"native_check: {module.__file__}: {sum(seen.values())} veins agree with the reference "
          f"({seen['accepted']} settled natively, {seen['asked']} left to Python); {calls} Decoder argument checks; "
          f"{reads} read_regular checks; {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
