"""Skills: validation, the tree digest, lookup, install; skill pins in skill-stack-v2 manifests."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import blake3
import pytest

from lodec.errors import SkillError
from lodec.format.tree import find_skill, tree_digest
from lodec.run.skills import load_skill
from lodec.store.workspace import Workspace
from tests.conftest import ROOT, run_cli
from tests.runkit import make_skill, make_stack, step


@pytest.fixture(autouse=True)
def lodec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lodec-home"
    monkeypatch.setenv("LODEC_HOME", str(home))
    return home


def _independent_tree_digest(folder: Path) -> str:
    """The tree digest of docs/skill-contract.md, recomputed from the spec without lodec's code."""
    entries = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            full = Path(dirpath) / name
            rel = full.relative_to(folder).as_posix()
            mode = b"755" if os.stat(full).st_mode & 0o111 else b"644"
            entries.append((rel.encode(), mode, full.read_bytes()))
    h = blake3.blake3(b"lodec-skill-tree-v1\0")
    for path, mode, data in sorted(entries):
        h.update(path + b"\0" + mode + b"\0" + struct.pack(">Q", len(data)) + data)
    return "blake3:" + h.hexdigest()


def test_tree_digest_matches_the_documented_construction(tmp_path: Path) -> None:
    folder = make_skill(tmp_path, "probe")
    (folder / "lib").mkdir()
    (folder / "lib" / "data.txt").write_text("data")
    (folder / "Z-last.txt").write_text("z")
    assert load_skill(folder).digest == _independent_tree_digest(folder)
    for bundled in sorted((ROOT / "stacks" / "code-review" / "skills").iterdir()):
        assert load_skill(bundled).digest == _independent_tree_digest(bundled)


def test_tree_digest_changes_with_content_mode_and_name_but_not_umask(tmp_path: Path) -> None:
    folder = make_skill(tmp_path, "probe")
    base = load_skill(folder).digest
    (folder / "SKILL.md").chmod(0o664)  # another umask: same git mode
    assert load_skill(folder).digest == base
    (folder / "SKILL.md").chmod(0o755)  # executable now: a different file
    assert load_skill(folder).digest != base
    (folder / "SKILL.md").chmod(0o644)
    (folder / "notes.txt").write_text("")
    with_empty = load_skill(folder).digest
    assert with_empty != base, "an added empty file counts"
    (folder / "notes.txt").rename(folder / "notes2.txt")
    assert load_skill(folder).digest not in (base, with_empty)


def test_path_and_content_boundaries_cannot_be_shifted(tmp_path: Path) -> None:
    from lodec.format.tree import SkillFile

    a = tree_digest([SkillFile("ab", 0o644, b"c")])
    b = tree_digest([SkillFile("a", 0o644, b"bc")])
    assert a != b


