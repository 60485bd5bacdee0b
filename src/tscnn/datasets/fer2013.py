"""FER2013 reader: ``fer2013.csv`` (``emotion,pixels,Usage``) or Kaggle's ``icml_face_data.csv``
(``emotion, Usage, pixels`` with a leading space in the headers).

Each row is a 48x48 grey face, row-major, as 2304 space-separated integers in 0..255; 7 classes
(0 Angry .. 6 Neutral); ``Usage`` is Training (28,709 rows), PublicTest or PrivateTest. Used for
pre-training the static stream; never mixed into micro-expression evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tscnn.datasets.base import DatasetError, read_csv_table

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
USAGES = ("Training", "PublicTest", "PrivateTest")
SIDE = 48


@dataclass
class FaceImages:
    """Static face images for pre-training: (N, 48, 48) uint8, labels (N,), usage (N,), class names."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    classes: tuple[str, ...]
    source: str

    def split(self, usage: str) -> np.ndarray:
        """Row indices of one usage (Training, PublicTest, PrivateTest)."""
        return np.flatnonzero(self.usage == usage)


def read_fer2013(path: str | Path, max_rows: int | None = None) -> FaceImages:
    """Read FER2013 (either variant); an error names the file, the row and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"FER2013 file {path} does not exist")
    table = read_csv_table(path, dtype=str, nrows=max_rows, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in table.columns]
    if missing:
        raise DatasetError(f"{path}: not a FER2013 file, missing columns {missing} (found {list(table.columns)})")
    images = np.zeros((len(table), SIDE, SIDE), np.uint8)
    labels = np.zeros(len(table), np.int64)
    for i, (emotion, pixels, usage) in enumerate(zip(table.emotion, table.pixels, table.Usage, strict=True)):
        where = f"{path} row {i + 2}"
        if str(emotion).strip() not in {str(k) for k in range(len(FER_CLASSES))}:
            raise DatasetError(f"{where}: emotion {emotion!r} is not a class number 0..6")
        if str(usage).strip() not in USAGES:
            raise DatasetError(f"{where}: Usage {usage!r} is not one of {USAGES}")
        try:
            values = np.array(str(pixels).split(), dtype=np.int64)
        except ValueError:
            raise DatasetError(f"{where}: pixels are not integers") from None
        if values.size != SIDE * SIDE or values.min() < 0 or values.max() > 255:
            raise DatasetError(f"{where}: expected {SIDE * SIDE} pixel values in 0..255, got {values.size} "
                               f"in {values.min() if values.size else '-'}..{values.max() if values.size else '-'}")
        images[i] = values.reshape(SIDE, SIDE)
        labels[i] = int(emotion)
    usage = table.Usage.str.strip().to_numpy(dtype=str)
    return FaceImages(images, labels, usage, FER_CLASSES, str(path))
