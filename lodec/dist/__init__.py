"""Distribution: a ``.lodepack`` as an OCI artifact in a registry or an OCI image layout directory.

- ``reference``: ``oci://HOST[:PORT]/REPO[:TAG|@sha256:...]`` and ``oci-layout:DIR[:TAG|@sha256:...]``;
- ``oci``: media types, the pack manifest and the envelope referrer (OCI image spec v1.1);
- ``registry``: a small distribution-spec v1.1 client (referrers API with the tag-schema fallback);
- ``layout``: an OCI image layout directory (image spec v1.1 §Image Layout);
- ``auth``: credentials from the environment and the Docker config file;
- ``transfer``: ``push_pack`` and ``pull_pack`` over either.

This layer moves and checks bytes (sizes, sha256 digests, media types);
whether a pulled pack may be trusted is decided by the same verification
as ``lodec verify``, in ``lodec.app.distribute``. Format: ``docs/distribution.md``.
"""

from __future__ import annotations

from .oci import ARTIFACT_TYPE, ENVELOPE_ARTIFACT_TYPE, ENVELOPE_MEDIA_TYPE, PACK_MEDIA_TYPE, Descriptor
from .reference import Reference, ReferenceInvalid, is_loopback, is_reference, parse_reference
from .transfer import Pulled, Pushed, Referrer, pull_pack, push_pack

__all__ = [
    "ARTIFACT_TYPE", "ENVELOPE_ARTIFACT_TYPE", "ENVELOPE_MEDIA_TYPE", "PACK_MEDIA_TYPE", "Descriptor",
    "Pulled", "Pushed", "Reference", "ReferenceInvalid", "Referrer", "is_loopback", "is_reference",
    "parse_reference", "pull_pack", "push_pack",
]
