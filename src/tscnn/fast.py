"""The fast clip-to-label path: the same model file, a cheaper route from frames to class probabilities.

``tscnn predict`` (``tscnn.predict.predict_frames``) is the reference path: every frame turned grey,
the face found on the full-resolution onset frame, TV-L1 flow (as in training), the network in fp32.
On one core that costs about a second per clip, almost all of it TV-L1. :class:`FastPredictor`
keeps the preparation's steps and changes only what costs time:

* only the onset, apex and offset frames are touched (turned grey, cropped, resized to ``work_size``);
  the rest of the clip is read only when the apex has to be spotted;
* the face is found once per clip on the onset frame. With the model's ``face_align`` resolving to
  ``landmarks`` on this machine, the landmark alignment of training is used as it is; otherwise the
  Haar cascade runs on the onset frame shrunk to ``detect_side`` (80) pixels on its shorter side, so a
  face filling at least 30 % of that side is found at about a tenth of the cost (in the
  micro-expression databases the face fills about half of the frame's height); the box is scaled
  back, and only when no face is found there is the full-resolution frame searched. A box can also
  be passed in (``box=``) or the previous clip's cut kept (``reuse_box=True``, a fixed camera);
* the flow is DIS or Farneback instead of TV-L1, at the work size: by default the model's own flow when it
  was trained with one of them (``--flow dis``), else DIS with a warning (``fast_flow_for``: a network fed
  another flow than in training loses accuracy);
* only the streams the network reads are built (no UVS strain for TSCNN, unless fused with the floor);
* the network runs channels-last, in bf16 weights on a CPU with native bf16 (AMX / AVX-512 BF16) and
  for the models that allow it (TSCNN), otherwise in fp32; under ``torch.inference_mode``.

For a model trained with DIS the answer is the reference path's but for a box a few pixels off and bf16
rounding; for a model trained on TV-L1 it is often another answer (another flow), which
``benchmarks/fast_flow_accuracy.py`` measures. The reference path is unchanged. ``benchmarks/latency.py``
times each stage.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

from tscnn.datasets.base import DatasetError
from tscnn.models import get_model
from tscnn.predict import Prediction, SavedModel, load_saved_model, read_clip
from tscnn.preprocessing.align import resolve_face_align
from tscnn.preprocessing.apex import spot_apex_frames
from tscnn.preprocessing.face import NoFaceError, crop, detect_face
from tscnn.preprocessing.flow import compute_flow
from tscnn.preprocessing.prepare import PrepSettings
from tscnn.preprocessing.streams import clip_views
from tscnn.train import bf16_supported

FAST_FLOWS = ("dis", "farneback")
DETECT_SIDE = 80
"""Shorter side (pixels) of the onset frame for the fast face detection; the Haar window is 24 pixels, so
a face filling at least 30 % of that side is found there (a smaller one by the full-resolution retry)."""

Box = tuple[int, int, int, int]


def face_align_method(settings: PrepSettings) -> str:
    """What the model's ``face_align`` setting means on this machine (``landmarks`` or ``haar``)."""
    return resolve_face_align(settings.face_align, notice=False)


def fast_face_box(grey: np.ndarray, side: int = DETECT_SIDE) -> Box:
    """(x, y, w, h) of the largest face, found on ``grey`` shrunk to ``side`` pixels on its shorter side and
    scaled back (``detect_face``'s margin included); when none is found there, ``detect_face`` on the
    full frame (NoFaceError when there is none either)."""
    h, w = grey.shape[:2]
    scale = side / min(h, w)
    if scale >= 1.0:
        return detect_face(grey)
    small = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    try:
        x, y, bw, bh = detect_face(small)
    except NoFaceError:
        return detect_face(grey)
    x0, y0 = max(0, round(x / scale)), max(0, round(y / scale))
    x1, y1 = min(w, round((x + bw) / scale)), min(h, round((y + bh) / scale))
    return x0, y0, x1 - x0, y1 - y0


