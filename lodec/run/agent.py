"""The agent runner: how a workspace runs instruction-only skills (``SKILL.md`` and no entry program).

The operator configures it once per workspace in ``.lodec/agent.toml``
(``docs/skill-contract.md`` §Instruction-only skills)::

    command = ["my-agent", "--non-interactive", "--prompt", "{prompt}"]
    paths = ["/opt/my-agent"]       # host folders the agent needs, shown read-only in the sandbox
    env = ["MY_AGENT_API_KEY"]      # the agent's own variables, passed through when set

lodec starts ``command`` in the step's sandbox exactly where a skill's own
program would run: same request on stdin, same environment plus
``LODEC_SKILL_MD``, same outputs rule, timeout and capabilities.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import LodecError

#: The agent runner's file in the state directory (``<git root>/.lodec/agent.toml``).
AGENT_FILE = "agent.toml"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PLACEHOLDER = re.compile(r"\{(skill_md|skill_dir|output_dir|step|prompt)\}")
#: Anything that reads as a placeholder; one lodec does not know is a mistyped one, refused rather than passed on.
_ANY_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Host folders the sandbox builds itself (a fresh /proc, /dev, /tmp) or shows with its secrets masked
#: (/etc): an agent's ``paths`` entry that is, holds or lies inside one would show the host's instead
#: (the host's processes and their environments, /etc/shadow, sockets under /run).
RESERVED = tuple(Path(p) for p in ("/proc", "/sys", "/dev", "/run", "/etc", "/tmp", "/var/run", "/boot"))

#: ``{prompt}``: what a general-purpose coding agent needs to be told (the request itself is on stdin).
PROMPT = ("Carry out the Agent Skill whose instructions are in {skill_md} (its other files are in {skill_dir}) "
          "for the lodec step {step}. The step request, JSON, is on standard input; its inputs are in "
          '"inputs" and upstream artifacts in "upstream_artifacts". Write exactly these files into {output_dir} '
          "and nothing else: {outputs}.")


@dataclass(frozen=True)
class AgentRunner:
    """A parsed ``agent.toml``: the agent's argv (with placeholders), extra read-only host ``paths``,
    its own environment variables ``env``, and the file it came from."""

    command: tuple[str, ...]
    paths: tuple[Path, ...] = ()
    env: tuple[str, ...] = ()
    source: str = AGENT_FILE

    def argv(self, *, skill_md: str, skill_dir: str, output_dir: str, step: str, outputs: list[str]) -> list[str]:
        """``command`` with ``{skill_md}``, ``{skill_dir}``, ``{output_dir}``, ``{step}`` and ``{prompt}``
        replaced (each argument is one argv element: no shell, no word splitting)."""
        values = {"skill_md": skill_md, "skill_dir": skill_dir, "output_dir": output_dir, "step": step}
        values["prompt"] = PROMPT.format(**values, outputs=", ".join(outputs) or "(none)")
        return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in self.command]


def path_problem(path: Path, inner: Sequence[Path] = ()) -> str | None:
    """Why ``path`` (resolved, absolute) may not be shown to a step through the agent, or ``None``.

    Refused: ``/``; a path that is, holds or lies inside a folder the sandbox builds or masks itself
    (``RESERVED``; ``/tmp`` itself, not a folder inside it); a path that is, holds or lies inside one
    of ``inner`` (the workspace, lodec's state, ``$LODEC_HOME``, a worker's shared store).
    """
    if path == path.parent:
        return "is the root folder: it would show the whole host (its /proc, /etc secrets, every workspace)"
    for r in RESERVED:
        if path == r or r in path.parents and r != Path("/tmp") or path in r.parents:
            return f"overlaps {r}, which the sandbox builds or masks itself"
    for i in inner:
        if path == i or i in path.parents or path in i.parents:
            return f"overlaps {i} (the workspace or lodec's state), which a step must not see through the agent"
    return None


def resolve_program(name: str, path_env: str, inner: Sequence[Path]) -> str | None:
    """The absolute path the agent's ``command[0]`` names, looked up on the host, or ``None`` if not found.

    An absolute name is kept. A bare name is looked up in ``path_env`` (``PATH``) as ``execvp`` would,
    but skipping entries that are relative or lie inside one of ``inner`` (the workspace, lodec's state):
    inside the sandbox the workspace may be visible, and a ``bin/`` of the project on ``PATH`` would let
    the repository's own file stand in for the operator's agent (and receive its ``env``, an API key). A
    name with a ``/`` that is not absolute is refused (``None``): it would be relative to the step's
    working folder.
    """
    if os.path.isabs(name):
        return name
    if "/" in name:
        return None
    resolved_inner = [Path(os.path.realpath(i)) for i in inner]
    for entry in path_env.split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            continue
        folder = Path(os.path.realpath(entry))
        if any(folder == i or i in folder.parents for i in resolved_inner):
            continue
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def check_paths(agent: AgentRunner, inner: Sequence[Path]) -> None:
    """Refuse an agent runner whose ``paths`` would widen a step's view (``path_problem``).

    Raises:
        LodecError: ``agent_invalid``, naming the file and the path.
    """
    resolved = [Path(os.path.realpath(i)) for i in inner]
    for path in agent.paths:
        why = path_problem(path, resolved)
        if why is not None:
            raise LodecError(f"paths: {path} {why}. Nothing was started", code="agent_invalid", file=agent.source,
                             location="paths")


def load_agent(path: str | os.PathLike[str]) -> AgentRunner | None:
    """The agent runner configured at ``path``, or ``None`` when there is no such file.

    Raises:
        LodecError: ``agent_invalid``: not TOML, an unknown key, a missing or
            empty ``command``, a ``paths`` entry that is not an absolute
            folder or file, an ``env`` entry that is not a variable name (or is
            ``LODEC_*``), an unknown ``{placeholder}`` in ``command``. ``file_link``
            for a link planted there.
    """
    import tomllib

    from ..files import read_bounded

    if not os.path.lexists(path):
        return None
    file = str(path)
    data = read_bounded(path, 64 * 1024)

    def bad(message: str, where: str | None = None) -> LodecError:
        return LodecError(message, code="agent_invalid", file=file, location=where)

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise bad(f"not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - {"command", "paths", "env"})
    if unknown:
        raise bad(f"unknown key(s): {', '.join(unknown)} (known: command, paths, env)", unknown[0])
    command = doc.get("command")
    if (not isinstance(command, list) or not 1 <= len(command) <= 64
            or not all(isinstance(a, str) and a and "\0" not in a for a in command)):
        raise bad("must be an array of 1 to 64 non-empty strings: the agent's argv", "command")
    for n, arg in enumerate(command):
        for m in _ANY_PLACEHOLDER.finditer(arg):
            if not _PLACEHOLDER.fullmatch(m.group(0)):
                raise bad(f"unknown placeholder {m.group(0)} (known: {{skill_md}}, {{skill_dir}}, {{output_dir}}, "
                          "{step}, {prompt})", f"command/{n}")
    paths = doc.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise bad("must be an array of absolute paths", "paths")
    for p in paths:
        if not os.path.isabs(p) or not os.path.exists(p):
            raise bad(f"{p!r} is not an absolute path that exists", "paths")
        why = path_problem(Path(os.path.realpath(p)))
        if why is not None:
            raise bad(f"{p!r} {why}", "paths")
    env = doc.get("env", [])
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise bad("must be an array of variable names", "env")
    for name in env:
        if not _ENV_NAME.match(name) or name.startswith("LODEC_"):
            raise bad(f"{name!r} is not a variable name lodec passes through (LODEC_* is reserved)", "env")
    return AgentRunner(tuple(command), tuple(Path(os.path.realpath(p)) for p in paths), tuple(env), file)
