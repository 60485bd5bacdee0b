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

from tscnn.datasets.base import Database, DatasetError, read_csv_table, read_spreadsheet
from tscnn.datasets.sheet import FrameLayout, SheetRow, SheetSpec, read_sheet_database

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


def read_coding(path: Path) -> pd.DataFrame:
    """The coding table from the workbook or its CSV export, headers stripped of spaces."""
    if path.suffix.lower() == ".csv":
        sheet = read_csv_table(path, dtype=str)
    else:
        sheet = read_spreadsheet(path, sheet_name=0, dtype=str)
    sheet.columns = [str(c).strip() for c in sheet.columns]
    return sheet


def frames_root(root: Path) -> FrameLayout:
    """The folder holding the per-emotion folders of micro-expression clips."""
    for candidate in (root / "Micro_Expression", root, root / "MMEW_Final" / "Micro_Expression"):
        if any((candidate / e).is_dir() for e in EMOTIONS):
            return FrameLayout(candidate)
    raise DatasetError(f"{root}: no MMEW emotion folders (Micro_Expression/<emotion>/) found")


def folder_per_emotion(base: Path, row: SheetRow, quirks: list[str]) -> Path:
    """``<base>/<emotion>/<clip>``: the emotion folder repeats the label."""
    return base / row.emotion / row.clip


SPEC = SheetSpec(
    name="mmew", display="MMEW", coding_patterns=CODING_PATTERNS, file_what="MMEW coding",
    sheet_what="MMEW coding table", class_sets=CLASS_SETS, emotions=EMOTIONS, subject_format="S{:02d}",
    read_sheet=read_coding, frames_root=frames_root, clip_dir=folder_per_emotion,
)


def read_mmew(root: str | Path, coding: str | Path | None = None, classes: str = "6class",
              check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read MMEW at ``root`` with the class set ``classes`` (6class, 7class, 4class or 3class)."""
    return read_sheet_database(SPEC, root, coding, classes, check_frames, apex_fallback)
