"""The application layer, called as the Python API calls it: typed options in, typed results out.

``verify_target`` is the one verification every command shares; these tests
drive it (and the run-record reader) with files an attacker controls, and
check the verdict, what it records in the workspace, and the typed shapes.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from lodec.app.options import OptionsError, TrustOptions
from lodec.app.signing import pack_manifest, sign_manifest
from lodec.app.verify import UNCHECKED_NOTE, NotVerified, verify_target
from lodec.errors import RunError
from lodec.sign.statement import parse_time
from lodec.store.records import RUN_FORMAT, latest_run, parse_run
from lodec.store.workspace import Workspace
from tests.conftest import VERIFY_AT


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(root=tmp_path / "ws", state=tmp_path / "state", home=tmp_path / "home")


def _trust(keys: dict[str, Path], *names: str, threshold: int | None = None) -> TrustOptions:
    return TrustOptions(keys=tuple(f"{keys[n]}.pub" for n in names), threshold=threshold,
                        now=parse_time(VERIFY_AT))


def test_signed_verification_records_the_version_in_the_workspace(
    signed_stack: Path, keys: dict[str, Path], workspace: Workspace
) -> None:
    result = verify_target(str(signed_stack), workspace, _trust(keys, "alice", "bob", threshold=2))
    assert result.ok and result.recorded == workspace.rollback_state
    assert result.report.signature is not None and result.report.signature.threshold == 2
    stack = result.require()
    assert stack.envelope is not None and len(stack.signed_by) == 2
    state = json.loads(workspace.rollback_state.read_text())
    assert state["stacks"]["code-review-pipeline"]["digest"] == stack.digest



def test_verifying_an_already_recorded_version_again_leaves_the_state_and_its_lock_alone(
    signed_stack: Path, keys: dict[str, Path], workspace: Workspace
) -> None:
    import fcntl
    import os
    import threading

    trust = _trust(keys, "alice", "bob", threshold=2)
    assert verify_target(str(signed_stack), workspace, trust).ok
    before = workspace.rollback_state.read_bytes(), workspace.rollback_state.stat().st_mtime_ns
    # Another process holds the lock: a verification that took it would wait here.
    holder = os.open(workspace.rollback_lock, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        results = []
        worker = threading.Thread(target=lambda: results.append(verify_target(str(signed_stack), workspace, trust)),
                                  daemon=True)
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "the second verification waited for the rollback lock"
    finally:
        os.close(holder)
    [again] = results
    assert again.ok and again.recorded == workspace.rollback_state and not again.first_use
    assert (workspace.rollback_state.read_bytes(), workspace.rollback_state.stat().st_mtime_ns) == before

def test_unsigned_verification_of_a_signed_stack_says_so_and_records_nothing(
    signed_stack: Path, workspace: Workspace
) -> None:
    result = verify_target(str(signed_stack), workspace)
    assert result.ok and result.note == UNCHECKED_NOTE and result.recorded is None
    assert result.require().envelope is None  # not checked, so not carried as verified
    assert not workspace.state.exists()


def test_rollback_state_of_the_workspace_refuses_an_older_pack(
    signed_stack: Path, keys: dict[str, Path], workspace: Workspace, tmp_path: Path
) -> None:
    packed = pack_manifest(str(signed_stack), str(tmp_path / "v1.lodepack"))
    assert packed.signed
    workspace.state.mkdir(parents=True)
    workspace.rollback_state.write_text(json.dumps({"format": "lodec-trusted-stacks-v1", "stacks": {
        "code-review-pipeline": {"version": "2.0.0", "digest": "blake3:" + "1" * 64, "verifiedAt": VERIFY_AT}}}))
    result = verify_target(str(tmp_path / "v1.lodepack"), workspace, _trust(keys, "alice"))
    assert not result.ok and result.report.verified is None and result.recorded is None
    assert [p.code for p in result.report.problems] == ["rollback"]


def test_signature_stage_failure_carries_no_signed_result(
    signed_stack: Path, keys: dict[str, Path], workspace: Workspace
) -> None:
    result = verify_target(str(signed_stack), workspace, _trust(keys, "mallory"))
    assert not result.ok and result.report.verified is None
    sig = result.report.signature
    assert sig is not None and sig.signed_by == () and sig.envelope is None  # nothing authenticated
    assert {c.status for c in sig.signatures} == {"untrusted"}


@pytest.mark.parametrize("trust, message", [
    (TrustOptions(policy="p.toml", keys=("a.pub",)), "either --policy or --key"),
    (TrustOptions(threshold=2), "--threshold needs trusted keys"),
    (TrustOptions(expected_name="x"), "--name is checked against the signed name"),
])
def test_options_that_do_not_go_together_are_a_usage_error(
    seed_stack: Path, workspace: Workspace, trust: TrustOptions, message: str
) -> None:
    with pytest.raises(OptionsError, match=message) as caught:
        verify_target(str(seed_stack), workspace, trust)
    assert caught.value.code == "usage"


def test_signing_a_stack_that_does_not_verify_is_refused_with_every_problem(
    seed_stack: Path, keys: dict[str, Path]
) -> None:
    (seed_stack.parent / "steps" / "lint.vein").write_bytes(b"VEIN\x01garbage")
    with pytest.raises(NotVerified) as caught:
        sign_manifest(str(seed_stack), f"{keys['alice']}.key", now=datetime.now().astimezone())
    assert caught.value.code == "verification_failed" and caught.value.file == str(seed_stack)
    assert [p.code for p in caught.value.report.problems] == ["step_malformed"]
    assert not (seed_stack.parent / "code-review-stack.json.dsse").exists()


# ------------------------------------------------------------------ run records


def _record(run: str, status: str, started: str, digest: str = "blake3:" + "a" * 64) -> dict[str, object]:
    rec: dict[str, object] = {
        "format": RUN_FORMAT, "run": run, "status": status, "started": started, "order": [], "steps": {},
        "stack": {"name": "s", "version": "1.0.0", "digest": digest, "signedBy": []}, "skills": {},
        "workspace": "/w", "trust": "strict", "jobs": 2, "sandbox": "none",
    }
    if status != "running":
        rec.update(exit_code=0, ended=started, duration_ms=1.5)
    return rec


def test_a_run_that_never_finished_is_never_the_latest() -> None:
    done = parse_run(json.dumps(_record("r1", "succeeded", "2026-11-01T00:00:00Z")).encode(), file="r1")
    killed = parse_run(json.dumps(_record("r2", "running", "2026-11-02T00:00:00Z")).encode(), file="r2")
    other = parse_run(json.dumps(_record("r3", "failed", "2026-11-03T00:00:00Z", "blake3:" + "b" * 64)).encode(),
                      file="r3")
    assert latest_run([done, killed, other], "blake3:" + "a" * 64) is done
    assert latest_run([done, killed, other]) is other
    assert latest_run([killed]) is None


@pytest.mark.parametrize("mutate, where", [
    (lambda r: r.update(jobs="2"), "run.json: /jobs: "),
    (lambda r: r["stack"].pop("digest"), "run.json: /stack: "),
    (lambda r: r.update(steps={"a": {"status": "succeeded"}}), "run.json: /steps/…: "),
])
def test_a_forged_run_record_of_the_wrong_shape_is_refused(mutate, where: str) -> None:  # type: ignore[no-untyped-def]
    rec = _record("r1", "succeeded", "2026-11-01T00:00:00Z")
    mutate(rec)
    with pytest.raises(RunError) as caught:
        parse_run(json.dumps(rec).encode(), file="run.json")
    assert caught.value.code == "run_invalid" and caught.value.file == "run.json"
    assert str(caught.value).startswith(where), str(caught.value)


def test_a_run_record_with_duplicate_keys_is_refused() -> None:
    data = json.dumps(_record("r1", "succeeded", "2026-11-01T00:00:00Z")).encode()
    data = data.replace(b'"status": "succeeded"', b'"status": "succeeded", "status": "failed"')
    with pytest.raises(RunError) as caught:
        parse_run(data, file="run.json")
    assert caught.value.code == "run_invalid" and "duplicate" in caught.value.message


def test_workspace_copy_keeps_its_own_state(signed_stack: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    first = Workspace(root=tmp_path, state=tmp_path / "one", home=tmp_path / "home")
    second = Workspace(root=tmp_path, state=tmp_path / "two", home=tmp_path / "home")
    assert verify_target(str(signed_stack), first, _trust(keys, "alice")).ok
    assert first.rollback_state.exists() and not second.rollback_state.exists()


@pytest.mark.parametrize("step_name", ["../escaped", "../../escaped", "/tmp/escaped", "sub/escaped", "..", ".hidden",
                                       "escaped\n", "r\u0435lease"])
def test_attack_a_step_name_leading_out_of_the_compile_output_folder_writes_nothing(
        tmp_path: Path, step_name: str) -> None:
    """In folder mode a record's stepName names its output file: a name that is not a safe name is refused
    (``unsafe_name``, naming the source and /stepName) and nothing is written, inside the folder or out of it."""
    from lodec.app.build import compile_sources
    from lodec.errors import LodecError

    base = tmp_path / "a" / "b"
    base.mkdir(parents=True)
    good = base / "good.json"
    good.write_text(json.dumps({"stepName": "good", "skillRef": "skill:x"}))
    evil = base / "evil.json"
    evil.write_text(json.dumps({"stepName": step_name, "skillRef": "skill:x"}))
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(LodecError) as caught:
        compile_sources([str(good), str(evil)], str(base / "out"), None)
    assert caught.value.code == "unsafe_name" and caught.value.file == str(evil)
    assert caught.value.location == "/stepName"
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not Path("/tmp/escaped.vein").exists()


@pytest.mark.parametrize("victim_holds", ["the same vein", "other bytes"])
def test_attack_output_veins_planted_as_links_are_replaced_not_written_through(tmp_path: Path,
                                                                               victim_holds: str) -> None:
    """Links planted at compile's targets (several sources: the batched write) are replaced by regular files;
    the files they point to are never written, even when one already holds exactly the vein (then leaving the
    link alone would pass for "unchanged")."""
    from lodec.app.build import compile_sources

    sources = []
    for name in ("one", "two"):
        src = tmp_path / f"{name}.json"
        src.write_text(json.dumps({"stepName": name, "skillRef": "skill:x"}))
        sources.append(str(src))
    out = tmp_path / "out"
    expected = {c.target: c.vein.data for c in compile_sources(sources, str(out), None)}
    for target in expected:
        Path(target).unlink()
    victims = {}
    for target, data in expected.items():
        victim = tmp_path / f"victim-{Path(target).name}"
        victim.write_bytes(data if victim_holds == "the same vein" else b"victim")
        victims[victim] = victim.read_bytes()
        Path(target).symlink_to(victim)
    compile_sources(sources, str(out), None)
    for target, data in expected.items():
        assert not Path(target).is_symlink() and Path(target).read_bytes() == data
    assert {v: v.read_bytes() for v in victims} == victims
