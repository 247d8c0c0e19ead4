"""Errors by class: each class has one stable code, and file I/O raises the classes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lodec import errors
from lodec.errors import (
    FileMissing,
    FileUnreadable,
    FileUnwritable,
    LimitExceeded,
    LodecError,
    StateInvalid,
)
from lodec.files import atomic_write, atomic_write_many, read_bounded
from lodec.sign.state import parse_state
from lodec.store.rollback import load_state


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (FileMissing, "file_not_found"),
        (FileUnreadable, "file_unreadable"),
        (FileUnwritable, "file_unwritable"),
        (StateInvalid, "state_invalid"),
        (LimitExceeded, "limit_exceeded"),
    ],
)
def test_class_codes_are_stable(cls: type[LodecError], code: str) -> None:
    assert issubclass(cls, LodecError)
    assert cls.code == code
    error = cls("boom", file="f", location="/x")
    assert (error.code, str(error)) == (code, "f: /x: boom")
    assert cls("boom", code="more_specific").code == "more_specific"


def test_every_class_has_its_own_code() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, LodecError)]
    codes = [c.code for c in classes if c is not LodecError]
    assert len(codes) == len(set(codes))


def test_read_bounded_raises_by_class(tmp_path: Path) -> None:
    with pytest.raises(FileMissing) as missing:
        read_bounded(tmp_path / "absent", 10)
    assert missing.value.to_dict() == {
        "code": "file_not_found", "file": str(tmp_path / "absent"), "location": None, "message": "no such file",
    }
    with pytest.raises(FileUnreadable) as directory:
        read_bounded(tmp_path, 10)
    assert (directory.value.code, directory.value.message) == ("file_unreadable", "not a regular file")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    with pytest.raises(LimitExceeded) as limit:
        read_bounded(big, 10)
    assert limit.value.message == "file is 11 bytes; the limit is 10"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_read_bounded_without_permission_is_unreadable(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"x")
    secret.chmod(0)
    with pytest.raises(FileUnreadable):
        read_bounded(secret, 10)


def test_atomic_writes_raise_file_unwritable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(FileUnwritable) as one:
        atomic_write(blocker / "out", b"data")
    assert one.value.code == "file_unwritable" and one.value.file == str(blocker / "out")
    with pytest.raises(FileUnwritable) as many:
        atomic_write_many([(tmp_path / "ok", b"a"), (blocker / "out", b"b")])
    assert many.value.file == str(blocker / "out")
    assert not (tmp_path / "ok").exists()


def test_rollback_state_absent_is_empty_malformed_is_state_invalid(tmp_path: Path) -> None:
    assert load_state(tmp_path / "absent.json") == {}
    with pytest.raises(StateInvalid) as info:
        parse_state(b'{"format": "other"}', file="s.json")
    assert (info.value.code, info.value.location) == ("state_invalid", "/")
    with pytest.raises(StateInvalid):
        parse_state(b"{", file="s.json")
