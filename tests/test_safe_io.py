"""lodec opens only what it means to, writes all or nothing, and locks where two commands meet.

- ``read_bounded`` / ``open_regular``: ``O_NOFOLLOW | O_NONBLOCK``, then a
  regular file on the open descriptor; links are followed only when the
  caller says the user named the path (``docs/errors.md`` §Links and
  special files);
- ``atomic_write`` / ``atomic_write_many``: a read-only or vanished
  directory, a directory at the target, a full disk are one ``FileUnwritable``
  naming the path, with no temp file left and the target as it was;
- ``locked``: co-signers and concurrent verifications lose nothing;
- one test per attack (``test_<thing>_planted_at_<place>_...``), each run in
  a subprocess with a timeout so that a hang fails the test, not the suite.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import lodec
from lodec.errors import FileMissing, FileUnreadable, FileUnwritable
from lodec.files import (
    LINK_MESSAGE,
    atomic_write,
    atomic_write_many,
    locked,
    open_regular,
    read_bounded,
)

from .conftest import EXPIRES, ROOT, SIGNED_AT, VERIFY_AT, sign_cli, unavailable

#: Every subprocess must answer within this many seconds (a FIFO that blocks an open hangs forever).
ANSWER_SECONDS = 5


# ------------------------------------------------------------------ helpers


def run(argv: Sequence[str | os.PathLike[str]], *, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = ANSWER_SECONDS) -> tuple[int, str, str]:
    """Run ``argv``; a hang (over ``timeout`` seconds) fails the test."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    try:
        proc = subprocess.run([os.fspath(a) for a in argv], cwd=cwd, env=full_env, capture_output=True,
                              check=False, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {timeout} s (blocked on a FIFO?): {argv}")
    return proc.returncode, proc.stdout, proc.stderr


def lodec_argv(*args: str | os.PathLike[str]) -> list[str | os.PathLike[str]]:
    return [sys.executable, "-m", "lodec", *args]


def python_argv(code: str) -> list[str | os.PathLike[str]]:
    return [sys.executable, "-c", code]


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit 1, one line on stderr, no traceback, every needle in it; returns the line."""
    assert code == 1, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temp files atomic writes would leave behind (``.NAME.*.tmp``)."""
    return sorted(p.name for p in folder.rglob("*.tmp"))


def _namespace_ok() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    try:
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10, check=False)
        return probe.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


NAMESPACES = _namespace_ok()


@contextmanager
def read_only(folder: Path, argv: Sequence[str | os.PathLike[str]]) -> Iterator[list[str | os.PathLike[str]]]:
    """``argv`` wrapped so that ``folder`` is read-only for it.

    Root writes into a mode-0555 folder anyway, so as root the folder is
    bind-mounted read-only in a private mount namespace (gone with the
    process); otherwise the folder is made 0555 for the block.
    """
    if NAMESPACES:
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        yield ["unshare", "-m", "sh", "-c", script, folder, *argv]
        return
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders, and no mount namespace here")
    folder.chmod(0o555)
    try:
        yield list(argv)
    finally:
        folder.chmod(0o755)


def on_tiny_tmpfs(folder: Path, argv: Sequence[str | os.PathLike[str]]) -> list[str | os.PathLike[str]]:
    """``argv`` run with a full 8 KiB tmpfs at ``folder`` (private mount namespace; root only)."""
    if not NAMESPACES:
        pytest.skip("a tmpfs needs root and a mount namespace")
    script = 'mount -t tmpfs -o size=8k tmpfs "$0" && (head -c 65536 /dev/zero > "$0/fill" 2>/dev/null; exec "$@")'
    return ["unshare", "-m", "sh", "-c", script, folder, *argv]


def make_stack(folder: Path, version: str = "1.0.0", name: str = "code-review-pipeline") -> Path:
    """The seed stack compiled into ``folder`` (``steps/`` and ``stack.json``)."""
    from .conftest import SEED_SOURCES

    schema = lodec.skill_step_schema()
    (folder / "steps").mkdir(parents=True)
    veins = []
    for step, source in SEED_SOURCES.items():
        vein = lodec.compile_file(source, schema)
        (folder / "steps" / f"{step}.vein").write_bytes(vein.data)
        veins.append(vein)
    manifest = lodec.build_manifest(veins, name=name, version=version, description="d", entry="lint", metadata={})
    path = folder / "stack.json"
    path.write_bytes(lodec.manifest_json(manifest))
    return path


