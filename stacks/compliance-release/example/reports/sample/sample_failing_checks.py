"""Sample tests with one failure and one error (fixture; not collected by lodec's pytest run)."""

import pytest

from clean import add


@pytest.fixture
def broken():
    raise RuntimeError("fixture could not start")


def test_add():
    assert add(2, 2) == 4


def test_add_wrong():
    assert add(2, 2) == 5, "two plus two"


def test_uses_broken_fixture(broken):
    assert broken
