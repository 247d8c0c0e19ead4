"""The plain slotted records on the signed verify path behave as the ``@dataclass`` records they replace."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timezone

import pytest

from lodec.format.pack import Pack
from lodec.sign.dsse import Envelope, Signature
from lodec.sign.policy import KeyWindow, TrustPolicy, TrustRule
from lodec.sign.state import TrustedVersion
from lodec.sign.statement import Approval
from lodec.stack.signature import SignatureCheck, SignatureReport

WHEN = datetime(2027, 1, 1, tzinfo=timezone.utc)
FROZEN = [
    Signature("sha256:ab", b"sig"),
    Envelope("application/vnd.in-toto+json", b"{}", (Signature(None, b"x"),)),
    TrustRule("*", (), 1),
    KeyWindow(not_after=WHEN),
    TrustPolicy((TrustRule("a-*", (), 2),), "trust.toml", frozenset({"k"}), {"k": KeyWindow(WHEN)}),
    TrustedVersion("1.0.0", "blake3:" + "0" * 64, "2026-11-29T00:00:00Z"),
    Approval("stack", "1.0.0", "blake3:" + "0" * 64, WHEN, {"sha256": "00"}),
    SignatureCheck(0, "sha256:ab", "valid", "sha256:ab"),
    Pack("s.json", b"{}", None, b"step", b"stack", {"a": b"v"}, b"pack", {"skill": ()}),
]


@pytest.mark.parametrize("record", FROZEN, ids=lambda r: type(r).__name__)
def test_frozen_record_equality_repr_pickling_and_immutability(record: object) -> None:
    names = type(record).__slots__  # type: ignore[attr-defined]
    values = [getattr(record, n) for n in names]
    twin = type(record)(*values)
    assert twin == record and not (twin != record) and record != values and (record == 1) is False
    assert repr(record) == f"{type(record).__name__}(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, values)) + ")"
    assert pickle.loads(pickle.dumps(record)) == record and copy.deepcopy(record) == record
    if all(not isinstance(v, (dict, list)) for v in values):  # holding a dict, a dataclass is unhashable too
        assert hash(twin) == hash(record)
    with pytest.raises(AttributeError):
        setattr(record, names[0], values[0])
    with pytest.raises(AttributeError):
        delattr(record, names[0])
    with pytest.raises(AttributeError):
        record.extra = 1  # type: ignore[attr-defined]
    changed = type(record)(*values[:-1], "other")
    assert changed != record


def test_keyword_construction_and_defaults() -> None:
    assert KeyWindow() == KeyWindow(not_before=None, not_after=None)
    policy = TrustPolicy(rules=())
    assert (policy.source, policy.revoked, policy.windows) == ("<policy>", frozenset(), {})
    assert TrustPolicy(()).windows is not policy.windows  # a fresh dict each time, as default_factory=dict
    pack = Pack(manifest_name="s.json", manifest=b"", envelope=None, step_schema=b"", stack_schema=b"", steps={},
                data=b"")
    assert pack.skills == {} and pack.skills is not Pack("s", b"", None, b"", b"", {}, b"").skills
    with pytest.raises(TypeError):
        TrustRule("*", ())  # type: ignore[call-arg]  # no default for threshold


def test_signature_report_is_mutable_and_unhashable() -> None:
    report = SignatureReport(now="2026-11-29T00:00:00Z")
    assert report == SignatureReport("2026-11-29T00:00:00Z", None, None, (), (), None, None, None)
    report.rule, report.threshold = "*", 2
    assert report.threshold == 2 and report != SignatureReport(now="2026-11-29T00:00:00Z")
    assert pickle.loads(pickle.dumps(report)) == report
    with pytest.raises(TypeError):
        hash(report)
    with pytest.raises(AttributeError):
        report.extra = 1  # type: ignore[attr-defined]
