"""A small OCI distribution-spec v1.1 client for what lodec pushes and pulls (on ``requests``).

It does only what a lodec artifact needs, and checks what it reads:

- blobs: ``HEAD`` to skip one already there, monolithic upload (``POST``
  then ``PUT ?digest=``), ``GET`` streamed, bounded by the descriptor's
  size (a ``Content-Length`` over it is refused before reading, a body
  over it is cut off and refused) and checked against its sha256 digest;
- manifests: ``PUT`` by tag or by digest, ``GET`` bounded to 4 MiB and,
  by digest, checked against it;
- referrers: ``GET /v2/<name>/referrers/<digest>``; on 404 the referrers
  tag schema (an image index tagged ``sha256-<hex>``), as the spec tells a
  client to fall back. On push, a registry that answers a manifest with a
  ``subject`` without the ``OCI-Subject`` header gets the fallback tag
  updated (§Pushing manifests with subject).

Authentication follows the registry's ``WWW-Authenticate`` challenge:
``Bearer`` (a token from the realm, with Basic credentials or an identity
token when there are some) or ``Basic``; credentials come from
``lodec.dist.auth``. HTTPS by default; ``plain_http`` only for a loopback
host (checked here too). A token realm must be HTTPS unless on loopback, so
credentials never cross the network in clear.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, urljoin, urlsplit

from ..errors import DistributionError, LimitExceeded
from .auth import Credentials, find_credentials
from .oci import (
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    MAX_MANIFEST_BYTES,
    Descriptor,
    check,
    index,
    parse_index,
    referrers_tag,
    sha256_digest,
)
from .reference import Reference, is_loopback

if TYPE_CHECKING:
    import requests

_CHUNK = 1 << 20
_ERROR_BODY_BYTES = 64 * 1024
_TOKEN_BYTES = 1024 * 1024
_PARAM_RE = re.compile(r'([A-Za-z_]+)="([^"]*)"')
TIMEOUT_S = 60.0
#: Most redirects followed for one request.
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


def _err(code: str, message: str, where: str) -> DistributionError:
    return DistributionError(message, code=code, file=where)


def _limit(message: str, where: str) -> LimitExceeded:
    return LimitExceeded(message, file=where)


def read_limited(resp: requests.Response, limit: int, where: str) -> bytes:
    """The body of ``resp``, at most ``limit`` bytes (``Content-Length`` checked first; the stream cut off after).

    Raises:
        LimitExceeded: the body is larger.
    """
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        resp.close()
        raise _limit(f"the registry sends {length} bytes; at most {limit} are expected", where)
    buf = bytearray()
    for chunk in resp.iter_content(_CHUNK):
        buf += chunk
        if len(buf) > limit:
            resp.close()
            raise _limit(f"the registry sends more than the {limit} bytes expected", where)
    return bytes(buf)


class Registry:
    """One repository of a registry, as a store for ``lodec.dist.transfer``.

    Args:
        ref: an ``oci://`` reference (its host and repository are used).
        push: ask for push access (token scope ``pull,push``).
        plain_http: speak HTTP instead of HTTPS (loopback hosts only).
        credentials: as found by ``find_credentials`` (default: looked up for the host).
        session: a ``requests.Session`` to use (default: a new one; proxies and
            CA bundle from the environment, as ``requests`` reads them).

    Raises:
        DistributionError: ``plain_http`` for a host that is not loopback
            (code ``registry_error``; the CLI refuses it earlier as a usage error).
    """

    def __init__(self, ref: Reference, *, push: bool = False, plain_http: bool = False,
                 credentials: Credentials | None = None, session: requests.Session | None = None) -> None:
        import requests

        if plain_http and not is_loopback(ref.hostname):
            raise _err("registry_error", "plain HTTP is allowed only for a loopback registry", ref.host)
        self.ref = ref
        self.label = ref.base()
        self.scheme = "http" if plain_http else "https"
        self.base = f"{self.scheme}://{ref.host}/v2/{ref.repository}"
        self.scope = f"repository:{ref.repository}:{'pull,push' if push else 'pull'}"
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = _user_agent()
        self._credentials = credentials
        self._looked_up = credentials is not None
        self._authorization: str | None = None

    # ------------------------------------------------------------ HTTP

    def _creds(self) -> Credentials | None:
        if not self._looked_up:
            self._credentials = find_credentials(self.ref.host)
            self._looked_up = True
        return self._credentials

    def _send(self, method: str, url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None,
              stream: bool = False, params: dict[str, str] | None = None) -> requests.Response:
        """One request, following at most ``MAX_REDIRECTS`` redirects of a ``GET`` or ``HEAD`` (blobs are often
        served from object storage elsewhere), each checked by ``_check_redirect`` before it is followed; the
        ``Authorization`` header is sent to the registry's own host only."""
        headers = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if self._authorization is not None and "Authorization" not in sent and \
                    urlsplit(url).netloc == self.ref.host:
                sent["Authorization"] = self._authorization
            resp = self._send_once(method, url, headers=sent, data=data, stream=stream, params=params)
            location = resp.headers.get("Location")
            if method not in ("GET", "HEAD") or resp.status_code not in _REDIRECTS or not location:
                return resp
            resp.close()
            target = urljoin(url, location)
            self._check_redirect(url, target)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                headers.pop("Authorization", None)  # credentials go to the host they were meant for only
            url, params = target, None
        raise _err("registry_error", f"{method} {urlsplit(url).path}: more than {MAX_REDIRECTS} redirects", self.label)

    def _check_redirect(self, source: str, target: str, sent: str = "redirects") -> None:
        """Refuse a redirect (or, ``sent="sends the upload"``, an upload location) that leaves what lodec speaks
        to registries: HTTPS, or plain HTTP to a loopback host when the registry itself is on loopback over
        plain HTTP (``--plain-http``). No downgrade from HTTPS, no other scheme (``file:``, ``ftp:``)."""
        parts = urlsplit(target)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and self.scheme == "http" and is_loopback(parts.hostname or ""):
            return
        why = ("plain HTTP off loopback" if parts.scheme == "http" and self.scheme == "http"
               else "a downgrade from HTTPS" if parts.scheme == "http" else f"the scheme {parts.scheme or '(none)'}:")
        raise _err("registry_error", f"{urlsplit(source).path}: the registry {sent} to "
                   f"{parts.scheme}://{parts.netloc}{parts.path[:80]}, {why}; lodec follows redirects over HTTPS "
                   "only (plain HTTP on loopback for a --plain-http registry); refused before contacting it",
                   self.label)

    def _send_once(self, method: str, url: str, *, headers: dict[str, str], data: bytes | None, stream: bool,
                   params: dict[str, str] | None) -> requests.Response:
        import requests

        try:
            return self.session.request(method, url, headers=headers, data=data, stream=stream, params=params,
                                        timeout=TIMEOUT_S, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise _err("registry_unreachable", f"TLS failed ({_reason(exc)}); lodec speaks HTTPS to registries "
                       "(--plain-http is for a loopback test registry only)", self.label) from None
        except requests.exceptions.RequestException as exc:
            raise _err("registry_unreachable", f"cannot reach {self.scheme}://{self.ref.host}: {_reason(exc)}",
                       self.label) from None

    def request(self, method: str, path_or_url: str, *, headers: dict[str, str] | None = None,
                data: bytes | None = None, stream: bool = False, params: dict[str, str] | None = None,
                ok: tuple[int, ...] = (200,)) -> requests.Response:
        """Send a request (authenticating on a 401 challenge, once); return the response if its status is in
        ``ok`` (or 404), else raise the registry's error."""
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        resp = self._send(method, url, headers=headers, data=data, stream=stream, params=params)
        if resp.status_code == 401 and self._authenticate(resp):
            resp.close()
            resp = self._send(method, url, headers=headers, data=data, stream=stream, params=params)
        if resp.status_code in ok or resp.status_code == 404:
            return resp
        raise self._failure(resp, method, url)

    def _failure(self, resp: requests.Response, method: str, url: str) -> DistributionError:
        detail = ""
        try:
            body = read_limited(resp, _ERROR_BODY_BYTES, self.label)
            errors = dumps_errors(body)
            detail = f": {errors}" if errors else ""
        except (DistributionError, LimitExceeded):
            pass
        path = urlsplit(url).path
        if resp.status_code in (401, 403):
            creds = self._creds()
            how = f"credentials from {creds.source}" if creds else "no credentials (docker login, or " \
                  "$LODEC_REGISTRY_USERNAME and $LODEC_REGISTRY_PASSWORD)"
            return _err("registry_auth", f"{method} {path}: {resp.status_code} {resp.reason} with {how}{detail}",
                        self.label)
        return _err("registry_error", f"{method} {path}: {resp.status_code} {resp.reason}{detail}", self.label)

    def _authenticate(self, resp: requests.Response) -> bool:
        """Answer a 401 challenge: set ``Authorization`` for the next requests. False if there is nothing to try."""
        challenge = resp.headers.get("WWW-Authenticate", "")
        scheme, _, rest = challenge.strip().partition(" ")
        params = dict(_PARAM_RE.findall(rest))
        creds = self._creds()
        if scheme.lower() == "basic":
            if creds is None or creds.identity_token is not None:
                return False
            self._authorization = _basic(creds)
            return True
        if scheme.lower() != "bearer" or "realm" not in params:
            return False
        realm = params["realm"]
        parts = urlsplit(realm)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname or "")):
            raise _err("registry_auth", f"the registry's token realm {realm!r} is not HTTPS: lodec sends no "
                       "credentials there", self.label)
        query = {"scope": self.scope}
        if "service" in params:
            query["service"] = params["service"]
        if creds is not None and creds.identity_token is not None:
            token_resp = self._send("POST", realm, data=_form({
                "grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "lodec",
                **query}), headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            headers = {"Authorization": _basic(creds)} if creds is not None else {}
            token_resp = self._send("GET", realm, params=query, headers=headers)
        if token_resp.status_code != 200:
            raise self._failure(token_resp, "GET", realm)
        try:
            import json

            doc = json.loads(read_limited(token_resp, _TOKEN_BYTES, self.label))
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise _err("registry_auth", "the token realm answered without a token", self.label)
        self._authorization = f"Bearer {token}"
        return True

    # ------------------------------------------------------------ the store interface

    def get_manifest(self, tag: str | None, digest: str | None) -> tuple[Descriptor, bytes]:
        """The manifest tagged ``tag`` (or ``digest``): at most 4 MiB, and checked against ``digest``.

        Raises:
            DistributionError: ``artifact_not_found`` (404), ``digest_mismatch``,
                ``limit_exceeded``, ``registry_error``, ``registry_auth``, ``registry_unreachable``.
        """
        ref = digest if digest is not None else tag
        assert ref is not None
        resp = self.request("GET", f"/manifests/{quote(ref, safe=':')}", stream=True,
                            headers={"Accept": f"{MANIFEST_MEDIA_TYPE}, {INDEX_MEDIA_TYPE}"})
        if resp.status_code == 404:
            resp.close()
            raise _err("artifact_not_found", f"no manifest {ref!r} in the repository", self.label)
        data = read_limited(resp, MAX_MANIFEST_BYTES, self.label)
        actual = sha256_digest(data)
        where = f"{self.label}@{actual}"
        if digest is not None and actual != digest:
            raise _err("digest_mismatch", f"the registry sent a manifest with digest {actual} for {digest}", where)
        header = resp.headers.get("Docker-Content-Digest", "")
        if header.startswith("sha256:") and header != actual:
            raise _err("digest_mismatch", f"the registry says the manifest is {header} but sent {actual}", where)
        media_type = resp.headers.get("Content-Type", MANIFEST_MEDIA_TYPE).split(";")[0].strip()
        return Descriptor(media_type=media_type, digest=actual, size=len(data)), data

    def get_blob(self, desc: Descriptor) -> bytes:
        """The blob ``desc`` names: streamed, at most ``desc.size`` bytes, checked against ``desc.digest``.

        Raises:
            DistributionError: ``artifact_not_found``, ``limit_exceeded`` (more
                bytes than the descriptor says), ``digest_mismatch``, ...
        """
        resp = self.request("GET", f"/blobs/{desc.digest}", stream=True, headers={"Accept-Encoding": "identity"})
        if resp.status_code == 404:
            resp.close()
            raise _err("artifact_not_found", f"no blob {desc.digest} in the repository", self.label)
        where = f"{self.label}@{desc.digest}"
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > desc.size:
            resp.close()
            raise _limit(f"the registry sends {length} bytes for a blob whose descriptor says "
                       f"{desc.size}", where)
        buf = bytearray()
        for chunk in resp.iter_content(_CHUNK):
            buf += chunk
            if len(buf) > desc.size:
                resp.close()
                raise _limit(f"the registry sends more than the {desc.size} bytes its descriptor says", where)
        data = bytes(buf)
        check(data, desc, where)
        return data

    def put_blob(self, data: bytes) -> bool:
        """Upload ``data`` unless the registry has it; ``False`` when it was already there."""
        digest = sha256_digest(data)
        head = self.request("HEAD", f"/blobs/{digest}")
        head.close()
        if head.status_code == 200:
            return False
        start = self.request("POST", "/blobs/uploads/", ok=(202,), headers={"Content-Length": "0"})
        start.close()
        location = start.headers.get("Location")
        if start.status_code != 202 or not location:
            raise _err("registry_error", f"POST /blobs/uploads/: {start.status_code} without an upload location",
                       self.label)
        url = urljoin(self.base + "/", location)
        self._check_redirect(f"{self.base}/blobs/uploads/", url, "sends the upload")
        url += ("&" if "?" in url else "?") + f"digest={quote(digest, safe='')}"
        done = self.request("PUT", url, data=data, ok=(201,),
                            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        done.close()
        if done.status_code != 201:
            raise _err("registry_error", f"PUT blob {digest}: {done.status_code}", self.label)
        return True

    def _put_manifest(self, data: bytes, ref: str, media_type: str) -> requests.Response:
        resp = self.request("PUT", f"/manifests/{quote(ref, safe=':')}", data=data, ok=(201,),
                            headers={"Content-Type": media_type})
        resp.close()
        if resp.status_code != 201:
            raise _err("registry_error", f"PUT manifest {ref}: {resp.status_code} {resp.reason}", self.label)
        header = resp.headers.get("Docker-Content-Digest", "")
        if header.startswith("sha256:") and header != sha256_digest(data):
            raise _err("digest_mismatch", f"the registry stored the manifest as {header}, not "
                       f"{sha256_digest(data)}", self.label)
        return resp

    def put_manifest(self, data: bytes, tag: str | None, *, artifact_type: str) -> Descriptor:
        desc = Descriptor.of(MANIFEST_MEDIA_TYPE, data, artifact_type=artifact_type)
        self._put_manifest(data, tag if tag is not None else desc.digest, MANIFEST_MEDIA_TYPE)
        return desc

    def attach(self, data: bytes, subject: Descriptor, *, artifact_type: str) -> tuple[Descriptor, str]:
        """Push a referrer of ``subject`` by digest; ``(descriptor, "api")`` when the registry indexed its
        ``subject`` (``OCI-Subject`` header), else the fallback tag is updated: ``(descriptor, "fallback")``."""
        desc = Descriptor.of(MANIFEST_MEDIA_TYPE, data, artifact_type=artifact_type)
        resp = self._put_manifest(data, desc.digest, MANIFEST_MEDIA_TYPE)
        if resp.headers.get("OCI-Subject") == subject.digest:
            return desc, "api"
        tag = referrers_tag(subject.digest)
        try:
            _, current = self.get_manifest(tag, None)
            listed = parse_index(current, f"{self.label}:{tag}")
        except DistributionError as exc:
            if exc.code != "artifact_not_found":
                raise
            listed = []
        if not any(d.digest == desc.digest for d in listed):
            listed.append(desc)
            self._put_manifest(index(listed), tag, INDEX_MEDIA_TYPE)
        return desc, "fallback"

    def list_referrers(self, digest: str) -> tuple[list[Descriptor], str]:
        """The referrers of ``digest``: from the referrers API, or (on its 404) from the fallback tag.

        Returns ``(descriptors, "api" | "fallback")``; no fallback tag means no referrers.
        """
        resp = self.request("GET", f"/referrers/{digest}", stream=True, headers={"Accept": INDEX_MEDIA_TYPE})
        if resp.status_code == 200:
            return parse_index(read_limited(resp, MAX_MANIFEST_BYTES, self.label), f"{self.label}/referrers"), "api"
        resp.close()
        try:
            _, data = self.get_manifest(referrers_tag(digest), None)
        except DistributionError as exc:
            if exc.code == "artifact_not_found":
                return [], "fallback"
            raise
        return parse_index(data, f"{self.label}:{referrers_tag(digest)}"), "fallback"


def dumps_errors(body: bytes) -> str:
    """The registry's error body (``{"errors": [{"code", "message"}]}``) as one short line, or ``""``."""
    import json

    try:
        doc = json.loads(body)
        items = doc.get("errors") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            return ""
        parts = [f"{e.get('code', '')} {e.get('message', '')}".strip() for e in items[:3] if isinstance(e, dict)]
        return "; ".join(parts)[:300]
    except ValueError:
        return ""


def _basic(creds: Credentials) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode("ascii")


def _form(fields: dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode("ascii")


def _reason(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."



def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"lodec/{version('lodec')}"
    except PackageNotFoundError:
        return "lodec"