def test_symlink_in_a_skill_is_refused(tmp_path: Path) -> None:
    folder = make_skill(tmp_path, "linky")
    (folder / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(SkillError) as info:
        load_skill(folder)
    assert info.value.code == "skill_link" and info.value.location == "passwd"
    code, _, err = run_cli("skill", "check", folder)
    assert code == 1 and "[skill_link]" in err and "Traceback" not in err


def test_symlinked_directory_in_a_skill_is_refused(tmp_path: Path) -> None:
    folder = make_skill(tmp_path, "linky")
    (folder / "etc").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(SkillError) as info:
        load_skill(folder)
    assert info.value.code == "skill_link"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: (f / "SKILL.md").write_text("---\nname: other-name\ndescription: x\n---\n"), "must match"),
        (lambda f: (f / "SKILL.md").write_text("---\nname: probe\n---\n"), "description"),
        (lambda f: (f / "SKILL.md").write_text("no frontmatter\n"), "frontmatter"),
        (lambda f: (f / "SKILL.md").write_text("---\nname: probe\ndescription: x\ncolour: red\n---\n"), "colour"),
        (lambda f: (f / "SKILL.md").unlink(), "missing SKILL.md"),
        (lambda f: (f / "lodec.toml").unlink(), "missing lodec.toml"),
        (lambda f: (f / "lodec.toml").write_text('command = ["run.py"]\nnetwrok = true\n'), "netwrok"),
        (lambda f: (f / "lodec.toml").write_text('command = ["run.py"]\n[capabilities]\nnetwork = "yes"\n'),
         "capabilities.network"),
        (lambda f: (f / "lodec.toml").write_text('command = ["missing.py"]\n'), "not a file of the skill"),
        (lambda f: (f / "lodec.toml").write_text('command = ["../../bin/sh"]\n'), "relative path"),
        (lambda f: (f / "lodec.toml").write_text('command = ["SKILL.md"]\n'), "not executable"),
        (lambda f: (f / "lodec.toml").write_text('command = ["run.py"]\nconcurrency = "parallel"\n'), "concurrency"),
        (lambda f: (f / "lodec.toml").write_text('command = ["run.py"]\ntimeout = 0\n'), "timeout"),
        (lambda f: (f / "lodec.toml").write_text('command = ["run.py"]\n[capabilities]\nenv = ["LODEC_OUTPUT_DIR"]\n'),
         "reserved"),
        (lambda f: (f / "lodec.toml").write_text('command = ["run.py"]\n[capabilities]\nread = ["../secrets"]\n'),
         "capabilities.read"),
        (lambda f: (f / "lodec.toml").write_text('command = "run.py"\n'), "command"),
        (lambda f: (f / "lodec.toml").write_text('command = [\n'), "not valid TOML"),
    ],
)
def test_invalid_skill_is_refused_with_a_one_line_error(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = make_skill(tmp_path, "probe")
    edit(folder)
    code, out, err = run_cli("skill", "check", folder)
    assert code == 1, out
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(folder) in err


def test_skill_check_prints_the_digest(tmp_path: Path) -> None:
    folder = make_skill(tmp_path, "probe", concurrency="read", env=["HOME"])
    code, out, err = run_cli("skill", "check", folder, "--json")
    assert code == 0, err
    [row] = json.loads(out)["skills"]
    assert row["digest"] == _independent_tree_digest(folder)
    assert row["concurrency"] == "read" and row["capabilities"]["env"] == ["HOME"]
    assert row["capabilities"]["network"] is False


def test_skill_add_copies_into_the_state_and_refuses_a_clash(tmp_path: Path, lodec_home: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = make_skill(tmp_path / "src", "probe")
    code, out, err = run_cli("skill", "add", folder)
    assert code == 0, err
    installed = lodec_home / "skills" / "probe"
    assert load_skill(installed).digest == load_skill(folder).digest
    code, _out, err = run_cli("skill", "add", folder)
    assert code == 1 and "[skill_exists]" in err
    code, out, _ = run_cli("skill", "list", "--json")
    assert [r["name"] for r in json.loads(out)["skills"]] == ["probe"]


def test_skill_add_refuses_an_invalid_skill_and_writes_nothing(tmp_path: Path, lodec_home: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = make_skill(tmp_path / "src", "probe")
    (folder / "lodec.toml").write_text('command = ["nope.py"]\n')
    code, _out, err = run_cli("skill", "add", folder)
    assert code == 1 and "[skill_invalid]" in err
    assert not (lodec_home / "skills" / "probe").exists()


def test_skill_add_inside_git_goes_to_the_repository_root(tmp_path: Path, lodec_home: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    folder = make_skill(tmp_path / "src", "probe")
    monkeypatch.chdir(repo / "sub")
    code, _out, err = run_cli("skill", "add", folder)
    assert code == 0, err
    assert (repo / ".lodec" / "skills" / "probe" / "SKILL.md").is_file()
    assert list((repo / "sub").iterdir()) == [] and not lodec_home.exists()


def test_lookup_order_beside_stack_then_workspace_then_home(tmp_path: Path, lodec_home: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    stack_dir = repo / "stacks"
    stack_dir.mkdir()
    for root in (lodec_home / "skills", repo / ".lodec" / "skills", stack_dir / "skills"):
        make_skill(root, "probe")
    roots = Workspace.discover(repo).skill_roots(stack_dir / "stack.json")
    assert roots == [stack_dir / "skills", repo / ".lodec" / "skills", (lodec_home / "skills").resolve()]
    assert find_skill("skill:probe", roots) == stack_dir / "skills" / "probe"
    assert find_skill("skill:probe", roots[1:]) == repo / ".lodec" / "skills" / "probe"
    assert find_skill("skill:probe", roots[2:]) == (lodec_home / "skills" / "probe").resolve()
    with pytest.raises(SkillError) as info:
        find_skill("skill:absent", roots)
    assert info.value.code == "skill_not_found"
    with pytest.raises(SkillError) as info:
        find_skill("skill:../escape", roots)
    assert info.value.code == "skill_ref_invalid"


# ------------------------------------------------------------------ pins in the manifest


def _locked(tmp_path: Path) -> Path:
    (tmp_path / "stack" / "skills").mkdir(parents=True)
    make_skill(tmp_path / "stack" / "skills", "ok")
    make_skill(tmp_path / "stack" / "skills", "other")
    return make_stack(tmp_path / "stack", [step("a", "ok"), step("b", "other", deps=["a"])])


def test_lock_pins_every_skill_and_the_stack_still_verifies(tmp_path: Path) -> None:
    stack = _locked(tmp_path)
    manifest = json.loads(stack.read_text())
    assert manifest["skillDigests"] == {
        "skill:ok": load_skill(tmp_path / "stack" / "skills" / "ok").digest,
        "skill:other": load_skill(tmp_path / "stack" / "skills" / "other").digest,
    }
    code, out, err = run_cli("verify", stack, "--json")
    assert code == 0, err
    before = stack.read_bytes()
    assert run_cli("lock", stack)[0] == 0
    assert stack.read_bytes() == before, "lock is idempotent"


def test_lock_with_a_missing_skill_leaves_the_manifest_untouched(tmp_path: Path) -> None:
    (tmp_path / "stack" / "skills").mkdir(parents=True)
    make_skill(tmp_path / "stack" / "skills", "ok")
    stack = make_stack(tmp_path / "stack", [step("a", "ok"), step("b", "absent")], lock=False)
    before = stack.read_bytes()
    code, _out, err = run_cli("lock", stack)
    assert code == 1 and "skill:absent" in err and "[skill_not_found]" in err
    assert stack.read_bytes() == before


def _rewrite(stack: Path, edit) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads(stack.read_text())
    edit(manifest)
    stack.write_text(json.dumps(manifest, indent=2))


def test_unpinned_skill_is_a_verification_problem(tmp_path: Path) -> None:
    stack = _locked(tmp_path)
    _rewrite(stack, lambda m: m["skillDigests"].pop("skill:other"))
    code, out, _ = run_cli("verify", stack, "--json")
    assert code == 1
    assert [p["code"] for p in json.loads(out)["problems"]] == ["skill_unpinned"]


def test_unused_skill_pin_is_a_verification_problem(tmp_path: Path) -> None:
    stack = _locked(tmp_path)
    _rewrite(stack, lambda m: m["skillDigests"].update({"skill:smuggled": "blake3:" + "0" * 64}))
    code, out, _ = run_cli("verify", stack, "--json")
    assert code == 1
    assert [p["code"] for p in json.loads(out)["problems"]] == ["skill_pin_unused"]


def test_malformed_skill_pin_is_a_verification_problem(tmp_path: Path) -> None:
    stack = _locked(tmp_path)
    _rewrite(stack, lambda m: m["skillDigests"].update({"skill:ok": "sha256:abc"}))
    code, out, _ = run_cli("verify", stack, "--json")
    assert code == 1
    assert [p["code"] for p in json.loads(out)["problems"]] == ["skill_pin_malformed"]


def test_v1_manifest_digest_is_unchanged_by_v2(tmp_path: Path) -> None:
    from lodec.format.schema import skill_stack_schema
    from lodec.stack.manifest import manifest_vein, stack_schema_for

    stack = _locked(tmp_path)
    manifest = json.loads(stack.read_text())
    pins = manifest.pop("skillDigests")
    assert stack_schema_for(manifest) is skill_stack_schema()
    v1 = manifest_vein(manifest).fingerprint
    assert manifest_vein(manifest, skill_stack_schema()).fingerprint == v1
    manifest["skillDigests"] = pins
    assert manifest_vein(manifest).fingerprint != v1


def test_locked_stack_packs_and_verifies(tmp_path: Path) -> None:
    stack = _locked(tmp_path)
    code, _out, err = run_cli("pack", stack, "-o", tmp_path / "s.lodepack")
    assert code == 0, err
    code, out, err = run_cli("verify", tmp_path / "s.lodepack", "--json")
    assert code == 0, err
    assert json.loads(out)["digest"] == json.loads(run_cli("verify", stack, "--json")[1])["digest"]


def test_verify_refuses_a_drifted_skill_folder(tmp_path: Path) -> None:
    # Operators gate CI on `lodec verify`: a skill edited after `lodec lock` must fail it, as `run` does.
    stack = _locked(tmp_path)
    skill = next(p for p in (stack.parent / "skills").iterdir() if p.is_dir())
    (skill / "SKILL.md").write_text((skill / "SKILL.md").read_text() + "\nedited after lock\n")
    code, out, err = run_cli("verify", stack)
    assert code == 1 and "[skill_drifted]" in err and f"skill:{skill.name} drifted" in err
    assert "nothing may run" in err
    code, out, _ = run_cli("verify", stack, "--json")
    assert code == 1 and [p["code"] for p in json.loads(out)["problems"]] == ["skill_drifted"]


def test_verify_refuses_a_missing_skill_folder(tmp_path: Path) -> None:
    import shutil

    stack = _locked(tmp_path)
    skill = next(p for p in (stack.parent / "skills").iterdir() if p.is_dir())
    shutil.rmtree(skill)
    code, out, _ = run_cli("verify", stack, "--json")
    assert code == 1 and [p["code"] for p in json.loads(out)["problems"]] == ["skill_not_found"]


def test_verify_no_skills_skips_the_check_and_says_so(tmp_path: Path) -> None:
    stack = _locked(tmp_path)
    skill = next(p for p in (stack.parent / "skills").iterdir() if p.is_dir())
    (skill / "SKILL.md").write_text((skill / "SKILL.md").read_text() + "\nedited after lock\n")
    code, out, err = run_cli("verify", stack, "--no-skills")
    assert code == 0, err
    assert out.rstrip().endswith("(skills not checked: --no-skills)")
