"""Prediction on a new clip: a video file or a folder of frames -> class probabilities.

The clip is read in grey; the face is found on its onset frame by OpenCV's Haar cascade (whose
model ships inside the opencv wheel, so it works offline) and the same box crops every frame; the
apex is the spotter's unless given; the streams are built exactly as for training (no
augmentation) and fed to a model saved by ``tscnn train``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from tscnn.config import Config
from tscnn.datasets.base import DatasetError, list_frames
from tscnn.models.tscnn import TSCNN
from tscnn.preprocessing.apex import spot_apex_frames
from tscnn.preprocessing.face import crop
from tscnn.preprocessing.prepare import face_box, frames_to_inputs
from tscnn.preprocessing.streams import make_streams
from tscnn.train import build_model

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def save_model(path: str | Path, model: TSCNN, config: Config, classes: tuple[str, ...], meta: dict) -> Path:
    """A self-contained model file: weights, the settings that built its inputs, class names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {s: conv[0].in_channels for s, conv in model.input_convs.items()}
    torch.save({"state_dict": model.to("cpu").state_dict(), "config": config.to_dict(), "classes": list(classes),
                "channels": channels, "meta": meta}, path)
    return path


def load_model(path: str | Path) -> tuple[TSCNN, Config, tuple[str, ...]]:
    """The model, its config and class names from a ``tscnn train`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist (make one with `tscnn train`)")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    config = Config.from_dict(saved["config"])
    # Every weight comes from the file, so pre-trained weights named in the config are not read again.
    model = build_model(replace(config, pretrained=""), len(saved["classes"]), saved["channels"])
    model.load_state_dict(saved["state_dict"])
    return model.eval(), config, tuple(saved["classes"])


def read_clip(source: str | Path) -> tuple[list[np.ndarray], list[int]]:
    """Grey frames of a video file or a frame folder, with their frame numbers (folder) or indices (video)."""
    source = Path(source)
    if source.is_dir():
        frames = list_frames(source)
        if not frames:
            raise DatasetError(f"{source}: no frames (images with a frame number in their name) in this folder")
        numbers = sorted(frames)
        images = [cv2.imread(str(frames[n]), cv2.IMREAD_GRAYSCALE) for n in numbers]
        bad = [str(frames[n]) for n, im in zip(numbers, images, strict=True) if im is None]
        if bad:
            raise DatasetError(f"{source}: cannot read image {bad[0]} (missing, empty or corrupt)")
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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def predict_clip(model_path: str | Path, source: str | Path, onset: int | None = None, apex: int | None = None,
                 offset: int | None = None, cropped: bool = False) -> Prediction:
    """Class probabilities for one clip. Onset/offset default to the first/last frame; the apex to
    the spotter's choice between them. ``cropped=True`` skips face detection (frames are face crops)."""
    model, config, classes = load_model(model_path)
    images, numbers = read_clip(source)
    index = {n: i for i, n in enumerate(numbers)}
    first = index.get(numbers[0] if onset is None else onset)
    last = index.get(numbers[-1] if offset is None else offset)
    if first is None or last is None or first >= last:
        raise DatasetError(f"{source}: onset {onset} / offset {offset} are not frames of this clip "
                           f"(frames {numbers[0]}..{numbers[-1]}) or are out of order")
    span = images[first:last + 1]
    if not cropped:
        box = face_box(span[0], f"{source}: no face found on the onset frame {numbers[first]}")
        span = [crop(f, box) for f in span]
    if apex is None:
        key, rule = first + spot_apex_frames(span), "spotter"
    elif apex in index and first <= index[apex] <= last:
        key, rule = index[apex], "given"
    else:
        raise DatasetError(f"{source}: apex {apex} is not a frame between onset and offset")
    settings = config.prep()
    grey_key, flow1, flow2 = frames_to_inputs(span[0], span[key - first], span[-1], True, settings, str(source),
                                              str(source))
    streams = make_streams(grey_key, flow1, flow2, settings.size, settings.blocks)
    batch = {s: torch.from_numpy(streams[s][None].astype(np.float32)) for s in model.streams}
    with torch.no_grad():
        proba = torch.softmax(model(batch), dim=1)[0].numpy()
    return Prediction(str(source), numbers[first], numbers[key], numbers[last], rule, classes[int(proba.argmax())],
                      {c: round(float(p), 4) for c, p in zip(classes, proba, strict=True)})
