"""SAMM reader: the official FACS-code spreadsheet and the frame folders, as distributed.

Layout: ``<root>/006/006_1_2/006_05562.jpg`` (grey; the zero padding of the frame number varies per
clip, so frames are globbed and their numbers parsed). Spreadsheet ``SAMM_Micro_FACS_Codes_v2.xlsx``:
13 preamble rows, header on row 14 (``Subject, Filename, Inducement Code, Onset Frame, Apex Frame,
Offset Frame, Duration, Micro, Action Units, Estimated Emotion, Objective Classes, Notes``).
Known quirks: the label is "Other" (not "Others"); the apexes of 028_4_1 and 032_3_1 lie outside
[onset, offset] and are resolved by the apex rule (middle frame), listed in ``Database.quirks``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pandas as pd

from tscnn.datasets.base import (
    Database,
    DatasetError,
    class_set,
    clip_row,
    find_file,
    list_frames,
    resolve_apex,
)

CLASS_SETS: dict[str, dict[str, str]] = {
    "5class": {e: e for e in ("Anger", "Contempt", "Happiness", "Surprise", "Other")},
    "3class": {"Anger": "negative", "Contempt": "negative", "Disgust": "negative", "Fear": "negative",
               "Sadness": "negative", "Happiness": "positive", "Surprise": "surprise"},
    "all": {e: e for e in ("Anger", "Contempt", "Happiness", "Surprise", "Other", "Disgust", "Fear", "Sadness")},
}
REQUIRED = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Estimated Emotion"]
HEADER_ROW = 13  # 0-based: 13 preamble rows
CROPPED_MAX_WIDTH = 400  # frames wider than this are full camera frames and get face-cropped


def read_coding(path: Path) -> pd.DataFrame:
    sheet = pd.read_excel(path, sheet_name=0, engine="calamine", header=HEADER_ROW, dtype=str)
    missing = [c for c in REQUIRED if c not in sheet.columns]
    if missing:
        raise DatasetError(f"{path}: not a SAMM coding sheet (header expected on row {HEADER_ROW + 1}), "
                           f"missing columns {missing}")
    return sheet.dropna(subset=["Subject", "Filename"])


def read_samm(root: str | Path, coding: str | Path | None = None, classes: str = "5class",
              check_frames: bool = True) -> Database:
    """Read SAMM at ``root`` into a clip table restricted to ``classes`` (5class, 3class or all)."""
    root = Path(root)
    mapping, class_names = class_set(CLASS_SETS, classes, "SAMM")
    coding_path = find_file(root, "SAMM_Micro_FACS_Codes*.xlsx", coding, "SAMM coding")
    rows, quirks = [], []
    for i, rec in read_coding(coding_path).iterrows():
        source = f"{coding_path.name} row {i + HEADER_ROW + 2}"
        subject = f"{int(float(rec['Subject'])):03d}"
        clip = str(rec["Filename"]).strip()
        emotion = str(rec["Estimated Emotion"]).strip()
        if emotion not in CLASS_SETS["all"]:
            raise DatasetError(f"{source}: clip {subject}/{clip}: unknown emotion {emotion!r}")
        if emotion not in mapping:
            continue
        onset, offset = int(float(rec["Onset Frame"])), int(float(rec["Offset Frame"]))
        apex, quirk = resolve_apex(onset, rec["Apex Frame"], offset, f"{source} clip {subject}/{clip}")
        if quirk:
            quirks.append(quirk)
        label = mapping[emotion]
        rule = "middle" if quirk else "annotated"
        aus = str(rec.get("Action Units", ""))
        clip_dir = root / subject / clip if check_frames else None
        frames = list_frames(clip_dir) if clip_dir else None
        first = cv2.imread(str(frames[min(frames)]), cv2.IMREAD_GRAYSCALE) if frames else None
        cropped = first is None or first.shape[1] <= CROPPED_MAX_WIDTH
        rows.append(clip_row("samm", subject, clip, label, class_names.index(label), onset, apex, offset, rule, aus,
                             frames, clip_dir, source, cropped))
    return Database("samm", root, pd.DataFrame(rows), class_names, quirks)
