"""Skill folders as trees of files: the tree digest, reading a folder, finding ``skill:<name>``.

A skill is pinned by its tree digest (``docs/skill-contract.md`` §Tree
digest): BLAKE3 over a domain string and, per file in path-byte order, its
path, git mode and bytes. ``read_tree`` reads a folder once into memory
(regular files and folders only, bounded); everything downstream (the
digest, ``lodec verify``'s drift check, the run's private copy) uses those
bytes, so a folder edited after the check never reaches a step.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import blake3

from ..errors import LimitExceeded, LodecError, SkillError
from ..files import read_bounded
from ..names import is_safe_name
from .records import FrozenRecord
from .unicode import is_nfc

TREE_DOMAIN = b"lodec-skill-tree-v1\0"
MAX_FILES = 4096
MAX_TREE_BYTES = 64 * 1024 * 1024
SKILL_REF_PREFIX = "skill:"
#: A skill kept as published has its lodec settings beside its folder: ``<root>/<name>.lodec.toml``.
SETTINGS_SUFFIX = ".lodec.toml"
#: ``skillDigests`` pins those settings under ``skill:<name>#settings`` (``#`` is in no skill name).
SETTINGS_PIN_SUFFIX = "#settings"
MAX_SETTINGS_BYTES = 64 * 1024


def settings_pin_ref(ref: str) -> str:
    """``"skill:x"`` -> ``"skill:x#settings"``: the ``skillDigests`` key pinning a skill's outside settings."""
    return ref + SETTINGS_PIN_SUFFIX


def settings_digest(data: bytes) -> str:
    """The pin of a settings file: ``blake3:<hex>`` of its bytes."""
    return "blake3:" + blake3.blake3(data).hexdigest()


class SkillFile(FrozenRecord):
    """One file of a skill: ``/``-separated relative ``path``, git-style ``mode`` (0o644/0o755), ``data``.

    Immutable; equal and hashed by value.
    """

    __slots__ = ("path", "mode", "data")
    path: str
    mode: int
    data: bytes

    def __init__(self, path: str, mode: int, data: bytes) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "data", data)


def git_mode(st_mode: int) -> int:
    """``0o755`` if any execute bit is set, else ``0o644`` (what git records)."""
    return 0o755 if st_mode & 0o111 else 0o644


def tree_digest(files: Iterable[SkillFile]) -> str:
    """The tree digest of ``docs/skill-contract.md``: ``blake3:<hex>``.

    BLAKE3 over ``"lodec-skill-tree-v1\\0"`` then, per file in ascending
    path-byte order, ``path \\0 mode \\0 u64be(len) content``.
    """
    h = blake3.blake3(TREE_DOMAIN)
    for f in sorted(files, key=lambda f: f.path.encode("utf-8")):
        h.update(f.path.encode("utf-8") + b"\0" + f"{f.mode:o}".encode() + b"\0" + struct.pack(">Q", len(f.data)))
        h.update(f.data)
    return "blake3:" + h.hexdigest()


def read_tree(folder: Path) -> tuple[SkillFile, ...]:
    """Every file under ``folder``, sorted by path bytes.

    Raises:
        SkillError: ``skill_not_found`` (not a directory), ``skill_link``
            (a symbolic link or special file), ``skill_invalid`` (a name not
            NFC or not UTF-8), ``limit_exceeded`` (over 4,096 files or 64 MiB).
    """
    try:
        if not stat.S_ISDIR(os.stat(folder).st_mode):
            raise SkillError("not a directory", code="skill_not_found", file=str(folder))
    except FileNotFoundError:
        raise SkillError("no such skill folder", code="skill_not_found", file=str(folder)) from None
    files: list[SkillFile] = []
    total = 0
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        with os.scandir(folder / rel_dir if rel_dir else folder) as it:
            entries = list(it)
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if not is_nfc(rel):
                raise SkillError("file name is not Unicode NFC", file=str(folder), location=rel)
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                pending.append(rel)
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                if len(files) >= MAX_FILES or total > MAX_TREE_BYTES:
                    raise LimitExceeded(f"skill is over {MAX_FILES} files or {MAX_TREE_BYTES} bytes",
                                        file=str(folder))
                try:
                    # The safe open: a file swapped for a link or a FIFO since the listing is refused, not followed.
                    data = read_bounded(entry.path, st.st_size)
                except LodecError as exc:
                    raise SkillError(f"file changed while being read ({exc.message})", code="skill_link",
                                     file=str(folder), location=rel) from None
                if len(data) != st.st_size:
                    raise SkillError("file changed while being read", file=str(folder), location=rel)
                files.append(SkillFile(rel, git_mode(st.st_mode), data))
            else:
                kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                raise SkillError(f"{kind}; skills hold only regular files and folders",
                                 code="skill_link", file=str(folder), location=rel)
    files.sort(key=lambda f: f.path.encode("utf-8"))
    return tuple(files)


def skill_name(ref: str) -> str:
    """``"skill:eslint-check"`` -> ``"eslint-check"``. Raises ``SkillError`` (``skill_ref_invalid``)."""
    name = ref.removeprefix(SKILL_REF_PREFIX)
    if not ref.startswith(SKILL_REF_PREFIX) or not is_safe_name(name):
        raise SkillError(f"skillRef {ref!r} is not skill:<name>", code="skill_ref_invalid")
    return name


