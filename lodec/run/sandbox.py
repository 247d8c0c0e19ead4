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
  ``/run/lodec/work`` (its working directory, a private tmpfs),
  ``/run/lodec/out`` (its output directory), ``/run/lodec/in/<step>/<output>``
  (upstream artifacts, read-only);
- lodec's state directory (runs, CAS, skills, rollback state, locks) and
  ``$LODEC_HOME`` are never bound, and are hidden under an empty tmpfs where
  a bound path would contain them.

A step therefore cannot see, signal or trace lodec (another PID namespace),
cannot outlive its step (the PID namespace dies with its first process), and
cannot reach the network it did not declare. The contract is
``docs/skill-contract.md`` §Sandbox.

Where bubblewrap cannot run (no user namespaces), Landlock is the fallback
(Linux LSM, ABI 6 or later, through the ``py-landlock`` binding): the step
restricts itself before ``exec`` to the same files (read: system,
interpreter, declared read paths, its skill copy and upstream artifacts;
read-write: its work, output and temporary folders and declared write
paths), cannot signal or trace any process outside its Landlock domain
(lodec included), cannot connect or bind TCP without ``network = true``, and
needs a network namespace (``unshare``; root or user namespaces) to deny
the rest of the network; lodec, a child subreaper, kills whatever a step
leaves behind. ``LODEC_SANDBOX=bubblewrap|landlock`` chooses one.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
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
#: Folders the sandbox makes itself, never shown from the host through a PATH or import-path entry.
SANDBOX_MADE = (Path("/tmp"), Path("/var/tmp"))
#: Trees the sandbox makes itself or that hold the host's processes, devices and sockets.
SANDBOX_MADE_TREES = ("/proc", "/sys", "/dev", "/run")
#: Secrets under /etc, masked inside the read-only /etc (files by /dev/null, folders by an empty tmpfs).
ETC_SECRET_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers",
                    "/etc/security/opasswd")
ETC_SECRET_DIRS = ("/etc/ssh", "/etc/sudoers.d", "/etc/ssl/private")

NAMESPACES = ("user", "pid", "ipc", "uts", "cgroup")


#: Landlock ABI needed: 6 scopes signals and abstract UNIX sockets to the step's own domain.
LANDLOCK_MIN_ABI = 6
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Sandbox:
    """How steps are sealed on this machine.

    ``bwrap`` is the bubblewrap program, or ``None`` when it cannot be used
    here; ``landlock`` the Landlock ABI used instead (0: none); ``reason``
    says why a mechanism is missing. ``version`` is what ``bwrap --version``
    printed.
    """

    bwrap: str | None
    version: str
    reason: str
    landlock: int = 0

    @property
    def available(self) -> bool:
        return self.bwrap is not None or self.landlock >= LANDLOCK_MIN_ABI

    @property
    def kind(self) -> str:
        """``bubblewrap``, ``landlock`` or ``none``."""
        return "bubblewrap" if self.bwrap is not None else "landlock" if self.available else "none"

    def describe(self, network: bool) -> str:
        """One line naming the mechanisms in force for a step (``network``: its skill declares it)."""
        if self.bwrap is not None:
            spaces = list(NAMESPACES) + ([] if network else ["net"])
            return (f"{self.version}: {', '.join(spaces)} namespaces; read-only system; workspace by capabilities; "
                    "state hidden")
        if self.available:
            net = "" if network else "; net namespace"
            return (f"landlock ABI {self.landlock}: filesystem by capabilities, signals and ptrace scoped, "
                    f"TCP denied{net}; state hidden; strays killed (child subreaper)")
        return "none (--allow-unsandboxed)"


def probe_sandbox(prefer: str | None = None) -> Sandbox:
    """The strongest mechanism that works here: bubblewrap (proved by running ``true`` in the namespaces
    a step gets), else Landlock (ABI >= 6). ``prefer`` (default ``$LODEC_SANDBOX``) names one:
    ``bubblewrap`` or ``landlock``."""
    prefer = prefer if prefer is not None else os.environ.get("LODEC_SANDBOX") or None
    if prefer not in (None, "bubblewrap", "landlock"):
        return Sandbox(None, "", f"LODEC_SANDBOX={prefer!r} is not bubblewrap or landlock")
    if prefer == "landlock":
        return _probe_landlock("LODEC_SANDBOX=landlock")
    found = _probe_bwrap()
    if found.available or prefer == "bubblewrap":
        return found
    fallback = _probe_landlock(found.reason)
    return fallback


