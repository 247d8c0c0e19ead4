"""Ed25519 keys: generate, load (PEM or OpenSSH), keyid.

Private keys are PKCS#8 PEM (RFC 5208/5958; encrypted with the
``cryptography`` library's best available PKCS#8 encryption when a
passphrase is given) or OpenSSH private keys. Public keys are
SubjectPublicKeyInfo PEM (RFC 8410) or one ``ssh-ed25519 AAAA… comment``
line. Only Ed25519 (RFC 8032) is accepted.

The keyid is ``sha256:<hex>`` of the key's DER SubjectPublicKeyInfo
(44 bytes for Ed25519), so a PEM key and the same key in OpenSSH form have
one keyid, and anyone can recompute it:
``openssl pkey -pubin -in K.pub -outform DER | sha256sum``.
The keyid is only a hint in envelopes (DSSE v1): trust decisions use the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import KeyInvalid
from ..format.records import FrozenRecord

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAX_KEY_FILE_BYTES = 64 * 1024


class PublicKey(FrozenRecord):
    """A trusted or signing public key.

    Attributes:
        key: the ``cryptography`` Ed25519 public key.
        keyid: ``sha256:<64 hex>`` of the DER SubjectPublicKeyInfo.
        source: where it came from (a path or label), for messages.
    """

    __slots__ = ("key", "keyid", "source")
    key: Ed25519PublicKey
    keyid: str
    source: str

    def __init__(self, key: Ed25519PublicKey, keyid: str, source: str) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "keyid", keyid)
        object.__setattr__(self, "source", source)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` (64 bytes, RFC 8032) is valid for ``message`` under this key."""
        try:
            self.key.verify(signature, message)
        except _invalid_signature():  # evaluated only when verify raises: a valid signature imports nothing more
            return False
        return True

    def pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM (RFC 8410)."""
        from cryptography.hazmat.primitives import serialization

        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _invalid_signature() -> type[Exception]:
    from cryptography.exceptions import InvalidSignature

    return InvalidSignature


class PrivateKey(FrozenRecord):
    """A signing key with its public half (``public.keyid`` names it)."""

    __slots__ = ("key", "public")
    key: Ed25519PrivateKey
    public: PublicKey

    def __init__(self, key: Ed25519PrivateKey, public: PublicKey) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "public", public)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature (RFC 8032, deterministic) of ``message``."""
        return self.key.sign(message)


def sha256_hex(data: bytes) -> str:
    """SHA-256 (FIPS 180-4) of ``data`` as 64 lowercase hex digits, what ``sha256sum`` prints.

    Computed with ``cryptography``'s ``hashes``, which its Ed25519 module has
    already loaded, rather than ``hashlib``: a signed verify then does not
    load a second OpenSSL (``hashlib``'s ``_hashlib``, about 2 ms).
    """
    from cryptography.hazmat.primitives.hashes import SHA256, Hash

    h = Hash(SHA256())
    h.update(data)
    return h.finalize().hex()


