"""Ed25519 SPKI PEM read without cryptography's serialization package: same key, keyid and verdict as its loader."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from lodec.errors import KeyInvalid
from lodec.sign import keys
from tests.conftest import ROOT


def reference(data: bytes) -> tuple[str, bytes] | str:
    """What cryptography's PEM loader makes of ``data``: (keyid, raw key) or the refusal."""
    try:
        key = serialization.load_pem_public_key(data.strip())
    except Exception:
        return "refused"
    if not hasattr(key, "public_bytes_raw") or key.__class__.__name__.lstrip("_") != "Ed25519PublicKey":
        return "unsupported"
    return keys.keyid_of(key), key.public_bytes_raw()  # type: ignore[arg-type]


def ours(data: bytes) -> tuple[str, bytes] | str:
    try:
        key = keys.parse_public_key(data)
    except KeyInvalid as exc:
        return "unsupported" if exc.code == "key_unsupported" else "refused"
    return key.keyid, key.key.public_bytes_raw()


def pem_of(der: bytes) -> bytes:
    return b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(der) + b"\n-----END PUBLIC KEY-----\n"


def test_generated_keys_read_the_same_by_both_paths() -> None:
    for _ in range(50):
        pem = keys.generate_key().public.pem()
        assert keys._ed25519_spki_pem(pem.strip()) is not None  # the fast path is the one taken
        assert ours(pem) == reference(pem)


def test_attack_key_files_crafted_for_the_fast_path_get_the_loaders_key_and_keyid() -> None:
    """A trusted key file that lodec's fast path might read as a different key (and keyid) than the
    PEM loader: another line layout, a second key appended, a look-alike OID, a bad point, trailing bytes.
    Each gets exactly the loader's verdict, key and keyid, or trust would name a key nobody configured."""
    good = keys.generate_key().public.pem()
    other = keys.generate_key().public.pem()
    der = base64.b64decode(good.split(b"\n")[1])
    variants = [
        good + other,                         # two keys in one file: the loader takes the first
        other.replace(b"-----END PUBLIC KEY-----\n", b"") + good.replace(b"-----BEGIN PUBLIC KEY-----\n", b""),
        good.replace(b"\n", b"\r\n"),
        good + b"\n\n",
        good.replace(b"PUBLIC KEY", b"PUBLIC  KEY"),
        pem_of(der[:-1]),                     # short
        pem_of(der + b"\x00"),                # trailing byte
        pem_of(b"\x30\x2b" + der[2:] + b"\x00"),
        pem_of(bytes([der[0], der[1] ^ 1]) + der[2:]),
        pem_of(der[:8] + b"\x71" + der[9:]),  # OID 1.3.101.113 (Ed448) with an Ed25519-sized key
        pem_of(der[:-32] + b"\xff" * 32),     # not a point on the curve? the loader decides
        good.replace(base64.b64encode(der), base64.b64encode(der)[:-1] + b"!"),
        good.replace(base64.b64encode(der), base64.b64encode(der)[:30] + b"\n" + base64.b64encode(der)[30:]),
    ]
    for other in (ec.generate_private_key(ec.SECP256R1()), ed448.Ed448PrivateKey.generate()):
        variants.append(other.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    for data in variants:
        assert ours(data) == reference(data), data


def test_a_signed_verify_does_not_import_the_serialization_package(tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = keys.generate_key()
    (tmp_path / "k.pub").write_bytes(key.public.pem())
    code = ("import sys; from lodec.sign.keys import load_public_key; load_public_key(sys.argv[1]); "
            "print('cryptography.hazmat.primitives.serialization' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "k.pub")], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("text", [b"", b"-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----"])
def test_empty_pem_refused(text: bytes) -> None:
    with pytest.raises(KeyInvalid):
        keys.parse_public_key(text)
