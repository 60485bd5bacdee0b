"""Weights files: the one loader every path reads them with, and pre-trained weights.

``load_weights`` reads any file of tensors and plain data this project writes (a ``tscnn train`` model
file, ``tscnn pretrain`` weights, a training checkpoint) with ``weights_only=True``, so loading one runs
no code from it, and says in one line why a file is not one. ``tscnn pretrain`` (``tscnn.pretrain``) saves
TSCNN's static-stream input convolution and its trunk; ``tscnn.train.build_model`` loads them into a new
network when ``Config.pretrained`` names the file. Both import this module, so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tscnn.models.tscnn import TSCNN
from tscnn.results_folder import atomic_path

PRETRAINED_KEYS = ("input_conv_ss", "trunk")


def first_sentence(err: Exception) -> str:
    """The start of an error message, on one line (torch's run over many lines)."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return text.split(". ")[0].rstrip(".")[:160]


def load_weights(path: str | Path, what: str, keys: tuple[str, ...] = (), map_location: str | torch.device = "cpu",
                 missing_hint: str = "") -> dict:
    """The dict stored in a weights file, read without running any code from it (``weights_only=True``).

    A file that is absent is a FileNotFoundError (``missing_hint`` says how to make one); a file that is not
    ``what`` (not a torch file, damaged, holding objects other than tensors and plain data, not a dict, or
    missing one of ``keys``) is ``ValueError("<path>: not a <what> (<reason>)")``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist" + (f" ({missing_hint})" if missing_hint else ""))
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError, ...)
        with path.open("rb") as handle:
            head = handle.read(4)
        zipped = head == b"PK\x03\x04"  # torch.save's format; b"\x80" starts the legacy (pickle) one
        if not zipped and not head.startswith(b"\x80"):
            reason = "not a torch file"
        elif "weights only load failed" in str(err).lower():
            reason = "it holds objects other than tensors and plain data, refused as loading them could run code"
        elif zipped:
            reason = f"damaged or truncated torch file: {first_sentence(err)}"
        else:
            reason = "not a torch file"
        raise ValueError(f"{path}: not a {what} ({reason})") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: not a {what} (it holds a {type(saved).__name__}, not a dict)")
    missing = [k for k in keys if k not in saved]
    if missing:
        raise ValueError(f"{path}: not a {what} (missing {', '.join(missing)})")
    return saved


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
    state = load_weights(path, "`tscnn pretrain` weights file", PRETRAINED_KEYS,
                         missing_hint="make it with `tscnn pretrain`")
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