def make_keys(folder: Path, count: int) -> list[Path]:
    """``count`` Ed25519 key pairs ``k<i>.key`` / ``k<i>.pub``; returns the path prefixes."""
    from lodec.sign.keys import generate_key, private_key_pem

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        k = generate_key()
        (folder / f"k{i}.key").write_bytes(private_key_pem(k))
        (folder / f"k{i}.pub").write_bytes(k.public.pem())
        out.append(folder / f"k{i}")
    return out


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """``LODEC_HOME`` for subprocesses (tmp_path is outside any git repository: the state lives there)."""
    return {"LODEC_HOME": str(tmp_path / "home")}


# ------------------------------------------------------------------ read_bounded


def test_read_bounded_refuses_a_fifo_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    code, out, err = run(python_argv(
        "import sys\nfrom lodec.files import read_bounded\nfrom lodec.errors import FileUnreadable\n"
        "try:\n    read_bounded(sys.argv[1], 10)\nexcept FileUnreadable as e:\n    print(e.code, e.message)\n"
    ) + [tmp_path / "fifo"], cwd=tmp_path)
    assert (code, out.strip()) == (0, "file_unreadable not a regular file (a FIFO)"), err


def test_read_bounded_refuses_a_symbolic_link_with_file_link(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"data")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(FileUnreadable) as info:
        read_bounded(tmp_path / "link", 10)
    assert info.value.to_dict() == {"code": "file_link", "file": str(tmp_path / "link"), "location": None,
                                    "message": LINK_MESSAGE}
    (tmp_path / "dangling").symlink_to(tmp_path / "absent")
    with pytest.raises(FileUnreadable) as dangling:
        read_bounded(tmp_path / "dangling", 10)  # a link, not "no such file"
    assert dangling.value.code == "file_link"


def test_read_bounded_follows_a_link_the_user_named_once(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"data")
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "chain").symlink_to("link")
    assert read_bounded(tmp_path / "chain", 10, follow=True) == b"data"
    with pytest.raises(FileMissing) as missing:
        read_bounded(tmp_path / "absent", 10, follow=True)
    assert missing.value.file == str(tmp_path / "absent")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "to-fifo").symlink_to("fifo")
    with pytest.raises(FileUnreadable) as fifo:
        read_bounded(tmp_path / "to-fifo", 10, follow=True)  # followed, still not a regular file
    assert (fifo.value.message, fifo.value.file) == ("not a regular file (a FIFO)", str(tmp_path / "to-fifo"))


def test_read_bounded_names_sockets_and_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative socket name: AF_UNIX paths are short
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind("sock")
        with pytest.raises(FileUnreadable) as sock:
            read_bounded("sock", 10)
        assert sock.value.message == "not a regular file (a socket)"
    finally:
        server.close()
    with pytest.raises(FileUnreadable) as device:
        read_bounded("/dev/null", 10)
    assert device.value.message == "not a regular file (a character device)"
    with pytest.raises(FileUnreadable) as directory:
        read_bounded(tmp_path, 10)
    assert directory.value.message == "not a regular file"  # unchanged for directories


def test_open_regular_streams_a_regular_file_and_refuses_the_rest(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"x" * 100)
    with open_regular(tmp_path / "real") as fh:
        assert fh.read() == b"x" * 100
    (tmp_path / "link").symlink_to("real")
    with pytest.raises(FileUnreadable) as link, open_regular(tmp_path / "link"):
        pass
    assert link.value.code == "file_link"
    with open_regular(tmp_path / "link", follow=True) as fh:
        assert len(fh.read()) == 100
    with pytest.raises(FileMissing), open_regular(tmp_path / "absent"):
        pass


# ------------------------------------------------------------------ atomic writes


