"""Sealed execution, tested as attacks: a real step inside a real ``lodec run`` tries to reach out.

Every test runs twice: under bubblewrap (the default) and under the Landlock
fallback (``LODEC_SANDBOX=landlock``), where the expectations differ only in
how a refusal shows (an empty read-only folder under bubblewrap, EACCES or
EPERM under Landlock).

Each test is one attack class of ``docs/skill-contract.md`` §Sandbox, named for
it. The attacking step is an ordinary skill (``tests/runkit.py``) whose script
tries the attack and reports what happened in its output artifact; the test
then checks both the report and the host (files that must not exist, secrets
that must not appear anywhere, processes that must be gone). Each fails if
the attack works. They need bubblewrap; where it cannot run they skip with
the reason (``.ci/run`` installs it, so CI is not such a place).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lodec.run.sandbox import probe_sandbox
from tests.conftest import ROOT, run_cli, unavailable
from tests.runkit import make_skill, make_stack, run_json, step

MECHANISMS = {name: probe_sandbox(name) for name in ("bubblewrap", "landlock")}


@pytest.fixture(autouse=True, params=sorted(MECHANISMS))
def mechanism(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sandbox mechanism the test's runs use (``LODEC_SANDBOX``); skipped where it cannot run here."""
    found = MECHANISMS[request.param]
    if not found.available:
        unavailable(f"no {request.param} here: {found.reason}")
    monkeypatch.setenv("LODEC_SANDBOX", request.param)
    return str(request.param)

CANARY = "lodec-canary-7f3a9c"

#: A step that performs INPUTS["ops"] (a JSON list of [operation, argument]) and reports each outcome.
PROBE = '''
import errno, signal as _signal
PACKET = b"lodec-probe-packet"
results = []
def attempt(op, arg):
    arg = os.path.expandvars(arg)
    try:
        if op == "read":
            with open(arg, "rb") as fh:
                return "ok:" + fh.read(200).decode("utf-8", "replace")
        if op == "list":
            return "ok:" + ",".join(sorted(os.listdir(arg)))
        if op == "write":
            with open(arg, "w") as fh:
                fh.write("written by the step")
            return "ok"
        if op == "symlink":
            target, link = arg.split("|")
            if os.path.lexists(link):
                os.unlink(link)  # replace what lodec created there
            os.symlink(target, link)
            return "ok"
        if op == "mkfifo":
            os.mkfifo(arg)
            return "ok"
        if op == "kill":
            pid, sig = arg.split("|")
            os.kill(int(pid), int(sig))
            return "ok"
        if op == "environ_scan":
            found = []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/environ", "rb") as fh:
                            if arg.encode() in fh.read():
                                found.append(entry)
                    except OSError:
                        pass
            return "found:" + ",".join(found) if found else "none"
        if op == "env":
            return "ok:" + json.dumps(dict(os.environ), sort_keys=True)
        if op == "pids":
            return "ok:" + ",".join(sorted(e for e in os.listdir("/proc") if e.isdigit()))
        if op in ("connect", "udp"):
            import socket
            host, port = arg.split("|")
            kind = socket.SOCK_STREAM if op == "connect" else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, kind) as sock:
                sock.settimeout(3)
                if op == "connect":
                    sock.connect((host, int(port)))
                    sock.sendall(b"tcp-" + PACKET)
                else:
                    for _ in range(5):
                        sock.sendto(b"udp-" + PACKET, (host, int(port)))
            return "ok"
        if op == "tiocsti":
            import fcntl, termios
            fd = os.open("/dev/tty", os.O_RDWR)
            try:
                for ch in arg.encode():
                    fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
            finally:
                os.close(fd)
            return "ok"
        return "unknown op"
    except TimeoutError:
        return "err:timeout"
    except OSError as exc:
        return "err:" + errno.errorcode.get(exc.errno, str(exc.errno))
for op, arg in json.loads(INPUTS["ops"]):
    results.append([op, arg, attempt(op, arg)])  # reported under the argument as given
print("probed")
write("report.json", json.dumps(results))
'''


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake $HOME holding a private key, and $LODEC_HOME inside the test folder."""
    fake = tmp_path / "home"
    (fake / ".ssh").mkdir(parents=True)
    (fake / ".ssh" / "id_ed25519").write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{CANARY}\n")
    monkeypatch.setenv("HOME", str(fake))
    monkeypatch.setenv("LODEC_HOME", str(tmp_path / "lodec-home"))
    return fake


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A git workspace (state in ws/.lodec) with a secret .env, source files and a declared output folder."""
    root = tmp_path / "ws"
    (root / ".git").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('app')\n")
    (root / ".env").write_text(f"API_TOKEN={CANARY}\n")
    (root / "reports").mkdir()
    return root


