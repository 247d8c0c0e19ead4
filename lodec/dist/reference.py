"""Artifact references: ``oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]`` and ``oci-layout:DIR[:TAG|@sha256:HEX]``.

The repository, tag and digest grammars are the OCI distribution spec
v1.1's (§Pulling manifests): a repository is ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*``
components joined by ``/``; a tag ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``; a
digest ``sha256:`` and 64 lowercase hex digits (lodec pushes and pulls
sha256 descriptors only).
"""

from __future__ import annotations

import ipaddress
import re

import msgspec

from ..errors import DistributionError

OCI_SCHEME = "oci://"
LAYOUT_SCHEME = "oci-layout:"

_REPO_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*\Z")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}\Z")
# A DNS name (labels of letters, digits and inner hyphens), an IPv4 address, or a bracketed IPv6 address.
_HOST_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                      r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?\Z")
#: Longest repository name: the distribution spec lets registries refuse names over 255 characters.
MAX_REPOSITORY = 255


class ReferenceInvalid(DistributionError):
    """A reference that is not ``oci://HOST/REPO[:TAG|@DIGEST]`` or ``oci-layout:DIR[:TAG|@DIGEST]``.

    Code ``reference_invalid``; the use case turns it into a usage error.
    """

    code = "reference_invalid"


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed reference.

    Attributes:
        scheme: ``"oci"`` (a registry) or ``"oci-layout"`` (a directory).
        host: ``HOST[:PORT]`` of the registry (``""`` for a layout).
        repository: the repository name (``""`` for a layout).
        directory: the layout directory (``""`` for a registry).
        tag: the tag, or ``None``.
        digest: ``sha256:<hex>`` of the manifest, or ``None``.
    """

    scheme: str
    host: str = ""
    repository: str = ""
    directory: str = ""
    tag: str | None = None
    digest: str | None = None

    @property
    def is_layout(self) -> bool:
        return self.scheme == "oci-layout"

    @property
    def hostname(self) -> str:
        """The host without port or IPv6 brackets."""
        host = self.host
        if host.startswith("["):
            return host[1:host.index("]")]
        return host.rsplit(":", 1)[0] if ":" in host else host

    def base(self) -> str:
        """The reference without tag or digest."""
        if self.is_layout:
            return f"{LAYOUT_SCHEME}{self.directory}"
        return f"{OCI_SCHEME}{self.host}/{self.repository}"

    def with_tag(self, tag: str) -> Reference:
        return msgspec.structs.replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return msgspec.structs.replace(self, tag=None, digest=digest)

    def __str__(self) -> str:
        if self.digest is not None:
            return f"{self.base()}@{self.digest}"
        if self.tag is not None:
            return f"{self.base()}:{self.tag}"
        return self.base()


def is_reference(text: str) -> bool:
    """Whether ``text`` starts with one of the two schemes (a reference, not a file path)."""
    return text.startswith((OCI_SCHEME, LAYOUT_SCHEME))


def is_tag(text: str) -> bool:
    return _TAG_RE.match(text) is not None


def is_digest(text: str) -> bool:
    return _DIGEST_RE.match(text) is not None


def _split_suffix(rest: str, text: str) -> tuple[str, str | None, str | None]:
    """``rest`` split into (name, tag, digest): ``@sha256:`` after the last ``@``; else a tag after the last ``:``
    when what follows it is a tag and holds no ``/``."""
    tag = digest = None
    if "@" in rest:
        rest, _, digest = rest.rpartition("@")
        if not is_digest(digest):
            raise ReferenceInvalid(f"{digest!r} is not a sha256 digest (sha256: and 64 lowercase hex digits)",
                                   file=text)
    else:
        head, sep, tail = rest.rpartition(":")
        if sep and head and "/" not in tail:
            if not is_tag(tail):
                raise ReferenceInvalid(f"{tail!r} is not a tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})", file=text)
            rest, tag = head, tail
    return rest, tag, digest


def parse_reference(text: str) -> Reference:
    """Parse ``oci://HOST[:PORT]/REPO[:TAG|@sha256:HEX]`` or ``oci-layout:DIR[:TAG|@sha256:HEX]``.

    A layout directory may itself hold ``:``; only a final ``:TAG`` with no
    ``/`` after it is read as a tag (``oci-layout:./out:v1``).

    Raises:
        ReferenceInvalid: another scheme, an empty or malformed host,
            repository, tag or digest (code ``reference_invalid``).
    """
    if text.startswith(LAYOUT_SCHEME):
        rest, tag, digest = _split_suffix(text[len(LAYOUT_SCHEME):], text)
        if not rest:
            raise ReferenceInvalid("no directory: write oci-layout:DIR[:TAG]", file=text)
        return Reference(scheme="oci-layout", directory=rest, tag=tag, digest=digest)
    if not text.startswith(OCI_SCHEME):
        raise ReferenceInvalid("not a reference: write oci://HOST[:PORT]/REPO[:TAG] or oci-layout:DIR[:TAG]",
                               file=text)
    host, slash, path = text[len(OCI_SCHEME):].partition("/")
    if not slash or not path:
        raise ReferenceInvalid("no repository: write oci://HOST[:PORT]/REPO[:TAG]", file=text)
    if not _HOST_RE.match(host):
        raise ReferenceInvalid(f"{host!r} is not a registry host (HOST or HOST:PORT)", file=text)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:host.index("]")])
        except ValueError:
            raise ReferenceInvalid(f"{host!r} is not an IPv6 address in brackets", file=text) from None
    repo, tag, digest = _split_suffix(path, text)
    if not _REPO_RE.match(repo) or len(repo) > MAX_REPOSITORY:
        raise ReferenceInvalid(f"{repo!r} is not a repository name (lowercase letters, digits, '.', '_', '-', "
                               f"components joined by '/', at most {MAX_REPOSITORY} characters)", file=text)
    return Reference(scheme="oci", host=host, repository=repo, tag=tag, digest=digest)


def is_loopback(hostname: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1); no DNS lookup (a name could change where it points)."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def tag_for_version(version: str) -> str | None:
    """A stack version as a tag (``+`` becomes ``_``, as Helm does), or ``None`` if it cannot be one."""
    tag = version.replace("+", "_")
    return tag if is_tag(tag) else None
