"""A real OCI registry on loopback for the tests: Debian's ``docker-registry`` (CNCF Distribution 2.8).

Distribution 2.8 stores manifests with a ``subject`` but has no referrers
API (``GET /v2/<name>/referrers/<digest>`` answers 404), so against it
lodec takes the referrers tag-schema fallback. To exercise the API path too,
``ReferrersProxy`` sits in front of the same registry on loopback and adds
exactly what a v1.1 registry adds: it answers ``OCI-Subject`` to a manifest
pushed with a ``subject`` and serves ``/v2/<name>/referrers/<digest>`` from
the manifests it saw pushed. Every other request, and every byte stored,
is the real registry's.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegistryServer:
    """``docker-registry serve`` with filesystem storage in ``root``, on ``127.0.0.1:<free port>``."""

    def __init__(self, root: Path, *, htpasswd: str | None = None, token: str | None = None) -> None:
        self.root = root
        self.storage = root / "storage"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = root / "config.yml"
        auth = ""
        if htpasswd is not None:  # Basic authentication against an htpasswd file (bcrypt hashes)
            (root / "htpasswd").write_text(htpasswd)
            auth = f"auth:\n  htpasswd:\n    realm: lodec-test\n    path: {root / 'htpasswd'}\n"
        if token is not None:  # token authentication: ``token`` is the YAML of the auth.token section
            auth = "auth:\n  token:\n" + "".join(f"    {line}\n" for line in token.splitlines())
        config.write_text(
            auth + "version: 0.1\n"
            "log:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n  delete:\n    enabled: true\n"
            "  cache:\n    blobdescriptor: \"\"\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.log = open(root / "registry.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([registry_binary() or "docker-registry", "serve", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and (htpasswd is not None or token is not None):
                    break  # up, and asking for credentials
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry did not start: {(root / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def blob_file(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        hex_ = digest.split(":", 1)[1]
        return self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hex_[:2] / hex_ / "data"

    def get(self, path: str, accept: str = "*/*") -> tuple[int, bytes]:
        req = urllib.request.Request(f"http://{self.host}{path}", headers={"Accept": accept})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def tags(self, repo: str) -> list[str]:
        status, body = self.get(f"/v2/{repo}/tags/list")
        return list(json.loads(body).get("tags") or []) if status == 200 else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


_REFERRERS = re.compile(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})(?:\?.*)?$")
_MANIFEST_PUT = re.compile(r"^/v2/(.+)/manifests/([^/?]+)$")
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
        "proxy-authenticate"}


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass


def _forward(handler: BaseHTTPRequestHandler, port: int, body: bytes,
             added: Callable[[http.client.HTTPResponse, bytes], dict[str, str]] | None = None) -> None:
    """Relay ``handler``'s request to ``127.0.0.1:port`` and its answer back (plus ``added(resp, data)`` headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP}
    conn.request(handler.command, handler.path, body=body or None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    extra = added(resp, data) if added else {}
    handler.send_response(resp.status, resp.reason)
    for k, v in resp.getheaders():
        if k.lower() not in _HOP and k.lower() != "content-length":
            handler.send_header(k, v)
    for k, v in extra.items():
        handler.send_header(k, v)
    upstream_length = resp.getheader("Content-Length")
    handler.send_header("Content-Length", upstream_length if handler.command == "HEAD" and upstream_length
                        else str(len(data)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)
    conn.close()


class _Server(ThreadingHTTPServer):
    """A client hanging up on a kept-alive connection (reset, broken pipe) is not a server error.

    ``socketserver`` would print its traceback to ``sys.stderr``, which during an in-process ``run_cli`` is the
    command's captured stderr: the test would see a "Traceback" lodec never wrote. Any other error still prints.
    """

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _LoopbackServer:
    """A ``ThreadingHTTPServer`` on ``127.0.0.1:<free port>`` serving ``handler`` from a daemon thread."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ReferrersProxy(_LoopbackServer):
    """A loopback reverse proxy adding the distribution spec v1.1 referrers API to ``upstream``."""

    def __init__(self, upstream: RegistryServer) -> None:
        self.upstream = upstream
        self.referrers: dict[tuple[str, str], list[dict[str, object]]] = {}
        self.api_calls = 0
        proxy = self

        class Handler(_QuietHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                m = _REFERRERS.match(self.path)
                if m and self.command == "GET":
                    proxy.api_calls += 1
                    listed = proxy.referrers.get((m.group(1), m.group(2)), [])
                    data = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                       "manifests": listed}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                put = _MANIFEST_PUT.match(self.path) if self.command == "PUT" else None

                def record_subject(resp: http.client.HTTPResponse, data: bytes) -> dict[str, str]:
                    if put is None or resp.status != 201:
                        return {}
                    doc = json.loads(body)
                    subject = doc.get("subject")
                    if not isinstance(subject, dict):
                        return {}
                    entry = {"mediaType": doc.get("mediaType"), "size": len(body),
                             "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                             "artifactType": doc.get("artifactType")}
                    proxy.referrers.setdefault((put.group(1), subject["digest"]), []).append(entry)
                    return {"OCI-Subject": subject["digest"]}

                _forward(self, proxy.upstream.port, body, record_subject)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = _relay

        self._serve(Handler)


def registry_binary() -> str | None:
    return shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if os.access("/usr/bin/docker-registry", os.X_OK) else None)


class TokenServer(_LoopbackServer):
    """A Docker-style token server on loopback (the ``Bearer`` challenge's realm) for ``RegistryServer(token=...)``.

    ``GET /token?service=S&scope=repository:NAME:ACTIONS`` with Basic
    ``user:password`` answers ``{"token": JWT}``: an ES256 JWT signed by a
    fresh key whose self-signed certificate is in ``x5c`` and in the
    registry's ``rootcertbundle``, granting the scope asked for. Other
    credentials (or none) get 401.
    """

    ISSUER = "lodec-test-issuer"
    SERVICE = "lodec-test-registry"

    def __init__(self, root: Path, user: str, password: str) -> None:
        import base64
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lodec test token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.cert_file = root / "token-cert.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.issued = 0
        server_self = self

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def mint(scope: str) -> str:
            import time as _time
            import uuid

            from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

            access = []
            kind, _, rest = scope.partition(":")
            repo_name, _, actions = rest.rpartition(":")
            if kind == "repository" and repo_name:
                access.append({"type": "repository", "name": repo_name, "actions": actions.split(",")})
            t = int(_time.time())
            header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
            claims = {"iss": self.ISSUER, "sub": user, "aud": self.SERVICE, "exp": t + 300, "nbf": t - 60,
                      "iat": t, "jti": uuid.uuid4().hex, "access": access}
            signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
            r, s_ = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s_.to_bytes(32, 'big'))}"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                from urllib.parse import parse_qs, urlsplit

                query = parse_qs(urlsplit(self.path).query)
                if self.headers.get("Authorization") != expected or query.get("service") != [server_self.SERVICE]:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                server_self.issued += 1
                body = json.dumps({"token": mint(query.get("scope", [""])[0]), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler)
        self.realm = f"http://{self.host}/token"

    def registry_config(self, realm: str | None = None) -> str:
        """The registry's ``auth.token`` section (``realm`` overrides where clients are sent)."""
        return (f"realm: {realm or self.realm}\nservice: {self.SERVICE}\nissuer: {self.ISSUER}\n"
                f"rootcertbundle: {self.cert_file}")


_BLOB_GET = re.compile(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")


class RedirectingRegistry(_LoopbackServer):
    """A loopback front of ``upstream`` that answers every blob ``GET`` with ``307`` to ``location(digest)``
    (as registries do to send clients to object storage), and relays everything else unchanged."""

    def __init__(self, upstream: RegistryServer, location: Callable[[str], str]) -> None:
        self.redirected = 0
        front = self

        class Handler(_QuietHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                m = _BLOB_GET.match(self.path.split("?", 1)[0])
                if m and self.command == "GET":
                    front.redirected += 1
                    self.send_response(307)
                    self.send_header("Location", location(m.group(2)))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                _forward(self, upstream.port, body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = _relay

        self._serve(Handler)


class ObjectStorage(_LoopbackServer):
    """Loopback "object storage" for ``RedirectingRegistry``: ``GET /<digest>`` answers the blob's bytes
    straight from ``registry``'s storage, and records the ``Authorization`` header of every request
    (``None`` when absent) in ``authorizations``. A ``PUT`` (an upload sent here) is recorded and
    answered ``500``: nothing is stored."""

    def __init__(self, registry: RegistryServer) -> None:
        self.authorizations: list[str | None] = []
        store = self

        class Handler(_QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                store.authorizations.append(self.headers.get("Authorization"))
                path = registry.blob_file(self.path.lstrip("/"))
                data = path.read_bytes() if path.is_file() else b""
                self.send_response(200 if data else 404)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:  # noqa: N802 - http.server's name
                store.authorizations.append(self.headers.get("Authorization"))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._serve(Handler)


class UploadElsewhere(_LoopbackServer):
    """A loopback front of ``upstream`` that answers every blob upload start (``POST .../blobs/uploads/``)
    itself with ``202`` and an upload ``Location`` on another host, ``elsewhere``; everything else is relayed."""

    def __init__(self, upstream: RegistryServer, elsewhere: str) -> None:
        class Handler(_QuietHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "POST" and self.path.split("?", 1)[0].endswith("/blobs/uploads/"):
                    self.send_response(202)
                    self.send_header("Location", f"http://{elsewhere}/upload")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                _forward(self, upstream.port, body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = _relay

        self._serve(Handler)
