"""Shared pieces of the atheris harnesses: fixed inputs and the expected-exception rule.

Every harness treats ``lodec.errors.LodecError`` (and its subclasses) as the
expected way to refuse input and lets any other exception escape, which
atheris reports as a crash (with the input written to ``crash-<sha1>``).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOLDEN = json.loads((ROOT / "tests" / "golden" / "seed-vectors.json").read_text())
STEPS_DIR = ROOT / "stacks" / "code-review" / "steps"
MANIFEST = ROOT / "stacks" / "code-review" / "code-review-stack.json"

#: The reference time of signed verification in the harnesses.
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
#: A fixed Ed25519 key (RFC 8032 test 1 secret), so seeds signed with it verify.
KEY_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def seed_step_veins() -> dict[str, bytes]:
    """The seed pipeline's step veins (golden vectors), by step name."""
    return {name: bytes.fromhex(v["hex"]) for name, v in GOLDEN["steps"].items()}


def fixed_key():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lodec.sign.keys import PrivateKey, _public

    k = Ed25519PrivateKey.from_private_bytes(KEY_SEED)
    return PrivateKey(k, _public(k.public_key(), "<fuzz key>"))


def main(test_one_input) -> None:  # type: ignore[no-untyped-def]
    import atheris

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
