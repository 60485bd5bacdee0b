"""MMEW reader: the micro-expression coding table and the per-emotion frame folders.

Layout: ``<root>/Micro_Expression/happiness/S01-01-001/15.jpg`` (found also under
``MMEW_Final/``); the emotion folder repeats the label. Annotation: ``MMEW_Micro_Exp.xlsx`` (or a
CSV export of it, e.g. the HTNet ``MMEW_Micro_Exp_delete_others.csv``) with ``Subject, Filename,
OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion, remarks``. Subject ids are
numbers (1) and become ``S01`` as in the clip names.
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
    read_csv_table,
    read_spreadsheet,
    subject_number,
)

EMOTIONS = ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "others")
NEGATIVE = ("disgust", "fear", "sadness", "anger")
CLASS_SETS: dict[str, dict[str, str]] = {
    "6class": {e: e for e in EMOTIONS if e != "others"},
    "7class": {e: e for e in EMOTIONS},
    "4class": {**{e: "negative" for e in NEGATIVE}, "happiness": "positive", "surprise": "surprise",
               "others": "others"},
    "3class": {**{e: "negative" for e in NEGATIVE}, "happiness": "positive", "surprise": "surprise"},
}
CODING_PATTERNS = ("MMEW_Micro_Exp*.xlsx", "MMEW_Micro_Exp*.csv")
REQUIRED = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"]


def read_coding(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        sheet = read_csv_table(path, dtype=str)
    else:
        sheet = read_spreadsheet(path, sheet_name=0, dtype=str)
    sheet.columns = [str(c).strip() for c in sheet.columns]
    return checked_sheet(sheet, REQUIRED, path, "MMEW coding table")


def frames_root(root: Path) -> Path:
    """The folder holding the per-emotion folders of micro-expression clips."""
    for candidate in (root / "Micro_Expression", root, root / "MMEW_Final" / "Micro_Expression"):
        if any((candidate / e).is_dir() for e in EMOTIONS):
            return candidate
    raise DatasetError(f"{root}: no MMEW emotion folders (Micro_Expression/<emotion>/) found")


def read_mmew(root: str | Path, coding: str | Path | None = None, classes: str = "6class",
              check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read MMEW at ``root`` with the class set ``classes`` (6class, 7class, 4class or 3class)."""
    root = database_folder(root, "MMEW database")
    mapping, class_names = class_set(CLASS_SETS, classes, "MMEW")
    coding_path = find_file(root, CODING_PATTERNS, coding, "MMEW coding")
    base = frames_root(root) if check_frames else root
    rows, quirks = [], []
    for i, rec in read_coding(coding_path).iterrows():
        source = f"{coding_path.name} row {i + 2}"
        subject = f"S{subject_number(rec['Subject'], source, rec['Filename']):02d}"
        clip = str(rec["Filename"]).strip()
        emotion = str(rec["Estimated Emotion"]).strip().lower()
        label = class_of(emotion, EMOTIONS, mapping, f"{source}: clip {subject}/{clip}")
        if label is None:
            continue
        rows.append(annotated_clip("mmew", subject, clip, label, class_names.index(label), rec["OnsetFrame"],
                                   rec["ApexFrame"], rec["OffsetFrame"], str(rec.get("Action Units", "")),
                                   base / emotion / clip if check_frames else None, source, quirks,
                                   apex_fallback=apex_fallback))
    return Database("mmew", root, pd.DataFrame(rows, columns=TABLE_COLUMNS), class_names, quirks)
