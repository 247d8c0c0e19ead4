"""The command line's side of verify's refusals: every attack of the threat model (design.md) that
``lodec verify`` must stop, as a user sees it.

Each builds the seed stack in a temp dir, applies one attack, and checks that
`lodec verify` rejects the whole stack (exit 1, one line per problem, no
traceback) with the expected stable code. The core judges the same attacks
from bytes in ``tests/core/test_verify_attacks.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lodec
from lodec.format.codec import header
from lodec.errors import LimitExceeded
from lodec.limits import Limits
from lodec.stack.verify import verify_stack

from tests.conftest import ROOT, run_cli


def rejected(manifest: Path, *codes: str) -> dict:
    code, out, err = run_cli("verify", "--json", manifest)
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    found = {p["code"] for p in report["problems"]}
    for c in codes:
        assert c in found, (c, report["problems"])
    code2, _, err2 = run_cli("verify", manifest)
    assert code2 == 1 and "Traceback" not in err2 and "nothing may run" in err2
    return report


def repin(manifest: Path, source: bytes, *, drop_entry: bool = False) -> None:
    """An insider's swap: compile a new step, write it, and update its pin in the manifest."""
    vein = lodec.compile_source(source, lodec.skill_step_schema())
    (manifest.parent / "steps" / f"{vein.record['stepName']}.vein").write_bytes(vein.data)
    data = load(manifest)
    data["stepFingerprints"][vein.record["stepName"]] = vein.fingerprint
    if drop_entry:
        data.pop("entryPoint")
    save(manifest, data)


def load(manifest: Path) -> dict:
    return json.loads(manifest.read_text())


def save(manifest: Path, data: dict) -> None:
    manifest.write_bytes(lodec.manifest_json(data))


def test_untouched_seed_stack_verifies(seed_stack: Path) -> None:
    code, out, _ = run_cli("verify", "--json", seed_stack)
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["problems"] == []
    assert [s["status"] for s in report["steps"]] == ["verified"] * 3


def test_edited_byte_in_step_is_refused(seed_stack: Path) -> None:
    vein = seed_stack.parent / "steps" / "lint.vein"
    data = bytearray(vein.read_bytes())
    i = data.index(b".eslintrc")
    data[i + 1] = ord("E")  # same length, still canonical: only the fingerprint can tell
    vein.write_bytes(bytes(data))
    report = rejected(seed_stack, "step_tampered")
    lint = next(p for p in report["problems"] if p["code"] == "step_tampered")
    assert lint["message"].startswith('Step "lint" tampered: expected blake3:')
    assert ", got blake3:" in lint["message"]


def test_edited_byte_message_matches_seed_wording(seed_stack: Path) -> None:
    vein = seed_stack.parent / "steps" / "lint.vein"
    data = vein.read_bytes().replace(b"lint-report", b"lint-rep0rt")
    vein.write_bytes(data)
    _, _, err = run_cli("verify", seed_stack)
    expected = load(seed_stack)["stepFingerprints"]["lint"]
    actual = lodec.decode_vein(data, lodec.skill_step_schema()).fingerprint
    assert f'Step "lint" tampered: expected {expected}, got {actual}' in err


def test_swapped_step_from_another_stack_is_refused(seed_stack: Path, tmp_path: Path) -> None:
    # Another stack has its own, validly compiled "lint" step.
    other = lodec.compile_source(
        b'{"stepName":"lint","skillRef":"skill:evil","inputs":{"configPath":"/etc/passwd"}}', lodec.skill_step_schema()
    )
    (seed_stack.parent / "steps" / "lint.vein").write_bytes(other.data)
    rejected(seed_stack, "step_tampered")


def test_added_step_without_pin_is_refused(seed_stack: Path) -> None:
    extra = lodec.compile_source(b'{"stepName":"deploy","skillRef":"skill:deploy","dependsOn":["ai-review"]}', lodec.skill_step_schema())
    (seed_stack.parent / "steps" / "deploy.vein").write_bytes(extra.data)
    data = load(seed_stack)
    data["steps"].append("deploy")
    save(seed_stack, data)
    report = rejected(seed_stack, "missing_pin")
    assert {"name": "deploy", "status": "unpinned", "expected": None, "actual": extra.fingerprint} in report["steps"]


