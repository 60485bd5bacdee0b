"""Optical flow between two grey frames, and the per-map min-max normalisation of the paper (eq. 4).

A flow field is an (H, W, 2) float32 array of (x, y) displacements in pixels, such that
``next[y + v, x + u] ~= prev[y, x]``. TV-L1 is the literature's choice; DIS and Farneback are the
fast alternatives (see benchmarks/).
"""

from __future__ import annotations

import cv2
import numpy as np

FLOW_METHODS = ("tvl1", "dis", "farneback")
_dis_by_size: dict[tuple[int, int], cv2.DISOpticalFlow] = {}


def compute_flow(prev: np.ndarray, nxt: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Dense flow prev -> next of two same-size grey uint8 images, as (H, W, 2) float32."""
    if prev.shape != nxt.shape or prev.ndim != 2:
        raise ValueError(f"flow needs two grey images of one size, got {prev.shape} and {nxt.shape}")
    if method == "tvl1":
        flow = cv2.optflow.DualTVL1OpticalFlow_create().calc(prev, nxt, None)
    elif method == "dis":
        # One DIS object per image size: reusing one across sizes is slow and changes results.
        dis = _dis_by_size.get(prev.shape)
        if dis is None:
            dis = _dis_by_size[prev.shape] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        flow = dis.calc(prev, nxt, None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    else:
        raise ValueError(f"unknown flow method {method!r}; expected one of {FLOW_METHODS}")
    return flow.astype(np.float32)


def minmax_normalise(values: np.ndarray) -> np.ndarray:
    """(H - min H) / (max H - min H) into [0, 1]; a constant map gives zeros, never NaN."""
    values = values.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if not np.isfinite(low) or not np.isfinite(high):
        raise ValueError("flow map contains NaN or infinity")
    if high - low <= 1e-12:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of an (H, W, 2) flow field, (H, W) float32 (STSTNet's third channel).

    Strain is the symmetric part of the flow's spatial gradient, so it measures how the face
    deforms and ignores rigid motion (translation, small rotation) that head movement adds:
    e_xx = du/dx, e_yy = dv/dy, e_xy = e_yx = 0.5 (du/dy + dv/dx), and the magnitude is
    sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2) (the Frobenius norm of the strain tensor). Derivatives are
    ``np.gradient`` (central differences inside, one-sided at the borders), in pixel units.
    """
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"optical strain needs an (H, W, 2) flow field, got shape {flow.shape}")
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    du_dy, du_dx = np.gradient(u)  # axis 0 is y (rows), axis 1 is x (columns)
    dv_dy, dv_dx = np.gradient(v)
    e_xy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx**2 + dv_dy**2 + 2.0 * e_xy**2).astype(np.float32)
