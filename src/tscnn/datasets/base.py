"""What every database reader returns: a table of clips (one row per clip) plus where the frames are.

Table columns: ``dataset, subject, clip, emotion, label, onset, apex, offset, apex_rule,
action_units, frames_dir, onset_path, apex_path, offset_path, cropped``. ``subject`` is unique
across databases (``sub01``, ``s1``, ``006``) so composite protocols can group by it directly.
"""

from __future__ import annotations

import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import pandas as pd

from tscnn.errors import DatasetError, one_line
from tscnn.preprocessing.apex import spot_apex
from tscnn.preprocessing.frames import FRAME_NUMBER, list_frames  # noqa: F401  (the readers' frame listing)
from tscnn.preprocessing.keyframes import key_frame_apex, key_frames_only

TABLE_COLUMNS = ["dataset", "subject", "clip", "emotion", "label", "onset", "apex", "offset", "apex_rule",
                 "action_units", "frames_dir", "onset_path", "apex_path", "offset_path", "cropped"]

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm")  # zip archives; calamine also reads .xls and .ods


@dataclass
class Database:
    """A database read from disk: its clip table, class names (label i = classes[i]) and quirks found."""

    name: str
    root: Path
    table: pd.DataFrame
    classes: tuple[str, ...]
    quirks: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (subject/clip, emotion) outside the class set

    def describe(self) -> str:
        """Clips per class and per subject, and every quirk found with how it was resolved."""
        t = self.table
        lines = [f"{self.name}: {len(t)} clips, {t.subject.nunique()} subjects, root {self.root}", "clips per class:"]
        for name in self.classes:
            lines.append(f"  {name:<12} {(t.emotion == name).sum()}")
        if t.dataset.nunique() > 1:
            lines.append("clips per database: " + ", ".join(f"{d}:{n}" for d, n in t.groupby("dataset").size().items()))
        lines.append("clips per subject: " + ", ".join(f"{s}:{n}" for s, n in t.groupby("subject").size().items()))
        if self.left_out:
            lines.append(left_out_line(self.left_out))
        lines.append(f"quirks ({len(self.quirks)}):" if self.quirks else "quirks: none")
        lines += [f"  - {q}" for q in self.quirks]
        return "\n".join(lines)

    def summary(self) -> dict:
        """What ``describe`` says, as plain data (``tscnn datasets describe --json``)."""
        t = self.table
        return {"name": self.name, "root": str(self.root), "clips": int(len(t)), "subjects": int(t.subject.nunique()),
                "classes": list(self.classes),
                "clips_per_class": {name: int((t.emotion == name).sum()) for name in self.classes},
                "clips_per_database": {str(d): int(n) for d, n in t.groupby("dataset").size().items()},
                "clips_per_subject": {str(s): int(n) for s, n in t.groupby("subject").size().items()},
                "quirks": list(self.quirks)}


def left_out_line(left_out: list[tuple[str, str]] | list[list[str]]) -> str:
    """The clips a class set leaves out, counted and named per emotion (``describe`` and the reports)."""
    by_emotion: dict[str, list[str]] = {}
    for clip, emotion in left_out:
        by_emotion.setdefault(emotion, []).append(clip)
    return (f"{len(left_out)} clips outside the class set, left out: "
            + "; ".join(f"{emotion} {len(clips)} ({', '.join(clips)})" for emotion, clips in sorted(by_emotion.items()))
            )


@dataclass(frozen=True)
class ClipAnnotation:
    """One clip as its database annotates it: ids, class, onset/apex/offset frames and action units.

    One value instead of nine positional arguments, several of them alike and easy to swap. The frame
    fields hold the annotation's cells as read (``annotated_clip`` parses them and applies the apex
    rule) or frame numbers (what ``clip_row`` expects).
    """

    dataset: str
    subject: str
    clip: str
    emotion: str  # the class name under the chosen class set (table column "emotion")
    label: int  # its index in the class set
    onset: Any
    apex: Any
    offset: Any
    action_units: str = ""


