"""Reporting commands report every problem at once, like verify: compile, lock, skill check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import SEED_SOURCES, run_cli
from tests.runkit import make_skill, make_stack, step


def test_compile_reports_every_bad_source_and_writes_nothing(tmp_path: Path) -> None:
    good = Path(next(iter(SEED_SOURCES.values())))
    (tmp_path / "syntax.json").write_text('{"stepName": "a",')
    (tmp_path / "types.json").write_text('{"stepName": "b", "skillRef": 7}')
    out = tmp_path / "out"
    code, _out, err = run_cli("compile", good, tmp_path / "syntax.json", tmp_path / "types.json", "-o", out)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert str(tmp_path / "syntax.json") in lines[0] and str(tmp_path / "types.json") in lines[1]
    assert lines[1].endswith("[wrong_type]") and "/skillRef" in lines[1]
    assert not out.exists()  # nothing written, not even the good source
    code, stdout, _err = run_cli("compile", good, tmp_path / "syntax.json", tmp_path / "types.json", "-o", out,
                                 "--json")
    doc = json.loads(stdout)
    assert code == 1 and doc["ok"] is False and len(doc["errors"]) == 2 and doc["error"] == doc["errors"][0]


def test_lock_reports_every_missing_skill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    skills = tmp_path / "stack" / "skills"
    for name in ("one", "two", "three"):
        make_skill(skills, name)
    stack = make_stack(tmp_path / "stack", [step("a", "one"), step("b", "two"), step("c", "three")], lock=False)
    shutil.rmtree(skills / "one")
    shutil.rmtree(skills / "three")
    code, _out, err = run_cli("lock", stack)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.endswith("[skill_not_found]") for line in lines)
    assert "skill:one" in lines[0] and "skill:three" in lines[1]
    assert "skillDigests" not in stack.read_text()


def test_skill_check_reports_every_folder(tmp_path: Path) -> None:
    good = make_skill(tmp_path, "good")
    no_sidecar = make_skill(tmp_path, "nosidecar")
    (no_sidecar / "lodec.toml").unlink()
    bad_name = make_skill(tmp_path, "badname")
    (bad_name / "SKILL.md").write_text("---\nname: other-name\ndescription: wrong name\n---\n")
    code, out, err = run_cli("skill", "check", good, no_sidecar, bad_name)
    assert code == 1
    assert f"{good}: good ok" in out
    lines = err.strip().splitlines()
    assert len(lines) == 2 and str(no_sidecar) in lines[0] and "badname" in lines[1]
    code, out, _err = run_cli("skill", "check", good, no_sidecar, bad_name, "--json")
    rows = json.loads(out)["skills"]
    assert code == 1 and [r["ok"] for r in rows] == [True, False, False]
    assert rows[0]["name"] == "good" and rows[1]["error"]["code"] == "skill_invalid"


def test_recompiling_unchanged_sources_rewrites_no_file(tmp_path: Path) -> None:
    sources = [Path(s) for s in SEED_SOURCES.values()]
    out = tmp_path / "steps"
    code, _out, err = run_cli("compile", *sources, "-o", f"{out}/")
    assert code == 0, err
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.iterdir()}
    code, _out, err = run_cli("compile", *sources, "-o", f"{out}/")
    assert code == 0, err
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.iterdir()} == before
    victim = next(out.iterdir())
    victim.write_bytes(victim.read_bytes() + b"x")  # a changed (here: damaged) vein is rewritten
    code, _out, err = run_cli("compile", *sources, "-o", f"{out}/")
    assert code == 0 and lodec_decodes(victim), err


def lodec_decodes(path: Path) -> bool:
    import lodec

    return lodec.decode_vein(path.read_bytes(), lodec.skill_step_schema()).size == path.stat().st_size


@pytest.mark.parametrize("kind", ["github-actions", "argo", "nanostack"])
def test_import_of_a_missing_file_is_file_not_found(tmp_path: Path, kind: str) -> None:
    """Each importer names a missing input as every other command does: file_not_found, one line."""
    missing = tmp_path / "absent.yml"
    code, out, err = run_cli("import", kind, missing, "-o", tmp_path / "out", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "file_not_found"
    code, _out, err = run_cli("import", kind, missing, "-o", tmp_path / "out")
    assert code == 1 and err == f"lodec: {missing}: no such file [file_not_found]\n"
    assert not (tmp_path / "out").exists()


def test_push_of_a_manifest_says_to_push_its_pack(tmp_path: Path) -> None:
    """A new user's first push names the manifest; the error says what to push, not 'not a vein file'."""
    from tests.conftest import ROOT

    manifest = ROOT / "stacks" / "code-review" / "code-review-stack.json"
    code, _out, err = run_cli("push", manifest, f"oci-layout:{tmp_path / 'layout'}")
    assert code == 1 and err.count("\n") == 1 and err.rstrip().endswith("[bad_magic]")
    assert "a stack manifest, not a pack" in err and "lodec pack STACK.json -o NAME.lodepack" in err
    assert not (tmp_path / "layout").exists()


def test_options_that_do_not_go_together_are_usage_errors(tmp_path: Path) -> None:
    """Exit 2 (usage), before anything is verified or connected: --reuse without --step, and a client
    certificate without its key (both were exit 1 with a 'usage' code)."""
    from tests.conftest import ROOT

    stack = ROOT / "stacks" / "code-review" / "code-review-stack.json"
    code, _out, err = run_cli("run", stack, "--reuse", "latest", "--workspace", tmp_path)
    assert code == 2 and "--step" in err and "Usage:" in err
    (tmp_path / "c.pem").write_text("x")
    for command in (("run", stack, "--engine", "temporal"), ("worker", "--workspace", tmp_path)):
        code, _out, err = run_cli(*command, "--address", "127.0.0.1:1", "--store", tmp_path,
                                  "--tls-cert", tmp_path / "c.pem")
        assert code == 2 and "mutual TLS needs both --tls-cert and --tls-key" in err, (command, err)


def test_build_with_no_stack_source_here_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lodec build` in a folder without lodec-stack.toml: one line that says what a stack source is and where
    its format is documented, not only 'no such file'."""
    monkeypatch.chdir(tmp_path)
    code, _out, err = run_cli("build")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("lodec: lodec-stack.toml: no stack source here") and "docs/stack-source.md" in err
    assert err.rstrip().endswith("[file_not_found]")
    code, _out, err = run_cli("build", tmp_path / "other.toml")  # a path given: the plain error
    assert code == 1 and err == f"lodec: {tmp_path / 'other.toml'}: no such file [file_not_found]\n"


def test_run_of_an_imported_workflow_says_it_cannot_run_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An imported Argo workflow: `lodec run` says its steps are another system's (skill_not_lodec) instead of
    sending the user to `lodec lock`, which refuses every gha:/argo: reference."""
    from tests.conftest import ROOT

    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    out_dir = tmp_path / "argo"
    assert run_cli("import", "argo", ROOT / "tests/corpus/argo/dag-diamond.yaml", "-o", out_dir)[0] == 0
    code, _out, err = run_cli("run", out_dir / "stack.json", "--workspace", tmp_path)
    assert code == 1 and err.count("\n") == 1 and err.rstrip().endswith("[skill_not_lodec]"), err
    assert "argo:" in err and "lodec plan" in err and "lodec lock" not in err
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())
