"""The base of the services' records: frozen, typed values built from one database row."""

from collections.abc import Mapping
from typing import Any, Self


class Record:
    """Subclassed by frozen, slotted dataclasses whose fields are a statement's columns."""

    __slots__ = ()

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> Self:
        return cls(**row)
