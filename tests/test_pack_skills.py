"""Packs carry their skills (lodepack-v2): pack -> verify -> run from the pack alone, unpack, and the refusals.

Real files and the real CLI (``run_cli``) on a copy of ``stacks/code-review``,
whose manifest pins its three skills. The core side (bytes straight into
``read_pack`` / ``check_pack``) is ``tests/core/test_pack_skill_attacks.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from lodec.format.cbor import encode
from lodec.format.codec import header
from lodec.format.pack import build_pack, read_pack
from lodec.format.schema import lodepack_schema, lodepack_v2_schema, skill_tree_schema
from lodec.format.tree import SkillFile, read_tree, tree_digest

from .conftest import EXPIRES, ROOT, VERIFY_AT, run_cli, sign_cli

EXAMPLE = ROOT / "stacks" / "code-review"
SKILLS = ("code-review", "eslint-check", "static-analysis")


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of stacks/code-review in ``tmp_path/src``; $LODEC_HOME an empty ``tmp_path/home``."""
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    dest = tmp_path / "src"
    shutil.copytree(EXAMPLE, dest)
    return dest


@pytest.fixture
def signed_pack(example: Path, keys: dict[str, Path], tmp_path: Path) -> Path:
    """The example signed by alice and packed into ``tmp_path/dist/cr.lodepack``."""
    sign_cli(example / "code-review-stack.json", keys["alice"], "--expires", EXPIRES)
    out = tmp_path / "dist" / "cr.lodepack"
    out.parent.mkdir()
    code, _, err = run_cli("pack", example / "code-review-stack.json", "-o", out)
    assert code == 0, err
    return out


def alice(keys: dict[str, Path]) -> list[str]:
    return ["--key", f"{keys['alice']}.pub", "--now", VERIFY_AT]


def repack(pack_file: Path, out: Path, **changes: object) -> Path:
    """``pack_file`` re-encoded by ``build_pack`` with its members changed (the manifest and envelope kept)."""
    p = read_pack(pack_file.read_bytes())
    members: dict[str, object] = dict(manifest_name=p.manifest_name, manifest=p.manifest, steps=p.steps,
                                      step_schema=p.step_schema, stack_schema=p.stack_schema, envelope=p.envelope,
                                      skills=p.skills)
    members.update(changes)
    out.write_bytes(build_pack(**members))  # type: ignore[arg-type]
    return out


def skill_dirs(root: Path) -> list[Path]:
    """Every folder named ``skills`` under ``root``, except the copies runs make for themselves."""
    return [p for p in root.rglob("skills") if p.is_dir() and "runs" not in p.relative_to(root).parts]


# ------------------------------------------------------------------ pack -> verify -> run


