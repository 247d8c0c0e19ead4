"""The ``lodec`` command line: a thin layer over the library.

Exit codes: 0 success, 1 invalid input or verification failed, 2 usage
error. Errors are one line on stderr (``lodec: FILE: LOCATION: message``);
``--json`` prints machine-readable results on stdout.

Start-up: this module imports neither click nor the library. The commands
are the click group in ``lodec.cli.commands`` (plus ``lodec.cli.run_commands``),
loaded on first use: ``main`` stands for that group. Run as a program
(``lodec ...`` or ``python -m lodec ...``), two command lines take a fast
path that prints the same output and exits with the same status without
importing click: ``lodec --version`` (``-V``), and ``lodec verify TARGET``
with only ``--json``, ``--steps``, ``--key``, ``--threshold`` and
``--state``. Anything else, or anything click itself would report (a usage
error, ``--help``, shell completion), runs through click as before.
"""

from __future__ import annotations

import sys

from .. import __version__
from ..errors import LodecError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from datetime import datetime
    from pathlib import Path
    from typing import Any, NoReturn

    import click

# True while a command runs on the fast path (no click): a usage error then
# raises _NeedClick, and the command line is run again through click.
_fast = False


class _NeedClick(Exception):
    """On the fast path: click must handle this command line (it reports a usage error)."""


def _usage_error(message: str, param_hint: str | None = None) -> Exception:
    """``click.UsageError`` (``click.BadParameter`` with a param_hint), or ``_NeedClick`` on the fast path."""
    if _fast:
        return _NeedClick(message)
    import click

    if param_hint is None:
        return click.UsageError(message)
    return click.BadParameter(message, param_hint=param_hint)


def _echo(message: str, err: bool = False) -> None:
    """``click.echo``; on the fast path the same bytes are written without importing click."""
    if not _fast or "\x1b" in message:  # click.echo strips ANSI codes when not writing to a terminal
        import click

        click.echo(message, err=err)
        return
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def _fail(exc: LodecError, as_json: bool) -> NoReturn:
    if as_json:
        import json

        _echo(json.dumps({"ok": False, "error": exc.to_dict()}, ensure_ascii=False))
    _echo(f"lodec: {exc} [{exc.code}]", err=True)
    sys.exit(1)


def _emit(obj: Any) -> None:
    import json

    _echo(json.dumps(obj, indent=2, ensure_ascii=False))


def _now(value: str | None) -> datetime:
    if value is None:
        from datetime import datetime, timezone

        return datetime.now(timezone.utc).replace(microsecond=0)
    from ..sign.statement import parse_time

    try:
        return parse_time(value)
    except ValueError as exc:
        raise _usage_error(str(exc), param_hint="--now") from None


def _policy(keys: tuple[str, ...], threshold: int | None, policy_path: str | None) -> Any:
    """The trust policy from --key/--threshold or --policy, or None for an unsigned check."""
    if policy_path is not None and (keys or threshold is not None):
        raise _usage_error("give either --policy or --key/--threshold, not both")
    if policy_path is not None:
        from ..sign.policy import load_policy

        return load_policy(policy_path)
    if threshold is not None and not keys:
        raise _usage_error("--threshold needs trusted keys: add --key A.pub (repeat for more)")
    if not keys:
        return None
    from ..sign.keys import load_public_key
    from ..sign.policy import policy_from_keys

    loaded = [load_public_key(k) for k in keys]
    try:
        return policy_from_keys(loaded, threshold)
    except ValueError as exc:
        raise _usage_error(str(exc), param_hint="--threshold") from None


def _state_path(state_path: str | None) -> Path:
    from pathlib import Path

    from ..store.workspace import Workspace

    return Workspace.discover(state_file=state_path).rollback_state


def _report_out(report: Any, label: str, as_json: bool, note: str = "") -> NoReturn:
    if as_json:
        _emit(report.to_dict())
    elif report.ok:
        v = report.verified
        line = f"Verified {report.stack} {report.version}: {len(report.steps)} steps, manifest digest {report.digest}"
        if v.envelope is not None:
            rule = report.trust or {}
            line += (f"\nSigned by {len(v.signed_by)} of {rule.get('threshold')} required trusted key(s): "
                     f"{', '.join(v.signed_by)}; expires {rule.get('expires')}")
        _echo(line + note)
    else:
        for p in report.problems:
            _echo(f"{p.message} [{p.code}]", err=True)
        _echo(f"Rejected {report.stack or label}: {len(report.problems)} problem(s); nothing may run.", err=True)
    sys.exit(0 if report.ok else 1)


def _verify_target(
    target: str,
    steps_dir: str | None,
    envelope_path: str | None,
    keys: tuple[str, ...],
    threshold: int | None,
    policy_path: str | None,
    expected_name: str | None,
    state_path: str | None,
    now_text: str | None,
) -> tuple[Any, str]:
    """``(report, note)`` for STACK.json or a pack, signed (with keys or a policy) or not: the one
    verification that ``verify``, ``run``, ``plan``, ``lock`` and ``resolve`` share."""
    from ..app.loaders import (
        envelope_path_for,
        is_pack_file,
        verify_pack_file,
        verify_signed_files,
        verify_stack_files,
    )

    now = _now(now_text)  # one reference time for the whole verification
    policy = _policy(keys, threshold, policy_path)
    if expected_name is not None and policy is None:
        raise _usage_error("--name is checked against the signed name: add --key or --policy")
    signed_note = " (signatures not checked: add --key or --policy)"
    note = ""
    if is_pack_file(target):
        if steps_dir is not None or envelope_path is not None:
            raise _usage_error("--steps and --envelope apply to STACK.json, not to a pack")
        pack, report = verify_pack_file(target, policy=policy, now=now, expected_name=expected_name,
                                        state_path=_state_path(state_path) if policy is not None else None)
        if policy is None and pack.envelope is not None:
            note = signed_note
    elif policy is not None:
        report = verify_signed_files(target, policy=policy, now=now, state_path=_state_path(state_path),
                                     expected_name=expected_name, steps_dir=steps_dir,
                                     envelope_path=envelope_path)
    else:
        if envelope_path is not None:
            raise _usage_error("--envelope is checked only with --key or --policy")
        report = verify_stack_files(target, steps_dir)
        if envelope_path_for(target).exists():
            note = signed_note
    return report, note