def _probe_landlock(why_not_bwrap: str) -> Sandbox:
    try:
        from py_landlock import get_abi_version
    except ImportError:
        return Sandbox(None, "", f"{why_not_bwrap}; and the Landlock binding (py-landlock) is not installed")
    try:
        abi = int(get_abi_version())
    except Exception as exc:  # the binding reports a kernel without Landlock by raising
        return Sandbox(None, "", f"{why_not_bwrap}; and Landlock is not available ({exc})")
    if abi < LANDLOCK_MIN_ABI:
        return Sandbox(None, "", f"{why_not_bwrap}; and Landlock ABI {abi} cannot scope signals "
                                 f"(ABI {LANDLOCK_MIN_ABI} or later needed)")
    return Sandbox(None, "", why_not_bwrap, landlock=abi)


def _probe_bwrap() -> Sandbox:
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
    #: Host paths shown read-only at their own path (the workspace's agent runner's ``paths``).
    tools: Sequence[Path] = ()


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
    ws = _realpath(mounts.workspace)
    hidden = tuple(_realpath(h) for h in mounts.hidden)
    argv = [sandbox.bwrap, *_namespace_args(network=mounts.network)]
    # /tmp first: the workspace and lodec's own folders may live under it (binds come after).
    argv += ["--tmpfs", "/tmp", *_system_args()]
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
    for d in _tool_dirs(exclude=(ws, *hidden)):
        argv += ["--ro-bind", str(d), str(d)]
    for d in mounts.tools:
        argv += ["--ro-bind", str(d), str(d)]
    # lodec's state: never visible, even where a bound folder contains it.
    for h in hidden:
        if _covered(h, argv):
            argv += ["--tmpfs", str(h), "--remount-ro", str(h)]
    # The working directory is a private tmpfs: scratch that vanishes with the step, nothing on the host.
    argv += ["--ro-bind", str(mounts.skill), SKILL_DIR,
             "--tmpfs", WORK_DIR,
             "--bind", str(mounts.out), OUT_DIR]
    for inside, host in sorted(mounts.inputs.items()):
        argv += ["--ro-bind", str(host), f"{IN_DIR}/{inside}"]
    # The sandbox's own root (a tmpfs holding the mount points) is read-only too: /tmp, the work and
    # output folders and the declared write paths are the only places a step can write.
    argv += ["--remount-ro", "/", "--chdir", WORK_DIR, "--", *command]
    return argv


@functools.lru_cache(maxsize=1)
def _system_args() -> tuple[str, ...]:
    """The read-only system, /etc's secrets masked, a new /proc and /dev (the same for every step of a run)."""
    args: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in ETC_SECRET_FILES:
        if os.path.lexists(f):
            args += ["--ro-bind", "/dev/null", f]
    for d in ETC_SECRET_DIRS:
        if os.path.isdir(d):
            args += ["--tmpfs", d, "--remount-ro", d]
    return (*args, "--proc", "/proc", "--dev", "/dev")


def _tool_dirs(exclude: Sequence[Path] = ()) -> list[Path]:
    """Folders outside the system ones that steps need: the interpreter's prefixes (always), then the
    folders on its import path and on ``PATH`` that are not inside any of ``exclude``."""
    # Resolving every entry costs ~2 ms; a run asks once per step with the same inputs.
    return list(_tool_dirs_for(tuple(exclude), tuple(sys.path), os.environ.get("PATH", "")))