def test_atomic_write_onto_a_directory_is_file_unwritable(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(FileUnwritable) as info:
        atomic_write(tmp_path / "out", b"data")
    assert info.value.file == str(tmp_path / "out") and info.value.code == "file_unwritable"
    assert (tmp_path / "out").is_dir() and leftovers(tmp_path) == []
    with pytest.raises(FileUnwritable) as many:
        atomic_write_many([(tmp_path / "a", b"a"), (tmp_path / "out", b"b")])
    assert many.value.file == str(tmp_path / "out")
    assert leftovers(tmp_path) == [] and (tmp_path / "out").is_dir()


def _enospc(*_: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_atomic_write_on_a_full_disk_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "write", _enospc)
    with pytest.raises(FileUnwritable) as info:
        atomic_write(target, b"new" * 1000)
    monkeypatch.undo()
    assert (info.value.file, info.value.message) == (str(target), os.strerror(errno.ENOSPC))
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_atomic_write_many_on_a_full_disk_leaves_every_target_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_bytes(b"old a")
    real_write = os.write
    calls = []

    def write_then_fill(fd: int, data: bytes) -> int:
        calls.append(fd)
        if len(calls) > 1:  # the disk fills up while staging the second file
            return _enospc()
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write_then_fill)
    with pytest.raises(FileUnwritable) as info:
        atomic_write_many([(tmp_path / "a", b"new a"), (tmp_path / "sub" / "b", b"new b")])
    monkeypatch.undo()
    assert info.value.file == str(tmp_path / "sub" / "b")
    assert (tmp_path / "a").read_bytes() == b"old a" and not (tmp_path / "sub" / "b").exists()
    assert leftovers(tmp_path) == []


def test_atomic_write_when_the_parent_vanishes_is_file_unwritable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "gone" / "x.vein"
    real_fsync = os.fsync

    def fsync_then_vanish(fd: int) -> None:
        real_fsync(fd)
        shutil.rmtree(tmp_path / "gone")  # another process removes the folder before the rename

    monkeypatch.setattr(os, "fsync", fsync_then_vanish)
    with pytest.raises(FileUnwritable) as info:
        atomic_write(target, b"data")
    monkeypatch.undo()
    assert info.value.file == str(target)
    assert not (tmp_path / "gone").exists() and leftovers(tmp_path) == []


def test_atomic_write_replaces_a_link_and_never_writes_through_it(tmp_path: Path) -> None:
    (tmp_path / "victim").write_bytes(b"victim")
    (tmp_path / "out").symlink_to(tmp_path / "victim")
    atomic_write(tmp_path / "out", b"data")
    assert not (tmp_path / "out").is_symlink() and (tmp_path / "out").read_bytes() == b"data"
    assert (tmp_path / "victim").read_bytes() == b"victim"

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000, 0o777])
@pytest.mark.parametrize("mode", [0o644, 0o755, 0o600])
@pytest.mark.parametrize("many", [False, True])
def test_atomic_writes_give_exactly_the_mode_whatever_the_umask(tmp_path: Path, umask: int, mode: int,
                                                                many: bool) -> None:
    targets = [tmp_path / "sub" / "a.vein", tmp_path / "sub" / "b.vein"]
    old = os.umask(umask)
    try:
        if many:
            atomic_write_many([(t, t.name.encode()) for t in targets], mode=mode)
        else:
            for t in targets:
                atomic_write(t, t.name.encode(), mode=mode)
    finally:
        os.umask(old)
    assert [stat.S_IMODE(t.stat().st_mode) for t in targets] == [mode, mode]
    assert [t.read_bytes() for t in targets] == [b"a.vein", b"b.vein"] and leftovers(tmp_path) == []


@pytest.mark.parametrize("many", [False, True])
def test_symlinks_planted_at_the_predictable_temp_names_are_never_written_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, many: bool
) -> None:
    """Temp names come from the pid and a counter; a link (or any file) already at one is skipped, not opened."""
    import itertools

    import lodec.files as files

    victim = tmp_path / "victim"
    victim.write_bytes(b"victim")
    victim.chmod(0o600)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(files, "_counter", itertools.count())
    targets = [out / "a.vein", out / "b.vein"] if many else [out / "a.vein"]
    planted = []
    for target in targets:
        for n in range(5):  # the first names each write would try, all taken
            link = out / f".{target.name}.{((os.getpid() << 16) + n) & 0xFFFFFFFF:08x}.tmp"
            link.symlink_to(victim)
            planted.append(link)
    if many:
        atomic_write_many([(t, b"data") for t in targets])
    else:
        atomic_write(targets[0], b"data")
    assert victim.read_bytes() == b"victim" and stat.S_IMODE(victim.stat().st_mode) == 0o600  # not fchmod-ed
    assert [t.read_bytes() for t in targets] == [b"data"] * len(targets)
    assert all(p.is_symlink() and os.readlink(p) == str(victim) for p in planted)
    assert sorted(p.name for p in out.iterdir() if not p.is_symlink()) == sorted(t.name for t in targets)


