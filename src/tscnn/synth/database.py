"""Write a synthetic micro-expression database in a real database's on-disk layout.

The output is read by the project's real database readers with no special case. What differs
between databases (folders and frame file names, subject and clip naming, frame numbering, the
coding spreadsheet, grey or colour frames, class proportions) is one :class:`Layout` per database
in ``LAYOUTS``; :func:`write_database` plans the clips, renders them and asks the layout where
each frame goes and what the annotation holds:

* ``casme2``: ``subXX/EPyy_zz/reg_imgN.jpg`` with ``CASME2-coding-synthetic.xlsx``;
* ``samm``: ``SSS/SSS_i_j/SSS_NNNN.jpg`` grey frames with ``SAMM_Micro_FACS_Codes_synthetic.xlsx``;
* ``smic``: ``HS/sN/micro/<negative|positive|surprise>/sN_ne_01/reg_imageNNNNNN.bmp``, no spreadsheet;
* ``casme3``: ``spNO.N/<a..m>/color/N.jpg`` with ``casme3_partA_synthetic.xlsx``;
* ``mmew``: ``Micro_Expression/<emotion>/S01-01-001/N.jpg`` with ``MMEW_Micro_Exp_synthetic.xlsx``.

Beside them, ``ground_truth.csv`` records what was rendered per clip (action units, amplitude in
pixels, head jitter) so the flow pipeline can be checked against the true motion.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from tscnn.results_folder import require_empty
from tscnn.synth.actions import choose_aus, displacement_field, intensity_profile
from tscnn.synth.faces import FaceIdentity, make_identity

GROUND_TRUTH = "ground_truth.csv"
SETTINGS_FILE = "synth_settings.json"  # the SynthSettings a database was generated with


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


def phases(c: ClipSpec) -> tuple[int, int, int]:
    """Onset, apex and offset as the database numbers its frames."""
    return c.first_frame + c.onset, c.first_frame + c.apex, c.first_frame + c.offset


def recording(clip: ClipSpec) -> str:
    """The folder name of a clip: its name, minus the uniqueness tag of CAS(ME)^3 recordings."""
    return clip.name.split("#")[0]


def unique_name(draw: Callable[[], str], used: set[str]) -> str:
    """Draw names until one is not in ``used``."""
    while (name := draw()) in used:
        pass
    return name


class Layout:
    """One real database's on-disk layout: everything :func:`write_database` asks about a clip.

    The class attributes are the layout's data; the methods map a subject index or a planned clip to
    the database's names. The defaults are the common case: colour frames, whole clips, a coding
    spreadsheet of one row a clip, and readers that give subjects and clips the folder names.
    """

    name: str
    emotions: dict[str, int]  # emotion counts of the real coding file, used as class proportions
    subject_format: str  # folder / spreadsheet id of a subject, from its number
    first_subject: int = 1  # number of the first subject
    truth_format: str | None = None  # the id the project's reader gives a subject (None: the folder id)
    coding: str | None = None  # the coding spreadsheet's file name (None: the folders are the annotation)
    sheet: str = "Sheet1"  # title of its first sheet
    preamble: tuple[str | None, ...] = ()  # rows above the header, one cell each
    header: Sequence[str | None] = ()
    extra_sheets: tuple[str, ...] = ()  # empty sheets after the first
    grey: bool = False  # frames saved as grey images
    cut_to_expression: bool = False  # clips cut from onset to offset instead of keeping frames around it

    def subject_id(self, index: int) -> str:
        """Folder / spreadsheet id of subject ``index``."""
        return self.subject_format.format(index + self.first_subject)

    def clip_name(self, rng: np.random.Generator, subject: int, used: set[str], emotion: str) -> str:
        """A clip name in the database's style, unique within the subject."""
        raise NotImplementedError

    def first_frame(self, rng: np.random.Generator, clip_index: int) -> int:
        """Number of a clip's first frame as the database numbers them."""
        raise NotImplementedError

    def frame_path(self, clip: ClipSpec, number: int) -> Path:
        """Where frame ``number`` of a clip lives, relative to the database root."""
        raise NotImplementedError

    def coding_row(self, clip: ClipSpec) -> list:
        """The clip's row of the coding spreadsheet."""
        raise NotImplementedError

    def truth_subject(self, index: int) -> str:
        """The subject id the project's reader gives subject ``index``."""
        return self.truth_format.format(index + 1) if self.truth_format else self.subject_id(index)

    def clip_id(self, clip: ClipSpec) -> str:
        """The clip id the project's reader gives this clip."""
        return clip.name

    def write_annotation(self, root: Path, clips: list[ClipSpec]) -> Path:
        """Write the coding spreadsheet (preamble, header, a row a clip) and return its path."""
        assert self.coding is not None
        rows = [[line] for line in self.preamble] + [list(self.header), *(self.coding_row(c) for c in clips)]
        return write_sheet(root / self.coding, self.sheet, rows, self.extra_sheets)


