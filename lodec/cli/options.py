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