def grey_frame(frame: np.ndarray, i: int, source: str) -> np.ndarray:
    """A frame as a grey uint8 image (a colour frame is taken as BGR)."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim != 2 or frame.dtype != np.uint8:
        raise ValueError(f"{source}: frame {i} is not a grey uint8 image (shape {frame.shape}, dtype {frame.dtype})")
    return frame


def fast_flow_for(saved: SavedModel) -> str:
    """The flow the fast path computes for a model: the one it was trained with when that is a fast flow.

    A model trained on TV-L1 gets DIS, with a warning: its network then sees a flow it never saw in
    training. Measured on the synthetic database (``benchmarks/fast_flow_accuracy.py``, one model each):
    such a model's fast answers equalled its TV-L1 answers for 51 % of unseen clips and its UF1 fell from
    0.75 to 0.52; a model trained with DIS gives the same answers on both paths, but it trained on a worse
    flow (UF1 0.45 on those clips; in LOSO 0.55 against TV-L1's 0.62)."""
    if saved.config.flow in FAST_FLOWS:
        return saved.config.flow
    warnings.warn(f"this model was trained on {saved.config.flow} flow; the fast path computes DIS instead, a flow "
                  "its network never saw: expect other answers (on the synthetic database about half of them "
                  "changed and UF1 fell from 0.75 to 0.52; benchmarks/fast_flow_accuracy.py)", UserWarning,
                  stacklevel=3)
    return "dis"


class FastPredictor:
    """A loaded model set up for low-latency prediction on clips held in memory (see the module docstring).

    Each stage is a method, so ``benchmarks/latency.py`` can time it; :meth:`predict` runs them in order."""

    def __init__(self, saved: SavedModel, flow: str | None = None, bf16: bool | None = None,
                 detect_side: int = DETECT_SIDE) -> None:
        flow = fast_flow_for(saved) if flow is None else flow
        if flow not in FAST_FLOWS:
            raise ValueError(f"fast prediction uses one of the fast flows {FAST_FLOWS}, not {flow!r}")
        self.saved = saved
        self.settings = replace(PrepSettings.from_config(saved.config), flow=flow, augment=False)
        self.detect_side = detect_side
        allowed = get_model(saved.config.model).bf16
        self.bf16 = bool(allowed and bf16_supported()) if bf16 is None else bool(bf16)
        model = copy.deepcopy(saved.model).eval().to(memory_format=torch.channels_last)
        self.model = model.to(torch.bfloat16) if self.bf16 else model
        self.dtype = torch.bfloat16 if self.bf16 else torch.float32
        self.streams: tuple[str, ...] = tuple(saved.model.streams)
        self.box: Box | None = None
        self.landmarks = face_align_method(self.settings) == "landmarks"
        self.cut: Callable[[np.ndarray], np.ndarray] | None = None  # the last clip's face cut (reuse_box)

    def face_box(self, onset: np.ndarray, source: str = "frames") -> Box:
        """The face box of the onset frame (fast detection), kept as ``self.box``."""
        try:
            self.box = fast_face_box(onset, self.detect_side)
        except NoFaceError:
            raise DatasetError(f"{source}: no face found on the onset frame") from None
        return self.box

    def face_cut(self, onset: np.ndarray, source: str = "frames") -> Callable[[np.ndarray], np.ndarray]:
        """How the face is cut from each frame of the clip, found on its onset frame as training did: the
        landmark alignment when the model's ``face_align`` resolves to ``landmarks`` here (and a face is
        aligned), else the fast Haar box. Kept as ``self.cut``."""
        alignment = None
        if self.landmarks:
            from tscnn.preprocessing.align import find_alignment

            alignment = find_alignment(onset)
        if alignment is not None:
            self.cut = alignment.apply
        else:
            self.cut = partial(crop, box=self.face_box(onset, source))
        return self.cut

    def key_crops(self, frames: Sequence[np.ndarray], cut: Box | Callable[[np.ndarray], np.ndarray] | None,
                  ) -> list[np.ndarray]:
        """Onset, apex and offset frames (grey) cut by ``cut`` (a box, a function, or None for face crops) and
        resized to the work size."""
        size = (self.settings.work_size, self.settings.work_size)
        if isinstance(cut, tuple):
            cut = partial(crop, box=cut)
        return [cv2.resize(f if cut is None else cut(f), size, interpolation=cv2.INTER_AREA) for f in frames]

    def flows(self, onset: np.ndarray, key: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flow onset->apex and apex->offset at the work size, by the fast method."""
        return compute_flow(onset, key, self.settings.flow), compute_flow(key, offset, self.settings.flow)

    def views(self, key: np.ndarray, flow1: np.ndarray, flow2: np.ndarray) -> dict[str, np.ndarray]:
        """The streams the network reads (and the floor's, for a fused recipe), float32: one clip, and its mirror
        when the model's recipe averages the two."""
        return clip_views(key, flow1, flow2, self.settings.size, self.settings.blocks, self.saved.view_streams,
                          self.saved.config.tta_flip)

    def inputs(self, key: np.ndarray, flow1: np.ndarray, flow2: np.ndarray,
               views: dict[str, np.ndarray] | None = None) -> dict[str, torch.Tensor]:
        """The network's input batch (``views``, made here unless given): channels-last, in its dtype."""
        views = self.views(key, flow1, flow2) if views is None else views
        return {s: torch.from_numpy(views[s]).to(self.dtype).contiguous(memory_format=torch.channels_last)
                for s in self.streams}

    def forward(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """Class probabilities (float32) of a one-clip batch: the mean over its views."""
        with torch.inference_mode():
            return torch.softmax(self.model(batch).float(), dim=1).mean(0).numpy()

    def predict(self, frames: Sequence[np.ndarray], onset: int | None = None, apex: int | None = None,
                offset: int | None = None, box: Box | None = None, cropped: bool = False, reuse_box: bool = False,
                source: str = "frames") -> Prediction:
        """Class probabilities of a clip held in memory (frames numbered 0..n-1, grey or BGR uint8).

        Onset / offset default to the first / last frame; without ``apex`` the spotter of ``tscnn predict``
        chooses it (it reads every frame between them, the costly case). ``box`` gives the face box;
        ``reuse_box`` keeps the previous clip's face cut; ``cropped`` says the frames are face crops."""
        n = len(frames)
        first = 0 if onset is None else onset
        last = n - 1 if offset is None else offset
        if n < 2 or not 0 <= first < last < n:
            raise DatasetError(f"{source}: onset {onset} / offset {offset} are not frames of this clip "
                               f"(frames 0..{n - 1}) or are out of order")
        onset_grey = grey_frame(frames[first], first, source)
        cut: Callable[[np.ndarray], np.ndarray] | None = None
        if box is not None:
            cut = partial(crop, box=box)
        elif not cropped:
            cut = self.cut if reuse_box and self.cut is not None else self.face_cut(onset_grey, source)
        if apex is None:
            span = [grey_frame(frames[i], i, source) for i in range(first, last + 1)]
            span = [cut(f) for f in span] if cut is not None else span
            key, rule = first + spot_apex_frames(span), "spotter"
        elif first <= apex <= last:
            key, rule = apex, "given"
        else:
            raise DatasetError(f"{source}: apex {apex} is not a frame between onset and offset")
        greys = [onset_grey, grey_frame(frames[key], key, source), grey_frame(frames[last], last, source)]
        if not greys[0].shape == greys[1].shape == greys[2].shape:
            raise DatasetError(f"{source}: frames differ in size {[g.shape for g in greys]}")
        on, ap, off = self.key_crops(greys, cut)
        flow1, flow2 = self.flows(on, ap, off)
        views = self.views(ap, flow1, flow2)
        proba = self.saved.fuse(self.forward(self.inputs(ap, flow1, flow2, views)), views)
        classes = self.saved.classes
        return Prediction(source, first, key, last, rule, classes[int(proba.argmax())],
                          {c: round(float(p), 4) for c, p in zip(classes, proba, strict=True)}, self.saved.card)


def predict_clip_fast(model_path: str | Path, source: str | Path, onset: int | None = None, apex: int | None = None,
                      offset: int | None = None, cropped: bool = False, flow: str | None = None) -> Prediction:
    """``tscnn.predict.predict_clip`` by the fast path (a video's frames are indices 0..n-1; a frame
    folder's numbers are mapped to positions and back)."""
    images, numbers = read_clip(source)
    index = {number: i for i, number in enumerate(numbers)}

    def position(number: int | None, what: str) -> int | None:
        if number is None:
            return None
        if number not in index:
            raise DatasetError(f"{source}: {what} {number} is not a frame of this clip ({numbers[0]}..{numbers[-1]})")
        return index[number]

    predictor = FastPredictor(load_saved_model(model_path), flow=flow)
    result = predictor.predict(images, position(onset, "onset"), position(apex, "apex"), position(offset, "offset"),
                               cropped=cropped, source=str(source))
    return replace(result, onset=numbers[result.onset], apex=numbers[result.apex], offset=numbers[result.offset])
