"""An OCI image layout directory as a place to push to and pull from (air-gapped transfer).

Follows the OCI image spec v1.1 §Image Layout: ``DIR/oci-layout``
(``{"imageLayoutVersion": "1.0.0"}``), ``DIR/index.json`` (an image index;
a tagged manifest carries the annotation ``org.opencontainers.image.ref.name``)
and ``DIR/blobs/sha256/<hex>``. A referrer is listed in ``index.json`` too,
with its ``artifactType`` and no ref name, so the layout holds the whole
graph; referrers are found by reading the listed manifests' ``subject``
(as ORAS and regclient do for layouts).

Every blob read is bounded by its descriptor's size and checked against its
digest; blobs and ``index.json`` are written atomically, ``index.json``
under a lock (``.lodec-index.lock``, removed after), so two pushes into one
directory do not lose each other's entries.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DistributionError, FileMissing, LimitExceeded, LodecError
from ..files import atomic_write, locked, read_bounded
from .oci import (
    ENVELOPE_ARTIFACT_TYPE,
    MANIFEST_MEDIA_TYPE,
    MAX_MANIFEST_BYTES,
    MAX_REFERRERS,
    Descriptor,
    check,
    index,
    parse_index,
    parse_json,
    sha256_digest,
)

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
#: Most envelope entries of ``index.json`` read to find the referrers of one manifest.
MAX_LAYOUT_SCAN = 4096


class Layout:
    """The store of an OCI image layout at ``directory`` (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory)
        self.label = f"oci-layout:{os.fspath(directory)}"

    # ------------------------------------------------------------ reading

    def _blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.split(":", 1)[1]

    def _check_layout(self) -> None:
        try:
            data = read_bounded(self.root / "oci-layout", 4096)
        except FileMissing:
            raise DistributionError("not an OCI image layout: no oci-layout file", code="layout_invalid",
                                    file=os.fspath(self.root)) from None
        doc = parse_json(data, os.fspath(self.root / "oci-layout"))
        if not isinstance(doc.get("imageLayoutVersion"), str) or not doc["imageLayoutVersion"].startswith("1."):
            raise DistributionError("oci-layout: imageLayoutVersion is not 1.x", code="layout_invalid",
                                    file=os.fspath(self.root / "oci-layout"))

    def _index(self) -> list[Descriptor]:
        try:
            data = read_bounded(self.root / "index.json", MAX_MANIFEST_BYTES)
        except FileMissing:
            return []
        return parse_index(data, os.fspath(self.root / "index.json"))

    def read_blob(self, desc: Descriptor) -> bytes:
        """The blob ``desc`` names, read bounded by ``desc.size`` and checked against ``desc.digest``.

        Raises:
            DistributionError: ``artifact_not_found`` (no such blob),
                ``digest_mismatch`` (other bytes, or another size).
        """
        path = self._blob_path(desc.digest)
        try:
            data = read_bounded(path, desc.size)
        except FileMissing:
            raise DistributionError(f"blob {desc.digest} is not in the layout", code="artifact_not_found",
                                    file=self.label) from None
        except LimitExceeded:
            raise DistributionError(f"blob {desc.digest} is larger than its descriptor's {desc.size} bytes "
                                    "(tampered or corrupted)", code="digest_mismatch", file=os.fspath(path)) from None
        check(data, desc, os.fspath(path))
        return data

    def resolve(self, tag: str | None, digest: str | None) -> Descriptor:
        """The descriptor of the manifest tagged ``tag`` in ``index.json``, or of ``digest``.

        Raises:
            DistributionError: ``layout_invalid`` (no ``oci-layout``),
                ``artifact_not_found`` (no such tag or manifest), ``artifact_invalid``
                (a tag listed twice).
        """
        self._check_layout()
        entries = self._index()
        if digest is not None:
            for d in entries:
                if d.digest == digest:
                    return d
            if self._blob_path(digest).is_file():
                size = self._blob_path(digest).stat().st_size
                return Descriptor(media_type=MANIFEST_MEDIA_TYPE, digest=digest, size=min(size, MAX_MANIFEST_BYTES))
            raise DistributionError(f"no manifest {digest} in the layout", code="artifact_not_found", file=self.label)
        found = [d for d in entries if (d.annotations or {}).get(REF_NAME) == tag]
        if not found:
            raise DistributionError(f"no tag {tag!r} in index.json", code="artifact_not_found", file=self.label)
        if len(found) > 1:
            raise DistributionError(f"tag {tag!r} is listed {len(found)} times in index.json", code="artifact_invalid",
                                    file=self.label)
        return found[0]

    def referrers(self, digest: str) -> list[Descriptor]:
        """The envelope referrers listed in ``index.json`` whose ``subject`` is ``digest``.

        Only entries whose ``artifactType`` is a lodec envelope's are read (a layout used as an archive
        lists every version's pack manifest too), at most ``MAX_LAYOUT_SCAN`` of them; reading stops once
        more than ``MAX_REFERRERS`` match (the pull then refuses, as for a registry listing too many).

        Raises:
            LimitExceeded: more than ``MAX_LAYOUT_SCAN`` envelope entries would have to be read.
        """
        out: list[Descriptor] = []
        candidates = [d for d in self._index()
                      if d.media_type == MANIFEST_MEDIA_TYPE and d.artifact_type == ENVELOPE_ARTIFACT_TYPE]
        if len(candidates) > MAX_LAYOUT_SCAN:
            raise LimitExceeded(f"index.json lists {len(candidates)} envelope referrers; lodec reads at most "
                                f"{MAX_LAYOUT_SCAN}", file=self.label)
        for d in candidates:
            try:
                doc = parse_json(self.read_blob(d), self.label)
            except DistributionError:
                continue  # a broken entry is not a referrer of ours; the pull reports what it does find
            subject = doc.get("subject")
            if isinstance(subject, dict) and subject.get("digest") == digest:
                out.append(d)
                if len(out) > MAX_REFERRERS:
                    break
        return out

    # ------------------------------------------------------------ the store interface (lodec.dist.transfer)

    def get_manifest(self, tag: str | None, digest: str | None) -> tuple[Descriptor, bytes]:
        """The manifest tagged ``tag`` (or ``digest``), checked against its descriptor."""
        desc = self.resolve(tag, digest)
        if desc.size > MAX_MANIFEST_BYTES:
            raise LimitExceeded(f"manifest {desc.digest} is over {MAX_MANIFEST_BYTES} bytes", file=self.label)
        return desc, self.read_blob(desc)

    def get_blob(self, desc: Descriptor) -> bytes:
        return self.read_blob(desc)

    def list_referrers(self, digest: str) -> tuple[list[Descriptor], str]:
        return self.referrers(digest), "layout"

    def put_blob(self, data: bytes) -> bool:
        """Store ``data`` under its digest; ``False`` when it was already there with the right bytes."""
        self._prepare()
        path = self._blob_path(sha256_digest(data))
        try:
            if read_bounded(path, len(data)) == data:
                return False
        except LodecError:
            pass  # absent, or wrong: written anew
        atomic_write(path, data)
        return True

    def put_manifest(self, data: bytes, tag: str | None, *, artifact_type: str) -> Descriptor:
        """Store a manifest and list it in ``index.json`` (tagged ``tag``, or untagged for a referrer)."""
        self.put_blob(data)
        desc = Descriptor.of(MANIFEST_MEDIA_TYPE, data, artifact_type=artifact_type)
        self.add_to_index(desc, tag)
        return desc

    def attach(self, data: bytes, subject: Descriptor, *, artifact_type: str) -> tuple[Descriptor, str]:
        """Store a referrer of ``subject``: listed in ``index.json`` untagged, found by its ``subject``."""
        return self.put_manifest(data, None, artifact_type=artifact_type), "layout"

    # ------------------------------------------------------------ writing

    def _prepare(self) -> None:
        if self.root.is_symlink() or (self.root.exists() and not self.root.is_dir()):
            raise DistributionError("not a directory", code="layout_invalid", file=os.fspath(self.root))
        if self.root.exists() and any(self.root.iterdir()):
            self._check_layout()
        elif not (self.root / "oci-layout").exists():
            atomic_write(self.root / "oci-layout", LAYOUT_FILE)
        # Blobs are written under blobs/sha256: a link there (a layout prepared by someone else) would have
        # them written into whatever folder it points at.
        for sub in (self.root / "blobs", self.root / "blobs" / "sha256"):
            if sub.is_symlink() or (sub.exists() and not sub.is_dir()):
                raise DistributionError(f"{sub} is a symbolic link or not a folder; lodec writes blobs only "
                                        "inside the layout", code="layout_invalid", file=os.fspath(sub))

    def add_to_index(self, desc: Descriptor, tag: str | None) -> None:
        """List ``desc`` in ``index.json``: tagged ``tag`` (the tag moves from any other manifest), or untagged
        (a referrer; listed once)."""
        self._prepare()
        with locked(self.root / ".lodec-index.lock", remove=True):
            entries = self._index()
            if tag is not None:
                entries = [d for d in entries if (d.annotations or {}).get(REF_NAME) != tag]
                annotations = dict(desc.annotations or {})
                annotations[REF_NAME] = tag
                entries.append(Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size,
                                          artifact_type=desc.artifact_type, annotations=annotations))
            elif not any(d.digest == desc.digest and REF_NAME not in (d.annotations or {}) for d in entries):
                entries.append(desc)
            atomic_write(self.root / "index.json", index(entries))

