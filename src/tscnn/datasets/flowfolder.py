"""Flow-folder reader and writer: precomputed onset->apex u, v, strain images with an index.

This is the format the MEGC challenges distribute and STSTNet / Off-ApexNet take as input (e.g.
``../shared/real/megc2019-flow28``): a folder with ``index.csv`` (columns ``dataset, subject,
clip, label, label_name, flow``; ``flow`` a path relative to the folder) and one RGB PNG per clip
whose R, G, B channels are u, v and the optical-strain magnitude, each min-max normalised per
image to 0..255. The raw flow is gone, so such a folder gives only the "uvs" stream (see
``tscnn.preprocessing.prepare.available_streams``); its augmentation is the approximate one of
``tscnn.preprocessing.streams.normalised_uvs_variants``.

``write_flow_folder`` exports any frames database (or prepared tensors) to the same format, so
users can produce the challenge input and tests can build small fixtures.
The PNG reader and writer (``read_flow_image``, ``write_flow_image``, importable from here) live in
``tscnn.preprocessing.frames``, beside the frame reader, since the preparation reads them too.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from tscnn.datasets.apeximages import apex_image_path
from tscnn.datasets.base import (
    APEX_FALLBACKS,
    TABLE_COLUMNS,
    Database,
    DatasetError,
    database_folder,
    is_blank,
    read_index_csv,
)
from tscnn.preprocessing.flow import minmax_normalise
from tscnn.preprocessing.frames import read_flow_image, write_flow_image
from tscnn.preprocessing.prepare import Prepared, PrepSettings, prepare

INDEX_NAME = "index.csv"
INDEX_COLUMNS = ["dataset", "subject", "clip", "label", "label_name", "flow"]
FLOW_TABLE_COLUMNS = [*TABLE_COLUMNS, "flow_path"]
CLASS_SETS = ("all",)  # every class named in the index; a flow folder has no emotion spreadsheet to map


def read_index(path: Path) -> pd.DataFrame:
    """The flow folder's index as text columns, with its required headers and at least one clip."""
    sheet = read_index_csv(path, INDEX_COLUMNS, "flow-folder")
    if sheet.empty:
        raise DatasetError(f"{path}: the flow-folder index lists no clips")
    return sheet


