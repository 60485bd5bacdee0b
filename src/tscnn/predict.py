"""Prediction on a new clip: a video file or a folder of frames -> class probabilities.

The clip is read in grey; the face is found on its onset frame and the same cut is applied to every
frame, as in training (``face_align``: aligned on dlib's eye landmarks when the ``align`` extra is
installed, else OpenCV's Haar cascade, whose model ships inside the opencv wheel; both work offline); the
apex is the spotter's unless given; the streams are built exactly as for training (no
augmentation) and fed to a model saved by ``tscnn train``. A model file holds only tensors and plain data
(weights, settings, class names, a model card saying what it was trained on) and is read with
``weights_only=True``, so loading one runs no code from it.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch

from tscnn.checkpoints import first_sentence, load_weights
from tscnn.config import Config
from tscnn.datasets.base import DatasetError, list_frames
from tscnn.errors import SpotWarning
from tscnn.models.linear import FLOOR_STREAMS, floor_features, floor_tensors_proba, with_floor_streams
from tscnn.models.tscnn import TSCNN, stream_channels
from tscnn.preprocessing.apex import spot_apex_frames
from tscnn.preprocessing.frames import decode_image, video_fps
from tscnn.preprocessing.keyframes import refuse_key_frames
from tscnn.preprocessing.prepare import PrepSettings, face_frames, frames_to_inputs
from tscnn.preprocessing.streams import clip_views
from tscnn.results_folder import atomic_path
from tscnn.train import build_model

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


MODEL_KEYS = ("state_dict", "config", "classes", "channels")
MODEL_FILE = "tscnn model file"

MAX_ME_SECONDS = 0.5  # a micro-expression lasts under half a second (Yan et al. 2013; MEGC's definition)
LONG_CLIP_SECONDS = 2.0  # predict warns above this: four times the longest micro-expression


def plain(value: object) -> object:
    """``value`` as JSON-like plain data (dicts, lists, strings, numbers; numpy scalars and tuples converted),
    which is all ``torch.load(weights_only=True)`` may read back besides tensors."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))


def make_model_card(config: Config, classes: tuple[str, ...], meta: dict) -> dict:
    """What a model file should say about itself: the data it learnt from, its classes and recipe, when and
    by which code, so a prediction can be judged without the training folder."""
    from tscnn.run_facts import code_version

    subjects = sorted({str(s) for s in [*meta.get("train_subjects", []), *meta.get("val_subjects", [])]})
    return plain({
        "model": config.model, "database": meta.get("database", config.dataset), "classes": list(classes),
        "subjects": len(subjects), "subject_ids": subjects, "clips": meta.get("clips"), "preset": config.preset,
        "streams": list(config.streams), "chosen_epoch": meta.get("chosen_epoch"),
        "fused_with_linear_floor": config.fuse_linear,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_version": meta.get("code_version") or code_version(),
    })


def format_model_card(card: dict) -> str:
    """The model card as a few lines for the terminal (what ``tscnn predict`` prints above its answer)."""
    if not card:
        return "model card: none (a model file from before model cards)"
    ids = card.get("subject_ids") or []
    shown = ", ".join(ids[:12]) + (f", ... ({len(ids) - 12} more)" if len(ids) > 12 else "")
    lines = [f"model: {card.get('model', '?')} (preset {card.get('preset', '?')}, streams "
             f"{'+'.join(card.get('streams') or []) or '?'}"
             f"{'; fused with the linear floor' if card.get('fused_with_linear_floor') else ''}), trained "
             f"{card.get('date', '?')} by code "
             f"{card.get('code_version', '?')}",
             f"trained on: {card.get('database', '?')}, {card.get('clips', '?')} clips of {card.get('subjects', '?')} "
             f"subjects" + (f" ({shown})" if shown else ""),
             f"classes: {', '.join(card.get('classes') or [])}"]
    return "\n".join(lines)


