"""What every database reader returns: a table of clips (one row per clip) plus where the frames are.

Table columns: ``dataset, subject, clip, emotion, label, onset, apex, offset, apex_rule,
action_units, frames_dir, onset_path, apex_path, offset_path, cropped``. ``subject`` is unique
across databases (``sub01``, ``s1``, ``006``) so composite protocols can group by it directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

FRAME_NUMBER = re.compile(r"(\d+)\.(?:jpe?g|png|bmp|tiff?)$", re.IGNORECASE)
TABLE_COLUMNS = ["dataset", "subject", "clip", "emotion", "label", "onset", "apex", "offset", "apex_rule",
                 "action_units", "frames_dir", "onset_path", "apex_path", "offset_path", "cropped"]


class DatasetError(ValueError):
    """Bad database input; the message names the file, the clip and what is wrong."""


@dataclass
class Database:
    """A database read from disk: its clip table, class names (label i = classes[i]) and quirks found."""

    name: str
    root: Path
    table: pd.DataFrame
    classes: tuple[str, ...]
    quirks: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Clips per class and per subject, and every quirk found with how it was resolved."""
        t = self.table
        lines = [f"{self.name}: {len(t)} clips, {t.subject.nunique()} subjects, root {self.root}", "clips per class:"]
        for name in self.classes:
            lines.append(f"  {name:<12} {(t.emotion == name).sum()}")
        lines.append("clips per subject: " + ", ".join(f"{s}:{n}" for s, n in t.groupby("subject").size().items()))
        lines.append(f"quirks ({len(self.quirks)}):" if self.quirks else "quirks: none")
        lines += [f"  - {q}" for q in self.quirks]
        return "\n".join(lines)


def list_frames(clip_dir: Path, prefix: str | None = None) -> dict[int, Path]:
    """Frame number -> path for the images in ``clip_dir``, numbers parsed (never sorted as text)."""
    frames: dict[int, Path] = {}
    if not clip_dir.is_dir():
        return frames
    for path in clip_dir.iterdir():
        match = FRAME_NUMBER.search(path.name)
        if match and (prefix is None or path.name.startswith(prefix)):
            frames[int(match.group(1))] = path
    return frames


def resolve_apex(onset: int, apex: object, offset: int, source: str) -> tuple[int, str | None]:
    """Apply the documented apex rule: the annotated apex when it is a frame number inside
    [onset, offset]; otherwise the middle frame. Returns (apex, quirk message or None)."""
    middle = (onset + offset) // 2
    try:
        value = int(float(str(apex).strip()))
    except ValueError:
        return middle, f"{source}: apex {apex!r} is not a frame number -> middle frame {middle}"
    if not onset <= value <= offset:
        return middle, f"{source}: apex {value} outside [onset {onset}, offset {offset}] -> middle frame {middle}"
    return value, None


def class_set(sets: dict[str, dict[str, str]], classes: str, what: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """The emotion -> class mapping of a named class set and its class names in label order."""
    if classes not in sets:
        raise ValueError(f"unknown {what} class set {classes!r}; expected one of {sorted(sets)}")
    mapping = sets[classes]
    return mapping, tuple(dict.fromkeys(mapping.values()))


def clip_row(dataset: str, subject: str, clip: str, emotion: str, label: int, onset: int, apex: int, offset: int,
             apex_rule: str, action_units: str, frames: dict[int, Path] | None, clip_dir: Path | None, source: str,
             cropped: bool) -> dict:
    """One table row, after checking that the onset, apex and offset frames exist on disk.

    ``frames=None`` reads the annotation only: no frame checks, empty paths.
    """
    row = {
        "dataset": dataset, "subject": subject, "clip": clip, "emotion": emotion, "label": label,
        "onset": onset, "apex": apex, "offset": offset, "apex_rule": apex_rule, "action_units": action_units,
        "frames_dir": "", "onset_path": "", "apex_path": "", "offset_path": "", "cropped": cropped,
    }
    if frames is None:
        return row
    if not frames:
        raise DatasetError(f"{source}: clip {subject}/{clip}: no frames found in {clip_dir}")
    if onset > offset:
        raise DatasetError(f"{source}: clip {subject}/{clip}: onset {onset} is after offset {offset}")
    for what, number in (("onset", onset), ("apex", apex), ("offset", offset)):
        if number not in frames:
            lo, hi = min(frames), max(frames)
            raise DatasetError(
                f"{source}: clip {subject}/{clip}: {what} frame {number} is missing from {clip_dir} "
                f"(frames on disk: {lo}..{hi}, {len(frames)} files)"
            )
    return {**row, "frames_dir": str(clip_dir), "onset_path": str(frames[onset]), "apex_path": str(frames[apex]),
            "offset_path": str(frames[offset])}


def find_file(root: Path, pattern: str, explicit: str | Path | None, what: str) -> Path:
    """The annotation file: ``explicit`` when given, else the newest match of ``pattern`` in root or its parent."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise DatasetError(f"{what} file {path} does not exist")
        return path
    matches = sorted(root.glob(pattern)) or sorted(root.parent.glob(pattern))
    if not matches:
        raise DatasetError(f"no {what} file matching {pattern!r} in {root} or {root.parent}; pass it explicitly")
    return matches[-1]
