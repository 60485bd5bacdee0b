"""CASME II reader: the official coding spreadsheet and the frame folders, as distributed.

Layouts: ``<root>/sub01/EP02_01f/reg_img46.jpg`` (Cropped, possibly nested ``Cropped/Cropped``) or
``<root>/sub01/EP02_01f/img46.jpg`` (RAW_selected, 640x480, needs face cropping). Spreadsheet:
sheet 1 of ``CASME2-coding-*.xlsx`` with ``Subject, Filename, <blank>, OnsetFrame, ApexFrame,
OffsetFrame, <blank>, Action Units, Estimated Emotion``; subject ids are text ('01').
Known quirk: the apex of sub04/EP12_01f is '/', resolved by the apex rule (spotter, or middle frame).
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
    read_spreadsheet,
    subject_number,
)

CLASS_SETS: dict[str, dict[str, str]] = {
    # The paper's 5 classes (CASME II order of its confusion matrix).
    "5class": {"disgust": "disgust", "happiness": "happiness", "repression": "repression",
               "surprise": "surprise", "others": "others"},
    # MEGC2019 composite mapping.
    "3class": {"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
    "all": {e: e for e in ("disgust", "happiness", "repression", "surprise", "others", "sadness", "fear")},
}
# The MEGC2019 composite's CASME II part: the 3-class mapping minus two clips the challenge left out.
CLASS_SETS["megc2019"] = CLASS_SETS["3class"]
MEGC2019_EXCLUDED = {"sub04/EP12_01f", "sub05/EP09_05f"}
REQUIRED = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"]


def read_coding(path: Path) -> pd.DataFrame:
    """The coding sheet as text-typed columns, with a clear error when a required header is missing."""
    sheet = read_spreadsheet(path, sheet_name=0, dtype=str)
    return checked_sheet(sheet, REQUIRED, path, "CASME II coding sheet")


def frames_root(root: Path) -> tuple[Path, str | None, bool]:
    """The folder holding ``subXX`` folders, the frame-name prefix and whether frames are face crops."""
    for candidate in (root, root / "Cropped", root / "Cropped" / "Cropped", root / "CASME2_RAW_selected",
                      root / "CASME2-RAW_selected"):
        subs = sorted(candidate.glob("sub*/*"))
        if subs:
            sample = next((f.name for s in subs[:5] for f in s.iterdir() if f.is_file()), "")
            cropped = sample.startswith("reg_")
            return candidate, ("reg_img" if cropped else "img"), cropped
    raise DatasetError(f"{root}: no CASME II frame folders (sub01/EP.../) found here or under Cropped/")


def read_casme2(root: str | Path, coding: str | Path | None = None, classes: str = "5class",
                check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read CASME II at ``root`` into a clip table restricted to ``classes`` (5class, 3class, megc2019 or all).

    With ``check_frames=False`` only the spreadsheet is read (frame paths are left empty): useful to
    inspect an annotation file without the images.
    """
    root = database_folder(root, "CASME II database")
    mapping, class_names = class_set(CLASS_SETS, classes, "CASME II")
    coding_path = find_file(root, "CASME2-coding-*.xlsx", coding, "CASME II coding")
    sheet = read_coding(coding_path)
    base, prefix, cropped = frames_root(root) if check_frames else (root, None, True)
    rows, quirks = [], []
    for i, rec in sheet.iterrows():
        source = f"{coding_path.name} row {i + 2}"
        subject = f"sub{subject_number(rec['Subject'], source, rec['Filename']):02d}"
        clip = str(rec["Filename"]).strip()
        emotion = str(rec["Estimated Emotion"]).strip().lower()
        label_name = class_of(emotion, CLASS_SETS["all"], mapping, f"{source}: clip {subject}/{clip}")
        if label_name is None or (classes == "megc2019" and f"{subject}/{clip}" in MEGC2019_EXCLUDED):
            continue
        rows.append(annotated_clip("casme2", subject, clip, label_name, class_names.index(label_name),
                                   rec["OnsetFrame"], rec["ApexFrame"], rec["OffsetFrame"],
                                   str(rec.get("Action Units", "")), base / subject / clip if check_frames else None,
                                   source, quirks, prefix=prefix, cropped=cropped, apex_fallback=apex_fallback))
    return Database("casme2", root, pd.DataFrame(rows, columns=TABLE_COLUMNS), class_names, quirks)
