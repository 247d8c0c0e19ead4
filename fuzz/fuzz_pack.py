"""Fuzz the pack reader (``lodec.pack.read_pack``) and pack verification.

A pack that reads is verified twice: unsigned, and signed under a policy
trusting the harness's fixed key (so mutated signed packs reach the DSSE and
statement checks). ``verify_pack`` reports problems rather than raising; only
``LodecError`` (e.g. a malformed schema member) may escape it.
"""

import atheris

with atheris.instrument_imports(include=["lodec"]):
    from _common import NOW, fixed_key, main
    from lodec.errors import LodecError
    from lodec.pack import read_pack, verify_pack
    from lodec.sign.policy import policy_from_keys

POLICY = policy_from_keys([fixed_key().public])


def test_one_input(data: bytes) -> None:
    try:
        pack = read_pack(data)
    except LodecError:
        return
    for policy in (None, POLICY):
        try:
            report = verify_pack(pack, policy=policy, now=NOW)
        except LodecError:
            return
        assert report.ok == (report.verified is not None)


if __name__ == "__main__":
    main(test_one_input)
