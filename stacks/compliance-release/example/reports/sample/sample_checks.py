"""Sample tests that all pass (fixture; named so lodec's own pytest run does not collect it)."""

import pytest

from clean import add


def test_add():
    assert add(1, 2) == 3


def test_add_negative():
    assert add(-1, 1) == 0


@pytest.mark.skip(reason="sample skip")
def test_skipped():
    pass
