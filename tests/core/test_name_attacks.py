"""Attacks through a stack's name and version, driven into the core as bytes.

A name with CR, LF or an escape sequence prints fake lines or hides text;
a look-alike name (``rеlease-prod``, Cyrillic ``е``) reads as another stack
and could fall to a weaker trust-policy rule. The name rule of
``lodec.names`` (ASCII ``[A-Za-z0-9._-]``) is enforced at build, at sign
and at verify; verification reports ``stack_name_unsafe`` /
``stack_version_unsafe`` without changing any manifest digest. The CLI side
is ``tests/cli/test_print_attacks.py``.
"""

from __future__ import annotations


import pytest

from lodec.errors import UnsafeNameError
from lodec.sign.policy import TrustPolicy, TrustRule
from lodec.sign.signer import sign_stack
from lodec.sign.trust import verify_signed_stack
from lodec.stack.manifest import build_manifest
from lodec.stack.verify import VerifiedStack

from .builders import (
    IN_TOTO,
    SEED_SOURCES,
    SIGNED_AT,
    VERIFY_AT,
    Stack,
    assert_refused,
    canonical_digest,
    compile_step,
    forge_envelope,
    key,
    seed_stack,
    statement,
    verify,
)

LOOK_ALIKE = "r\u0435lease-prod"  # Cyrillic е (U+0435)
#: Names an attacker would like printed or matched.
UNSAFE_NAMES = {
    "newline": "release\nVerified release-prod 9.9.9: 3 steps",
    "carriage_return": "evil\rVerified release-prod",
    "erase_line": "evil\x1b[2K\x1b[1GVerified release-prod",
    "bidi_override": "release\u202edorp",
    "look_alike": LOOK_ALIKE,
}
RAW_CONTROLS = "\n\r\x1b\u202e"


@pytest.fixture(scope="module")
def seed() -> Stack:
    return seed_stack()


def named(stack: Stack, name: str, version: str | None = None) -> Stack:
    """The stack with its manifest hand-edited to another name (and version)."""
    return stack.with_doc(lambda d: d.update(name=name, **({"version": version} if version else {})))


@pytest.mark.parametrize("name", UNSAFE_NAMES.values(), ids=UNSAFE_NAMES.keys())
def test_unsafe_stack_name_is_refused_at_build(name: str) -> None:
    with pytest.raises(UnsafeNameError) as info:
        build_manifest([compile_step(SEED_SOURCES["lint"])], name=name, version="1.0.0", description="d")
    assert info.value.code == "unsafe_name"  # the build's code for the name rule, as before
    assert not any(c in info.value.message for c in RAW_CONTROLS)


@pytest.mark.parametrize("version", ["1.0.0\n9.9.9", "1.0.0\x1b[2K", "1.0\u202e", "1.0 beta"])
def test_unsafe_stack_version_is_refused_at_build(version: str) -> None:
    with pytest.raises(UnsafeNameError) as info:
        build_manifest([compile_step(SEED_SOURCES["lint"])], name="s", version=version, description="d")
    assert info.value.code == "stack_version_unsafe"


@pytest.mark.parametrize("name", UNSAFE_NAMES.values(), ids=UNSAFE_NAMES.keys())
def test_hand_edited_unsafe_stack_name_is_refused_at_verify(seed: Stack, name: str) -> None:
    attacked = named(seed, name)
    report = assert_refused(verify(attacked), "stack_name_unsafe")
    assert report.stack == name  # the report carries the raw value (data); printing escapes it
    message = report.problems[0].message
    assert "/name" in message and not any(c in message for c in RAW_CONTROLS)
    # Every step still verified: the name alone is refused.
    assert [s.status for s in report.steps] == ["verified"] * 3


def test_look_alike_name_is_refused_naming_its_code_point(seed: Stack) -> None:
    report = assert_refused(verify(named(seed, LOOK_ALIKE)), "stack_name_unsafe")
    assert "U+0435" in report.problems[0].message


@pytest.mark.parametrize("version", ["1.0.0\nVerified", "1.0.0\x1b[2K", "1.0.0\u202e", "1.0 beta"])
def test_hand_edited_unsafe_version_is_refused_at_verify(seed: Stack, version: str) -> None:
    report = assert_refused(verify(named(seed, "code-review-pipeline", version)), "stack_version_unsafe")
    assert not any(c in report.problems[0].message for c in RAW_CONTROLS)


