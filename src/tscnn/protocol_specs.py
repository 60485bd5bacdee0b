"""The registry of evaluation protocols: each entry says how to make its folds, which settings it needs, how a
report names it and what it adds to a results folder's name, so a new protocol is one entry here (its fold
rule beside the others in ``tscnn.protocols``).

Light on purpose: ``tscnn.config`` reads the names from here to check a Config, so this module imports
nothing of the project when imported (its fold makers import ``tscnn.protocols`` when called, which imports
nothing of the project either: no cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tscnn._registry import add_entry, look_up

if TYPE_CHECKING:
    import pandas as pd

    from tscnn.protocols import Fold


class Settings(Protocol):
    """What a protocol reads of a run's settings (``tscnn.config.Config`` has these fields); named here rather
    than imported so that the registry stays below the settings module, with no import back even for types."""

    train_fraction: float
    train_datasets: tuple[str, ...]
    test_datasets: tuple[str, ...]


@dataclass(frozen=True)
class ProtocolSpec:
    """An evaluation protocol.

    * ``folds(config, table, seed, val_fraction)``: its folds of the clip table for one seed.
    * ``needs``: Config fields it needs set (``needs_example`` shows how); ``help``: one line for the command line.
    * ``title(config)``: how metrics and reports name it; ``folder(config)``: its part of the default results
      folder's name (empty for none).
    """

    name: str
    help: str
    folds: Callable[[Settings, pd.DataFrame, int, float], list[Fold]]
    title: Callable[[Settings], str]
    folder: Callable[[Settings], str] = lambda config: ""
    needs: tuple[str, ...] = ()
    needs_example: str = ""


PROTOCOL_SPECS: dict[str, ProtocolSpec] = {}


def register_protocol(spec: ProtocolSpec) -> ProtocolSpec:
    """Add ``spec`` to the registry (names are unique)."""
    return add_entry(PROTOCOL_SPECS, "protocol", spec.name, spec)


def get_protocol(name: str) -> ProtocolSpec:
    """The spec of a registered protocol, or an error listing the known names."""
    return look_up(PROTOCOL_SPECS, "protocol", name)


def _loso_folds(config: Settings, table: pd.DataFrame, seed: int, val_fraction: float) -> list[Fold]:
    from tscnn.protocols import loso_folds

    return loso_folds(table, val_fraction, seed, train_fraction=config.train_fraction)


def _cross_folds(config: Settings, table: pd.DataFrame, seed: int, val_fraction: float) -> list[Fold]:
    from tscnn.protocols import cross_dataset_fold

    return [cross_dataset_fold(table, config.train_datasets, config.test_datasets, val_fraction, seed,
                               train_fraction=config.train_fraction)]


def _pair(config: Settings, link: str) -> str:
    return f"{'+'.join(config.train_datasets)}{link}{'+'.join(config.test_datasets)}"


register_protocol(ProtocolSpec(
    name="loso", help="leave-one-subject-out: one fold per subject", folds=_loso_folds,
    title=lambda config: "leave-one-subject-out"))
register_protocol(ProtocolSpec(
    name="cross", help="cross-database: train on --train-datasets, test on --test-datasets", folds=_cross_folds,
    title=lambda config: f"cross-database: train {'+'.join(config.train_datasets)}, test "
                         f"{'+'.join(config.test_datasets)}",
    folder=lambda config: _pair(config, "-to-"), needs=("train_datasets", "test_datasets"),
    needs_example="e.g. casme2 -> smic"))
