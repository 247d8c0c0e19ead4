"""Attacks on an unsigned stack, driven into the verification core as bytes.

One test per attack of the threat model (``docs/design.md``; the CLI
versions are ``tests/cli/test_verify_rejections.py``). Each builds the seed stack in
memory (manifest bytes plus step veins by name), applies one attack, calls
``lodec.stack.verify.verify_stack`` directly and checks all or nothing:
``report.ok`` is false, ``report.verified`` is ``None``, and the problems
carry exactly the attack's stable codes (``docs/errors.md``), so each test
fails if the check that stops its attack is removed. No files, no CLI: the
core is judged on the bytes an attacker controls.
"""

from __future__ import annotations

import cbor2
import pytest

from lodec.errors import LimitExceeded
from lodec.format.codec import HEADER_SIZE, header
from lodec.format.schema import builtin_schema_bytes, parse_schema
from lodec.limits import Limits
from lodec.names import name_problem
from lodec.stack.verify import Problem, VerificationReport, verify_stack

from .builders import (
    SEED_SOURCES,
    Stack,
    assert_refused,
    assert_verified,
    compile_step,
    seed_stack,
    verify,
)


@pytest.fixture(scope="module")
def seed() -> Stack:
    return seed_stack()


def step_problem(report: VerificationReport, code: str) -> Problem:
    return next(p for p in report.problems if p.code == code)


def test_untouched_seed_stack_verifies(seed: Stack) -> None:
    # The control: every refusal below is caused by its attack alone.
    report = assert_verified(verify(seed))
    assert report.verified.order == ("lint", "static-analysis", "ai-review")
    assert [s.status for s in report.steps] == ["verified"] * 3


# ------------------------------------------------------------------ tamper, swap


def test_attack_edited_byte_in_a_step_is_refused(seed: Stack) -> None:
    data = bytearray(seed.steps["lint"])
    i = data.index(b".eslintrc")
    data[i + 1] = ord("E")  # same length, still canonical: only the fingerprint can tell
    report = assert_refused(verify(seed.with_step("lint", bytes(data))), "step_tampered")
    problem = step_problem(report, "step_tampered")
    assert problem.step == "lint"
    assert problem.message.startswith('Step "lint" tampered: expected blake3:') and ", got blake3:" in problem.message


def test_attack_step_swapped_for_another_valid_step_is_refused(seed: Stack) -> None:
    # Another stack's validly compiled "lint": right name, right schema, canonical, wrong pin.
    other = compile_step({"stepName": "lint", "skillRef": "skill:evil", "inputs": {"configPath": "/etc/passwd"}})
    assert_refused(verify(seed.with_step("lint", other.data)), "step_tampered")


def test_attack_step_reinterpreted_under_a_schema_with_the_same_field_ids_is_refused(seed: Stack) -> None:
    # Same bodies, re-headed for a schema that gives field 2 another meaning: the
    # fingerprint covers the schema id, so no pin carries over.
    renamed = parse_schema(builtin_schema_bytes("skill-step-v1").replace(b'"skillRef"', b'"command"'))
    reheaded = Stack(seed.manifest, {n: header(renamed) + d[HEADER_SIZE:] for n, d in seed.steps.items()})
    assert_refused(verify(reheaded, step_schema=renamed), "step_tampered", "step_tampered", "step_tampered")


def test_attack_step_with_a_swapped_schema_header_is_refused(seed: Stack) -> None:
    other = parse_schema(builtin_schema_bytes("skill-step-v1").replace(b'"version": 1', b'"version": 2'))
    data = header(other) + seed.steps["lint"][HEADER_SIZE:]
    assert_refused(verify(seed.with_step("lint", data)), "schema_mismatch")


# ------------------------------------------------------------------ add, remove, rename


def test_attack_step_added_without_a_pin_is_refused(seed: Stack) -> None:
    extra = compile_step({"stepName": "deploy", "skillRef": "skill:deploy", "dependsOn": ["ai-review"]})
    attacked = seed.with_step("deploy", extra.data).with_doc(lambda d: d["steps"].append("deploy"))
    report = assert_refused(verify(attacked), "missing_pin")
    assert [(s.name, s.status, s.actual) for s in report.steps if s.name == "deploy"] == [
        ("deploy", "unpinned", extra.fingerprint)
    ]


def test_attack_pin_added_without_a_listed_step_is_refused(seed: Stack) -> None:
    def edit(doc: dict) -> None:
        doc["stepFingerprints"]["deploy"] = "blake3:" + "ab" * 32

    assert_refused(verify(seed.with_doc(edit)), "unlisted_pin")


def test_attack_step_listed_twice_is_refused(seed: Stack) -> None:
    assert_refused(verify(seed.with_doc(lambda d: d["steps"].append("lint"))), "duplicate_step")


