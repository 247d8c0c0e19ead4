"""Packs: one file holding a stack's manifest, step veins, schemas, envelope and skills.

A ``.lodepack`` is a vein (``docs/vein-format.md``) of a built-in pack
schema (``docs/pack-format.md``): ``lodepack-v2`` when the stack pins
skills (``skillDigests``), each pinned skill folder carried as a vein of
``skill-tree-v1``; ``lodepack-v1`` (no skills) otherwise, so a stack without
pins packs to the same bytes as before. Either way a pack is deterministic
(same members, same bytes), its members are unique by construction
(canonical maps have sorted, distinct keys), it cannot express links or
modes other than 644/755, and every length is checked against the caps below
before anything is allocated. Skill file paths follow the rules of reading a
folder (relative, ``/``-separated, no empty, ``.`` or ``..`` part, NFC, no path
that is both a file and a folder), so extracting a pack cannot leave its
directory.

Reading a pack proves only its shape; ``lodec.sign.pack.verify_pack`` then
runs the same verification as for files (signed or not) on the members'
bytes, ``lodec.app.verify`` compares each carried skill with its pin, and
``lodec.app`` unpacks exactly those verified bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .codec import decode_vein, encode_record
from ..errors import DecodeError, LimitExceeded, UnsafeNameError
from ..limits import Limits
from ..names import all_safe_names, is_safe_name, name_problem
from .records import FrozenRecord
from .schema import Schema, lodepack_schema, lodepack_v2_schema, skill_tree_schema
from .tree import MAX_FILES, MAX_TREE_BYTES, SkillFile
from .unicode import is_nfc


#: Largest pack file (bytes), checked before reading.
MAX_PACK_BYTES = 256 * 1024 * 1024
#: Largest single member (manifest, envelope, schema, step vein or skill tree), checked before allocating.
MAX_MEMBER_BYTES = 16 * 1024 * 1024
#: Most step members (and most skill members) in one pack.
MAX_PACK_STEPS = 1024 * 1024

PACK_LIMITS = Limits(max_file_bytes=MAX_PACK_BYTES, max_text_bytes=MAX_MEMBER_BYTES, max_entries=MAX_PACK_STEPS)
#: Decoding one skill member: the member cap, and at most ``MAX_FILES`` entries per map (before allocating).
SKILL_TREE_LIMITS = Limits(max_file_bytes=MAX_MEMBER_BYTES, max_text_bytes=MAX_MEMBER_BYTES, max_entries=MAX_FILES)

#: The two git modes a skill file can have (``docs/skill-contract.md``), by ``skill-tree-v1`` field.
_MODE_FIELDS = {0o644: "files", 0o755: "executables"}

_NO_SKILLS: Mapping[str, tuple[SkillFile, ...]] = {}  # the default's marker, never stored


class Pack(FrozenRecord):
    """A decoded pack (not yet verified).

    Attributes:
        manifest_name: the manifest's file name (a safe name ending ``.json``).
        manifest, envelope: the members' bytes (``envelope`` ``None`` if unsigned).
        step_schema, stack_schema: the ``.lode`` bytes of the two schemas.
        steps: step name -> vein bytes.
        data: the whole pack's bytes.
        skills: skill name (``skill:<name>``'s name) -> its files, sorted by
            path bytes (``read_tree``'s order); empty for a ``lodepack-v1`` pack.
    """

    __slots__ = ("manifest_name", "manifest", "envelope", "step_schema", "stack_schema", "steps", "data", "skills")
    manifest_name: str
    manifest: bytes
    envelope: bytes | None
    step_schema: bytes
    stack_schema: bytes
    steps: Mapping[str, bytes]
    data: bytes
    skills: Mapping[str, tuple[SkillFile, ...]]

    def __init__(self, manifest_name: str, manifest: bytes, envelope: bytes | None, step_schema: bytes,
                 stack_schema: bytes, steps: Mapping[str, bytes], data: bytes,
                 skills: Mapping[str, tuple[SkillFile, ...]] = _NO_SKILLS) -> None:
        setter = object.__setattr__
        setter(self, "manifest_name", manifest_name)
        setter(self, "manifest", manifest)
        setter(self, "envelope", envelope)
        setter(self, "step_schema", step_schema)
        setter(self, "stack_schema", stack_schema)
        setter(self, "steps", steps)
        setter(self, "data", data)
        setter(self, "skills", {} if skills is _NO_SKILLS else skills)  # a fresh dict each, as default_factory


def build_pack(
    *,
    manifest_name: str,
    manifest: bytes,
    steps: Mapping[str, bytes],
    step_schema: bytes,
    stack_schema: bytes,
    envelope: bytes | None = None,
    skills: Mapping[str, Iterable[SkillFile]] | None = None,
) -> bytes:
    """The pack bytes for a stack's members (deterministic: same inputs, same bytes).

    Pass a verified stack's exact bytes (``VerifiedStack.manifest_bytes`` and
    each step's ``Vein.data``) and the skill trees checked against its pins
    (``SkillTree.files``, keyed by skill name): a pack carries nothing
    unverified. With ``skills`` the pack is ``lodepack-v2``; without (or
    empty), ``lodepack-v1``.

    Raises:
        UnsafeNameError: ``manifest_name`` is not a safe name ending ``.json``,
            a skill name is not a safe name, or a skill file path breaks the
            path rules (module docstring).
        LimitExceeded: a member over ``MAX_MEMBER_BYTES`` (a skill member
            included), a skill over ``MAX_FILES`` files or ``MAX_TREE_BYTES``,
            or the pack over ``MAX_PACK_BYTES``.
        ValueError: a skill file mode other than ``0o644`` / ``0o755``.
    """
    _check_manifest_name(manifest_name, "<pack>")
    record: dict[str, object] = {
        "manifestName": manifest_name,
        "manifest": manifest,
        "stepSchema": step_schema,
        "stackSchema": stack_schema,
        "steps": dict(steps),
    }
    if envelope is not None:
        record["envelope"] = envelope
    schema = lodepack_schema()
    if skills:
        schema = lodepack_v2_schema()
        _check_skill_names(skills, "<pack>")
        record["skills"] = {name: encode_skill_tree(files, file=f"<pack>#skills/{name}")
                            for name, files in skills.items()}
    return encode_record(schema, record, file="<pack>", limits=PACK_LIMITS).data


def encode_skill_tree(files: Iterable[SkillFile], *, file: str = "<skill>") -> bytes:
    """One skill's files as a ``skill-tree-v1`` vein: ``files`` (mode 644) and ``executables`` (mode 755),
    each ``path -> bytes`` (deterministic: canonical maps sort the paths).

    Raises:
        UnsafeNameError: a path that breaks the path rules (module docstring).
        LimitExceeded: over ``MAX_FILES`` files, ``MAX_TREE_BYTES`` bytes or ``MAX_MEMBER_BYTES`` encoded.
        ValueError: a mode other than ``0o644`` / ``0o755``.
    """
    record: dict[str, dict[str, bytes]] = {"files": {}, "executables": {}}
    total = count = 0
    for f in files:
        if f.mode not in _MODE_FIELDS:
            raise ValueError(f"{file}: {f.path!r} has mode {f.mode:o}; a skill file is 644 or 755")
        by_path = record[_MODE_FIELDS[f.mode]]
        if f.path in record["files"] or f.path in record["executables"]:
            raise UnsafeNameError(f"skill file path {f.path!r} appears twice", file=file)
        by_path[f.path] = f.data
        count, total = count + 1, total + len(f.data)
    _check_tree_caps(count, total, file)
    _check_paths([*record["files"], *record["executables"]], file)
    return encode_record(skill_tree_schema(), record, file=file, limits=SKILL_TREE_LIMITS).data


def decode_skill_tree(data: bytes, *, file: str = "<skill>") -> tuple[SkillFile, ...]:
    """The files of a ``skill-tree-v1`` vein, sorted by path bytes (``read_tree``'s order).

    Raises:
        LimitExceeded: over ``MAX_MEMBER_BYTES``, or a map over ``MAX_FILES``
            entries (both before allocating), or the tree over ``MAX_FILES``
            files or ``MAX_TREE_BYTES`` bytes.
        DecodeError: not a canonical ``skill-tree-v1`` vein; ``duplicate_key``
            for a path in both ``files`` and ``executables``.
        UnsafeNameError: a path that breaks the path rules (module docstring).
    """
    record = decode_vein(data, skill_tree_schema(), file=file, limits=SKILL_TREE_LIMITS).record
    plain: dict[str, bytes] = record.get("files", {})
    executables: dict[str, bytes] = record.get("executables", {})
    for path in executables:
        if path in plain:
            raise DecodeError(f"skill file path {path!r} is in both files and executables", code="duplicate_key",
                              file=file, location="executables")
    _check_tree_caps(len(plain) + len(executables), sum(map(len, plain.values())) +
                     sum(map(len, executables.values())), file)
    _check_paths([*plain, *executables], file)
    out = [SkillFile(p, 0o644, d) for p, d in plain.items()] + [SkillFile(p, 0o755, d) for p, d in executables.items()]
    out.sort(key=lambda f: f.path.encode("utf-8"))
    return tuple(out)


def _check_tree_caps(count: int, total: int, file: str) -> None:
    if count > MAX_FILES or total > MAX_TREE_BYTES:
        raise LimitExceeded(f"skill has {count} files and {total} bytes; the limits are {MAX_FILES} files "
                            f"and {MAX_TREE_BYTES} bytes", file=file)


def _check_paths(paths: list[str], file: str) -> None:
    """The rules of a path read from a folder: relative, ``/``-separated, no empty, ``.`` or ``..``
    part, no NUL, NFC; and no path that is also a folder of another (a folder cannot hold both)."""
    for path in paths:
        parts = path.split("/")
        if "\0" in path or any(part in ("", ".", "..") for part in parts):
            raise UnsafeNameError(f"skill file path {path!r} is not a relative path inside its skill "
                                  "(no absolute path, no empty, '.' or '..' part, no NUL)", file=file)
        if not is_nfc(path):
            raise UnsafeNameError(f"skill file path {path!r} is not Unicode NFC", file=file)
    files = set(paths)
    for path in paths:
        cut = path.rfind("/")
        while cut > 0:
            if path[:cut] in files:
                raise UnsafeNameError(f"skill file path {path[:cut]!r} is a file and also the folder of {path!r}",
                                      file=file)
            cut = path.rfind("/", 0, cut)


def _check_skill_names(names: Iterable[str], file: str) -> None:
    # Skill names become folder names (skills/<name>/), under the same rule as step names.
    for name in names:
        if not is_safe_name(name):
            raise UnsafeNameError(f"skill member name {name!r} is not a safe file name: {name_problem(name)}",
                                  file=file, location="skills")


def _check_manifest_name(name: str, file: str) -> None:
    if not (is_safe_name(name) and name.endswith(".json")):
        raise UnsafeNameError(f"manifest name {name!r} is not a safe file name ending in .json",
                              file=file, location="manifestName")


def read_pack(data: bytes, *, file: str = "<pack>") -> Pack:
    """Decode a ``lodepack-v1`` or ``lodepack-v2`` pack (by its header's schema id) and check its
    member names and skill file paths; nothing is verified yet.

    Raises:
        LimitExceeded: the pack or a member is over its cap (before allocation),
            or a skill over ``MAX_FILES`` files / ``MAX_TREE_BYTES`` bytes.
        DecodeError: not a canonical ``lodepack-v1`` / ``-v2`` vein (including
            duplicate or unsorted members), or a skill member that is not a
            canonical ``skill-tree-v1`` vein (``duplicate_key`` for a path
            that is both a plain file and an executable).
        UnsafeNameError: ``unsafe_name``: a step or skill member name that is
            not a safe file name (``../x``, ``/etc/x``, NUL, ...), or a skill
            file path that is absolute, has an empty, ``.`` or ``..`` part, is
            not NFC, or is also the folder of another path.
    """
    if len(data) > MAX_PACK_BYTES:
        raise LimitExceeded(f"pack is {len(data)} bytes; the limit is {MAX_PACK_BYTES}", file=file)
    schema = _pack_schema(data)
    record = decode_vein(data, schema, file=file, limits=PACK_LIMITS).record
    _check_manifest_name(record["manifestName"], file)
    steps: dict[str, bytes] = record["steps"]
    for name in () if all_safe_names(list(steps)) else steps:
        if not is_safe_name(name):
            raise UnsafeNameError(f"member name {name!r} is not a safe file name: {name_problem(name)}",
                                  file=file, location="steps")
    members: dict[str, bytes] = record.get("skills", {})
    _check_skill_names(members, file)
    skills = {name: decode_skill_tree(member, file=f"{file}#skills/{name}") for name, member in members.items()}
    return Pack(record["manifestName"], record["manifest"], record.get("envelope"), record["stepSchema"],
                record["stackSchema"], steps, data, skills)


def _pack_schema(data: bytes) -> Schema:
    # The header's schema id picks the version; anything else is judged (and refused) as v1.
    v2 = lodepack_v2_schema()
    return v2 if data[5:13] == v2.schema_id else lodepack_schema()
