"""Connecting to a Temporal service: address, namespace, TLS (server CA, client certificate), API key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import LodecError
from ...files import read_bounded

if TYPE_CHECKING:
    from temporalio.client import Client

#: Largest certificate or key file read (bytes).
MAX_PEM_BYTES = 1024 * 1024


class EngineError(LodecError):
    """The Temporal service cannot be reached, or refused the request (code ``engine_unavailable``).

    ``started``: whether the run's workflow had started (then it failed as a whole, e.g. terminated
    by an operator); ``False`` when nothing was submitted.
    """

    code = "engine_unavailable"
    started = False


@dataclass(frozen=True)
class Connection:
    """Where the Temporal service is and how to authenticate to it (``docs/temporal.md``).

    ``address`` is ``HOST:PORT`` (the frontend gRPC port, 7233 by default); ``namespace``
    the Temporal namespace; ``task_queue`` the queue lodec workers poll. TLS is on when any of
    ``tls``, ``tls_ca``, ``tls_cert``/``tls_key`` (mutual TLS) or ``api_key`` is given;
    ``tls_server_name`` overrides the name checked in the server's certificate. ``api_key`` is
    sent as a bearer token (Temporal Cloud API keys).
    """

    address: str
    namespace: str = "default"
    task_queue: str = "lodec"
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    api_key: str | None = None

    def describe(self) -> str:
        """``temporal://HOST:PORT/NAMESPACE/QUEUE`` (no secrets)."""
        return f"temporal://{self.address}/{self.namespace}/{self.task_queue}"


async def connect(conn: Connection, *, identity: str | None = None) -> Client:
    """A connected ``temporalio.client.Client``.

    Raises:
        LodecError: a TLS file cannot be read (naming it), ``usage`` for a client certificate
            without its key; ``EngineError`` when the service cannot be reached.
    """
    from temporalio.client import Client, TLSConfig

    if (conn.tls_cert is None) != (conn.tls_key is None):
        raise LodecError("mutual TLS needs both --tls-cert and --tls-key", code="usage")
    tls: bool | TLSConfig = False
    if conn.tls_ca or conn.tls_cert or conn.tls_server_name:
        tls = TLSConfig(server_root_ca_cert=_pem(conn.tls_ca), client_cert=_pem(conn.tls_cert),
                        client_private_key=_pem(conn.tls_key), domain=conn.tls_server_name)
    elif conn.tls or conn.api_key:
        tls = True
    try:
        return await Client.connect(conn.address, namespace=conn.namespace, tls=tls, api_key=conn.api_key,
                                    identity=identity)
    except Exception as exc:  # the SDK raises RuntimeError for a refused or unreachable service
        raise EngineError(f"cannot connect to Temporal at {conn.address} (namespace {conn.namespace}): {exc}") from None


def _pem(path: str | None) -> bytes | None:
    return None if path is None else read_bounded(Path(path), MAX_PEM_BYTES, follow=True)
