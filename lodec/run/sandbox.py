"""Capabilities enforced at run time: no network unless declared, a reduced environment.

Network isolation uses a new, empty network namespace via util-linux
``unshare`` (Linux). Inside it only a loopback interface exists, and it is
down, so nothing can be reached, not even the host's own loopback servers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Variables a step always gets from lodec's environment when set (besides declared ones and LODEC_*).
BASE_ENV = ("PATH", "LANG")

# Tried in order: an unprivileged user namespace first, then plain --net (root without userns).
_CANDIDATES = (
    ("--user", "--map-current-user", "--net"),
    ("--user", "--map-root-user", "--net"),
    ("--net",),
)


@dataclass(frozen=True)
class NetworkIsolation:
    """How to start a command with no network: ``prefix + argv``; ``prefix`` empty means unavailable (see ``reason``)."""

    prefix: tuple[str, ...]
    reason: str

    @property
    def available(self) -> bool:
        return bool(self.prefix)


def probe_network_isolation() -> NetworkIsolation:
    """Find a working ``unshare`` invocation by running ``true`` in a new network namespace."""
    if not sys.platform.startswith("linux"):
        return NetworkIsolation((), f"network namespaces need Linux; this is {sys.platform}")
    unshare = shutil.which("unshare")
    if unshare is None:
        return NetworkIsolation((), "util-linux 'unshare' is not on PATH")
    last = ""
    for flags in _CANDIDATES:
        prefix = (unshare, *flags, "--")
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            last = str(exc)
            continue
        if done.returncode == 0:
            return NetworkIsolation(prefix, "new network namespace via " + " ".join(["unshare", *flags]))
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else f"exit {done.returncode}"
    return NetworkIsolation((), f"'unshare --net' failed here: {last}")


def step_environment(parent: Mapping[str, str], declared: Sequence[str], lodec_vars: Mapping[str, str]) -> dict[str, str]:
    """The environment a step gets: ``PATH``, ``LANG``, the declared variables (when set), ``LODEC_*``.

    Every other variable of ``parent`` is withheld.
    """
    env = {k: parent[k] for k in (*BASE_ENV, *declared) if k in parent}
    env.update(lodec_vars)
    return env
