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

from dataclasses import replace
from pathlib import Path

import pandas as pd

from tscnn.datasets.base import Database, DatasetError, frame_number, read_spreadsheet
from tscnn.datasets.sheet import FrameLayout, SheetRow, SheetSpec, read_sheet_database

EMOTIONS = ("anger", "disgust", "fear", "happy", "sad", "surprise", "others")
NEGATIVE = ("anger", "disgust", "fear", "sad")
CLASS_SETS: dict[str, dict[str, str]] = {
    "7class": {e: e for e in EMOTIONS},
    "4class": {**{e: "negative" for e in NEGATIVE}, "happy": "positive", "surprise": "surprise", "others": "others"},
    "3class": {**{e: "negative" for e in NEGATIVE}, "happy": "positive", "surprise": "surprise"},
}
CODING_PATTERNS = ("*part_A*label*.xlsx", "*part*A*.xlsx", "casme3*.xlsx", "CAS(ME)3*.xlsx")


def read_label_sheet(path: Path) -> pd.DataFrame:
    """The workbook's sheet ``label`` (else its first sheet)."""
    sheets = read_spreadsheet(path, sheet_name=None, dtype=str)
    if not sheets:
        raise DatasetError(f"{path}: the workbook has no sheets")
    return sheets.get("label", next(iter(sheets.values())))


def frames_root(root: Path) -> FrameLayout:
    """The folder holding the ``spNO.*`` subject folders."""
    for candidate in (root, root / "data" / "part_A", root / "part_A", root / "part_A" / "data" / "part_A"):
        if any(candidate.glob("spNO.*")):
            return FrameLayout(candidate)
    raise DatasetError(f"{root}: no CAS(ME)^3 subject folders (spNO.*/) found here or under data/part_A/")


def clip_name(rec: pd.Series) -> str:
    """A recording holds several clips: ``<filename>_<onset>`` (``b_166``)."""
    return f"{str(rec['Filename']).strip().lower()}_{str(rec['Onset']).strip()}"


def video_dir(base: Path, row: SheetRow, quirks: list[str]) -> Path:
    """The colour frame folder of a recording; a filename differing only in case is resolved and reported."""
    filename = str(row.rec["Filename"]).strip()
    folder = base / row.subject / filename
    if not folder.is_dir():
        twins = [p for p in (base / row.subject).glob("*") if p.name.lower() == filename.lower()]
        if twins:
            quirks.append(f"{row.where}: filename {filename!r} -> folder {twins[0].name!r} (case differs)")
            folder = twins[0]
    return folder / "color" if (folder / "color").is_dir() else folder


def fill_offset(row: SheetRow, quirks: list[str]) -> SheetRow:
    """An offset of 0 means not annotated: offset = apex + (apex - onset), reported."""
    if str(row.offset).strip() not in ("0", "0.0"):
        return row
    apex, onset = (frame_number(v, what, row.source, row.subject, row.clip)
                   for v, what in ((row.apex, "apex"), (row.onset, "onset")))
    offset = apex + (apex - onset)
    quirks.append(f"{row.where}: offset 0 (not annotated) -> apex + (apex - onset) = {offset}")
    return replace(row, offset=offset)


SPEC = SheetSpec(
    name="casme3", display="CAS(ME)^3", coding_patterns=CODING_PATTERNS, file_what="CAS(ME)^3 part A label",
    sheet_what="CAS(ME)^3 part A label sheet", class_sets=CLASS_SETS, emotions=EMOTIONS, subject_format=None,
    onset="Onset", apex="Apex", offset="Offset", emotion="emotion", action_units="AU",
    report_emotion_case=True, read_sheet=read_label_sheet, frames_root=frames_root, clip_name=clip_name,
    clip_dir=video_dir, fix_row=fill_offset,
)


def read_casme3(root: str | Path, coding: str | Path | None = None, classes: str = "3class",
                check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read CAS(ME)^3 part A at ``root`` with the class set ``classes`` (7class, 4class or 3class)."""
    return read_sheet_database(SPEC, root, coding, classes, check_frames, apex_fallback)
