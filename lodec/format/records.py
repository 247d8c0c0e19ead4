"""Plain slotted record bases: what ``@dataclass`` gives a record, without importing ``dataclasses``.

``dataclasses`` imports ``inspect`` (about 4 ms of a signed ``lodec verify``'s start-up), so records on the
verify paths derive from these instead. A subclass lists its fields in ``__slots__`` (in constructor order)
and writes its own ``__init__`` (the keywords and defaults a dataclass would have), setting frozen fields
with ``object.__setattr__``. The bases give, from ``__slots__``, what ``dataclass`` would: equality with an
instance of the same class by the tuple of fields, a ``Name(field=value, ...)`` repr, and pickling and
copying through the constructor; ``FrozenRecord`` adds a hash of the fields and refuses assignment.
"""

from __future__ import annotations

from typing import Any


class Record:
    """A mutable slotted record: equal by fields, unhashable (as a ``@dataclass`` with ``eq=True``)."""

    __slots__ = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self.__slots__])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return (type(self), self._values())


class FrozenRecord(Record):
    """An immutable slotted record: hashed by its fields (as ``@dataclass(frozen=True)``); assigning or
    deleting a field raises ``AttributeError``."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is immutable")
