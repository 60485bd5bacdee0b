"""Spotting micro-expressions in long videos, and the MEGC spotting metric.

A model from ``tscnn train`` classifies one micro-expression clip (onset..offset, under 0.5 s); a
real recording is minutes of mostly neutral face. Spotting finds the candidate intervals first,
with the project's own motion measure (``tscnn.preprocessing.apex.local_motion``: DIS flow at
``SPOT_WIDTH`` px with the median, global, motion removed), so that each can be classified as a clip.

The method is the feature-difference scheme of the MEGC long-video baseline (Moilanen et al.,
ICPR 2014; Li et al., MEGC 2019 and 2020) with flow in place of LBP histograms:

1. ``k`` = half the longest micro-expression (0.5 s) in frames. Per frame t,
   F(t) = motion(t-k -> t) + motion(t+k -> t): how far frame t has moved from both ends of a window
   as long as the longest micro-expression (the apex spotter's measure, slid along the video).
2. Contrast C(t) = F(t) - (F(t-k) + F(t+k)) / 2 keeps short there-and-back movements and cancels
   slow or lasting ones (a head turn, a held expression) which raise F over a whole stretch.
3. Peaks of C that are the largest within +-k frames and above median + ``z`` robust standard
   deviations (1.4826 MAD) of C are candidates: the threshold is in units of the video's own noise,
   so it needs no tuning per camera and a neutral video gives no candidate (the MEGC baseline's
   threshold, a fraction of the video's maximum, always spots something).
4. Onset, apex and offset: the apex spotter's curve (motion from the ends of the window p-2k..p+2k)
   is cut where it falls below ``level`` (20 %) of its peak above the local baseline. For the
   raised-cosine rise and fall of a micro-expression that keeps about 70 % of the true interval
   (IoU ~ 0.7, clear of the metric's 0.5).

``spotting_metrics`` is the MEGC criterion: a spotted interval is a true positive when its IoU
with a ground-truth interval is at least 0.5, each ground truth matched at most once; precision,
recall and F1 are pooled over videos.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from tscnn.config import OPTION_DOMAINS, check_domains
from tscnn.console import bars_disabled, plain_warnings
from tscnn.datasets.base import list_frames
from tscnn.errors import DatasetError, SpotWarning  # noqa: F401  (SpotWarning re-exported)
from tscnn.predict import LONG_CLIP_SECONDS, MAX_ME_SECONDS  # noqa: F401  (re-exported)
from tscnn.preprocessing.apex import SPOT_WIDTH, local_motion, textured
from tscnn.preprocessing.frames import decode_image, video_fps
from tscnn.preprocessing.keyframes import refuse_key_frames

# Below 60 fps a 0.2 s micro-expression spans fewer than 12 frames and its onset -> apex rise 2-5;
# the shortest ones (about 1/25 s) can fall between two frames. Every ME database was filmed at
# 100-200 fps (CASME II, SAMM, SMIC-HS); SMIC's 25 fps VIS/NIR parts are the ones methods do worst on.
MIN_FPS = 60.0
# The face box is the detection enlarged by 10 % on each side (``detect_face``), so about 1/12 of the crop
# on each side is background or hair, whose motion relative to a moving head is not an expression.
BORDER = 0.1 / 1.2
PROGRESS_FRAMES = 300  # progress bars for inputs at least this long



@dataclass(frozen=True)
class SpotSettings:
    """The spotter's parameters, chosen from first principles (module docstring), not fitted."""

    max_seconds: float = MAX_ME_SECONDS  # window: the longest micro-expression
    z: float = 6.0  # candidates stand this many robust standard deviations above the video's median
    level: float = 0.2  # onset/offset where the motion falls below this fraction of its peak
    width: int = SPOT_WIDTH  # frames are compared at this width

    def __post_init__(self) -> None:
        check_domains({"z": self.z}, {"z": OPTION_DOMAINS["z"]})

    def half_window(self, fps: float) -> int:
        """k: half the longest micro-expression in frames (at least 1)."""
        return max(1, int(round(fps * self.max_seconds / 2)))


