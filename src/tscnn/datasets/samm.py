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

import pandas as pd

from tscnn.datasets.base import (
    TABLE_COLUMNS,
    Database,
    annotated_clip,
    checked_sheet,
    class_of,
    class_set,
    database_folder,
    find_file,
    read_spreadsheet,
    subject_number,
)

CLASS_SETS: dict[str, dict[str, str]] = {
    "5class": {e: e for e in ("Anger", "Contempt", "Happiness", "Surprise", "Other")},
    "3class": {"Anger": "negative", "Contempt": "negative", "Disgust": "negative", "Fear": "negative",
               "Sadness": "negative", "Happiness": "positive", "Surprise": "surprise"},
    "all": {e: e for e in ("Anger", "Contempt", "Happiness", "Surprise", "Other", "Disgust", "Fear", "Sadness")},
}
CLASS_SETS["megc2019"] = CLASS_SETS["3class"]  # the MEGC2019 composite takes all 133 3-class clips
REQUIRED = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Estimated Emotion"]
HEADER_ROW = 13  # 0-based: 13 preamble rows


def read_coding(path: Path) -> pd.DataFrame:
    sheet = read_spreadsheet(path, sheet_name=0, header=HEADER_ROW, dtype=str)
    return checked_sheet(sheet, REQUIRED, path, f"SAMM coding sheet (header expected on row {HEADER_ROW + 1})")


def read_samm(root: str | Path, coding: str | Path | None = None, classes: str = "5class",
              check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read SAMM at ``root`` into a clip table restricted to ``classes`` (5class, 3class, megc2019 or all)."""
    root = database_folder(root, "SAMM database")
    mapping, class_names = class_set(CLASS_SETS, classes, "SAMM")
    coding_path = find_file(root, "SAMM_Micro_FACS_Codes*.xlsx", coding, "SAMM coding")
    rows, quirks = [], []
    for i, rec in read_coding(coding_path).iterrows():
        source = f"{coding_path.name} row {i + HEADER_ROW + 2}"
        subject = f"{subject_number(rec['Subject'], source, rec['Filename']):03d}"
        clip = str(rec["Filename"]).strip()
        label = class_of(str(rec["Estimated Emotion"]).strip(), CLASS_SETS["all"], mapping,
                         f"{source}: clip {subject}/{clip}")
        if label is None:
            continue
        rows.append(annotated_clip("samm", subject, clip, label, class_names.index(label), rec["Onset Frame"],
                                   rec["Apex Frame"], rec["Offset Frame"], str(rec.get("Action Units", "")),
                                   root / subject / clip if check_frames else None, source, quirks,
                                   apex_fallback=apex_fallback))
    return Database("samm", root, pd.DataFrame(rows, columns=TABLE_COLUMNS), class_names, quirks)
