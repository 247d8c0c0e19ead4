"""Packs that carry skills (``lodepack-v2``), attacked as bytes: the reader, pack membership and the pin check.

Each test builds a locked seed stack in memory (three small skills pinned
by tree digest), packs it with ``build_pack`` or writes the attacked bytes
by hand (canonical CBOR, ``docs/pack-format.md``), and hands them to
``read_pack``, ``check_pack`` / ``verify_pack`` and the pack's tree loader
(``lodec.app.verify.pack_tree_loader`` with ``lodec.format.tree.check_pins``,
what ``lodec verify PACK`` runs). No file system, no CLI; the CLI side is
``tests/test_pack_skills.py``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from lodec.app.verify import pack_tree_loader
from lodec.errors import DecodeError, LimitExceeded, UnsafeNameError
from lodec.format.cbor import encode
from lodec.format.codec import header
from lodec.format.pack import MAX_MEMBER_BYTES, build_pack, decode_skill_tree, encode_skill_tree, read_pack
from lodec.format.schema import builtin_schema_bytes, lodepack_schema, lodepack_v2_schema, skill_tree_schema
from lodec.format.tree import MAX_FILES, SkillFile, check_pins, tree_digest
from lodec.sign.pack import verify_pack

from .builders import Stack, seed_stack

#: Three skills as a folder would hold them (paths, git modes, bytes).
SKILLS: dict[str, tuple[SkillFile, ...]] = {
    "eslint-check": (SkillFile("SKILL.md", 0o644, b"---\nname: eslint-check\n---\n"),
                     SkillFile("lint.py", 0o755, b"#!/usr/bin/env python3\nprint('lint')\n"),
                     SkillFile("lodec.toml", 0o644, b'command = ["lint.py"]\n'),
                     SkillFile("rules/base.json", 0o644, b"{}\n")),
    "static-analysis": (SkillFile("SKILL.md", 0o644, b"---\nname: static-analysis\n---\n"),
                        SkillFile("analyze.py", 0o755, b"#!/usr/bin/env python3\n")),
    "code-review": (SkillFile("SKILL.md", 0o644, b"---\nname: code-review\n---\n"),
                    SkillFile("review.py", 0o755, b"#!/usr/bin/env python3\n"),
                    SkillFile("\u00e9t\u00e9/notes.txt", 0o644, b"NFC path\n")),
}


def locked(skills: Mapping[str, tuple[SkillFile, ...]] = SKILLS) -> Stack:
    """The seed stack with ``skillDigests`` pinning ``skills`` (what ``lodec lock`` writes)."""
    return seed_stack().with_doc(lambda d: d.__setitem__(
        "skillDigests", {f"skill:{n}": tree_digest(files) for n, files in skills.items()}))


def pack(stack: Stack, skills: Mapping[str, Any] | None = SKILLS) -> bytes:
    """``stack`` packed with ``skills``, as ``lodec pack`` writes it (no check that they are the pinned ones)."""
    stack_schema = "skill-stack-v2" if "skillDigests" in stack.doc() else "skill-stack-v1"
    return build_pack(manifest_name="stack.json", manifest=stack.manifest, steps=stack.steps,
                      step_schema=builtin_schema_bytes("skill-step-v1"),
                      stack_schema=builtin_schema_bytes(stack_schema), skills=skills)


def crafted(stack: Stack, skills: Mapping[str, bytes]) -> bytes:
    """A v2 pack written by hand: any skill member bytes, unchecked."""
    return header(lodepack_v2_schema()) + encode({
        1: "stack.json", 2: stack.manifest, 4: builtin_schema_bytes("skill-step-v1"),
        5: builtin_schema_bytes("skill-stack-v2"), 6: dict(stack.steps), 7: dict(skills)})


def tree_bytes(files: Mapping[str, bytes] | None = None, executables: Mapping[str, bytes] | None = None) -> bytes:
    """A ``skill-tree-v1`` vein written by hand."""
    body: dict[int, Any] = {}
    if files:
        body[1] = dict(files)
    if executables:
        body[2] = dict(executables)
    return header(skill_tree_schema()) + encode(body)


def skill_problems(data: bytes) -> list[tuple[str, str]]:
    """``lodec verify PACK``'s skill check on pack bytes: each pinned skill from the pack against its pin."""
    p = read_pack(data, file="x.lodepack")
    pins = locked().doc()["skillDigests"]
    _, problems = check_pins(pins, pack_tree_loader(p, "x.lodepack"))
    return problems


# ------------------------------------------------------------------ the format


def test_skills_round_trip_with_paths_modes_and_bytes() -> None:
    data = pack(locked())
    assert data[:13] == header(lodepack_v2_schema()) == bytes.fromhex("5645494e0116d24a91c6a3dac4")
    p = read_pack(data)
    for name, files in SKILLS.items():
        assert p.skills[name] == tuple(sorted(files, key=lambda f: f.path.encode()))
        assert tree_digest(p.skills[name]) == tree_digest(files)
    report = verify_pack(p)
    assert report.ok, report.problems
    assert skill_problems(data) == []


