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
from dataclasses import dataclass
from pathlib import Path

from ..errors import LodecError

#: The agent runner's file in the state directory (``<git root>/.lodec/agent.toml``).
AGENT_FILE = "agent.toml"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PLACEHOLDER = re.compile(r"\{(skill_md|skill_dir|output_dir|step|prompt)\}")

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


def load_agent(path: str | os.PathLike[str]) -> AgentRunner | None:
    """The agent runner configured at ``path``, or ``None`` when there is no such file.

    Raises:
        LodecError: ``agent_invalid``: not TOML, an unknown key, a missing or
            empty ``command``, a ``paths`` entry that is not an absolute
            folder or file, an ``env`` entry that is not a variable name (or is
            ``LODEC_*``). ``file_link`` for a link planted there.
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
    paths = doc.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise bad("must be an array of absolute paths", "paths")
    for p in paths:
        if not os.path.isabs(p) or not os.path.exists(p):
            raise bad(f"{p!r} is not an absolute path that exists", "paths")
    env = doc.get("env", [])
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise bad("must be an array of variable names", "env")
    for name in env:
        if not _ENV_NAME.match(name) or name.startswith("LODEC_"):
            raise bad(f"{name!r} is not a variable name lodec passes through (LODEC_* is reserved)", "env")
    return AgentRunner(tuple(command), tuple(Path(os.path.realpath(p)) for p in paths), tuple(env), file)
