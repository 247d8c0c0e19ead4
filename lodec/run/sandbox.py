"""The step sandbox: bubblewrap namespaces and mounts, so a step sees only what it declared.

Every step runs under ``bwrap`` (bubblewrap, https://github.com/containers/bubblewrap)
with new user, PID, IPC, UTS and cgroup namespaces, a new network namespace
unless its skill declares ``network = true``, ``--die-with-parent`` and
``--new-session``. Its filesystem is built from nothing:

- the system, read-only: ``/usr``, ``/bin``, ``/sbin``, ``/lib*``, ``/etc``
  (minus its secrets: ``shadow``, ``gshadow``, ``sudoers``, SSH host keys,
  private TLS keys), the interpreter lodec runs on (``sys.prefix`` and
  ``sys.base_prefix``) and the directories on ``PATH``;
- a new ``/proc`` (only the step's own processes), a minimal ``/dev``, an
  empty private ``/tmp``;
- the workspace as an empty read-only folder at its own path, holding only
  the skill's ``capabilities.read`` paths (read-only) and
  ``capabilities.write`` paths (read-write), each resolved and required to
  stay inside the workspace;
- the sandbox's root itself read-only, so ``/tmp``, the working and output
  folders and the declared write paths are the only writable places;
- ``/run/lodec/skill`` (the skill's private copy, read-only),
  ``/run/lodec/work`` (its working directory), ``/run/lodec/out`` (its
  output directory), ``/run/lodec/in/<step>/<output>`` (upstream artifacts,
  read-only);
- lodec's state directory (runs, CAS, skills, rollback state, locks) and
  ``$LODEC_HOME`` are never bound, and are hidden under an empty tmpfs where
  a bound path would contain them.

A step therefore cannot see, signal or trace lodec (another PID namespace),
cannot outlive its step (the PID namespace dies with its first process), and
cannot reach the network it did not declare. The contract is
``docs/skill-contract.md`` §Sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RunError

#: Variables a step always gets from lodec's environment when set (besides declared ones and LODEC_*).
BASE_ENV = ("PATH", "LANG")

#: Where the step finds its own folders inside the sandbox.
SANDBOX_ROOT = "/run/lodec"
SKILL_DIR = f"{SANDBOX_ROOT}/skill"
WORK_DIR = f"{SANDBOX_ROOT}/work"
OUT_DIR = f"{SANDBOX_ROOT}/out"
IN_DIR = f"{SANDBOX_ROOT}/in"

#: System folders bound read-only when they exist.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
#: Secrets under /etc, masked inside the read-only /etc (files by /dev/null, folders by an empty tmpfs).
ETC_SECRET_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers",
                    "/etc/security/opasswd")
ETC_SECRET_DIRS = ("/etc/ssh", "/etc/sudoers.d", "/etc/ssl/private")

NAMESPACES = ("user", "pid", "ipc", "uts", "cgroup")


@dataclass(frozen=True)
class Sandbox:
    """How steps are sealed on this machine.

    ``bwrap`` is the bubblewrap program, or ``None`` when it cannot be used
    here (``reason`` says why). ``version`` is what ``bwrap --version`` printed.
    """

    bwrap: str | None
    version: str
    reason: str

    @property
    def available(self) -> bool:
        return self.bwrap is not None

    def describe(self, network: bool) -> str:
        """One line naming the mechanisms in force for a step (``network``: its skill declares it)."""
        if self.bwrap is None:
            return "none (--allow-unsandboxed)"
        spaces = list(NAMESPACES) + ([] if network else ["net"])
        return (f"{self.version}: {', '.join(spaces)} namespaces; read-only system; workspace by capabilities; "
                "state hidden")


def probe_sandbox() -> Sandbox:
    """Find bubblewrap and prove it works here by running ``true`` in the same namespaces a step gets."""
    if not sys.platform.startswith("linux"):
        return Sandbox(None, "", f"bubblewrap needs Linux; this is {sys.platform}")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Sandbox(None, "", "bubblewrap ('bwrap') is not on PATH (Debian/Ubuntu: apt-get install bubblewrap)")
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, timeout=10, text=True).stdout.strip()
        done = subprocess.run([bwrap, *_namespace_args(network=False), "--ro-bind", "/", "/", "--proc", "/proc",
                               "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Sandbox(None, "", f"bubblewrap failed to start: {exc}")
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit {done.returncode}"
        return Sandbox(None, "", f"bubblewrap cannot create namespaces here ({why}); user namespaces may be disabled")
    return Sandbox(bwrap, version or "bubblewrap", "")


def _namespace_args(*, network: bool) -> list[str]:
    args = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        args.append("--unshare-net")
    return [*args, "--die-with-parent", "--new-session"]


@dataclass
class StepMounts:
    """What one step may see, as host paths (``docs/skill-contract.md`` §Sandbox).

    Attributes:
        workspace: the project; shown at the same path, holding only ``read`` and ``write``.
        read, write: the skill's ``capabilities.read`` / ``.write`` (relative to ``workspace``).
        skill, work, out: the skill's private copy, the working and output directories.
        inputs: sandbox path under ``IN_DIR`` -> host path of an upstream artifact (bound read-only).
        hidden: state paths that must stay invisible (masked if a bound path contains them).
        network: the skill declares ``network = true``.
    """

    workspace: Path
    read: Sequence[str]
    write: Sequence[str]
    skill: Path
    work: Path
    out: Path
    inputs: Mapping[str, Path] = field(default_factory=dict)
    hidden: Sequence[Path] = ()
    network: bool = False


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _resolve_declared(workspace: Path, relative: str, what: str) -> Path:
    """``workspace/relative`` with links resolved; refuses a path that leaves the workspace.

    Raises:
        RunError: ``capability_escapes`` when the resolved path is outside the workspace
            (a link planted by an earlier step, or ``..`` through a link).
    """
    resolved = (workspace / relative).resolve()
    if not _inside(resolved, workspace):
        raise RunError(f"capabilities.{what} path {relative!r} resolves to {resolved}, outside the workspace "
                       f"{workspace}: refused", code="capability_escapes")
    return resolved


def bwrap_argv(sandbox: Sandbox, mounts: StepMounts, command: Sequence[str]) -> list[str]:
    """The full ``bwrap`` command line that runs ``command`` (already relative to ``SKILL_DIR``) sealed.

    Raises:
        RunError: ``capability_escapes`` (a declared path resolves outside the
            workspace), ``sandbox_unavailable`` (no bubblewrap).
    """
    if sandbox.bwrap is None:
        raise RunError(f"no sandbox: {sandbox.reason}", code="sandbox_unavailable")
    ws = mounts.workspace.resolve()
    argv = [sandbox.bwrap, *_namespace_args(network=mounts.network)]
    # /tmp first: the workspace and lodec's own folders may live under it (binds come after).
    argv += ["--tmpfs", "/tmp"]
    for d in SYSTEM_DIRS:
        if os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for f in ETC_SECRET_FILES:
        if os.path.lexists(f):
            argv += ["--ro-bind", "/dev/null", f]
    for d in ETC_SECRET_DIRS:
        if os.path.isdir(d):
            argv += ["--tmpfs", d, "--remount-ro", d]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # The workspace: an empty read-only folder at its own path, then only what the skill declared
    # (the whole workspace when "." is declared).
    reads = [(rel, _resolve_declared(ws, rel, "read")) for rel in mounts.read]
    writes = [(rel, _resolve_declared(ws, rel, "write")) for rel in mounts.write]
    if any(src == ws for _, src in writes):
        argv += ["--bind", str(ws), str(ws)]
    else:
        whole_read = any(src == ws for _, src in reads)
        argv += ["--ro-bind", str(ws), str(ws)] if whole_read else ["--tmpfs", str(ws)]
        for rel, src in reads:
            if src.exists() and src != ws:
                argv += ["--ro-bind", str(src), str(ws / rel)]
        for rel, src in writes:
            if not src.exists():
                src.mkdir(parents=True)  # a declared write path that does not exist yet is created as a folder
            argv += ["--bind", str(src), str(ws / rel)]
        if not whole_read:
            argv += ["--remount-ro", str(ws)]
    # The interpreter lodec runs on (skills use $LODEC_PYTHON) with its import path, and the commands
    # on PATH, read-only; import-path and PATH folders inside the workspace or the state are not shown.
    for d in _tool_dirs(exclude=(ws, *(h.resolve() for h in mounts.hidden))):
        argv += ["--ro-bind", str(d), str(d)]
    # lodec's state: never visible, even where a bound folder contains it.
    for hidden in mounts.hidden:
        h = hidden.resolve()
        if _covered(h, argv):
            argv += ["--tmpfs", str(h), "--remount-ro", str(h)]
    argv += ["--ro-bind", str(mounts.skill), SKILL_DIR,
             "--bind", str(mounts.work), WORK_DIR,
             "--bind", str(mounts.out), OUT_DIR]
    for inside, host in sorted(mounts.inputs.items()):
        argv += ["--ro-bind", str(host), f"{IN_DIR}/{inside}"]
    # The sandbox's own root (a tmpfs holding the mount points) is read-only too: /tmp, the work and
    # output folders and the declared write paths are the only places a step can write.
    argv += ["--remount-ro", "/", "--chdir", WORK_DIR, "--", *command]
    return argv


def _tool_dirs(exclude: Sequence[Path] = ()) -> list[Path]:
    """Folders outside the system ones that steps need: the interpreter's prefixes (always), then the
    folders on its import path and on ``PATH`` that are not inside any of ``exclude``."""
    out: list[Path] = []
    interpreter = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent]
    others = [Path(p) for p in sys.path if p] + [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    for c, always in [(c, True) for c in interpreter] + [(c, False) for c in others]:
        try:
            c = c.resolve()
        except OSError:
            continue
        if not c.is_dir() or c == Path("/") or any(_inside(c, Path(s)) for s in SYSTEM_DIRS):
            continue
        if not always and any(_inside(c, e) or _inside(e, c) for e in exclude):
            continue
        if c not in out and not any(_inside(c, o) for o in out):
            out = [o for o in out if not _inside(o, c)] + [c]
    return out


def _covered(path: Path, argv: Sequence[str]) -> bool:
    """Whether a bind in ``argv`` so far shows ``path`` (a bind source containing it)."""
    for i, arg in enumerate(argv):
        if arg in ("--bind", "--ro-bind") and i + 2 < len(argv):
            src = Path(argv[i + 1])
            if _inside(path, src) and src != Path("/dev/null"):
                return True
    return False


def step_environment(parent: Mapping[str, str], declared: Sequence[str], lodec_vars: Mapping[str, str]) -> dict[str, str]:
    """The environment a step gets: ``PATH``, ``LANG``, the declared variables (when set), ``LODEC_*``.

    Every other variable of ``parent`` is withheld.
    """
    env = {k: parent[k] for k in (*BASE_ENV, *declared) if k in parent}
    env.update(lodec_vars)
    return env
