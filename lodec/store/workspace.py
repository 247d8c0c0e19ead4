"""Where lodec keeps state: the workspace's ``.lodec/`` or ``$LODEC_HOME``.

Inside a git repository the state directory is ``<repository root>/.lodec``
(never the current subdirectory); outside git it is ``$LODEC_HOME``, by
default ``~/.lodec``. The repository root is found by walking up from the
current directory to the first folder holding a ``.git`` entry (a directory,
or a file for worktrees and submodules), without running git.
"""

from __future__ import annotations

import os
from pathlib import Path


def find_git_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the current directory) holding ``.git``, or ``None``."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def lodec_home() -> Path:
    """``$LODEC_HOME``, or ``~/.lodec`` when it is unset or empty."""
    value = os.environ.get("LODEC_HOME")
    return Path(value).expanduser() if value else Path.home() / ".lodec"


def state_dir(start: str | os.PathLike[str] | None = None) -> Path:
    """``<git root>/.lodec`` inside a git repository, else ``lodec_home()``. Not created here."""
    root = find_git_root(start)
    return root / ".lodec" if root is not None else lodec_home()