@dataclass
class Interval:
    """One spotted interval: frame numbers (a folder's own, else 0-based: what ``predict --onset`` takes), times
    in seconds, its score, and (with a model) the predicted class and class probabilities."""

    onset: int
    apex: int
    offset: int
    onset_s: float
    apex_s: float
    offset_s: float
    score: float  # the contrast peak in robust standard deviations of the video's noise
    predicted: str | None = None
    probabilities: dict[str, float] | None = None


@dataclass
class SpotResult:
    """What ``spot`` found in one video."""

    source: str
    fps: float
    frames: int
    intervals: list[Interval]
    settings: dict
    threshold: float  # the contrast threshold, in the motion measure's units (px)
    low_fps: bool
    model_card: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    def to_dict(self) -> dict:
        return {"source": self.source, "fps": self.fps, "frames": self.frames,
                "duration_s": round(self.seconds, 3), "low_fps": self.low_fps, "min_fps": MIN_FPS,
                "settings": self.settings, "threshold": self.threshold, "model_card": self.model_card,
                "intervals": [asdict(i) for i in self.intervals]}


@dataclass
class FrameSource:
    """Grey frames that can be read more than once (spotting reads a long video twice instead of
    holding it in memory): ``open()`` yields them from the first."""

    name: str
    fps: float
    count: int  # frames, as the container says (a progress-bar total; the reading decides)
    open: Callable[[], Iterator[np.ndarray]]
    numbers: list[int] | None = None  # a frame folder's own frame numbers (what predict --onset accepts)

    def number(self, index: int) -> int:
        """The frame number of the ``index``-th frame read: the file's own number in a folder, else the index."""
        return self.numbers[index] if self.numbers else index


def open_source(source: str | Path, fps: float | None = None) -> FrameSource:
    """A video file or frame folder as a ``FrameSource``; ``fps`` overrides the video's own rate and is
    required for a folder. Bad input is a one-line ``DatasetError`` naming the file."""
    from tscnn.predict import VIDEO_SUFFIXES

    path = Path(source)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_dir():
        frames = list_frames(path)
        if not frames:
            raise DatasetError(f"{path}: no frames (images with a frame number in their name) in this folder")
        if not fps:
            raise DatasetError(f"{path}: a frame folder has no frame rate; give it (--fps)")
        refuse_key_frames(frames, min(frames), max(frames), str(path), "spotting")
        files = [frames[n] for n in sorted(frames)]

        def read_folder() -> Iterator[np.ndarray]:
            for file in files:
                image, why = decode_image(file, cv2.IMREAD_GRAYSCALE)
                if image is None:
                    raise DatasetError(f"{file}: cannot read this image ({why})")
                yield image
        return FrameSource(str(path), float(fps), len(files), read_folder, sorted(frames))
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise DatasetError(f"{path}: not a frame folder or a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
    declared, count = video_fps(path)
    rate = float(fps or declared)
    if rate <= 0:
        raise DatasetError(f"{path}: no frames could be decoded, or the video declares no frame rate (give --fps)")

    def read_video() -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(path))
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        finally:
            capture.release()
    return FrameSource(str(path), rate, count, read_video)


def memory_source(frames: Sequence[np.ndarray], fps: float, name: str = "frames") -> FrameSource:
    """Frames held in memory (grey, or BGR turned grey) as a ``FrameSource``."""
    def read() -> Iterator[np.ndarray]:
        for frame in frames:
            yield frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return FrameSource(name, float(fps), len(frames), read)


def check_frame_rate(fps: float, name: str) -> bool:
    """Warn (``SpotWarning``) when ``fps`` is too low to resolve micro-expressions; True if it is."""
    if fps < MIN_FPS:
        warnings.warn(f"{name}: {fps:.4g} fps is below {MIN_FPS:.0f} fps: a micro-expression (under "
                      f"{MAX_ME_SECONDS} s) spans only {fps * MAX_ME_SECONDS:.0f} frames or fewer here, so short "
                      "ones can be missed and their onset/offset are coarse; ME databases are filmed at 100-200 fps",
                      SpotWarning, stacklevel=3)
        return True
    return False


