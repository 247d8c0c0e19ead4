"""The content-addressed artifact store (``docs/skill-contract.md`` §Content-addressed store).

``<state>/cas/blake3/<2 hex>/<62 hex>`` holds the bytes, read-only;
``<same>.sha256`` holds their SHA-256. Readers re-hash: a name is a claim,
the bytes are the evidence. Blobs are opened as ``lodec.files`` opens
everything: never through a symbolic link, never a FIFO or other special
file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import blake3
import msgspec

from ..errors import FileMissing, FileUnreadable
from ..files import atomic_write, open_regular, read_bounded
from ..format.fingerprint import file_digests

#: Largest artifact a step may leave (bytes). Checked before reading.
MAX_ARTIFACT_BYTES = 256 * 1024 * 1024


#: 64 lowercase hex digits: a digest read from a record must be one, since it becomes a store path.
Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class ArtifactDigest(msgspec.Struct, frozen=True):
    """``blake3`` and ``sha256`` (64 lowercase hex each) and ``size`` in bytes.

    Decoded (``msgspec.convert``, as ``run.json`` is), anything else is a ``ValidationError``: a
    record's digest names the blob ``Store.path`` opens, re-hashes and ``discard`` deletes.
    """

    blake3: Hex64
    sha256: Hex64
    size: Annotated[int, msgspec.Meta(ge=0)]

    def to_dict(self) -> dict[str, str | int]:
        return {"blake3": self.blake3, "sha256": self.sha256, "size": self.size}


def digest_bytes(data: bytes) -> ArtifactDigest:
    """BLAKE3 and SHA-256 of ``data`` (``format.fingerprint.file_digests``) and its size."""
    digests = file_digests(data)
    return ArtifactDigest(digests["blake3"], digests["sha256"], len(data))


class Store:
    """A CAS rooted at ``root`` (``<state>/cas``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, blake3_hex: str) -> Path:
        """Where the blob with this BLAKE3 digest lives (whether or not it exists)."""
        return self.root / "blake3" / blake3_hex[:2] / blake3_hex[2:]

    def put(self, data: bytes) -> ArtifactDigest:
        """Store ``data`` (deduplicated) and return its digests.

        An existing blob is re-hashed first and replaced if it no longer
        matches its name (or is a link, a FIFO, ...), so a tampered blob is
        never silently reused.

        Raises:
            FileUnwritable: the blob cannot be written (``file_unwritable``).
        """
        d = digest_bytes(data)
        target = self.path(d.blake3)
        try:
            status = self.check(d.blake3)
        except FileUnreadable:
            status = "unreadable"
        if status != "verified":
            # The rename replaces whatever is there, read-only or a link, without touching what a
            # link points to (so no chmod first: it would follow one).
            atomic_write(target, data, mode=0o444)
            atomic_write(target.with_name(target.name + ".sha256"), (d.sha256 + "\n").encode(), mode=0o444)
        return d

    def read(self, blake3_hex: str, max_bytes: int) -> tuple[str, bytes | None]:
        """``(status, bytes)`` of a blob, re-hashed from the very bytes returned (no window to swap it).

        ``status`` is ``verified`` (bytes given), ``integrity_mismatch`` or
        ``missing`` (bytes ``None``).

        Raises:
            FileUnreadable: a link (``file_link``), not a regular file (a
                FIFO, ...), no permission.
            LimitExceeded: over ``max_bytes``.
        """
        path = self.path(blake3_hex)
        try:
            data = read_bounded(path, max_bytes)
        except FileMissing:
            return "missing", None
        if blake3.blake3(data).hexdigest() != blake3_hex:
            return "integrity_mismatch", None
        return "verified", data

    def check(self, blake3_hex: str) -> str:
        """``verified`` if the blob exists and re-hashes to its name, ``integrity_mismatch`` if it
        exists and does not, ``missing`` if it does not exist.

        Raises:
            FileUnreadable: a link (``file_link``), not a regular file (a
                FIFO, ...), no permission, an I/O error.
        """
        target = self.path(blake3_hex)
        try:
            with open_regular(target) as fh:  # streamed: a blob may be up to MAX_ARTIFACT_BYTES
                h = blake3.blake3()
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
        except FileMissing:
            return "missing"
        except OSError as exc:
            raise FileUnreadable(exc.strerror or str(exc), file=str(target)) from None
        return "verified" if h.hexdigest() == blake3_hex else "integrity_mismatch"
