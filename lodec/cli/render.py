"""Rendering for the command line, text and JSON, without importing click.

The start-up fast path (``lodec.cli``) and the click commands print through
the same functions, so a command prints the same bytes whichever path ran
it. Exit codes: 0 success, 1 invalid input or verification failed, 2 usage.
Errors are one line on stderr: ``lodec: FILE: LOCATION: message [code]``.

Text output escapes every string that did not come from lodec itself
(stack names and versions, problem and error messages that quote files,
paths) with ``printable``, so it cannot forge or hide a line. JSON output
carries the raw values; ``emit`` writes the characters a terminal would act
on as JSON ``\\u`` escapes, which decode to the same values.
"""

from __future__ import annotations

import errno
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, NoReturn

    from ..errors import LodecError

#: True while a command runs on the fast path (no click): a usage error then
#: raises ``NeedClick``, and the command line is run again through click.
fast = False

#: ``lodec.names.printable``: control, format and other invisible characters as Python escapes
#: (the front end reaches the core only through ``lodec.app``, contract ``cli-talks-to-app``).
from ..app import SPACE_SEPARATORS, printable  # noqa: E402


def json_text(obj: Any, indent: int | None = 2) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` with the characters ``printable`` escapes written as ``\\uXXXX``.

    ``json.dumps`` escapes only U+0000–U+001F; DEL, C1 controls, bidi
    controls and the like would reach the terminal raw. Escaped, they still
    decode to the same value.
    """
    import json

    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    if text.replace("\n", "").isprintable():
        return text
    # Outside strings json.dumps writes only ASCII punctuation, digits, spaces and newlines.
    return "".join(c if c == "\n" or c.isprintable() or c in SPACE_SEPARATORS else _json_escape(c) for c in text)


def _json_escape(char: str) -> str:
    point = ord(char)
    if point < 0x10000:
        return f"\\u{point:04x}"
    point -= 0x10000  # a UTF-16 surrogate pair, as JSON spells code points above U+FFFF
    return f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}"


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
    """``click.echo``; on the fast path the same bytes are written without importing click.

    Raises:
        OutputUnwritable: stdout (not stderr) could not be written (``ENOSPC``, ``EIO``, ``EPIPE``).
    """
    try:
        if not fast or "\x1b" in message:  # click.echo strips ANSI codes when not writing to a terminal
            import click

            click.echo(message, err=err)
            return
        stream = sys.stderr if err else sys.stdout
        stream.write(message + "\n")
        stream.flush()
    except OSError as exc:
        if err:
            raise
        raise output_failed(exc) from exc


def write_out(data: str | bytes) -> None:
    """Write ``data`` to stdout as it is (bytes to the binary stream, no newline added), like ``cat``.

    Raises:
        OutputUnwritable: as ``echo``.
    """
    import click

    try:
        click.echo(data, nl=False)
    except OSError as exc:
        raise output_failed(exc) from exc


#: errno values that mean "standard output cannot take more": a full disk or quota, a file too large, I/O, a closed pipe.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EPIPE})


def output_failed(exc: OSError) -> Exception:
    """``exc`` (an ``OSError`` writing stdout) as an ``OutputUnwritable`` carrying its ``errno``."""
    from ..errors import OutputUnwritable

    failed = OutputUnwritable(f"cannot write the output: {exc.strerror or exc}", file="<stdout>")
    failed.errno = exc.errno  # type: ignore[attr-defined]
    return failed


def leave_on_output_failure(exc: BaseException) -> None:
    """End the process for an ``OutputUnwritable``: one line on stderr (none for a closed pipe), exit 1.

    Standard output is pointed at ``/dev/null`` first, so the interpreter's own final flush
    cannot fail again with a traceback (the recipe in Python's ``signal`` module docs, "Note on SIGPIPE").
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    if getattr(exc, "errno", None) != errno.EPIPE:
        try:
            sys.stderr.write(error_line(exc) + "\n")  # type: ignore[arg-type]
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    sys.exit(1)


def emit(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (2-space indent, UTF-8; ``json_text``)."""
    echo(json_text(obj))


def result(obj: dict[str, Any], ok: bool = True) -> None:
    """Print a command's ``--json`` result in the one envelope every command uses.

    A JSON object with ``ok`` first and always present (``obj``'s own ``ok``
    wins over ``ok``), then the command's members; a failure is
    ``{"ok": false, "error", ["errors"], ["problems"]}`` (``fail``).
    """
    emit({"ok": ok, **obj})


def error_line(exc: LodecError) -> str:
    """The one-line form of an error: ``lodec: FILE: LOCATION: message [code]`` (``printable``)."""
    return f"lodec: {printable(str(exc))} [{exc.code}]"


def problem_line(problem: Any) -> str:
    """One problem of a report: ``message [code]`` (``printable``)."""
    return f"{printable(problem.message)} [{problem.code}]"


def fail(exc: LodecError, as_json: bool) -> NoReturn:
    """Report ``exc`` (with ``--json`` also ``{"ok": false, "error", ["errors"], ["problems"]}`` on stdout), exit 1.

    A ``VerificationFailed`` carrying a report first prints each of its problems (``--json``: ``"problems"``).
    """
    report = getattr(exc, "report", None)
    if report is not None and not as_json:
        for p in report.problems:
            echo(problem_line(p), err=True)
    every = getattr(exc, "errors", None) or [exc]  # ManyErrors: a line for each
    if as_json:
        doc: dict[str, Any] = {"ok": False, "error": exc.to_dict()}
        if len(every) > 1:
            doc["errors"] = [e.to_dict() for e in every]
        if report is not None:  # what made the stack fail (NotVerified: sign, pack, ...), as verify --json lists it
            doc["problems"] = [p.to_dict() for p in report.problems]
        echo(json_text(doc, indent=None))
    for e in every:
        echo(error_line(e), err=True)
    sys.exit(1)


def verified_lines(report: Any, note: str = "") -> str:
    """``Verified NAME VERSION: N steps, manifest digest D`` (+ the signed line when signatures were checked)."""
    v = report.verified
    line = (f"Verified {printable(str(report.stack))} {printable(str(report.version))}: {len(report.steps)} steps, "
            f"manifest digest {report.digest}")
    if v.envelope is not None:
        line += "\n" + signed_line(report)
    return line + note


def signed_line(report: Any) -> str:
    """``Signed by N of T required trusted key(s): KEYIDS; expires TS`` for a verified, signed report."""
    v, sig = report.verified, report.signature
    return (f"Signed by {len(v.signed_by)} of {sig.threshold} required trusted key(s): "
            f"{', '.join(printable(k) for k in v.signed_by)}; expires {sig.expires}")


def rejected(report: Any, label: str) -> None:
    """Every problem, one line each, then ``Rejected NAME: N problem(s); nothing may run.`` (stderr)."""
    for p in report.problems:
        echo(problem_line(p), err=True)
    echo(f"Rejected {printable(str(report.stack or label))}: {len(report.problems)} problem(s); nothing may run.",
         err=True)


def first_use_note(result: Any) -> None:
    """On stderr, when a signed verification trusted a stack on first use (no earlier version recorded)."""
    if getattr(result, "first_use", False) and result.recorded is not None:
        v = result.report.verified
        echo(printable(f"lodec: note: no earlier version of {v.name} was recorded in {result.recorded}: "
                       f"{v.version} is trusted on first use. Rollback protection holds only while that file "
                       "is kept between runs (a CI cache: --state FILE or LODEC_STATE)"), err=True)


def report_out(report: Any, label: str, as_json: bool, note: str = "") -> NoReturn:
    """Print a verification report as ``lodec verify`` does, then exit 0 (verified) or 1."""
    if as_json:
        emit(report.to_dict())
    elif report.ok:
        echo(verified_lines(report, note))
    else:
        rejected(report, label)
    sys.exit(0 if report.ok else 1)


def compiled_out(compiled: Any, as_json: bool, quiet: bool) -> None:
    """Print what ``lodec compile`` wrote: each source, its output, size and fingerprint (or the ``--json`` result)."""
    if as_json:
        result({"compiled": [{"source": c.source, "output": str(c.output), "bytes": c.vein.size,
                              "fingerprint": c.vein.fingerprint} for c in compiled]})
    elif not quiet:
        lines = []
        for c in compiled:
            lines.append(f"Compiled {c.source} → {c.output} ({c.vein.size} bytes)")
            lines.append(f"Fingerprint: {c.vein.fingerprint}")
        if lines:
            echo("\n".join(lines))


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
