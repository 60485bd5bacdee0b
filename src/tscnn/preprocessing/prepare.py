"""Clip table -> stream tensors, cached on disk per clip and keyed by the preparation settings.

For each clip: read onset, apex (key) and offset frames in grey; crop the face (the frame itself
for cropped databases, otherwise the face found on the onset frame: aligned on dlib's eye landmarks
when installed, ``tscnn.preprocessing.align``, else the Haar box), the same cut for all three;
resize to ``work_size``; compute flow onset->key and key->offset; build the SS, LS, DT and UVS
streams for every augmentation variant.

Asked for by name only, the ``vol`` stream is the face volume onset..offset (every frame of the span,
resampled in time; ``prepare_volume``) that LBP-TOP reads, cached in files of its own.

A table with a ``flow_path`` column (a flow folder, ``tscnn.datasets.flowfolder``) holds
precomputed, normalised u, v, strain images instead of frames: those clips give only the "uvs"
stream (``available_streams``), built by ``normalised_uvs_variants``; with an apex face image per
clip (``apex_path``, ``tscnn.datasets.apeximages``) they give SS, LS and DT too
(``tscnn.preprocessing.flowapex``).

The cache folder ``prep-<key>`` hashes the settings and the source text of the modules that
compute the tensors (``PREPARATION_MODULES``), so an edit to the preparation code never reuses old
tensors; the file name hashes the clip's source files (path, size, mtime), so changed frames are
recomputed and nothing else is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from tscnn.console import bars_disabled
from tscnn.errors import DatasetError
from tscnn.preprocessing.align import find_alignment, resolve_face_align
from tscnn.preprocessing.face import NoFaceError, crop, detect_face
from tscnn.preprocessing.flow import compute_flow
from tscnn.preprocessing.flowapex import FLOW_APEX_STREAMS, flow_apex_streams, read_apex_image
from tscnn.preprocessing.frames import FRAME_NUMBER, read_flow_image, read_grey
from tscnn.preprocessing.keyframes import refuse_key_frames
from tscnn.preprocessing.streams import augmented_streams, normalised_uvs_variants, volume_maps

STREAM_NAMES = ("ss", "ls", "dt", "uvs")
VOLUME_STREAM = "vol"
"""The face volume onset..offset (``volume_maps``; LBP-TOP reads it): built only when asked for, since it reads
every frame of the clip, and cached in files of its own keyed by all those frames."""
ALL_STREAMS = (*STREAM_NAMES, VOLUME_STREAM)
"""Every stream name ``prepare`` knows."""
FLOW_FOLDER_STREAMS = ("uvs",)
"""The streams a flow-folder clip can give: its frames, and so SS, LS and DT, are not there."""
PREPARATION_MODULES = ("tscnn.preprocessing.flow", "tscnn.preprocessing.streams", "tscnn.preprocessing.prepare",
                       "tscnn.preprocessing.face", "tscnn.preprocessing.frames", "tscnn.preprocessing.align",
                       "tscnn.preprocessing.flowapex")
"""Modules whose source text is part of the cache key: they decide the prepared tensors."""


def preparation_sources() -> dict[str, str]:
    """Module name -> source text of ``PREPARATION_MODULES`` (read from disk at each call)."""
    sources = {}
    for name in PREPARATION_MODULES:
        spec = importlib.util.find_spec(name)
        text = spec.loader.get_source(name) if spec is not None and spec.loader is not None else None
        if text is None:
            raise RuntimeError(f"cannot read the source of {name}, needed for the preparation cache key")
        sources[name] = text
    return sources


@dataclass(frozen=True)
class PrepSettings:
    """What decides the prepared tensors (and so the cache key)."""

    size: int = 48
    blocks: int = 3
    flow: str = "tvl1"
    work_size: int = 128
    augment: bool = True
    face_align: str = "auto"  # auto, landmarks or haar (tscnn.preprocessing.align)

    @classmethod
    def from_config(cls, config: Any) -> PrepSettings:
        """The settings of any object with ``size, blocks, flow, work_size, augment`` attributes (a
        :class:`~tscnn.config.Config`, a saved run's config; ``face_align`` defaults to auto)."""
        return cls(size=config.size, blocks=config.blocks, flow=config.flow, work_size=config.work_size,
                   augment=config.augment, face_align=getattr(config, "face_align", "auto"))

    def key(self) -> str:
        """Hash of these settings and of the preparation code's source, so either change gives new tensors.
        ``face_align`` enters as what it resolves to here: ``auto`` with and without the landmark
        detector installed gives different keys."""
        method = resolve_face_align(self.face_align, notice=False)
        resolved = {**asdict(self), "face_align": f"{self.face_align}:{method}"}
        digest = hashlib.sha1(json.dumps(resolved, sort_keys=True).encode())
        for name, text in sorted(preparation_sources().items()):
            digest.update(f"\0{name}\0{text}".encode())
        return digest.hexdigest()[:10]


@dataclass
class Prepared:
    """Stream tensors of a clip table: ``arrays[stream]`` is (clips, variants, C, n, n) float16 (float32 for
    a flow folder).

    ``arrays`` holds the streams asked for, or all of ``available_streams(table)`` (only "uvs" for a
    flow folder)."""

    table: pd.DataFrame
    arrays: dict[str, np.ndarray]
    settings: PrepSettings


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


def face_frames(frames: Sequence[np.ndarray], cropped: bool, face_align: str, error: str) -> list[np.ndarray]:
    """The face of every frame of a clip, found on the first one (the onset) and cut from each frame by the
    same transform, so the cut adds no motion: with landmarks (``face_align`` resolved to ``landmarks``), the
    aligned crop (eyes level, fixed inter-ocular distance); otherwise the Haar box. Frames that are face crops
    already (``cropped``) are aligned only when ``face_align`` is ``landmarks`` outright, and kept as they are
    when no face is found on them; ``error`` is the DatasetError when a frame to crop shows no face."""
    frames = list(frames)
    if (not cropped or face_align == "landmarks") and resolve_face_align(face_align) == "landmarks":
        alignment = find_alignment(frames[0])
        if alignment is not None:
            return [alignment.apply(f) for f in frames]
    if cropped:
        return frames
    box = face_box(frames[0], error)
    return [crop(f, box) for f in frames]


def frames_to_inputs(onset: np.ndarray, key: np.ndarray, offset: np.ndarray, cropped: bool, settings: PrepSettings,
                     name: str, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey onset, key and offset frames -> key crop and the two flow fields (one face transform per clip,
    ``face_frames``)."""
    if not (onset.shape == key.shape == offset.shape):
        raise DatasetError(f"clip {name}: frames differ in size {onset.shape}, {key.shape}, {offset.shape}")
    onset, key, offset = face_frames([onset, key, offset], cropped, settings.face_align,
                                     f"clip {name}: no face found in {where}")
    size = (settings.work_size, settings.work_size)
    onset, key, offset = (cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in (onset, key, offset))
    return key, compute_flow(onset, key, settings.flow), compute_flow(key, offset, settings.flow)


def flow_path_of(row: pd.Series | dict) -> str:
    """The clip's flow image (a flow-folder row), or "" for a frames row."""
    value = row.get("flow_path", "")
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def available_streams(table: pd.DataFrame) -> tuple[str, ...]:
    """The streams ``prepare`` can build for every clip of ``table``: all of ``STREAM_NAMES`` for
    frames, only ``FLOW_FOLDER_STREAMS`` when any clip comes from a flow folder."""
    records = table.to_dict("records")
    if "flow_path" in table.columns and any(flow_path_of(r) for r in records):
        return FLOW_APEX_STREAMS if records and all(apex_image_of(r) for r in records) else FLOW_FOLDER_STREAMS
    return STREAM_NAMES


def apex_image_of(row: pd.Series | dict) -> str:
    """A flow-folder row's apex face image (its ``apex_path``), or "" when it has none."""
    value = row.get("apex_path", "")
    return "" if value is None or (isinstance(value, float) and value != value) else str(value).strip()


def givable_streams(table: pd.DataFrame) -> tuple[str, ...]:
    """Every stream ``prepare`` can build for ``table`` when asked: ``available_streams`` and, for frames, the
    face volume (``VOLUME_STREAM``)."""
    available = available_streams(table)
    return (*available, VOLUME_STREAM) if available == STREAM_NAMES else available


def check_streams(table: pd.DataFrame, streams: Sequence[str]) -> None:
    """A clear error when ``streams`` asks for what the table cannot give (e.g. SS from a flow folder)."""
    unknown = [s for s in streams if s not in ALL_STREAMS]
    if unknown:
        raise ValueError(f"unknown streams {unknown}; expected some of {ALL_STREAMS}")
    available = givable_streams(table)
    missing = [s for s in streams if s not in available]
    if VOLUME_STREAM in streams and not missing:  # key-frame clips refused before any work, naming the clip
        for row in table.to_dict("records"):
            if row.get("onset_path") and row.get("frames_dir"):
                clip_volume_frames(row)
    if missing:
        flow_rows = table[[bool(flow_path_of(r)) for r in table.to_dict("records")]]
        folders = ", ".join(sorted(set(flow_rows.frames_dir.astype(str)))) or "?"
        raise DatasetError(f"the flow folder {folders} gives only the {', '.join(available)} stream; "
                           f"asked for {', '.join(missing)} (ss, ls and dt need an apex image for every clip: "
                           "an apex column in its index.csv, or --apex-root DIR)")


def prepare_clip(row: pd.Series | dict, settings: PrepSettings) -> dict[str, np.ndarray]:
    """Streams of one clip, (variants, C, n, n) float16 each; a flow-folder clip gives only "uvs", in float32:
    its 8-bit levels k / 255 would move by up to 2.4e-4 in float16, enough to flip borderline clips of the
    linear floor, and flow folders are small."""
    flow_path = flow_path_of(row)
    if flow_path:
        name = f"clip {row['dataset']}:{row['subject']}/{row['clip']}"
        maps = read_flow_image(flow_path, name)
        apex_path = apex_image_of(row)
        if not apex_path:
            return {"uvs": normalised_uvs_variants(maps, settings.size, settings.augment).astype(np.float32)}
        return flow_apex_streams(maps, read_apex_image(apex_path, name), settings.size, settings.blocks,
                                 settings.work_size, settings.augment)
    key, flow1, flow2 = clip_inputs(row, settings)
    streams = augmented_streams(key, flow1, flow2, settings.size, settings.blocks, settings.augment)
    return {name: array.astype(np.float16) for name, array in streams.items()}


def clip_volume_frames(row: pd.Series | dict) -> list[str]:
    """Paths of a clip's frames from onset to offset, in frame order: only files named as the onset file is
    (the same text before the frame number and the same suffix), so other images in the folder (masks,
    another format) are never taken. A clip with onset == offset gives its one frame."""
    onset_path = Path(row["onset_path"])
    match = FRAME_NUMBER.search(onset_path.name)
    prefix = onset_path.name[:match.start(1)] if match else ""
    frames: dict[int, Path] = {}
    folder = Path(row["frames_dir"])
    for path in folder.iterdir() if folder.is_dir() else ():
        found = FRAME_NUMBER.search(path.name)
        if found and path.name[:found.start(1)] == prefix and path.suffix == onset_path.suffix:
            frames[int(found.group(1))] = path
    refuse_key_frames(frames, int(row["onset"]), int(row["offset"]),
                      f"clip {row['dataset']}:{row['subject']}/{row['clip']} ({row['frames_dir']})",
                      f"the {VOLUME_STREAM} stream (the face volume LBP-TOP reads)")
    span = [str(frames[n]) for n in sorted(frames) if int(row["onset"]) <= n <= int(row["offset"])]
    if not span:
        raise DatasetError(f"clip {row['dataset']}:{row['subject']}/{row['clip']}: no frame from onset {row['onset']} "
                           f"to offset {row['offset']} named like {onset_path.name} in {row['frames_dir']}")
    return span


def prepare_volume(row: pd.Series | dict, settings: PrepSettings, paths: Sequence[str] | None = None) -> np.ndarray:
    """The ``vol`` stream of one clip, (1, T, n, n) float32: every frame onset..offset (``paths``, default
    ``clip_volume_frames``) read in grey, the face cut as for the other streams (found on the onset, one
    transform for all), ``volume_maps``. Variant 0 only: the volume feeds hand-crafted features, which never
    see augmentation. float32, not float16: LBP codes compare neighbouring values, and float16 rounding
    would turn near-equal voxels into ties."""
    name = f"{row['dataset']}:{row['subject']}/{row['clip']}"
    paths = clip_volume_frames(row) if paths is None else paths
    frames = face_frames([read_grey(p, name) for p in paths], bool(row["cropped"]), settings.face_align,
                         f"clip {name}: no face found in {paths[0]}")
    return volume_maps(frames, settings.size)[None].astype(np.float32)


def volume_cache_path(cache_dir: Path, row: pd.Series, settings: PrepSettings, key: str | None = None,
                      paths: Sequence[str] | None = None) -> Path:
    """Per-clip cache file of the ``vol`` stream: the same settings-and-code folder as ``cache_path``, the
    name hashing every frame of the span (``paths``, default ``clip_volume_frames``: path, size, mtime) and
    whether the frames are face crops."""
    digest = hashlib.sha1()
    for path in clip_volume_frames(row) if paths is None else paths:
        stat = Path(path).stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    digest.update(f"cropped={bool(row['cropped'])}".encode())  # decides whether the face is cut
    safe = f"{row['dataset']}__{row['subject']}__{row['clip']}".replace("/", "_")
    return cache_dir / f"prep-{key or settings.key()}" / f"{safe}__vol__{digest.hexdigest()[:10]}.npz"


def cache_path(cache_dir: Path, row: pd.Series, settings: PrepSettings, key: str | None = None) -> Path:
    """Per-clip cache file: settings-and-code hash folder (``key``, default ``settings.key()``),
    source-file hash (the three frames, or the flow image and its apex image when it has one) in the name."""
    digest = hashlib.sha1()
    flow_path = flow_path_of(row)
    sources = [flow_path, *([apex_image_of(row)] if apex_image_of(row) else [])] if flow_path else \
        [row[c] for c in ("onset_path", "apex_path", "offset_path")]
    for path in sources:
        try:
            stat = Path(path).stat()
        except OSError:
            raise DatasetError(f"clip {row['dataset']}:{row['subject']}/{row['clip']}: cannot read image {path} "
                               "(missing)") from None
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns};".encode())
    safe = f"{row['dataset']}__{row['subject']}__{row['clip']}".replace("/", "_")
    return cache_dir / f"prep-{key or settings.key()}" / f"{safe}__{digest.hexdigest()[:10]}.npz"


def private_tmp_path(path: Path, pid: int | None = None) -> Path:
    """Where a process writes a cache file before renaming it into place: named by the process, so two
    runs preparing the same clip at once (parallel benchmark rows) never move each other's file away."""
    return path.with_name(f"{path.stem}.{os.getpid() if pid is None else pid}.tmp.npz")


def prepare(table: pd.DataFrame, settings: PrepSettings, cache_dir: str | Path | None = None,
            progress: bool = True, streams: Sequence[str] | None = None, jobs: int = 1) -> Prepared:
    """Stream tensors for every clip of ``table``, from the cache where possible.

    ``streams`` names the streams wanted (an error says when the table cannot give one, e.g. SS of
    a flow folder); None gives all of ``available_streams(table)``. ``jobs`` > 1 computes the clips not yet
    in the cache in that many worker processes (face crop and TV-L1 flow dominate a first preparation); the
    tensors are the same whatever ``jobs`` is, since no step of the preparation draws at random.
    """
    if streams is not None:
        check_streams(table, streams)
    names = tuple(dict.fromkeys(streams)) if streams is not None else available_streams(table)
    cache = Path(cache_dir) if cache_dir else None
    key = settings.key() if cache else None
    frame_streams = tuple(n for n in names if n != VOLUME_STREAM)
    rows = [row for _, row in table.iterrows()]
    paths = [cache_path(cache, row, settings, key) if cache else None for row in rows] if frame_streams else []
    computed = _compute_in_workers(rows, paths, settings, frame_streams, jobs, progress) if frame_streams else {}
    per_clip: list[dict[str, np.ndarray]] = []
    for index, row in enumerate(tqdm(rows, desc="prepare", unit="clip", disable=bars_disabled(progress))):
        clip: dict[str, np.ndarray] = {}
        if frame_streams:
            clip |= computed.pop(index, None) or _clip_streams(row, paths[index], settings, frame_streams)
        if VOLUME_STREAM in names:  # the frame folder is listed once, for the cache key and the volume
            frames = clip_volume_frames(row)
            clip |= _cached(volume_cache_path(cache, row, settings, key, frames) if cache else None,
                            lambda row=row, frames=frames: {VOLUME_STREAM: prepare_volume(row, settings, frames)},
                            (VOLUME_STREAM,))
        per_clip.append(clip)
    arrays = {name: np.stack([c[name] for c in per_clip]) for name in names}
    return Prepared(table.reset_index(drop=True), arrays, settings)


def _clip_streams(row: pd.Series, path: Path | None, settings: PrepSettings,
                  names: Sequence[str]) -> dict[str, np.ndarray]:
    """The frame streams ``names`` of one clip, from its cache file or computed (and written there)."""
    return _cached(path, lambda: prepare_clip(row, settings), names)


def _init_preparation_worker() -> None:
    cv2.setNumThreads(1)  # one core a worker: the workers are the parallelism


def _compute_in_workers(rows: list[pd.Series], paths: list[Path | None], settings: PrepSettings,
                        names: Sequence[str], jobs: int, progress: bool) -> dict[int, dict[str, np.ndarray]]:
    """The streams of every clip not yet in the cache, by row index, computed in ``jobs`` worker processes
    (each writes its clips' cache files); nothing when ``jobs`` is 1 or fewer than two clips are missing.
    A clip's error is raised here as it would be in this process (the first in table order)."""
    missing = [i for i, path in enumerate(paths) if path is None or not path.exists()]
    if jobs <= 1 or len(missing) < 2:
        return {}
    context = multiprocessing.get_context("spawn")  # never fork a process that holds torch's thread pools
    pool = ProcessPoolExecutor(min(jobs, len(missing)), mp_context=context, initializer=_init_preparation_worker)
    try:
        results = pool.map(_clip_streams, [rows[i] for i in missing], [paths[i] for i in missing],
                           [settings] * len(missing), [names] * len(missing),
                           chunksize=max(1, len(missing) // (8 * jobs)))
        bar = tqdm(results, total=len(missing), desc=f"prepare ({jobs} processes)", unit="clip",
                   disable=bars_disabled(progress))
        return dict(zip(missing, bar, strict=True))
    finally:
        pool.shutdown(cancel_futures=True)  # after an error, the clips not yet started are not prepared


def _cached(path: Path | None, compute: Callable[[], dict[str, np.ndarray]],
            names: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of one clip from its cache file when it holds them all, else computed (and the file
    written through a private temporary name, so parallel runs never see half a file)."""
    if path is not None and path.exists():
        with np.load(path) as stored:
            if all(name in stored.files for name in names):
                return {name: stored[name] for name in names}
    arrays = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = private_tmp_path(path)
        np.savez(tmp, **arrays)
        tmp.replace(path)
    return arrays