def read_flowfolder(root: str | Path, coding: str | Path | None = None, classes: str = "all",
                    check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read a flow folder at ``root`` (index ``coding``, default ``root/index.csv``; flow paths are
    relative to ``root``).

    Classes are the index's (label, label_name) pairs in label order; labels that skip numbers are
    renumbered 0..K-1 (a quirk says so). With ``check_frames`` every image is opened once, so a bad
    file fails here, naming it, rather than mid-training. Frame columns are empty (``onset``,
    ``apex``, ``offset`` are NA, ``apex_rule`` is "n/a"); ``frames_dir`` is the folder and
    ``flow_path`` the absolute image path. ``apex_path`` is the clip's apex face image when the index
    has an ``apex`` column (relative to ``root``; ``tscnn.datasets.apeximages``), else "". ``apex_fallback``
    is accepted for the common reader signature and has nothing to act on.
    """
    root = database_folder(root, "flow-folder database")
    if classes not in CLASS_SETS:
        raise ValueError(f"unknown flow-folder class set {classes!r}; expected one of {list(CLASS_SETS)}")
    if apex_fallback not in APEX_FALLBACKS:
        raise ValueError(f"unknown apex fallback {apex_fallback!r}; expected one of {APEX_FALLBACKS}")
    index = Path(coding) if coding is not None else root / INDEX_NAME
    sheet = read_index(index)
    name_of: dict[int, tuple[str, int]] = {}  # label -> (label_name, row)
    label_of: dict[str, tuple[int, int]] = {}  # label_name -> (label, row)
    seen: dict[tuple[str, str, str], int] = {}
    first_size: tuple[tuple[int, ...], Path] | None = None  # every image of a folder has one size: none is resized
    rows = []
    for i, rec in enumerate(sheet.to_dict("records")):
        line = i + 2  # the header is line 1
        where = f"{index} row {line}: clip {rec['subject']}/{rec['clip']}"
        for column in ("dataset", "subject", "clip", "label", "label_name", "flow"):
            if is_blank(rec[column]) or rec[column] == "":
                raise DatasetError(f"{where}: {column} is empty")
        try:
            label = int(rec["label"])
        except ValueError:
            raise DatasetError(f"{where}: unknown class: label {rec['label']!r} is not a class number") from None
        if label < 0:
            raise DatasetError(f"{where}: unknown class: label {label} is negative")
        name = rec["label_name"]
        if label in name_of and name_of[label][0] != name:
            raise DatasetError(f"{where}: label {label} is named {name!r} here but {name_of[label][0]!r} "
                               f"at row {name_of[label][1]}")
        if name in label_of and label_of[name][0] != label:
            raise DatasetError(f"{where}: class {name!r} has label {label} here but {label_of[name][0]} "
                               f"at row {label_of[name][1]}")
        name_of.setdefault(label, (name, line))
        label_of.setdefault(name, (label, line))
        ident = (rec["dataset"], rec["subject"], rec["clip"])
        if ident in seen:
            raise DatasetError(f"{where}: duplicate clip {'/'.join(ident)} (also at row {seen[ident]})")
        seen[ident] = line
        flow_path = (root / rec["flow"]).resolve()
        if check_frames:
            shape = read_flow_image(flow_path, where).shape[:2]
            first_size = first_size or (shape, flow_path)
            if shape != first_size[0]:
                raise DatasetError(f"{where}: flow image {flow_path} is {shape[1]}x{shape[0]} px, the folder's "
                                   f"others {first_size[0][1]}x{first_size[0][0]} (as {first_size[1].name}); "
                                   "write every flow image at one size")
        rows.append({"dataset": rec["dataset"], "subject": rec["subject"], "clip": rec["clip"], "emotion": name,
                     "label": label, "onset": pd.NA, "apex": pd.NA, "offset": pd.NA, "apex_rule": "n/a",
                     "action_units": "", "frames_dir": str(root.resolve()), "onset_path": "",
                     "apex_path": apex_image_path(root, rec, where, check_frames),
                     "offset_path": "", "cropped": True, "flow_path": str(flow_path)})
    labels = sorted(name_of)
    quirks = []
    if labels != list(range(len(labels))):
        quirks.append(f"{index}: labels {labels} renumbered 0..{len(labels) - 1} in label order")
        for row in rows:
            row["label"] = labels.index(row["label"])
    table = pd.DataFrame(rows, columns=FLOW_TABLE_COLUMNS)
    table[["onset", "apex", "offset"]] = table[["onset", "apex", "offset"]].astype("Int64")
    return Database("flowfolder", root, table, tuple(name_of[label][0] for label in labels), quirks)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))


def _resized_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """(3, n, n) maps at another size, each min-max normalised again so every channel spans 0..1."""
    if maps.shape[1:] == (size, size):
        return maps
    method = cv2.INTER_AREA if size < maps.shape[1] else cv2.INTER_LINEAR
    return np.stack([minmax_normalise(cv2.resize(m, (size, size), interpolation=method)) for m in maps])


def write_flow_folder(source: Prepared | Database, out: str | Path, size: int = 28,
                      settings: PrepSettings | None = None, cache_dir: str | Path | None = None,
                      progress: bool = False, jobs: int = 1) -> Path:
    """Export the original (un-augmented) "uvs" stream of every clip as a flow folder at ``out``;
    returns the index path.

    A ``Database`` is prepared first at ``size`` without augmentation (``settings`` gives the flow
    method and work size, default ``PrepSettings()``; ``cache_dir`` and ``jobs`` as in ``prepare``). ``Prepared``
    tensors are used as they are, resized (and re-normalised) when their size is not ``size``. Class
    names come from the table's ``emotion`` column (the class name of every reader's clips). PNG
    names are ``flow/<subject>_<clip>.png``, as in the MEGC folders.
    """
    if isinstance(source, Database):
        base = settings or PrepSettings()
        source = prepare(source.table, replace(base, size=size, augment=False), cache_dir, progress=progress,
                         streams=("uvs",), jobs=jobs)
    if "uvs" not in source.arrays:
        raise ValueError(f"these prepared tensors have no uvs stream (streams {sorted(source.arrays)})")
    out = Path(out)
    uvs = source.arrays["uvs"][:, 0].astype(np.float32)
    records, used = [], set()
    for row, maps in zip(source.table.to_dict("records"), uvs, strict=True):
        name = f"{_safe(row['subject'])}_{_safe(row['clip'])}"
        if name in used:
            name = f"{_safe(row['dataset'])}_{name}"
        used.add(name)
        relative = f"flow/{name}.png"
        write_flow_image(out / relative, _resized_maps(maps, size))
        records.append({"dataset": row["dataset"], "subject": row["subject"], "clip": row["clip"],
                        "label": int(row["label"]), "label_name": row["emotion"], "flow": relative})
    index = out / INDEX_NAME
    pd.DataFrame(records, columns=INDEX_COLUMNS).to_csv(index, index=False)
    return index
