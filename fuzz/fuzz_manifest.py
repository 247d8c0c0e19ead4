"""Fuzz manifest loading and verification (``lodec.verify.verify_stack``) on manifest bytes.

Steps are the seed pipeline's golden veins. ``verify_stack`` never raises for
bad input (every problem goes into the report), so here *any* exception is a
crash; a report that is ``ok`` must carry a ``VerifiedStack`` whose pinned
fingerprints are the golden veins' fingerprints.
"""

import json

import atheris

with atheris.instrument_imports(include=["lodec"]):
    from _common import GOLDEN, main, seed_step_veins
    from lodec.verify import verify_stack

STEPS = seed_step_veins()
FINGERPRINTS = {name: v["fingerprint"] for name, v in GOLDEN["steps"].items()}


def test_one_input(data: bytes) -> None:
    report = verify_stack(data, STEPS.get)
    if report.ok:
        stack = report.verified
        assert stack is not None and not report.problems
        for name, vein in stack.steps.items():
            assert vein.fingerprint == FINGERPRINTS[name]
    else:
        assert report.problems and report.verified is None
    json.dumps(report.to_dict())  # what `lodec verify --json` prints


if __name__ == "__main__":
    main(test_one_input)