def face_crop_box(source: FrameSource) -> tuple[int, int, int, int]:
    """The face box on the first frame where the Haar detector finds one (within the first few seconds);
    the same box crops every frame, as ``predict`` does."""
    from tscnn.preprocessing.face import NoFaceError, detect_face

    step = max(1, int(round(source.fps / 2)))
    for i, frame in enumerate(source.open()):
        if i > 10 * step:
            break
        if i % step == 0:
            try:
                return detect_face(frame)
            except NoFaceError:
                continue
    raise DatasetError(f"{source.name}: no face found in its first 5 seconds (pass --cropped if the frames are "
                       "already face crops)")


def shrink(frame: np.ndarray, box: tuple[int, int, int, int] | None, width: int) -> np.ndarray:
    """The face crop of a frame at ``width`` pixels wide (the motion measure's working size)."""
    if box is not None:
        x, y, w, h = box
        frame = frame[y:y + h, x:x + w]
    h, w = frame.shape[:2]
    if w == width:
        return frame
    return cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def moved(frame: np.ndarray, before: np.ndarray, after: np.ndarray, dis: cv2.DISOpticalFlow) -> float:
    """How far ``frame`` has moved from both references: local motion (median removed) measured on its
    textured pixels, where flow is reliable."""
    mask = textured(frame)
    h, w = mask.shape
    dy, dx = round(h * BORDER), round(w * BORDER)
    mask[:dy], mask[h - dy:], mask[:, :dx], mask[:, w - dx:] = False, False, False, False
    return local_motion(frame, align(before, frame), dis, mask) + local_motion(frame, align(after, frame), dis, mask)


