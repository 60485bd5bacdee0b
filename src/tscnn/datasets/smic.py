"""SMIC-HS reader: the label is the folder, there is no spreadsheet and no apex annotation.

Layout as distributed (``SMIC_all_cropped``): ``<root>/HS/s1/micro/negative/s1_ne_01/reg_image036237.bmp``
(100 fps face crops; ``image*.bmp`` full frames in the raw release are face-cropped by width).
``root`` may be the folder holding ``HS`` or ``HS`` itself. Each clip folder runs from onset to
offset, so onset and offset are its first and last frames; the apex comes from the apex rule
(the spotter, or the middle frame with ``apex_fallback="middle"``) and every clip is listed in
``Database.quirks``.

Ids follow the MEGC2019 composite's spelling: subject ``s1`` becomes ``s01`` and clip
``s1_ne_01`` becomes ``s01_ne_01`` (``frames_dir`` keeps the real folder).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from tscnn.datasets.base import (
    TABLE_COLUMNS,
    ClipAnnotation,
    ClipSource,
    Database,
    DatasetError,
    class_set,
    clip_row,
    database_folder,
    is_face_crop,
    list_frames,
    resolve_apex,
)

CLASS_SETS: dict[str, dict[str, str]] = {
    "3class": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}
CLASS_SETS["megc2019"] = CLASS_SETS["3class"]  # the composite takes all 164 clips
SUBJECT_FOLDER = re.compile(r"^s(\d+)$")


def hs_root(root: Path) -> Path:
    """The folder holding the ``sN`` subject folders of the high-speed camera."""
    for candidate in (root / "HS", root, root / "SMIC_all_cropped" / "HS"):
        if any(SUBJECT_FOLDER.match(p.name) and (p / "micro").is_dir() for p in candidate.glob("s*")):
            return candidate
    raise DatasetError(f"{root}: no SMIC-HS subject folders (HS/s1/micro/...) found here or under HS/")


def read_smic(root: str | Path, coding: str | Path | None = None, classes: str = "3class",
              check_frames: bool = True, apex_fallback: str = "spotter") -> Database:
    """Read SMIC-HS at ``root``. ``coding`` is accepted for a common interface and must be None."""
    if coding is not None:
        raise DatasetError(f"SMIC-HS has no coding file (labels are folder names); got {coding}")
    if not check_frames:
        raise DatasetError("SMIC-HS is defined by its frame folders; it cannot be read without them")
    root = database_folder(root, "SMIC-HS database")
    mapping, class_names = class_set(CLASS_SETS, classes, "SMIC-HS")
    base = hs_root(root)
    rows, quirks = [], []
    for subject_dir in sorted(base.glob("s*"), key=lambda p: (len(p.name), p.name)):
        match = SUBJECT_FOLDER.match(subject_dir.name)
        if not match or not (subject_dir / "micro").is_dir():
            continue
        subject = f"s{int(match.group(1)):02d}"
        for emotion_dir in sorted(p for p in (subject_dir / "micro").iterdir() if p.is_dir()):
            emotion = emotion_dir.name.lower()
            if emotion not in mapping:
                raise DatasetError(f"{emotion_dir}: unknown emotion folder {emotion_dir.name!r}; "
                                   f"expected one of {sorted(mapping)}")
            for clip_dir in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                clip = re.sub(r"^s\d+", subject, clip_dir.name)
                source = str(clip_dir)
                frames = list_frames(clip_dir)
                if not frames:
                    raise DatasetError(f"{source}: clip {subject}/{clip}: no frames found in {clip_dir}")
                onset, offset = min(frames), max(frames)
                apex, rule, quirk = resolve_apex(onset, None, offset, f"SMIC-HS clip {subject}/{clip}", frames,
                                                    apex_fallback)
                quirks.append(quirk)
                label = mapping[emotion]
                annotation = ClipAnnotation("smic", subject, clip, label, class_names.index(label), onset, apex, offset)
                where = ClipSource(source, clip_dir, cropped=is_face_crop(frames))
                rows.append(clip_row(annotation, rule, frames, where))
    if not rows:
        raise DatasetError(f"{base}: no SMIC-HS clips found under sN/micro/<emotion>/")
    return Database("smic", root, pd.DataFrame(rows, columns=TABLE_COLUMNS), class_names, quirks)