def save_model(path: str | Path, model: TSCNN, config: Config, classes: tuple[str, ...], meta: dict,
               floor: dict[str, torch.Tensor] | None = None) -> Path:
    """A self-contained model file: weights, the settings that built its inputs, class names, a model card, and
    for a ``fuse_linear`` recipe the fitted linear floor (``tscnn.models.linear.floor_tensors``); only tensors
    and plain data, so it loads with ``weights_only=True`` (no code runs on loading)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    convs = getattr(model, "input_convs", None)  # TSCNN's; a peer network reads its streams' standard channels
    channels = ({s: conv[0].in_channels for s, conv in convs.items()} if convs is not None
                else {s: stream_channels(s, config.blocks) for s in model.streams})
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.to("cpu").state_dict(), "config": plain(config.to_dict()),
                    "classes": list(classes), "channels": plain(channels), "meta": plain(meta),
                    "card": make_model_card(config, classes, meta), **({"floor": floor} if floor is not None else {})},
                   tmp)
    return path


def not_a_model(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path}: not a {MODEL_FILE} ({reason})")


def read_saved(path: Path) -> dict:
    """The stored dict of a model file (``tscnn.checkpoints.load_weights``, the one loader of weights), or a
    one-line error saying why the file is not one."""
    return load_weights(path, MODEL_FILE, MODEL_KEYS, missing_hint="make one with `tscnn train`")


@dataclass
class SavedModel:
    """A loaded model file: the network, the settings that built its inputs, class names and model card."""

    model: TSCNN
    config: Config
    classes: tuple[str, ...]
    card: dict
    floor: dict[str, torch.Tensor] | None = None  # the fitted linear floor of a fuse_linear recipe

    def fuse(self, proba: np.ndarray, views: dict[str, np.ndarray]) -> np.ndarray:
        """The network's class probabilities of one clip, averaged with the linear floor's when the recipe fuses
        them (``fuse_linear``); the floor reads the clip's own u, v, strain maps (view 0), as in training."""
        if self.floor is None:
            return proba
        features = floor_features({s: views[s][:1] for s in FLOOR_STREAMS}, self.config.centre_floor)
        return (proba + floor_tensors_proba(self.floor, features, len(self.classes))[0]) / 2

    @property
    def view_streams(self) -> tuple[str, ...]:
        """The streams a clip's views need: the network's, and the floor's when the recipe fuses them."""
        return with_floor_streams(tuple(self.model.streams), self.floor is not None)

    def predict(self, frames: list[np.ndarray], onset: int | None = None, apex: int | None = None,
                offset: int | None = None, cropped: bool = False, source: str = "frames") -> Prediction:
        """Class probabilities for a clip held in memory: grey frames (uint8 arrays; colour frames are
        taken as BGR and turned grey), numbered 0..n-1 for ``onset``/``apex``/``offset``."""
        images = []
        for i, frame in enumerate(frames):
            frame = np.asarray(frame)
            if frame.ndim == 3 and frame.shape[2] == 3:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if frame.ndim != 2 or frame.dtype != np.uint8:
                raise ValueError(f"{source}: frame {i} is not a grey uint8 image (shape {frame.shape}, "
                                 f"dtype {frame.dtype})")
            images.append(frame)
        if len(images) < 2:
            raise ValueError(f"{source}: a clip needs at least two frames, got {len(images)}")
        return predict_frames(self, images, list(range(len(images))), source, onset, apex, offset, cropped)


def check_floor_inputs(path: Path, floor: dict, config: Config) -> None:
    """A fused model's floor must read u, v and strain at the model's size; a file saved before the floor was
    defined so for every stream set holds a floor of the network's own maps, which would fail mid-prediction."""
    expected = sum(stream_channels(s, config.blocks) for s in FLOOR_STREAMS) * config.size * config.size
    mean = floor.get("mean")
    got = int(mean.numel()) if isinstance(mean, torch.Tensor) else None
    if got != expected:
        raise not_a_model(path, f"its linear floor reads {got} values a clip, not the {expected} of u, v and strain "
                                f"at {config.size} px: a fused model saved before the floor read u, v, strain "
                                f"whatever the network reads; train it again with `tscnn train`")


def load_saved_model(path: str | Path) -> SavedModel:
    """A ``tscnn train`` file, read without running any code from it; a file that is not one gives
    ``ValueError("<path>: not a tscnn model file (<reason>)")``."""
    path = Path(path)
    saved = read_saved(path)
    try:
        config = Config.from_dict(saved["config"])
        classes = tuple(str(c) for c in saved["classes"])
        # Every weight comes from the file, so pre-trained weights named in the config are not read again.
        bare = replace(config, pretrained="", pretrained_dense=False)
        model = build_model(bare, len(classes), dict(saved["channels"]))
        model.load_state_dict(saved["state_dict"])
    except Exception as err:  # settings or weights that do not make this network
        raise not_a_model(path, f"its settings or weights do not build a model: {first_sentence(err)}") from None
    floor = saved.get("floor")
    if config.fuse_linear and not isinstance(floor, dict):
        raise not_a_model(path, "its recipe fuses the network with the linear floor (fuse_linear), but it holds "
                                "no floor")
    if config.fuse_linear:
        check_floor_inputs(path, floor, config)
    card = saved.get("card") or {}
    if not card:  # a file from before model cards: what its meta says
        card = make_model_card(config, classes, saved.get("meta") or {})
        card["date"] = "unknown"
    return SavedModel(model.eval(), config, classes, dict(card), floor if config.fuse_linear else None)


def load_model(path: str | Path) -> tuple[TSCNN, Config, tuple[str, ...]]:
    """The model, its config and class names from a ``tscnn train`` file."""
    saved = load_saved_model(path)
    return saved.model, saved.config, saved.classes


