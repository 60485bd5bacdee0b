"""Pre-trained weights: the one place that saves and loads them.

``tscnn pretrain`` (``tscnn.pretrain``) saves TSCNN's static-stream input convolution and its
trunk; ``tscnn.train.build_model`` loads them into a new network when ``Config.pretrained`` names
the file. Both import this module, so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tscnn.models.tscnn import TSCNN
from tscnn.results_folder import atomic_path

PRETRAINED_KEYS = ("input_conv_ss", "trunk")


def save_pretrained(model: TSCNN, path: str | Path, source: str, val_accuracy: float) -> Path:
    """Save the static-stream input convolution and the shared trunk of ``model`` (on the CPU) with
    where they were trained (``source``) and their validation accuracy."""
    path = Path(path)
    model = model.to("cpu")
    with atomic_path(path) as tmp:
        torch.save({"input_conv_ss": model.input_convs["ss"].state_dict(), "trunk": model.trunk.state_dict(),
                    "source": source, "val_accuracy": val_accuracy}, tmp)
    return path


def load_pretrained(model: TSCNN, path: str | Path) -> TSCNN:
    """Copy pre-trained static-stream input convolution and trunk weights into ``model``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pre-trained weights {path} do not exist (make them with `tscnn pretrain`)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not set(PRETRAINED_KEYS) <= set(state):
        raise ValueError(f"{path}: not a `tscnn pretrain` weights file (keys {sorted(state)})")
    if "ss" in model.streams:
        model.input_convs["ss"].load_state_dict(state["input_conv_ss"])
    if model.share_trunk:
        model.trunk.load_state_dict(state["trunk"])
    elif "ss" in model.streams:
        model.trunks["ss"].load_state_dict(state["trunk"])
    else:
        raise ValueError(f"{path}: the weights are for the static stream and a shared trunk; this network has "
                         "neither")
    return model
