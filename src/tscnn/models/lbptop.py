"""LBP-TOP + linear SVM: the classic appearance-dynamics baseline of MER (Zhao and Pietikainen 2007; the
baseline of the CASME II and SMIC papers).

Input: the ``vol`` stream, the clip's face frames from onset to offset resampled in time to 10 frames
by linear interpolation (the baselines used the temporal interpolation model, TIM, for this; linear
interpolation is the simpler stand-in) at the stream size (48 x 48 by default), grey, in [0, 1]. It
needs the clip's frames, so it runs on databases of frames, not on flow folders.

Features (d = 5 x 5 x 3 x 59 = 4425): the volume is cut into a 5 x 5 grid of face blocks (all frames).
Every voxel interior in x, y and t (one set for the three planes, as the reference implementation
counts them) gets, on each of the three orthogonal planes (XY: the frame; XT: a row over time; YT: a
column over time), an 8-bit local binary pattern: its 8 neighbours on the 3 x 3 square ring of that
plane (radius 1 on every axis, clockwise from the top-left corner), bit k set when neighbour k >= the
centre. Codes map to the 58 uniform patterns (at most 2 circular 0/1 transitions) plus one bin for
every other pattern; each block-plane histogram is normalised to sum 1. The classifier is a linear SVM
(``LinearSVC``, C = 1, class-balanced for the macro metrics), fitted per fold on the training subjects
only. One setting, not tuned here.

Where this departs from Zhao and Pietikainen's definition: the neighbours are the 8 pixels of the
square ring, not 8 points on a circle sampled with bilinear interpolation (the reference code's
non-interpolated mode), and the time radius is 1 (papers also use 2 to 4 on longer volumes).
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from tscnn.models._grid import block_index
from tscnn.models.registry import ModelSpec, register_model

STREAM = "vol"
GRID = 5
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
"""(row, column) offsets of the 8 neighbours on the 3 x 3 ring, clockwise from the top-left corner."""
PLANES = ("xy", "xt", "yt")


def _transitions(code: int) -> int:
    bits = [(code >> k) & 1 for k in range(8)]
    return sum(bits[k] != bits[(k + 1) % 8] for k in range(8))


UNIFORM_CODES = tuple(code for code in range(256) if _transitions(code) <= 2)
"""The 58 uniform 8-bit patterns, in increasing code order."""
BINS = len(UNIFORM_CODES) + 1
UNIFORM_BIN = np.full(256, BINS - 1, dtype=np.int64)
UNIFORM_BIN[list(UNIFORM_CODES)] = np.arange(len(UNIFORM_CODES))
"""Histogram bin of every 8-bit code: its rank among the uniform codes, or the last bin."""
DIMENSION = GRID * GRID * len(PLANES) * BINS


def lbp_codes(volume: np.ndarray, plane: str) -> np.ndarray:
    """8-bit LBP code of every voxel of a (T, H, W) volume on one plane; border voxels of that plane get -1.

    The plane's two axes are (y, x) for XY, (t, x) for XT and (t, y) for YT: the ring's row offset moves
    along the first, its column offset along the second."""
    volume = np.asarray(volume, dtype=np.float32)
    axes = {"xy": (1, 2), "xt": (0, 2), "yt": (0, 1)}[plane]
    inner = [slice(None)] * 3
    for axis in axes:
        inner[axis] = slice(1, volume.shape[axis] - 1)
    centre = volume[tuple(inner)]
    codes = np.zeros(centre.shape, dtype=np.int64)
    for bit, offsets in enumerate(NEIGHBOURS):
        shifted = [slice(None)] * 3
        for axis, offset in zip(axes, offsets, strict=True):
            shifted[axis] = slice(1 + offset, volume.shape[axis] - 1 + offset)
        codes |= (volume[tuple(shifted)] >= centre).astype(np.int64) << bit
    out = np.full(volume.shape, -1, dtype=np.int64)
    out[tuple(inner)] = codes
    return out


def lbptop(volume: np.ndarray, grid: int = GRID) -> np.ndarray:
    """LBP-TOP of one (T, n, n) volume -> (grid * grid * 3 * BINS,): per block, per plane, a uniform-pattern
    histogram over the voxels interior in x, y and t, normalised to sum 1."""
    n = volume.shape[1]
    if volume.shape[0] < 3 or volume.shape[2] != n or n < 3:
        raise ValueError(f"LBP-TOP needs a (T >= 3, n >= 3, n) volume, got {volume.shape}")
    blocks = block_index(n, grid)
    valid = np.zeros(volume.shape, dtype=bool)
    valid[1:-1, 1:-1, 1:-1] = True  # the voxels every plane's ring fits around
    out = np.zeros((grid * grid, len(PLANES), BINS))
    for p, plane in enumerate(PLANES):
        codes = lbp_codes(volume, plane)
        block = np.broadcast_to(blocks, codes.shape)[valid]
        np.add.at(out[:, p], (block, UNIFORM_BIN[codes[valid]]), 1)
    totals = out.sum(-1, keepdims=True)
    return np.divide(out, totals, out=np.zeros_like(out), where=totals > 0).reshape(-1)


def lbptop_features(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Features of every clip: ``arrays["vol"]`` is (clips, T, n, n) -> (clips, DIMENSION)."""
    return np.stack([lbptop(v) for v in arrays[STREAM]]).astype(np.float32)


def lbptop_classifier() -> LinearSVC:
    return LinearSVC(C=1.0, class_weight="balanced", max_iter=20000)


register_model(ModelSpec(
    name="lbptop", kind="features", features=lbptop_features, classifier=lbptop_classifier, streams=(STREAM,),
    description="LBP-TOP + linear SVM: uniform LBP histograms on XY, XT, YT over a 5 x 5 grid of the face volume",
    reference="Zhao and Pietikainen 2007 (TPAMI); the CASME II and SMIC baselines",
))
