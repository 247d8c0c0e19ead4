"""The OCI objects of a lodec artifact: media types, descriptors, the pack manifest and its referrer. No I/O.

Follows the OCI image spec v1.1 (§Image manifest, §Guidelines for artifact
usage, §Descriptors) and distribution spec v1.1 (§Referrers tag schema):

- the pack manifest: ``artifactType`` ``ARTIFACT_TYPE``, config the empty
  descriptor (``application/vnd.oci.empty.v1+json``, the 2 bytes ``{}``), one
  layer: the ``.lodepack`` file (``PACK_MEDIA_TYPE``);
- the referrer: ``artifactType`` ``ENVELOPE_ARTIFACT_TYPE``, the empty
  config, one layer: the DSSE envelope (``ENVELOPE_MEDIA_TYPE``), and
  ``subject`` the pack manifest's descriptor.

Manifests are written as compact JSON with a fixed key order, so the same
pack always gives the same manifest digest. Digests are sha256 (the
registries' common algorithm); BLAKE3 stays lodec's fingerprint inside the
pack. Parsing is strict (``loads_strict``: no duplicate keys) and bounded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import msgspec

from ..errors import DistributionError, LimitExceeded, LodecError
from ..format.strictjson import loads_strict
from ..limits import Limits

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
#: The stack carried as a ``.lodepack``: the pack manifest's ``artifactType``.
ARTIFACT_TYPE = "application/vnd.lodec.stack.v1"
#: The pack manifest's one layer: a ``.lodepack`` file (docs/pack-format.md).
PACK_MEDIA_TYPE = "application/vnd.lodec.lodepack.v1"
#: The referrer's ``artifactType``: a DSSE envelope approving the stack (docs/signing.md).
ENVELOPE_ARTIFACT_TYPE = "application/vnd.lodec.stack-approval.v1+dsse"
#: The referrer's one layer: the DSSE JSON envelope as ``lodec sign`` writes it.
ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
TITLE = "org.opencontainers.image.title"
STACK_NAME = "dev.lodec.stack.name"
STACK_VERSION = "dev.lodec.stack.version"

#: Largest manifest or index read: the distribution spec lets registries refuse manifests over 4 MiB.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Most envelope referrers of one manifest fetched on pull (a registry listing more is refused, none fetched).
MAX_REFERRERS = 64

_SHA256_RE = re.compile(r"sha256:[0-9a-f]{64}\Z")
_JSON_LIMITS = Limits(max_file_bytes=MAX_MANIFEST_BYTES, max_json_depth=8)


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data`` (an OCI digest)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


EMPTY_DIGEST = sha256_digest(EMPTY_BLOB)


class Descriptor(msgspec.Struct, frozen=True, kw_only=True):
    """An OCI content descriptor (image spec §Descriptors): media type, sha256 digest, size in bytes."""

    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @classmethod
    def of(cls, media_type: str, data: bytes, *, artifact_type: str | None = None,
           annotations: dict[str, str] | None = None) -> Descriptor:
        return cls(media_type=media_type, digest=sha256_digest(data), size=len(data), artifact_type=artifact_type,
                   annotations=annotations)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def dumps(obj: dict[str, Any]) -> bytes:
    """Compact JSON, keys in the order given, UTF-8: the bytes lodec pushes (and so digests)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _empty_config() -> dict[str, Any]:
    # The spec's empty descriptor, with its 2 bytes inline ("data") so a reader need not fetch them.
    return {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": len(EMPTY_BLOB),
            "data": base64.b64encode(EMPTY_BLOB).decode("ascii")}


def pack_manifest(pack: Descriptor, *, name: str, version: str) -> bytes:
    """The pack manifest's bytes: ``artifactType`` ``ARTIFACT_TYPE``, empty config, the pack as the one layer.

    ``name`` and ``version`` (the stack's) are annotations for people and
    registry UIs; pull never trusts them (the pack's verification decides).
    """
    return dumps({"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "artifactType": ARTIFACT_TYPE,
                  "config": _empty_config(), "layers": [pack.to_json()],
                  "annotations": {STACK_NAME: name, STACK_VERSION: version}})