@functools.lru_cache(maxsize=16)
def _tool_dirs_for(exclude: tuple[Path, ...], import_path: tuple[str, ...], path_env: str) -> tuple[Path, ...]:
    out: list[Path] = []
    interpreter = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent]
    others = [Path(p) for p in import_path if p] + [Path(p) for p in path_env.split(os.pathsep) if p]
    for c, always in [(c, True) for c in interpreter] + [(c, False) for c in others]:
        try:
            c = c.resolve()
        except OSError:
            continue
        if not c.is_dir() or c == Path("/") or any(_inside(c, Path(s)) for s in SYSTEM_DIRS):
            continue
        # Folders the sandbox makes itself (a private /tmp, a new /proc and /dev, /run/lodec): a PATH entry
        # naming one (or inside /proc, /sys, /dev, /run) would bind the host's over the sandbox's own.
        if c in SANDBOX_MADE or any(_inside(c, Path(s)) for s in SANDBOX_MADE_TREES):
            continue
        if not always and any(_inside(c, e) or _inside(e, c) for e in exclude):
            continue
        if c not in out and not any(_inside(c, o) for o in out):
            out = [o for o in out if not _inside(o, c)] + [c]
    return tuple(out)


def _covered(path: Path, argv: Sequence[str]) -> bool:
    """Whether a bind in ``argv`` so far shows ``path`` (a bind source containing it)."""
    target = str(path)
    for i, arg in enumerate(argv):
        if arg in ("--bind", "--ro-bind") and i + 2 < len(argv):
            src = argv[i + 1]
            if src != "/dev/null" and (target == src or target.startswith(src.rstrip("/") + "/")):
                return True
    return False


@functools.lru_cache(maxsize=64)
def _realpath(path: Path) -> Path:
    """``path.resolve()``, once per path per process: the workspace and state folders of a run do not move
    (no step can reach them to replace them), and resolving them for every step cost ~0.3 ms."""
    return path.resolve()


def step_environment(parent: Mapping[str, str], declared: Sequence[str], lodec_vars: Mapping[str, str]) -> dict[str, str]:
    """The environment a step gets: ``PATH``, ``LANG``, the declared variables (when set), ``LODEC_*``.

    Every other variable of ``parent`` is withheld.
    """
    env = {k: parent[k] for k in (*BASE_ENV, *declared) if k in parent}
    env.update(lodec_vars)
    return env


# ------------------------------------------------------------------ Landlock fallback


def landlock_preexec(mounts: StepMounts, tmp: Path) -> Callable[[], None]:
    """What the step's child runs between ``fork`` and ``exec`` under the Landlock fallback.

    In order: a new session; SIGKILL when lodec's thread that started it
    dies; without ``network = true`` a new network namespace (``unshare``;
    ``run_stack`` refuses beforehand where that is impossible, so an
    undeclared network is never reachable); then the Landlock domain built
    here, in lodec (no import or allocation happens in the child): only
    ``landlock_paths(mounts, tmp)``, no TCP unless ``network``, no signals or
    abstract UNIX sockets outside the domain.

    Raises:
        RunError: ``capability_escapes`` (see ``landlock_paths``).
    """
    from py_landlock import AccessFs, Landlock

    read, write = landlock_paths(mounts, tmp)
    # A rule on a file may only grant file rights (the kernel refuses directory rights there).
    file_read = AccessFs.READ_FILE | AccessFs.EXECUTE
    dir_read = file_read | AccessFs.READ_DIR
    file_write = AccessFs.READ_FILE | AccessFs.WRITE_FILE | AccessFs.TRUNCATE
    dir_write = (dir_read | AccessFs.WRITE_FILE | AccessFs.TRUNCATE | AccessFs.REMOVE_DIR | AccessFs.REMOVE_FILE
                 | AccessFs.MAKE_DIR | AccessFs.MAKE_REG | AccessFs.MAKE_SYM | AccessFs.MAKE_FIFO | AccessFs.MAKE_SOCK)
    ruleset = Landlock()
    for path in read:
        ruleset.add_path_rule(path, access=dir_read if os.path.isdir(path) else file_read)
    for path in write:
        ruleset.add_path_rule(path, access=dir_write if os.path.isdir(path) else file_write)
    if mounts.network:
        ruleset.allow_all_network()
    libc = ctypes.CDLL(None, use_errno=True)
    network = mounts.network

    def preexec() -> None:
        os.setsid()
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if not network and libc.unshare(_CLONE_NEWNET) != 0:
            os._exit(126)
        ruleset.apply()

    return preexec