def test_pack_carries_every_pinned_skill_as_verified(example: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("pack", "--json", example / "code-review-stack.json", "-o", tmp_path / "cr.lodepack")
    assert code == 0, err
    assert json.loads(out)["skills"] == [f"skill:{n}" for n in SKILLS]
    data = (tmp_path / "cr.lodepack").read_bytes()
    assert data[:13] == header(lodepack_v2_schema())
    p = read_pack(data)
    pins = json.loads((example / "code-review-stack.json").read_text())["skillDigests"]
    assert sorted(p.skills) == list(SKILLS)
    for name in SKILLS:
        files = read_tree(example / "skills" / name)
        assert p.skills[name] == files  # paths, modes and bytes, in read_tree's order
        assert tree_digest(p.skills[name]) == pins[f"skill:{name}"]
    assert {f.path: f.mode for f in p.skills["eslint-check"]}["lint.py"] == 0o755
    assert {f.path: f.mode for f in p.skills["eslint-check"]}["SKILL.md"] == 0o644


def test_packing_twice_and_from_another_copy_gives_identical_bytes(example: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "copy"
    shutil.copytree(example, other)
    for f in (other / "skills").rglob("*"):
        os.utime(f, (1, 1))  # times are not part of a pack
    outs = []
    for i, src in enumerate((example, example, other)):
        out = tmp_path / f"p{i}.lodepack"
        code, _, err = run_cli("pack", src / "code-review-stack.json", "-o", out)
        assert code == 0, err
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_signed_pack_verifies_and_runs_the_code_review_example(
    signed_pack: Path, example: Path, keys: dict[str, Path]
) -> None:
    code, out, err = run_cli("verify", "--json", signed_pack, *alice(keys))
    assert code == 0, err
    assert json.loads(out)["ok"]
    code, out, err = run_cli("run", signed_pack, *alice(keys), "--workspace", example / "fixture", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "succeeded" and list(record["steps"]) == ["lint", "static-analysis", "ai-review"]
    pins = json.loads((example / "code-review-stack.json").read_text())["skillDigests"]
    assert record["skills"] == pins


def test_a_signed_pack_runs_with_only_the_pack_and_the_public_key(
    signed_pack: Path, keys: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The consumer's machine: the pack, alice.pub, a project to work on; no skills anywhere.
    machine = tmp_path / "consumer"
    (machine / "download").mkdir(parents=True)
    pack_file = machine / "download" / "cr.lodepack"
    shutil.copy(signed_pack, pack_file)
    shutil.copy(f"{keys['alice']}.pub", machine / "download" / "alice.pub")
    shutil.copytree(EXAMPLE / "fixture", machine / "project")
    (machine / "home").mkdir()
    (machine / "cwd").mkdir()
    shutil.rmtree(tmp_path / "src")  # the publisher's folder, skills included, is gone
    shutil.rmtree(tmp_path / "dist")
    monkeypatch.setenv("LODEC_HOME", str(machine / "home"))
    monkeypatch.chdir(machine / "cwd")
    assert skill_dirs(tmp_path) == []

    code, out, err = run_cli("run", pack_file, "--key", machine / "download" / "alice.pub", "--now", VERIFY_AT,
                             "--workspace", machine / "project", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "succeeded"
    assert {s["status"] for s in record["steps"].values()} == {"succeeded"}
    assert skill_dirs(tmp_path) == []  # nothing was looked up or installed; the run used its private copies

    # The same through the Python API: each skill the run binds was read from the pack's members.
    from datetime import datetime

    from lodec.app import Workspace
    from lodec.app.options import TrustOptions
    from lodec.app.runs import prepare

    now = datetime.fromisoformat(VERIFY_AT.replace("Z", "+00:00"))
    prepared = prepare(str(pack_file), Workspace.discover(machine / "project"),
                       TrustOptions(keys=(str(machine / "download" / "alice.pub"),), now=now))
    assert {ref: str(s.source) for ref, s in prepared.skills.items()} == {
        f"skill:{n}": f"{pack_file}#skills/{n}" for n in SKILLS}


def test_attack_a_pack_with_a_flipped_skill_byte_is_refused_and_nothing_runs(
    signed_pack: Path, example: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    p = read_pack(signed_pack.read_bytes())
    files = list(p.skills["eslint-check"])
    i = next(i for i, f in enumerate(files) if f.path == "lint.py")
    data = bytearray(files[i].data)
    data[len(data) // 2] ^= 0x01
    files[i] = SkillFile(files[i].path, files[i].mode, bytes(data))
    bad = repack(signed_pack, tmp_path / "flipped.lodepack", skills={**p.skills, "eslint-check": tuple(files)})

    code, out, err = run_cli("verify", "--json", bad, *alice(keys))
    problems = json.loads(out)["problems"]
    assert code == 1 and [p["code"] for p in problems] == ["skill_drifted"], err
    assert "skill:eslint-check" in problems[0]["message"] and "#skills/eslint-check" in problems[0]["message"]
    code, _, err = run_cli("run", bad, *alice(keys), "--workspace", example / "fixture")
    assert code == 1 and "[skill_drifted]" in err
    assert not (tmp_path / "home" / "runs").exists()


def test_attack_a_pack_with_a_changed_skill_mode_is_refused(signed_pack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    p = read_pack(signed_pack.read_bytes())
    files = tuple(SkillFile(f.path, 0o644, f.data) for f in p.skills["eslint-check"])  # lint.py no longer executable
    bad = repack(signed_pack, tmp_path / "mode.lodepack", skills={**p.skills, "eslint-check": files})
    code, out, _ = run_cli("verify", "--json", bad, *alice(keys))
    assert code == 1 and [p["code"] for p in json.loads(out)["problems"]] == ["skill_drifted"]


def test_attack_a_pack_missing_a_pinned_skill_is_refused(signed_pack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    p = read_pack(signed_pack.read_bytes())
    bad = repack(signed_pack, tmp_path / "short.lodepack",
                 skills={n: f for n, f in p.skills.items() if n != "code-review"})
    code, out, _ = run_cli("verify", "--json", bad, *alice(keys))
    problems = json.loads(out)["problems"]
    assert code == 1 and [p["code"] for p in problems] == ["skill_not_found"]
    assert "does not carry skills/code-review" in problems[0]["message"]


def test_attack_an_extra_unpinned_skill_member_is_refused(signed_pack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    p = read_pack(signed_pack.read_bytes())
    bad = repack(signed_pack, tmp_path / "extra.lodepack",
                 skills={**p.skills, "smuggled": (SkillFile("run.sh", 0o755, b"#!/bin/sh\nexit 0\n"),)})
    code, out, _ = run_cli("verify", "--json", bad, *alice(keys))
    problems = json.loads(out)["problems"]
    assert code == 1 and [p["code"] for p in problems] == ["pack_member_unlisted"]
    assert "skills/smuggled" in problems[0]["message"]
    out_dir = tmp_path / "out"
    code, _, err = run_cli("unpack", bad, "-o", out_dir, *alice(keys))
    assert code == 1 and not out_dir.exists(), err


@pytest.mark.parametrize("path", ["../x", "/etc/x", "a/../../x", "./x", "a//b", "x\0y"])
def test_attack_a_skill_file_path_escaping_its_folder_is_refused_at_read(
    signed_pack: Path, keys: dict[str, Path], tmp_path: Path, path: str
) -> None:
    # build_pack refuses such a path, so the member is written by hand (canonical CBOR).
    p = read_pack(signed_pack.read_bytes())
    tree = header(skill_tree_schema()) + encode({1: {f.path: f.data for f in p.skills["code-review"]
                                                      if f.mode == 0o644} | {path: b"pwned"},
                                                 2: {f.path: f.data for f in p.skills["code-review"]
                                                     if f.mode == 0o755}})
    members = {1: p.manifest_name, 2: p.manifest, 3: p.envelope, 4: p.step_schema, 5: p.stack_schema,
               6: dict(p.steps), 7: {**{n: build_skill(p, n) for n in p.skills}, "code-review": tree}}
    evil = tmp_path / "evil.lodepack"
    evil.write_bytes(header(lodepack_v2_schema()) + encode(members))
    code, _, err = run_cli("verify", evil, *alice(keys))
    assert code == 1 and "[unsafe_name]" in err and "Traceback" not in err, err
    out_dir = tmp_path / "work" / "out"
    code, _, err = run_cli("unpack", evil, "-o", out_dir, *alice(keys))
    assert code == 1 and "[unsafe_name]" in err
    assert not out_dir.exists() and not (tmp_path / "work" / "x").exists() and not (tmp_path / "x").exists()


def build_skill(p: object, name: str) -> bytes:
    """The skill member ``name`` of pack ``p`` as ``build_pack`` writes it."""
    from lodec.format.pack import encode_skill_tree

    return encode_skill_tree(p.skills[name])  # type: ignore[attr-defined]


# ------------------------------------------------------------------ unpack


def test_unpack_writes_the_skills_and_the_result_verifies_and_runs(
    signed_pack: Path, example: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    out_dir = tmp_path / "unpacked"
    code, _, err = run_cli("unpack", signed_pack, "-o", out_dir, *alice(keys))
    assert code == 0, err
    for name in SKILLS:
        assert read_tree(out_dir / "skills" / name) == read_tree(example / "skills" / name)
    script = out_dir / "skills" / "eslint-check" / "lint.py"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert stat.S_IMODE((out_dir / "skills" / "eslint-check" / "SKILL.md").stat().st_mode) == 0o644
    assert all(not p.is_symlink() for p in out_dir.rglob("*"))
    manifest = out_dir / "code-review-stack.json"
    code, _, err = run_cli("verify", manifest, *alice(keys))
    assert code == 0, err
    shutil.rmtree(example / "skills")  # the unpacked copy is the one found (skills/ beside the manifest)
    code, out, err = run_cli("run", manifest, *alice(keys), "--workspace", example / "fixture", "--json")
    assert code == 0 and json.loads(out)["status"] == "succeeded", err


# ------------------------------------------------------------------ packing refusals and lookup


def test_pack_refuses_a_drifted_skill_and_writes_nothing(example: Path, tmp_path: Path) -> None:
    lint = example / "skills" / "eslint-check" / "lint.py"
    lint.write_text(lint.read_text() + "\n# edited after lock\n")
    code, out, err = run_cli("pack", example / "code-review-stack.json", "-o", tmp_path / "cr.lodepack")
    assert code == 1 and "skill_drifted" in out + err
    assert not (tmp_path / "cr.lodepack").exists()


def test_pack_refuses_a_missing_skill(example: Path, tmp_path: Path) -> None:
    shutil.rmtree(example / "skills" / "code-review")
    code, out, err = run_cli("pack", example / "code-review-stack.json", "-o", tmp_path / "cr.lodepack")
    assert code == 1 and "skill_not_found" in out + err
    assert not (tmp_path / "cr.lodepack").exists()


def test_pack_finds_skills_where_verify_does(example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Skills installed in $LODEC_HOME/skills, not beside the stack: verify finds them there, and so does pack.
    (tmp_path / "home").mkdir()
    shutil.move(example / "skills", tmp_path / "home" / "skills")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("verify", example / "code-review-stack.json")
    assert code == 0, err
    code, _, err = run_cli("pack", example / "code-review-stack.json", "-o", tmp_path / "cr.lodepack",
                           "--workspace", tmp_path)
    assert code == 0, err
    assert sorted(read_pack((tmp_path / "cr.lodepack").read_bytes()).skills) == list(SKILLS)


def test_an_unlocked_stack_still_packs_as_lodepack_v1(seed_stack: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("pack", "--json", seed_stack, "-o", tmp_path / "seed.lodepack")
    assert code == 0, err
    assert json.loads(out)["skills"] == []
    data = (tmp_path / "seed.lodepack").read_bytes()
    assert data[:13] == header(lodepack_schema()) and read_pack(data).skills == {}


# ------------------------------------------------------------------ version 1 packs


def test_a_v1_pack_still_reads_and_verifies(seed_stack: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("pack", seed_stack, "-o", tmp_path / "seed.lodepack")
    assert code == 0, err
    code, out, err = run_cli("verify", "--json", tmp_path / "seed.lodepack")
    assert code == 0 and json.loads(out)["ok"], err


def test_a_v1_pack_of_a_locked_stack_fails_the_skill_check(
    signed_pack: Path, example: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    # What a lodec from before lodepack-v2 wrote for this stack: the same members, no skills.
    p = read_pack(signed_pack.read_bytes())
    old = repack(signed_pack, tmp_path / "old.lodepack", skills={})
    assert old.read_bytes()[:13] == header(lodepack_schema())
    assert read_pack(old.read_bytes()).steps == p.steps
    code, out, _ = run_cli("verify", "--json", old, *alice(keys))
    problems = json.loads(out)["problems"]
    assert code == 1 and {p["code"] for p in problems} == {"skill_not_found"} and len(problems) == 3
    assert all("the pack carries no skills" in p["message"] for p in problems)
    code, _, err = run_cli("run", old, *alice(keys), "--workspace", example / "fixture")
    assert code == 1 and "[skill_not_found]" in err
    code, out, err = run_cli("verify", old, *alice(keys), "--no-skills")
    assert code == 0 and "skills not checked" in out, err
