"""Weights files: the one loader every path reads them with, and pre-trained weights.

``load_weights`` reads any file of tensors and plain data this project writes (a ``tscnn train`` model
file, ``tscnn pretrain`` weights, a training checkpoint) with ``weights_only=True``, so loading one runs
no code from it, and says in one line why a file is not one. ``tscnn pretrain`` (``tscnn.pretrain``) saves
the input convolution and Dense 1 layer of each stream it trained and TSCNN's trunk; ``tscnn.train.build_model``
loads them into a new network when ``Config.pretrained`` names the file (Dense 1 only with
``Config.pretrained_dense``). Both import this module, so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tscnn.models.tscnn import TSCNN
from tscnn.results_folder import atomic_path

PRETRAINED_KEYS = ("trunk",)
SYNTHETIC_MICRO = "synthetic-micro"
"""``Config.pretrained`` naming the default synthetic pre-training of the DT stream instead of a file: the file is
made once in the cache before the run (``tscnn.pretrain.with_pretrained_file``)."""


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
    """Save the input convolution and Dense 1 layer of each of ``model``'s streams and its shared trunk (on the
    CPU), with the streams, their input channels, the flow-map centring they saw, where they were trained
    (``source``) and their validation accuracy."""
    path = Path(path)
    model = model.to("cpu")
    convs = {f"input_conv_{s}": model.input_convs[s].state_dict() for s in model.streams}
    dense = {f"dense1_{s}": model.dense1[s].state_dict() for s in model.streams}
    channels = {s: int(model.input_convs[s][0].in_channels) for s in model.streams}
    with atomic_path(path) as tmp:
        torch.save({**convs, **dense, "trunk": model.trunk.state_dict(), "streams": list(model.streams),
                    "channels": channels, "centre_flow": model.centre_flow, "scale_flow": model.scale_flow,
                    "source": source, "val_accuracy": val_accuracy}, tmp)
    return path


def read_pretrained(path: str | Path, streams: tuple[str, ...], share_trunk: bool, centre_flow: bool,
                    scale_flow: bool, dense: bool = False) -> tuple[dict, list[str]]:
    """A ``tscnn pretrain`` weights file and its streams that a network of these settings has, or a one-line
    ValueError when it cannot fit one: no stream in common where the trunk is not shared, or flow maps
    pre-trained with other centring, or with ``dense`` no Dense 1 layer of a stream in common. (Input channels and
    Dense 1 shapes are checked on loading: they follow from the data.)
    A file from before the streams were recorded holds the static stream's."""
    state = load_weights(path, "`tscnn pretrain` weights file", PRETRAINED_KEYS,
                         missing_hint="make it with `tscnn pretrain`")
    saved = list(state.get("streams", ["ss"]))
    common = [s for s in saved if s in streams]
    centring = (bool(state.get("centre_flow", False)), bool(state.get("scale_flow", False)))
    if {"dt", "uvs"} & set(common) and centring != (centre_flow, scale_flow):
        raise ValueError(f"{path}: the flow maps were pre-trained with centre_flow={centring[0]}, "
                         f"scale_flow={centring[1]}; this network has {centre_flow}, {scale_flow}")
    if not share_trunk and not common:
        raise ValueError(f"{path}: the weights are for the {'/'.join(saved)} stream(s) and a shared trunk; this "
                         f"network has neither")
    if dense and not common:
        raise ValueError(f"{path}: --pretrained-dense needs a pre-trained stream this network has; the file's "
                         f"streams are {'/'.join(saved)}")
    for s in common if dense else ():
        if f"dense1_{s}" not in state:
            raise ValueError(f"{path}: holds no Dense 1 layer of the {s} stream (made before they were saved): "
                             "make the file again for --pretrained-dense")
    return state, common


def load_pretrained(model: TSCNN, path: str | Path, dense: bool = False) -> list[str]:
    """Copy pre-trained weights into ``model``: the input convolution of each saved stream the model has, and
    the trunk (the shared one, or each such stream's own); with ``dense`` also each such stream's Dense 1 layer.
    Returns the parts loaded. One-line ValueError when the file cannot fit the model (``read_pretrained``, or a
    stream's input channels or Dense 1 shape differ)."""
    state, common = read_pretrained(path, model.streams, model.share_trunk, model.centre_flow, model.scale_flow,
                                    dense)
    for s in common:
        weight = state[f"input_conv_{s}"]["0.weight"]
        wanted = model.input_convs[s][0].in_channels
        if weight.shape[1] != wanted:
            raise ValueError(f"{path}: input_conv_{s} was pre-trained on {weight.shape[1]} input channels; this "
                             f"network's {s} stream has {wanted}")
    for s in common if dense else ():
        saved, wanted = tuple(state[f"dense1_{s}"]["2.weight"].shape), tuple(model.dense1[s][2].weight.shape)
        if saved != wanted:
            raise ValueError(f"{path}: dense1_{s} was pre-trained with shape {saved} (units x trunk features); "
                             f"this network's is {wanted}")
    loaded = []
    for s in common:
        model.input_convs[s].load_state_dict(state[f"input_conv_{s}"])
        loaded.append(f"input_conv_{s}")
        if dense:
            model.dense1[s].load_state_dict(state[f"dense1_{s}"])
            loaded.append(f"dense1_{s}")
    if model.share_trunk:
        model.trunk.load_state_dict(state["trunk"])
        loaded.append("trunk")
    else:
        for s in common:
            model.trunks[s].load_state_dict(state["trunk"])
            loaded.append(f"trunk of {s}")
    return loaded