@dataclass(frozen=True)
class ClipSource:
    """Where a clip comes from: the annotation row named in errors and quirks, and its frame folder
    with how to read it. Apart from :class:`ClipAnnotation` because it describes files on disk, not
    what was annotated."""

    where: str  # e.g. "CASME2-coding-20140508.xlsx row 5": starts every error and quirk about the clip
    clip_dir: Path | None  # None: the annotation only (no frame checks, empty paths)
    prefix: str | None = None  # only frames whose names start with it (CASME II's "reg_img")
    cropped: bool | None = None  # whether frames are face crops; None: judged by the first frame's width
    apex_fallback: str = "spotter"  # see resolve_apex


APEX_FALLBACKS = ("spotter", "middle")


def is_blank(value: object) -> bool:
    """An empty spreadsheet cell, as pandas gives it (None or NaN)."""
    return value is None or (isinstance(value, float) and value != value)


def resolve_apex(onset: int, apex: object, offset: int, source: str, frames: dict[int, Path] | None = None,
                 fallback: str = "spotter") -> tuple[int, str, str | None]:
    """Apply the documented apex rule: the annotated apex when it is a frame number inside
    [onset, offset]; otherwise the apex spotter on the clip's frames (when they are on disk and
    ``fallback`` is "spotter"), else the middle frame. A clip whose folder holds key frames only
    (``tscnn.preprocessing.keyframes``) takes the middle of the frames present instead, with either
    fallback: the spotter needs every frame, and the middle frame number may not be on disk. Returns
    (apex, rule, quirk message or None); the rule is "annotated", "spotter", "middle" or "middle-present".
    """
    if fallback not in APEX_FALLBACKS:
        raise ValueError(f"unknown apex fallback {fallback!r}; expected one of {APEX_FALLBACKS}")
    why = None
    if is_blank(apex):
        why = "no apex annotated"
    else:
        try:
            value = int(float(str(apex).strip()))
        except ValueError:
            why = f"apex {apex!r} is not a frame number"
        else:
            if onset <= value <= offset:
                return value, "annotated", None
            why = f"apex {value} outside [onset {onset}, offset {offset}]"
    span = [n for n in sorted(frames or {}) if onset <= n <= offset]
    if frames and key_frames_only(frames, onset, offset):
        return key_frame_apex(frames, onset, offset, source, why)
    if fallback == "spotter" and len(span) >= 3:
        value = span[spot_apex([frames[n] for n in span], clip=source)]
        return value, "spotter", f"{source}: {why} -> apex spotter frame {value}"
    middle = (onset + offset) // 2
    return middle, "middle", f"{source}: {why} -> middle frame {middle}"


def database_folder(root: str | Path, what: str = "database") -> Path:
    """``root`` as a Path, or an error saying that the database folder does not exist (checked before
    any annotation file is looked for in it, so a mistyped ``--root`` is reported as such)."""
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"{what} folder {path} does not exist")
    if not path.is_dir():
        raise DatasetError(f"{what} folder {path} is not a folder")
    return path


def spreadsheet_problem(path: Path, error: BaseException) -> str:
    """A short reason why a spreadsheet could not be read: a clearer one for an .xlsx file that is
    not a whole zip archive (truncated, or text renamed), else the library's first line."""
    try:
        if path.suffix.lower() in SPREADSHEET_SUFFIXES and path.is_file() and not zipfile.is_zipfile(path):
            with path.open("rb") as f:
                head = f.read(4)
            if not head:
                return "the file is empty"
            if head.startswith(b"PK"):
                return "the workbook is truncated or damaged (its zip archive is incomplete)"
            return "not an Excel workbook: an .xlsx file is a zip archive and this one is not (text or CSV renamed?)"
    except OSError:
        pass
    return one_line(error)


