"""Synthetic long recordings: a neutral face for many seconds with micro-expressions at known frames.

Spotting (``tscnn.spot``) cannot be measured on the database's short clips, which each hold one
expression by construction; it needs what MEGC's long-video track uses: a long, mostly neutral
recording and the ground-truth onset/offset of every expression in it. The frames come from the
same renderer as the database (``FaceRenderer``: the same faces, action-unit fields, micro
amplitudes, head jitter, noise and illumination drift), with what a long recording adds: head
jitter that returns to rest instead of wandering, and slow head movements (global translations
of a few pixels over about a second) that are *not* micro-expressions and must not be spotted.
Times are drawn in seconds and turned into frames at ``fps``, so the same settings describe a
200 fps lab camera and a 30 fps webcam.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tscnn.synth.actions import choose_aus, displacement_field, intensity_profile
from tscnn.synth.database import LAYOUTS, FaceRenderer, SynthSettings
from tscnn.synth.faces import make_identity


@dataclass
class LongVideoSettings:
    """Everything that decides one long video; the same settings give the same frames."""

    seed: int = 0
    fps: float = 100.0
    seconds: float = 12.0
    expressions: int = 4
    duration_s: tuple[float, float] = (0.2, 0.45)  # onset -> offset; micro-expressions last under 0.5 s
    rise_fraction: tuple[float, float] = (0.3, 0.6)  # where the apex falls within onset..offset
    gap_s: float = 1.0  # at least this much neutral time between two events and at both ends
    amplitude_px: tuple[float, float] = SynthSettings.amplitude_px  # peak AU displacement at 128 px face width
    head_moves: int = 2  # slow global translations (distractors, not expressions)
    head_move_px: tuple[float, float] = (2.0, 6.0)
    head_move_s: tuple[float, float] = (0.8, 1.5)
    jitter_px: float = SynthSettings.jitter_px  # stationary std of the head jitter
    noise_sigma: tuple[float, float] = SynthSettings.noise_sigma
    illumination_drift: float = SynthSettings.illumination_drift


@dataclass
class Event:
    """One embedded micro-expression: frame numbers (0-based, inclusive) and what was rendered."""

    onset: int
    apex: int
    offset: int
    emotion: str
    aus: str
    amplitude_px: float


@dataclass
class LongVideo:
    """Grey frames of a rendered long video with its frame rate and ground truth."""

    frames: list[np.ndarray]
    fps: float
    events: list[Event]
    head_moves: list[tuple[int, int]] = field(default_factory=list)  # (start, end) frames of each distractor
    settings: LongVideoSettings = field(default_factory=LongVideoSettings)

    @property
    def intervals(self) -> list[tuple[int, int]]:
        """Ground-truth (onset, offset) of every expression, for ``tscnn.spot.spotting_metrics``."""
        return [(e.onset, e.offset) for e in self.events]

    def truth(self) -> dict:
        """Plain-data ground truth (what ``write_long_video`` stores beside the video)."""
        return {"fps": self.fps, "frames": len(self.frames), "settings": asdict(self.settings),
                "events": [asdict(e) for e in self.events],
                "head_moves": [list(m) for m in self.head_moves]}


def place_events(rng: np.random.Generator, total: float, lengths: list[float], gap: float) -> list[float]:
    """Start times (s) for events of the given lengths, in order, with at least ``gap`` of neutral time
    before, between and after them; the spare time is split at random."""
    spare = total - sum(lengths) - gap * (len(lengths) + 1)
    if spare < 0:
        raise ValueError(f"{len(lengths)} events with {gap} s gaps do not fit in {total} s; make the video longer")
    cuts = np.sort(rng.uniform(0, spare, len(lengths)))
    starts, used = [], 0.0
    for i, length in enumerate(lengths):
        starts.append(gap * (i + 1) + used + cuts[i])
        used += length
    return starts


def render_long_video(settings: LongVideoSettings | None = None) -> LongVideo:
    """Render a long neutral recording of one synthetic subject with ``settings.expressions``
    micro-expressions at known frames and ``settings.head_moves`` slow head movements between them."""
    s = settings or LongVideoSettings()
    rng = np.random.default_rng([s.seed, 11])
    face = make_identity(np.random.default_rng([s.seed, 12]))
    n = int(round(s.seconds * s.fps))
    h, w = face.size
    scale = face.face_width / 128.0
    # Expressions and head movements share the timeline, never overlapping (a movement is not an expression).
    kinds = ["me"] * s.expressions + ["head"] * s.head_moves
    rng.shuffle(kinds)
    lengths = [rng.uniform(*s.duration_s) if k == "me" else rng.uniform(*s.head_move_s) for k in kinds]
    starts = place_events(rng, s.seconds, lengths, s.gap_s)
    proportions = LAYOUTS["casme2"].emotions
    emotions = list(proportions)
    weights = np.array(list(proportions.values()), float)
    disp_total = np.zeros((n, 2), np.float32)  # global translation: jitter + head movements
    events, moves, fields = [], [], []
    for kind, start, length in zip(kinds, starts, lengths, strict=True):
        first, last = int(round(start * s.fps)), int(round((start + length) * s.fps))
        if kind == "me":
            emotion = emotions[int(rng.choice(len(emotions), p=weights / weights.sum()))]
            aus, _ = choose_aus(rng, emotion, 0.0)
            apex = first + max(1, int(round((last - first) * rng.uniform(*s.rise_fraction))))
            amplitude = float(rng.uniform(*s.amplitude_px))
            events.append(Event(first, min(apex, last - 1), last, emotion, aus, round(amplitude * scale, 4)))
            fields.append(displacement_field(face, aus))
        else:
            angle = rng.uniform(0, 2 * np.pi)
            shift = rng.uniform(*s.head_move_px) * np.array([np.cos(angle), np.sin(angle)], np.float32)
            t = np.arange(n, dtype=np.float32)
            ramp = np.clip((t - first) / max(last - first, 1), 0, 1)
            disp_total += (0.5 - 0.5 * np.cos(np.pi * ramp))[:, None] * shift  # the head moves and stays
            moves.append((first, last))
    # Head jitter: a random walk pulled back to rest (AR(1)), stationary std ``jitter_px``.
    rho = 0.98
    steps = rng.normal(0, s.jitter_px * np.sqrt(1 - rho**2), (n, 2))
    jitter = np.zeros((n, 2), np.float32)
    for t in range(1, n):
        jitter[t] = rho * jitter[t - 1] + steps[t]
    disp_total += jitter
    renderer = FaceRenderer(face, rng, s.illumination_drift, s.noise_sigma)
    profiles = [intensity_profile(n, e.onset, e.apex, e.offset) for e in events]
    amplitudes = [e.amplitude_px for e in events]
    noise_rng = np.random.default_rng([s.seed, 13])
    frames = []
    for t in range(n):
        disp = np.zeros((h, w, 2), np.float32)
        for e, prof, amp, fld in zip(events, profiles, amplitudes, fields, strict=True):
            if e.onset <= t <= e.offset and prof[t] > 0:
                disp += amp * prof[t] * fld
        frames.append(cv2.cvtColor(renderer.frame(t, n, disp, disp_total[t], noise_rng), cv2.COLOR_BGR2GRAY))
    return LongVideo(frames, float(s.fps), events, moves, s)


def write_long_video(path: str | Path, video: LongVideo) -> Path:
    """Write the frames as a near-lossless MJPG ``.avi`` (quality 95, so the micro motion survives)
    and the ground truth as ``<path>.json``; returns the video path (for ``tscnn spot``)."""
    path = Path(path).with_suffix(".avi")
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = video.frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), video.fps, (w, h), True)
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write an MJPG video here")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for frame in video.frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    path.with_suffix(".json").write_text(json.dumps(video.truth(), indent=2))
    return path
