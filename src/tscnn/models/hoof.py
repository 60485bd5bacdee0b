"""HOOF + linear SVM: the classic hand-crafted floor (Chaudhry et al. 2009, in the MER form used by Bi-WOOF).

Features (d = 200): the onset->apex flow (u, v) is cut into a 5x5 grid of face blocks; per block, a
histogram of flow directions with 8 bins over 360 degrees, each pixel weighted by its flow
magnitude; each block's histogram is normalised to sum 1 (a block without motion stays all zero)
and the 25 x 8 vector is L2-normalised (an all-still face stays zero). The classifier is a linear
SVM (``LinearSVC``, default C = 1, class-balanced for the macro metrics), fitted per fold on the
training subjects only.

Conventions:

* Image coordinates: x grows to the right and y grows *downwards*, so u > 0 is motion to the right
  and v > 0 motion down. Directions are measured counter-clockwise as seen on screen,
  ``theta = atan2(-v, u)``: right = 0, up = 90, left = 180, down = 270 degrees.
* Bins are 45 degrees wide and *centred* on the eight compass directions: bin k holds
  [45 k - 22.5, 45 k + 22.5) degrees, so 0 = right, 1 = up-right, 2 = up, 3 = up-left, 4 = left,
  5 = down-left, 6 = down, 7 = down-right (pure axis motions then sit in the middle of a bin, not on
  an edge where rounding decides).
* Blocks: rows and columns are split into 5 near-equal bands (28 -> 6, 5, 6, 5, 6 pixels).

The zero of motion. The prepared maps are min-max normalised to [0, 1] per image, so "no motion" is
no longer 0. Each u and v map is centred on its own median: most of a face is still during a
micro-expression, so the median pixel is the best estimate of zero motion. The per-image scale
(1 / range) cannot be undone and differs between u and v, which skews directions somewhat; the
magnitude weights and the two normalisations make the features insensitive to the overall scale.
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from tscnn.models._grid import block_index as grid_block_index
from tscnn.models.registry import ModelSpec, register_model

STREAM = "uvs"
GRID = 5
BINS = 8
DIMENSION = GRID * GRID * BINS


def median_centred(maps: np.ndarray) -> np.ndarray:
    """(clips, n, n) maps minus each map's own median: the still face becomes zero motion."""
    maps = np.asarray(maps, dtype=np.float64)
    return maps - np.median(maps.reshape(len(maps), -1), axis=1)[:, None, None]


def direction_bins(u: np.ndarray, v: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Bin index of each flow vector: bins centred on 0, 360 / bins, ... degrees, y growing downwards."""
    theta = np.arctan2(-v, u)  # counter-clockwise on screen, in (-pi, pi]
    return np.floor(theta / (2 * np.pi) * bins + 0.5).astype(np.int64) % bins


def block_index(n: int, grid: int = GRID) -> np.ndarray:
    """(n, n) map of each pixel's block number (row-major over the grid x grid blocks)."""
    return grid_block_index(n, grid)


def hoof(u: np.ndarray, v: np.ndarray, grid: int = GRID, bins: int = BINS) -> np.ndarray:
    """HOOF of zero-centred flow fields (clips, n, n) -> (clips, grid * grid * bins), L2 norm 1 (or all zero)."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if u.ndim != 3 or u.shape != v.shape or u.shape[1] != u.shape[2]:
        raise ValueError(f"HOOF needs u and v of one shape (clips, n, n), got {u.shape} and {v.shape}")
    clips, n = u.shape[0], u.shape[1]
    cells = grid * grid * bins
    index = block_index(n, grid)[None] * bins + direction_bins(u, v, bins)
    index = index + np.arange(clips)[:, None, None] * cells
    weights = np.hypot(u, v)
    hist = np.bincount(index.ravel(), weights=weights.ravel(), minlength=clips * cells).reshape(clips, grid * grid,
                                                                                                 bins)
    totals = hist.sum(axis=2, keepdims=True)
    hist = np.divide(hist, totals, out=np.zeros_like(hist), where=totals > 0).reshape(clips, cells)
    norms = np.linalg.norm(hist, axis=1, keepdims=True)
    return np.divide(hist, norms, out=np.zeros_like(hist), where=norms > 0)


def hoof_features(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The registry's features: HOOF of the median-centred u, v (channels 0, 1 of ``uvs``), (clips, 200)."""
    if STREAM not in arrays:
        raise ValueError(f"HOOF reads the {STREAM!r} stream (u, v, optical strain), got only {sorted(arrays)}")
    uvs = arrays[STREAM]
    if uvs.ndim != 4 or uvs.shape[1] < 2:
        raise ValueError(f"HOOF needs the {STREAM!r} stream as (clips, >=2, n, n), got shape {uvs.shape}")
    return hoof(median_centred(uvs[:, 0]), median_centred(uvs[:, 1])).astype(np.float32)


def hoof_classifier() -> LinearSVC:
    """A fresh linear SVM: default C, class-balanced (the features are already L2-normalised, no scaler)."""
    return LinearSVC(class_weight="balanced", max_iter=10000)


register_model(ModelSpec(
    name="hoof", kind="features", features=hoof_features, classifier=hoof_classifier, streams=(STREAM,),
    size=28,
    description="HOOF floor: 5x5 blocks x 8 magnitude-weighted flow directions + linear SVM (balanced)",
    reference="Chaudhry, Ravichandran, Hager, Vidal: Histograms of oriented optical flow ..., CVPR 2009; "
              "MER form of Liong, See, Wong, Phan: Less is more (Bi-WOOF), Signal Processing: Image "
              "Communication, 2018",
))
