"""Database readers. Each returns a :class:`~tscnn.datasets.base.Database` (clip table + classes + quirks)."""

from __future__ import annotations

from collections.abc import Callable

from tscnn.datasets.base import Database, DatasetError
from tscnn.datasets.casme2 import read_casme2
from tscnn.datasets.samm import read_samm

READERS: dict[str, Callable[..., Database]] = {"casme2": read_casme2, "samm": read_samm}


def load_database(name: str, root: str, coding: str | None = None, classes: str = "5class") -> Database:
    """Read database ``name`` at ``root`` with the named class set."""
    if name not in READERS:
        raise DatasetError(f"unknown database {name!r}; expected one of {sorted(READERS)}")
    return READERS[name](root, coding=coding, classes=classes)


__all__ = ["READERS", "Database", "DatasetError", "load_database", "read_casme2", "read_samm"]
