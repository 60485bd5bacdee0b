"""CAS(ME)^3 part A reader: the ME label sheet and the long colour videos cut into frames.

Layout: ``<root>/spNO.1/a/color/175.jpg`` (found also under ``data/part_A/``); each
``Filename`` (a..m) is one long recording holding several micro-expressions, so a clip is
(subject, filename, onset) and its id is ``<filename>_<onset>`` (``b_166``). Frames are full
1280x720 camera frames and are face-cropped. Spreadsheet: sheet ``label`` of the part A table
(``Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion``; 860 rows).
Known quirks, each reported: 'Others' spelled with a capital (3 rows), a 'J' filename for folder
'j', and an offset of 0 (two rows of spNO.40/e) -> offset = apex + (apex - onset).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tscnn.datasets.base import (
    TABLE_COLUMNS,
    Database,
    DatasetError,
    annotated_clip,
    checked_sheet,
    class_of,
    class_set,
    database_folder,
    find_file,
    frame_number,
    read_spreadsheet,
)

EMOTIONS = ("anger", "disgust", "fear", "happy", "sad", "surprise", "others")
NEGATIVE = ("anger", "disgust", "fear", "sad")
CLASS_SETS: dict[str, dict[str, str]] = {
    "7class": {e: e for e in EMOTIONS},
    "4class": {**{e: "negative" for e in NEGATIVE}, "happy": "positive", "surprise": "surprise", "others": "others"},
    "3class": {**{e: "negative" for e in NEGATIVE}, "happy": "positive", "surprise": "surprise"},
}
CODING_PATTERNS = ("*part_A*label*.xlsx", "*part*A*.xlsx", "casme3*.xlsx", "CAS(ME)3*.xlsx")
REQUIRED = ["Subject", "Filename", "Onset", "Apex", "Offset", "emotion"]


def read_label_sheet(path: Path) -> pd.DataFrame:
    sheets = read_spreadsheet(path, sheet_name=None, dtype=str)
    if not sheets:
        raise DatasetError(f"{path}: the workbook has no sheets")
    return checked_sheet(sheets.get("label", next(iter(sheets.values()))), REQUIRED, path,
                         "CAS(ME)^3 part A label sheet")


def frames_root(root: Path) -> Path:
    """The folder holding the ``spNO.*`` subject folders."""
    for candidate in (root, root / "data" / "part_A", root / "part_A", root / "part_A" / "data" / "part_A"):
        if any(candidate.glob("spNO.*")):
            return candidate
    raise DatasetError(f"{root}: no CAS(ME)^3 subject folders (spNO.*/) found here or under data/part_A/")


def video_dir(base: Path, subject: str, filename: str, quirks: list[str], source: str) -> Path:
    """The colour frame folder of a recording; a filename differing only in case is resolved and reported."""
    folder = base / subject / filename
    if not folder.is_dir():
        twins = [p for p in (base / subject).glob("*") if p.name.lower() == filename.lower()]
        if twins:
            quirks.append(f"{source}: filename {filename!r} -> folder {twins[0].name!r} (case differs)")
            folder = twins[0]
    return folder / "color" if (folder / "color").is_dir() else folder


def read_casme3(root: str | Path, coding: str | Path | None = None, classes: str = "3class",
                check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read CAS(ME)^3 part A at ``root`` with the class set ``classes`` (7class, 4class or 3class)."""
    root = database_folder(root, "CAS(ME)^3 database")
    mapping, class_names = class_set(CLASS_SETS, classes, "CAS(ME)^3")
    coding_path = find_file(root, CODING_PATTERNS, coding, "CAS(ME)^3 part A label")
    base = frames_root(root) if check_frames else root
    rows, quirks = [], []
    for i, rec in read_label_sheet(coding_path).iterrows():
        source = f"{coding_path.name} row {i + 2}"
        subject, filename = str(rec["Subject"]).strip(), str(rec["Filename"]).strip()
        onset, apex, offset = rec["Onset"], rec["Apex"], rec["Offset"]
        clip = f"{filename.lower()}_{str(onset).strip()}"
        raw = str(rec["emotion"]).strip()
        emotion = raw.lower()
        label = class_of(emotion, EMOTIONS, mapping, f"{source}: clip {subject}/{clip}")
        if emotion != raw:
            quirks.append(f"{source} clip {subject}/{clip}: emotion {raw!r} read as {emotion!r}")
        if label is None:
            continue
        if str(offset).strip() in ("0", "0.0"):
            a, o = (frame_number(v, what, source, subject, clip) for v, what in ((apex, "apex"), (onset, "onset")))
            offset = a + (a - o)
            quirks.append(f"{source} clip {subject}/{clip}: offset 0 (not annotated) -> apex + (apex - onset) = "
                          f"{offset}")
        folder = video_dir(base, subject, filename, quirks, f"{source} clip {subject}/{clip}") if check_frames else None
        rows.append(annotated_clip("casme3", subject, clip, label, class_names.index(label), onset, apex, offset,
                                   str(rec.get("AU", "")), folder, source, quirks, apex_fallback=apex_fallback))
    return Database("casme3", root, pd.DataFrame(rows, columns=TABLE_COLUMNS), class_names, quirks)