def test_added_pin_without_step_is_refused(seed_stack: Path) -> None:
    data = load(seed_stack)
    data["stepFingerprints"]["deploy"] = "blake3:" + "ab" * 32
    save(seed_stack, data)
    rejected(seed_stack, "unlisted_pin")


def test_added_dependency_on_unknown_step_is_refused(seed_stack: Path) -> None:
    # A step swapped for a validly pinned one that depends on a step outside the stack.
    repin(seed_stack, b'{"stepName":"lint","skillRef":"skill:eslint-check","dependsOn":["fetch-secrets"]}')
    rejected(seed_stack, "dangling_dependency", "entry_point_invalid")


def test_removed_step_file_is_refused(seed_stack: Path) -> None:
    (seed_stack.parent / "steps" / "static-analysis.vein").unlink()
    report = rejected(seed_stack, "step_missing")
    statuses = {s["name"]: s["status"] for s in report["steps"]}
    assert statuses["static-analysis"] == "missing"


def test_removed_step_from_manifest_is_refused(seed_stack: Path) -> None:
    data = load(seed_stack)
    data["steps"].remove("static-analysis")
    del data["stepFingerprints"]["static-analysis"]
    save(seed_stack, data)
    # ai-review still depends on it: the DAG is no longer closed.
    rejected(seed_stack, "dangling_dependency")


def test_renamed_step_is_refused(seed_stack: Path) -> None:
    steps = seed_stack.parent / "steps"
    (steps / "lint.vein").rename(steps / "lint2.vein")
    data = load(seed_stack)
    data["steps"][0] = "lint2"
    data["stepFingerprints"] = {("lint2" if k == "lint" else k): v for k, v in data["stepFingerprints"].items()}
    data["entryPoint"] = "lint2"
    save(seed_stack, data)
    report = rejected(seed_stack, "step_renamed")
    assert any("holds stepName 'lint'" in p["message"] for p in report["problems"])


def test_swapped_schema_is_refused(seed_stack: Path) -> None:
    # Same body, header claiming another schema: refused before decoding.
    vein = seed_stack.parent / "steps" / "lint.vein"
    data = vein.read_bytes()
    other = lodec.parse_schema(
        (ROOT / "schemas" / "skill-step-v1.lode").read_bytes().replace(b'"version": 1', b'"version": 2')
    )
    vein.write_bytes(header(other) + data[13:])
    rejected(seed_stack, "schema_mismatch")


def test_swapped_schema_changes_fingerprint() -> None:
    # A schema with the same field ids but another meaning cannot reuse a pin.
    source = (ROOT / "steps" / "lint-step.json").read_bytes()
    renamed = lodec.parse_schema(
        (ROOT / "schemas" / "skill-step-v1.lode").read_bytes().replace(b'"skillRef"', b'"command"')
    )
    a = lodec.compile_source(source, lodec.skill_step_schema())
    b = lodec.compile_source(source.replace(b'"skillRef"', b'"command"'), renamed)
    assert a.body == b.body and a.fingerprint != b.fingerprint


def test_non_canonical_reencoding_of_same_record_is_refused(seed_stack: Path) -> None:
    vein = seed_stack.parent / "steps" / "lint.vein"
    data = vein.read_bytes()
    # Same record, stepName "lint" written with a non-shortest length (0x78 0x04).
    assert data[13:15] == b"\xa4\x01"
    forged = data[:15] + b"\x78\x04" + data[16:]
    vein.write_bytes(forged)
    report = rejected(seed_stack, "step_malformed")
    assert "non_canonical" in report["problems"][0]["message"]


