"""Face cropping for frames that are not already face crops (CASME II RAW_selected, new videos).

The detector is OpenCV's frontal-face Haar cascade, whose model file ships inside the
opencv-contrib-python-headless wheel (works offline). One box is found per clip (on its first
frame) and used for every frame, so the crop itself adds no motion.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


class NoFaceError(ValueError):
    """No face was found where one was expected."""


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"could not load the Haar cascade {path}")
    return cascade


def detect_face(grey: np.ndarray, margin: float = 0.1) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the largest face, enlarged by ``margin`` on each side and clipped to the image."""
    faces = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                        minSize=(max(24, grey.shape[0] // 10),) * 2)
    if len(faces) == 0:
        raise NoFaceError("no face found")
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    dx, dy = int(w * margin), int(h * margin)
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(grey.shape[1], x + w + dx), min(grey.shape[0], y + h + dy)
    return x0, y0, x1 - x0, y1 - y0


def crop(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of ``box`` = (x, y, w, h)."""
    x, y, w, h = box
    return grey[y:y + h, x:x + w]
