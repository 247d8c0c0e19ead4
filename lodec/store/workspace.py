"""The workspace: the project steps work on, and every path lodec keeps state in.

A ``Workspace`` is computed once per command (``Workspace.discover``) and
passed to everything that touches state; nothing else builds a state path.

- ``root``: the project (``--workspace DIR``; else the git repository root
  of the current directory; else the current directory).
- ``state``: ``<git root of root>/.lodec`` inside a git repository (never a
  subdirectory's), else ``$LODEC_HOME`` (default ``~/.lodec``).
- Under ``state``: ``skills/`` (installed skills), ``runs/<run id>/`` (run
  records; in each, ``skills/<name>`` as materialised and ``steps/<step>``),
  ``cas/`` (the artifact store), ``runs.lock`` (live runs against discard),
  ``trusted-stacks.json`` (the
  rollback state, unless ``--state FILE`` overrides it) and its lock file.

The git root is found by walking up to the first folder holding a ``.git``
entry (a directory, or a file for worktrees and submodules), without
running git.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

STATE_DIR_NAME = ".lodec"
#: The ``.gitignore`` written into a new state directory: what is per machine and never committed.
_IGNORED = "# Written by lodec: runs and artifacts are per machine.\nruns/\ncas/\n*.lock\n"
ROLLBACK_FILE_NAME = "trusted-stacks.json"


def find_git_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the current directory) holding ``.git``, or ``None``."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def lodec_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$LODEC_HOME``, or ``~/.lodec`` when it is unset or empty."""
    value = (os.environ if environ is None else environ).get("LODEC_HOME")
    return Path(value).expanduser() if value else Path.home() / STATE_DIR_NAME


class Workspace:
    """The project directory and every state path (absolute ``Path`` objects).

    Attributes:
        root: the project the steps work on.
        state: the state directory (``<git root>/.lodec`` or ``$LODEC_HOME``).
        home: ``$LODEC_HOME`` (user-wide skills are looked up there too).
        state_file: the rollback state given with ``--state FILE``, or ``None``
            for ``state / "trusted-stacks.json"``.
    """

    # A plain class, not a dataclass: it is on `lodec verify`'s start-up path.
    __slots__ = ("root", "state", "home", "state_file")

    def __init__(self, root: Path, state: Path, home: Path, state_file: Path | None = None) -> None:
        self.root, self.state, self.home, self.state_file = root, state, home, state_file

    def __repr__(self) -> str:
        return f"Workspace(root={self.root!r}, state={self.state!r}, home={self.home!r}, state_file={self.state_file!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and (self.root, self.state, self.home, self.state_file) == (
            other.root, other.state, other.home, other.state_file)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def discover(
        cls,
        workspace: str | os.PathLike[str] | None = None,
        *,
        state_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Workspace:
        """The workspace of ``workspace`` (``--workspace``) or of the current directory.

        ``state_file`` (``--state``), else ``$LODEC_STATE``, moves the rollback
        state (for example into a folder a CI cache keeps). Nothing is created
        on disk here.
        """
        env = os.environ if environ is None else environ
        home = lodec_home(env)
        if state_file is None and env.get("LODEC_STATE"):
            state_file = env["LODEC_STATE"]  # e.g. a path a CI cache keeps between jobs
        start = Path(workspace).resolve() if workspace is not None else Path.cwd().resolve()
        git_root = find_git_root(start)
        root = start if workspace is not None else (git_root or start)
        state = git_root / STATE_DIR_NAME if git_root is not None else home
        override = Path(state_file).absolute() if state_file is not None else None
        return cls(root=root, state=state.absolute(), home=home.absolute(), state_file=override)

    @property
    def skills(self) -> Path:
        """``<state>/skills``: skills installed with ``lodec skill add``."""
        return self.state / "skills"

    @property
    def runs(self) -> Path:
        """``<state>/runs``: one folder per run."""
        return self.state / "runs"

    @property
    def cas(self) -> Path:
        """``<state>/cas``: the content-addressed artifact store."""
        return self.state / "cas"

    @property
    def rollback_state(self) -> Path:
        """The rollback state file: ``--state FILE``, else ``<state>/trusted-stacks.json``."""
        return self.state_file if self.state_file is not None else self.state / ROLLBACK_FILE_NAME

    @property
    def rollback_lock(self) -> Path:
        """The lock file serialising updates of the rollback state (beside it)."""
        path = self.rollback_state
        return path.with_name(path.name + ".lock")

    @property
    def policy_file(self) -> Path:
        """``<state>/trust-policy.toml``: the trust policy applied by default when a command names no
        ``--key`` or ``--policy`` (``docs/signing.md`` §Policies)."""
        return self.state / "trust-policy.toml"

    def ensure_state(self) -> Path:
        """Create the state directory if needed, with a ``.gitignore`` for what must not be committed.

        ``runs/``, ``cas/`` and the lock files are per machine; ``skills/``,
        ``trusted-stacks.json`` and ``trust-policy.toml`` may be committed.
        Returns the state directory.

        Raises:
            OSError: it cannot be created.
        """
        self.state.mkdir(parents=True, exist_ok=True)
        ignore = self.state / ".gitignore"
        if not ignore.exists():
            try:
                fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                return self.state
            with os.fdopen(fd, "w") as fh:
                fh.write(_IGNORED)
        return self.state

    @property
    def runs_lock(self) -> Path:
        """``<state>/runs.lock``: held shared by every live run, exclusively by ``runs discard``."""
        return self.state / "runs.lock"

    def run_dir(self, run_id: str) -> Path:
        """``<state>/runs/<run id>`` (``run_id`` must be a safe name; the caller checks)."""
        return self.runs / run_id

    def run_skill_dir(self, run_id: str, skill: str) -> Path:
        """``runs/<run id>/skills/<skill>``: the skill as materialised for that run."""
        return self.run_dir(run_id) / "skills" / skill

    def step_dir(self, run_id: str, step: str) -> Path:
        """``runs/<run id>/steps/<step>``: the step's logs, and its working and output folders while it runs."""
        return self.run_dir(run_id) / "steps" / step

    def skill_roots(self, stack_path: str | os.PathLike[str] | None = None) -> list[Path]:
        """Where ``skill:<name>`` is looked up, in order (``docs/skill-contract.md``).

        ``skills/`` beside the stack (when given), ``<state>/skills``,
        ``$LODEC_HOME/skills``; each folder once.
        """
        roots: list[Path] = []
        if stack_path is not None:
            roots.append(Path(stack_path).resolve().parent / "skills")
        for folder in (self.skills, self.home / "skills"):
            folder = folder.resolve()
            if folder not in roots:
                roots.append(folder)
        return roots

    def state_paths(self) -> tuple[Path, ...]:
        """Every path lodec keeps state in: the state directory and, if elsewhere, the rollback state."""
        paths = [self.state]
        if self.state_file is not None and self.state not in self.state_file.parents:
            paths.append(self.state_file)
        return tuple(paths)
