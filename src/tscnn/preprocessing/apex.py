"""Apex spotting for clips whose apex is not annotated (SMIC-HS) or is invalid.

A micro-expression moves the face away from its onset state and back to it at the offset, so the
apex is taken as the frame that has moved most from both ends of the clip. Each frame is reduced
to grey at ``SPOT_WIDTH`` pixels; DIS optical flow is computed from the first and from the last
frame to it; the median flow vector (global head motion) is removed; the mean remaining flow
magnitudes from both ends are summed, smoothed over 3 frames, and the arg-max is the apex.
``benchmarks/apex_spotting.py`` measures its error against annotated (rendered) apexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tscnn.preprocessing.frames import read_grey

SPOT_WIDTH = 128  # frames are compared at this width, the preparation's working size


def local_motion(reference: np.ndarray, frame: np.ndarray, dis: cv2.DISOpticalFlow,
                 mask: np.ndarray | None = None) -> float:
    """Mean flow magnitude from ``reference`` to ``frame`` after removing the median (global) motion;
    with ``mask`` (on ``reference``'s pixels, see ``textured``), the mean over those pixels only."""
    flow = dis.calc(reference, frame, None)
    flow -= np.median(flow.reshape(-1, 2), axis=0)
    magnitude = np.linalg.norm(flow, axis=2)
    return float(magnitude[mask].mean() if mask is not None else magnitude.mean())


def textured(frame: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """Pixels whose (lightly blurred) gradient is in the top ``fraction`` of the frame: where flow is
    measurable. In flat skin and background, flow is unconstrained (the aperture problem) and DIS
    returns noise of a few tenths of a pixel that would drown a 1-2 px local movement."""
    grey = cv2.GaussianBlur(frame, (0, 0), 1.0).astype(np.float32)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return gradient >= np.quantile(gradient, 1 - fraction)


def motion_curve(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Per frame: local motion from the first plus from the last frame, smoothed over 3 frames."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    curve = np.array([local_motion(frames[0], f, dis) + local_motion(frames[-1], f, dis) for f in frames])
    if len(curve) >= 3:
        curve = np.convolve(np.pad(curve, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    return curve


def spot_apex(paths: Sequence[Path | str], clip: str = "") -> int:
    """Index (into ``paths``, ordered onset..offset) of the spotted apex frame."""
    if len(paths) < 3:
        return len(paths) // 2
    return spot_apex_frames([read_grey(str(p), clip) for p in paths])


def spot_apex_frames(frames: Sequence[np.ndarray]) -> int:
    """Index of the apex among grey frames ordered onset..offset (resized to ``SPOT_WIDTH`` here)."""
    if len(frames) < 3:
        return len(frames) // 2
    h, w = frames[0].shape[:2]
    size = (SPOT_WIDTH, max(1, round(h * SPOT_WIDTH / w)))
    small = [f if f.shape[1] == SPOT_WIDTH else cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    curve = motion_curve(small)
    return int(np.argmax(curve[1:-1])) + 1  # the ends are the reference frames themselves