CASME2_CODING = "CASME2-coding-synthetic.xlsx"


class Casme2(Layout):
    """``subXX/EPyy_zz/reg_imgN.jpg`` colour face crops (frame numbers unpadded, starting where the clip
    starts) and the coding file with CASME II's exact header row (two blank columns, text subject ids)."""

    name = "casme2"
    subject_format = "{:02d}"
    truth_format = "sub{:02d}"
    emotions = {"others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25, "sadness": 7,
                "fear": 2}
    coding = CASME2_CODING
    header = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
              "Estimated Emotion"]

    def clip_name(self, rng: np.random.Generator, subject: int, used: set[str], emotion: str) -> str:
        def draw() -> str:
            suffix = "f" if rng.random() < 0.5 else ""
            return f"EP{int(rng.integers(1, 20)):02d}_{int(rng.integers(1, 12)):02d}{suffix}"
        return unique_name(draw, used)

    def first_frame(self, rng: np.random.Generator, clip_index: int) -> int:
        return int(rng.integers(1, 400))

    def frame_path(self, clip: ClipSpec, number: int) -> Path:
        return Path(f"sub{self.subject_id(clip.subject)}", clip.name, f"reg_img{number}.jpg")

    def coding_row(self, c: ClipSpec) -> list:
        # The real file stores single AUs as numbers.
        return [self.subject_id(c.subject), c.name, None, *phases(c), None, int(c.aus) if c.aus.isdigit() else c.aus,
                c.emotion]


SAMM_PREAMBLE = (
    "SAMM Dataset - Master FACS Codes (SYNTHETIC: generated by tscnn synth, no real faces)",
    None,
    "Synthetic database in the SAMM layout; see ground_truth.csv for the rendered motion.",
    None, None, "Symbol Key:", '"/" = or', '"?" = some AU\'s continue for a while and have unclear offset',
    None, "AU Help:", '"L2 or R2" = Unilateral AU 2 on left side of face / right side of face',
    '"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side', None,
)
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]


class Samm(Layout):
    """``SSS/SSS_i_j/SSS_NNNN.jpg`` grey frames (zero padding varies per clip) and the coding file with
    SAMM's 13 preamble rows and its header on row 14."""

    name = "samm"
    subject_format = "{:03d}"
    first_subject = 6
    emotions = {"Anger": 57, "Other": 26, "Happiness": 26, "Surprise": 15, "Contempt": 12, "Disgust": 9, "Fear": 8,
                "Sadness": 6}
    coding = "SAMM_Micro_FACS_Codes_synthetic.xlsx"
    sheet = "MICRO_ONLY"
    preamble = SAMM_PREAMBLE
    header = SAMM_HEADER
    grey = True

    def clip_name(self, rng: np.random.Generator, subject: int, used: set[str], emotion: str) -> str:
        sid = self.subject_id(subject)
        return unique_name(lambda: f"{sid}_{int(rng.integers(1, 8))}_{int(rng.integers(1, 10))}", used)

    def first_frame(self, rng: np.random.Generator, clip_index: int) -> int:
        return int(rng.integers(1000, 9000))

    def frame_path(self, clip: ClipSpec, number: int) -> Path:
        sid = self.subject_id(clip.subject)
        pad = 4 + (clip.seed[2] % 2)  # SAMM's zero padding varies per clip
        return Path(sid, clip.name, f"{sid}_{number:0{pad}d}.jpg")

    def coding_row(self, c: ClipSpec) -> list:
        onset, _, offset = phases(c)
        return [self.subject_id(c.subject), c.name, int(c.name.split("_")[1]), *phases(c), offset - onset + 1,
                "Micro - 1/2", c.aus, c.emotion, 7, None]


class Smic(Layout):
    """SMIC-HS: ``HS/sN/micro/<negative|positive|surprise>/sN_ne_01/reg_imageNNNNNN.bmp``, each clip cut from
    onset to offset; no spreadsheet (the folders are the annotation) and no apex."""

    name = "smic"
    subject_format = "s{}"
    truth_format = "s{:02d}"
    emotions = {"negative": 70, "positive": 51, "surprise": 43}
    cut_to_expression = True
    short = {"negative": "ne", "positive": "po", "surprise": "sur"}

    def clip_name(self, rng: np.random.Generator, subject: int, used: set[str], emotion: str) -> str:
        stem = f"{self.subject_id(subject)}_{self.short[emotion]}_"
        return f"{stem}{1 + sum(n.startswith(stem) for n in used):02d}"

    def first_frame(self, rng: np.random.Generator, clip_index: int) -> int:
        return int(rng.integers(10_000, 900_000))

    def frame_path(self, clip: ClipSpec, number: int) -> Path:
        return Path("HS", self.subject_id(clip.subject), "micro", clip.emotion, clip.name,
                    f"reg_image{number:06d}.bmp")

    def clip_id(self, clip: ClipSpec) -> str:
        return self.truth_subject(clip.subject) + clip.name[len(self.subject_id(clip.subject)):]

    def write_annotation(self, root: Path, clips: list[ClipSpec]) -> Path:
        return root / "HS"