def test_unsorted_reencoding_of_same_record_is_refused(seed_stack: Path) -> None:
    vein = seed_stack.parent / "steps" / "lint.vein"
    record = lodec.decode_vein(vein.read_bytes(), lodec.skill_step_schema()).record
    import cbor2

    body = cbor2.dumps({5: record["outputs"], 1: "lint", 2: record["skillRef"], 4: record["inputs"]})
    vein.write_bytes(vein.read_bytes()[:13] + body)
    report = rejected(seed_stack, "step_malformed")
    assert "unsorted_keys" in report["problems"][0]["message"]


def test_trailing_bytes_are_refused(seed_stack: Path) -> None:
    vein = seed_stack.parent / "steps" / "lint.vein"
    vein.write_bytes(vein.read_bytes() + b"\x00")
    report = rejected(seed_stack, "step_malformed")
    assert "trailing_bytes" in report["problems"][0]["message"]


@pytest.mark.parametrize("evil", ["../lint", "/etc/passwd", "a/../../b", "..", "lint\x00x", ""])
def test_path_escaping_step_name_in_manifest_is_refused(seed_stack: Path, evil: str) -> None:
    data = load(seed_stack)
    data["steps"].append(evil)
    data["stepFingerprints"][evil] = "blake3:" + "00" * 32
    save(seed_stack, data)
    report = rejected(seed_stack, "unsafe_name")
    assert {"name": evil, "status": "unsafe_name", "expected": "blake3:" + "00" * 32, "actual": None} in report["steps"]


def test_path_escaping_step_name_is_never_read() -> None:
    reads: list[str] = []
    manifest = json.dumps({
        "name": "s", "version": "1", "description": "d", "steps": ["../../etc/passwd"],
        "stepFingerprints": {"../../etc/passwd": "blake3:" + "00" * 32},
    }).encode()
    report = verify_stack(manifest, lambda name: reads.append(name) or None)
    assert not report.ok and reads == []


def test_path_escaping_step_name_refused_at_compile(tmp_path: Path) -> None:
    src = tmp_path / "evil.json"
    src.write_text('{"stepName": "../../outside", "skillRef": "skill:x"}')
    code, _, err = run_cli("compile", src, "-o", f"{tmp_path}/out/")
    assert code == 1 and "/stepName" in err and "unsafe_name" in err
    assert not (tmp_path / "outside.vein").exists() and not (tmp_path / "out").exists()


def test_oversized_step_is_refused_before_reading(seed_stack: Path) -> None:
    vein = seed_stack.parent / "steps" / "lint.vein"
    with vein.open("ab") as fh:
        fh.truncate(Limits().max_file_bytes + 1)
    rejected(seed_stack, "limit_exceeded")


def test_oversized_manifest_is_refused(seed_stack: Path) -> None:
    with seed_stack.open("ab") as fh:
        fh.truncate(Limits().max_file_bytes + 1)
    code, _, err = run_cli("verify", seed_stack)
    assert code == 1 and "limit_exceeded" in err and err.count("\n") == 1


def test_oversized_source_is_refused_at_compile(tmp_path: Path) -> None:
    src = tmp_path / "big.json"
    src.write_bytes(b'{"stepName":"x","skillRef":"' + b"a" * (2 * 1024 * 1024) + b'"}')
    code, _, err = run_cli("compile", src, "-o", tmp_path / "x.vein")
    assert code == 1 and "limit_exceeded" in err and not (tmp_path / "x.vein").exists()


def test_limit_is_checked_in_core_for_reader_bytes() -> None:
    with pytest.raises(LimitExceeded):
        lodec.decode_vein(b"VEIN" + b"\x00" * 100, lodec.skill_step_schema(), limits=Limits(max_file_bytes=64))


def test_cycle_smuggled_into_manifest_is_refused(seed_stack: Path) -> None:
    # lint now depends on ai-review, which is listed after it: the one-pass check fails, the full analysis runs.
    repin(seed_stack, b'{"stepName":"lint","skillRef":"skill:eslint-check","dependsOn":["ai-review"]}', drop_entry=True)
    report = rejected(seed_stack, "cycle")
    assert any("lint" in p["message"] and "->" in p["message"] for p in report["problems"] if p["code"] == "cycle")


