"""Push a pack (and its DSSE envelope as a referrer) to a registry or a layout; pull it back, checked.

``push_pack`` and ``pull_pack`` work the same on both stores (``Registry``,
``Layout``). ``pull_pack`` checks transport only -- every descriptor's
size and sha256 digest, the artifact and media types -- and returns the
bytes; whether the pack may be trusted is the caller's verification
(``lodec.app.distribute.pull`` runs ``lodec verify``'s on them before
writing anything).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec

from ..errors import DistributionError, LimitExceeded
from ..format.pack import MAX_PACK_BYTES
from ..sign.dsse import MAX_ENVELOPE_BYTES
from .oci import (
    ARTIFACT_TYPE,
    EMPTY_BLOB,
    ENVELOPE_ARTIFACT_TYPE,
    ENVELOPE_MEDIA_TYPE,
    MAX_REFERRERS,
    PACK_MEDIA_TYPE,
    TITLE,
    Descriptor,
    pack_manifest,
    parse_artifact,
    referrer_manifest,
)
from .reference import Reference, parse_reference

Progress = Callable[[str], None]


class Store(Protocol):
    """Where artifacts live: a registry repository (``Registry``) or an image layout (``Layout``)."""

    label: str

    def get_manifest(self, tag: str | None, digest: str | None) -> tuple[Descriptor, bytes]: ...

    def get_blob(self, desc: Descriptor) -> bytes: ...

    def list_referrers(self, digest: str) -> tuple[list[Descriptor], str]: ...

    def put_blob(self, data: bytes) -> bool: ...

    def put_manifest(self, data: bytes, tag: str | None, *, artifact_type: str) -> Descriptor: ...

    def attach(self, data: bytes, subject: Descriptor, *, artifact_type: str) -> tuple[Descriptor, str]: ...


class Pushed(msgspec.Struct, frozen=True, kw_only=True):
    """What ``push_pack`` did.

    Attributes:
        reference: where the pack is now, by tag (``oci://HOST/REPO:TAG``, ``oci-layout:DIR:TAG``).
        pinned: the same, by the manifest's digest (``...@sha256:...``): exactly what was pushed.
        manifest: the pack manifest's descriptor (its digest pins this exact artifact).
        pack: the pack layer's descriptor.
        referrer: the envelope referrer's descriptor, or ``None`` for an unsigned pack.
        referrers: how the referrer is found: ``"api"`` (the registry indexed
            its subject), ``"fallback"`` (the referrers tag schema), ``"layout"``, or ``None``.
        uploaded: blobs sent; ``skipped``: blobs the store already had.
    """

    reference: str
    pinned: str
    manifest: Descriptor
    pack: Descriptor
    referrer: Descriptor | None
    referrers: str | None
    uploaded: int
    skipped: int


class Referrer(msgspec.Struct, frozen=True, kw_only=True):
    """A DSSE envelope referrer as pulled: its manifest's descriptor and the envelope's bytes (checked)."""

    manifest: Descriptor
    envelope: bytes


class Pulled(msgspec.Struct, frozen=True, kw_only=True):
    """What ``pull_pack`` fetched: every byte checked against its descriptor, nothing yet verified as a stack.

    Attributes:
        reference: the reference pulled, pinned by digest (``...@sha256:...``).
        manifest: the pack manifest's descriptor.
        pack: the ``.lodepack`` bytes.
        referrers: the envelope referrers of the manifest (``ENVELOPE_ARTIFACT_TYPE``), in listed order.
        source: where they were found: ``"api"``, ``"fallback"`` or ``"layout"``.
        ignored: referrers listed that are not lodec envelopes of this manifest.
    """

    reference: str
    manifest: Descriptor
    pack: bytes
    referrers: tuple[Referrer, ...]
    source: str
    ignored: int = 0


def open_store(ref: Reference, *, push: bool = False, plain_http: bool = False) -> Store:
    """The store ``ref`` names: a ``Layout`` for ``oci-layout:``, else a ``Registry``."""
    if ref.is_layout:
        from .layout import Layout

        return Layout(ref.directory)
    from .registry import Registry

    return Registry(ref, push=push, plain_http=plain_http)


def push_pack(ref: Reference | str, pack: bytes, *, name: str, version: str, envelope: bytes | None = None,
              filename: str = "stack.lodepack", plain_http: bool = False, store: Store | None = None,
              progress: Progress | None = None) -> Pushed:
    """Push ``pack`` as an OCI artifact tagged ``ref.tag``, and ``envelope`` as its referrer.

    Order: the empty config and the pack blob, the pack manifest (tagged),
    then the envelope blob and the referrer manifest (by digest; with the
    fallback tag on a registry without the referrers API). The same pack
    gives the same manifest digest every time.

    Args:
        ref: ``oci://HOST/REPO:TAG`` or ``oci-layout:DIR:TAG`` (a tag is needed).
        name, version: the stack's, as manifest annotations.
        envelope: the pack's DSSE envelope, or ``None`` (no referrer).
        filename: the layer's ``org.opencontainers.image.title``.

    Raises:
        DistributionError: no tag in ``ref``; any store failure
            (``registry_*``, ``layout_invalid``, ``file_unwritable`` ...).
    """
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    if ref.tag is None:
        raise DistributionError("push needs a tag: REFERENCE:TAG", code="reference_invalid", file=str(ref))
    say = progress or (lambda _line: None)
    store = store or open_store(ref, push=True, plain_http=plain_http)
    uploaded = skipped = 0

    def blob(data: bytes, what: str) -> None:
        nonlocal uploaded, skipped
        if store.put_blob(data):
            uploaded += 1
            say(f"Pushed {what} ({len(data)} bytes)")
        else:
            skipped += 1
            say(f"Exists {what} ({len(data)} bytes)")

    blob(EMPTY_BLOB, "config (empty)")
    layer = Descriptor.of(PACK_MEDIA_TYPE, pack, annotations={TITLE: filename})
    blob(pack, f"pack {layer.digest}")
    manifest = store.put_manifest(pack_manifest(layer, name=name, version=version), ref.tag,
                                  artifact_type=ARTIFACT_TYPE)
    say(f"Pushed manifest {manifest.digest} as {ref}")
    referrer, source = None, None
    if envelope is not None:
        env = Descriptor.of(ENVELOPE_MEDIA_TYPE, envelope)
        blob(envelope, f"envelope {env.digest}")
        referrer, source = store.attach(referrer_manifest(env, manifest), manifest,
                                        artifact_type=ENVELOPE_ARTIFACT_TYPE)
        say(f"Attached envelope referrer {referrer.digest} ({source})")
    return Pushed(reference=str(ref), pinned=str(ref.with_digest(manifest.digest)), manifest=manifest, pack=layer,
                  referrer=referrer, referrers=source, uploaded=uploaded, skipped=skipped)


def pull_pack(ref: Reference | str, *, plain_http: bool = False, store: Store | None = None,
              progress: Progress | None = None) -> Pulled:
    """Fetch the pack ``ref`` names and its envelope referrers, checking every size and digest on the way.

    By tag, the manifest's digest is computed from the bytes received; by
    digest, the bytes must have it. Each blob is read bounded by its
    descriptor's size (the pack at most ``MAX_PACK_BYTES``, an envelope at
    most ``MAX_ENVELOPE_BYTES``, a manifest 4 MiB) and must have its digest.
    Nothing is written anywhere; nothing is verified as a stack.

    Raises:
        DistributionError: ``reference_invalid`` (neither tag nor digest),
            ``artifact_not_found``, ``artifact_invalid`` (not a lodec pack
            artifact), ``digest_mismatch``, ``limit_exceeded``, ``registry_*``, ``layout_invalid``.
    """
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    if ref.tag is None and ref.digest is None:
        raise DistributionError("name what to pull: REFERENCE:TAG or REFERENCE@sha256:...",
                                code="reference_invalid", file=str(ref))
    say = progress or (lambda _line: None)
    store = store or open_store(ref, plain_http=plain_http)
    manifest, data = store.get_manifest(ref.tag, ref.digest)
    pinned = ref.with_digest(manifest.digest)
    artifact = parse_artifact(data, str(pinned), artifact_type=ARTIFACT_TYPE, layer_type=PACK_MEDIA_TYPE,
                              max_layer=MAX_PACK_BYTES)
    say(f"Resolved {ref} to {manifest.digest}")
    pack = store.get_blob(artifact.layer)
    say(f"Pulled pack {artifact.layer.digest} ({len(pack)} bytes, digest checked)")
    listed, source = store.list_referrers(manifest.digest)
    envelopes = [d for d in listed if d.artifact_type == ENVELOPE_ARTIFACT_TYPE]
    if len(envelopes) > MAX_REFERRERS:
        raise LimitExceeded(f"{len(envelopes)} envelope referrers listed; lodec reads at most {MAX_REFERRERS}",
                            file=str(pinned))
    referrers: list[Referrer] = []
    ignored = len(listed) - len(envelopes)  # another tool's referrers (an SBOM, a cosign signature): not fetched
    for d in envelopes:
        desc, body = store.get_manifest(None, d.digest)
        where = f"{ref.base()}@{d.digest}"
        found = parse_artifact(body, where, artifact_type=ENVELOPE_ARTIFACT_TYPE, layer_type=ENVELOPE_MEDIA_TYPE,
                               max_layer=MAX_ENVELOPE_BYTES)
        if found.subject is None or found.subject.digest != manifest.digest:
            ignored += 1  # listed for this manifest, but its subject is another: not a referrer of it
            continue
        referrers.append(Referrer(manifest=desc, envelope=store.get_blob(found.layer)))
        say(f"Pulled envelope referrer {d.digest} ({source}, digest checked)")
    return Pulled(reference=str(pinned), manifest=manifest, pack=pack, referrers=tuple(referrers), source=source,
                  ignored=ignored)