def can_unshare_network() -> str | None:
    """``None`` if this process can give a child a new network namespace, else why not."""
    libc = ctypes.CDLL(None, use_errno=True)

    def child() -> None:
        if libc.unshare(_CLONE_NEWNET) != 0:
            os._exit(3)

    try:
        done = subprocess.run(["true"], preexec_fn=child, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None if done.returncode == 0 else "unshare(CLONE_NEWNET) is not permitted (not root, no user namespaces)"


def landlock_paths(mounts: StepMounts, tmp: Path) -> tuple[list[str], list[str]]:
    """``(read, read-write)`` paths a step may use under Landlock (host paths; no mount namespace).

    Raises:
        RunError: ``capability_escapes``, as for bubblewrap.
    """
    ws = mounts.workspace.resolve()
    hidden = [h.resolve() for h in mounts.hidden]
    read: list[str] = []
    for d in SYSTEM_DIRS:
        if not os.path.isdir(d):
            continue
        if d == "/etc":
            read += _etc_entries()
        else:
            read.append(d)
    read += [str(d) for d in _tool_dirs(exclude=(ws, *hidden))]
    read += [str(d) for d in mounts.tools]
    read += ["/dev/zero", "/dev/urandom", "/dev/random"]
    for rel in mounts.read:
        src = _resolve_declared(ws, rel, "read")
        if src.exists():
            if any(_inside(h, src) for h in hidden):
                raise RunError(f"capabilities.read {rel!r} contains lodec's state; Landlock cannot hide it "
                               "(bubblewrap can)", code="capability_escapes")
            read.append(str(src))
    read.append(str(mounts.skill))
    read += [str(p) for p in mounts.inputs.values()]
    write = [str(mounts.work), str(mounts.out), str(tmp), "/dev/null"]
    for rel in mounts.write:
        src = _resolve_declared(ws, rel, "write")
        if not src.exists():
            src.mkdir(parents=True)
        if any(_inside(h, src) for h in hidden):
            raise RunError(f"capabilities.write {rel!r} contains lodec's state; Landlock cannot hide it "
                           "(bubblewrap can)", code="capability_escapes")
        write.append(str(src))
    return read, write


def _etc_entries() -> list[str]:
    """Every entry of ``/etc`` but its secrets (Landlock rules allow; they cannot mask)."""
    secret = set(ETC_SECRET_FILES) | set(ETC_SECRET_DIRS)
    out = []
    for entry in sorted(os.listdir("/etc")):
        path = f"/etc/{entry}"
        if path in secret:
            continue
        if path == "/etc/ssl" and os.path.isdir(path):
            out += [f"{path}/{e}" for e in sorted(os.listdir(path)) if f"{path}/{e}" not in secret]
            continue
        out.append(path)
    return out


def become_subreaper() -> bool:
    """Make this process adopt the orphans of its children (``PR_SET_CHILD_SUBREAPER``), so a step's
    daemons can be found and killed. Returns whether it worked."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except OSError:
        return False


def kill_strays(marker: str) -> list[int]:
    """Kill (SIGKILL) and reap every child of this process whose environment holds ``marker``
    (``LODEC_RUN_ID=<run id>``): what the run's steps left behind, adopted here as a subreaper.

    A stray that cleared its environment is not recognised: under the Landlock
    fallback "a step cannot outlive the run" holds only for processes that keep
    lodec's variables (bubblewrap's PID namespace has no such gap).
    """
    me = str(os.getpid())
    needle = marker.encode() + b"\0"
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = fh.read().rsplit(b")", 1)[1].split()[1].decode()
            if ppid != me:
                continue
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle not in fh.read() + b"\0":
                    continue
            os.kill(int(entry), signal.SIGKILL)
            os.waitpid(int(entry), 0)
            killed.append(int(entry))
        except (OSError, IndexError):
            continue
    return killed
