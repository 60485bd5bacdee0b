"""Write a synthetic micro-expression database in a real database's on-disk layout.

The output is read by the project's real database readers with no special case:

* ``casme2``: ``subXX/EPyy_zz/reg_imgN.jpg`` colour face crops (frame numbers unpadded, starting
  where the clip starts) and ``CASME2-coding-synthetic.xlsx`` with the real CASME II headers
  (including the two blank columns and text subject ids).
* ``samm``: ``SSS/SSS_i_j/SSS_NNNN.jpg`` grey frames (padding varies per clip) and
  ``SAMM_Micro_FACS_Codes_synthetic.xlsx`` with 13 preamble rows and the real SAMM headers.
* ``smic``: ``HS/sN/micro/<negative|positive|surprise>/sN_ne_01/reg_imageNNNNNN.bmp``, each clip
  cut from onset to offset, no spreadsheet and no apex (as SMIC-HS).
* ``casme3``: ``spNO.N/<a..m>/color/N.jpg`` (several clips may share a recording folder, in
  disjoint frame ranges) and ``casme3_partA_synthetic.xlsx`` with sheet ``label``.
* ``mmew``: ``Micro_Expression/<emotion>/S01-01-001/N.jpg`` and ``MMEW_Micro_Exp_synthetic.xlsx``.

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
SMIC_EMOTIONS = {"negative": 70, "positive": 51, "surprise": 43}
CASME3_EMOTIONS = {"disgust": 250, "surprise": 187, "others": 158, "fear": 86, "anger": 64, "sad": 57, "happy": 55}
MMEW_EMOTIONS = {"surprise": 89, "disgust": 72, "others": 66, "happiness": 36, "fear": 16, "sadness": 13,
                 "anger": 8}
LAYOUT_EMOTIONS = {"casme2": CASME2_EMOTIONS, "samm": SAMM_EMOTIONS, "smic": SMIC_EMOTIONS,
                   "casme3": CASME3_EMOTIONS, "mmew": MMEW_EMOTIONS}
CASME2_CODING = "CASME2-coding-synthetic.xlsx"
SAMM_CODING = "SAMM_Micro_FACS_Codes_synthetic.xlsx"
CASME3_CODING = "casme3_partA_synthetic.xlsx"
MMEW_CODING = "MMEW_Micro_Exp_synthetic.xlsx"
SMIC_SHORT = {"negative": "ne", "positive": "po", "surprise": "sur"}
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
    proportions = LAYOUT_EMOTIONS[settings.layout]
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
            name = clip_name(settings.layout, crng, s, used, emotion)
            used.add(name)
            first = first_frame(settings.layout, crng, c)
            amplitude = float(crng.uniform(*settings.amplitude_px))
            clips.append(ClipSpec(s, name, emotion, aus, atypical, n_frames, onset, apex, offset, first,
                                  amplitude, (settings.seed, s, c)))
    return clips


def subject_id(layout: str, index: int) -> str:
    """Folder / spreadsheet id of subject ``index``: CASME II '01', SAMM '006', SMIC 's1',
    CAS(ME)^3 'spNO.1', MMEW '1'."""
    return {"casme2": f"{index + 1:02d}", "samm": f"{index + 6:03d}", "smic": f"s{index + 1}",
            "casme3": f"spNO.{index + 1}", "mmew": f"{index + 1}"}[layout]


def clip_name(layout: str, rng: np.random.Generator, subject: int, used: set[str], emotion: str) -> str:
    """A clip name in the database's style, unique within the subject (CAS(ME)^3 names a recording,
    which several clips may share)."""
    sid = subject_id(layout, subject)
    if layout == "smic":
        short = SMIC_SHORT[emotion]
        return f"{sid}_{short}_{1 + sum(n.startswith(f'{sid}_{short}_') for n in used):02d}"
    if layout == "casme3":
        return "abcdefghijklm"[int(rng.integers(0, 13))] + f"#{len(used)}"
    if layout == "mmew":
        return f"S{subject + 1:02d}-{int(rng.integers(1, 4)):02d}-{len(used) + 1:03d}"
    while True:
        if layout == "casme2":
            suffix = "f" if rng.random() < 0.5 else ""
            name = f"EP{int(rng.integers(1, 20)):02d}_{int(rng.integers(1, 12)):02d}{suffix}"
        else:
            name = f"{sid}_{int(rng.integers(1, 8))}_{int(rng.integers(1, 10))}"
        if name not in used:
            return name


def first_frame(layout: str, rng: np.random.Generator, clip_index: int) -> int:
    """Number of a clip's first frame as the database numbers them (CAS(ME)^3: disjoint ranges
    per clip, since clips share recording folders; MMEW: from 1)."""
    if layout == "casme2":
        return int(rng.integers(1, 400))
    if layout == "casme3":
        return 100 * clip_index + int(rng.integers(0, 40))
    if layout == "mmew":
        return 1
    if layout == "smic":
        return int(rng.integers(10_000, 900_000))
    return int(rng.integers(1000, 9000))


def recording(clip: ClipSpec) -> str:
    """The folder name of a clip: its name, minus the uniqueness tag of CAS(ME)^3 recordings."""
    return clip.name.split("#")[0]


def clip_id(layout: str, clip: ClipSpec) -> str:
    """The clip id the project's reader gives this clip."""
    if layout == "casme3":
        return f"{recording(clip)}_{phases(clip)[0]}"
    if layout == "smic":
        return truth_subject(layout, clip.subject) + clip.name[len(subject_id(layout, clip.subject)):]
    return clip.name


