"""Reading the images the preparation starts from: grey video frames and flow-folder u, v, strain PNGs.

Both readers give a :class:`~tscnn.errors.DatasetError` naming the clip and the file when an image
is missing, empty or corrupt. ``write_flow_image`` is the inverse of ``read_flow_image`` (the MEGC
flow-folder format: R, G, B = u, v, strain, each min-max normalised to 0..255).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np

from tscnn.errors import DatasetError

FRAME_NUMBER = re.compile(r"(\d+)\.(?:jpe?g|png|bmp|tiff?)$", re.IGNORECASE)
"""A frame file name ends in its frame number and an image suffix (``img46.jpg``, ``reg_image036237.bmp``)."""


def list_frames(clip_dir: Path, prefix: str | None = None) -> dict[int, Path]:
    """Frame number -> path for the images in ``clip_dir``, numbers parsed (never sorted as text)."""
    frames: dict[int, Path] = {}
    if not clip_dir.is_dir():
        return frames
    for path in clip_dir.iterdir():
        match = FRAME_NUMBER.search(path.name)
        if match and (prefix is None or path.name.startswith(prefix)):
            frames[int(match.group(1))] = path
    return frames


def truncation(data: bytes) -> str | None:
    """Why an image file's bytes stop early, or None: a JPEG must end with its end-of-image marker (FF D9) and
    a PNG with its IEND chunk. OpenCV decodes a cut file without an error (the missing rows grey, a warning
    printed by the library only), so the file's end is checked before decoding."""
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-512:]:
        return "truncated: the JPEG file ends before its end-of-image marker"
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-64:]:
        return "truncated: the PNG file ends before its IEND chunk"
    return None


def decode_image(path: str | Path, flags: int) -> tuple[np.ndarray | None, str]:
    """An image file decoded by OpenCV (``flags`` as for ``cv2.imread``), or None and why not: missing, empty,
    truncated (``truncation``) or corrupt."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None, "missing or unreadable"
    if not data:
        return None, "empty"
    cut = truncation(data)
    if cut:
        return None, cut
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    return image, "" if image is not None else "corrupt, or not an image"


def read_grey(path: str | Path, clip: str) -> np.ndarray:
    """A frame as grey uint8, or an error naming the file and the clip."""
    image, why = decode_image(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DatasetError(f"clip {clip}: cannot read image {path} ({why})")
    return image


def read_flow_image(path: str | Path, where: str) -> np.ndarray:
    """(H, W, 3) float32 u, v, strain in [0, 1] from a flow PNG (R, G, B; OpenCV reads BGR), or an
    error naming ``where`` (file, row, clip) and the image."""
    image, why = decode_image(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        state = "missing" if not Path(path).is_file() else f"unreadable ({why})"
        raise DatasetError(f"{where}: flow image {path} is {state}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]  # an alpha channel carries nothing
    if image.ndim != 3 or image.shape[2] != 3:
        raise DatasetError(f"{where}: flow image {path} is not a 3-channel (u, v, strain) image, shape {image.shape}")
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        raise DatasetError(f"{where}: flow image {path} has unsupported pixel type {image.dtype}")
    return np.ascontiguousarray(image[..., ::-1]).astype(np.float32) / scale


def write_flow_image(path: str | Path, maps: np.ndarray) -> None:
    """Write (3, H, W) u, v, strain maps in [0, 1] as an RGB PNG (each channel 0..255)."""
    if maps.ndim != 3 or maps.shape[0] != 3:
        raise ValueError(f"expected (3, H, W) u, v, strain maps, got shape {maps.shape}")
    rgb = np.clip(np.rint(maps.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[::-1].transpose(1, 2, 0))):  # BGR for OpenCV
        raise OSError(f"could not write {path}")


def video_fps(path: Path) -> tuple[float, int]:
    """Frame rate and frame count a video file declares (0 when it declares none)."""
    capture = cv2.VideoCapture(str(path))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    return (fps if math.isfinite(fps) and fps > 0 else 0.0), max(count, 0)