def _probe_run(tmp_path: Path, ws: Path, ops: list[list[str]], *, read: tuple[str, ...] = ("src",),
               write: tuple[str, ...] = ("reports",), network: bool = False, timeout: int = 30,
               extra: tuple[str, ...] = ()) -> tuple[int, dict[str, Any], list[list[str]], str]:
    """Run one probe step; returns (exit code, run record, the step's report, stderr)."""
    folder = tmp_path / "stack"
    make_skill(folder / "skills", "probe", PROBE, read=read, write=write, network=network, timeout=timeout)
    stack = make_stack(folder, [step("probe", "probe", outputs=("report.json",), ops=json.dumps(ops))])
    code, record, err = run_json(stack, ws, *extra)
    report: list[list[str]] = []
    digest = record.get("steps", {}).get("probe", {}).get("artifacts", {}).get("report.json")
    if digest:
        blob = ws / ".lodec" / "cas" / "blake3" / digest["blake3"][:2] / digest["blake3"][2:]
        report = json.loads(blob.read_text())
    return code, record, report, err


def _outcomes(report: list[list[str]]) -> dict[str, str]:
    return {f"{op} {arg}": result for op, arg, result in report}


def _nowhere(root: Path, secret: str) -> list[str]:
    """Files under ``root`` whose bytes contain ``secret``."""
    return [str(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes()]


# ------------------------------------------------------------------ reading


def test_attack_read_outside_declared_paths_sees_neither_home_keys_nor_workspace_secrets(
    tmp_path: Path, ws: Path, home: Path, mechanism: str
) -> None:
    key, env = home / ".ssh" / "id_ed25519", ws / ".env"
    code, record, report, err = _probe_run(tmp_path, ws, [
        ["read", str(key)], ["read", str(env)], ["list", str(ws)], ["read", str(ws / "src" / "app.py")],
        ["list", str(home)], ["read", "/etc/shadow"],
    ])
    assert code == 0, err
    seen = _outcomes(report)
    assert seen[f"read {key}"].startswith("err:") and seen[f"read {env}"].startswith("err:")
    if mechanism == "bubblewrap":
        assert seen[f"list {ws}"] == "ok:reports,src"  # only what the skill declared
    else:
        assert seen[f"list {ws}"] == "err:EACCES"
    assert seen[f"read {ws / 'src' / 'app.py'}"] == "ok:print('app')\n"  # the declared read path works
    assert not seen["read /etc/shadow"].startswith("ok:root")
    assert _nowhere(ws / ".lodec", CANARY) == []  # not in the record, the logs or any artifact


def test_attack_read_path_planted_as_a_link_out_of_the_workspace_is_refused(tmp_path: Path, ws: Path, home: Path) -> None:
    # An earlier writer (or anyone) turns a declared read path into a link to the user's keys.
    (ws / "src").rename(ws / "src-real")
    (ws / "src").symlink_to(home / ".ssh")
    code, record, report, err = _probe_run(tmp_path, ws, [["list", str(ws / "src")]])
    assert code == 1
    assert record["steps"]["probe"]["reason"] == "capability_escapes" and report == []
    assert _nowhere(ws / ".lodec", CANARY) == []


# ------------------------------------------------------------------ writing


def test_attack_write_outside_declared_paths_changes_nothing_on_the_host(tmp_path: Path, ws: Path, home: Path) -> None:
    targets = [ws / "undeclared.txt", ws / "src" / "injected.py", home / ".bashrc", tmp_path / "outside.txt",
               Path("/usr/local/lodec-probe"), ws / "reports" / "declared.txt"]
    code, record, report, err = _probe_run(tmp_path, ws, [["write", str(t)] for t in targets])
    assert code == 0, err
    seen = _outcomes(report)
    for target in targets[:-1]:
        assert not target.exists(), target
        if not str(target).startswith("/tmp/"):  # under /tmp a write lands in the step's private /tmp
            assert seen[f"write {target}"].startswith("err:"), target
    assert seen[f"write {ws / 'reports' / 'declared.txt'}"] == "ok"
    assert (ws / "reports" / "declared.txt").read_text() == "written by the step"


# ------------------------------------------------------------------ lodec's state


def test_attack_state_directory_is_invisible_even_when_the_whole_workspace_is_declared(
    tmp_path: Path, ws: Path, mechanism: str
) -> None:
    # A first run leaves records, CAS blobs and installed skills; the attacker declares read=["."] and write=["."].
    code, first, _report, err = _probe_run(tmp_path / "first", ws, [["list", str(ws)]])
    assert code == 0, err
    state = ws / ".lodec"
    (state / "trusted-stacks.json").write_text('{"format": "lodec-trusted-stacks-v1", "stacks": {}}\n')
    before = {str(p.relative_to(state)): p.read_bytes() for p in state.rglob("*") if p.is_file()}
    earlier = state / "runs" / first["run"] / "run.json"
    code, record, report, err = _probe_run(tmp_path / "second", ws, [
        ["list", str(state)], ["read", str(earlier)], ["read", str(state / "trusted-stacks.json")],
        ["write", str(state / "trusted-stacks.json")], ["write", str(earlier)], ["list", str(state / "cas")],
        ["write", str(ws / "src" / "ok.txt")],
    ], read=(".",), write=(".",))
    if mechanism == "landlock":
        # Landlock cannot hide a folder inside an allowed one: a declared path holding the state is refused.
        assert code == 1 and record["steps"]["probe"]["reason"] == "capability_escapes" and report == []
        return
    assert code == 0, err
    seen = _outcomes(report)
    assert seen[f"list {state}"] == "ok:"  # an empty, read-only folder stands in for the state
    for key in (f"read {earlier}", f"read {state / 'trusted-stacks.json'}", f"write {earlier}",
                f"write {state / 'trusted-stacks.json'}", f"list {state / 'cas'}"):
        assert seen[key].startswith("err:"), key
    assert seen[f"write {ws / 'src' / 'ok.txt'}"] == "ok"  # write=["."] works elsewhere
    after = {str(p.relative_to(state)): p.read_bytes() for p in state.rglob("*") if p.is_file()}
    assert all(after[k] == v for k, v in before.items() if k in after)  # nothing lodec kept was changed
    assert json.loads(earlier.read_text())["status"] == "succeeded"


def test_attack_a_step_cannot_rewrite_the_code_a_later_step_runs(tmp_path: Path, ws: Path, mechanism: str) -> None:
    folder = tmp_path / "stack"
    make_skill(folder / "skills", "probe", PROBE, read=("src",), write=("reports",))
    make_skill(folder / "skills", "honest", 'print("honest"); write("out.txt", "honest\\n")\n')
    state = ws / ".lodec"
    ops = [["write", "$LODEC_SKILL_DIR/run.py"], ["list", str(state / "runs")], ["list", "/run/lodec"]]
    stack = make_stack(folder, [step("probe", "probe", outputs=("report.json",), ops=json.dumps(ops)),
                                step("later", "honest", deps=["probe"])])
    code, record, err = run_json(stack, ws)
    assert code == 0, err
    assert record["steps"]["later"]["headline"] == "honest"
    digest = record["steps"]["probe"]["artifacts"]["report.json"]["blake3"]
    seen = _outcomes(json.loads((state / "cas" / "blake3" / digest[:2] / digest[2:]).read_text()))
    assert seen["write $LODEC_SKILL_DIR/run.py"].startswith("err:")  # its own copy is read-only
    assert seen[f"list {state / 'runs'}"].startswith("err:")  # and no other step's copy is in reach
    if mechanism == "bubblewrap":
        assert seen["list /run/lodec"] == "ok:out,skill,work"


# ------------------------------------------------------------------ lodec's process


@pytest.mark.parametrize("network", [False, True])
def test_attack_lodec_environment_and_memory_are_out_of_reach(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch, network: bool, mechanism: str
) -> None:
    monkeypatch.setenv("LODEC_TEST_WITHHELD", CANARY)  # in lodec's environment, not declared by the skill
    me = os.getpid()  # lodec runs in this process (the CLI is invoked in-process)
    code, record, report, err = _probe_run(tmp_path, ws, [
        ["environ_scan", CANARY], ["read", f"/proc/{me}/environ"], ["read", f"/proc/{me}/mem"],
        ["read", f"/proc/{me}/cmdline"], ["env", ""], ["pids", ""],
    ], network=network)
    assert code == 0, err
    seen = _outcomes(report)
    assert seen[f"environ_scan {CANARY}"] in ("none", "err:EACCES")  # Landlock: /proc is not even listed
    for key in (f"read /proc/{me}/environ", f"read /proc/{me}/mem", f"read /proc/{me}/cmdline"):
        assert seen[key].startswith("err:"), key
    assert CANARY not in seen["env "]
    if mechanism == "bubblewrap":
        pids = seen["pids "].removeprefix("ok:").split(",")
        assert str(me) not in pids and len(pids) <= 3  # its own PID namespace: bwrap's init, the step
    else:
        assert seen["pids "] == "err:EACCES"


def test_attack_a_step_cannot_signal_or_stop_lodec(tmp_path: Path, ws: Path) -> None:
    # Harmless signals only, so a broken sandbox fails this test instead of killing the tester's session:
    # SIGUSR2 at lodec (this process; the CLI runs in-process) is recorded by a handler, SIGSTOP at a
    # bystander shows as its state.
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, _frame: received.append(signum))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ops = [["kill", f"{os.getpid()}|{int(signal.SIGUSR2)}"], ["kill", f"{bystander.pid}|{int(signal.SIGSTOP)}"]]
        code, record, report, err = _probe_run(tmp_path, ws, ops)
        assert code == 0, err
        seen = _outcomes(report)
        # bubblewrap: no such process in its PID namespace; Landlock: outside its signal scope.
        assert seen[f"kill {os.getpid()}|{int(signal.SIGUSR2)}"] in ("err:ESRCH", "err:EPERM")
        assert seen[f"kill {bystander.pid}|{int(signal.SIGSTOP)}"] in ("err:ESRCH", "err:EPERM")
        time.sleep(0.2)
        assert received == []
        state = Path(f"/proc/{bystander.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state != "T" and bystander.poll() is None  # never stopped, still running
    finally:
        signal.signal(signal.SIGUSR2, previous)
        bystander.kill()
        bystander.wait()


def test_attack_a_stopped_or_hung_step_cannot_pause_the_timeout(tmp_path: Path, ws: Path) -> None:
    folder = tmp_path / "stack"
    # It tries to stop its parent (inside its namespace: its own init), then hangs.
    body = ('for pid in (1,):\n'
            '    try:\n        os.kill(pid, 19)\n    except OSError:\n        pass\n'
            'time.sleep(60)\n')
    make_skill(folder / "skills", "stall", body, timeout=2)
    stack = make_stack(folder, [step("stall", "stall")])
    started = time.monotonic()
    code, record, err = run_json(stack, ws)
    assert code == 1
    assert (record["steps"]["stall"]["status"], record["steps"]["stall"]["reason"]) == ("failed", "timeout")
    assert time.monotonic() - started < 20


DAEMON = '''
import subprocess
beat = os.path.join(os.environ["LODEC_WORKSPACE"], "reports", "heartbeat")
code = ("import os, time\\n"
        "while True:\\n"
        f"    open({beat!r}, 'a').write('.')\\n"
        "    time.sleep(0.05)\\n")
subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdin=subprocess.DEVNULL,  # setsid
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
print("daemon started")
write("out.txt", "x")
'''


def _stops_growing(path: Path, seconds: float = 1.5) -> bool:
    time.sleep(0.3)
    size = path.stat().st_size
    time.sleep(seconds)
    return path.stat().st_size == size


def test_attack_a_daemon_started_by_a_step_dies_with_the_step(tmp_path: Path, ws: Path) -> None:
    folder = tmp_path / "stack"
    make_skill(folder / "skills", "daemon", DAEMON, write=("reports",))
    stack = make_stack(folder, [step("daemon", "daemon")])
    code, record, err = run_json(stack, ws)
    assert code == 0, err
    assert record["steps"]["daemon"]["headline"] == "daemon started"
    beat = ws / "reports" / "heartbeat"
    assert beat.exists() and _stops_growing(beat)


def test_sigterm_to_lodec_run_stops_the_steps_and_records_the_run_interrupted(tmp_path: Path, ws: Path) -> None:
    folder = tmp_path / "stack"
    make_skill(folder / "skills", "daemon", DAEMON + "time.sleep(60)\n", write=("reports",))
    stack = make_stack(folder, [step("daemon", "daemon")])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "lodec", "run", str(stack), "--workspace", str(ws)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    beat = ws / "reports" / "heartbeat"
    deadline = time.monotonic() + 20
    while not beat.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert beat.exists(), "the step never started"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err.decode()
    assert _stops_growing(beat)
    records = [json.loads(p.read_text()) for p in (ws / ".lodec" / "runs").glob("*/run.json")]
    assert [r["status"] for r in records] == ["interrupted"]
    assert records[0]["exit_code"] == 143 and records[0]["steps"]["daemon"]["reason"] == "interrupted"


@pytest.fixture
def listeners() -> Any:
    """A TCP and a UDP socket on the host's loopback; yields (tcp port, udp port, received bytes)."""
    import socket
    import threading

    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        import select

        while not stop.is_set():
            ready, _, _ = select.select([tcp, udp], [], [], 0.1)
            for sock in ready:
                if sock is udp:
                    received.append(udp.recv(1024))
                else:
                    conn, _addr = tcp.accept()
                    with conn:
                        conn.settimeout(2)
                        try:
                            received.append(conn.recv(1024) or b"tcp-connected")
                        except OSError:
                            received.append(b"tcp-connected")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield tcp.getsockname()[1], udp.getsockname()[1], received
    stop.set()
    thread.join()
    tcp.close()
    udp.close()


def test_attack_a_step_without_network_reaches_no_host_service_over_tcp_or_udp(
    tmp_path: Path, ws: Path, listeners: tuple[int, int, list[bytes]]
) -> None:
    tcp_port, udp_port, received = listeners
    ops = [["connect", f"127.0.0.1|{tcp_port}"], ["udp", f"127.0.0.1|{udp_port}"]]
    code, _record, report, err = _probe_run(tmp_path, ws, ops)
    assert code == 0, err
    seen = _outcomes(report)
    # bubblewrap: a new network namespace (its own loopback, nobody listening); Landlock: TCP connect denied,
    # and a new network namespace for the rest.
    assert seen[f"connect 127.0.0.1|{tcp_port}"].startswith("err:"), seen
    time.sleep(0.3)
    assert received == [], f"the host's listeners heard the step: {received}"
    # The same probe with network = true does reach them: the listeners work and the test can fail.
    code, _record, report, err = _probe_run(tmp_path / "online", ws, ops, network=True)
    assert code == 0, err
    assert _outcomes(report)[f"connect 127.0.0.1|{tcp_port}"] == "ok"
    deadline = time.monotonic() + 5
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b"tcp-lodec-probe-packet" in received and b"udp-lodec-probe-packet" in received


def test_attack_a_step_cannot_inject_keystrokes_into_lodecs_terminal(tmp_path: Path, ws: Path) -> None:
    import fcntl
    import termios
    import tty

    folder = tmp_path / "stack"
    injected = "echo PWNED-BY-STEP\n"
    make_skill(folder / "skills", "probe", PROBE)
    stack = make_stack(folder, [step("probe", "probe", outputs=("report.json",),
                                     ops=json.dumps([["tiocsti", injected]]))])
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline: injected bytes stay queued on the terminal's input

    def own_terminal() -> None:  # lodec runs with the pty as its controlling terminal, as in a shell
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "lodec", "run", str(stack), "--workspace", str(ws), "--json"],
                                env=env, cwd=tmp_path, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, preexec_fn=own_terminal)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        record = json.loads(out)
        digest = record["steps"]["probe"]["artifacts"]["report.json"]["blake3"]
        report = json.loads((ws / ".lodec" / "cas" / "blake3" / digest[:2] / digest[2:]).read_text())
        outcome = _outcomes(report)[f"tiocsti {injected}"]
        # bubblewrap: a new session has no controlling terminal (ENXIO); Landlock: /dev/tty is not allowed.
        assert outcome.startswith("err:"), outcome
        os.set_blocking(slave, False)
        try:
            queued = os.read(slave, 1024)
        except BlockingIOError:
            queued = b""
        assert b"PWNED" not in queued, f"keystrokes reached lodec's terminal: {queued!r}"
    finally:
        os.close(master)
        os.close(slave)