def referrer_manifest(envelope: Descriptor, subject: Descriptor) -> bytes:
    """The referrer's bytes: ``artifactType`` ``ENVELOPE_ARTIFACT_TYPE``, the envelope as the one layer,
    ``subject`` the pack manifest."""
    return dumps({"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "artifactType": ENVELOPE_ARTIFACT_TYPE,
                  "config": _empty_config(), "layers": [envelope.to_json()],
                  "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}})


def index(manifests: list[Descriptor]) -> bytes:
    """An image index listing ``manifests`` (the referrers tag schema's content, and a layout's ``index.json``)."""
    return dumps({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [d.to_json() for d in manifests]})


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``: ``<alg>-<hex>`` (distribution spec v1.1 §Referrers tag schema)."""
    return digest.replace(":", "-", 1)[:128]


# ------------------------------------------------------------------ parsing


def invalid(message: str, where: str, location: str | None = None) -> DistributionError:
    return DistributionError(message, code="artifact_invalid", file=where, location=location)


def parse_json(data: bytes, where: str, *, limits: Limits = _JSON_LIMITS,
               error: Callable[..., DistributionError] = invalid) -> dict[str, Any]:
    """A manifest or index (or any ``limits``-bounded JSON document) as a JSON object, parsed strictly.

    Raises:
        DistributionError: from ``error(message, where[, location])`` (default
            ``artifact_invalid``): not strict JSON within ``limits``, or not an object.
    """
    try:
        doc = loads_strict(data, file=where, limits=limits)
    except LodecError as exc:
        raise error(f"not valid JSON: {exc.message}", where, exc.location) from None
    if not isinstance(doc, dict):
        raise error("not a JSON object", where)
    return doc


def descriptor(value: Any, where: str, location: str, *, max_size: int) -> Descriptor:
    """A descriptor object: ``mediaType``, a ``sha256:`` ``digest``, a ``size`` in ``0..max_size``.

    Raises:
        DistributionError: ``artifact_invalid`` for a malformed one;
        LimitExceeded: a size over ``max_size`` (refused before reading).
    """
    if not isinstance(value, dict):
        raise invalid("a descriptor must be an object", where, location)
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise invalid("descriptor has no mediaType", where, f"{location}/mediaType")
    if not isinstance(digest, str) or not _SHA256_RE.match(digest):
        raise invalid(f"descriptor digest {digest!r} is not sha256: and 64 lowercase hex digits (lodec reads "
                      "sha256 descriptors only)", where, f"{location}/digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise invalid("descriptor size is not a non-negative integer", where, f"{location}/size")
    if size > max_size:
        raise LimitExceeded(f"descriptor size {size} is over the limit of {max_size} bytes", file=where,
                            location=f"{location}/size")
    artifact_type = value.get("artifactType")
    annotations = value.get("annotations")
    return Descriptor(media_type=media_type, digest=digest, size=size,
                      artifact_type=artifact_type if isinstance(artifact_type, str) else None,
                      annotations=annotations if isinstance(annotations, dict) and all(
                          isinstance(v, str) for v in annotations.values()) else None)


class Artifact(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed lodec manifest: its ``artifactType``, its one layer, and its ``subject`` (referrers only)."""

    artifact_type: str
    layer: Descriptor
    subject: Descriptor | None = None


def parse_artifact(data: bytes, where: str, *, artifact_type: str, layer_type: str, max_layer: int) -> Artifact:
    """Parse a pack manifest or a referrer: image manifest v1.1 with the expected ``artifactType`` and one
    layer of ``layer_type`` no larger than ``max_layer`` bytes.

    Raises:
        DistributionError: ``artifact_invalid`` (not a manifest, another
            artifact type, not exactly one layer of that media type).
        LimitExceeded: a layer over ``max_layer``.
    """
    doc = parse_json(data, where)
    if doc.get("schemaVersion") != 2:
        raise invalid("schemaVersion is not 2", where, "/schemaVersion")
    if doc.get("mediaType", MANIFEST_MEDIA_TYPE) != MANIFEST_MEDIA_TYPE:
        raise invalid(f"mediaType is {doc.get('mediaType')!r}, not {MANIFEST_MEDIA_TYPE}", where, "/mediaType")
    found = doc.get("artifactType")
    if found is None and isinstance(doc.get("config"), dict):
        found = doc["config"].get("mediaType")  # image spec: no artifactType means the config's media type
    if found != artifact_type:
        raise invalid(f"artifactType is {found!r}, not {artifact_type} (not a lodec artifact)", where,
                      "/artifactType")
    descriptor(doc.get("config"), where, "/config", max_size=MAX_MANIFEST_BYTES)
    layers = doc.get("layers")
    if not isinstance(layers, list) or len(layers) != 1:
        raise invalid(f"a {artifact_type} manifest has exactly one layer", where, "/layers")
    layer = descriptor(layers[0], where, "/layers/0", max_size=max_layer)
    if layer.media_type != layer_type:
        raise invalid(f"layer mediaType is {layer.media_type!r}, not {layer_type}", where, "/layers/0/mediaType")
    subject = None
    if "subject" in doc:
        subject = descriptor(doc["subject"], where, "/subject", max_size=MAX_MANIFEST_BYTES)
    return Artifact(artifact_type=artifact_type, layer=layer, subject=subject)


def check(data: bytes, desc: Descriptor, where: str) -> None:
    """Refuse ``data`` unless it has ``desc``'s size and sha256 digest (code ``digest_mismatch``)."""
    if len(data) != desc.size:
        raise DistributionError(f"{desc.digest}: {len(data)} bytes, but the descriptor says {desc.size}",
                                code="digest_mismatch", file=where)
    actual = sha256_digest(data)
    if actual != desc.digest:
        raise DistributionError(f"content has digest {actual}, not {desc.digest} as its descriptor says "
                                "(tampered or corrupted)", code="digest_mismatch", file=where)


def parse_index(data: bytes, where: str) -> list[Descriptor]:
    """The manifests an image index lists (a referrers response, a fallback tag, a layout's ``index.json``).

    Entries that are not sha256 descriptors are skipped (another tool's
    content, which a lodec pull has no use for). The count is not bounded
    here (the index itself is at most 4 MiB): callers bound what they fetch.

    Raises:
        DistributionError: ``artifact_invalid`` if it is not an index object.
    """
    doc = parse_json(data, where)
    manifests = doc.get("manifests")
    if doc.get("schemaVersion") != 2 or not isinstance(manifests, list):
        raise invalid("not an image index (schemaVersion 2 with a manifests list)", where)
    out = []
    for i, entry in enumerate(manifests):
        try:
            out.append(descriptor(entry, where, f"/manifests/{i}", max_size=MAX_MANIFEST_BYTES))
        except DistributionError:
            continue
    return out
