"""The coding sheet's action units as an auxiliary training target.

A coding sheet names the FACS action units (AUs) each clip shows ("4+L10", "R1+R2", "?"): the movement
itself, which the emotion label only summarises (CASME II's labels were given from the AUs and the
participants' reports). With ``au_weight`` > 0 the trainer gives TSCNN a second head on its super feature
vector that predicts, for each training clip, which AUs it shows (one binary cross-entropy per AU), beside the
emotion; the head is dropped after training, so the trained model and its predictions are TSCNN's own.

The side of a unit (L, R) and its intensity letter (A-E) are dropped: a mirrored face (an augmentation
variant) shows the same units on the other side, so a unit's presence is what every variant shares. The
targets of a fold are the AUs shown by at least ``AU_MIN_CLIPS`` of its *training* clips (a unit seen once
cannot be learnt); nothing of the test subject is read. A clip whose entry names no readable unit (empty,
"?", a database without AUs) has no target and adds nothing to the auxiliary loss.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tscnn.errors import DatasetError

AU_MIN_CLIPS = 5
"""A unit is a target of a fold when at least this many of its training clips show it."""

_UNIT = re.compile(r"(?:AU)?[LRB]?(\d{1,2})[A-E]?\??", re.IGNORECASE)


def parse_action_units(code: object) -> frozenset[int] | None:
    """The action units of one coding-sheet entry ("4+L10" -> {4, 10}), or None when it names none that can be
    read ("", "?", a missing cell). Tokens are split on "+", "," and spaces; one that is not a unit is skipped."""
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return None
    units = set()
    for token in re.split(r"[+,;\s]+", str(code).strip()):
        match = _UNIT.fullmatch(token)
        if match:
            units.add(int(match.group(1)))
    return frozenset(units) or None


def au_vocabulary(units: Iterable[frozenset[int] | None], min_clips: int = AU_MIN_CLIPS) -> tuple[int, ...]:
    """The units shown by at least ``min_clips`` of the given clips, in ascending order."""
    counts = Counter(unit for clip in units if clip for unit in clip)
    return tuple(sorted(unit for unit, n in counts.items() if n >= min_clips))


@dataclass(frozen=True)
class ActionUnitTargets:
    """The auxiliary targets of every clip of a table: ``targets`` (clips, units) is 1 where the clip shows the
    unit; ``known`` (clips,) is false for a clip with no readable entry (its row of ``targets`` is unused)."""

    units: tuple[int, ...]
    targets: np.ndarray
    known: np.ndarray


def au_targets(codes: Iterable[object], train: np.ndarray, min_clips: int = AU_MIN_CLIPS) -> ActionUnitTargets:
    """The targets of a fold: the units of its training rows ``train`` (``au_vocabulary``) for every clip of the
    table whose coding-sheet entries are ``codes``. Raises when no unit qualifies (the database has no AUs)."""
    parsed = [parse_action_units(code) for code in codes]
    units = au_vocabulary((parsed[row] for row in train), min_clips)
    if not units:
        raise ValueError(f"au_weight trains on the coding sheet's action units, but no unit is shown by {min_clips} "
                         "or more training clips of this fold (a database without action units cannot use it)")
    column = {unit: j for j, unit in enumerate(units)}
    targets = np.zeros((len(parsed), len(units)), np.float32)
    for row, clip in enumerate(parsed):
        for unit in clip or ():
            if unit in column:
                targets[row, column[unit]] = 1.0
    return ActionUnitTargets(units, targets, np.array([clip is not None for clip in parsed]))


def clips_with_action_units(codes: Iterable[object]) -> int:
    """How many of the entries name a readable unit."""
    return sum(parse_action_units(code) is not None for code in codes)


def require_action_units(codes: Iterable[object], source: str) -> None:
    """Before any work: a one-line error naming ``source`` (the database folder) when no clip names a unit."""
    if not clips_with_action_units(codes):
        raise DatasetError(f"{source}: no clip names an action unit; au_weight trains on the coding sheet's action "
                           "units (a flow folder or a sheet without them cannot use it)")