def test_attack_step_file_removed_is_refused(seed: Stack) -> None:
    report = assert_refused(verify(seed.without_step("static-analysis")), "step_missing")
    assert {s.name: s.status for s in report.steps}["static-analysis"] == "missing"


def test_attack_step_removed_from_the_manifest_is_refused(seed: Stack) -> None:
    def edit(doc: dict) -> None:
        doc["steps"].remove("static-analysis")
        del doc["stepFingerprints"]["static-analysis"]

    # ai-review still depends on it: the graph is no longer closed.
    report = assert_refused(verify(seed.with_doc(edit)), "dangling_dependency")
    assert step_problem(report, "dangling_dependency").step == "ai-review"


def test_attack_step_renamed_in_the_manifest_is_refused(seed: Stack) -> None:
    # The ai-review vein is served and pinned as "review"; its own stepName still says "ai-review".
    def edit(doc: dict) -> None:
        doc["steps"] = ["review" if n == "ai-review" else n for n in doc["steps"]]
        doc["stepFingerprints"] = {("review" if k == "ai-review" else k): v for k, v in doc["stepFingerprints"].items()}

    attacked = seed.without_step("ai-review").with_step("review", seed.steps["ai-review"]).with_doc(edit)
    report = assert_refused(verify(attacked), "step_renamed")
    assert "holds stepName 'ai-review'" in step_problem(report, "step_renamed").message


# ------------------------------------------------------------------ the graph


def test_attack_dependency_on_a_step_outside_the_stack_is_refused(seed: Stack) -> None:
    attacked = seed.repinned({"stepName": "lint", "skillRef": "skill:eslint-check", "dependsOn": ["fetch-secrets"]},
                             drop_entry=True)
    report = assert_refused(verify(attacked), "dangling_dependency")
    assert "fetch-secrets" in step_problem(report, "dangling_dependency").message


def test_attack_cycle_smuggled_into_the_manifest_is_refused(seed: Stack) -> None:
    # lint now depends on ai-review, listed after it: the one-pass order check fails, the full analysis runs.
    attacked = seed.repinned({"stepName": "lint", "skillRef": "skill:eslint-check", "dependsOn": ["ai-review"]},
                             drop_entry=True)
    report = verify(attacked)
    assert report.verified is None and report.ok is False
    assert {p.code for p in report.problems} == {"cycle"}
    assert all("lint" in p.message and "->" in p.message for p in report.problems)


def test_attack_self_dependency_smuggled_into_the_manifest_is_refused(seed: Stack) -> None:
    attacked = seed.repinned({"stepName": "lint", "skillRef": "skill:eslint-check", "dependsOn": ["lint"]},
                             drop_entry=True)
    # A self-loop is also the shortest cycle; both are reported.
    assert_refused(verify(attacked), "self_dependency", "cycle")


def test_attack_entry_point_that_is_not_a_root_is_refused(seed: Stack) -> None:
    assert_refused(verify(seed.with_doc(lambda d: d.update(entryPoint="ai-review"))), "entry_point_invalid")


# ------------------------------------------------------------------ non-canonical bytes


def test_attack_non_canonical_reencoding_of_the_same_record_is_refused(seed: Stack) -> None:
    data = seed.steps["lint"]
    # Same record, stepName "lint" written with a non-shortest length (0x78 0x04, not 0x64).
    assert data[HEADER_SIZE:HEADER_SIZE + 3] == b"\xa4\x01\x64"
    forged = data[:HEADER_SIZE + 2] + b"\x78\x04" + data[HEADER_SIZE + 3:]
    report = assert_refused(verify(seed.with_step("lint", forged)), "step_malformed")
    assert "[non_canonical]" in report.problems[0].message


def test_attack_unsorted_reencoding_of_the_same_record_is_refused(seed: Stack) -> None:
    lint = SEED_SOURCES["lint"]
    body = cbor2.dumps({5: lint["outputs"], 1: "lint", 2: lint["skillRef"], 4: lint["inputs"]})
    forged = seed.steps["lint"][:HEADER_SIZE] + body
    report = assert_refused(verify(seed.with_step("lint", forged)), "step_malformed")
    assert "[unsorted_keys]" in report.problems[0].message


def test_attack_trailing_bytes_after_a_step_are_refused(seed: Stack) -> None:
    report = assert_refused(verify(seed.with_step("lint", seed.steps["lint"] + b"\x00")), "step_malformed")
    assert "[trailing_bytes]" in report.problems[0].message