class Casme3(Layout):
    """CAS(ME)^3 part A: ``spNO.N/<a..m>/color/N.jpg``, several clips sharing a recording folder in disjoint
    frame ranges, and the label table: sheet ``label`` with CAS(ME)^3's headers, two empty sheets beside it."""

    name = "casme3"
    subject_format = "spNO.{}"
    emotions = {"disgust": 250, "surprise": 187, "others": 158, "fear": 86, "anger": 64, "sad": 57, "happy": 55}
    coding = "casme3_partA_synthetic.xlsx"
    sheet = "label"
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    extra_sheets = ("Sheet1", "Sheet3")

    def clip_name(self, rng: np.random.Generator, subject: int, used: set[str], emotion: str) -> str:
        # The name is the recording (a..m), which several clips may share, plus a uniqueness tag.
        return "abcdefghijklm"[int(rng.integers(0, 13))] + f"#{len(used)}"

    def first_frame(self, rng: np.random.Generator, clip_index: int) -> int:
        return 100 * clip_index + int(rng.integers(0, 40))  # disjoint ranges in a shared recording

    def frame_path(self, clip: ClipSpec, number: int) -> Path:
        return Path(self.subject_id(clip.subject), recording(clip), "color", f"{number}.jpg")

    def clip_id(self, clip: ClipSpec) -> str:
        return f"{recording(clip)}_{phases(clip)[0]}"

    def coding_row(self, c: ClipSpec) -> list:
        return [self.subject_id(c.subject), recording(c), *phases(c), c.aus, "VII", c.emotion]


class Mmew(Layout):
    """``Micro_Expression/<emotion>/S01-01-001/N.jpg`` (frames from 1) and the micro-expression table with
    MMEW's headers (numeric subject ids)."""

    name = "mmew"
    subject_format = "{}"
    truth_format = "S{:02d}"
    emotions = {"surprise": 89, "disgust": 72, "others": 66, "happiness": 36, "fear": 16, "sadness": 13, "anger": 8}
    coding = "MMEW_Micro_Exp_synthetic.xlsx"
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
              "remarks"]

    def clip_name(self, rng: np.random.Generator, subject: int, used: set[str], emotion: str) -> str:
        return f"S{subject + 1:02d}-{int(rng.integers(1, 4)):02d}-{len(used) + 1:03d}"

    def first_frame(self, rng: np.random.Generator, clip_index: int) -> int:
        return 1

    def frame_path(self, clip: ClipSpec, number: int) -> Path:
        return Path("Micro_Expression", clip.emotion, clip.name, f"{number}.jpg")

    def coding_row(self, c: ClipSpec) -> list:
        return [c.subject + 1, c.name, *phases(c), c.aus, c.emotion, None]


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (Casme2(), Samm(), Smic(), Casme3(), Mmew())}


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; expected one of {sorted(LAYOUTS)}")
    return LAYOUTS[name]


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
    layout = get_layout(settings.layout)
    rng = np.random.default_rng([settings.seed, 7])
    total = int(round(settings.clips_per_subject * settings.subjects))
    counts = allocate_counts(layout.emotions, total)
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
            name = layout.clip_name(crng, s, used, emotion)
            used.add(name)
            first = layout.first_frame(crng, c)
            amplitude = float(crng.uniform(*settings.amplitude_px))
            clips.append(ClipSpec(s, name, emotion, aus, atypical, n_frames, onset, apex, offset, first,
                                  amplitude, (settings.seed, s, c)))
    return clips


