"""CLI contracts pipelines rely on: output lines, --json shapes, exit codes, atomic writes."""

from __future__ import annotations

import json
import shutil
import os
from pathlib import Path

import pytest

import lodec

from tests.conftest import ROOT, SEED_SOURCES, run_cli

GOLDEN = json.loads((ROOT / "tests" / "golden" / "seed-vectors.json").read_text())


def test_compile_prints_seed_style_lines(tmp_path: Path) -> None:
    out = tmp_path / "steps" / "lint.vein"
    code, stdout, _ = run_cli("compile", ROOT / "steps" / "lint-step.json", "-s", ROOT / "schemas" / "skill-step-v1.lode", "-o", out)
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0] == f"Compiled {ROOT / 'steps' / 'lint-step.json'} → {out} (87 bytes)"
    assert lines[1] == f"Fingerprint: {GOLDEN['steps']['lint']['fingerprint']}"
    assert out.read_bytes().hex() == GOLDEN["steps"]["lint"]["hex"]


def test_compile_many_into_directory_with_json(tmp_path: Path) -> None:
    code, stdout, _ = run_cli("compile", *SEED_SOURCES.values(), "-o", tmp_path / "steps", "--json")
    assert code == 0
    results = json.loads(stdout)["compiled"]
    assert sorted(Path(r["output"]).name for r in results) == ["ai-review.vein", "lint.vein", "static-analysis.vein"]
    for r in results:
        name = Path(r["output"]).stem
        assert r["fingerprint"] == GOLDEN["steps"][name]["fingerprint"]
        assert r["bytes"] == Path(r["output"]).stat().st_size


def test_compile_refuses_all_if_one_source_is_bad(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"stepName": "x", "skillRef": "s", "inputs": {"a": 1}}')
    code, stdout, err = run_cli("compile", SEED_SOURCES["lint"], bad, "-o", tmp_path / "out")
    assert code == 1
    assert err == f"lodec: {bad}: /inputs/a: expected string, got int [wrong_type]\n"
    assert not (tmp_path / "out").exists()


def test_compile_json_error_shape(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"stepName": "x", "stepName": "y", "skillRef": "s"}')
    code, stdout, _ = run_cli("compile", bad, "-o", tmp_path / "x.vein", "--json")
    assert code == 1
    assert json.loads(stdout) == {
        "ok": False,
        "error": {"code": "duplicate_key", "file": str(bad), "location": "/stepName", "message": "duplicate key 'stepName'"},
    }


def test_compile_refuses_two_sources_with_same_step_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"stepName": "x", "skillRef": "s1"}')
    b.write_text('{"stepName": "x", "skillRef": "s2"}')
    code, _, err = run_cli("compile", a, b, "-o", tmp_path / "out")
    assert code == 1 and "duplicate_output" in err


def test_compile_leaves_no_temp_files(tmp_path: Path) -> None:
    run_cli("compile", *SEED_SOURCES.values(), "-o", tmp_path / "steps")
    assert sorted(os.listdir(tmp_path / "steps")) == ["ai-review.vein", "lint.vein", "static-analysis.vein"]


def test_missing_source_is_one_line_error(tmp_path: Path) -> None:
    code, _, err = run_cli("compile", tmp_path / "nope.json", "-o", tmp_path / "x.vein")
    assert code == 1 and err == f"lodec: {tmp_path / 'nope.json'}: no such file [file_not_found]\n"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("compile", SEED_SOURCES["lint"])[0] == 2  # no -o
    assert run_cli("verify")[0] == 2
    assert run_cli("frobnicate")[0] == 2
    assert run_cli("stack", "build", "x.vein", "--name", "n", "--version", "1", "--description", "d",
                   "-o", tmp_path / "s.json", "--meta", "novalue")[0] == 2


def test_inspect_roundtrips_to_identical_bytes(tmp_path: Path) -> None:
    for name, src in SEED_SOURCES.items():
        vein = tmp_path / f"{name}.vein"
        assert run_cli("compile", src, "-o", vein)[0] == 0
        code, stdout, _ = run_cli("inspect", vein)
        assert code == 0
        again = tmp_path / f"{name}.again.json"
        again.write_text(stdout)
        assert run_cli("compile", again, "-o", tmp_path / f"{name}.again.vein")[0] == 0
        assert (tmp_path / f"{name}.again.vein").read_bytes() == vein.read_bytes()


def test_inspect_json_adds_header_and_fingerprint(tmp_path: Path) -> None:
    vein = tmp_path / "lint.vein"
    run_cli("compile", SEED_SOURCES["lint"], "-o", vein)
    code, stdout, _ = run_cli("inspect", vein, "--json")
    doc = json.loads(stdout)
    assert code == 0
    assert doc["header"] == {"magic": "VEIN", "formatVersion": 1, "schemaId": lodec.skill_step_schema().schema_id.hex()}
    assert doc["fingerprint"] == GOLDEN["steps"]["lint"]["fingerprint"]
    assert doc["record"]["stepName"] == "lint" and doc["bytes"] == 87