def test_attack_manifest_with_duplicate_keys_is_refused(seed: Stack) -> None:
    # Two parsers could see two versions; strict JSON refuses the manifest.
    text = seed.manifest.replace(b'"version": "1.0.0",', b'"version": "1.0.0", "version": "9.9.9",')
    assert text != seed.manifest
    report = assert_refused(verify(Stack(text, seed.steps)), "manifest_invalid")
    assert "/version" in report.problems[0].message and "[duplicate_key]" in report.problems[0].message


def test_attack_malformed_pin_is_refused(seed: Stack) -> None:
    def edit(doc: dict) -> None:
        doc["stepFingerprints"]["lint"] = doc["stepFingerprints"]["lint"].upper()

    assert_refused(verify(seed.with_doc(edit)), "pin_malformed")


def test_attack_every_single_bit_flip_of_a_step_is_refused(seed: Stack) -> None:
    original = seed.steps["lint"]
    allowed = {"step_tampered", "step_malformed", "schema_mismatch", "step_renamed"}
    for i in range(len(original)):
        for bit in range(8):
            flipped = bytearray(original)
            flipped[i] ^= 1 << bit
            report = verify(seed.with_step("lint", bytes(flipped)))
            assert report.ok is False and report.verified is None, (i, bit)
            found = {p.code for p in report.problems}
            # A flip may also break the graph or the entry point (a renamed dependency), never pass.
            assert found & allowed, (i, bit, found)


def test_attack_two_attacks_at_once_are_both_reported(seed: Stack) -> None:
    attacked = seed.with_step("lint", seed.steps["lint"] + b"\x00").without_step("ai-review")
    assert_refused(verify(attacked), "step_malformed", "step_missing")


# ------------------------------------------------------------------ unsafe names


@pytest.mark.parametrize("evil", ["../lint", "/etc/passwd", "a/../../b", "..", "lint\x00x", ""])
def test_attack_path_escaping_step_name_is_refused_and_never_read(seed: Stack, evil: str) -> None:
    def edit(doc: dict) -> None:
        doc["steps"].append(evil)
        doc["stepFingerprints"][evil] = "blake3:" + "00" * 32

    attacked = seed.with_doc(edit)
    reads: list[str] = []

    def read_step(name: str) -> bytes | None:
        reads.append(name)
        return attacked.read_step(name)

    report = assert_refused(verify_stack(attacked.manifest, read_step), "unsafe_name")
    assert evil not in reads
    assert [(s.name, s.status) for s in report.steps if s.name == evil] == [(evil, "unsafe_name")]
    # The message says which part of the name rule it breaks (a leading dot, a slash, NUL, empty).
    assert [p.message for p in report.problems if p.step == evil] == [
        f"step name {evil!r} is not a safe file name: {name_problem(evil)}"]


# ------------------------------------------------------------------ oversize inputs


def test_attack_oversized_manifest_is_refused_before_parsing(seed: Stack) -> None:
    huge = seed.manifest + b" " * (Limits().max_file_bytes + 1 - len(seed.manifest))
    report = assert_refused(verify(Stack(huge, seed.steps)), "manifest_invalid")
    assert "[limit_exceeded]" in report.problems[0].message


def test_attack_oversized_step_bytes_are_refused_before_decoding(seed: Stack) -> None:
    huge = seed.steps["lint"] + bytes(Limits().max_file_bytes + 1 - len(seed.steps["lint"]))
    report = assert_refused(verify(seed.with_step("lint", huge)), "step_malformed")
    assert "[limit_exceeded]" in report.problems[0].message


def test_oversized_step_refused_by_the_reader_is_reported_not_raised(seed: Stack) -> None:
    # A reader bounds what it reads (as the file loader does) and raises; the core reports it.
    def read_step(name: str) -> bytes | None:
        if name == "lint":
            raise LimitExceeded("vein is 17 MiB; the limit is 16 MiB")
        return seed.read_step(name)

    report = assert_refused(verify_stack(seed.manifest, read_step), "limit_exceeded")
    assert report.problems[0].step == "lint"


def test_every_public_verifier_is_its_checks_sealed_with_their_parameters(seed: Stack) -> None:
    import inspect

    from lodec.sign.pack import check_pack, verify_pack
    from lodec.sign.trust import check_signed_stack, verify_signed_stack
    from lodec.stack.verify import check_stack

    for verify_fn, check in ((verify_stack, check_stack), (verify_signed_stack, check_signed_stack),
                             (verify_pack, check_pack)):
        shown = inspect.signature(verify_fn)
        assert shown.parameters == inspect.signature(check).parameters and \
            shown.return_annotation == "VerificationReport", verify_fn.__name__
    # The sealed verdict: a stack whose checks pass is verified, and one problem unverifies it.
    report = verify_stack(seed.manifest, seed.read_step)
    assert report.ok and report.verified is not None
    checked, candidate = check_stack(seed.manifest, seed.read_step)
    assert checked.verified is None and candidate is not None  # no verdict before seal
