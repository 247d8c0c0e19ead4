"""Run conditions (skill-step-v2 runIf / runIfExpression): the rule, lodec run, lodec plan, v1 unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import lodec
from lodec.errors import StackError
from lodec.stack.conditions import Condition, condition_of, decide
from tests.conftest import ROOT, run_cli
from tests.runkit import make_skill, make_stack, run_json, step

FAIL = 'print("about to fail"); sys.exit(3)\n'


@pytest.fixture(autouse=True)
def lodec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lodec-home"
    monkeypatch.setenv("LODEC_HOME", str(home))
    return home


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    (tmp_path / "stack" / "skills").mkdir(parents=True)
    make_skill(tmp_path / "stack" / "skills", "ok", concurrency="read")
    make_skill(tmp_path / "stack" / "skills", "boom", FAIL, concurrency="read")
    return tmp_path


# ------------------------------------------------------------------ the rule


def test_decide_success_waits_then_runs_and_skips_on_the_first_failure() -> None:
    c = Condition()
    assert decide(c, {"a": None}).action == "wait"
    assert decide(c, {"a": ("succeeded", None)}).action == "run"
    d = decide(c, {"a": ("failed", "exit_nonzero"), "b": None})
    assert (d.action, d.reason) == ("skip", "upstream_failed")
    d = decide(c, {"a": ("skipped", "condition_not_met")})
    assert (d.action, d.reason) == ("skip", "upstream_skipped")


def test_decide_failure_waits_for_every_upstream_and_needs_one_failed() -> None:
    c = Condition("failure")
    assert decide(c, {"a": ("failed", "exit_nonzero"), "b": None}).action == "wait"
    assert decide(c, {"a": ("failed", "exit_nonzero"), "b": ("succeeded", None)}).action == "run"
    # A skip caused by a failure further up counts as a failure; a condition's skip does not.
    assert decide(c, {"a": ("skipped", "upstream_failed")}).action == "run"
    d = decide(c, {"a": ("skipped", "condition_not_met"), "b": ("succeeded", None)})
    assert (d.action, d.reason) == ("skip", "condition_not_met")
    assert decide(c, {}).action == "skip"


def test_decide_always_waits_then_runs_whatever_happened() -> None:
    c = Condition("always")
    assert decide(c, {"a": ("failed", "timeout"), "b": None}).action == "wait"
    for status, reason in (("failed", "timeout"), ("skipped", "upstream_failed"), ("succeeded", None)):
        assert decide(c, {"a": (status, reason)}).action == "run"


@pytest.mark.parametrize("record", [
    {"runIf": "sometimes"}, {"runIf": "Success"}, {"runIfExpression": {}},
    {"runIfExpression": {"bash": "true"}}, {"runIfExpression": {"github-actions": "  "}},
])
def test_a_condition_lodec_does_not_know_is_refused(record: dict[str, object]) -> None:
    with pytest.raises(StackError) as info:
        condition_of({"stepName": "s", **record})
    assert info.value.code == "condition_invalid"


def test_v1_record_is_on_success() -> None:
    assert condition_of({"stepName": "s", "skillRef": "skill:x"}) == Condition("success")


# ------------------------------------------------------------------ lodec run


def test_run_honours_failure_always_and_success_conditions(project: Path) -> None:
    stack = make_stack(project / "stack", [
        step("bad", "boom"),
        step("on-failure", "ok", deps=["bad"], run_if="failure"),
        step("cleanup", "ok", deps=["bad", "good"], run_if="always"),
        step("after-bad", "ok", deps=["bad"]),
        step("good", "ok"),
        step("handler-unneeded", "ok", deps=["good"], run_if="failure"),
        step("after-handler", "ok", deps=["handler-unneeded"]),
        step("late-handler", "ok", deps=["after-handler"], run_if="failure"),
        step("handler-of-skip", "ok", deps=["after-bad"], run_if="failure"),
    ])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 1, err
    s = record["steps"]
    got = {n: (r["status"], r["reason"]) for n, r in s.items()}
    assert got == {
        "bad": ("failed", "exit_nonzero"),
        "on-failure": ("succeeded", None),
        "cleanup": ("succeeded", None),
        "after-bad": ("skipped", "upstream_failed"),
        "good": ("succeeded", None),
        "handler-unneeded": ("skipped", "condition_not_met"),
        "after-handler": ("skipped", "upstream_skipped"),
        "late-handler": ("skipped", "condition_not_met"),
        "handler-of-skip": ("succeeded", None),
    }
    # The handler of a failure sees that its upstream failed, and no artifact from it.
    assert s["on-failure"]["upstream_status"] == {"bad/out.txt": "missing"}
    code, text, _ = run_cli("journal", record["run"], "--workspace", project / "ws")
    assert code == 0
    assert "condition_not_met" in text and "upstream_skipped" in text and "runs only when an upstream step fails" in text


def test_always_runs_after_every_upstream_even_when_all_succeed(project: Path) -> None:
    stack = make_stack(project / "stack", [
        step("a", "ok", seconds="0.3"), step("b", "ok"), step("last", "ok", deps=["a", "b"], run_if="always"),
    ])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    s = record["steps"]
    assert s["last"]["status"] == "succeeded" and s["last"]["started"] >= s["a"]["ended"]


def test_run_refuses_a_verbatim_expression_and_starts_nothing(project: Path) -> None:
    rec = step("deploy", "ok", deps=["build"])
    rec["runIfExpression"] = {"github-actions": "github.ref == 'refs/heads/main'"}
    stack = make_stack(project / "stack", [step("build", "ok"), rec])
    code, out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed")
    assert code == 1
    assert "[condition_unsupported]" in err and "github.ref == 'refs/heads/main'" in err
    assert "nothing was started" in err
    assert not list((project / "ws").rglob("run.json"))


def test_plan_shows_the_conditions(project: Path) -> None:
    stack = make_stack(project / "stack", [
        step("a", "ok"), step("fix", "ok", deps=["a"], run_if="failure"), step("z", "ok", deps=["fix"], run_if="always"),
    ])
    code, out, err = run_cli("plan", stack, "--workspace", project / "ws")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[1]["steps"] == ["fix"] and lines[1]["runIf"] == {"fix": "failure"}
    assert lines[2]["runIf"] == {"z": "always"} and "runIf" not in lines[0]


# ------------------------------------------------------------------ format


def test_v2_steps_verify_beside_v1_steps_and_v1_bytes_are_unchanged(tmp_path: Path) -> None:
    v1 = {"stepName": "a", "skillRef": "skill:x"}
    golden = json.loads((ROOT / "tests" / "golden" / "seed-vectors.json").read_text())
    assert lodec.format_fingerprint(lodec.skill_step_schema().digest) == golden["schema"]["skill-step-v1"]
    v2 = lodec.builtin_schema("skill-step-v2")
    assert v2.by_name["runIf"].id == 7 and v2.by_name["runIfExpression"].id == 8
    # A v1-shaped record under v2 has the same body and another header: another fingerprint.
    a1 = lodec.compile_value(v1, lodec.skill_step_schema())
    a2 = lodec.compile_value(v1, v2)
    assert a1.data[13:] == a2.data[13:] and a1.fingerprint != a2.fingerprint
    b = lodec.compile_value({"stepName": "b", "skillRef": "skill:x", "dependsOn": ["a"], "runIf": "always"}, v2)
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "a.vein").write_bytes(a1.data)
    (tmp_path / "steps" / "b.vein").write_bytes(b.data)
    code, _, err = run_cli("stack", "build", tmp_path / "steps" / "a.vein", tmp_path / "steps" / "b.vein",
                           "--name", "mixed", "--version", "1.0.0", "--description", "v1 and v2 steps",
                           "-o", tmp_path / "stack.json")
    assert code == 0, err
    code, out, err = run_cli("verify", tmp_path / "stack.json", "--no-skills")
    assert code == 0, err
    # A v1 decoder refuses the v2 step: a runIf is never dropped by reading it under v1.
    with pytest.raises(lodec.LodecError) as info:
        lodec.decode_vein(b.data, lodec.skill_step_schema())
    assert info.value.code == "schema_mismatch"


def test_compile_with_the_builtin_v2_schema(tmp_path: Path) -> None:
    src = tmp_path / "fix.json"
    src.write_text(json.dumps({"stepName": "fix", "skillRef": "skill:x", "runIf": "failure"}))
    code, _, err = run_cli("compile", src, "-s", "skill-step-v2", "-o", tmp_path / "fix.vein")
    assert code == 0, err
    code, out, err = run_cli("inspect", tmp_path / "fix.vein")
    assert code == 0 and '"runIf": "failure"' in out, (out, err)
    code, _, err = run_cli("compile", src, "-o", tmp_path / "fix1.vein")
    assert code == 1 and "runIf" in err


def test_plan_works_where_run_refuses_and_says_why(project: Path) -> None:
    rec = step("deploy", "ok", deps=["build"])
    rec["runIfExpression"] = {"github-actions": "github.ref == 'refs/heads/main'"}
    stack = make_stack(project / "stack", [step("build", "ok"), rec])
    code, out, err = run_cli("plan", stack, "--workspace", project / "ws")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"batch": 1, "type": "read", "steps": ["build"]}
    assert lines[2]["step"] == "deploy" and lines[2]["cannot_run"][0]["code"] == "condition_unsupported"
    assert "1 of 2 steps of test-stack cannot run here (condition_unsupported)" in err


def test_plan_of_an_unlocked_stack_lists_every_step_as_unlocked(project: Path) -> None:
    stack = make_stack(project / "stack", [step("a", "ok"), step("b", "ok", deps=["a"])], lock=False)
    code, out, err = run_cli("plan", stack, "--workspace", project / "ws")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [ln.get("type") for ln in lines[:2]] == ["unknown", "unknown"]
    assert {ln["step"]: ln["cannot_run"][0]["code"] for ln in lines[2:]} == {"a": "stack_unlocked",
                                                                            "b": "stack_unlocked"}
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed")
    assert code == 1 and "[stack_unlocked]" in err


def test_a_pack_carries_one_step_schema(project: Path, tmp_path: Path) -> None:
    mixed = make_stack(project / "stack", [step("a", "ok"), step("b", "ok", deps=["a"], run_if="always")])
    code, _out, err = run_cli("pack", mixed, "-o", tmp_path / "m.lodepack", "--workspace", project / "ws")
    assert code == 1 and "[pack_mixed_schemas]" in err
    (project / "v2").mkdir()
    shutil.copytree(project / "stack" / "skills", project / "v2" / "skills")
    only_v2 = make_stack(project / "v2", [step("a", "ok", run_if="success"), step("b", "ok", deps=["a"], run_if="always")])
    code, _out, err = run_cli("pack", only_v2, "-o", tmp_path / "v2.lodepack", "--workspace", project / "ws")
    assert code == 0, err
    code, out, err = run_cli("plan", tmp_path / "v2.lodepack", "--workspace", project / "ws")
    assert code == 0 and '"runIf": {"b": "always"}' in out, err
