"""Rendering for the command line, text and JSON, without importing click.

The start-up fast path (``lodec.cli``) and the click commands print through
the same functions, so a command prints the same bytes whichever path ran
it. Exit codes: 0 success, 1 invalid input or verification failed, 2 usage.
Errors are one line on stderr: ``lodec: FILE: LOCATION: message [code]``.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, NoReturn

    from ..errors import LodecError

#: True while a command runs on the fast path (no click): a usage error then
#: raises ``NeedClick``, and the command line is run again through click.
fast = False


class NeedClick(Exception):
    """On the fast path: click must handle this command line (it reports a usage error)."""


def usage_error(message: str, param_hint: str | None = None) -> Exception:
    """``click.UsageError`` (``click.BadParameter`` with a ``param_hint``), or ``NeedClick`` on the fast path."""
    if fast:
        return NeedClick(message)
    import click

    if param_hint is None:
        return click.UsageError(message)
    return click.BadParameter(message, param_hint=param_hint)


def echo(message: str, err: bool = False) -> None:
    """``click.echo``; on the fast path the same bytes are written without importing click."""
    if not fast or "\x1b" in message:  # click.echo strips ANSI codes when not writing to a terminal
        import click

        click.echo(message, err=err)
        return
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def emit(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (2-space indent, UTF-8)."""
    import json

    echo(json.dumps(obj, indent=2, ensure_ascii=False))


def error_line(exc: LodecError) -> str:
    """The one-line form of an error: ``lodec: FILE: LOCATION: message [code]``."""
    return f"lodec: {exc} [{exc.code}]"


def fail(exc: LodecError, as_json: bool) -> NoReturn:
    """Report ``exc`` (with ``--json`` also ``{"ok": false, "error": ...}`` on stdout) and exit 1.

    A ``VerificationFailed`` carrying a report first prints each of its problems.
    """
    report = getattr(exc, "report", None)
    if report is not None and not as_json:
        for p in report.problems:
            echo(f"{p.message} [{p.code}]", err=True)
    if as_json:
        import json

        echo(json.dumps({"ok": False, "error": exc.to_dict()}, ensure_ascii=False))
    echo(error_line(exc), err=True)
    sys.exit(1)


def verified_lines(report: Any, note: str = "") -> str:
    """``Verified NAME VERSION: N steps, manifest digest D`` (+ the signed line when signatures were checked)."""
    v = report.verified
    line = f"Verified {report.stack} {report.version}: {len(report.steps)} steps, manifest digest {report.digest}"
    if v.envelope is not None:
        sig = report.signature
        line += (f"\nSigned by {len(v.signed_by)} of {sig.threshold} required trusted key(s): "
                 f"{', '.join(v.signed_by)}; expires {sig.expires}")
    return line + note


def rejected(report: Any, label: str) -> None:
    """Every problem, one line each, then ``Rejected NAME: N problem(s); nothing may run.`` (stderr)."""
    for p in report.problems:
        echo(f"{p.message} [{p.code}]", err=True)
    echo(f"Rejected {report.stack or label}: {len(report.problems)} problem(s); nothing may run.", err=True)


def report_out(report: Any, label: str, as_json: bool, note: str = "") -> NoReturn:
    """Print a verification report as ``lodec verify`` does, then exit 0 (verified) or 1."""
    if as_json:
        emit(report.to_dict())
    elif report.ok:
        echo(verified_lines(report, note))
    else:
        rejected(report, label)
    sys.exit(0 if report.ok else 1)


class outcome:
    """Run a use case and render how it ended: ``with outcome(as_json, label): ...``.

    - ``OptionsError`` -> a usage error (exit 2; on the fast path, click runs again);
    - ``NotVerified`` (a stack that must verify before it is signed or packed)
      -> its problems, then the one-line error, exit 1;
    - ``VerificationFailed`` (the target itself was rejected) -> the report as
      ``lodec verify`` prints it, exit 1;
    - any other ``LodecError`` -> the one-line error, exit 1.
    """

    def __init__(self, as_json: bool = False, label: str = "") -> None:
        self.as_json, self.label = as_json, label

    def __enter__(self) -> outcome:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            return False
        from ..app.options import OptionsError
        from ..app.verify import NotVerified
        from ..errors import LodecError, VerificationFailed

        if isinstance(exc, OptionsError):
            raise usage_error(exc.message, exc.param_hint) from None
        if isinstance(exc, VerificationFailed) and not isinstance(exc, NotVerified):
            report_out(exc.report, self.label, self.as_json)
        if isinstance(exc, LodecError):
            fail(exc, self.as_json)
        return False
