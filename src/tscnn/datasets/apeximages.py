"""Apex face images beside a flow folder: what gives a flow folder all three TSCNN streams.

A flow folder (``tscnn.datasets.flowfolder``) holds only onset->apex u, v, strain images. It may
also carry one apex face image per clip, in either of two layouts:

* an ``apex`` column in the flow folder's own ``index.csv``: a path relative to the flow folder
  (read automatically when the column is there);
* a sibling folder (the layout of the real ``megc2019-apex224``) with an ``index.csv`` of columns
  ``dataset, subject, clip, apex`` (``apex`` relative to that folder; other columns are ignored)
  holding a row for every clip of the flow folder, matched on (dataset, subject, clip); the run
  names it with ``--apex-root DIR`` (``Config.apex_root``).

The image's path goes into the clip table's ``apex_path`` column (empty for a flow folder without
images), so it enters the run's data fingerprint and the preparation cache key like a key frame.
The preparation (``tscnn.preprocessing.flowapex``) then builds SS and LS from the image and DT
from the flow image's u, v, strain.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tscnn.datasets.base import Database, read_index_csv
from tscnn.errors import DatasetError
from tscnn.preprocessing.flowapex import read_apex_image

APEX_COLUMN = "apex"
"""The index column naming a clip's apex face image (relative to the folder of its index)."""
KEYS = ("dataset", "subject", "clip")
APEX_INDEX_COLUMNS = [*KEYS, APEX_COLUMN]


def apex_image_path(root: Path, record: dict, where: str, check: bool = True) -> str:
    """The absolute path of a flow-folder row's apex image (its ``apex`` cell, relative to ``root``), or ""
    when the index has no ``apex`` column or the cell is empty. With ``check`` the image is decoded once, so a
    bad file fails when the folder is read, naming it."""
    cell = str(record.get(APEX_COLUMN, "") or "").strip()
    if not cell:
        return ""
    path = (root / cell).resolve()
    if check:
        read_apex_image(path, where)
    return str(path)


def attach_apex_images(db: Database, apex_root: str | Path, check: bool = True) -> Database:
    """``db`` (a flow folder) with each clip's apex image from the sibling folder ``apex_root`` in ``apex_path``.

    Every clip of the flow folder needs a row in ``apex_root/index.csv``; extra rows there are ignored.
    """
    root = Path(apex_root)
    index = root / "index.csv"
    if "flow_path" not in db.table.columns:
        raise DatasetError(f"{root}: apex images complete a flow folder (dataset flowfolder); database {db.name} "
                           "has frames of its own")
    if not root.is_dir():
        raise DatasetError(f"{root}: no apex-image folder here (expected index.csv with columns "
                           f"{APEX_INDEX_COLUMNS} and the images)")
    sheet = read_index_csv(index, APEX_INDEX_COLUMNS, "apex-image")
    found: dict[tuple[str, str, str], tuple[str, int]] = {}
    for i, rec in enumerate(sheet.to_dict("records")):
        key = tuple(rec[k] for k in KEYS)
        if key in found:
            raise DatasetError(f"{index} row {i + 2}: duplicate clip {'/'.join(key)} (also at row {found[key][1]})")
        found[key] = (rec[APEX_COLUMN], i + 2)
    table = db.table.copy()
    paths = []
    for rec in table.to_dict("records"):
        key = (str(rec["dataset"]), str(rec["subject"]), str(rec["clip"]))
        if key not in found:
            raise DatasetError(f"{index}: no apex image for clip {'/'.join(key)} of the flow folder {db.root}")
        cell, line = found[key]
        where = f"{index} row {line}: clip {key[1]}/{key[2]}"
        if not cell:
            raise DatasetError(f"{where}: apex is empty")
        path = (root / cell).resolve()
        if check:
            read_apex_image(path, where)
        paths.append(str(path))
    table["apex_path"] = paths
    return Database(db.name, db.root, table, db.classes,
                    [*db.quirks, f"apex images from {root} ({len(paths)} clips): streams ss, ls, dt, uvs"])


def has_apex_images(table: pd.DataFrame) -> bool:
    """Whether every flow-folder clip of ``table`` has an apex image (so SS, LS and DT can be prepared)."""
    if "flow_path" not in table.columns or "apex_path" not in table.columns or table.empty:
        return False
    return all(bool(str(p or "").strip()) for p in table["apex_path"].fillna(""))


def first_without_apex(table: pd.DataFrame) -> str:
    """The first clip of ``table`` without an apex image, as dataset:subject/clip ("" when none)."""
    for rec in table.to_dict("records"):
        if not str(rec.get("apex_path") or "").strip():
            return f"{rec['dataset']}:{rec['subject']}/{rec['clip']}"
    return ""
