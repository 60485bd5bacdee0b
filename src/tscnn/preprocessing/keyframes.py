"""Key-frame clips: clips whose folder holds only a few frames of their span (onset, apex, offset).

Some distributions keep only the three frames TSCNN reads (e.g. a CASME II "Cropped" folder reduced
to the onset, apex and offset of the coding sheet). Everything that reads those three frames runs
on them unchanged: TSCNN's SS, LS and DT streams, the ``uvs`` stream of STSTNet, Off-ApexNet,
SSSNet, HOOF and the linear floor, and the flow export. What reads every frame of the span cannot:

* the ``vol`` stream (the face volume onset..offset that LBP-TOP reads): refused, naming the clip;
* the apex spotter: a clip whose apex is missing or invalid takes the middle of the frames present
  instead (rule ``middle-present``; with onset, apex and offset on disk that is the one frame
  between them, the apex the distributor kept), stated in the database's quirks and the report;
* spotting or the apex spotter on a frame folder (``tscnn spot``, ``tscnn predict`` without
  ``--apex``): refused, naming the folder.

A span counts as key frames only when fewer than half of its frames are on disk
(``KEY_FRAME_SHARE``): a folder missing a frame or two is still a clip the spotter can read.
"""

from __future__ import annotations

from collections.abc import Iterable

from tscnn.errors import DatasetError

KEY_FRAME_SHARE = 0.5
"""A span with fewer than this share of its frames on disk holds key frames only."""
APEX_RULE = "middle-present"
"""The apex rule of a key-frame clip with no valid apex annotated: the middle of the frames present."""


def span_counts(numbers: Iterable[int], onset: int, offset: int) -> tuple[int, int]:
    """(frames on disk within [onset, offset], frames the span has)."""
    present = sum(1 for n in numbers if onset <= n <= offset)
    return present, offset - onset + 1


def key_frames_only(numbers: Iterable[int], onset: int, offset: int) -> bool:
    """Whether the span onset..offset holds key frames only (fewer than ``KEY_FRAME_SHARE`` of its frames)."""
    present, total = span_counts(numbers, onset, offset)
    return present < KEY_FRAME_SHARE * total


def middle_present(numbers: Iterable[int], onset: int, offset: int) -> int | None:
    """The middle frame among those on disk strictly between onset and offset (the earlier of two middles),
    or None when there is none."""
    inside = sorted(n for n in numbers if onset < n < offset)
    return inside[(len(inside) - 1) // 2] if inside else None


def key_frame_apex(numbers: Iterable[int], onset: int, offset: int, source: str, why: str) -> tuple[int, str, str]:
    """The apex of a key-frame clip with no valid apex annotated: (frame, ``APEX_RULE``, quirk), or a one-line
    DatasetError naming the clip when no frame between onset and offset is on disk."""
    numbers = list(numbers)
    present, total = span_counts(numbers, onset, offset)
    value = middle_present(numbers, onset, offset)
    if value is None:
        raise DatasetError(f"{source}: {why}, and only key frames are on disk ({present} of {total}, none between "
                           f"onset {onset} and offset {offset}): no apex frame to take, and the apex spotter needs "
                           "every frame of the span")
    return value, APEX_RULE, (f"{source}: {why} -> key frames only ({present} of {total} frames on disk; the apex "
                              f"spotter needs them all): middle frame present {value}")


def refuse_key_frames(numbers: Iterable[int], onset: int, offset: int, source: str, needs: str) -> None:
    """A one-line DatasetError naming ``source`` when the span holds key frames only; ``needs`` says what
    needs every frame (e.g. "the vol stream (LBP-TOP's face volume)")."""
    present, total = span_counts(numbers, onset, offset)
    if present < KEY_FRAME_SHARE * total:
        raise DatasetError(f"{source}: only {present} of the {total} frames from {onset} to {offset} are on disk "
                           f"(key frames only); {needs} needs every frame of the span")


def clip_frame_numbers(row: dict) -> list[int]:
    """Frame numbers on disk in a table row's frame folder, among files named as its onset file is (the same
    text before the frame number and the same suffix); [] for a row without frames (a flow folder)."""
    from pathlib import Path

    from tscnn.preprocessing.frames import FRAME_NUMBER

    onset_path, folder = str(row.get("onset_path") or ""), str(row.get("frames_dir") or "")
    if not onset_path or not folder or not Path(folder).is_dir():
        return []
    match = FRAME_NUMBER.search(Path(onset_path).name)
    prefix = Path(onset_path).name[:match.start(1)] if match else ""
    numbers = []
    for path in Path(folder).iterdir():
        found = FRAME_NUMBER.search(path.name)
        if found and path.name[:found.start(1)] == prefix and path.suffix == Path(onset_path).suffix:
            numbers.append(int(found.group(1)))
    return numbers


def key_frame_clips(table) -> list[tuple[str, int, int]]:
    """(dataset:subject/clip, frames on disk, frames of the span) of every key-frame clip of a clip table."""
    out = []
    for row in table.to_dict("records"):
        numbers = clip_frame_numbers(row)
        if numbers and key_frames_only(numbers, int(row["onset"]), int(row["offset"])):
            present, total = span_counts(numbers, int(row["onset"]), int(row["offset"]))
            out.append((f"{row['dataset']}:{row['subject']}/{row['clip']}", present, total))
    return out


def key_frame_note(table) -> str:
    """One line for ``datasets describe`` when clips hold key frames only ("" when none does)."""
    clips = key_frame_clips(table)
    if not clips:
        return ""
    name, present, total = clips[0]
    return (f"key frames only: {len(clips)} of {len(table)} clips (e.g. {name}: {present} of {total} frames on disk); "
            "TSCNN (ss, ls, dt), the uvs stream (STSTNet, Off-ApexNet, SSSNet, HOOF, the linear floor) and flow "
            "export run on them; the vol stream (LBP-TOP), the apex spotter and spotting need every frame")