def read_clip(source: str | Path) -> tuple[list[np.ndarray], list[int]]:
    """Grey frames of a video file or a frame folder, with their frame numbers (folder) or indices (video)."""
    source = Path(source)
    if source.is_dir():
        frames = list_frames(source)
        if not frames:
            raise DatasetError(f"{source}: no frames (images with a frame number in their name) in this folder")
        numbers = sorted(frames)
        images = []
        for n in numbers:
            image, why = decode_image(frames[n], cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise DatasetError(f"{source}: cannot read image {frames[n]} ({why})")
            if images and image.shape != images[0].shape:
                raise DatasetError(f"{source}: frame {frames[n]} is {image.shape[1]}x{image.shape[0]} px, the "
                                   f"first frame {frames[numbers[0]]} {images[0].shape[1]}x{images[0].shape[0]}: "
                                   "a clip's frames must have one size")
            images.append(image)
        return images, numbers
    if source.suffix.lower() not in VIDEO_SUFFIXES or not source.is_file():
        raise DatasetError(f"{source}: not a frame folder or a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
    capture = cv2.VideoCapture(str(source))
    images = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        images.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    capture.release()
    if not images:
        raise DatasetError(f"{source}: no frames could be decoded from this video")
    return images, list(range(len(images)))


@dataclass
class Prediction:
    """What ``predict_clip`` found: the phase frames used, how the apex was chosen, class probabilities."""

    source: str
    onset: int
    apex: int
    offset: int
    apex_rule: str
    predicted: str
    probabilities: dict[str, float]
    model_card: dict = field(default_factory=dict)  # what the model file says of its training (format_model_card)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def predict_clip(model_path: str | Path, source: str | Path, onset: int | None = None, apex: int | None = None,
                 offset: int | None = None, cropped: bool = False) -> Prediction:
    """Class probabilities for one clip. Onset/offset default to the first/last frame; the apex to
    the spotter's choice between them. ``cropped=True`` skips face detection (frames are face crops)."""
    saved = load_saved_model(model_path)
    images, numbers = read_clip(source)
    if onset is None and offset is None:  # a long video is not one micro-expression: say so, point at spot
        warn_if_long_video(source, len(images))
    return predict_frames(saved, images, numbers, str(source), onset, apex, offset, cropped)


def predict_frames(saved: SavedModel, images: list[np.ndarray], numbers: list[int], source: str,
                   onset: int | None = None, apex: int | None = None, offset: int | None = None,
                   cropped: bool = False) -> Prediction:
    """What ``predict_clip`` does once the frames are read (shared with frames held in memory)."""
    if len(images) < 2:
        raise DatasetError(f"{source}: {len(images)} frame(s); a clip needs at least two (its onset and offset)")
    model, config, classes = saved.model, saved.config, saved.classes
    index = {n: i for i, n in enumerate(numbers)}
    first = index.get(numbers[0] if onset is None else onset)
    last = index.get(numbers[-1] if offset is None else offset)
    if first is None or last is None or first >= last:
        raise DatasetError(f"{source}: onset {onset} / offset {offset} are not frames of this clip "
                           f"(frames {numbers[0]}..{numbers[-1]}) or are out of order")
    span = images[first:last + 1]
    settings = PrepSettings.from_config(config)  # the face is cut (aligned) as in training
    span = face_frames(span, cropped, settings.face_align,
                       f"{source}: no face found on the onset frame {numbers[first]}")
    if apex is None:
        refuse_key_frames(numbers[first:last + 1], numbers[first], numbers[last], source,
                          "the apex spotter (or give the apex frame: --apex)")
        key, rule = first + spot_apex_frames(span), "spotter"
    elif apex in index and first <= index[apex] <= last:
        key, rule = index[apex], "given"
    else:
        raise DatasetError(f"{source}: apex {apex} is not a frame between onset and offset")
    # The span is cut already: face_align "haar" keeps it as it is (a face crop) instead of aligning it again.
    grey_key, flow1, flow2 = frames_to_inputs(span[0], span[key - first], span[-1], True,
                                              replace(settings, face_align="haar"), source, source)
    views = clip_views(grey_key, flow1, flow2, settings.size, settings.blocks, saved.view_streams, config.tta_flip)
    batch = {s: torch.from_numpy(views[s].astype(np.float32)) for s in model.streams}
    with torch.no_grad():  # the mean over the views: the clip, and its mirror when the recipe averages them
        proba = saved.fuse(torch.softmax(model(batch), dim=1).mean(0).numpy(), views)
    return Prediction(source, numbers[first], numbers[key], numbers[last], rule, classes[int(proba.argmax())],
                      {c: round(float(p), 4) for c, p in zip(classes, proba, strict=True)}, saved.card)


def warn_if_long_video(source: str | Path, frames: int) -> None:
    """For ``predict``: warn when a video is much longer than a micro-expression, as classifying it as
    one clip mixes whatever happens in it; ``tscnn spot`` finds and classifies the intervals."""
    path = Path(source)
    if path.is_dir():
        return  # a frame folder has no frame rate to judge by
    fps, _ = video_fps(path)
    if fps and frames / fps > LONG_CLIP_SECONDS:
        warnings.warn(f"{path}: {frames / fps:.1f} s long ({frames} frames at {fps:.4g} fps), much longer than a "
                      f"micro-expression (under {MAX_ME_SECONDS} s); it is classified as ONE clip from its first "
                      f"to its last frame. To find and classify the micro-expressions in it use: tscnn spot "
                      f"{path} --model MODEL (or give --onset/--offset)", SpotWarning, stacklevel=3)
