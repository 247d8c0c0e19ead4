"""`lodec build`: one stack source to a compiled, locked, verified stack; deterministic and incremental."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXPIRES, ROOT, run_cli, sign_cli
from tests.runkit import make_skill


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "lodec-home"))
    monkeypatch.delenv("LODEC_STATE", raising=False)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: (bytes, mtime in ns)."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def build(*args: object) -> tuple[int, dict, str]:
    code, out, err = run_cli("build", *map(str, args), "--json")
    return code, json.loads(out), err


def repo_copy(tmp_path: Path, stack: str, also: tuple[str, ...] = ()) -> Path:
    """A copy of stacks/<stack> (and ``also``: repository-root folders its source refers to) under tmp_path."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "stacks" / stack, root / "stacks" / stack, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in also:
        shutil.copytree(ROOT / folder, root / folder)
    return root


@pytest.mark.parametrize("stack, manifest, also", [
    ("code-review", "code-review-stack.json", ("steps", "schemas")),
    ("compliance-release", "compliance-release-stack.json", ()),
])
def test_committed_stacks_rebuild_byte_identical_and_a_second_build_writes_nothing(
        tmp_path: Path, stack: str, manifest: str, also: tuple[str, ...]) -> None:
    root = repo_copy(tmp_path, stack, also)
    folder = root / "stacks" / stack
    committed = {p.name: p.read_bytes() for p in (folder / "steps").glob("*.vein")}
    committed[manifest] = (folder / manifest).read_bytes()
    shutil.rmtree(folder / "steps")
    (folder / manifest).unlink()
    code, first, err = build(folder / "lodec-stack.toml", "--workspace", root)
    assert code == 0, err
    rebuilt = {p.name: p.read_bytes() for p in (folder / "steps").glob("*.vein")}
    rebuilt[manifest] = (folder / manifest).read_bytes()
    assert rebuilt == committed  # byte-identical to what is committed
    assert len(first["written"]) == len(committed) and first["ok"] is True
    code, _out, err = run_cli("verify", folder / manifest, "--workspace", root)
    assert code == 0, err

    before = snapshot(root)
    code, second, err = build(folder / "lodec-stack.toml", "--workspace", root)
    assert code == 0, err
    assert second["written"] == [] and second["removed"] == [] and second["warnings"] == []
    assert snapshot(root) == before  # bytes AND mtimes: nothing was rewritten


def stack_source(folder: Path, body: str = "", *, steps: str = 'steps = ["src/*.json"]') -> Path:
    path = folder / "lodec-stack.toml"
    path.write_text('name = "demo"\nversion = "1.0.0"\ndescription = "A demo stack"\n' + steps + "\n" + body)
    return path


def source_step(folder: Path, name: str, skill: str = "tool", deps: tuple[str, ...] = (),
                **inputs: str) -> Path:
    path = folder / "src" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rec: dict = {"stepName": name, "skillRef": f"skill:{skill}", "dependsOn": list(deps), "outputs": ["out.txt"]}
    if inputs:
        rec["inputs"] = inputs
    path.write_text(json.dumps(rec, indent=2) + "\n")
    return path


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    folder = tmp_path / "demo"
    make_skill(folder / "skills", "tool")
    source_step(folder, "a")
    source_step(folder, "b", deps=("a",))
    source_step(folder, "c", deps=("a",))
    stack_source(folder)
    return folder


def test_default_source_in_the_current_directory(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo)
    code, out, err = run_cli("build", "--workspace", demo)
    assert code == 0, err
    assert "Built and verified demo 1.0.0 → stack.json (written): 3 steps, 1 skill(s)" in out
    manifest = json.loads((demo / "stack.json").read_text())
    assert manifest["steps"] == ["a", "b", "c"] and set(manifest["skillDigests"]) == {"skill:tool"}
    assert sorted(p.name for p in (demo / "steps").iterdir()) == ["a.vein", "b.vein", "c.vein"]
    code, _out, err = run_cli("verify", demo / "stack.json", "--workspace", demo)
    assert code == 0, err


