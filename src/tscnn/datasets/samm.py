"""SAMM reader: the official FACS-code spreadsheet and the frame folders, as distributed.

Layout: ``<root>/006/006_1_2/006_05562.jpg`` (grey; the zero padding of the frame number varies per
clip, so frames are globbed and their numbers parsed). Spreadsheet ``SAMM_Micro_FACS_Codes_v2.xlsx``:
13 preamble rows, header on row 14 (``Subject, Filename, Inducement Code, Onset Frame, Apex Frame,
Offset Frame, Duration, Micro, Action Units, Estimated Emotion, Objective Classes, Notes``).
Known quirks: the label is "Other" (not "Others"); the apexes of 028_4_1 and 032_3_1 lie outside
[onset, offset] and are resolved by the apex rule (spotter, or middle frame), listed in ``Database.quirks``.
"""

from __future__ import annotations

from pathlib import Path

from tscnn.datasets.base import Database
from tscnn.datasets.sheet import SheetSpec, read_sheet_database

CLASS_SETS: dict[str, dict[str, str]] = {
    "5class": {e: e for e in ("Anger", "Contempt", "Happiness", "Surprise", "Other")},
    "3class": {"Anger": "negative", "Contempt": "negative", "Disgust": "negative", "Fear": "negative",
               "Sadness": "negative", "Happiness": "positive", "Surprise": "surprise"},
    "all": {e: e for e in ("Anger", "Contempt", "Happiness", "Surprise", "Other", "Disgust", "Fear", "Sadness")},
}
CLASS_SETS["megc2019"] = CLASS_SETS["3class"]  # the MEGC2019 composite takes all 133 3-class clips
HEADER_ROW = 13  # 0-based: 13 preamble rows

SPEC = SheetSpec(
    name="samm", display="SAMM", coding_patterns="SAMM_Micro_FACS_Codes*.xlsx", file_what="SAMM coding",
    sheet_what=f"SAMM coding sheet (header expected on row {HEADER_ROW + 1})", class_sets=CLASS_SETS,
    emotions=CLASS_SETS["all"], subject_format="{:03d}", header_row=HEADER_ROW, onset="Onset Frame",
    apex="Apex Frame", offset="Offset Frame", lower_emotion=False,  # labels are capitalised ("Other")
)


def read_samm(root: str | Path, coding: str | Path | None = None, classes: str = "5class",
              check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read SAMM at ``root`` into a clip table restricted to ``classes`` (5class, 3class, megc2019 or all)."""
    return read_sheet_database(SPEC, root, coding, classes, check_frames, apex_fallback)
