"""Face alignment from eye landmarks: eyes level, a fixed inter-ocular distance, one transform per clip.

The eye centres are found on the clip's onset frame by dlib's HOG face detector (built into dlib, no
model file) and its 5-point shape predictor (``shape_predictor_5_face_landmarks.dat``: eye corners and
nose base, trained by dlib's author on his own CC0 5-point dataset), both installed by the optional
extra ``pip install 'tscnn[align]'`` (``dlib-bin`` and ``face_recognition_models``; no download at run
time). The 68-point model that ``face_recognition_models`` also ships (trained on iBUG 300-W, not for
commercial use) is never loaded.

From the two eye centres a similarity transform (rotation, uniform scale, translation) is built that
puts the eyes on a horizontal line at ``EYE_Y`` of a square crop, centred, ``IOD_FRACTION`` of the side
apart; the crop side is chosen so that the scale stays close to 1 (the face keeps its native
resolution until ``work_size`` resizing). The *same* transform is applied to every frame of the clip,
so, like the Haar box, alignment adds no motion between frames: it normalises where the face lies in
the crop across clips and subjects (the LS stream's grid cells cover the same facial regions), not
the head's movement within a clip.

``face_align`` (a :class:`~tscnn.config.Config` field) chooses: ``haar`` (the Haar box of
``tscnn.preprocessing.face``, no alignment), ``landmarks`` (every clip aligned, face crops included;
a clip whose onset frame shows no face detectable by dlib keeps the Haar box, or its crop as is) or
``auto`` (the default: clips that need face cropping are aligned when the extra is installed; a
database of face crops keeps its crops; without the extra, the Haar box and a one-time notice).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from tscnn.config import FACE_ALIGN  # noqa: F401  (auto, landmarks, haar; re-exported)

IOD_FRACTION = 0.33
"""Inter-ocular distance (between the eye centres) as a share of the aligned crop's side."""
EYE_Y = 0.38
"""Height of the eye line as a share of the aligned crop's side, from the top."""
INSTALL_HINT = "pip install 'tscnn[align]'"


@dataclass(frozen=True)
class Alignment:
    """A similarity transform from a frame to a ``size`` x ``size`` face crop (``matrix``: 2 x 3, for
    ``cv2.warpAffine``)."""

    matrix: np.ndarray
    size: int

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The aligned crop of ``frame`` (borders replicate the edge pixels when the face is near one)."""
        return cv2.warpAffine(frame, self.matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Frame coordinates (n x 2) -> crop coordinates."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return xy @ self.matrix[:, :2].T + self.matrix[:, 2]

    def corners(self) -> np.ndarray:
        """The crop's four corners in frame coordinates (top-left, top-right, bottom-right, bottom-left)."""
        inverse = cv2.invertAffineTransform(self.matrix)
        square = np.array([[0, 0], [self.size, 0], [self.size, self.size], [0, self.size]], dtype=np.float64)
        return square @ inverse[:, :2].T + inverse[:, 2]


def alignment_from_eyes(left: Sequence[float], right: Sequence[float], size: int | None = None,
                        iod_fraction: float = IOD_FRACTION, eye_y: float = EYE_Y) -> Alignment:
    """The transform that puts the eye centres ``left`` and ``right`` (x, y in the frame; image left and
    right) level, ``iod_fraction * size`` apart, centred at height ``eye_y * size``.

    ``size`` (the crop side) defaults to ``round(distance / iod_fraction)``: scale about 1."""
    left, right = np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)
    if left[0] > right[0]:
        left, right = right, left
    delta = right - left
    distance = float(np.hypot(*delta))
    if distance < 1e-6:
        raise ValueError("the two eye centres coincide")
    size = int(size or max(8, round(distance / iod_fraction)))
    scale = iod_fraction * size / distance
    cos, sin = delta / distance
    linear = scale * np.array([[cos, sin], [-sin, cos]])
    middle = (left + right) / 2
    target = np.array([size / 2, eye_y * size])
    matrix = np.hstack([linear, (target - linear @ middle)[:, None]])
    return Alignment(matrix, size)


def landmarks_available() -> bool:
    """Whether the optional landmark detector (the ``align`` extra) can be imported."""
    try:
        _dlib_models()
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _dlib_models():
    """dlib's HOG face detector and 5-point shape predictor (ImportError without the ``align`` extra)."""
    import importlib.util

    import dlib

    # The model file is located without importing face_recognition_models, whose __init__ needs
    # setuptools' pkg_resources (not installed here, removed from recent setuptools).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"face_recognition_models is not installed ({INSTALL_HINT})")
    model = Path(next(iter(spec.submodule_search_locations))) / "models" / "shape_predictor_5_face_landmarks.dat"
    if not model.is_file():
        raise ImportError(f"{model} is missing ({INSTALL_HINT})")
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))


def eye_landmarks(grey: np.ndarray) -> dict[str, np.ndarray] | None:
    """``left_eye``, ``right_eye`` (centres, image left and right) and ``nose`` (x, y) of the largest face
    in a grey frame, or None when dlib finds no face (searched again at 2x for small faces)."""
    detector, predictor = _dlib_models()
    image = np.ascontiguousarray(grey, dtype=np.uint8)
    for upsample in (0, 1):
        faces = detector(image, upsample)
        if len(faces):
            break
    else:
        return None
    face = max(faces, key=lambda r: r.area())
    parts = np.array([(p.x, p.y) for p in predictor(image, face).parts()], dtype=np.float64)
    eyes = sorted([parts[0:2].mean(0), parts[2:4].mean(0)], key=lambda p: p[0])
    return {"left_eye": eyes[0], "right_eye": eyes[1], "nose": parts[4]}


def find_alignment(grey: np.ndarray) -> Alignment | None:
    """The alignment of a frame's largest face, or None when no face is found."""
    marks = eye_landmarks(grey)
    return None if marks is None else alignment_from_eyes(marks["left_eye"], marks["right_eye"])


_NOTICE_GIVEN = False


def resolve_face_align(face_align: str, notice: bool = True) -> str:
    """``landmarks`` or ``haar``: what ``face_align`` means on this machine (``auto`` -> ``landmarks`` when
    the extra is installed). ``landmarks`` without the extra is an ImportError naming the extra; ``auto``
    without it warns once per process (unless ``notice`` is False) that faces get the Haar box."""
    global _NOTICE_GIVEN
    if face_align not in FACE_ALIGN:
        raise ValueError(f"face_align must be one of {FACE_ALIGN}, got {face_align!r}")
    if face_align == "haar":
        return "haar"
    if landmarks_available():
        return "landmarks"
    if face_align == "landmarks":
        raise ImportError(f"face_align 'landmarks' needs dlib and its 5-point model: {INSTALL_HINT}")
    if notice and not _NOTICE_GIVEN:
        _NOTICE_GIVEN = True
        warnings.warn(f"face alignment: dlib is not installed ({INSTALL_HINT}); faces are cropped by the Haar "
                      "cascade without alignment (face_align 'haar')", stacklevel=2)
    return "haar"