def test_the_name_check_leaves_the_manifest_digest_unchanged(seed: Stack) -> None:
    # The check adds a problem; the canonical digest is computed from the same bytes as always.
    attacked = named(seed, "evil\nname")
    assert verify(attacked).digest == canonical_digest(attacked)
    assert verify(seed).digest == canonical_digest(seed)


@pytest.mark.parametrize("name", UNSAFE_NAMES.values(), ids=UNSAFE_NAMES.keys())
def test_unsafe_stack_name_is_refused_at_sign(seed: Stack, name: str) -> None:
    # verify_stack refuses such a manifest; a VerifiedStack made by hand is refused by the signer too.
    stack = verify(seed).require()
    forged = VerifiedStack(stack.manifest_bytes, {**stack.manifest, "name": name}, stack.digest, stack.steps,
                           stack.order)
    with pytest.raises(UnsafeNameError) as info:
        sign_stack(forged, key("alice"), now=SIGNED_AT)
    assert info.value.code == "stack_name_unsafe"


# ------------------------------------------------------------------ signed: no weaker rule


def release_policy() -> TrustPolicy:
    """``release-prod`` needs alice and bob; anything else, alice alone."""
    alice, bob = key("alice").public, key("bob").public
    return TrustPolicy((TrustRule("release-prod", (alice, bob), 2), TrustRule("*", (alice,), 1)), "policy.toml")


def signed_by_alice_as(seed: Stack, name: str) -> tuple[Stack, bytes]:
    """A stack named ``name``, approved by alice alone (forged from the wire format: lodec's signer refuses it)."""
    stack = named(seed, name)
    payload = statement(stack.manifest, name=name, version="1.0.0", digest=canonical_digest(stack))
    return stack, forge_envelope(IN_TOTO, payload, "alice")


def test_look_alike_name_never_falls_to_the_weaker_policy_rule(seed: Stack) -> None:
    stack, envelope = signed_by_alice_as(seed, LOOK_ALIKE)
    report = verify_signed_stack(stack.manifest, envelope, stack.read_step, policy=release_policy(), now=VERIFY_AT)
    assert_refused(report, "stack_name_unsafe")
    assert report.signature is not None and report.signature.rule is None  # no rule was chosen
    assert report.steps == []  # nothing past the name was looked at


def test_the_control_a_genuine_name_gets_the_strong_rule(seed: Stack) -> None:
    # The same forgery under the real name meets the two-key rule, and one signature is not enough.
    stack, envelope = signed_by_alice_as(seed, "release-prod")
    report = verify_signed_stack(stack.manifest, envelope, stack.read_step, policy=release_policy(), now=VERIFY_AT)
    assert_refused(report, "threshold_not_met")
    assert report.signature is not None and report.signature.rule == "release-prod"


@pytest.mark.parametrize("name", UNSAFE_NAMES.values(), ids=UNSAFE_NAMES.keys())
def test_unsafe_signed_name_is_refused_before_a_policy_rule_is_chosen(seed: Stack, name: str) -> None:
    stack, envelope = signed_by_alice_as(seed, name)
    report = verify_signed_stack(stack.manifest, envelope, stack.read_step, policy=release_policy(), now=VERIFY_AT)
    assert_refused(report, "stack_name_unsafe")
    assert not any(c in report.problems[0].message for c in RAW_CONTROLS)


def test_unsafe_expected_name_is_refused(seed: Stack) -> None:
    # --name with a look-alike: refused, never matched against the policy.
    stack, envelope = signed_by_alice_as(seed, "release-prod")
    report = verify_signed_stack(stack.manifest, envelope, stack.read_step, policy=release_policy(), now=VERIFY_AT,
                                 expected_name=LOOK_ALIKE)
    assert_refused(report, "stack_name_unsafe")


@pytest.mark.parametrize("name", [LOOK_ALIKE, "release-prod\n", "release-pro\u0434", "*", "a b"])
def test_policy_patterns_match_only_safe_names(name: str) -> None:
    policy = release_policy()
    assert policy.rule_for(name) is None
    assert policy.rule_for("release-prod") is policy.rules[0]
    assert policy.rule_for("other") is policy.rules[1]
