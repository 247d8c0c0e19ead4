"""format.fingerprint.file_digests: the one BLAKE3 + SHA-256 pair of a file's bytes, and the signing side's copy.

``lodec.sign.statement.subject_digests`` computes the same pair with SHA-256
from ``cryptography`` (loaded anyway for Ed25519), so that a signed verify
does not load ``hashlib``'s OpenSSL too; both must give one value for every
input, or a signature made by one would not verify under the other.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from lodec.format.fingerprint import file_digests
from lodec.sign.keys import sha256_hex
from lodec.sign.statement import subject_digests

ABC = {
    "blake3": "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
    "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
}


def test_file_digests_are_plain_hashes_of_the_bytes() -> None:
    # Published test vectors for "abc": BLAKE3 (unkeyed) and SHA-256 (FIPS 180-2).
    assert file_digests(b"abc") == ABC


def test_subject_digests_are_the_same_plain_hashes() -> None:
    assert subject_digests(b"abc") == ABC
    # SHA-256 of the empty string and of the 56-byte two-block vector (FIPS 180-2, appendix B.2).
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") == (
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")


@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 1000, 65536, 1 << 20])
def test_subject_digests_equal_file_digests(size: int) -> None:
    data = os.urandom(size)
    assert subject_digests(data) == file_digests(data)
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
