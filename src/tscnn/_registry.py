"""The two operations every registry of the project (models, protocols) needs: add a named entry once, and
look one up with an error that lists the known names."""

from __future__ import annotations

from typing import TypeVar

Entry = TypeVar("Entry")


def add_entry(registry: dict[str, Entry], kind: str, name: str, entry: Entry) -> Entry:
    """Add ``entry`` under ``name``; a name registered twice is an error (``kind`` names the registry)."""
    if name in registry:
        raise ValueError(f"{kind} {name!r} is registered twice")
    registry[name] = entry
    return entry


def look_up(registry: dict[str, Entry], kind: str, name: str) -> Entry:
    """The entry named ``name``, or an error listing the known names."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; expected one of {sorted(registry)}")
    return registry[name]
