"""One reader for the databases annotated by a spreadsheet (CASME II, SAMM, MMEW, CAS(ME)^3 part A).

They all find a coding file, check its headers, and turn each row into a clip: subject id, clip
name, emotion -> class (rows outside the class set skipped), frame folder, apex rule, frame checks.
A :class:`SheetSpec` says how one database differs (file names, header row, column names, id
spelling, where the frames are); its module keeps the database's class sets and quirks, as hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tscnn.datasets.base import (
    TABLE_COLUMNS,
    ClipAnnotation,
    ClipSource,
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


@dataclass(frozen=True)
class FrameLayout:
    """Where a database's clip folders are and how its frames are named (shared by all its clips)."""

    base: Path
    prefix: str | None = None  # see ClipSource
    cropped: bool | None = None  # see ClipSource


@dataclass(frozen=True)
class SheetRow:
    """One annotation row as the hooks of a :class:`SheetSpec` see it: the raw record, the text that
    names it in messages, the database's ids and the (normalised) emotion, and the frame cells."""

    rec: pd.Series
    source: str  # "<file> row N", N the row number in the spreadsheet program
    subject: str
    clip: str
    emotion: str
    onset: Any
    apex: Any
    offset: Any

    @property
    def where(self) -> str:
        """The row and clip, as quirks name them."""
        return f"{self.source} clip {self.subject}/{self.clip}"


def _other_coding_files(chosen: Path, spec: SheetSpec) -> list[str]:
    """A quirk when the folder holds several coding files (e.g. CASME II's 2014 and 2019 sheets, which list
    different clips): which one was read, and how to read another."""
    patterns = [spec.coding_patterns] if isinstance(spec.coding_patterns, str) else list(spec.coding_patterns)
    found = sorted({p.name for pattern in patterns for p in chosen.parent.glob(pattern) if not p.name.startswith("~$")})
    if len(found) < 2:
        return []
    return [f"{chosen.parent}: several {spec.file_what} files ({', '.join(found)}); read {chosen.name} (of the "
            "first file pattern that matches, the last by name: the newest for dated names); pass --coding FILE "
            "to read another"]


def folder_per_subject(base: Path, row: SheetRow, quirks: list[str]) -> Path:
    """``<base>/<subject>/<clip>``, the layout of CASME II and SAMM."""
    return base / row.subject / row.clip


@dataclass(frozen=True)
class SheetSpec:
    """How one spreadsheet-annotated database is read: what differs between them, as data and hooks.

    Column names default to CASME II's. The required headers are ``Subject, Filename`` and the onset,
    apex, offset and emotion columns, in that order (the order a missing-columns error lists them).
    """

    name: str  # the table's "dataset" value and the Database's name ("casme2")
    display: str  # the name in messages ("CASME II")
    coding_patterns: str | tuple[str, ...]  # globs for the coding file, first matching pattern wins
    file_what: str  # the coding file in "no ... file" messages ("CASME II coding")
    sheet_what: str  # the sheet in "not a ..., missing columns" messages ("CASME II coding sheet")
    class_sets: dict[str, dict[str, str]]  # class-set name -> emotion -> class
    emotions: Collection[str]  # every emotion the database annotates; any other is an error
    subject_format: str | None  # the subject number as an id ("sub{:02d}"); None: the cell's text as is
    header_row: int = 0  # 0-based row of the headers (rows above are preamble)
    onset: str = "OnsetFrame"
    apex: str = "ApexFrame"
    offset: str = "OffsetFrame"
    emotion: str = "Estimated Emotion"
    action_units: str = "Action Units"
    lower_emotion: bool = True  # compare emotions in lower case
    report_emotion_case: bool = False  # list an emotion whose case was changed as a quirk
    excluded: Mapping[str, Collection[str]] = field(default_factory=dict)  # class set -> "subject/clip" left out
    read_sheet: Callable[[Path], pd.DataFrame] | None = None  # None: the first sheet, headers on header_row
    frames_root: Callable[[Path], FrameLayout] | None = None  # None: clip folders under root itself
    clip_name: Callable[[pd.Series], str] | None = None  # None: the Filename cell
    clip_dir: Callable[[Path, SheetRow, list[str]], Path] = folder_per_subject
    fix_row: Callable[[SheetRow, list[str]], SheetRow] | None = None  # repairs a known annotation error

    @property
    def required(self) -> list[str]:
        """The headers the annotation file must have."""
        return ["Subject", "Filename", self.onset, self.apex, self.offset, self.emotion]

    def load(self, path: Path) -> pd.DataFrame:
        """The annotation table with its required headers checked, rows without subject or clip dropped."""
        if self.read_sheet is not None:
            sheet = self.read_sheet(path)
        else:
            sheet = read_spreadsheet(path, sheet_name=0, header=self.header_row, dtype=str)
        return checked_sheet(sheet, self.required, path, self.sheet_what)

    def subject_id(self, rec: pd.Series, source: str) -> str:
        """The row's subject id, unique across databases (``sub01``, ``006``, ``S01``, ``spNO.1``)."""
        if self.subject_format is None:
            return str(rec["Subject"]).strip()
        return self.subject_format.format(subject_number(rec["Subject"], source, rec["Filename"]))


def read_sheet_database(spec: SheetSpec, root: str | Path, coding: str | Path | None, classes: str,
                        check_frames: bool, apex_fallback: str) -> Database:
    """Read a spreadsheet-annotated database at ``root`` into a clip table restricted to ``classes``.

    With ``check_frames=False`` only the annotation is read (frame paths are left empty).
    """
    root = database_folder(root, f"{spec.display} database")
    mapping, class_names = class_set(spec.class_sets, classes, spec.display)
    coding_path = find_file(root, spec.coding_patterns, coding, spec.file_what)
    sheet = spec.load(coding_path)
    layout = spec.frames_root(root) if check_frames and spec.frames_root else FrameLayout(root)
    excluded = spec.excluded.get(classes, ())
    rows: list[dict] = []
    left_out: list[tuple[str, str]] = []
    quirks: list[str] = [] if coding is not None else _other_coding_files(coding_path, spec)
    for i, rec in sheet.iterrows():
        source = f"{coding_path.name} row {i + spec.header_row + 2}"
        subject = spec.subject_id(rec, source)
        clip = spec.clip_name(rec) if spec.clip_name else str(rec["Filename"]).strip()
        raw = str(rec[spec.emotion]).strip()
        emotion = raw.lower() if spec.lower_emotion else raw
        label = class_of(emotion, spec.emotions, mapping, f"{source}: clip {subject}/{clip}")
        row = SheetRow(rec, source, subject, clip, emotion, rec[spec.onset], rec[spec.apex], rec[spec.offset])
        if spec.report_emotion_case and emotion != raw:
            quirks.append(f"{row.where}: emotion {raw!r} read as {emotion!r}")
        if label is None or f"{subject}/{clip}" in excluded:
            left_out.append((f"{subject}/{clip}", emotion))
            continue
        if spec.fix_row:
            row = spec.fix_row(row, quirks)
        clip_dir = spec.clip_dir(layout.base, row, quirks) if check_frames else None
        annotation = ClipAnnotation(spec.name, subject, clip, label, class_names.index(label), row.onset, row.apex,
                                    row.offset, str(rec.get(spec.action_units, "")))
        rows.append(annotated_clip(annotation, ClipSource(source, clip_dir, layout.prefix, layout.cropped,
                                                          apex_fallback), quirks))
    return Database(spec.name, root, pd.DataFrame(rows, columns=TABLE_COLUMNS), class_names, quirks, left_out)
