"""Fuzz the DSSE envelope parser (``lodec.sign.dsse.parse_envelope``) and the signed-payload parser.

An envelope that parses is serialised and parsed again (same envelope), and
its signatures are checked against the harness's fixed key. The same bytes
also go to ``lodec.sign.statement.parse_statement`` (the payload parser).
"""

import atheris

with atheris.instrument_imports(include=["lodec"]):
    from _common import fixed_key, main
    from lodec.errors import LodecError
    from lodec.sign.dsse import parse_envelope
    from lodec.sign.policy import policy_from_keys
    from lodec.sign.statement import parse_statement
    from lodec.sign.trust import check_signatures

RULE = policy_from_keys([fixed_key().public]).rules[0]


def test_one_input(data: bytes) -> None:
    try:
        envelope = parse_envelope(data)
    except LodecError:
        pass
    else:
        assert parse_envelope(envelope.to_json()) == envelope
        check_signatures(envelope, RULE)
        try:
            parse_statement(envelope.payload)
        except LodecError:
            pass
    try:
        parse_statement(data)
    except LodecError:
        pass


if __name__ == "__main__":
    main(test_one_input)
