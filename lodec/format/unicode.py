"""Unicode normalisation against one pinned Unicode version, whatever the interpreter.

Text in a vein must be in NFC (``docs/vein-format.md`` §5). Python's own
``unicodedata`` follows the interpreter (Python 3.11: Unicode 14; 3.13:
15.1), and NFC changes when Unicode adds compositions: ``"\\U00016D67" * 2``
is NFC under Unicode 14 and composes to ``"\\U00016D68"`` under 16. So lodec
checks against `unicodedata2 <https://pypi.org/project/unicodedata2/>`_, a
maintained copy of the tables pinned to one version in ``pyproject.toml``:
one record, one verdict, on every supported Python.
"""

from __future__ import annotations

import unicodedata2

#: The Unicode version every NFC check uses (``unicodedata2``'s tables).
UNICODE_VERSION: str = unicodedata2.unidata_version


def nfc(text: str) -> str:
    """``text`` in Unicode NFC (UAX #15) under ``UNICODE_VERSION``."""
    return text if text.isascii() else unicodedata2.normalize("NFC", text)


def is_nfc(text: str) -> bool:
    """Whether ``text`` is already in NFC under ``UNICODE_VERSION`` (ASCII always is)."""
    return text.isascii() or unicodedata2.normalize("NFC", text) == text