def test_atomic_write_into_a_read_only_directory_is_file_unwritable(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "x").write_bytes(b"old")
    script = (
        "import sys\nfrom lodec.files import atomic_write, atomic_write_many\nfrom lodec.errors import FileUnwritable\n"
        "for call in (lambda: atomic_write(sys.argv[1] + '/x', b'new'),\n"
        "             lambda: atomic_write_many([(sys.argv[1] + '/x', b'n'), (sys.argv[1] + '/y', b'n')])):\n"
        "    try:\n        call()\n    except FileUnwritable as e:\n        print(e.code, e.file)\n"
    )
    with read_only(ro, python_argv(script) + [ro]) as argv:
        code, out, err = run(argv, cwd=tmp_path)
    assert code == 0 and out.split("\n")[:2] == [f"file_unwritable {ro}/x"] * 2, (out, err)
    assert (ro / "x").read_bytes() == b"old" and not (ro / "y").exists() and leftovers(ro) == []


def test_atomic_write_on_a_really_full_tmpfs_is_file_unwritable(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    script = (
        "import os, sys\nfrom lodec.files import atomic_write\nfrom lodec.errors import FileUnwritable\n"
        "try:\n    atomic_write(sys.argv[1] + '/x', b'y' * 65536)\nexcept FileUnwritable as e:\n"
        "    print(e.code, e.message)\n"
        "print(sorted(n for n in os.listdir(sys.argv[1]) if n != 'fill'))\n"
    )
    code, out, err = run(on_tiny_tmpfs(full, python_argv(script) + [full]), cwd=tmp_path)
    assert code == 0 and out.splitlines() == [f"file_unwritable {os.strerror(errno.ENOSPC)}", "[]"], (out, err)


def test_cli_compile_into_a_read_only_directory_is_one_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro, lodec_argv("compile", ROOT / "steps" / "lint-step.json", "-o", ro / "x.vein")) as argv:
        code, _out, err = run(argv, cwd=tmp_path)
    assert_one_line_error(code, err, str(ro / "x.vein"), "[file_unwritable]")
    assert list(ro.iterdir()) == []