def test_inspect_refuses_unknown_schema_without_s(tmp_path: Path) -> None:
    vein = tmp_path / "x.vein"
    vein.write_bytes(b"VEIN\x01" + b"\x00" * 8 + b"\xa0")
    code, _, err = run_cli("inspect", vein)
    assert code == 1 and "schema_unknown" in err


def test_stack_build_writes_seed_manifest(tmp_path: Path) -> None:
    run_cli("compile", *SEED_SOURCES.values(), "-o", tmp_path / "steps")
    manifest = tmp_path / "stack.json"
    code, stdout, _ = run_cli(
        "stack", "build", *sorted((tmp_path / "steps").glob("*.vein")), "--name", "code-review-pipeline",
        "--version", "1.0.0", "--description", "Lint, analyze, and AI-review code changes", "--entry", "lint",
        "--meta", "team=platform", "--meta", "triggerOn=pull_request", "-o", manifest,
    )
    assert code == 0
    # The v1 manifest digest is unchanged by skill-stack-v2 existing.
    assert f"Manifest digest: {GOLDEN['manifest']['digest']}" in stdout
    assert run_cli("verify", manifest)[0] == 0
    # Locking against the bundled skills gives the committed (v2) manifest byte for byte.
    shutil.copytree(ROOT / "stacks" / "code-review" / "skills", tmp_path / "skills")
    code, _, err = run_cli("lock", manifest)
    assert code == 0, err
    assert manifest.read_bytes() == (ROOT / "stacks" / "code-review" / "code-review-stack.json").read_bytes()
    assert run_cli("verify", manifest)[0] == 0


def test_stack_build_order_is_deterministic_and_topological(tmp_path: Path) -> None:
    run_cli("compile", *SEED_SOURCES.values(), "-o", tmp_path / "steps")
    veins = sorted((tmp_path / "steps").glob("*.vein"))
    outs = []
    for i, order in enumerate([veins, veins[::-1]]):
        path = tmp_path / f"s{i}.json"
        assert run_cli("stack", "build", *order, "--name", "n", "--version", "1", "--description", "d", "-o", path)[0] == 0
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
    assert json.loads(outs[0])["steps"] == ["lint", "static-analysis", "ai-review"]


def _steps(tmp_path: Path, *records: str) -> list[Path]:
    paths = []
    for i, rec in enumerate(records):
        src = tmp_path / f"r{i}.json"
        src.write_text(rec)
        out = tmp_path / f"r{i}.vein"
        assert run_cli("compile", src, "-o", out)[0] == 0
        paths.append(out)
    return paths


def _build(tmp_path: Path, veins: list[Path], *extra: str) -> tuple[int, str]:
    code, _, err = run_cli("stack", "build", *veins, "--name", "n", "--version", "1", "--description", "d",
                           "-o", tmp_path / "s.json", *extra)
    return code, err


def test_stack_build_refuses_dangling_depends_on(tmp_path: Path) -> None:
    veins = _steps(tmp_path, '{"stepName":"a","skillRef":"s","dependsOn":["ghost"]}')
    code, err = _build(tmp_path, veins)
    assert code == 1 and "dangling_dependency" in err and '"ghost"' in err
    assert not (tmp_path / "s.json").exists()


def test_stack_build_refuses_cycles(tmp_path: Path) -> None:
    veins = _steps(tmp_path, '{"stepName":"a","skillRef":"s","dependsOn":["b"]}',
                   '{"stepName":"b","skillRef":"s","dependsOn":["a"]}', '{"stepName":"c","skillRef":"s"}')
    code, err = _build(tmp_path, veins)
    assert code == 1 and "cycle" in err and "a -> b -> a" in err


def test_stack_build_refuses_self_dependency(tmp_path: Path) -> None:
    code, err = _build(tmp_path, _steps(tmp_path, '{"stepName":"a","skillRef":"s","dependsOn":["a"]}'))
    assert code == 1 and "self_dependency" in err


def test_stack_build_refuses_duplicate_names(tmp_path: Path) -> None:
    veins = _steps(tmp_path, '{"stepName":"a","skillRef":"s1"}', '{"stepName":"a","skillRef":"s2"}')
    code, err = _build(tmp_path, veins)
    assert code == 1 and "duplicate_step" in err


def test_stack_build_refuses_entry_point_not_root(tmp_path: Path) -> None:
    veins = _steps(tmp_path, '{"stepName":"a","skillRef":"s"}', '{"stepName":"b","skillRef":"s","dependsOn":["a"]}')
    code, err = _build(tmp_path, veins, "--entry", "b")
    assert code == 1 and "entry_point_invalid" in err and "not a root" in err
    code, err = _build(tmp_path, veins, "--entry", "zzz")
    assert code == 1 and "entry_point_invalid" in err


