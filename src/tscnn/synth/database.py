"""Write a synthetic micro-expression database in the CASME II or SAMM on-disk layout.

The output is read by the project's real database readers with no special case:

* ``casme2``: ``subXX/EPyy_zz/reg_imgN.jpg`` colour face crops (frame numbers unpadded, starting
  where the clip starts) and ``CASME2-coding-synthetic.xlsx`` with the real CASME II headers
  (including the two blank columns and text subject ids).
* ``samm``: ``SSS/SSS_i_j/SSS_NNNN.jpg`` grey frames (padding varies per clip) and
  ``SAMM_Micro_FACS_Codes_synthetic.xlsx`` with 13 preamble rows and the real SAMM headers.

Beside them, ``ground_truth.csv`` records what was rendered per clip (action units, amplitude in
pixels, head jitter) so the flow pipeline can be checked against the true motion.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from tscnn.synth.actions import choose_aus, displacement_field, intensity_profile
from tscnn.synth.faces import FaceIdentity, make_identity

# Emotion counts of the real coding files, used as class proportions.
CASME2_EMOTIONS = {"others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25,
                   "sadness": 7, "fear": 2}
SAMM_EMOTIONS = {"Anger": 57, "Other": 26, "Happiness": 26, "Surprise": 15, "Contempt": 12, "Disgust": 9,
                 "Fear": 8, "Sadness": 6}
CASME2_CODING = "CASME2-coding-synthetic.xlsx"
SAMM_CODING = "SAMM_Micro_FACS_Codes_synthetic.xlsx"
GROUND_TRUTH = "ground_truth.csv"


@dataclass
class SynthSettings:
    """Everything that decides the generated database; the same settings give the same bytes."""

    subjects: int = 12
    seed: int = 0
    layout: str = "casme2"
    clips_per_subject: float = 9.8  # CASME II: 255 clips / 26 subjects
    frames_min: int = 28
    frames_max: int = 44
    amplitude_px: tuple[float, float] = (0.8, 2.0)  # peak AU displacement at 128 px face width
    atypical_rate: float = 0.15  # clips whose AUs are not the class's usual ones (label noise)
    jitter_px: float = 0.35  # head jitter: random-walk step of the global translation
    noise_sigma: tuple[float, float] = (1.5, 3.0)  # sensor noise, grey levels
    illumination_drift: float = 0.06  # max relative gain change across a clip
    jpeg_quality: tuple[int, int] = (85, 95)


@dataclass
class ClipSpec:
    """One clip to render: the frame indices of its phases are 0-based positions in the clip."""

    subject: int
    name: str
    emotion: str
    aus: str
    atypical: bool
    n_frames: int
    onset: int
    apex: int
    offset: int
    first_frame: int
    amplitude_px: float
    seed: tuple[int, ...]


def allocate_counts(proportions: dict[str, int], total: int) -> dict[str, int]:
    """Largest-remainder split of ``total`` clips in the given proportions."""
    weights = np.array(list(proportions.values()), float)
    raw = weights / weights.sum() * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts))[: total - counts.sum()]:
        counts[i] += 1
    return dict(zip(proportions, counts.tolist(), strict=True))


def subject_clip_counts(rng: np.random.Generator, subjects: int, total: int) -> np.ndarray:
    """Very unequal clips per subject (as in CASME II: 3 to 19+), at least 2 each."""
    weights = rng.lognormal(0.0, 0.6, subjects)
    counts = 2 + np.floor(weights / weights.sum() * (total - 2 * subjects)).astype(int)
    for i in rng.choice(subjects, total - counts.sum(), replace=True):
        counts[i] += 1
    return counts


def plan_clips(settings: SynthSettings) -> list[ClipSpec]:
    """Decide every clip's subject, emotion, AUs, timing and amplitude, deterministically."""
    rng = np.random.default_rng([settings.seed, 7])
    proportions = CASME2_EMOTIONS if settings.layout == "casme2" else SAMM_EMOTIONS
    total = int(round(settings.clips_per_subject * settings.subjects))
    counts = allocate_counts(proportions, total)
    emotions = [e for e, n in counts.items() for _ in range(n)]
    rng.shuffle(emotions)
    per_subject = subject_clip_counts(rng, settings.subjects, total)
    clips: list[ClipSpec] = []
    cursor = 0
    for s, n_clips in enumerate(per_subject):
        used: set[str] = set()
        for c in range(int(n_clips)):
            emotion = emotions[cursor]
            cursor += 1
            crng = np.random.default_rng([settings.seed, s, c, 1])
            aus, atypical = choose_aus(crng, emotion, settings.atypical_rate)
            n_frames = int(crng.integers(settings.frames_min, settings.frames_max + 1))
            onset = int(crng.integers(2, 7))
            apex = onset + int(crng.integers(6, 13))
            offset = min(apex + int(crng.integers(8, 19)), n_frames - 2)
            name = clip_name(settings.layout, crng, s, used)
            used.add(name)
            first = int(crng.integers(1, 400)) if settings.layout == "casme2" else int(crng.integers(1000, 9000))
            amplitude = float(crng.uniform(*settings.amplitude_px))
            clips.append(ClipSpec(s, name, emotion, aus, atypical, n_frames, onset, apex, offset, first,
                                  amplitude, (settings.seed, s, c)))
    return clips