def align(reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """``reference`` shifted onto ``frame`` by their global translation (phase correlation), so a head
    movement of several pixels leaves no flow error behind (DIS errs more on larger displacements,
    and the median removal cannot take that error away)."""
    (dx, dy), _ = cv2.phaseCorrelate(reference.astype(np.float32), frame.astype(np.float32))
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(reference, shift, reference.shape[::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def motion_signal(frames: Iterable[np.ndarray], k: int) -> np.ndarray:
    """F(t) = motion(t-k -> t) + motion(t+k -> t) (references clamped to the video's ends), read in
    one pass holding only 2k+1 frames, so a long video is never held in memory."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    buffer: deque[np.ndarray] = deque(maxlen=2 * k + 1)
    out: list[float] = []
    n = 0
    for frame in frames:
        buffer.append(frame)
        n += 1
        t = n - 1 - k
        if t >= 0:  # buffer holds frames max(0, t-k) .. t+k
            out.append(moved(buffer[len(buffer) - 1 - k], buffer[0], buffer[-1], dis))
    start = n - len(buffer)  # number of the buffer's first frame
    for t in range(max(0, n - k), n):  # the last k frames: the later reference is the last frame
        out.append(moved(buffer[t - start], buffer[max(0, t - k) - start], buffer[-1], dis))
    return np.asarray(out, dtype=np.float64)


def contrast(signal: np.ndarray, k: int) -> np.ndarray:
    """C(t) = F(t) - (F(t-k) + F(t+k)) / 2 after 3-frame smoothing (ends repeated)."""
    if len(signal) >= 3:
        signal = np.convolve(np.pad(signal, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    padded = np.pad(signal, k, mode="edge")
    return signal - 0.5 * (padded[:-2 * k] + padded[2 * k:])


def robust_threshold(values: np.ndarray, z: float) -> tuple[float, float, float]:
    """(threshold, median, robust std): median + z * 1.4826 * MAD, the noise of a mostly neutral video."""
    median = float(np.median(values))
    sigma = float(1.4826 * np.median(np.abs(values - median))) or 1e-9
    return median + z * sigma, median, sigma


def find_peaks(curve: np.ndarray, threshold: float, k: int) -> list[int]:
    """Frames where ``curve`` is above ``threshold`` and the largest within +-k frames (first on ties)."""
    peaks = []
    for t in np.flatnonzero(curve > threshold):
        lo, hi = max(0, t - k), min(len(curve), t + k + 1)
        if curve[t] >= curve[lo:hi].max() and not (peaks and t - peaks[-1] <= k):
            peaks.append(int(t))
    return peaks


def refine(window: list[np.ndarray], centre: int, k: int, level: float) -> tuple[int, int, int]:
    """Onset, apex, offset (indices into ``window``) around the candidate at ``centre``: the apex
    spotter's curve (how far each frame moved from both window ends, by ``moved``) cut at ``level`` of
    its peak above the baseline (the curve's median outside centre +- k, where the face is at rest)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    curve = np.array([moved(frame, window[0], window[-1], dis) for frame in window])
    curve = np.convolve(np.pad(curve, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    n = len(curve)
    lo, hi = max(0, centre - k), min(n, centre + k + 1)
    outside = np.r_[curve[:lo], curve[hi:]]
    base = float(np.median(outside)) if len(outside) else float(curve.min())
    apex = lo + int(np.argmax(curve[lo:hi]))
    cut = base + level * (curve[apex] - base)
    onset = apex
    while onset > 0 and curve[onset - 1] > cut:
        onset -= 1
    offset = apex
    while offset < n - 1 and curve[offset + 1] > cut:
        offset += 1
    if onset == offset:  # a clip needs two frames
        if offset < n - 1:
            offset += 1
        else:
            onset -= 1
    return onset, apex, offset


def spot(source: FrameSource | str | Path, model: object | None = None, settings: SpotSettings | None = None,
         cropped: bool = False, fps: float | None = None, progress: bool = False) -> SpotResult:
    """Find micro-expression intervals in a long video (path, frame folder with ``fps``, or a
    ``FrameSource``) and, given a model (``tscnn.predict.SavedModel`` or a model file path), classify
    each. ``cropped=True``: frames are face crops (no face detection). Warns (``SpotWarning``) below
    ``MIN_FPS`` but still runs."""
    from tscnn.predict import SavedModel, load_saved_model, predict_frames

    settings = settings or SpotSettings()
    source = source if isinstance(source, FrameSource) else open_source(source, fps)
    if model is not None and not isinstance(model, SavedModel):
        model = load_saved_model(model)
    low = check_frame_rate(source.fps, source.name)
    k = settings.half_window(source.fps)
    box = None if cropped else face_crop_box(source)
    quiet = not progress or source.count < PROGRESS_FRAMES
    frames = tqdm(source.open(), total=source.count or None, desc="spot: motion", unit="frame",
                  disable=bars_disabled(not quiet))
    signal = motion_signal((shrink(f, box, settings.width) for f in frames), k)
    n = len(signal)
    if n < 3:
        raise DatasetError(f"{source.name}: {n} frame(s) decoded; spotting needs a video")
    if n / source.fps < LONG_CLIP_SECONDS:
        warnings.warn(f"{source.name}: {n / source.fps:.2g} s long ({n} frames at {source.fps:.4g} fps), too short "
                      f"to spot in: the threshold comes from the video's own motion noise, measured over a video "
                      f"much longer than a micro-expression (at least {LONG_CLIP_SECONDS:g} s); to classify one clip "
                      f"use: tscnn predict MODEL {source.name}", SpotWarning, stacklevel=2)
    score = contrast(signal, k)
    threshold, median, sigma = robust_threshold(score, settings.z)
    peaks = find_peaks(score, threshold, k)
    # Second pass: the frames around each candidate (small ones to refine it, face crops to classify it).
    spans = [(max(0, p - 2 * k), min(n - 1, p + 2 * k)) for p in peaks]
    wanted = sorted({t for lo, hi in spans for t in range(lo, hi + 1)})
    small: dict[int, np.ndarray] = {}
    crops: dict[int, np.ndarray] = {}
    if wanted:
        last, keep = wanted[-1], set(wanted)
        reading = tqdm(source.open(), total=last + 1, desc="spot: intervals", unit="frame",
                       disable=bars_disabled(progress and last + 1 >= PROGRESS_FRAMES))
        for t, frame in enumerate(reading):
            if t in keep:
                x, y, w, h = box if box is not None else (0, 0, frame.shape[1], frame.shape[0])
                crops[t] = frame[y:y + h, x:x + w].copy()
                small[t] = shrink(crops[t], None, settings.width)
            if t >= last:
                break
    intervals = []
    for p, (lo, hi) in zip(peaks, spans, strict=True):
        onset, apex, offset = (lo + i for i in refine([small[t] for t in range(lo, hi + 1)], p - lo, k,
                                                      settings.level))
        # Frames are reported by number (a folder's own file numbers), seconds by position in the video.
        interval = Interval(source.number(onset), source.number(apex), source.number(offset),
                            round(onset / source.fps, 4), round(apex / source.fps, 4), round(offset / source.fps, 4),
                            round((score[p] - median) / sigma, 2))
        if model is not None:
            numbers = [source.number(t) for t in range(onset, offset + 1)]
            result = predict_frames(model, [crops[t] for t in range(onset, offset + 1)], numbers, source.name,
                                    interval.onset, interval.apex, interval.offset, cropped=True)
            interval.predicted, interval.probabilities = result.predicted, result.probabilities
        intervals.append(interval)
    return SpotResult(source.name, source.fps, n, intervals, {**asdict(settings), "half_window_frames": k},
                      round(threshold, 5), low, getattr(model, "card", {}) or {})


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of two inclusive frame intervals (onset, offset)."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


def match_intervals(spotted: Sequence[tuple[int, int]], truth: Sequence[tuple[int, int]],
                    min_iou: float = 0.5) -> int:
    """True positives in one video: pairs with IoU >= ``min_iou``, each ground truth and each spotted
    interval used at most once, the best-overlapping pairs first."""
    pairs = sorted(((iou(s, g), i, j) for i, s in enumerate(spotted) for j, g in enumerate(truth)), reverse=True)
    used_s, used_g, tp = set(), set(), 0
    for value, i, j in pairs:
        if value >= min_iou and i not in used_s and j not in used_g:
            used_s.add(i)
            used_g.add(j)
            tp += 1
    return tp


def spotting_metrics(spotted: Sequence[Sequence[tuple[int, int]]], truth: Sequence[Sequence[tuple[int, int]]],
                     min_iou: float = 0.5) -> dict:
    """The MEGC spotting metric over videos (one list of (onset, offset) per video in each argument):
    TP, spotted and ground-truth counts pooled over videos, then precision, recall and F1."""
    if len(spotted) != len(truth):
        raise ValueError(f"{len(spotted)} spotted lists for {len(truth)} videos")
    tp = sum(match_intervals(s, g, min_iou) for s, g in zip(spotted, truth, strict=True))
    n_spotted, n_truth = sum(map(len, spotted)), sum(map(len, truth))
    precision = tp / n_spotted if n_spotted else 0.0
    recall = tp / n_truth if n_truth else 0.0
    f1 = 2 * tp / (n_spotted + n_truth) if n_spotted + n_truth else 0.0
    return {"videos": len(truth), "ground_truth": n_truth, "spotted": n_spotted, "tp": tp,
            "precision": precision, "recall": recall, "f1": f1}


def print_warnings_plainly() -> None:
    """Show ``SpotWarning`` as one ``warning: ...`` line on stderr, the command line's style, instead of
    Python's ``file:line: SpotWarning: ...`` form (other warnings are left as they are)."""
    plain_warnings(None)


def format_table(result: SpotResult) -> str:
    """The spotted intervals as a text table (frames, seconds, score, class and its probability)."""
    lines = [f"{result.source}: {result.frames} frames at {result.fps:.4g} fps ({result.seconds:.1f} s); "
             f"{len(result.intervals)} interval(s) spotted (window {result.settings['half_window_frames'] * 2 + 1} "
             f"frames, threshold z={result.settings['z']})"]
    if not result.intervals:
        return lines[0]
    header = f"{'#':>3} {'onset':>7} {'apex':>7} {'offset':>7} {'start s':>8} {'end s':>8} {'score':>6}"
    classified = result.intervals[0].probabilities is not None
    if classified:
        header += f"  {'class':<12} {'p':>5}"
    lines.append(header)
    for i, iv in enumerate(result.intervals, 1):
        row = (f"{i:>3} {iv.onset:>7} {iv.apex:>7} {iv.offset:>7} {iv.onset_s:>8.3f} {iv.offset_s:>8.3f} "
               f"{iv.score:>6.1f}")
        if classified and iv.probabilities:
            row += f"  {iv.predicted:<12} {iv.probabilities[iv.predicted]:>5.3f}"
        lines.append(row)
    return "\n".join(lines)
