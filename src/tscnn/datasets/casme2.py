"""CASME II reader: the official coding spreadsheet and the frame folders, as distributed.

Layouts: ``<root>/sub01/EP02_01f/reg_img46.jpg`` (Cropped, possibly nested ``Cropped/Cropped``) or
``<root>/sub01/EP02_01f/img46.jpg`` (RAW_selected, 640x480, needs face cropping). Spreadsheet:
sheet 1 of ``CASME2-coding-*.xlsx`` with ``Subject, Filename, <blank>, OnsetFrame, ApexFrame,
OffsetFrame, <blank>, Action Units, Estimated Emotion``; subject ids are text ('01').
Known quirk: the apex of sub04/EP12_01f is '/', resolved by the apex rule (spotter, or middle frame).
"""

from __future__ import annotations

from pathlib import Path

from tscnn.datasets.base import Database, DatasetError
from tscnn.datasets.sheet import FrameLayout, SheetSpec, read_sheet_database

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


def frames_root(root: Path) -> FrameLayout:
    """The folder holding ``subXX`` folders, the frame-name prefix and whether frames are face crops."""
    for candidate in (root, root / "Cropped", root / "Cropped" / "Cropped", root / "CASME2_RAW_selected",
                      root / "CASME2-RAW_selected"):
        subs = sorted(candidate.glob("sub*/*"))
        if subs:
            sample = next((f.name for s in subs[:5] for f in s.iterdir() if f.is_file()), "")
            cropped = sample.startswith("reg_")
            return FrameLayout(candidate, "reg_img" if cropped else "img", cropped)
    raise DatasetError(f"{root}: no CASME II frame folders (sub01/EP.../) found here or under Cropped/")


SPEC = SheetSpec(
    name="casme2", display="CASME II", coding_patterns="CASME2-coding-*.xlsx", file_what="CASME II coding",
    sheet_what="CASME II coding sheet", class_sets=CLASS_SETS, emotions=CLASS_SETS["all"], subject_format="sub{:02d}",
    excluded={"megc2019": MEGC2019_EXCLUDED}, frames_root=frames_root,
)


def read_casme2(root: str | Path, coding: str | Path | None = None, classes: str = "5class",
                check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read CASME II at ``root`` into a clip table restricted to ``classes`` (5class, 3class, megc2019 or all).

    With ``check_frames=False`` only the spreadsheet is read (frame paths are left empty): useful to
    inspect an annotation file without the images.
    """
    return read_sheet_database(SPEC, root, coding, classes, check_frames, apex_fallback)