def test_cli_compile_on_a_full_disk_is_one_line(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    code, _out, err = run(on_tiny_tmpfs(full, lodec_argv("compile", ROOT / "steps" / "lint-step.json",
                                                        "-o", full / "x.vein")), cwd=tmp_path)
    assert_one_line_error(code, err, str(full / "x.vein"), os.strerror(errno.ENOSPC), "[file_unwritable]")


def test_cli_verify_with_the_state_in_a_read_only_directory_is_one_line(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    stack = make_stack(tmp_path / "s")
    sign_cli(stack, keys["alice"], "--expires", EXPIRES)
    ro = tmp_path / "ro"
    ro.mkdir()
    argv = lodec_argv("verify", stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT,
                      "--state", ro / "trusted-stacks.json")
    with read_only(ro, argv) as wrapped:
        code, _out, err = run(wrapped, cwd=tmp_path)
    assert_one_line_error(code, err, str(ro), "[file_unwritable]")
    assert list(ro.iterdir()) == []


def test_cli_sign_into_a_read_only_stack_folder_is_one_line(tmp_path: Path, keys: dict[str, Path]) -> None:
    stack = make_stack(tmp_path / "s")
    argv = lodec_argv("sign", stack, "--key", f"{keys['alice']}.key", "--now", SIGNED_AT)
    with read_only(stack.parent, argv) as wrapped:
        code, _out, err = run(wrapped, cwd=tmp_path)
    assert_one_line_error(code, err, "[file_unwritable]")
    assert sorted(p.name for p in stack.parent.iterdir()) == ["stack.json", "steps"]


# ------------------------------------------------------------------ locks


def test_locked_refuses_a_link_or_a_fifo_at_the_lock_file(tmp_path: Path) -> None:
    (tmp_path / "victim").write_bytes(b"")
    (tmp_path / "a.lock").symlink_to(tmp_path / "victim")
    with pytest.raises(FileUnwritable) as link, locked(tmp_path / "a.lock"):
        pass
    assert (link.value.code, link.value.message) == ("file_link", LINK_MESSAGE)
    os.mkfifo(tmp_path / "b.lock")
    with pytest.raises(FileUnwritable) as fifo, locked(tmp_path / "b.lock"):
        pass
    assert fifo.value.message == "lock file is not a regular file (a FIFO)"


def test_locked_serialises_threads_and_removes_its_file(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    counter.write_text("0")
    lock = tmp_path / "n.lock"

    def bump() -> None:
        for _ in range(20):
            with locked(lock, remove=True):
                n = int(counter.read_text())
                time.sleep(0.0005)  # widen the window a lost update needs
                counter.write_text(str(n + 1))

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "120" and not lock.exists()


def test_eight_concurrent_signers_lose_no_signature(tmp_path: Path) -> None:
    stack = make_stack(tmp_path / "s")
    keys = make_keys(tmp_path / "keys", 8)
    procs = [
        subprocess.Popen([sys.executable, "-m", "lodec", "sign", str(stack), "--key", f"{k}.key", "--now", SIGNED_AT,
                          "--expires", EXPIRES], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in keys
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    envelope = json.loads((tmp_path / "s" / "stack.json.dsse").read_text())
    assert len(envelope["signatures"]) == 8
    assert not (tmp_path / "s" / "stack.json.dsse.lock").exists()
    trusted = [arg for k in keys for arg in ("--key", f"{k}.pub")]
    code, _out, err = run(lodec_argv("verify", stack, *trusted, "--threshold", "8", "--now", VERIFY_AT,
                                    "--state", tmp_path / "state.json"), cwd=tmp_path, timeout=30)
    assert code == 0, err


def test_concurrent_verifications_leave_the_highest_version_recorded(tmp_path: Path, keys: dict[str, Path]) -> None:
    versions = [f"1.{i}.0" for i in range(8)]
    stacks = []
    for version in versions:
        stack = make_stack(tmp_path / version, version)
        sign_cli(stack, keys["alice"], "--expires", EXPIRES)
        stacks.append(stack)
    state = tmp_path / "state" / "trusted-stacks.json"
    procs = [
        subprocess.Popen([sys.executable, "-m", "lodec", "verify", str(s), "--key", f"{keys['alice']}.pub",
                          "--now", VERIFY_AT, "--state", str(state)], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for s in reversed(stacks)  # the highest starts first: the lower ones may then be refused (rollback)
    ]
    results = [(p.communicate(timeout=60), p.returncode) for p in procs]
    assert results[0][1] == 0, results[0]
    for (out, err), code in results:
        assert code == 0 or "rollback" in out + err, (out, err)
    recorded = json.loads(state.read_text())["stacks"]["code-review-pipeline"]
    assert recorded["version"] == versions[-1]


# ------------------------------------------------------------------ attacks: FIFOs


def _verify_json(stack: Path, *args: str | os.PathLike[str], env: dict[str, str], cwd: Path) -> dict:
    code, out, err = run(lodec_argv("verify", "--json", stack, *args), cwd=cwd, env=env)
    assert code == 1 and "Traceback" not in err, (out, err)
    return json.loads(out)


def test_fifo_planted_at_a_step_vein_is_refused_without_hanging(tmp_path: Path, home: dict[str, str]) -> None:
    stack = make_stack(tmp_path / "s")
    vein = stack.parent / "steps" / "lint.vein"
    vein.unlink()
    os.mkfifo(vein)
    report = _verify_json(stack, env=home, cwd=tmp_path)
    assert report["ok"] is False
    problem = next(p for p in report["problems"] if p["step"] == "lint")
    assert problem["code"] == "file_unreadable" and "not a regular file (a FIFO)" in problem["message"]


@pytest.mark.parametrize(("plant", "says"), [(os.mkfifo, "not a regular file (a FIFO)"),
                                            (os.mkdir, "not a regular file")], ids=["fifo", "directory"])
def test_fifo_or_directory_planted_at_the_envelope_is_one_line_error_without_hanging(
    tmp_path: Path, keys: dict[str, Path], home: dict[str, str], plant: Any, says: str
) -> None:
    stack = make_stack(tmp_path / "s")
    envelope = stack.with_name("stack.json.dsse")
    plant(envelope)
    kind = stat.S_IFMT(envelope.lstat().st_mode)
    code, _, err = run(lodec_argv("verify", stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT),
                       cwd=tmp_path, env=home)
    assert_one_line_error(code, err, "stack.json.dsse", says, "[file_unreadable]")
    code, _, err = run(lodec_argv("sign", stack, "--key", f"{keys['alice']}.key", "--now", SIGNED_AT),
                       cwd=tmp_path, env=home)
    assert_one_line_error(code, err, "stack.json.dsse", says, "[file_unreadable]")
    assert stat.S_IFMT(envelope.lstat().st_mode) == kind  # left as planted
    assert not stack.with_name("stack.json.dsse.lock").exists() and leftovers(stack.parent) == []


def test_fifo_planted_at_the_rollback_state_is_refused_without_hanging(
    tmp_path: Path, keys: dict[str, Path], home: dict[str, str]
) -> None:
    stack = make_stack(tmp_path / "s")
    sign_cli(stack, keys["alice"], "--expires", EXPIRES)
    state = Path(home["LODEC_HOME"]) / "trusted-stacks.json"
    state.parent.mkdir()
    os.mkfifo(state)
    code, out, err = run(lodec_argv("verify", stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT),
                         cwd=tmp_path, env=home)
    assert_one_line_error(code, err, str(state), "not a regular file (a FIFO)", "[file_unreadable]")
    assert "Verified" not in out


def test_fifo_planted_at_a_policy_file_is_refused_without_hanging(
    tmp_path: Path, keys: dict[str, Path], home: dict[str, str]
) -> None:
    stack = make_stack(tmp_path / "s")
    sign_cli(stack, keys["alice"], "--expires", EXPIRES)
    policy = tmp_path / "trust.toml"
    os.mkfifo(policy)
    code, _, err = run(lodec_argv("verify", stack, "--policy", policy, "--now", VERIFY_AT), cwd=tmp_path, env=home)
    assert_one_line_error(code, err, "trust.toml", "not a regular file (a FIFO)", "[file_unreadable]")


def test_fifo_planted_at_a_cas_blob_is_refused_without_hanging(tmp_path: Path) -> None:
    from lodec.store.cas import Store

    store = Store(tmp_path / "cas")
    digest = store.put(b"artifact")
    blob = store.path(digest.blake3)
    blob.unlink()
    os.mkfifo(blob)
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from lodec.store.cas import Store\nfrom lodec.errors import FileUnreadable\n"
        "store = Store(Path(sys.argv[1]))\n"
        "for call in (lambda: store.check(sys.argv[2]), lambda: store.read(sys.argv[2], 1 << 20)):\n"
        "    try:\n        print('answered', call())\n"
        "    except FileUnreadable as e:\n        print(e.code, e.message)\n"
        "print('put', store.put(b'artifact').blake3 == sys.argv[2], store.read(sys.argv[2], 1 << 20)[0])\n"
    )
    code, out, err = run(python_argv(script) + [store.root, digest.blake3], cwd=tmp_path)
    assert code == 0, err
    assert out.splitlines() == ["file_unreadable not a regular file (a FIFO)"] * 2 + ["put True verified"]


def test_fifo_planted_at_a_run_record_is_refused_without_hanging(tmp_path: Path) -> None:
    run_dir = tmp_path / "state" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    os.mkfifo(run_dir / "run.json")
    script = (
        "import sys\nfrom pathlib import Path\nfrom lodec.errors import RunError\n"
        "from lodec.store.records import read_run\nfrom lodec.store.workspace import Workspace\n"
        "state = Path(sys.argv[1])\n"
        "try:\n    read_run(Workspace(state.parent, state, state), 'r1')\n"
        "except RunError as e:\n    print(e.code, e)\n"
    )
    code, out, err = run(python_argv(script) + [tmp_path / "state"], cwd=tmp_path)
    assert code == 0 and out.startswith("run_invalid ") and "not a regular file (a FIFO)" in out, (out, err)
    assert len(out.strip().splitlines()) == 1


# ------------------------------------------------------------------ attacks: links and directories


@pytest.mark.parametrize("points_to", ["the same vein elsewhere", "another step's vein"])
def test_symlink_planted_at_a_step_vein_is_refused(tmp_path: Path, home: dict[str, str], points_to: str) -> None:
    stack = make_stack(tmp_path / "s")
    vein = stack.parent / "steps" / "lint.vein"
    if points_to == "the same vein elsewhere":  # the bytes would verify: only the link is wrong
        (tmp_path / "elsewhere").mkdir()
        vein.rename(tmp_path / "elsewhere" / "lint.vein")
        vein.symlink_to(tmp_path / "elsewhere" / "lint.vein")
    else:
        vein.unlink()
        vein.symlink_to("ai-review.vein")
    report = _verify_json(stack, env=home, cwd=tmp_path)
    assert report["ok"] is False
    problem = next(p for p in report["problems"] if p["step"] == "lint")
    assert problem["code"] == "file_link" and LINK_MESSAGE in problem["message"]


def test_symlink_planted_at_the_rollback_state_is_refused(
    tmp_path: Path, keys: dict[str, Path], home: dict[str, str]
) -> None:
    old, new = make_stack(tmp_path / "old", "1.0.0"), make_stack(tmp_path / "new", "2.0.0")
    for stack in (old, new):
        sign_cli(stack, keys["alice"], "--expires", EXPIRES)
    verify = ["--key", f"{keys['alice']}.pub", "--now", VERIFY_AT]
    code, _, err = run(lodec_argv("verify", new, *verify), cwd=tmp_path, env=home)
    assert code == 0, err
    state = Path(home["LODEC_HOME"]) / "trusted-stacks.json"
    assert json.loads(state.read_text())["stacks"]["code-review-pipeline"]["version"] == "2.0.0"
    # The attacker swaps the state for a link to a state of their choosing (nothing recorded), to roll back.
    chosen = tmp_path / "attacker.json"
    chosen.write_text('{"format": "lodec-trusted-stacks-v1", "stacks": {}}')
    state.unlink()
    state.symlink_to(chosen)
    code, out, err = run(lodec_argv("verify", old, *verify), cwd=tmp_path, env=home)
    assert_one_line_error(code, err, str(state), LINK_MESSAGE, "[file_link]")
    assert "Verified" not in out
    assert state.is_symlink() and json.loads(chosen.read_text())["stacks"] == {}
    code, _, err = run(lodec_argv("verify", old, *verify, "--state", state), cwd=tmp_path, env=home)
    assert_one_line_error(code, err, LINK_MESSAGE)  # named with --state: still refused


def test_symlink_planted_at_the_envelope_beside_the_manifest_is_refused(
    tmp_path: Path, keys: dict[str, Path], home: dict[str, str]
) -> None:
    stack = make_stack(tmp_path / "s")
    sign_cli(stack, keys["alice"], "--expires", EXPIRES)
    envelope = stack.with_name("stack.json.dsse")
    envelope.rename(tmp_path / "elsewhere.dsse")
    envelope.symlink_to(tmp_path / "elsewhere.dsse")
    code, _, err = run(lodec_argv("verify", stack, "--key", f"{keys['alice']}.pub", "--now", VERIFY_AT),
                       cwd=tmp_path, env=home)
    assert_one_line_error(code, err, "stack.json.dsse", "[file_link]")
    code, _, err = run(lodec_argv("sign", stack, "--key", f"{keys['bob']}.key", "--now", SIGNED_AT),
                       cwd=tmp_path, env=home)
    assert_one_line_error(code, err, "stack.json.dsse", "[file_link]")
    assert len(json.loads((tmp_path / "elsewhere.dsse").read_text())["signatures"]) == 1


def test_symlink_planted_at_a_cas_blob_never_chmods_or_reads_its_target(tmp_path: Path) -> None:
    from lodec.store.cas import Store

    store = Store(tmp_path / "cas")
    digest = store.put(b"artifact")
    blob = store.path(digest.blake3)
    victim = tmp_path / "victim"
    victim.write_bytes(b"artifact")  # even the right bytes: a link is not a blob
    victim.chmod(0o600)
    os.chmod(blob, 0o644)
    blob.unlink()
    blob.symlink_to(victim)
    with pytest.raises(FileUnreadable) as check:
        store.check(digest.blake3)
    assert check.value.code == "file_link"
    with pytest.raises(FileUnreadable):
        store.read(digest.blake3, 1 << 20)
    assert store.put(b"artifact") == digest  # replaces the link with the blob
    assert not blob.is_symlink() and store.read(digest.blake3, 1 << 20) == ("verified", b"artifact")
    assert victim.stat().st_mode & 0o777 == 0o600


# ------------------------------------------------------------------ links the user named


def test_key_policy_and_named_envelope_given_as_links_are_followed(
    tmp_path: Path, keys: dict[str, Path], home: dict[str, str]
) -> None:
    stack = make_stack(tmp_path / "s")
    (tmp_path / "alice.key").symlink_to(f"{keys['alice']}.key")
    (tmp_path / "alice.pub").symlink_to(f"{keys['alice']}.pub")
    envelope = tmp_path / "release.dsse"
    (tmp_path / "real").mkdir()
    envelope.symlink_to(tmp_path / "real" / "release.dsse")
    code, _, err = run(lodec_argv("sign", stack, "--key", tmp_path / "alice.key", "--envelope", envelope,
                                  "--now", SIGNED_AT, "--expires", EXPIRES), cwd=tmp_path, env=home)
    assert code == 0, err
    assert envelope.is_symlink() and (tmp_path / "real" / "release.dsse").is_file()
    assert not (tmp_path / "real" / "release.dsse.lock").exists()
    real_policy = tmp_path / "real" / "trust.toml"
    real_policy.write_text(f'version = 1\n\n[keys]\nalice = "{keys["alice"]}.pub"\n\n'
                           '[[rules]]\nstacks = "*"\nkeys = ["alice"]\nthreshold = 1\n')
    (tmp_path / "trust.toml").symlink_to(real_policy)
    shutil.copy(tmp_path / "real" / "release.dsse", stack.with_name("stack.json.dsse"))
    code, _, err = run(lodec_argv("verify", stack, "--policy", tmp_path / "trust.toml", "--now", VERIFY_AT),
                       cwd=tmp_path, env=home)
    assert code == 0, err
    code, _, err = run(lodec_argv("verify", stack, "--key", tmp_path / "alice.pub", "--now", VERIFY_AT),
                       cwd=tmp_path, env=home)
    assert code == 0, err


# ------------------------------------------------------------------ what the user names


def test_fifo_named_as_the_target_is_refused_without_hanging(tmp_path: Path, home: dict[str, str]) -> None:
    os.mkfifo(tmp_path / "stack.json")
    code, _out, err = run(lodec_argv("verify", tmp_path / "stack.json"), cwd=tmp_path, env=home)
    assert_one_line_error(code, err, "not a regular file (a FIFO)", "[file_unreadable]")


def test_a_stack_the_user_names_through_a_link_is_followed(tmp_path: Path, home: dict[str, str]) -> None:
    # The user's own link (current.json -> stack.json) is resolved once; what lodec finds by itself
    # (steps/ beside the path as named) stays link-free.
    stack = make_stack(tmp_path / "release")
    (tmp_path / "release" / "current.json").symlink_to(stack.name)
    code, out, err = run(lodec_argv("verify", tmp_path / "release" / "current.json"), cwd=tmp_path, env=home)
    assert code == 0 and out.startswith("Verified code-review-pipeline 1.0.0"), err


def test_cli_run_with_a_read_only_state_directory_is_one_line(tmp_path: Path, home: dict[str, str]) -> None:
    from tests.runkit import make_skill, make_stack as make_run_stack, step

    make_skill(tmp_path / "stack" / "skills", "ok")
    stack = make_run_stack(tmp_path / "stack", [step("a", "ok")])
    state = tmp_path / "home"
    (state / "runs").mkdir(parents=True)
    (tmp_path / "ws").mkdir()
    argv = lodec_argv("run", stack, "--workspace", tmp_path / "ws")
    with read_only(state, argv) as wrapped:
        code, _out, err = run(wrapped, cwd=tmp_path, env=home, timeout=60)
    assert_one_line_error(code, err, "[file_unwritable]")
    assert list((state / "runs").iterdir()) == []


def test_a_file_whose_size_is_not_what_fstat_said_is_read_to_its_end_and_still_bounded() -> None:
    """``/proc`` files report size 0 but have content, as a file that grew after the ``fstat`` would: the
    read goes on to the end, and the bound still holds."""
    from lodec.errors import LimitExceeded

    path = "/proc/self/status"
    if not os.path.exists(path) or os.stat(path).st_size != 0:
        unavailable("needs procfs (/proc/self/status of size 0)")
    data = read_bounded(path, 1 << 20)
    assert data.startswith(b"Name:") and b"\nUmask:" in data
    with pytest.raises(LimitExceeded):
        read_bounded(path, 16)