class FaceRenderer:
    """Renders frames of one face under one lighting: the neutral face warped by a displacement field and a
    global shift, times a gain that drifts linearly to ``gain_end`` with a left-right tilt growing to
    ``tilt_end`` over the recording, plus sensor noise. Shared by clips and long videos
    (``tscnn.synth.long_video``) so both show the same kind of motion."""

    def __init__(self, face: FaceIdentity, rng: np.random.Generator, drift: float,
                 noise_sigma: tuple[float, float]):
        h, w = face.size
        self.gain_end = 1 + rng.uniform(-drift, drift)
        self.tilt_end = rng.uniform(-0.04, 0.04)
        self.noise_sigma = rng.uniform(*noise_sigma)
        self.neutral = face.image.astype(np.float32)
        self.grid = np.mgrid[0:h, 0:w].astype(np.float32)
        self.ramp = (self.grid[1] - w / 2) / w

    def frame(self, t: int, n: int, disp: np.ndarray, shift: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Frame ``t`` of ``n`` (BGR uint8) with displacement ``disp`` (H x W x 2, px) and global ``shift``."""
        progress = t / max(n - 1, 1)
        light = (1 + (self.gain_end - 1) * progress) * (1 + self.tilt_end * progress * self.ramp)
        yy, xx = self.grid
        map_x = (xx - disp[..., 0] - shift[0]).astype(np.float32)
        map_y = (yy - disp[..., 1] - shift[1]).astype(np.float32)
        frame = cv2.remap(self.neutral, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        frame = frame * light[..., None] + rng.normal(0, self.noise_sigma, frame.shape)
        return np.clip(frame, 0, 255).astype(np.uint8)


def render_clip(face: FaceIdentity, clip: ClipSpec, settings: SynthSettings) -> tuple[list[np.ndarray], dict]:
    """Render the clip's frames (BGR uint8) and return them with its true motion.

    The returned dict holds ``field`` (unit AU displacement, H x W x 2), the per-frame ``intensity``
    and ``jitter`` (global translation, frames x 2), so the true displacement of frame t relative to
    the neutral face is ``amplitude * intensity[t] * field + jitter[t]``.
    """
    rng = np.random.default_rng([*clip.seed, 2])
    scale = face.face_width / 128.0
    field = displacement_field(face, clip.aus)
    intensity = intensity_profile(clip.n_frames, clip.onset, clip.apex, clip.offset)
    steps = rng.normal(0, settings.jitter_px * 0.35, (clip.n_frames, 2))
    jitter = np.cumsum(steps, axis=0)
    jitter -= jitter.mean(0)
    jitter = np.clip(jitter, -2 * settings.jitter_px, 2 * settings.jitter_px)
    renderer = FaceRenderer(face, rng, settings.illumination_drift, settings.noise_sigma)
    frames = [renderer.frame(t, clip.n_frames, clip.amplitude_px * scale * intensity[t] * field, jitter[t], rng)
              for t in range(clip.n_frames)]
    return frames, {"field": field, "intensity": intensity, "jitter": jitter}


def write_database(out: str | Path, settings: SynthSettings | None = None) -> Path:
    """Generate the database under ``out`` and return the path of its coding spreadsheet (SMIC: of ``HS``)."""
    settings = settings or SynthSettings()
    layout = get_layout(settings.layout)
    root = Path(out)
    require_empty(root, "a synthetic database's folder")  # never mixed with the clips of another database
    root.mkdir(parents=True, exist_ok=True)
    clips = plan_clips(settings)
    faces = [make_identity(np.random.default_rng([settings.seed, s, 0])) for s in range(settings.subjects)]
    truth = []
    for clip in clips:
        frames, motion = render_clip(faces[clip.subject], clip, settings)
        quality = int(np.random.default_rng([*clip.seed, 3]).integers(*settings.jpeg_quality))
        span = range(clip.onset, clip.offset + 1) if layout.cut_to_expression else range(len(frames))
        for t in span:
            path = root / layout.frame_path(clip, clip.first_frame + t)
            path.parent.mkdir(parents=True, exist_ok=True)
            image = cv2.cvtColor(frames[t], cv2.COLOR_BGR2GRAY) if layout.grey else frames[t]
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else [])
        jit = motion["jitter"]
        truth.append({
            "subject": layout.truth_subject(clip.subject), "clip": layout.clip_id(clip), "emotion": clip.emotion,
            "action_units": clip.aus, "atypical": clip.atypical,
            "amplitude_px": round(clip.amplitude_px * faces[clip.subject].face_width / 128.0, 4),
            **dict(zip(("onset", "apex", "offset"), phases(clip), strict=True)),
            "jitter_apex_minus_onset_x": round(float(jit[clip.apex, 0] - jit[clip.onset, 0]), 4),
            "jitter_apex_minus_onset_y": round(float(jit[clip.apex, 1] - jit[clip.onset, 1]), 4),
            "face_width_px": round(faces[clip.subject].face_width, 2),
        })
    pd.DataFrame(truth).to_csv(root / GROUND_TRUTH, index=False)
    (root / SETTINGS_FILE).write_text(json.dumps(asdict(settings), indent=2))
    return layout.write_annotation(root, clips)


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
