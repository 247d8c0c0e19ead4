"""Every reporting command's ``--json`` is one envelope: a JSON object whose first member is ``ok``.

``ok`` is always present and is true exactly when the command exits 0; a
failure is ``{"ok": false, "error", ...}``. The test drives every command that
has ``--json`` (the list is taken from the click group, so a new command
without a case here fails the test) through a whole session on a copy of the
example stack: build, sign, pack, push/pull through an OCI layout, run,
journal, imports, and a few failures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest

from ..conftest import ROOT, run_cli

#: commands with --json that are not reporting commands, and why
NOT_REPORTING: dict[str, str] = {}


def json_commands() -> set[str]:
    from lodec.cli.group import main

    found: set[str] = set()

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        elif any("--json" in getattr(p, "opts", ()) for p in cmd.params):
            found.add(" ".join(path))

    walk(main, ())
    return found


def envelope(args: tuple[str, ...], seen: set[str], want_ok: bool | None = True) -> dict:
    code, out, err = run_cli(*args)
    assert "Traceback" not in err, (args, err)
    doc = json.loads(out)
    assert isinstance(doc, dict), (args, out[:200])
    assert next(iter(doc)) == "ok" and isinstance(doc["ok"], bool), (args, list(doc)[:5])
    assert doc["ok"] == (code == 0), (args, code, doc["ok"], err)
    if want_ok is not None:
        assert doc["ok"] is want_ok, (args, err, out[:500])
    if not doc["ok"] and code == 1 and "error" in doc:
        assert set(doc["error"]) == {"code", "file", "location", "message"}
    words = [a for a in args if not a.startswith("-")]
    seen.add(" ".join(words[:2]) if " ".join(words[:2]) in json_commands() else words[0])
    return doc


def test_every_json_command_prints_one_envelope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    for part in ("steps", "schemas", "stacks/code-review", "tests/corpus/argo", "tests/corpus/nanostack",
                 "tests/corpus/github-actions"):
        shutil.copytree(ROOT / part, repo / part)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    seen: set[str] = set()
    stack = "stacks/code-review/code-review-stack.json"

    envelope(("build", "stacks/code-review/lodec-stack.toml", "--json"), seen)
    envelope(("compile", "steps/lint-step.json", "-o", str(tmp_path / "lo" / "steps") + "/", "--json"), seen)
    envelope(("inspect", "stacks/code-review/steps/lint.vein", "--json"), seen)
    envelope(("schema", "check", "schemas/skill-step-v1.lode", "--json"), seen)
    envelope(("stack", "build", str(tmp_path / "lo" / "steps" / "lint.vein"), "--name", "lint-only", "--version", "1.0.0",
              "--description", "d", "-o", str(tmp_path / "lo" / "lint-only.json"), "--json"), seen)
    envelope(("verify", stack, "--json"), seen)
    envelope(("check-pins", stack, "--json"), seen)
    envelope(("lock", stack, "--json"), seen)
    planned = envelope(("plan", stack, "--workspace", "stacks/code-review/fixture", "--json"), seen)
    assert planned["runnable"] is True and planned["batches"][0] == {"batch": 1, "type": "read", "steps": ["lint"]}
    envelope(("key", "generate", str(tmp_path / "alice"), "--json"), seen)
    envelope(("key", "id", str(tmp_path / "alice.pub"), "--json"), seen)
    envelope(("sign", stack, "--key", str(tmp_path / "alice.key"), "--json"), seen)
    pack = str(tmp_path / "cr.lodepack")
    envelope(("pack", stack, "-o", pack, "--json"), seen)
    envelope(("unpack", pack, "-o", str(tmp_path / "unpacked"), "--key", str(tmp_path / "alice.pub"), "--json"), seen)
    layout = f"oci-layout:{tmp_path / 'layout'}"
    envelope(("push", pack, layout, "--json"), seen)
    envelope(("pull", f"{layout}:1.0.0", "-o", str(tmp_path / "pulled.lodepack"), "--key",
              str(tmp_path / "alice.pub"), "--json"), seen)
    envelope(("diff", str(tmp_path / "lo" / "lint-only.json"), stack, "--json"), seen)
    envelope(("skill", "init", "my-skill", "--dir", str(tmp_path / "new"), "--json"), seen)
    envelope(("skill", "check", "stacks/code-review/skills/eslint-check", "--json"), seen)
    envelope(("skill", "add", "stacks/code-review/skills/eslint-check", "--json"), seen)
    envelope(("skill", "list", "--json"), seen)
    run = envelope(("run", stack, "--workspace", "stacks/code-review/fixture", "--allow-unsandboxed", "--json"), seen)
    assert run["status"] == "succeeded"
    envelope(("runs", "list", "--json"), seen)
    journal = envelope(("journal", "--json"), seen)
    assert journal["run"] == run["run"] and {a["state"] for a in journal["artifacts"]} == {"verified"}
    assert len(journal["artifacts"]) == 4
    envelope(("analytics", "--json"), seen)
    envelope(("runs", "discard", run["run"], "--dry-run", "--json"), seen)
    envelope(("import", "github-actions", "tests/corpus/github-actions/uv-ci.yml", "-o", str(tmp_path / "gha"),
              "--json"), seen)
    envelope(("import", "argo", "tests/corpus/argo/dag-diamond.yaml", "-o", str(tmp_path / "argo"), "--json"), seen)
    argo_plan = envelope(("plan", str(tmp_path / "argo" / "stack.json"), "--json"), seen)
    assert argo_plan["runnable"] is False and argo_plan["cannot_run"][0]["cannot_run"][0]["code"] == "skill_not_lodec"
    envelope(("import", "nanostack", "tests/corpus/nanostack/compliance-release-stack.json", "-o",
              str(tmp_path / "nano"), "--json"), seen)

    assert json_commands() - set(NOT_REPORTING) - seen == set()

    # failures: the same envelope, ok false
    envelope(("verify", "nope.json", "--json"), seen, want_ok=False)
    envelope(("journal", "no-such-run", "--json"), seen, want_ok=False)
    envelope(("schema", "check", "steps/lint-step.json", "--json"), seen, want_ok=False)
    envelope(("skill", "check", "stacks/code-review/fixture", "--json"), seen, want_ok=False)
    failed_run = envelope(("run", stack, "--workspace", str(tmp_path / "new"), "--allow-unsandboxed", "--json"),
                          seen, want_ok=False)
    assert failed_run["status"] == "failed"


def test_json_failure_of_an_unverified_stack_lists_its_problems(tmp_path: Path) -> None:
    """sign/pack of a stack that fails verification: --json names the problems, not only their count."""
    shutil.copytree(ROOT / "stacks" / "code-review", tmp_path / "cr")
    vein = tmp_path / "cr" / "steps" / "lint.vein"
    vein.write_bytes(vein.read_bytes().replace(b"eslintrc", b"eslintrX"))
    assert run_cli("key", "generate", str(tmp_path / "k"))[0] == 0
    for args in (("sign", "--key", str(tmp_path / "k.key")), ("pack", "-o", str(tmp_path / "x.lodepack"))):
        code, out, _err = run_cli(args[0], str(tmp_path / "cr" / "code-review-stack.json"), *args[1:], "--json")
        doc = json.loads(out)
        assert code == 1 and doc["ok"] is False and doc["error"]["code"] == "verification_failed"
        assert [p["code"] for p in doc["problems"]] == ["step_tampered"], args


def test_resolve_prints_the_envelope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """resolve always prints JSON: the same envelope."""
    shutil.copytree(ROOT / "stacks" / "code-review", tmp_path / "cr")
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    code, out, err = run_cli("resolve", str(tmp_path / "cr" / "code-review-stack.json"), "lint",
                             "--workspace", str(tmp_path / "cr" / "fixture"))
    doc = json.loads(out)
    assert code == 0 and next(iter(doc)) == "ok" and doc["ok"] is True and doc["step"] == "lint", err