# ------------------------------------------------------------------ fast path

# verify's options the fast path parses: option -> (parameter, takes a value, repeatable)
_VERIFY_OPTIONS = {
    "--json": ("as_json", False, False),
    "--steps": ("steps_dir", True, False),
    "--key": ("keys", True, True),
    "--threshold": ("threshold", True, False),
    "--state": ("state_path", True, False),
}


def _click_refuses(path: str, directory: bool) -> bool:
    """Whether ``click.Path`` refuses PATH: ``dir_okay=False`` (a file option) or ``file_okay=False``
    (``directory``). Like click, only a path that exists: of the wrong kind, or not readable."""
    import os
    import stat

    try:
        st = os.stat(path)
    except OSError:
        return False
    wrong_kind = stat.S_ISREG(st.st_mode) if directory else stat.S_ISDIR(st.st_mode)
    return wrong_kind or not os.access(path, os.R_OK)


def _verify_args(argv: list[str]) -> dict[str, Any] | None:
    """The parameters of ``verify`` ARGV as click would parse them, or None where click should parse it.

    None for anything but the options above (``--help`` and unknown options
    included), a missing or second TARGET, ``--`` and the values click would
    refuse (a directory for a file option, a file for --steps, a --threshold
    that is not a positive integer, an unreadable path).
    """
    params: dict[str, Any] = {"target": None, "as_json": False, "steps_dir": None, "keys": [],
                              "threshold": None, "state_path": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            if params["target"] is not None:
                return None
            params["target"] = arg
            continue
        name, eq, value = arg.partition("=")
        spec = _VERIFY_OPTIONS.get(name)
        if spec is None:
            return None
        param, takes_value, repeatable = spec
        if not takes_value:
            if eq or params[param]:
                return None
            params[param] = True
            continue
        if not eq:
            if i >= len(argv):
                return None
            value = argv[i]
            i += 1
        if repeatable:
            params[param].append(value)
        elif params[param] is not None:
            return None
        else:
            params[param] = value
    target = params["target"]
    if not target or not all(params["keys"]) or "" in (params["steps_dir"], params["state_path"]):
        return None
    files = [target, *params["keys"], params["state_path"]]
    if any(_click_refuses(p, directory=False) for p in files if p is not None):
        return None
    if params["steps_dir"] is not None and _click_refuses(params["steps_dir"], directory=True):
        return None
    threshold = params["threshold"]
    if threshold is not None:
        if not (threshold.isascii() and threshold.isdigit() and int(threshold) >= 1):
            return None
        params["threshold"] = int(threshold)
    params["keys"] = tuple(params["keys"])
    return params


def _fast_path(argv: list[str]) -> None:
    """Run ARGV here if it is ``--version`` or a plain ``verify`` (this exits); return to let click run it."""
    global _fast
    import os

    if os.environ.get("_LODEC_COMPLETE"):  # shell completion is click's
        return
    for stream in (sys.stdout, sys.stderr):  # click.echo re-encodes for other encodings
        if stream is None or (getattr(stream, "encoding", "") or "").lower().replace("-", "") != "utf8":
            return
    if argv in (["--version"], ["-V"]):
        _fast = True
        _echo(f"lodec, version {__version__}")
        sys.exit(0)
    if not argv or argv[0] != "verify":
        return
    params = _verify_args(argv[1:])
    if params is None:
        return
    as_json = params["as_json"]
    _fast = True
    try:
        try:
            report, note = _verify_target(params["target"], params["steps_dir"], None, params["keys"],
                                          params["threshold"], None, None, params["state_path"], None)
        except LodecError as exc:
            _fail(exc, as_json)
        _report_out(report, params["target"], as_json, note)
    except _NeedClick:
        return  # nothing was verified or written yet: click runs it again and reports the usage error
    except (EOFError, KeyboardInterrupt):
        _echo("", err=True)
        _echo("Aborted!", err=True)
        sys.exit(1)
    except OSError as exc:
        import errno

        if exc.errno != errno.EPIPE:
            raise
        from click.utils import PacifyFlushWrapper

        sys.stdout = PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment,operator]
        sys.stderr = PacifyFlushWrapper(sys.stderr)  # type: ignore[assignment,operator]
        sys.exit(1)
    finally:
        _fast = False


# ------------------------------------------------------------------ main


class _Main:
    """``lodec``: the click group of ``lodec.cli.commands``, imported on first use.

    Calling it with no arguments (as the ``lodec`` script and ``python -m
    lodec`` do) first tries the fast path; every attribute is the group's, so
    ``CliRunner().invoke(main, ...)`` and ``@main.command()`` work as on the group.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            _fast_path(sys.argv[1:])
        return _group()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_group(), name)

    def __repr__(self) -> str:
        return f"<lazy {_group()!r}>"


def _group() -> click.Group:
    from .commands import main as group

    return group


if TYPE_CHECKING:  # pragma: no cover
    main: click.Group
else:
    main = _Main()


def __getattr__(name: str) -> Any:
    """The other names of the command line (``CONTEXT``, ``_trust_options``, the commands) from ``cli_commands``."""
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(".commands", __package__)
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