def test_stack_build_refuses_unsafe_stack_name(tmp_path: Path) -> None:
    veins = _steps(tmp_path, '{"stepName":"a","skillRef":"s"}')
    code, _, err = run_cli("stack", "build", *veins, "--name", "../x", "--version", "1", "--description", "d",
                           "-o", tmp_path / "s.json")
    assert code == 1 and "unsafe_name" in err


def test_verify_steps_dir_option(seed_stack: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    (seed_stack.parent / "steps").rename(moved)
    assert run_cli("verify", seed_stack)[0] == 1
    assert run_cli("verify", seed_stack, "--steps", moved)[0] == 0


def test_verify_json_shape(seed_stack: Path) -> None:
    code, stdout, _ = run_cli("verify", seed_stack, "--json")
    doc = json.loads(stdout)
    assert code == 0
    assert set(doc) == {"ok", "stack", "version", "digest", "steps", "problems"}
    assert doc["stack"] == "code-review-pipeline" and doc["version"] == "1.0.0"
    assert all(set(s) == {"name", "status", "expected", "actual"} for s in doc["steps"])


def test_verify_missing_manifest_is_one_line(tmp_path: Path) -> None:
    code, _, err = run_cli("verify", tmp_path / "none.json")
    assert code == 1 and err.count("\n") == 1 and "file_not_found" in err


def test_help_teaches(tmp_path: Path) -> None:
    code, stdout, _ = run_cli("--help")
    assert code == 0 and "lodec verify" in stdout and "Exit codes" in stdout
    for cmd in (["compile"], ["inspect"], ["verify"], ["stack", "build"], ["schema", "check"], ["import", "github-actions"]):
        code, stdout, _ = run_cli(*cmd, "--help")
        assert code == 0 and "Usage:" in stdout and "--json" in stdout, cmd


def test_version() -> None:
    code, stdout, _ = run_cli("--version")
    assert code == 0 and stdout.strip() == f"lodec, version {lodec.__version__}"


def test_batch_write_failure_leaves_no_partial_or_temp_files(tmp_path: Path) -> None:
    import pytest

    from lodec.errors import LodecError
    from lodec.files import atomic_write_many

    (tmp_path / "blocked").write_text("a file where a directory is needed")
    items = [(tmp_path / "out" / "a.vein", b"A"), (tmp_path / "blocked" / "b.vein", b"B")]
    with pytest.raises(LodecError) as info:
        atomic_write_many(items)
    assert info.value.code == "file_unwritable"
    assert os.listdir(tmp_path / "out") == []  # a's temp file removed, a never renamed into place


def test_verify_fast_path_strips_ansi_codes_as_click_does(tmp_path: Path) -> None:
    """The script's fast path for ``verify`` prints what the click command prints, escape codes included:
    click.echo drops ANSI sequences (here from a file name) when stderr is not a terminal."""
    import subprocess
    import sys

    target = str(tmp_path / "\x1b[31mred.json")
    script = "import sys; sys.argv = ['lodec', *sys.argv[1:]]; from lodec.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", script, "verify", target], capture_output=True, text=True,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"}, check=False)
    code, out, err = run_cli("verify", target)
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, out, err) == (1, "", err)
    assert "\x1b" not in proc.stderr and "red.json" in proc.stderr


def test_verify_fast_path_defers_to_click_for_an_unreadable_path(
    seed_stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """click.Path refuses an existing path os.access calls unreadable (a usage error, exit 2); so must the
    script's fast path, instead of verifying (as root every file is readable, so os.access is stubbed)."""
    import subprocess
    import sys

    target = str(seed_stack)
    deny = f"import os; real = os.access; os.access = lambda p, m: os.fspath(p) != {target!r} and real(p, m)"
    script = deny + "; import sys; sys.argv = ['lodec', *sys.argv[1:]]; from lodec.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", script, "verify", target], capture_output=True, text=True,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"}, check=False)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m, *a, **k: os.fspath(p) != target and real(p, m, *a, **k))
    code, _out, err = run_cli("verify", target)
    assert proc.returncode == code == 2
    assert "is not readable" in err and err.splitlines()[-1] == proc.stderr.splitlines()[-1]


def test_every_command_help_teaches_by_example() -> None:
    """Each command's --help shows at least one example command line of that very command."""
    import click

    from lodec.cli.group import main

    lacking = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
            return
        code, out, _ = run_cli(*path, "--help")
        assert code == 0
        if not any(line.strip().startswith("lodec " + " ".join(path)) for line in out.splitlines()):
            lacking.append(" ".join(path))

    walk(main, ())
    assert lacking == []


def test_group_help_describes_what_the_group_does_now() -> None:
    """skill: settings outside the folder and skill init; import: the three importers (both help texts
    predated them)."""
    code, out, _ = run_cli("skill", "--help")
    assert code == 0 and "Scaffold" in out and "NAME.lodec.toml" in out and "[skill.NAME]" in out
    code, out, _ = run_cli("import", "--help")
    assert code == 0 and "Argo Workflows" in out and "Nanostack" in out and "SkillStep sources" not in out
