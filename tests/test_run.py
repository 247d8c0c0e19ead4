"""lodec run: scheduling, the step contract, failures, drift, upstream trust, capabilities, state location."""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lodec.run.sandbox import Sandbox, probe_sandbox
from tests.conftest import run_cli
from tests.runkit import SLEEP_AND_WRITE, make_skill, make_stack, run_json, step

SANDBOX = probe_sandbox()


@pytest.fixture(autouse=True)
def lodec_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """State outside git goes to $LODEC_HOME: keep it inside the test's folder."""
    home = tmp_path / "lodec-home"
    monkeypatch.setenv("LODEC_HOME", str(home))
    return home


@pytest.fixture
def unsandboxed(monkeypatch: pytest.MonkeyPatch) -> None:
    """No sandbox on this "machine": with --allow-unsandboxed steps run with the user's access.

    Used where a test plays a step that writes where a sealed step cannot (the store, the
    workspace), to prove lodec's own checks hold even without the sandbox.
    """
    import lodec.run.executor as executor

    monkeypatch.setattr(executor, "probe_sandbox", lambda: Sandbox(None, "", "disabled by the test"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A workspace folder (not a git repository) and a stack folder with skills/ inside it."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "stack" / "skills").mkdir(parents=True)
    return tmp_path


def _times(record: dict[str, Any], name: str) -> tuple[datetime, datetime]:
    rec = record["steps"][name]
    parse = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: E731
    return parse(rec["started"]), parse(rec["ended"])


def _overlap(record: dict[str, Any], a: str, b: str) -> bool:
    (s1, e1), (s2, e2) = _times(record, a), _times(record, b)
    return s1 < e2 and s2 < e1


# ------------------------------------------------------------------ scheduling


def test_read_steps_overlap_writers_never_overlap_exclusive_runs_alone(project: Path) -> None:
    skills = project / "stack" / "skills"
    make_skill(skills, "sleep-read", concurrency="read")
    make_skill(skills, "sleep-write", concurrency="write")
    make_skill(skills, "sleep-exclusive", concurrency="exclusive")
    steps = [step(f"r{i}", "sleep-read", seconds="0.6") for i in (1, 2, 3)]
    steps += [step(f"w{i}", "sleep-write", seconds="0.4") for i in (1, 2)]
    steps += [step("x1", "sleep-exclusive", seconds="0.3")]
    stack = make_stack(project / "stack", steps)
    code, record, err = run_json(stack, project / "ws", "--jobs", "4", "--allow-unsandboxed")
    assert code == 0, err
    assert all(s["status"] == "succeeded" for s in record["steps"].values())
    assert _overlap(record, "r1", "r2") and _overlap(record, "r2", "r3")
    assert not _overlap(record, "w1", "w2")
    for other in ("r1", "r2", "r3", "w1", "w2"):
        assert not _overlap(record, "x1", other), other
    assert any(_overlap(record, w, r) for w in ("w1", "w2") for r in ("r1", "r2", "r3")), "a writer may share with readers"


def test_jobs_limit_caps_parallel_reads(project: Path) -> None:
    make_skill(project / "stack" / "skills", "sleep-read", concurrency="read")
    stack = make_stack(project / "stack", [step(f"r{i}", "sleep-read", seconds="0.4") for i in (1, 2, 3)])
    code, record, err = run_json(stack, project / "ws", "--jobs", "1", "--allow-unsandboxed")
    assert code == 0, err
    assert not any(_overlap(record, a, b) for a, b in (("r1", "r2"), ("r2", "r3"), ("r1", "r3")))


def test_dependent_starts_only_after_its_dependency_ends(project: Path) -> None:
    make_skill(project / "stack" / "skills", "sleep-read", concurrency="read")
    stack = make_stack(project / "stack", [step("a", "sleep-read", seconds="0.3"),
                                           step("b", "sleep-read", deps=["a"])])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    assert _times(record, "a")[1] <= _times(record, "b")[0]


def test_plan_prints_batches_as_json_lines(project: Path) -> None:
    skills = project / "stack" / "skills"
    make_skill(skills, "rd", concurrency="read")
    make_skill(skills, "wr", concurrency="write")
    make_skill(skills, "ex", concurrency="exclusive")
    stack = make_stack(project / "stack", [
        step("build", "wr"),
        step("license", "rd", deps=["build"]), step("privacy", "rd", deps=["build"]),
        step("readiness", "wr", deps=["license", "privacy"]), step("ship", "ex", deps=["readiness"]),
    ])
    code, out, err = run_cli("plan", stack, "--workspace", project / "ws")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [
        {"batch": 1, "type": "write", "steps": ["build"]},
        {"batch": 2, "type": "read", "steps": ["license", "privacy"]},
        {"batch": 3, "type": "write", "steps": ["readiness"]},
        {"batch": 4, "type": "exclusive", "steps": ["ship"]},
    ]


# ------------------------------------------------------------------ failures


FAIL = 'print("about to fail"); sys.exit(3)\n'


def test_failed_step_skips_dependents_and_independent_branch_finishes(project: Path) -> None:
    skills = project / "stack" / "skills"
    make_skill(skills, "ok", concurrency="read")
    make_skill(skills, "boom", FAIL, concurrency="read")
    stack = make_stack(project / "stack", [
        step("bad", "boom"), step("after-bad", "ok", deps=["bad"]), step("after-after", "ok", deps=["after-bad"]),
        step("good", "ok"), step("after-good", "ok", deps=["good"]),
    ])
    code, record, _ = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 1 and record["status"] == "failed" and record["exit_code"] == 1
    s = record["steps"]
    assert (s["bad"]["status"], s["bad"]["reason"], s["bad"]["exit_code"]) == ("failed", "exit_nonzero", 3)
    assert s["bad"]["headline"] == "about to fail"
    assert (s["after-bad"]["status"], s["after-bad"]["reason"]) == ("skipped", "upstream_failed")
    assert s["after-after"]["status"] == "skipped" and s["after-bad"]["started"] is None
    assert s["good"]["status"] == s["after-good"]["status"] == "succeeded"


def test_timeout_kills_the_whole_process_group(project: Path, unsandboxed: None) -> None:
    # The step starts a grandchild that would outlive it, then hangs; both must die at the timeout.
    body = '''
import subprocess
child = subprocess.Popen(["sleep", "60"])
with open(INPUTS["pidfile"], "w") as fh:
    fh.write(str(child.pid))
time.sleep(60)
'''
    make_skill(project / "stack" / "skills", "hang", body, timeout=1)
    pidfile = project / "ws" / "grandchild.pid"
    stack = make_stack(project / "stack", [step("hang", "hang", pidfile=str(pidfile)),
                                           step("after", "hang", deps=["hang"])])
    code, record, _ = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 1
    assert (record["steps"]["hang"]["status"], record["steps"]["hang"]["reason"]) == ("failed", "timeout")
    assert record["steps"]["hang"]["duration_ms"] < 10_000
    assert record["steps"]["after"]["status"] == "skipped"
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        _wait_gone(pid)


def _wait_gone(pid: int) -> None:
    import time

    for _ in range(50):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split(")")[-1].split()[0] == "Z":  # reaped by init later; already dead
                    raise ProcessLookupError
        except FileNotFoundError:
            raise ProcessLookupError from None
        time.sleep(0.1)


def test_undeclared_output_fails_its_step(project: Path) -> None:
    body = SLEEP_AND_WRITE + 'write("extra.txt", "not declared")\n'
    skills = project / "stack" / "skills"
    make_skill(skills, "leaky", body)
    make_skill(skills, "ok")
    stack = make_stack(project / "stack", [step("leaky", "leaky"), step("next", "ok", deps=["leaky"])])
    code, record, _ = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 1
    assert (record["steps"]["leaky"]["status"], record["steps"]["leaky"]["reason"]) == ("failed", "output_undeclared")
    assert "extra.txt" in record["steps"]["leaky"]["detail"]
    assert record["steps"]["leaky"]["artifacts"] == {}
    assert record["steps"]["next"]["status"] == "skipped"


def test_missing_declared_output_fails_its_step(project: Path) -> None:
    make_skill(project / "stack" / "skills", "lazy", 'print("wrote nothing")\n')
    stack = make_stack(project / "stack", [step("lazy", "lazy", outputs=["report.json"])])
    code, record, _ = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 1
    assert (record["steps"]["lazy"]["status"], record["steps"]["lazy"]["reason"]) == ("failed", "output_missing")


# ------------------------------------------------------------------ pins


def test_drifted_skill_is_refused_before_any_step_starts(project: Path) -> None:
    body = 'open(INPUTS["marker"], "w").write("ran")\n' + SLEEP_AND_WRITE
    skills = project / "stack" / "skills"
    make_skill(skills, "first", body)
    make_skill(skills, "second", body)
    marker = project / "ws" / "marker"
    stack = make_stack(project / "stack", [step("one", "first", marker=str(marker)),
                                           step("two", "second", deps=["one"], marker=str(marker))])
    with open(skills / "second" / "run.py", "a") as fh:  # edited after `lodec lock`
        fh.write("# harmless-looking change\n")
    code, out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed")
    assert code == 1
    assert "[skill_drifted]" in err and "skill:second drifted" in err and "nothing may run" in err
    assert not marker.exists(), "no step may start when any skill drifted"
    assert not (project / "lodec-home" / "runs").exists()


def test_unlocked_stack_is_refused(project: Path) -> None:
    make_skill(project / "stack" / "skills", "ok")
    stack = make_stack(project / "stack", [step("a", "ok")], lock=False)
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws")
    assert code == 1 and "[stack_unlocked]" in err and "lodec lock" in err


def test_attack_tampered_step_is_refused_and_nothing_runs(project: Path) -> None:
    body = 'open(INPUTS["marker"], "w").write("ran")\n' + SLEEP_AND_WRITE
    make_skill(project / "stack" / "skills", "first", body)
    marker = project / "ws" / "marker"
    stack = make_stack(project / "stack", [step("one", "first", marker=str(marker))])
    vein = project / "stack" / "steps" / "one.vein"
    data = bytearray(vein.read_bytes())
    data[-1] ^= 1
    vein.write_bytes(bytes(data))
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed")
    assert code == 1 and "[step_tampered]" in err and "nothing may run" in err
    assert not marker.exists()


def test_attack_skill_edited_after_the_check_does_not_reach_the_run(project: Path) -> None:
    # prepare_run holds the verified bytes; the run materialises those, not the folder as it is later.
    from lodec.app.verify import verify_target
    from lodec.run.executor import RunOptions, prepare_run, run_stack
    from lodec.store.workspace import Workspace

    skills = project / "stack" / "skills"
    make_skill(skills, "honest", 'print("honest"); write("out.txt", "honest\\n")\n')
    stack = make_stack(project / "stack", [step("a", "honest")])
    verified = verify_target(str(stack), Workspace.discover(project / "ws"))
    prepared = prepare_run(verified.require(), verified.skills)
    (skills / "honest" / "run.py").write_text('#!/usr/bin/env python3\nprint("evil")\n')
    record = run_stack(prepared, RunOptions(workspace=Workspace(project / "ws", project / "state", project / "home"),
                                            allow_unsandboxed=True))
    assert record.steps["a"].status == "succeeded"
    assert record.steps["a"].headline == "honest"


def test_attack_step_file_swapped_after_verification_does_not_reach_the_run(project: Path) -> None:
    # The request is built from the verified vein held in memory, not from steps/<name>.vein read again.
    import lodec
    from lodec.app.verify import verify_target
    from lodec.run.executor import RunOptions, prepare_run, run_stack
    from lodec.store.workspace import Workspace

    make_skill(project / "stack" / "skills", "echo", 'print(INPUTS["say"]); write("out.txt", "x")\n')
    stack = make_stack(project / "stack", [step("a", "echo", say="verified")])
    verified = verify_target(str(stack), Workspace.discover(project / "ws"))
    prepared = prepare_run(verified.require(), verified.skills)
    swapped = lodec.compile_value(step("a", "echo", say="swapped"), lodec.skill_step_schema(), file="a")
    (project / "stack" / "steps" / "a.vein").write_bytes(swapped.data)
    record = run_stack(prepared, RunOptions(workspace=Workspace(project / "ws", project / "state", project / "home"),
                                            allow_unsandboxed=True))
    assert record.steps["a"].headline == "verified"


# ------------------------------------------------------------------ upstream trust

TAMPER = '''
for key, path in sorted(REQ["upstream_artifacts"].items()):
    os.chmod(path, 0o644)
    with open(path, "w") as fh:
        fh.write("tampered by a later step\\n")
print("tampered")
for name in REQ["step"]["outputs"]:
    write(name, "x\\n")
'''

SEE_STATUS = '''
print(json.dumps(REQ["upstream_status"], sort_keys=True))
write("out.txt", json.dumps(REQ["upstream_status"], sort_keys=True))
'''


def _tamper_stack(project: Path) -> Path:
    skills = project / "stack" / "skills"
    make_skill(skills, "producer")
    make_skill(skills, "tamperer", TAMPER)
    make_skill(skills, "consumer", SEE_STATUS)
    return make_stack(project / "stack", [
        step("produce", "producer"),
        step("tamper", "tamperer", deps=["produce"]),
        step("consume", "consumer", deps=["produce", "tamper"]),
    ])


def test_attack_tampered_upstream_artifact_blocks_its_consumer_under_strict_trust(project: Path, unsandboxed: None) -> None:
    stack = _tamper_stack(project)
    code, record, _ = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 1
    consume = record["steps"]["consume"]
    assert (consume["status"], consume["reason"]) == ("skipped", "upstream_untrusted")
    assert consume["upstream_status"]["produce/out.txt"] == "integrity_mismatch"
    assert consume["started"] is None


def test_normal_trust_starts_the_consumer_and_shows_it_the_status(project: Path, unsandboxed: None) -> None:
    stack = _tamper_stack(project)
    code, record, _ = run_json(stack, project / "ws", "--allow-unsandboxed", "--trust", "normal")
    assert code == 0
    seen = json.loads(record["steps"]["consume"]["headline"])
    assert seen == {"produce/out.txt": "integrity_mismatch", "tamper/out.txt": "verified"}


def test_resolve_journal_and_analytics_recheck_artifacts(project: Path) -> None:
    make_skill(project / "stack" / "skills", "ok")
    stack = make_stack(project / "stack", [step("a", "ok"), step("b", "ok", deps=["a"])])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    code, out, err = run_cli("resolve", stack, "b", "--workspace", project / "ws")
    assert code == 0, err
    resolved = json.loads(out)
    assert resolved["upstream_status"] == {"a/out.txt": "verified"}
    blob = Path(resolved["upstream_artifacts"]["a/out.txt"])
    assert blob.read_bytes() == b"a\n"

    blob.chmod(0o644)
    blob.write_bytes(b"b\n")  # tampered in the store after the run
    code, out, _ = run_cli("resolve", stack, "b", "--run", record["run"], "--workspace", project / "ws")
    resolved = json.loads(out)
    assert resolved["upstream_status"] == {"a/out.txt": "integrity_mismatch"}
    assert resolved["upstream_artifacts"] == {"a/out.txt": None}
    code, out, _ = run_cli("resolve", stack, "b", "--trust", "normal", "--workspace", project / "ws")
    assert json.loads(out)["upstream_artifacts"]["a/out.txt"] == str(blob)

    code, journal, _ = run_cli("journal", record["run"], "--workspace", project / "ws")
    assert code == 0
    section_a = journal.split("## a\n")[1].split("## b\n")[0]
    assert "`out.txt`" in section_a and "**TAMPERED**" in section_a
    assert "**TAMPERED**" not in journal.split("## b\n")[1]

    code, out, _ = run_cli("analytics", "--json", "--workspace", project / "ws")
    figures = json.loads(out)
    assert figures["artifacts"] == {"verified": 1, "tampered": 1, "missing": 0}
    assert figures["tampered"] == [f"{record['run']}/a/out.txt"]

    blob.unlink()
    code, out, _ = run_cli("resolve", stack, "b", "--workspace", project / "ws")
    assert json.loads(out)["upstream_status"] == {"a/out.txt": "missing"}


def test_resolve_reports_skipped_upstream(project: Path) -> None:
    skills = project / "stack" / "skills"
    make_skill(skills, "boom", FAIL)
    make_skill(skills, "ok")
    stack = make_stack(project / "stack", [step("a", "boom"), step("b", "ok", deps=["a"]),
                                           step("c", "ok", deps=["a", "b"])])
    run_json(stack, project / "ws", "--allow-unsandboxed")
    code, out, err = run_cli("resolve", stack, "c", "--workspace", project / "ws")
    assert code == 0, err
    assert json.loads(out)["upstream_status"] == {"a/out.txt": "missing", "b/out.txt": "skipped"}


# ------------------------------------------------------------------ capabilities

PROBE_NETWORK = '''
import socket
try:
    socket.create_connection(("127.0.0.1", int(INPUTS["port"])), timeout=2).close()
    result = "connected"
except OSError as exc:
    result = "blocked: " + type(exc).__name__
print(result)
write("out.txt", result)
'''


@pytest.fixture
def loopback_server() -> Any:
    """A TCP server on 127.0.0.1 in the test's own network namespace; yields its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.mark.skipif(not SANDBOX.available, reason=f"no sandbox here: {SANDBOX.reason}")
def test_attack_skill_without_network_cannot_reach_a_loopback_server(project: Path, loopback_server: int) -> None:
    skills = project / "stack" / "skills"
    make_skill(skills, "offline", PROBE_NETWORK, network=False)
    make_skill(skills, "online", PROBE_NETWORK, network=True)
    stack = make_stack(project / "stack", [step("offline", "offline", port=str(loopback_server)),
                                           step("online", "online", port=str(loopback_server))])
    code, record, err = run_json(stack, project / "ws")
    assert code == 0, err
    assert record["steps"]["online"]["headline"] == "connected", "the server is reachable from the host namespace"
    assert record["steps"]["offline"]["headline"].startswith("blocked")
    assert "net namespaces" in record["sandbox"] and record["sandbox"].startswith("bubblewrap")


def test_no_isolation_refuses_unless_allowed(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lodec.run.executor as executor

    monkeypatch.setattr(executor, "probe_sandbox",
                        lambda: Sandbox(None, "", "bubblewrap ('bwrap') is not on PATH"))
    body = 'open(INPUTS["marker"], "w").write("ran")\n' + SLEEP_AND_WRITE
    make_skill(project / "stack" / "skills", "offline", body)
    marker = project / "ws" / "marker"
    stack = make_stack(project / "stack", [step("a", "offline", marker=str(marker))])
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws")
    assert code == 1 and "[sandbox_unavailable]" in err and "bwrap" in err and "--allow-unsandboxed" in err
    assert not marker.exists()
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    assert marker.exists() and record["sandbox"].startswith("none")


def test_attack_undeclared_environment_variable_never_reaches_a_skill(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODEC_TEST_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")
    monkeypatch.setenv("DECLARED_SETTING", "visible")
    body = 'write("out.txt", json.dumps(dict(os.environ), sort_keys=True))\n'
    make_skill(project / "stack" / "skills", "envdump", body, env=["DECLARED_SETTING"])
    stack = make_stack(project / "stack", [step("a", "envdump")])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    blob = project / "lodec-home" / "cas" / "blake3"
    digest = record["steps"]["a"]["artifacts"]["out.txt"]["blake3"]
    seen = json.loads((blob / digest[:2] / digest[2:]).read_text())
    assert "hunter2" not in json.dumps(seen) and "wJalrXUtnFEMI" not in json.dumps(seen)
    assert "AWS_SECRET_ACCESS_KEY" not in seen
    assert seen["DECLARED_SETTING"] == "visible"
    assert seen["LODEC_STEP"] == "a" and Path(seen["LODEC_OUTPUT_DIR"]).name == "out"


# ------------------------------------------------------------------ where state goes


def test_run_from_a_git_subdirectory_keeps_state_at_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    sub = repo / "src" / "deep"
    sub.mkdir(parents=True)
    (repo / "stack" / "skills").mkdir(parents=True)
    make_skill(repo / "stack" / "skills", "ok")
    stack = make_stack(repo / "stack", [step("a", "ok")])
    before = sorted(p.name for p in sub.iterdir())
    monkeypatch.chdir(sub)
    code, out, err = run_cli("run", stack, "--allow-unsandboxed")
    assert code == 0, err
    assert sorted(p.name for p in sub.iterdir()) == before == []
    runs = list((repo / ".lodec" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "run.json").is_file()
    record = json.loads((runs[0] / "run.json").read_text())
    assert record["workspace"] == str(repo)
    assert not (tmp_path / "lodec-home").exists()


def test_run_outside_git_keeps_state_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LODEC_HOME")
    home = tmp_path / "fakehome"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "plain"
    (work / "stack" / "skills").mkdir(parents=True)
    make_skill(work / "stack" / "skills", "ok")
    stack = make_stack(work / "stack", [step("a", "ok")])
    monkeypatch.chdir(work)
    code, _out, err = run_cli("run", stack, "--allow-unsandboxed")
    assert code == 0, err
    assert len(list((home / ".lodec" / "runs").iterdir())) == 1
    assert not (work / ".lodec").exists()


# ------------------------------------------------------------------ records


def test_runs_list_and_discard_dry_run_lists_exactly_what_discard_deletes(project: Path) -> None:
    skills = project / "stack" / "skills"
    make_skill(skills, "ok")
    make_skill(skills, "named", 'write("out.txt", INPUTS["text"])\n')
    stack = make_stack(project / "stack", [step("a", "ok"), step("n", "named", text="unique text")])
    _, first, _ = run_json(stack, project / "ws", "--allow-unsandboxed")
    _, second, _ = run_json(stack, project / "ws", "--allow-unsandboxed")
    code, out, _ = run_cli("runs", "list", "--json", "--workspace", project / "ws")
    assert [r["run"] for r in json.loads(out)["runs"]] == [first["run"], second["run"]]

    home = project / "lodec-home"
    before = {p for p in home.rglob("*") if p.is_file()}
    code, out, err = run_cli("runs", "discard", first["run"], "--dry-run", "--json", "--workspace", project / "ws")
    assert code == 0, err
    listed = {Path(p) for p in json.loads(out)["files"]}
    assert {p for p in home.rglob("*") if p.is_file()} == before, "a dry run deletes nothing"
    run_files = {p for p in before if (home / "runs" / first["run"]) in p.parents}
    assert run_files <= listed and (home / "runs" / first["run"] / "run.json") in listed
    assert not any((home / "cas") in p.parents for p in listed), "both runs share every artifact"

    code, out, _ = run_cli("runs", "discard", first["run"], "--json", "--workspace", project / "ws")
    assert {Path(p) for p in json.loads(out)["files"]} == listed
    assert {p for p in home.rglob("*") if p.is_file()} == before - listed
    assert not (home / "runs" / first["run"]).exists()
    code, out, _ = run_cli("journal", second["run"], "--workspace", project / "ws")
    assert "**TAMPERED**" not in out and "**MISSING**" not in out

    code, _out, err = run_cli("runs", "discard", first["run"], "--workspace", project / "ws")
    assert code == 1 and "[run_not_found]" in err


def test_discard_lists_artifacts_only_this_run_holds(project: Path) -> None:
    make_skill(project / "stack" / "skills", "named", 'write("out.txt", INPUTS["text"])\n')
    one = make_stack(project / "stack", [step("n", "named", text="only in run one")])
    _, first, _ = run_json(one, project / "ws", "--allow-unsandboxed")
    digest = first["steps"]["n"]["artifacts"]["out.txt"]["blake3"]
    code, out, _ = run_cli("runs", "discard", first["run"], "--dry-run", "--json", "--workspace", project / "ws")
    files = json.loads(out)["files"]
    assert any(p.endswith(digest[2:]) for p in files) and any(p.endswith(digest[2:] + ".sha256") for p in files)


def test_run_record_journal_and_provenance(project: Path) -> None:
    make_skill(project / "stack" / "skills", "ok")
    stack = make_stack(project / "stack", [step("a", "ok"), step("b", "ok", deps=["a"], outputs=["x.txt", "y.txt"])])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    run_dir = project / "lodec-home" / "runs" / record["run"]
    on_disk = json.loads((run_dir / "run.json").read_text())
    assert record.pop("ok") is True and on_disk == record  # --json: the envelope's ok, then run.json
    manifest = json.loads(stack.read_text())
    assert record["skills"] == manifest["skillDigests"]
    for name in ("a", "b"):
        rec = record["steps"][name]
        assert rec["status"] == "succeeded" and rec["exit_code"] == 0 and rec["duration_ms"] > 0
        assert rec["fingerprint"] == manifest["stepFingerprints"][name]
    journal = (run_dir / "journal.md").read_text()
    assert "## a\n" in journal and "## b\n" in journal and "- headline: b done" in journal
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["_type"] == "https://in-toto.io/Statement/v1"
    assert prov["predicateType"] == "https://slsa.dev/provenance/v1"
    assert {s["name"] for s in prov["subject"]} == {"a/out.txt", "b/x.txt", "b/y.txt"}
    import hashlib

    import blake3

    for s in prov["subject"]:
        assert s["digest"]["sha256"] == hashlib.sha256(s["name"].split("/")[0].encode() + b"\n").hexdigest()
        assert s["digest"]["blake3"] == blake3.blake3(s["name"].split("/")[0].encode() + b"\n").hexdigest()
    build, details = prov["predicate"]["buildDefinition"], prov["predicate"]["runDetails"]
    assert build["buildType"] == "https://lodec.dev/buildtypes/run/v1"
    assert build["externalParameters"] == {"stack": {"name": "test-stack", "version": "1.0.0",
                                                     "digest": record["stack"]["digest"]},
                                           "trust": record["trust"], "steps": ["a", "b"]}
    deps = {d["uri"]: d["digest"] for d in build["resolvedDependencies"]}
    # Honest digest names: sha256/blake3 are what sha256sum/b3sum print for the manifest file;
    # lodec's keyed manifest digest, step fingerprints and tree digests have lodec's own names.
    data = stack.read_bytes()
    assert deps["lodec:stack:test-stack@1.0.0"] == {
        "sha256": hashlib.sha256(data).hexdigest(), "blake3": blake3.blake3(data).hexdigest(),
        "lodecFingerprint": record["stack"]["digest"].removeprefix("blake3:")}
    for name in ("a", "b"):
        vein = (stack.parent / "steps" / f"{name}.vein").read_bytes()
        assert deps[f"lodec:step:{name}"] == {
            "sha256": hashlib.sha256(vein).hexdigest(), "blake3": blake3.blake3(vein).hexdigest(),
            "lodecFingerprint": manifest["stepFingerprints"][name].removeprefix("blake3:")}
    assert deps["skill:ok"] == {"lodecTree": manifest["skillDigests"]["skill:ok"].removeprefix("blake3:")}
    from lodec import __version__

    unsandboxed = "#unsandboxed" if record["sandbox"].startswith("none") else ""  # its own builder id (SLSA)
    assert details["builder"] == {"id": f"https://lodec.dev/builder/lodec@{__version__}{unsandboxed}",
                                  "version": {"lodec": __version__}}
    assert details["metadata"] == {"invocationId": record["run"], "startedOn": record["started"],
                                   "finishedOn": record["ended"]}
    record_bytes = (run_dir / "run.json").read_bytes()
    assert details["byproducts"] == [{
        "name": "run.json", "mediaType": "application/vnd.lodec.run.v1+json",
        "digest": {"sha256": hashlib.sha256(record_bytes).hexdigest(), "blake3": blake3.blake3(record_bytes).hexdigest()},
        "annotations": {"status": "succeeded", "exitCode": 0, "steps": {"a": "succeeded", "b": "succeeded"}}}]


def test_analytics_counts_steps_and_durations(project: Path) -> None:
    skills = project / "stack" / "skills"
    make_skill(skills, "ok")
    make_skill(skills, "boom", FAIL)
    good = make_stack(project / "stack", [step("a", "ok")])
    for _ in range(3):
        run_json(good, project / "ws", "--allow-unsandboxed")
    code, out, _ = run_cli("analytics", "--json", "--workspace", project / "ws")
    figures = json.loads(out)
    assert figures["runs"] == 3 and figures["runs_by_status"] == {"succeeded": 3}
    entry = figures["steps"]["a"]
    assert entry["counts"] == {"succeeded": 3}
    assert 0 < entry["duration_ms"]["p50"] <= entry["duration_ms"]["p95"]
    code, text, _ = run_cli("analytics", "--workspace", project / "ws")
    assert "3 run(s): 3 succeeded" in text


def test_analytics_hashes_a_blob_many_runs_share_once_and_still_counts_each(project: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from lodec.app.runs import analytics
    from lodec.store.cas import Store
    from lodec.store.workspace import Workspace

    make_skill(project / "stack" / "skills", "ok")
    good = make_stack(project / "stack", [step("a", "ok")])
    for _ in range(3):
        run_json(good, project / "ws", "--allow-unsandboxed")
    checked: list[str] = []
    check = Store.check
    monkeypatch.setattr(Store, "check", lambda self, hexd: checked.append(hexd) or check(self, hexd))
    figures = analytics(Workspace.discover(project / "ws"))
    assert figures["artifacts"] == {"verified": 3, "tampered": 0, "missing": 0}
    assert len(checked) == 1 == len(set(checked))


def test_percentile_is_nearest_rank() -> None:
    from lodec.run.reports import percentile

    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10.0 and percentile(values, 95) == 19.0 and percentile(values, 100) == 20.0


def test_request_carries_the_verified_step(project: Path) -> None:
    body = 'write("out.txt", json.dumps(REQ, sort_keys=True))\n'
    make_skill(project / "stack" / "skills", "echo", body)
    stack = make_stack(project / "stack", [step("a", "echo", model="local", depth="2")])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    digest = record["steps"]["a"]["artifacts"]["out.txt"]["blake3"]
    req = json.loads((project / "lodec-home" / "cas" / "blake3" / digest[:2] / digest[2:]).read_text())
    assert req["request"] == "lodec-step-request/v1"
    assert req["inputs"] == {"model": "local", "depth": "2"}
    assert req["step"]["fingerprint"] == json.loads(stack.read_text())["stepFingerprints"]["a"]
    assert req["workspace"] == str((project / "ws").resolve())
    assert req["upstream_artifacts"] == {} and req["trust"] == "strict"


def test_run_of_a_signed_stack_checks_signatures_first(project: Path, keys: dict[str, Path]) -> None:
    from tests.conftest import SIGNED_AT, sign_cli

    make_skill(project / "stack" / "skills", "ok")
    stack = make_stack(project / "stack", [step("a", "ok")])
    sign_cli(stack, keys["alice"], "--expires-in", "3650d")
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed", "--key", f"{keys['alice']}.pub",
                                 "--now", SIGNED_AT, "--state", str(project / "trusted.json"))
    assert code == 0, err
    assert record["stack"]["signedBy"]
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed",
                              "--key", f"{keys['mallory']}.pub", "--now", SIGNED_AT,
                              "--state", str(project / "trusted.json"))
    assert code == 1 and "nothing may run" in err


def test_repinned_skill_breaks_the_signature(project: Path, keys: dict[str, Path]) -> None:
    # Pins live in the signed manifest: swapping a pin for another skill's digest invalidates the approval.
    from tests.conftest import SIGNED_AT, sign_cli

    make_skill(project / "stack" / "skills", "ok")
    stack = make_stack(project / "stack", [step("a", "ok")])
    sign_cli(stack, keys["alice"], "--expires-in", "3650d")
    (project / "stack" / "skills" / "ok" / "run.py").write_text("#!/bin/sh\necho evil\n")
    code, _out, err = run_cli("lock", stack)
    assert code == 0, err
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed",
                              "--key", f"{keys['alice']}.pub", "--now", SIGNED_AT)
    assert code == 1 and "[digest_mismatch]" in err, err


# ------------------------------------------------------------------ --step / --reuse (partial runs)

#: Writes its outputs with the upstream statuses it was shown (so a test can read what it saw).
SHOW_UPSTREAM = '''
for name in REQ["step"]["outputs"]:
    write(name, json.dumps(REQ["upstream_status"], sort_keys=True))
print(json.dumps(REQ["upstream_status"], sort_keys=True))
'''


def _two_step_stack(project: Path) -> Path:
    make_skill(project / "stack" / "skills", "ok")
    make_skill(project / "stack" / "skills", "show", SHOW_UPSTREAM)
    return make_stack(project / "stack", [step("a", "ok"), step("b", "show", deps=["a"])])


def test_step_with_reuse_runs_only_that_step_on_the_earlier_artifacts(project: Path) -> None:
    stack = _two_step_stack(project)
    code, first, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    code, again, err = run_json(stack, project / "ws", "--allow-unsandboxed", "--step", "b", "--reuse", "latest")
    assert code == 0, err
    assert list(again["steps"]) == ["b"] and again["order"] == ["b"]
    assert again["reused"]["run"] == first["run"] and list(again["reused"]["steps"]) == ["a"]
    assert json.loads(again["steps"]["b"]["headline"]) == {"a/out.txt": "verified"}
    # resolve against the partial run sees the reused upstream too
    code, out, err = run_cli("resolve", stack, "b", "--workspace", project / "ws")
    assert code == 0, err
    assert json.loads(out)["run"] == again["run"]
    assert json.loads(out)["upstream_status"] == {"a/out.txt": "verified"}


def test_attack_reused_artifact_tampered_since_is_caught_before_the_step_reads_it(project: Path) -> None:
    stack = _two_step_stack(project)
    code, first, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    _code, out, _ = run_cli("resolve", stack, "b", "--workspace", project / "ws")
    blob = Path(json.loads(out)["upstream_artifacts"]["a/out.txt"])
    blob.chmod(0o644)
    blob.write_bytes(b"forged\n")
    code, strict, _ = run_json(stack, project / "ws", "--allow-unsandboxed", "--step", "b", "--reuse", first["run"])
    assert code == 1
    assert (strict["steps"]["b"]["status"], strict["steps"]["b"]["reason"]) == ("skipped", "upstream_untrusted")
    code, normal, err = run_json(stack, project / "ws", "--allow-unsandboxed", "--step", "b",
                                 "--reuse", first["run"], "--trust", "normal")
    assert code == 0, err
    assert json.loads(normal["steps"]["b"]["headline"]) == {"a/out.txt": "integrity_mismatch"}


def test_step_without_reuse_sees_unselected_upstreams_as_missing(project: Path) -> None:
    stack = _two_step_stack(project)
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed", "--step", "b", "--trust", "normal")
    assert code == 0, err
    assert list(record["steps"]) == ["b"] and "reused" not in record
    assert json.loads(record["steps"]["b"]["headline"]) == {"a/out.txt": "missing"}


def test_reuse_of_a_run_of_another_stack_is_refused(project: Path) -> None:
    stack = _two_step_stack(project)
    code, first, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    import shutil
    shutil.copytree(project / "stack" / "skills", project / "other" / "skills")
    other = make_stack(project / "other", [step("a", "ok"), step("b", "show", deps=["a"], marker="other")],
                       name="test-stack")  # same name, different steps: a different digest
    code, out, err = run_cli("run", other, "--workspace", project / "ws", "--allow-unsandboxed",
                             "--step", "b", "--reuse", first["run"])
    assert code == 1 and "[reuse_mismatch]" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_step_and_reuse_without_step_are_refused(project: Path) -> None:
    stack = _two_step_stack(project)
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed", "--step", "nope")
    assert code == 1 and "[step_not_found]" in err and 'no step "nope"' in err
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed", "--reuse", "latest")
    assert code == 2 and "--step" in err  # a usage error, before any run is looked for
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed", "--step", "a",
                              "--reuse", "latest")
    assert code == 1 and "run_not_found" in err  # no earlier run yet
    run_json(stack, project / "ws", "--allow-unsandboxed")
    code, _out, err = run_cli("run", stack, "--workspace", project / "ws", "--allow-unsandboxed", "--reuse", "latest")
    assert code == 2 and "--step" in err


def test_discarding_the_reused_run_keeps_blobs_the_partial_run_stands_on(project: Path) -> None:
    stack = _two_step_stack(project)
    code, first, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    digest_a = first["steps"]["a"]["artifacts"]["out.txt"]["blake3"]
    blob_a = f"cas/blake3/{digest_a[:2]}/{digest_a[2:]}\n"  # the store's layout: the whole digest is never in a path

    def dry_run() -> str:
        code, out, err = run_cli("runs", "discard", first["run"], "--dry-run", "--workspace", project / "ws")
        assert code == 0, err
        assert f"{first['run']}/run.json" in out
        return out

    assert blob_a in dry_run()  # the only run: discarding it would delete a's artifact
    code, _again, err = run_json(stack, project / "ws", "--allow-unsandboxed", "--step", "b", "--reuse", "latest")
    assert code == 0, err
    assert blob_a not in dry_run()  # the partial run still needs a's artifact


def test_step_gets_the_interpreter_lodec_runs_under(project: Path) -> None:
    import sys
    make_skill(project / "stack" / "skills", "py", 'print(os.environ["LODEC_PYTHON"]); write("out.txt", "x")\n')
    stack = make_stack(project / "stack", [step("a", "py")])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    assert record["steps"]["a"]["headline"] == sys.executable


def test_artifact_prints_verified_bytes_and_refuses_tampered_ones(project: Path) -> None:
    stack = _two_step_stack(project)
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    code, out, err = run_cli("artifact", "a", "--workspace", project / "ws")
    assert code == 0, err
    assert out == "a\n"
    code, out, err = run_cli("artifact", "b", "out.txt", "--run", record["run"], "--workspace", project / "ws")
    assert code == 0 and json.loads(out) == {"a/out.txt": "verified"}
    code, _out, err = run_cli("artifact", "a", "nope.txt", "--workspace", project / "ws")
    assert code == 1 and "[artifact_missing]" in err and "out.txt" in err
    code, _out, err = run_cli("artifact", "zzz", "--workspace", project / "ws")
    assert code == 1 and "[step_not_found]" in err
    _code, out, _ = run_cli("resolve", stack, "b", "--workspace", project / "ws")
    blob = Path(json.loads(out)["upstream_artifacts"]["a/out.txt"])
    blob.chmod(0o644)
    blob.write_bytes(b"forged\n")
    code, out, err = run_cli("artifact", "a", "--workspace", project / "ws")
    assert code == 1 and "[integrity_mismatch]" in err and "forged" not in out
    assert len(err.strip().splitlines()) == 1
    blob.unlink()
    code, _out, err = run_cli("artifact", "a", "--workspace", project / "ws")
    assert code == 1 and "[artifact_missing]" in err


def test_artifact_without_output_names_the_choices_and_an_unreadable_blob_is_one_line(project: Path) -> None:
    make_skill(project / "stack" / "skills", "ok")
    stack = make_stack(project / "stack", [step("a", "ok", outputs=["x.txt", "y.txt"])])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    code, _out, err = run_cli("artifact", "a", "--workspace", project / "ws")
    assert code == 1 and "[artifact_missing]" in err and "None" not in err and "x.txt, y.txt" in err
    blob = project / "lodec-home" / "cas" / "blake3"
    digest = record["steps"]["a"]["artifacts"]["x.txt"]["blake3"]
    path = blob / digest[:2] / digest[2:]
    path.chmod(0o644)
    path.unlink()
    path.mkdir()  # not a regular file: refused like any unreadable file, not a traceback
    code, out, err = run_cli("artifact", "a", "x.txt", "--workspace", project / "ws")
    assert code == 1 and out == "" and "[file_unreadable]" in err and len(err.strip().splitlines()) == 1


def test_steps_downstream_of_a_rerun_step_are_not_reused(project: Path) -> None:
    # b was built from the old a: after re-running a, the old b must not stand in for the new a's dependent.
    stack = _two_step_stack(project)
    code, first, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    code, again, err = run_json(stack, project / "ws", "--allow-unsandboxed", "--step", "a", "--reuse", first["run"])
    assert code == 0, err
    assert list(again["steps"]) == ["a"] and again["reused"]["steps"] == {}
    code, out, err = run_cli("artifact", "b", "--workspace", project / "ws")
    assert code == 1 and "[step_not_found]" in err


def test_reuse_latest_takes_the_newest_run_of_this_very_stack(project: Path) -> None:
    import shutil
    stack = _two_step_stack(project)
    code, first, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    shutil.copytree(project / "stack" / "skills", project / "other" / "skills")
    other = make_stack(project / "other", [step("a", "ok"), step("b", "show", deps=["a"], marker="other")])
    code, _rec, err = run_json(other, project / "ws", "--allow-unsandboxed")  # same name, newer, other digest
    assert code == 0, err
    code, again, err = run_json(stack, project / "ws", "--allow-unsandboxed", "--step", "b", "--reuse", "latest")
    assert code == 0, err
    assert again["reused"]["run"] == first["run"]


def test_one_pass_holds_later_steps_behind_a_waiting_exclusive_step_and_yields_skips() -> None:
    """The pass both engines schedule with: an exclusive step waiting for a running read holds back the
    read after it (else a stream of reads would starve it), and a step its condition skips is yielded
    to be recorded, whatever runs."""
    from lodec.run.schedule import one_pass
    from lodec.stack.conditions import Decision

    kinds = {"lint": "exclusive", "scan": "read", "gone": "read"}
    decisions = {"lint": Decision("run"), "scan": Decision("run"), "gone": Decision("skip", "upstream_failed", "x")}
    running = ["read"]
    pending = ["lint", "scan", "gone"]
    moves = []
    for name, now in one_pass(pending, lambda: running, 4, kinds.__getitem__, decisions.__getitem__):
        moves.append((name, now.action))
        if now.action == "run":
            running.append(kinds[name])
    assert moves == [("gone", "skip")]
    assert pending == ["lint", "scan"]
    running.clear()  # the read ended: the exclusive step starts, alone
    started = []
    for name, _ in one_pass(pending, lambda: running, 4, kinds.__getitem__, decisions.__getitem__):
        started.append(name)
        running.append(kinds[name])
    assert started == ["lint"] and pending == ["scan"]


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_attack_a_run_record_naming_a_step_outside_its_run_does_not_make_logs_read_there(
        project: Path, kind: str) -> None:
    """Whoever can write a run.json (a shared workspace, a restored cache) adds a step whose name leads out
    of runs/<id>/steps; ``lodec logs`` refuses that name instead of printing the file it leads to."""
    from lodec.store.workspace import Workspace

    make_skill(project / "stack" / "skills", "ok")
    stack = make_stack(project / "stack", [step("a", "ok")])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    workspace = Workspace.discover(project / "ws")
    name = "../../../secret" if kind == "relative" else str(project / "secret")
    path = workspace.run_dir(record["run"]) / "run.json"
    data = json.loads(path.read_text())
    data["steps"][name] = data["steps"]["a"]
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    target = workspace.step_dir(record["run"], name) / "stderr.log"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("SECRET-OUTSIDE-THE-RUN\n")
    code, out, err = run_cli("logs", name, "--run", record["run"], "--workspace", project / "ws")
    assert code == 1 and "SECRET-OUTSIDE-THE-RUN" not in out + err, out + err
    assert "has no step" in err


def test_attack_a_run_record_whose_digest_leads_out_of_the_store_does_not_make_discard_delete_there(
        project: Path) -> None:
    """Whoever can write a run.json (a shared workspace, a restored cache) gives an artifact a "digest"
    that, as a store path, names a file elsewhere (``..//home/you/file``); ``lodec runs discard`` of
    that run must not delete that file: the record is refused as invalid."""
    from lodec.store.workspace import Workspace

    make_skill(project / "stack" / "skills", "ok")
    stack = make_stack(project / "stack", [step("a", "ok")])
    code, record, err = run_json(stack, project / "ws", "--allow-unsandboxed")
    assert code == 0, err
    victim = project / "precious.txt"
    victim.write_text("keep me\n")
    path = Workspace.discover(project / "ws").run_dir(record["run"]) / "run.json"
    data = json.loads(path.read_text())
    data["steps"]["a"]["artifacts"]["out.txt"]["blake3"] = ".." + "/" + str(victim)
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    code, out, err = run_cli("runs", "discard", record["run"], "--workspace", project / "ws")
    assert victim.read_text() == "keep me\n"
    assert code == 1 and "not a valid run record" in err, err
