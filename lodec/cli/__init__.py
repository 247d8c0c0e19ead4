"""The ``lodec`` command line: a front end over ``lodec.app``.

Exit codes: 0 success, 1 invalid input or verification failed, 2 usage
error. Errors are one line on stderr (``lodec: FILE: LOCATION: message``);
``--json`` prints machine-readable results on stdout.

Modules: ``render`` (text and JSON, no click), ``options`` (shared click
options), ``commands`` and ``run_commands`` (one click command per use
case: parse, call ``lodec.app``, render), ``group`` (the ``lodec`` group).

Start-up: this module imports neither click nor the use cases. ``main``
stands for the click group, loaded on first use. Run as a program
(``lodec ...`` or ``python -m lodec ...``), three command lines take a fast
path that prints the same output and exits with the same status without
importing click: ``lodec --version`` (``-V``), ``lodec verify TARGET``
with only ``--json``, ``--steps``, ``--key``, ``--threshold``, ``--state``,
``--workspace`` and ``--no-skills``, and ``lodec compile SOURCES... -o OUT``
with only ``-s``/``--schema``, ``--json`` and ``-q``/``--quiet``. Anything
else, or anything click itself would report (a usage error, ``--help``,
shell completion, a progress bar), runs through click.
"""

from __future__ import annotations

import gc
import os
import sys

from .. import __version__
from ..errors import OutputUnwritable
from . import render

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Any

    import click


# ------------------------------------------------------------------ fast path

# verify's options the fast path parses: option -> (parameter, takes a value, repeatable)
_VERIFY_OPTIONS = {
    "--json": ("as_json", False, False),
    "--steps": ("steps_dir", True, False),
    "--key": ("keys", True, True),
    "--threshold": ("threshold", True, False),
    "--state": ("state_path", True, False),
    "--workspace": ("workspace_dir", True, False),
    "--no-skills": ("no_skills", False, False),
}


# compile's options the fast path parses, as _VERIFY_OPTIONS. Short options only alone ("-o DIR"): click reads
# "-oDIR" and "-o=DIR" in ways _options leaves to click.
_COMPILE_OPTIONS = {
    "-s": ("schema_path", True, False),
    "--schema": ("schema_path", True, False),
    "-o": ("output", True, False),
    "--output": ("output", True, False),
    "--json": ("as_json", False, False),
    "-q": ("quiet", False, False),
    "--quiet": ("quiet", False, False),
}


def _options(argv: list[str], options: dict[str, tuple[str, bool, bool]], params: dict[str, Any]) -> list[str] | None:
    """Set ``params`` from the options in ARGV as click's parser would; return the other arguments, in order.

    ``options``: option -> (parameter, takes a value, repeatable). None where
    click should parse ARGV: an option not in ``options`` (``--help`` and
    ``--`` included), a flag given a value or twice, a value missing, an
    option that is not repeatable given twice, a short option with ``=``.
    """
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, value = arg.partition("=")
        spec = options.get(name)
        if spec is None or (eq and not name.startswith("--")):
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
    return positional


def _compile_args(argv: list[str]) -> dict[str, Any] | None:
    """The parameters of ``compile`` ARGV as click would parse them, or None where click should parse it.

    None for anything but the options above (``--help``, ``--``, combined or
    repeated options included), no source or no ``--output``, and the paths
    ``click.Path(dir_okay=False)`` would refuse (an existing folder or an
    unreadable file as a source or schema).
    """
    params: dict[str, Any] = {"schema_path": None, "output": None, "as_json": False, "quiet": False}
    sources = params["sources"] = _options(argv, _COMPILE_OPTIONS, params)
    if sources is None:
        return None
    schema = params["schema_path"]
    if not sources or not params["output"] or "-" in sources or schema == "":
        return None
    if any(_click_refuses(p, directory=False) for p in (*sources, *(() if schema is None else (schema,)))):
        return None
    return params


def _click_refuses(path: str, directory: bool) -> bool:
    """Whether ``click.Path`` refuses PATH: ``dir_okay=False`` (a file option) or ``file_okay=False``
    (``directory``). Like click, only a path that exists: of the wrong kind, or not readable."""
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
    params: dict[str, Any] = {"as_json": False, "steps_dir": None, "keys": [], "threshold": None,
                              "state_path": None, "workspace_dir": None, "no_skills": False}
    positional = _options(argv, _VERIFY_OPTIONS, params)
    if positional is None or len(positional) != 1:
        return None
    target = params["target"] = positional[0]
    if not target or not all(params["keys"]) or "" in (params["steps_dir"], params["state_path"],
                                                        params["workspace_dir"]):
        return None
    files = [target, *params["keys"], params["state_path"]]
    if any(_click_refuses(p, directory=False) for p in files if p is not None):
        return None
    if params["steps_dir"] is not None and _click_refuses(params["steps_dir"], directory=True):
        return None
    workspace = params["workspace_dir"]
    if workspace is not None and (_click_refuses(workspace, directory=True) or not os.path.isdir(workspace)):
        return None  # click.Path(exists=True): a missing workspace is click's usage error
    threshold = params["threshold"]
    if threshold is not None:
        if not (threshold.isascii() and threshold.isdigit() and int(threshold) >= 1):
            return None
        params["threshold"] = int(threshold)
    params["keys"] = tuple(params["keys"])
    return params