def truth_subject(layout: str, index: int) -> str:
    """The subject id the project's reader gives subject ``index``."""
    return {"casme2": f"sub{index + 1:02d}", "smic": f"s{index + 1:02d}", "mmew": f"S{index + 1:02d}"}.get(
        layout, subject_id(layout, index))


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
    if layout == "smic":
        return root / "HS" / sid / "micro" / clip.emotion / clip.name / f"reg_image{number:06d}.bmp"
    if layout == "casme3":
        return root / sid / recording(clip) / "color" / f"{number}.jpg"
    if layout == "mmew":
        return root / "Micro_Expression" / clip.emotion / clip.name / f"{number}.jpg"
    pad = 4 + (clip.seed[2] % 2)  # SAMM's zero padding varies per clip
    return root / sid / clip.name / f"{sid}_{number:0{pad}d}.jpg"


def write_database(out: str | Path, settings: SynthSettings | None = None) -> Path:
    """Generate the database under ``out`` and return the path of its coding spreadsheet."""
    settings = settings or SynthSettings()
    if settings.layout not in LAYOUT_EMOTIONS:
        raise ValueError(f"unknown layout {settings.layout!r}; expected one of {sorted(LAYOUT_EMOTIONS)}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    clips = plan_clips(settings)
    faces = [make_identity(np.random.default_rng([settings.seed, s, 0])) for s in range(settings.subjects)]
    truth = []
    for clip in clips:
        frames, motion = render_clip(faces[clip.subject], clip, settings)
        quality = int(np.random.default_rng([*clip.seed, 3]).integers(*settings.jpeg_quality))
        # SMIC-HS clips are cut from onset to offset; the others keep frames around the expression.
        span = range(clip.onset, clip.offset + 1) if settings.layout == "smic" else range(len(frames))
        for t in span:
            path = frame_path(root, settings.layout, clip, clip.first_frame + t)
            path.parent.mkdir(parents=True, exist_ok=True)
            image = cv2.cvtColor(frames[t], cv2.COLOR_BGR2GRAY) if settings.layout == "samm" else frames[t]
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else [])
        jit = motion["jitter"]
        truth.append({
            "subject": truth_subject(settings.layout, clip.subject), "clip": clip_id(settings.layout, clip),
            "emotion": clip.emotion,
            "action_units": clip.aus, "atypical": clip.atypical,
            "amplitude_px": round(clip.amplitude_px * faces[clip.subject].face_width / 128.0, 4),
            **dict(zip(("onset", "apex", "offset"), phases(clip), strict=True)),
            "jitter_apex_minus_onset_x": round(float(jit[clip.apex, 0] - jit[clip.onset, 0]), 4),
            "jitter_apex_minus_onset_y": round(float(jit[clip.apex, 1] - jit[clip.onset, 1]), 4),
            "face_width_px": round(faces[clip.subject].face_width, 2),
        })
    pd.DataFrame(truth).to_csv(root / GROUND_TRUTH, index=False)
    (root / "synth_settings.json").write_text(json.dumps(asdict(settings), indent=2))
    writers = {"casme2": write_casme2_coding, "samm": write_samm_coding, "casme3": write_casme3_coding,
               "mmew": write_mmew_coding}
    if settings.layout == "smic":
        return root / "HS"  # SMIC-HS has no spreadsheet: the folders are the annotation
    return writers[settings.layout](root, clips)


def write_sheet(path: Path, title: str, rows: list[list], extra_sheets: tuple[str, ...] = ()) -> Path:
    """Write ``rows`` (preamble, header and data) as the first sheet of a new workbook."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    for name in extra_sheets:
        wb.create_sheet(name)
    wb.save(path)
    return path


def phases(c: ClipSpec) -> tuple[int, int, int]:
    """Onset, apex and offset as the database numbers its frames."""
    return c.first_frame + c.onset, c.first_frame + c.apex, c.first_frame + c.offset


def write_casme2_coding(root: Path, clips: list[ClipSpec]) -> Path:
    """The coding file with CASME II's exact header row (two blank columns, text subject ids)."""
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
              "Estimated Emotion"]
    # The real file stores single AUs as numbers.
    rows = [[subject_id("casme2", c.subject), c.name, None, *phases(c), None,
             int(c.aus) if c.aus.isdigit() else c.aus, c.emotion] for c in clips]
    return write_sheet(root / CASME2_CODING, "Sheet1", [header, *rows])


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
    rows = [[subject_id("samm", c.subject), c.name, int(c.name.split("_")[1]), *phases(c),
             phases(c)[2] - phases(c)[0] + 1, "Micro - 1/2", c.aus, c.emotion, 7, None] for c in clips]
    return write_sheet(root / SAMM_CODING, "MICRO_ONLY", [[line] for line in SAMM_PREAMBLE] + [SAMM_HEADER, *rows])


def write_casme3_coding(root: Path, clips: list[ClipSpec]) -> Path:
    """The part A label table: sheet ``label`` with CAS(ME)^3's headers (two empty sheets beside it)."""
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    rows = [[subject_id("casme3", c.subject), recording(c), *phases(c), c.aus, "VII", c.emotion] for c in clips]
    return write_sheet(root / CASME3_CODING, "label", [header, *rows], extra_sheets=("Sheet1", "Sheet3"))


def write_mmew_coding(root: Path, clips: list[ClipSpec]) -> Path:
    """The MMEW micro-expression table with its headers (numeric subject ids)."""
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
              "remarks"]
    rows = [[c.subject + 1, c.name, *phases(c), c.aus, c.emotion, None] for c in clips]
    return write_sheet(root / MMEW_CODING, "Sheet1", [header, *rows])