# ------------------------------------------------------------------ planted files


@pytest.mark.parametrize("planted", ["link", "fifo", "both"])
def test_attack_outputs_planted_as_links_or_fifos_are_refused_unread(tmp_path: Path, ws: Path, home: Path,
                                                                     planted: str) -> None:
    # Each alone too: with both planted, either refusal would hide the other one's absence.
    folder = tmp_path / "stack"
    body = (('os.symlink(os.path.expanduser("~/.ssh/id_ed25519"), os.path.join(OUT, "a.txt"))\n'
             if planted != "fifo" else 'write("a.txt", "plain\\n")\n')
            + ('os.mkfifo(os.path.join(OUT, "b.txt"))\n' if planted != "link" else 'write("b.txt", "plain\\n")\n')
            + 'print("planted")\n')
    make_skill(folder / "skills", "planter", body, env=("HOME",))
    stack = make_stack(folder, [step("plant", "planter", outputs=("a.txt", "b.txt"))])
    started = time.monotonic()
    code, record, err = run_json(stack, ws)
    assert code == 1 and time.monotonic() - started < 20  # no hang on the FIFO
    assert record["steps"]["plant"]["reason"] == "output_undeclared"
    assert record["steps"]["plant"]["artifacts"] == {}
    assert _nowhere(ws / ".lodec", CANARY) == []


