"""The face-block grid the hand-crafted features share (HOOF, LBP-TOP): one definition, so both cut alike."""

from __future__ import annotations

import numpy as np


def block_index(n: int, grid: int) -> np.ndarray:
    """(n, n) map of each pixel's block number (row-major over the grid x grid blocks); rows and columns are
    split into ``grid`` near-equal bands (28 -> 6, 5, 6, 5, 6 pixels for 5 blocks)."""
    band = np.searchsorted(np.linspace(0, n, grid + 1).round()[1:-1], np.arange(n), side="right")
    return band[:, None] * grid + band[None, :]
