"""Click options shared by several commands, and how they become the use cases' typed options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..app.options import TrustOptions, parse_now

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass(frozen=True)
class TrustArgs:
    """The values of ``trust_options``, as typed (``--now`` still text)."""

    keys: tuple[str, ...]
    threshold: int | None
    policy: str | None
    expected_name: str | None
    state: str | None
    now_text: str | None
    require_signatures: bool

    def options(self) -> TrustOptions:
        """The use cases' ``TrustOptions`` (``--now`` parsed; raises ``OptionsError`` for a bad one)."""
        return TrustOptions(keys=self.keys, threshold=self.threshold, policy=self.policy,
                            expected_name=self.expected_name, now=parse_now(self.now_text),
                            require_signatures=self.require_signatures)


_TRUST_PARAMS = ("keys", "threshold", "policy_path", "expected_name", "state_path", "now_text", "require_signatures")


def trust_options(f: F) -> F:
    """``--key``, ``--threshold``, ``--policy``, ``--name``, ``--state``, ``--now``, ``--require-signatures``.

    The command receives them as one ``trust: TrustArgs`` argument.
    """

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        keys, threshold, policy, name, state, now_text, required = (kwargs.pop(p) for p in _TRUST_PARAMS)
        trust = TrustArgs(tuple(keys), threshold, policy, name, state, now_text, required)
        return f(*args, trust=trust, **kwargs)

    g: Any = command
    g = click.option("--now", "now_text", metavar="TIMESTAMP",
                     help="Reference time (RFC 3339, e.g. 2027-01-31T00:00:00Z) for the approval's expiry and the "
                          "policy's key validity windows. Default: the current time.")(g)
    g = click.option("--state", "state_path", type=click.Path(dir_okay=False),
                     help="Rollback state file (or $LODEC_STATE; keep it in a CI cache). Default: "
                          "trusted-stacks.json in the workspace's state directory (.lodec/ at the git repository "
                          "root, or $LODEC_HOME, ~/.lodec, outside git).")(g)
    g = click.option("--name", "expected_name", metavar="STACK",
                     help="The stack name you asked for; a stack signed under another name is refused.")(g)
    g = click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                     help="Trust policy file (TOML): trusted keys and thresholds per stack-name pattern, revoked "
                          "keyids, key validity windows (docs/signing.md).")(g)
    g = click.option("--threshold", type=click.IntRange(min=1),
                     help="Valid signatures needed from distinct --key keys. Default: 1.")(g)
    g = click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False),
                     help="A trusted public key (NAME.pub or ssh-ed25519); repeat for more.")(g)
    g = click.option("--require-signatures", "require_signatures", is_flag=True,
                     help="Refuse (exit 1) unless signatures are checked: no unsigned or key-less verification. "
                          "Without --key/--policy the workspace's .lodec/trust-policy.toml applies when present.")(g)
    return g  # type: ignore[no-any-return]


def workspace_option(f: F) -> F:
    """``--workspace DIR``."""
    return click.option("--workspace", "workspace_dir", type=click.Path(file_okay=False, exists=True),
                        help="The project the steps work on. Default: the git repository root, or the current "
                             "directory outside git. State goes to its git root's .lodec/ (or $LODEC_HOME).")(f)


def steps_option(f: F) -> F:
    """``--steps DIR``."""
    return click.option("--steps", "steps_dir", type=click.Path(file_okay=False),
                        help="Directory of <stepName>.vein files. Default: steps/ beside the manifest.")(f)


def json_option(help_text: str) -> Callable[[F], F]:
    """``--json`` with its command's output shape in ``help_text``."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


@dataclass(frozen=True)
class TemporalArgs:
    """The values of ``temporal_options``; ``given`` lists the options set on the command line."""

    address: str | None
    store: str | None
    namespace: str
    task_queue: str
    tls: bool
    tls_ca: str | None
    tls_cert: str | None
    tls_key: str | None
    tls_server_name: str | None
    api_key_env: str | None
    given: tuple[str, ...]

    def options(self, heartbeat_s: float = 10.0, attempts: int = 3) -> Any:
        """The use case's ``lodec.app.engine.TemporalOptions``; a usage error without ``--address``/``--store``."""
        from ..app.engine import TemporalOptions
        from ..app.options import OptionsError

        if self.address is None:
            raise OptionsError("the Temporal engine needs --address HOST:PORT", param_hint="--address")
        if self.store is None:
            raise OptionsError("the Temporal engine needs --store DIR, a directory every worker reaches",
                               param_hint="--store")
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "--tls-key" if self.tls_key is None else "--tls-cert"
            raise OptionsError("mutual TLS needs both --tls-cert and --tls-key", param_hint=missing)
        return TemporalOptions(self.address, self.namespace, self.task_queue, self.tls, self.tls_ca, self.tls_cert,
                               self.tls_key, self.tls_server_name, store=self.store, api_key_env=self.api_key_env,
                               heartbeat_s=heartbeat_s, attempts=attempts)


_TEMPORAL_PARAMS = ("address", "store", "namespace", "task_queue", "tls", "tls_ca", "tls_cert", "tls_key",
                    "tls_server_name", "api_key_env")


def temporal_options(f: F) -> F:
    """``--address``, ``--namespace``, ``--task-queue``, ``--store``, the TLS options and ``--api-key-env``;
    the command receives them as one ``temporal: TemporalArgs`` argument."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        values = {p: kwargs.pop(p) for p in _TEMPORAL_PARAMS}
        ctx = click.get_current_context()
        given = tuple(p for p in _TEMPORAL_PARAMS
                      if ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE)
        return f(*args, temporal=TemporalArgs(**values, given=given), **kwargs)

    g: Any = command
    g = click.option("--api-key-env", metavar="VAR",
                     help="Environment variable holding a Temporal API key (sent as a bearer token; turns TLS "
                          "on). The key itself never goes on the command line.")(g)
    g = click.option("--tls-server-name", metavar="NAME", help="Server name to check in its TLS certificate.")(g)
    g = click.option("--tls-key", type=click.Path(dir_okay=False), help="Client private key (PEM) for mutual TLS.")(g)
    g = click.option("--tls-cert", type=click.Path(dir_okay=False),
                     help="Client certificate (PEM) for mutual TLS (with --tls-key).")(g)
    g = click.option("--tls-ca", type=click.Path(dir_okay=False),
                     help="CA certificate (PEM) the server's certificate must chain to. Default: the system's.")(g)
    g = click.option("--tls", is_flag=True, help="Connect with TLS (implied by the other --tls-* options).")(g)
    g = click.option("--task-queue", default="lodec", show_default=True, help="Task queue lodec workers poll.")(g)
    g = click.option("--namespace", default="default", show_default=True, help="Temporal namespace.")(g)
    g = click.option("--store", type=click.Path(file_okay=False),
                     help="Shared content-addressed directory (packs, artifacts, step logs) that the submitter and "
                          "every worker reach, e.g. an NFS mount.")(g)
    g = click.option("--address", metavar="HOST:PORT", help="Temporal frontend (gRPC), e.g. 127.0.0.1:7233.")(g)
    return g  # type: ignore[no-any-return]