def test_entry_point_that_is_not_a_root_is_refused(seed_stack: Path) -> None:
    data = load(seed_stack)
    data["entryPoint"] = "ai-review"
    save(seed_stack, data)
    rejected(seed_stack, "entry_point_invalid")


def test_malformed_pin_is_refused(seed_stack: Path) -> None:
    data = load(seed_stack)
    data["stepFingerprints"]["lint"] = data["stepFingerprints"]["lint"].upper()
    save(seed_stack, data)
    rejected(seed_stack, "pin_malformed")


def test_manifest_with_duplicate_keys_is_refused(seed_stack: Path) -> None:
    text = seed_stack.read_text().replace('"version": "1.0.0",', '"version": "1.0.0", "version": "9.9.9",')
    seed_stack.write_text(text)
    report = rejected(seed_stack, "manifest_invalid")
    assert "/version" in report["problems"][0]["message"]


def test_every_problem_is_reported_not_just_the_first(seed_stack: Path) -> None:
    steps = seed_stack.parent / "steps"
    (steps / "lint.vein").write_bytes((steps / "lint.vein").read_bytes() + b"\x00")
    (steps / "ai-review.vein").unlink()
    report = rejected(seed_stack, "step_malformed", "step_missing")
    assert len(report["problems"]) == 2


def test_every_single_bit_flip_of_lint_step_is_refused(seed_stack: Path) -> None:
    vein = seed_stack.parent / "steps" / "lint.vein"
    original = vein.read_bytes()
    assert len(original) <= 92
    for i in range(len(original)):
        for bit in range(8):
            flipped = bytearray(original)
            flipped[i] ^= 1 << bit
            vein.write_bytes(bytes(flipped))
            code, out, err = run_cli("verify", seed_stack)
            assert code == 1, (i, bit)
            assert "Traceback" not in err and "nothing may run" in err
    vein.write_bytes(original)
    assert run_cli("verify", seed_stack)[0] == 0


def test_bit_flip_refused_by_real_process(seed_stack: Path) -> None:
    import subprocess
    import sys

    vein = seed_stack.parent / "steps" / "lint.vein"
    data = bytearray(vein.read_bytes())
    data[40] ^= 0x01
    vein.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "lodec", "verify", str(seed_stack)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and 'Step "lint"' in proc.stderr


def test_manifest_listing_steps_out_of_topological_order_still_checks_graph(seed_stack: Path) -> None:
    # Reordering alone is harmless; the full graph analysis still runs and finds nothing.
    data = load(seed_stack)
    data["steps"] = list(reversed(data["steps"]))
    save(seed_stack, data)
    code, out, _ = run_cli("verify", "--json", seed_stack)
    assert code == 0 and json.loads(out)["ok"] is True
    report = lodec.verify_stack_files(seed_stack)
    assert report.require().order == ("lint", "static-analysis", "ai-review")


def test_self_dependency_smuggled_into_manifest_is_refused(seed_stack: Path) -> None:
    repin(seed_stack, b'{"stepName":"lint","skillRef":"skill:eslint-check","dependsOn":["lint"]}', drop_entry=True)
    rejected(seed_stack, "self_dependency")


@pytest.mark.parametrize("envelope", [b'{"payload":', b'{"payloadType": "application/vnd.in-toto+json", '
                                      b'"payload": "bm90IGpzb24=", "signatures": []}'])
def test_a_bad_envelope_problem_line_names_its_code_once(seed_stack: Path, envelope: bytes, tmp_path: Path) -> None:
    key = tmp_path / "k"
    assert run_cli("key", "generate", key)[0] == 0
    seed_stack.with_name(seed_stack.name + ".dsse").write_bytes(envelope)
    code, _out, err = run_cli("verify", seed_stack, "--key", f"{key}.pub")
    assert code == 1
    line = next(line for line in err.splitlines() if ".dsse" in line)
    codes = [part.split("]")[0] for part in line.split("[")[1:]]
    assert len(codes) == 1 and codes[0].startswith(("envelope_", "statement_", "signature")), line