def test_the_same_skills_in_any_order_give_the_same_bytes() -> None:
    rng = random.Random(7)
    first = pack(locked())
    for _ in range(5):
        names = list(SKILLS)
        rng.shuffle(names)
        shuffled = {n: tuple(rng.sample(SKILLS[n], len(SKILLS[n]))) for n in names}
        assert pack(locked(), shuffled) == first


def test_a_skill_tree_member_is_a_skill_tree_vein() -> None:
    member = encode_skill_tree(SKILLS["eslint-check"])
    assert member[:13] == bytes.fromhex("5645494e014c70a9d43bb81d69")
    # Field 1 (mode 644) and field 2 (mode 755), each path -> bytes, canonical order.
    assert member[13:] == encode({1: {"SKILL.md": SKILLS["eslint-check"][0].data,
                                      "lodec.toml": SKILLS["eslint-check"][2].data,
                                      "rules/base.json": b"{}\n"},
                                  2: {"lint.py": SKILLS["eslint-check"][1].data}})
    assert decode_skill_tree(member) == tuple(sorted(SKILLS["eslint-check"], key=lambda f: f.path.encode()))


def test_a_stack_without_skills_packs_as_lodepack_v1_and_reads() -> None:
    stack = seed_stack()
    data = build_pack(manifest_name="stack.json", manifest=stack.manifest, steps=stack.steps,
                      step_schema=builtin_schema_bytes("skill-step-v1"),
                      stack_schema=builtin_schema_bytes("skill-stack-v1"))
    assert data[:13] == header(lodepack_schema())
    p = read_pack(data)
    assert p.skills == {} and verify_pack(p).ok


# ------------------------------------------------------------------ the pin check


def test_a_flipped_byte_in_a_carried_skill_is_drifted() -> None:
    files = list(SKILLS["eslint-check"])
    files[1] = SkillFile("lint.py", 0o755, files[1].data.replace(b"lint", b"lynt"))
    data = pack(locked(), {**SKILLS, "eslint-check": tuple(files)})
    assert verify_pack(read_pack(data)).ok  # the members alone are fine: the pin check is what refuses it
    problems = skill_problems(data)
    assert [c for c, _ in problems] == ["skill_drifted"]
    assert "skill:eslint-check" in problems[0][1] and "x.lodepack#skills/eslint-check" in problems[0][1]


def test_a_carried_skill_with_a_changed_mode_is_drifted() -> None:
    files = tuple(SkillFile(f.path, 0o644, f.data) for f in SKILLS["eslint-check"])
    assert [c for c, _ in skill_problems(pack(locked(), {**SKILLS, "eslint-check": files}))] == ["skill_drifted"]


def test_a_carried_skill_with_an_extra_file_is_drifted() -> None:
    files = (*SKILLS["code-review"], SkillFile("payload.sh", 0o755, b"#!/bin/sh\n"))
    assert [c for c, _ in skill_problems(pack(locked(), {**SKILLS, "code-review": files}))] == ["skill_drifted"]


def test_a_pinned_skill_the_pack_does_not_carry_is_not_found() -> None:
    data = pack(locked(), {n: f for n, f in SKILLS.items() if n != "code-review"})
    problems = skill_problems(data)
    assert problems == [("skill_not_found", "skill:code-review: x.lodepack: the pack does not carry skills/code-review")]


def test_a_v1_pack_of_a_locked_stack_carries_no_skills() -> None:
    stack = locked()
    v1 = build_pack(manifest_name="stack.json", manifest=stack.manifest, steps=stack.steps,
                    step_schema=builtin_schema_bytes("skill-step-v1"),
                    stack_schema=builtin_schema_bytes("skill-stack-v2"))
    assert v1[:13] == header(lodepack_schema())
    problems = skill_problems(v1)
    assert [c for c, _ in problems] == ["skill_not_found"] * 3
    assert all("the pack carries no skills" in m for _, m in problems)


def test_an_unpinned_skill_member_is_unlisted() -> None:
    extra = (SkillFile("SKILL.md", 0o644, b"---\nname: smuggled\n---\n"),)
    report = verify_pack(read_pack(pack(locked(), {**SKILLS, "smuggled": extra})))
    assert not report.ok and report.verified is None
    assert [(p.code, p.step) for p in report.problems] == [("pack_member_unlisted", None)]
    assert "skills/smuggled" in report.problems[0].message


def test_skill_members_of_a_stack_that_pins_none_are_unlisted() -> None:
    report = verify_pack(read_pack(pack(seed_stack())))
    assert sorted(p.message.split("member ")[1].split(" ")[0] for p in report.problems) == [
        f"skills/{n}" for n in sorted(SKILLS)]
    assert {p.code for p in report.problems} == {"pack_member_unlisted"}