def subject_id(layout: str, index: int) -> str:
    """Folder / spreadsheet id of subject ``index``: CASME II '01', SAMM '006'."""
    return f"{index + 1:02d}" if layout == "casme2" else f"{index + 6:03d}"


def clip_name(layout: str, rng: np.random.Generator, subject: int, used: set[str]) -> str:
    """A clip name in the database's style, unique within the subject."""
    while True:
        if layout == "casme2":
            suffix = "f" if rng.random() < 0.5 else ""
            name = f"EP{int(rng.integers(1, 20)):02d}_{int(rng.integers(1, 12)):02d}{suffix}"
        else:
            name = f"{subject_id(layout, subject)}_{int(rng.integers(1, 8))}_{int(rng.integers(1, 10))}"
        if name not in used:
            return name


def render_clip(face: FaceIdentity, clip: ClipSpec, settings: SynthSettings) -> tuple[list[np.ndarray], dict]:
    """Render the clip's frames (BGR uint8) and return them with its true motion.

    The returned dict holds ``field`` (unit AU displacement, H x W x 2), the per-frame ``intensity``
    and ``jitter`` (global translation, frames x 2), so the true displacement of frame t relative to
    the neutral face is ``amplitude * intensity[t] * field + jitter[t]``.
    """
    rng = np.random.default_rng([*clip.seed, 2])
    h, w = face.size
    scale = face.face_width / 128.0
    field = displacement_field(face, clip.aus)
    intensity = intensity_profile(clip.n_frames, clip.onset, clip.apex, clip.offset)
    steps = rng.normal(0, settings.jitter_px * 0.35, (clip.n_frames, 2))
    jitter = np.cumsum(steps, axis=0)
    jitter -= jitter.mean(0)
    jitter = np.clip(jitter, -2 * settings.jitter_px, 2 * settings.jitter_px)
    gain_end = 1 + rng.uniform(-settings.illumination_drift, settings.illumination_drift)
    tilt_end = rng.uniform(-0.04, 0.04)
    noise_sigma = rng.uniform(*settings.noise_sigma)
    neutral = face.image.astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx - w / 2) / w
    frames = []
    for t in range(clip.n_frames):
        disp = clip.amplitude_px * scale * intensity[t] * field
        map_x = (xx - disp[..., 0] - jitter[t, 0]).astype(np.float32)
        map_y = (yy - disp[..., 1] - jitter[t, 1]).astype(np.float32)
        frame = cv2.remap(neutral, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        progress = t / max(clip.n_frames - 1, 1)
        light = (1 + (gain_end - 1) * progress) * (1 + tilt_end * progress * ramp)
        frame = frame * light[..., None] + rng.normal(0, noise_sigma, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames, {"field": field, "intensity": intensity, "jitter": jitter}


def frame_path(root: Path, layout: str, clip: ClipSpec, number: int) -> Path:
    """Where frame ``number`` of a clip lives in the real layout."""
    sid = subject_id(layout, clip.subject)
    if layout == "casme2":
        return root / f"sub{sid}" / clip.name / f"reg_img{number}.jpg"
    pad = 4 + (clip.seed[2] % 2)  # SAMM's zero padding varies per clip
    return root / sid / clip.name / f"{sid}_{number:0{pad}d}.jpg"


def write_database(out: str | Path, settings: SynthSettings | None = None) -> Path:
    """Generate the database under ``out`` and return the path of its coding spreadsheet."""
    settings = settings or SynthSettings()
    if settings.layout not in ("casme2", "samm"):
        raise ValueError(f"unknown layout {settings.layout!r}; expected 'casme2' or 'samm'")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    clips = plan_clips(settings)
    faces = [make_identity(np.random.default_rng([settings.seed, s, 0])) for s in range(settings.subjects)]
    truth = []
    for clip in clips:
        frames, motion = render_clip(faces[clip.subject], clip, settings)
        quality = int(np.random.default_rng([*clip.seed, 3]).integers(*settings.jpeg_quality))
        for t, frame in enumerate(frames):
            path = frame_path(root, settings.layout, clip, clip.first_frame + t)
            path.parent.mkdir(parents=True, exist_ok=True)
            image = frame if settings.layout == "casme2" else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        jit = motion["jitter"]
        truth.append({
            "subject": subject_id(settings.layout, clip.subject), "clip": clip.name, "emotion": clip.emotion,
            "action_units": clip.aus, "atypical": clip.atypical,
            "amplitude_px": round(clip.amplitude_px * faces[clip.subject].face_width / 128.0, 4),
            "onset": clip.first_frame + clip.onset, "apex": clip.first_frame + clip.apex,
            "offset": clip.first_frame + clip.offset,
            "jitter_apex_minus_onset_x": round(float(jit[clip.apex, 0] - jit[clip.onset, 0]), 4),
            "jitter_apex_minus_onset_y": round(float(jit[clip.apex, 1] - jit[clip.onset, 1]), 4),
            "face_width_px": round(faces[clip.subject].face_width, 2),
        })
    pd.DataFrame(truth).to_csv(root / GROUND_TRUTH, index=False)
    (root / "synth_settings.json").write_text(json.dumps(asdict(settings), indent=2))
    if settings.layout == "casme2":
        return write_casme2_coding(root, clips)
    return write_samm_coding(root, clips)


def write_casme2_coding(root: Path, clips: list[ClipSpec]) -> Path:
    """The coding file with CASME II's exact header row (two blank columns, text subject ids)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
               "Estimated Emotion"])
    for c in clips:
        aus = int(c.aus) if c.aus.isdigit() else c.aus  # the real file stores single AUs as numbers
        ws.append([subject_id("casme2", c.subject), c.name, None, c.first_frame + c.onset,
                   c.first_frame + c.apex, c.first_frame + c.offset, None, aus, c.emotion])
    path = root / CASME2_CODING
    wb.save(path)
    return path


SAMM_PREAMBLE = [
    "SAMM Dataset - Master FACS Codes (SYNTHETIC: generated by tscnn synth, no real faces)",
    None,
    "Synthetic database in the SAMM layout; see ground_truth.csv for the rendered motion.",
    None, None, "Symbol Key:", '"/" = or', '"?" = some AU\'s continue for a while and have unclear offset',
    None, "AU Help:", '"L2 or R2" = Unilateral AU 2 on left side of face / right side of face',
    '"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side', None,
]
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]


def write_samm_coding(root: Path, clips: list[ClipSpec]) -> Path:
    """The coding file with SAMM's 13 preamble rows and its header on row 14."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "MICRO_ONLY"
    for line in SAMM_PREAMBLE:
        ws.append([line])
    ws.append(SAMM_HEADER)
    for c in clips:
        onset, apex, offset = (c.first_frame + x for x in (c.onset, c.apex, c.offset))
        ws.append([subject_id("samm", c.subject), c.name, int(c.name.split("_")[1]), onset, apex, offset,
                   offset - onset + 1, "Micro - 1/2", c.aus, c.emotion, 7, None])
    path = root / SAMM_CODING
    wb.save(path)
    return path