def find_skill(ref: str, roots: Sequence[Path]) -> Path:
    """The first ``<root>/<name>`` folder that exists. Raises ``SkillError`` (``skill_not_found``)."""
    name = skill_name(ref)
    for root in roots:
        if (root / name).is_dir():
            return root / name
    raise SkillError(f"{ref} not found in {', '.join(str(r) for r in roots)}", code="skill_not_found")


class SkillTree(FrozenRecord):
    """A skill folder held in memory: ``ref`` (``skill:<name>``), where it was read from
    (``source``: a folder, or a pack member label), its files and their tree digest.

    ``settings``: the skill's lodec settings when they live outside its folder
    (``<name>.lodec.toml`` beside it), as read, and ``settings_source`` where;
    ``None`` when the folder holds its own ``lodec.toml`` (or has none).
    Immutable; equal and hashed by value.
    """

    __slots__ = ("ref", "source", "files", "digest", "settings", "settings_source")
    ref: str
    source: str
    files: tuple[SkillFile, ...]
    digest: str
    settings: bytes | None
    settings_source: str | None

    def __init__(self, ref: str, source: str, files: tuple[SkillFile, ...], digest: str,
                 settings: bytes | None = None, settings_source: str | None = None) -> None:
        setter = object.__setattr__
        setter(self, "ref", ref)
        setter(self, "source", source)
        setter(self, "files", files)
        setter(self, "digest", digest)
        setter(self, "settings", settings)
        setter(self, "settings_source", settings_source)

    def with_settings(self, settings: bytes | None, settings_source: str | None) -> SkillTree:
        """This tree with other outside ``settings`` (and where they were read)."""
        return SkillTree(self.ref, self.source, self.files, self.digest, settings, settings_source)

    @property
    def settings_digest(self) -> str | None:
        return settings_digest(self.settings) if self.settings is not None else None


def outside_settings(folder: Path, files: Iterable[SkillFile]) -> tuple[bytes, str] | None:
    """``(bytes, path)`` of ``<folder>.lodec.toml`` beside ``folder`` when the folder has no ``lodec.toml``.

    Raises:
        SkillError: ``skill_settings_ambiguous`` (both a ``lodec.toml`` inside and one beside),
            ``skill_link`` (the settings file is a link or not a regular file), ``limit_exceeded``.
    """
    beside = folder.parent / (folder.name + SETTINGS_SUFFIX)
    inside = any(f.path == "lodec.toml" for f in files)
    if not os.path.lexists(beside):
        return None
    if inside:
        raise SkillError(f"settings both inside the folder (lodec.toml) and beside it ({beside}); keep one",
                         code="skill_settings_ambiguous", file=str(folder))
    try:
        return read_bounded(beside, MAX_SETTINGS_BYTES), str(beside)
    except LodecError as exc:
        raise SkillError(f"settings file: {exc.message}", code="skill_link" if exc.code == "file_link" else exc.code,
                         file=str(beside)) from None


def load_tree(ref: str, roots: Sequence[Path]) -> SkillTree:
    """Find ``ref`` in ``roots`` (``find_skill``), read its folder (``read_tree``) and its outside settings.

    Raises:
        SkillError: ``skill_ref_invalid``, ``skill_not_found``, ``skill_link``, ``skill_invalid``,
            ``skill_settings_ambiguous``.
        LimitExceeded: over ``MAX_FILES`` files or ``MAX_TREE_BYTES`` bytes.
    """
    folder = find_skill(ref, roots)
    files = read_tree(folder)
    found = outside_settings(folder, files)
    return SkillTree(ref, str(folder), files, tree_digest(files), *(found or (None, None)))


def check_pins(
    pins: dict[str, str], load: Callable[[str], SkillTree]
) -> tuple[dict[str, SkillTree], list[tuple[str, str]]]:
    """Every pinned skill, loaded by ``load`` and compared with its pin; its outside settings with theirs.

    ``pins`` maps ``skill:<name>`` to a tree digest and, for a skill whose
    settings live beside its folder, ``skill:<name>#settings`` to the
    settings' digest. Returns ``(ref -> SkillTree for each skill that matches
    its pins, problems)``, each problem ``(code, message)``: ``skill_drifted``
    when the tree digest differs from the pin, ``skill_settings_drifted`` when
    the outside settings differ from theirs (or appear or vanish), else the
    loader's code (``skill_not_found``, ...).
    """
    trees: dict[str, SkillTree] = {}
    problems: list[tuple[str, str]] = []
    for ref, pin in sorted(pins.items()):
        if ref.endswith(SETTINGS_PIN_SUFFIX):
            continue
        try:
            tree = load(ref)
        except (SkillError, LimitExceeded) as exc:
            problems.append((exc.code, f"{ref}: {exc}"))
            continue
        if tree.digest != pin:
            problems.append(("skill_drifted", f"{ref} drifted: pinned {pin}, {tree.source} is {tree.digest}"))
            continue
        pinned, actual = pins.get(settings_pin_ref(ref)), tree.settings_digest
        if pinned != actual:
            where = tree.settings_source or f"{tree.source}{SETTINGS_SUFFIX}"
            problems.append(("skill_settings_drifted", f"{ref}: its settings drifted: pinned {pinned or 'none'}, "
                             f"{where} is {actual or 'absent'}"))
            continue
        trees[ref] = tree
    return trees, problems
