"""Skills: Agent Skills folders and lodec's settings for them, pinned by tree digest.

The settings (``lodec.toml``) live inside the folder, or outside it, beside
the folder as ``<name>.lodec.toml``, so a published folder stays
byte-identical; outside settings are pinned by their own digest. A skill
whose settings name no ``command`` holds instructions only (``SKILL.md``)
and is run by the workspace's agent runner (``lodec.run.agent``).

A skill is read once into memory (``load_skill``): every file's path, mode
and bytes. The tree digest is computed over those bytes, the run
materialises the skill from the same bytes, so a folder edited after the
check never reaches a step. ``docs/skill-contract.md`` is the contract.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from ..errors import LimitExceeded, SkillError
from ..format.tree import (
    SKILL_REF_PREFIX,
    SkillFile,
    SkillTree,
    find_skill,
    read_tree,
    skill_name,
    tree_digest,
)
from ..names import is_safe_name

CONCURRENCY = ("read", "write", "exclusive")
DEFAULT_TIMEOUT = 600
MAX_TIMEOUT = 86_400
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class SkillConfig:
    """The parsed ``lodec.toml``: how to run the skill and what it may touch."""

    #: argv, ``command[0]`` a file of the skill; empty for an instruction-only skill (run by the agent runner).
    command: tuple[str, ...]
    concurrency: str = "write"
    timeout: int = DEFAULT_TIMEOUT
    network: bool = False
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    env: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skill:
    """A validated skill held in memory.

    Attributes:
        name, description: from ``SKILL.md`` (``name`` equals the folder name).
        source: the folder it was read from.
        files: every file, sorted by path bytes.
        digest: the tree digest, ``blake3:<64 hex>``.
        config: the ``lodec.toml`` settings.
        settings_source, settings_digest: where outside settings were read and their pin
            (``None`` when the settings are the folder's own ``lodec.toml``).
    """

    name: str
    description: str
    source: Path
    files: tuple[SkillFile, ...]
    digest: str
    config: SkillConfig
    settings_source: str | None = None
    settings_digest: str | None = None
    #: The outside settings' bytes as read (``None`` for a folder's own ``lodec.toml``).
    settings_data: bytes | None = None

    @property
    def instruction_only(self) -> bool:
        """No entry program: the agent runner carries out ``SKILL.md``."""
        return not self.config.command

    @property
    def ref(self) -> str:
        return SKILL_REF_PREFIX + self.name

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            "name": self.name, "ref": self.ref, "description": self.description, "path": str(self.source),
            "digest": self.digest, "files": len(self.files), "command": list(c.command),
            "runner": "agent" if self.instruction_only else "command",
            "settings": self.settings_source or str(self.source / "lodec.toml"), "settingsDigest": self.settings_digest,
            "concurrency": c.concurrency, "timeout": c.timeout,
            "capabilities": {"network": c.network, "read": list(c.read), "write": list(c.write), "env": list(c.env)},
        }


def _frontmatter(folder: Path, files: dict[str, SkillFile], *, where: Path) -> tuple[str, str]:
    """``(name, description)`` from ``SKILL.md``, validated by the Agent Skills reference validator."""
    from skills_ref.errors import ParseError  # type: ignore[import-untyped]
    from skills_ref.parser import parse_frontmatter  # type: ignore[import-untyped]
    from skills_ref.validator import validate_metadata  # type: ignore[import-untyped]

    label = str(where / "SKILL.md")
    skill_md = files.get("SKILL.md")
    if skill_md is None:
        raise SkillError("missing SKILL.md (the Agent Skills file)", file=str(where))
    try:
        text = skill_md.data.decode("utf-8")
        metadata, _body = parse_frontmatter(text)
    except UnicodeDecodeError:
        raise SkillError("not UTF-8", file=label) from None
    except ParseError as exc:
        raise SkillError(str(exc).splitlines()[0], file=label) from None
    problems = validate_metadata(metadata, folder)
    if problems:
        raise SkillError("; ".join(problems), file=label)
    name, description = str(metadata["name"]), str(metadata["description"])
    if not (is_safe_name(name) and name.isascii()):
        raise SkillError(f"skill name {name!r}: lodec needs ASCII names (a-z 0-9 -)", file=label, location="name")
    return name, description


def _strings(value: Any, where: str, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SkillError("must be an array of strings", file=label, location=where)
    return tuple(value)


def _relative_path(value: str, where: str, label: str) -> str:
    parts = value.split("/")
    if not value or "\0" in value or value.startswith("/") or ".." in parts:
        raise SkillError(f"{value!r} must be a relative path without '..'", file=label, location=where)
    return value


def parse_config(data: bytes, *, file: str, files: dict[str, SkillFile]) -> SkillConfig:
    """Parse ``lodec.toml`` (``docs/skill-contract.md``); ``files`` checks that ``command[0]`` exists.

    Raises:
        SkillError: ``skill_invalid`` naming the key, for any unknown key,
            wrong type, out-of-range value, or a command that is not an
            executable file of the skill.
    """
    import tomllib

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SkillError(f"not valid TOML: {exc}", file=file) from None
    unknown = set(doc) - {"command", "concurrency", "timeout", "capabilities"}
    if unknown:
        raise SkillError(f"unknown key(s): {', '.join(sorted(unknown))}", file=file, location=sorted(unknown)[0])
    command: tuple[str, ...] = ()
    program = ""
    if "command" in doc:  # without one, the skill is instructions only: the agent runner carries it out
        command = _strings(doc["command"], "command", file)
        if not 1 <= len(command) <= 64:
            raise SkillError("must have 1 to 64 elements", file=file, location="command")
        program = _relative_path(command[0], "command[0]", file)
        target = files.get(program.removeprefix("./"))
        if target is None:
            raise SkillError(f"{program!r} is not a file of the skill folder", file=file, location="command[0]")
        if target.mode != 0o755:
            raise SkillError(f"{program!r} is not executable (chmod +x it)", file=file, location="command[0]")
    concurrency = doc.get("concurrency", "write")
    if concurrency not in CONCURRENCY:
        raise SkillError(f"{concurrency!r} is not one of read, write, exclusive", file=file, location="concurrency")
    timeout = doc.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT:
        raise SkillError(f"must be whole seconds from 1 to {MAX_TIMEOUT}", file=file, location="timeout")
    caps = doc.get("capabilities", {})
    if not isinstance(caps, dict):
        raise SkillError("must be a table", file=file, location="capabilities")
    unknown = set(caps) - {"network", "read", "write", "env"}
    if unknown:
        raise SkillError(f"unknown key(s): {', '.join(sorted(unknown))}", file=file,
                         location=f"capabilities.{sorted(unknown)[0]}")
    network = caps.get("network", False)
    if not isinstance(network, bool):
        raise SkillError("must be true or false", file=file, location="capabilities.network")
    read = tuple(_relative_path(p, "capabilities.read", file) for p in _strings(caps.get("read", []), "capabilities.read", file))
    write = tuple(_relative_path(p, "capabilities.write", file)
                  for p in _strings(caps.get("write", []), "capabilities.write", file))
    env = _strings(caps.get("env", []), "capabilities.env", file)
    for name in env:
        if not _ENV_NAME.match(name) or name.startswith("LODEC_"):
            raise SkillError(f"{name!r} is not a variable name lodec passes through (LODEC_* is reserved)",
                             file=file, location="capabilities.env")
    argv = (program.removeprefix("./"), *command[1:]) if command else ()
    return SkillConfig(command=argv, concurrency=concurrency, timeout=timeout,
                       network=network, read=read, write=write, env=env)


def load_skill(folder: str | os.PathLike[str], *, settings: tuple[bytes, str] | None = None) -> Skill:
    """Read, validate and digest a skill folder and its settings.

    The settings are the folder's ``lodec.toml``, or ``<folder>.lodec.toml``
    beside it (the folder kept as published), or ``settings`` (``(bytes,
    label)``, e.g. from a stack source), which replaces a file beside it.

    Raises:
        SkillError: the folder is missing, holds a link, has no valid
            ``SKILL.md`` (Agent Skills specification, checked with
            ``skills-ref``) or no valid settings (``skill_settings_ambiguous``
            for settings both inside and outside).
        LimitExceeded: over ``MAX_FILES`` files or ``MAX_TREE_BYTES`` bytes.
    """
    from ..format.tree import outside_settings

    path = Path(folder)
    resolved = path.resolve()
    files = read_tree(path)
    if settings is not None and any(f.path == "lodec.toml" for f in files):
        raise SkillError(f"settings both inside the folder (lodec.toml) and in {settings[1]}; keep one",
                         code="skill_settings_ambiguous", file=str(path))
    outside = settings if settings is not None else outside_settings(path, files)
    return _validated(path, resolved, files, label=resolved, settings=outside)


def skill_from_tree(tree: SkillTree) -> Skill:
    """Validate a skill already read into memory (and checked against its pins) without reading it again.

    Raises:
        SkillError: no valid ``SKILL.md`` or settings, or ``SKILL.md``
            names another skill than ``tree.ref`` (the Agent Skills rule:
            the name equals the folder's).
    """
    source = Path(tree.source)
    outside = (tree.settings, tree.settings_source or f"{source}.lodec.toml") if tree.settings is not None else None
    return _validated(source, Path(skill_name(tree.ref)), tree.files, label=source, settings=outside)


def _validated(source: Path, named_dir: Path, files: tuple[SkillFile, ...], *, label: Path,
               settings: tuple[bytes, str] | None = None) -> Skill:
    """``named_dir`` is the folder whose name ``SKILL.md``'s name must equal; ``label`` names SKILL.md in messages."""
    from ..format.tree import settings_digest

    by_path = {f.path: f for f in files}
    name, description = _frontmatter(named_dir, by_path, where=label)
    if settings is not None:
        config = parse_config(settings[0], file=settings[1], files=by_path)
        return Skill(name, description, source, files, tree_digest(files), config, settings[1],
                     settings_digest(settings[0]), settings[0])
    sidecar = by_path.get("lodec.toml")
    if sidecar is None:
        raise SkillError(f"missing lodec.toml, lodec's settings: put them in the folder, or beside it as "
                         f"{source.name}.lodec.toml to keep a published folder as it is (docs/skill-contract.md)",
                         file=str(source))
    config = parse_config(sidecar.data, file=str(source / "lodec.toml"), files=by_path)
    return Skill(name, description, source, files, tree_digest(files), config)


def skill_pins(skills: dict[str, Skill]) -> dict[str, str]:
    """The ``skillDigests`` of ``skills`` (ref -> Skill): each tree digest, and each outside settings' digest
    under ``<ref>#settings``."""
    from ..format.tree import settings_pin_ref

    pins: dict[str, str] = {}
    for ref, skill in sorted(skills.items()):
        pins[ref] = skill.digest
        if skill.settings_digest is not None:
            pins[settings_pin_ref(ref)] = skill.settings_digest
    return pins


def load_skills(refs: Iterable[str], roots: Sequence[Path], *,
                settings: dict[str, tuple[bytes, str]] | None = None) -> tuple[dict[str, Skill], list[SkillError]]:
    """Find and load each distinct ``skill:<name>`` in ``refs``: ``(ref -> Skill, errors)``.

    ``settings`` (skill name -> ``(bytes, label)``) gives a skill's settings
    from elsewhere (a stack source). Every failure is collected (its message
    prefixed with the ref), so a caller can report them all at once.
    """
    skills: dict[str, Skill] = {}
    errors: list[SkillError] = []
    for ref in sorted(set(refs)):
        try:
            folder = find_skill(ref, roots)
            skills[ref] = load_skill(folder, settings=(settings or {}).get(folder.name))
        except (SkillError, LimitExceeded) as exc:
            errors.append(SkillError(f"{ref}: {exc}", code=exc.code))
    return skills, errors


def materialize(skill: Skill, dest: Path, *, read_only: bool = True) -> Path:
    """Write ``skill``'s in-memory (verified) bytes under ``dest``, which must not exist.

    Modes are the git modes (755/644), or 555/444 with ``read_only``.
    """
    dest.mkdir(parents=True)
    for f in skill.files:
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as fh:
            fh.write(f.data)
        os.chmod(target, f.mode & ~0o222 if read_only else f.mode)
    return dest


def add_skill(folder: str | os.PathLike[str], skills_dir: Path) -> tuple[Skill, Path]:
    """Validate ``folder`` and copy it to ``skills_dir/<name>`` atomically (temp folder + rename).

    Raises:
        SkillError: invalid skill; ``skill_exists`` if the name is taken.
    """
    import tempfile

    skill = load_skill(folder)
    dest = skills_dir / skill.name
    if dest.exists():
        raise SkillError(f"a skill named {skill.name!r} is already installed at {dest}", code="skill_exists",
                         file=str(folder))
    try:
        skills_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{skill.name}.", dir=skills_dir))
    except OSError as exc:
        raise SkillError(f"cannot install: {exc.strerror or exc}", code="file_unwritable", file=str(skills_dir)) from None
    try:
        if skill.settings_data is not None:  # outside settings go beside the installed folder, as they were found
            from ..files import atomic_write

            atomic_write(skills_dir / f"{skill.name}.lodec.toml", skill.settings_data)
        # The bytes that were validated, not the folder read again.
        os.rename(materialize(skill, tmp / skill.name, read_only=False), dest)  # fails if dest exists: no clobbering
        os.rmdir(tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SkillError(f"cannot install: {exc.strerror or exc}", code="skill_exists" if dest.exists() else
                         "file_unwritable", file=str(dest)) from None
    return skill, dest


def settings_toml(table: dict[str, Any], *, header: str = "") -> bytes:
    """``table`` (lodec settings as TOML values, e.g. a stack source's ``[skill.<name>]``) as a settings file.

    Deterministic: keys in the order given, strings JSON-escaped (valid TOML basic strings), scalar keys
    before the ``[capabilities]`` table. ``header`` becomes comment lines on top.

    Raises:
        SkillError: a value TOML-to-TOML cannot carry here (a float, a date, a nested array), naming the key.
    """
    import json

    def value(v: Any, where: str) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return "[" + ", ".join(json.dumps(x) for x in v) + "]"
        raise SkillError("must be a string, an integer, true/false or an array of strings", location=where)

    def key_text(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)

    lines = [f"# {line}" for line in header.splitlines()]
    tables = []
    for key, v in table.items():
        if isinstance(v, dict):
            tables.append((key, v))
        else:
            lines.append(f"{key_text(key)} = {value(v, key)}")
    for key, sub in tables:
        lines.append(f"\n[{key_text(key)}]")
        for k, v in sub.items():
            lines.append(f"{key_text(k)} = {value(v, f'{key}.{k}')}")
    return ("\n".join(lines) + "\n").encode("utf-8")