def test_attack_a_step_cannot_plant_a_link_at_its_own_log(tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODEC_TEST_WITHHELD", CANARY)
    runs = ws / ".lodec" / "runs"
    # Its own log, at the real path (the run id is in its environment): lodec would read a link planted there.
    ops = [["symlink", f"/proc/1/environ|{runs}/$LODEC_RUN_ID/steps/probe/stdout.log"], ["list", str(runs)]]
    code, record, report, err = _probe_run(tmp_path, ws, ops)
    assert code == 0, err
    seen = _outcomes(report)
    assert all(v.startswith("err:") for v in seen.values()), seen
    assert record["steps"]["probe"]["headline"] == "probed"
    assert CANARY not in json.dumps(record)


# ------------------------------------------------------------------ discard


def test_discard_during_a_run_is_refused_and_deletes_nothing(tmp_path: Path, ws: Path) -> None:
    folder = tmp_path / "stack"
    make_skill(folder / "skills", "quick", 'write("out.txt", "same bytes\\n")\n')
    stack = make_stack(folder, [step("quick", "quick")])
    code, first, err = run_json(stack, ws)
    assert code == 0, err
    folder2 = tmp_path / "stack2"
    make_skill(folder2 / "skills", "slow", 'time.sleep(3)\nwrite("out.txt", "same bytes\\n")\n')
    stack2 = make_stack(folder2, [step("slow", "slow")], name="slow-stack")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "lodec", "run", str(stack2), "--workspace", str(ws)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        runs = ws / ".lodec" / "runs"
        while len(list(runs.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        code, _out, err = run_cli("runs", "discard", first["run"], "--workspace", ws)
        assert code == 1 and "[runs_busy]" in err
        assert (runs / first["run"] / "run.json").exists()
    finally:
        _out, errb = proc.communicate(timeout=30)
    assert proc.returncode == 0, errb.decode()
    # The live run stored the same bytes the first run had: the blob survives the later discard of the first.
    code, _out, err = run_cli("runs", "discard", first["run"], "--workspace", ws)
    assert code == 0, err
    code, out, err = run_cli("artifact", "slow", "--workspace", ws)
    assert code == 0 and out == "same bytes\n", err


@pytest.mark.parametrize("entry", ["/tmp", "/dev", "/proc/self", "/run"])
def test_attack_a_path_entry_naming_tmp_or_proc_does_not_show_the_hosts(
    tmp_path: Path, ws: Path, home: Path, monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    """lodec shows the folders on ``PATH`` to steps read-only (the commands they run). An entry that is a folder
    the sandbox makes itself (``/tmp`` on someone's PATH, ``/dev``, ``/proc/self``, ``/run``) would be bound over
    the sandbox's own: the host's /tmp, with this test's fake home and its private key in it. Such entries are
    not shown; the key stays unreadable."""
    if not os.path.isdir(entry):
        pytest.skip(f"{entry} is not a folder here")
    monkeypatch.setenv("PATH", f"{entry}{os.pathsep}{os.environ['PATH']}")
    key = home / ".ssh" / "id_ed25519"
    code, record, report, err = _probe_run(tmp_path, ws, [["read", str(key)], ["read", str(ws / ".env")]])
    assert code == 0, err
    seen = _outcomes(report)
    assert seen[f"read {key}"].startswith("err:") and seen[f"read {ws / '.env'}"].startswith("err:"), seen
    assert _nowhere(ws / ".lodec", CANARY) == []


def test_attack_path_entries_naming_folders_the_sandbox_makes_are_never_shown() -> None:
    """The unit behind the attack above, for a workspace outside /tmp (the tests' own live under it, which
    already keeps /tmp from being shown): none of /tmp, /var/tmp, /dev, /proc/..., /run/... is a tool folder."""
    from lodec.run.sandbox import _tool_dirs_for

    entries = ["/tmp", "/var/tmp", "/dev", "/dev/shm", "/proc/self", "/sys", "/run", "/run/user"]
    shown = _tool_dirs_for((Path("/nonexistent-workspace"),), (), os.pathsep.join(entries))
    assert not [d for d in shown if str(d) in entries or str(d).startswith(("/proc", "/dev", "/run", "/sys"))], shown