def test_a_changed_step_rewrites_only_its_vein_and_the_manifest(demo: Path) -> None:
    code, _, err = build(demo / "lodec-stack.toml", "--workspace", demo)
    assert code == 0, err
    before = snapshot(demo)
    source_step(demo, "b", deps=("a",), model="bigger")
    code, result, err = build(demo / "lodec-stack.toml", "--workspace", demo)
    assert code == 0, err
    assert sorted(Path(p).name for p in result["written"]) == ["b.vein", "stack.json"]
    after = snapshot(demo)
    changed = sorted(k for k in after if before.get(k) != after[k])
    assert changed == ["src/b.json", "stack.json", "steps/b.vein"]
    assert [s["written"] for s in result["steps"]] == [False, True, False]


def test_a_vein_no_source_produces_is_removed(demo: Path) -> None:
    assert build(demo / "lodec-stack.toml", "--workspace", demo)[0] == 0
    (demo / "src" / "c.json").unlink()
    code, out, err = run_cli("build", demo / "lodec-stack.toml", "--workspace", demo)
    assert code == 0, err
    assert f"Removed {demo / 'steps' / 'c.vein'} (no source produces it)" in out
    assert sorted(p.name for p in (demo / "steps").iterdir()) == ["a.vein", "b.vein"]
    assert json.loads((demo / "stack.json").read_text())["steps"] == ["a", "b"]