# ------------------------------------------------------------------ hostile paths and names (refused at read)


@pytest.mark.parametrize("path", ["../x", "/etc/x", "a/../../x", "a/..", "./x", "a/./b", "a//b", "a/", "",
                                  "x\0y", "../../../../tmp/pwned"])
@pytest.mark.parametrize("field", [1, 2])
def test_a_skill_file_path_that_leaves_its_folder_is_refused_at_read(path: str, field: int) -> None:
    member = tree_bytes(**{("files" if field == 1 else "executables"): {path: b"pwned"}})
    with pytest.raises(UnsafeNameError) as info:
        read_pack(crafted(locked(), {"code-review": member}))
    assert info.value.code == "unsafe_name" and "#skills/code-review" in str(info.value.file)


def test_a_path_that_is_a_file_and_a_folder_is_refused() -> None:
    member = tree_bytes({"a": b"file", "a/b": b"under the file"})
    with pytest.raises(UnsafeNameError, match="is a file and also the folder"):
        read_pack(crafted(locked(), {"code-review": member}))


def test_a_path_in_both_modes_is_a_duplicate() -> None:
    member = tree_bytes({"run.sh": b"one"}, {"run.sh": b"two"})
    with pytest.raises(DecodeError) as info:
        read_pack(crafted(locked(), {"code-review": member}))
    assert info.value.code == "duplicate_key"


def test_a_path_not_in_nfc_is_refused() -> None:
    member = tree_bytes({"e\u0301.txt": b"x"})
    with pytest.raises(DecodeError) as info:
        read_pack(crafted(locked(), {"code-review": member}))
    assert info.value.code == "not_nfc"


@pytest.mark.parametrize("name", ["../evil", "/tmp/abs", "a/b", "..", ".hidden"])
def test_a_skill_member_name_that_is_not_safe_is_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError):
        read_pack(crafted(locked(), {name: encode_skill_tree(SKILLS["code-review"])}))


def test_a_skill_member_that_is_not_a_skill_tree_vein_is_refused() -> None:
    with pytest.raises(DecodeError) as info:
        read_pack(crafted(locked(), {"code-review": lodepack_schema().schema_id}))
    assert info.value.code == "truncated"
    with pytest.raises(DecodeError) as info:
        read_pack(crafted(locked(), {"code-review": header(lodepack_schema()) + encode({1: {"a": b""}})}))
    assert info.value.code == "schema_mismatch"


# ------------------------------------------------------------------ caps


def test_a_skill_declaring_more_than_max_files_is_refused_before_allocating() -> None:
    # Map of 4,097 entries declared, and the member ends: the count is refused before anything is built.
    member = header(skill_tree_schema()) + b"\xa1\x01\xb9" + (MAX_FILES + 1).to_bytes(2, "big")
    with pytest.raises(LimitExceeded):
        read_pack(crafted(locked(), {"code-review": member}))


def test_a_skill_over_max_files_across_both_maps_is_refused() -> None:
    half = MAX_FILES // 2 + 1
    member = tree_bytes({f"f{i}": b"" for i in range(half)}, {f"x{i}": b"" for i in range(half)})
    with pytest.raises(LimitExceeded, match="4096 files"):
        read_pack(crafted(locked(), {"code-review": member}))


def test_a_skill_member_over_the_member_cap_is_refused_before_allocating() -> None:
    stack = locked()
    head = encode({1: "stack.json", 2: stack.manifest, 4: builtin_schema_bytes("skill-step-v1"),
                   5: builtin_schema_bytes("skill-stack-v2"), 6: dict(stack.steps)})
    # Field 7 by hand: one member claiming MAX_MEMBER_BYTES + 1 bytes, and the file ends.
    body = bytes([head[0] + 1]) + head[1:] + b"\x07\xa1" + encode("code-review") + b"\x5a" + (
        MAX_MEMBER_BYTES + 1).to_bytes(4, "big")
    with pytest.raises(LimitExceeded):
        read_pack(header(lodepack_v2_schema()) + body)


def test_build_pack_refuses_what_read_pack_would() -> None:
    stack = locked()
    with pytest.raises(UnsafeNameError):
        pack(stack, {"code-review": (SkillFile("../x", 0o644, b""),)})
    with pytest.raises(UnsafeNameError):
        pack(stack, {"../code-review": SKILLS["code-review"]})
    with pytest.raises(ValueError, match="mode"):
        pack(stack, {"code-review": (SkillFile("x", 0o600, b""),)})
    with pytest.raises(LimitExceeded):
        pack(stack, {"code-review": tuple(SkillFile(f"f{i}", 0o644, b"") for i in range(MAX_FILES + 1))})
    with pytest.raises(LimitExceeded):
        pack(stack, {"code-review": (SkillFile("big", 0o644, b"\0" * MAX_MEMBER_BYTES),)})