def read_spreadsheet(path: str | Path, **kwargs: Any) -> Any:
    """``pd.read_excel(path, engine="calamine", **kwargs)``; any error of the spreadsheet library
    (truncated workbook, text renamed .xlsx, unreadable file) becomes one DatasetError line naming
    the file."""
    path = Path(path)
    try:
        return pd.read_excel(path, engine="calamine", **kwargs)
    except DatasetError:
        raise
    except Exception as error:  # calamine, zip, OS and pandas errors alike: one line naming the file
        raise DatasetError(f"{path}: cannot read this spreadsheet ({spreadsheet_problem(path, error)})") from None


def read_csv_table(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv(path, **kwargs)``; a file that is not valid CSV text (binary, ragged rows, empty,
    unreadable) becomes one DatasetError line naming the file."""
    path = Path(path)
    try:
        return pd.read_csv(path, **kwargs)
    except DatasetError:
        raise
    except Exception as error:  # parser, decoding and OS errors alike: one line naming the file
        raise DatasetError(f"{path}: cannot read this CSV file ({one_line(error)})") from None



def read_index_csv(path: Path, columns: list[str], kind: str) -> pd.DataFrame:
    """An index CSV of ``kind`` (e.g. 'flow-folder') as stripped text columns (subject ids kept as written, e.g.
    '006'), or an error naming the file when it is absent or lacks one of ``columns``."""
    if not path.is_file():
        raise DatasetError(f"{path}: no {kind} index here (expected a CSV with columns {columns})")
    sheet = read_csv_table(path, dtype=str, keep_default_na=False)
    sheet.columns = [str(c).strip() for c in sheet.columns]
    missing = [c for c in columns if c not in sheet.columns]
    if missing:
        raise DatasetError(f"{path}: not a{'n' if kind[0] in 'aeiou' else ''} {kind} index, missing columns "
                           f"{missing} (found {list(sheet.columns)})")
    return sheet.apply(lambda column: column.str.strip())

def subject_number(value: object, source: str, clip: str) -> int:
    """A spreadsheet's subject cell as a number ('01', 1, 1.0), or an error naming the file and the row."""
    try:
        return int(float(str(value).strip()))
    except ValueError:
        raise DatasetError(f"{source}: clip {str(clip).strip()}: subject {value!r} is not a subject number") from None


def checked_sheet(sheet: pd.DataFrame, required: Sequence[str], path: Path, what: str) -> pd.DataFrame:
    """An annotation table with its required headers (else an error naming the file and what is
    missing), rows without subject or clip name dropped."""
    missing = [c for c in required if c not in sheet.columns]
    if missing:
        raise DatasetError(f"{path}: not a {what}, missing columns {missing} (found {list(sheet.columns)})")
    return sheet.dropna(subset=["Subject", "Filename"])


def class_set(sets: dict[str, dict[str, str]], classes: str, what: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """The emotion -> class mapping of a named class set and its class names in label order."""
    if classes not in sets:
        raise ValueError(f"unknown {what} class set {classes!r}; expected one of {sorted(sets)}")
    mapping = sets[classes]
    return mapping, tuple(dict.fromkeys(mapping.values()))


def class_of(emotion: str, known: Collection[str], mapping: dict[str, str], where: str) -> str | None:
    """The class of an annotated emotion under a class set: None when the set leaves it out, an error
    naming ``where`` (file, row, clip) when the database has no such emotion at all."""
    if emotion not in known:
        raise DatasetError(f"{where}: unknown emotion {emotion!r}")
    return mapping.get(emotion)


def clip_row(clip: ClipAnnotation, apex_rule: str, frames: dict[int, Path] | None, source: ClipSource) -> dict:
    """One table row, after checking that the onset, apex and offset frames exist on disk.

    ``clip`` holds frame numbers (already parsed, apex rule applied); ``frames=None`` reads the
    annotation only: no frame checks, empty paths. ``source.cropped`` is written as given.
    """
    subject, name, onset, apex, offset = clip.subject, clip.clip, clip.onset, clip.apex, clip.offset
    where, clip_dir = source.where, source.clip_dir
    row = {
        "dataset": clip.dataset, "subject": subject, "clip": name, "emotion": clip.emotion, "label": clip.label,
        "onset": onset, "apex": apex, "offset": offset, "apex_rule": apex_rule, "action_units": clip.action_units,
        "frames_dir": "", "onset_path": "", "apex_path": "", "offset_path": "", "cropped": source.cropped,
    }
    if frames is None:
        return row
    if not frames:
        raise DatasetError(f"{where}: clip {subject}/{name}: no frames found in {clip_dir}")
    if onset > offset:
        raise DatasetError(f"{where}: clip {subject}/{name}: onset {onset} is after offset {offset}")
    for what, number in (("onset", onset), ("apex", apex), ("offset", offset)):
        if number not in frames:
            lo, hi = min(frames), max(frames)
            raise DatasetError(
                f"{where}: clip {subject}/{name}: {what} frame {number} is missing from {clip_dir} "
                f"(frames on disk: {lo}..{hi}, {len(frames)} files)"
            )
    return {**row, "frames_dir": str(clip_dir), "onset_path": str(frames[onset]), "apex_path": str(frames[apex]),
            "offset_path": str(frames[offset])}


CROPPED_MAX_WIDTH = 400  # frames wider than this are full camera frames and get face-cropped


def is_face_crop(frames: dict[int, Path]) -> bool:
    """Whether a clip's frames are already face crops, judged by the width of its first frame."""
    if not frames:
        return True
    first = cv2.imread(str(frames[min(frames)]), cv2.IMREAD_GRAYSCALE)
    return first is None or first.shape[1] <= CROPPED_MAX_WIDTH


def frame_number(value: object, what: str, source: str, subject: str, clip: str) -> int:
    """A spreadsheet cell as a frame number, or an error naming the file, the row and the clip."""
    if is_blank(value):
        raise DatasetError(f"{source}: clip {subject}/{clip}: {what} is empty")
    try:
        return int(float(str(value).strip()))
    except ValueError:
        raise DatasetError(f"{source}: clip {subject}/{clip}: {what} {value!r} is not a frame number") from None


def annotated_clip(clip: ClipAnnotation, source: ClipSource, quirks: list[str]) -> dict:
    """One table row from an annotated clip: parse the frame numbers, list the frames (when
    ``source.clip_dir`` is given), apply the apex rule (its quirk is appended to ``quirks``), check
    that the frames exist. ``source.cropped=None`` judges face crops by frame width."""
    where, subject, name = source.where, clip.subject, clip.clip
    onset = frame_number(clip.onset, "onset", where, subject, name)
    offset = frame_number(clip.offset, "offset", where, subject, name)
    frames = list_frames(source.clip_dir, source.prefix) if source.clip_dir is not None else None
    apex, rule, quirk = resolve_apex(onset, clip.apex, offset, f"{where} clip {subject}/{name}", frames,
                                     source.apex_fallback)
    if quirk:
        quirks.append(quirk)
    if source.cropped is None:
        source = replace(source, cropped=is_face_crop(frames or {}))
    return clip_row(replace(clip, onset=onset, apex=apex, offset=offset), rule, frames, source)


def find_file(root: Path, patterns: str | Sequence[str], explicit: str | Path | None, what: str) -> Path:
    """The annotation file: ``explicit`` when given, else the newest match of the first pattern that
    matches in root, its parent, or a subfolder (e.g. ``annotation/``)."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DatasetError(f"{what} file {path} does not exist")
        return path
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    for folder in (root, root.parent, *sorted(p for p in root.glob("*") if p.is_dir())):
        for pattern in patterns:
            matches = sorted(p for p in folder.glob(pattern) if not p.name.startswith("~$"))
            if matches:
                return matches[-1]
    raise DatasetError(f"no {what} file matching {patterns} in {root}, its parent or its subfolders; "
                       "pass it explicitly")