def test_inline_steps_and_every_problem_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    make_skill(folder / "skills", "tool")
    source_step(folder, "a")
    (folder / "src" / "broken.json").write_text('{"stepName": "x", "skillRef": 3}')
    (folder / "src" / "trailing.json").write_text('{"stepName": "y",}')
    source = folder / "lodec-stack.toml"
    source.write_text('name = "demo"\nversion = "1.0.0"\ndescription = "A demo stack"\ncolour = "red"\n'
                      'steps = ["src/*.json", "src/missing.json", {stepName = "inline", skillRef = "skill:absent", '
                      'outputs = ["o"], frobnicate = 1}]\n')
    code, out, err = run_cli("build", source, "--workspace", folder, "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False
    where = sorted((e["code"], Path(e["file"]).name, e["location"]) for e in doc["errors"])
    assert ("source_invalid", "lodec-stack.toml", "/colour") in where
    assert ("source_invalid", "lodec-stack.toml", "/steps/1") in where
    # the source-level problems come first and alone (steps are not compiled from an invalid source)
    assert not (folder / "steps").exists() and not (folder / "stack.json").exists()
    # Fix the source itself: now every step problem is reported together.
    source.write_text('name = "demo"\nversion = "1.0.0"\ndescription = "A demo stack"\n'
                      'steps = ["src/*.json", {stepName = "inline", skillRef = "skill:absent", '
                      'outputs = ["o"], frobnicate = 1}]\n')
    code, out, err = run_cli("build", source, "--workspace", folder, "--json")
    assert code == 1
    errors = json.loads(out)["errors"]
    files = [Path(e["file"]).name for e in errors]
    assert "broken.json" in files and "trailing.json" in files
    inline = [e for e in errors if e["file"] == str(source)]
    assert inline and inline[0]["location"].startswith("/steps/1")  # the inline record's place in the source
    for line in err.strip().splitlines():
        assert line.startswith("lodec: ")
    assert len(err.strip().splitlines()) == len(errors) >= 3
    assert not (folder / "steps").exists() and not (folder / "stack.json").exists()


def test_graph_and_skill_problems_are_reported_together(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    source_step(folder, "a", skill="nowhere", deps=("ghost",))
    stack_source(folder)
    code, out, err = run_cli("build", folder / "lodec-stack.toml", "--workspace", folder, "--json")
    assert code == 1
    codes = sorted(e["code"] for e in json.loads(out)["errors"])
    assert "skill_not_found" in codes and len(codes) == 2, codes
    assert not (folder / "stack.json").exists()


def test_a_changed_skill_pin_is_said_never_silent(demo: Path) -> None:
    assert build(demo / "lodec-stack.toml", "--workspace", demo)[0] == 0
    old = json.loads((demo / "stack.json").read_text())["skillDigests"]["skill:tool"]
    (demo / "skills" / "tool" / "notes.txt").write_text("a new file in the skill\n")
    code, out, err = run_cli("build", demo / "lodec-stack.toml", "--workspace", demo)
    assert code == 0, err
    assert "warning" in err and f"skill:tool: pin changed from {old} to " in err and "[skill_pin_changed]" in err
    code, result, err = build(demo / "lodec-stack.toml", "--workspace", demo)
    assert result["warnings"] == []  # said once, when it changed


def test_a_missing_skill_keeps_the_existing_lock(demo: Path) -> None:
    assert build(demo / "lodec-stack.toml", "--workspace", demo)[0] == 0
    before = snapshot(demo)
    shutil.rmtree(demo / "skills" / "tool")
    code, out, err = run_cli("build", demo / "lodec-stack.toml", "--workspace", demo)
    assert code == 1 and "skill:tool" in err and "not found" in err
    assert {k: v for k, v in snapshot(demo).items() if not k.startswith("skills/")} == {
        k: v for k, v in before.items() if not k.startswith("skills/")}


def test_a_stale_signature_envelope_is_said(demo: Path, keys: dict[str, Path]) -> None:
    assert build(demo / "lodec-stack.toml", "--workspace", demo)[0] == 0
    sign_cli(demo / "stack.json", keys["alice"], "--expires", EXPIRES)
    code, result, err = build(demo / "lodec-stack.toml", "--workspace", demo)
    assert code == 0 and result["warnings"] == [] and "warning" not in err  # unchanged: the envelope still matches
    source_step(demo, "c", deps=("a",), extra="yes")
    code, result, err = build(demo / "lodec-stack.toml", "--workspace", demo)
    assert code == 0, err
    assert [w["code"] for w in result["warnings"]] == ["envelope_stale"]
    assert result["warnings"][0]["file"] == str(demo / "stack.json.dsse")
    assert "lodec: warning: " in err and "no longer matches" in err and "sign again" in err


def test_stack_build_compile_and_lock_still_work(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    make_skill(folder / "skills", "tool")
    src = source_step(folder, "a")
    assert run_cli("compile", src, "-o", folder / "steps" / "a.vein")[0] == 0
    code, _, err = run_cli("stack", "build", folder / "steps" / "a.vein", "--name", "demo", "--version", "1.0.0",
                           "--description", "d", "-o", folder / "stack.json")
    assert code == 0, err
    assert run_cli("lock", folder / "stack.json", "--workspace", folder)[0] == 0


def test_a_builtin_step_schema_by_name_for_run_conditions(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    make_skill(folder / "skills", "tool")
    (folder / "lodec-stack.toml").write_text(
        'name = "demo"\nversion = "1.0.0"\ndescription = "d"\nschema = "skill-step-v2"\n'
        '[[steps]]\nstepName = "a"\nskillRef = "skill:tool"\noutputs = ["out.txt"]\n'
        '[[steps]]\nstepName = "cleanup"\nskillRef = "skill:tool"\ndependsOn = ["a"]\noutputs = ["out.txt"]\n'
        'runIf = "always"\n')
    code, result, err = build(folder / "lodec-stack.toml", "--workspace", folder)
    assert code == 0, err
    code, out, err = run_cli("inspect", folder / "steps" / "cleanup.vein")
    assert code == 0 and json.loads(out)["runIf"] == "always"


def test_stack_build_over_a_locked_manifest_says_the_lock_is_dropped(demo: Path) -> None:
    assert build(demo / "lodec-stack.toml", "--workspace", demo)[0] == 0
    code, out, err = run_cli("stack", "build", *sorted((demo / "steps").glob("*.vein")), "--name", "demo",
                             "--version", "1.0.0", "--description", "A demo stack", "-o", demo / "stack.json", "--json")
    assert code == 0, err
    assert [w["code"] for w in json.loads(out)["warnings"]] == ["lock_dropped"]
    assert "lodec: warning: " in err and "run `lodec lock`" in err


def test_lock_after_sign_says_the_envelope_is_stale(demo: Path, keys: dict[str, Path]) -> None:
    assert build(demo / "lodec-stack.toml", "--workspace", demo)[0] == 0
    sign_cli(demo / "stack.json", keys["alice"], "--expires", EXPIRES)
    code, out, err = run_cli("lock", demo / "stack.json", "--workspace", demo, "--json")
    assert code == 0 and json.loads(out)["warnings"] == [] and "warning" not in err  # same pins: still matches
    (demo / "skills" / "tool" / "extra.txt").write_text("changed\n")
    code, out, err = run_cli("lock", demo / "stack.json", "--workspace", demo, "--json")
    assert code == 0, err
    assert [w["code"] for w in json.loads(out)["warnings"]] == ["envelope_stale"]
    assert "no longer matches" in err and "sign again" in err


def test_attack_a_manifest_path_escaping_the_source_folder_rewrites_and_deletes_nothing(
        demo: Path, tmp_path: Path) -> None:
    """A stack source (say, from a pull request) whose ``manifest`` points at another stack's: the build would
    overwrite that stack's manifest and remove every vein of its steps folder that this source does not
    produce. Refused (source_invalid at /manifest); the other stack is untouched."""
    assert build(demo / "lodec-stack.toml", "--workspace", demo)[0] == 0
    victim = snapshot(demo)
    attacker = tmp_path / "attacker"
    source_step(attacker, "x")
    for manifest in ("../demo/stack.json", str(demo / "stack.json")):
        stack_source(attacker, f'manifest = "{manifest}"\n')
        code, out, err = build(attacker / "lodec-stack.toml", "--workspace", demo)
        assert code == 1 and out["error"]["code"] == "source_invalid", (out, err)
        assert out["error"]["location"] == "/manifest" and "outside" in out["error"]["message"]
        assert snapshot(demo) == victim
    # A link inside the source folder that leads out is the same escape.
    (attacker / "out").symlink_to(demo)
    stack_source(attacker, 'manifest = "out/stack.json"\n')
    code, out, err = build(attacker / "lodec-stack.toml", "--workspace", demo)
    assert code == 1 and out["error"]["code"] == "source_invalid", (out, err)
    assert snapshot(demo) == victim
    # The same source writing its own manifest builds: the refusal is about where, not what.
    (attacker / "out").unlink()
    shutil.copytree(demo / "skills", attacker / "skills")
    stack_source(attacker)
    code, out, err = build(attacker / "lodec-stack.toml", "--workspace", demo)
    assert code == 0, err
    assert json.loads((attacker / "stack.json").read_text())["steps"] == ["x"] and snapshot(demo) == victim


def test_attack_a_steps_folder_linked_into_a_skill_folder_is_not_written_through(demo: Path) -> None:
    """``steps`` beside the manifest planted as a link into the skill's folder: the build would write veins
    into the skill (and remove *.vein files there). Refused (file_link); the skill folder is untouched."""
    tool = demo / "skills" / "tool"
    (tool / "old.vein").write_bytes(b"a file of the skill's own\n")
    before = snapshot(tool)
    (demo / "steps").symlink_to(tool)
    code, out, err = build(demo / "lodec-stack.toml", "--workspace", demo)
    assert code == 1 and out["error"]["code"] == "file_link", (out, err)
    assert snapshot(tool) == before and not (demo / "stack.json").exists()
    (demo / "steps").unlink()
    assert build(demo / "lodec-stack.toml", "--workspace", demo)[0] == 0  # without the link it builds


def test_stack_build_with_a_schema_reads_every_vein_under_it(tmp_path: Path) -> None:
    schema = ROOT / "schemas" / "skill-step-v1.lode"
    veins = []
    for step in ("lint", "analyze"):
        veins.append(tmp_path / f"{step}.vein")
        code, _out, err = run_cli("compile", ROOT / "steps" / f"{step}-step.json", "-s", schema, "-o", veins[-1])
        assert code == 0, err
    common = ("stack", "build", *veins, "--name", "n", "--version", "1.0.0", "--description", "d")
    code, _out, err = run_cli(*common, "-s", schema, "-o", tmp_path / "given.json")
    assert code == 0, err
    code, _out, err = run_cli(*common, "-o", tmp_path / "headers.json")
    assert code == 0, err
    assert (tmp_path / "given.json").read_bytes() == (tmp_path / "headers.json").read_bytes()
    # A schema the veins were not compiled under is refused, naming the vein; nothing is written.
    code, _out, err = run_cli(*common, "-s", "skill-step-v2", "-o", tmp_path / "wrong.json")
    assert code == 1 and "lint.vein" in err and "schema_mismatch" in err, err
    assert not (tmp_path / "wrong.json").exists()
