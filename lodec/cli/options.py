"""Click options shared by several commands, and how they become the use cases' typed options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..app.options import TrustOptions, parse_now

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def trust_options(f: F) -> F:
    """``--key``, ``--threshold``, ``--policy``, ``--name``, ``--state``, ``--now``."""
    f = click.option("--now", "now_text", metavar="TIMESTAMP",
                     help="Reference time (RFC 3339, e.g. 2027-01-31T00:00:00Z). Default: the current time.")(f)
    f = click.option("--state", "state_path", type=click.Path(dir_okay=False),
                     help="Rollback state file (or $LODEC_STATE; keep it in a CI cache). Default: "
                          "trusted-stacks.json in the workspace's state directory (.lodec/ at the git repository "
                          "root, or $LODEC_HOME, ~/.lodec, outside git).")(f)
    f = click.option("--name", "expected_name", metavar="STACK",
                     help="The stack name you asked for; a stack signed under another name is refused.")(f)
    f = click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                     help="Trust policy file (TOML): trusted keys and thresholds per stack-name pattern.")(f)
    f = click.option("--threshold", type=click.IntRange(min=1),
                     help="Valid signatures needed from distinct --key keys. Default: 1.")(f)
    f = click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False),
                     help="A trusted public key (NAME.pub or ssh-ed25519); repeat for more.")(f)
    f = click.option("--require-signatures", "require_signatures", is_flag=True,
                     help="Refuse (exit 1) unless signatures are checked: no unsigned or key-less verification. "
                          "Without --key/--policy the workspace's .lodec/trust-policy.toml applies when present.")(f)
    return f


def trust_from(keys: tuple[str, ...], threshold: int | None, policy_path: str | None, expected_name: str | None,
               now_text: str | None, require_signatures: bool = False) -> TrustOptions:
    """The ``TrustOptions`` of ``trust_options``' values (``--now`` parsed; a bad one is a usage error)."""
    return TrustOptions(keys=tuple(keys), threshold=threshold, policy=policy_path, expected_name=expected_name,
                        now=parse_now(now_text), require_signatures=require_signatures)


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