def keyid_of(key: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo of ``key``."""
    from cryptography.hazmat.primitives import serialization

    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + sha256_hex(der)


def _public(key: Ed25519PublicKey, source: str) -> PublicKey:
    return PublicKey(key, keyid_of(key), source)


def _unsupported(key: object, source: str) -> KeyInvalid:
    name = type(key).__name__.lstrip("_")
    return KeyInvalid(f"{name} is not supported; lodec signs with Ed25519 keys only", code="key_unsupported", file=source)


def generate_key() -> PrivateKey:
    """A new random Ed25519 key pair."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return PrivateKey(key, _public(key.public_key(), "<generated>"))


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM of ``key``; encrypted (PKCS#8 ``BestAvailableEncryption``) if ``passphrase`` is given."""
    from cryptography.hazmat.primitives import serialization

    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def parse_private_key(data: bytes, *, source: str = "<key>", passphrase: bytes | None = None) -> PrivateKey:
    """Parse a PKCS#8 PEM or OpenSSH Ed25519 private key.

    Raises:
        KeyInvalid: code ``key_invalid`` (malformed, or a public key given),
            ``key_encrypted`` (encrypted and no passphrase), ``key_passphrase``
            (wrong passphrase), ``key_unsupported`` (not Ed25519).
    """
    from cryptography.hazmat.primitives import serialization

    text = data.lstrip()
    if text.startswith(b"ssh-") or b"PUBLIC KEY-----" in text[:64]:
        raise KeyInvalid("this is a public key; signing needs the private key (NAME.key)", file=source)
    key: object
    try:
        if text.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
            key = serialization.load_ssh_private_key(data, passphrase)
        else:
            key = serialization.load_pem_private_key(data, passphrase)
    except TypeError as exc:
        # cryptography: "Password was not given but private key is encrypted" (or the reverse).
        if passphrase is None:
            raise KeyInvalid(
                "the key is encrypted; pass --passphrase-env VAR naming a variable that holds its passphrase",
                code="key_encrypted", file=source,
            ) from None
        raise KeyInvalid(f"cannot use a passphrase with this key: {exc}", file=source) from None
    except ValueError as exc:
        if passphrase is not None and ("password" in str(exc).lower() or "decrypt" in str(exc).lower()):
            raise KeyInvalid("wrong passphrase, or the key is corrupted", code="key_passphrase", file=source) from None
        raise KeyInvalid(f"not a PKCS#8 PEM or OpenSSH private key ({exc})", file=source) from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm and others for odd input
        raise KeyInvalid(f"not a usable private key ({type(exc).__name__}: {exc})", file=source) from None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not isinstance(key, Ed25519PrivateKey):
        raise _unsupported(key, source)
    return PrivateKey(key, _public(key.public_key(), source))


def parse_public_key(data: bytes, *, source: str = "<key>") -> PublicKey:
    """Parse an SPKI PEM or ``ssh-ed25519`` public key.

    A private key file is refused (``key_invalid``): trust is configured with
    public keys only, so that a policy never needs a secret.

    Raises:
        KeyInvalid: code ``key_invalid`` or ``key_unsupported``.
    """
    text = data.strip()
    if b"PRIVATE KEY-----" in text[:64]:
        raise KeyInvalid("this is a private key; give the public key (NAME.pub)", file=source)
    raw = _ed25519_spki_pem(text)
    if raw is not None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey as Ed25519

        try:
            fast = Ed25519.from_public_bytes(raw)
        except ValueError as exc:
            raise KeyInvalid(f"not an SPKI PEM or OpenSSH public key ({exc})", file=source) from None
        return PublicKey(fast, "sha256:" + sha256_hex(ED25519_SPKI_PREFIX + raw), source)
    from cryptography.hazmat.primitives import serialization

    key: object
    try:
        if text.startswith(b"ssh-"):
            key = serialization.load_ssh_public_key(text)
        else:
            key = serialization.load_pem_public_key(text)
    except Exception as exc:  # ValueError, UnsupportedAlgorithm, ...
        raise KeyInvalid(f"not an SPKI PEM or OpenSSH public key ({exc})", file=source) from None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(key, Ed25519PublicKey):
        raise _unsupported(key, source)
    return _public(key, source)


#: The DER SubjectPublicKeyInfo of every Ed25519 public key is these 12 bytes, then the 32-byte key (RFC 8410 §4).
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PEM_HEAD, _PEM_TAIL = b"-----BEGIN PUBLIC KEY-----", b"-----END PUBLIC KEY-----"


def _ed25519_spki_pem(text: bytes) -> bytes | None:
    """The 32 raw key bytes of an Ed25519 SPKI PEM as ``lodec key generate`` and OpenSSL write it, else None.

    Anything else (other line breaks or headers, another algorithm, trailing data) returns None and is
    parsed by ``cryptography``'s PEM loader, which gives the verdict; this skips importing
    ``cryptography``'s serialization package (about 10 ms) on every signed verify.
    """
    if not (text.startswith(_PEM_HEAD) and text.endswith(_PEM_TAIL)):
        return None
    import binascii

    body = text[len(_PEM_HEAD):-len(_PEM_TAIL)].strip()
    if len(body) != 60 or not body.isascii():  # base64 of 44 bytes, on one line
        return None
    try:
        der = binascii.a2b_base64(body, strict_mode=True)
    except binascii.Error:
        return None
    if len(der) != 44 or not der.startswith(ED25519_SPKI_PREFIX):
        return None
    return der[len(ED25519_SPKI_PREFIX):]


def parse_any_key(data: bytes, *, source: str = "<key>", passphrase: bytes | None = None) -> PublicKey:
    """The public key of a public or private key file (for ``lodec key id``)."""
    head = data.lstrip()[:64]
    if b"PRIVATE KEY-----" in head:
        return parse_private_key(data, source=source, passphrase=passphrase).public
    return parse_public_key(data, source=source)


def _read(path: str) -> bytes:
    """The bytes of a key file of at most ``MAX_KEY_FILE_BYTES``.

    A key file is named by the user (``--key``, or a policy they wrote), so
    a symbolic link to it is followed (resolved once); a FIFO or other
    special file is refused.

    Raises:
        FileMissing, FileUnreadable, LimitExceeded: from ``read_bounded``,
            naming ``path``.
    """
    from ..files import read_bounded

    return read_bounded(path, MAX_KEY_FILE_BYTES, follow=True)


def load_private_key(path: str, *, passphrase: bytes | None = None) -> PrivateKey:
    """Read and parse a private key file (see ``parse_private_key``).

    Raises:
        KeyInvalid: as ``parse_private_key``.
        FileMissing, FileUnreadable, LimitExceeded: the file cannot be read
            or is over ``MAX_KEY_FILE_BYTES``.
    """
    return parse_private_key(_read(path), source=path, passphrase=passphrase)


def load_public_key(path: str) -> PublicKey:
    """Read and parse a public key file (see ``parse_public_key``).

    Raises:
        KeyInvalid: as ``parse_public_key``.
        FileMissing, FileUnreadable, LimitExceeded: the file cannot be read
            or is over ``MAX_KEY_FILE_BYTES``.
    """
    return parse_public_key(_read(path), source=path)


def load_any_key(path: str, *, passphrase: bytes | None = None) -> PublicKey:
    """Read a public or private key file and return its public key.

    Raises:
        KeyInvalid: as ``parse_any_key``.
        FileMissing, FileUnreadable, LimitExceeded: the file cannot be read
            or is over ``MAX_KEY_FILE_BYTES``.
    """
    return parse_any_key(_read(path), source=path, passphrase=passphrase)