def _fast_path(argv: list[str]) -> None:
    """Run ARGV here if it is ``--version``, a plain ``verify`` or a plain ``compile`` (this exits); else return."""
    if os.environ.get("_LODEC_COMPLETE"):  # shell completion is click's
        return
    for stream in (sys.stdout, sys.stderr):  # click.echo re-encodes for other encodings
        if stream is None or (getattr(stream, "encoding", "") or "").lower().replace("-", "") != "utf8":
            return
    if argv in (["--version"], ["-V"]):
        render.fast = True
        render.echo(f"lodec, version {__version__}")
        sys.exit(0)
    if argv and argv[0] == "compile":
        _fast_compile(argv[1:])
        return
    if not argv or argv[0] != "verify":
        return
    params = _verify_args(argv[1:])
    if params is None:
        return
    as_json = params["as_json"]

    def verify() -> None:
        from ..app.options import TrustOptions
        from ..app.verify import verify_target
        from ..app import Workspace

        with render.outcome(as_json, params["target"]):
            workspace = Workspace.discover(params["workspace_dir"], state_file=params["state_path"])
            trust = TrustOptions(keys=params["keys"], threshold=params["threshold"])
            result = verify_target(params["target"], workspace, trust, steps_dir=params["steps_dir"],
                                   check_skills=not params["no_skills"])
        render.first_use_note(result)
        render.report_out(result.report, params["target"], as_json, result.note)

    _run_fast(verify)


def _fast_compile(argv: list[str]) -> None:
    """``lodec compile`` without click (this exits), or return to let click run it.

    click's parser takes each of many path arguments with ``list.pop(0)``
    (quadratic in their number) and ``stat``s each; a usage error, a
    progress bar (200 sources or more on a terminal) or anything unusual is
    left to click, which runs the command again: nothing is written before
    every source has compiled.
    """
    params = _compile_args(argv)
    if params is None:
        return
    sources, as_json, quiet = params["sources"], params["as_json"], params["quiet"]
    if not (quiet or as_json) and len(sources) >= 200 and sys.stderr.isatty():
        return

    def run_compile() -> None:
        from ..app import build

        with render.outcome(as_json):
            compiled = build.compile_sources(sources, params["output"], params["schema_path"])
        render.compiled_out(compiled, as_json, quiet)

    _run_fast(run_compile)


def _run_fast(command: Callable[[], None]) -> None:
    """Run a command on the fast path and end the process as click's standalone mode would; or return,
    nothing done yet, where click must run it (``render.NeedClick``: click reports the usage error)."""
    render.fast = True
    # One command, then the process ends: the cyclic collector would only walk the result's objects (a full
    # pass over a 10,000-step report costs tens of ms) and free nothing.
    gc.disable()
    try:
        command()
        sys.exit(0)
    except SystemExit as done:
        _leave(done)
    except render.NeedClick:
        gc.enable()
        return
    except (EOFError, KeyboardInterrupt):
        render.echo("", err=True)
        render.echo("Aborted!", err=True)
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
        render.fast = False


def _leave(done: SystemExit) -> None:
    """End the process with ``done``'s status without the interpreter's teardown.

    Everything is written by now (output is flushed here, state files were
    written atomically); freeing the verified stack object by object at exit
    costs more than the verification of a large stack's steps. ``atexit``
    hooks still run. Where flushing fails (a closed pipe) the normal exit
    runs, as before.
    """
    if not isinstance(done.code, int):
        raise done
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        raise done from None
    import atexit

    atexit._run_exitfuncs()
    os._exit(done.code)


# ------------------------------------------------------------------ main


class _Main:
    """``lodec``: the click group of ``lodec.cli.group``, imported on first use.

    Calling it with no arguments (as the ``lodec`` script and ``python -m
    lodec`` do) first tries the fast path; every attribute is the group's, so
    ``CliRunner().invoke(main, ...)`` works as on the group.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            try:
                _fast_path(sys.argv[1:])
                return _group()()
            except OutputUnwritable as failed:
                render.leave_on_output_failure(failed)
            except OSError as exc:
                # click writes --help and its usage errors itself; lodec's own file errors are LodecErrors.
                if exc.errno not in render.OUTPUT_ERRNOS:
                    raise
                render.leave_on_output_failure(render.output_failed(exc))
            except SystemExit as done:
                if "temporalio" in sys.modules:
                    # The Temporal SDK's Rust threads can outlive the interpreter's teardown and abort or
                    # crash it (temporalio/sdk-python#300): a failed connection exited 134 or 139 about
                    # one time in eight. Everything is written and flushed by now, so skip the teardown.
                    _leave(done)
                raise
        return _group()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_group(), name)

    def __repr__(self) -> str:
        return f"<lazy {_group()!r}>"


def _group() -> click.Group:
    from .group import main as group

    return group


if TYPE_CHECKING:  # pragma: no cover
    main: click.Group
else:
    main = _Main()
