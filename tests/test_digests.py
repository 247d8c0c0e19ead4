"""format.fingerprint.file_digests: the one BLAKE3 + SHA-256 pair of a file's bytes."""

from __future__ import annotations

from lodec.format.fingerprint import file_digests
from lodec.sign import statement


def test_file_digests_are_plain_hashes_of_the_bytes() -> None:
    # Published test vectors for "abc": BLAKE3 (unkeyed) and SHA-256 (FIPS 180-2).
    assert file_digests(b"abc") == {
        "blake3": "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }


def test_statement_reexports_the_one_helper() -> None:
    assert statement.file_digests is file_digests
