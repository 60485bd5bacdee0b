"""Clip table -> stream tensors, cached on disk per clip and keyed by the preparation settings.

For each clip: read onset, apex (key) and offset frames in grey; crop the face (the frame itself
for cropped databases, a Haar detection otherwise); resize to ``work_size``; compute flow
onset->key and key->offset; build the SS, LS and DT streams for every augmentation variant.
The cache file name holds a hash of the settings and of the three source files (path, size,
mtime), so changed settings or frames are recomputed and nothing else is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from tscnn.datasets.base import DatasetError
from tscnn.preprocessing.face import NoFaceError, crop, detect_face
from tscnn.preprocessing.flow import compute_flow
from tscnn.preprocessing.streams import augmented_streams

STREAM_NAMES = ("ss", "ls", "dt")


@dataclass(frozen=True)
class PrepSettings:
    """What decides the prepared tensors (and so the cache key)."""

    size: int = 48
    blocks: int = 3
    flow: str = "tvl1"
    work_size: int = 128
    augment: bool = True

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class Prepared:
    """Stream tensors of a clip table: ``arrays[stream]`` is (clips, variants, C, n, n) float16."""

    table: pd.DataFrame
    arrays: dict[str, np.ndarray]
    settings: PrepSettings


def read_grey(path: str, clip: str) -> np.ndarray:
    """A frame as grey uint8, or an error naming the file and the clip."""
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DatasetError(f"clip {clip}: cannot read image {path} (missing, empty or corrupt)")
    return image


def clip_inputs(row: pd.Series | dict, settings: PrepSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Key frame crop (work_size^2, uint8) and the two raw flow fields of one clip."""
    name = f"{row['dataset']}:{row['subject']}/{row['clip']}"
    onset, key, offset = (read_grey(row[c], name) for c in ("onset_path", "apex_path", "offset_path"))
    return frames_to_inputs(onset, key, offset, bool(row["cropped"]), settings, name, row["onset_path"])


def face_box(grey: np.ndarray, error: str) -> tuple[int, int, int, int]:
    """The face box of a frame, or a DatasetError with the given message (naming the clip and file)."""
    try:
        return detect_face(grey)
    except NoFaceError:
        raise DatasetError(error) from None


def frames_to_inputs(onset: np.ndarray, key: np.ndarray, offset: np.ndarray, cropped: bool, settings: PrepSettings,
                     name: str, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey onset, key and offset frames -> key crop and the two flow fields (one face box per clip)."""
    if not (onset.shape == key.shape == offset.shape):
        raise DatasetError(f"clip {name}: frames differ in size {onset.shape}, {key.shape}, {offset.shape}")
    if not cropped:
        box = face_box(onset, f"clip {name}: no face found in {where}")
        onset, key, offset = (crop(f, box) for f in (onset, key, offset))
    size = (settings.work_size, settings.work_size)
    onset, key, offset = (cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in (onset, key, offset))
    return key, compute_flow(onset, key, settings.flow), compute_flow(key, offset, settings.flow)


def prepare_clip(row: pd.Series | dict, settings: PrepSettings) -> dict[str, np.ndarray]:
    """Streams of one clip, (variants, C, n, n) float16 each."""
    key, flow1, flow2 = clip_inputs(row, settings)
    streams = augmented_streams(key, flow1, flow2, settings.size, settings.blocks, settings.augment)
    return {name: array.astype(np.float16) for name, array in streams.items()}


def cache_path(cache_dir: Path, row: pd.Series, settings: PrepSettings) -> Path:
    """Per-clip cache file: settings hash folder, source-file hash in the name."""
    digest = hashlib.sha1()
    for column in ("onset_path", "apex_path", "offset_path"):
        stat = Path(row[column]).stat()
        digest.update(f"{row[column]}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    safe = f"{row['dataset']}__{row['subject']}__{row['clip']}".replace("/", "_")
    return cache_dir / f"prep-{settings.key()}" / f"{safe}__{digest.hexdigest()[:10]}.npz"


def prepare(table: pd.DataFrame, settings: PrepSettings, cache_dir: str | Path | None = None,
            progress: bool = True) -> Prepared:
    """Stream tensors for every clip of ``table``, from the cache where possible."""
    cache = Path(cache_dir) if cache_dir else None
    per_clip: list[dict[str, np.ndarray]] = []
    for _, row in tqdm(table.iterrows(), total=len(table), desc="prepare", unit="clip", disable=not progress):
        path = cache_path(cache, row, settings) if cache else None
        if path is not None and path.exists():
            with np.load(path) as stored:
                per_clip.append({name: stored[name] for name in STREAM_NAMES})
            continue
        streams = prepare_clip(row, settings)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **streams)
            tmp.replace(path)
        per_clip.append(streams)
    arrays = {name: np.stack([c[name] for c in per_clip]) for name in STREAM_NAMES}
    return Prepared(table.reset_index(drop=True), arrays, settings)
