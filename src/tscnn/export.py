"""A saved model as ONNX, checked against PyTorch with onnxruntime (``tscnn export model.pt model.onnx``).

The ONNX graph takes one float32 input per stream, named after it (``ss``, ``ls``, ``dt`` or ``uvs``,
each (batch, C, n, n) with a free batch size, values as ``tscnn.preprocessing.streams.make_streams``
gives them) and gives ``logits`` and ``probabilities`` (batch, classes). The class names, streams and
input size go into the file's metadata (``tscnn_classes``, ``tscnn_streams``, ``tscnn_input_size``,
JSON), so the file alone says how to feed it and read it; ``tscnn_tta_flip`` true means the recipe averages
the probabilities of each clip and its horizontal mirror (``tscnn.preprocessing.streams.clip_views``),
which the caller does with a batch of the two views.

After writing, the file is run by onnxruntime on random inputs and compared with the PyTorch model:
the largest absolute difference of the logits and probabilities is returned, and a difference above
``tolerance`` is an error (the file is removed). Only networks are exported; the features models
(``hoof``, ``linear``) are a scikit-learn classifier on fixed features and are refused.

onnx, onnxruntime and onnxscript (which torch's exporter needs) are optional:
``pip install 'tscnn[onnx]'``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tscnn.config import OPTION_DOMAINS, check_domains
from tscnn.errors import one_line
from tscnn.results_folder import atomic_path

ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
DEFAULT_TOLERANCE = 1e-4
"""Largest absolute difference of logits / probabilities allowed between onnxruntime and PyTorch (fp32
both; the differences seen are about 1e-6)."""
OPSET = 18


class MissingPackageError(ImportError):
    """An optional package that a command needs is not installed; the message names the pip command."""


def require_onnx() -> None:
    """A one-line MissingPackageError naming the ``pip install`` to run when an ONNX package is absent."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingPackageError(f"ONNX export needs {', '.join(missing)}, not installed: run "
                                  f"pip install 'tscnn[onnx]' (or pip install {' '.join(ONNX_PACKAGES)})")


class StreamsAsArguments(nn.Module):
    """A network whose ``forward`` takes ``{stream: tensor}`` as one with one tensor argument per stream
    (ONNX inputs are positional), giving logits and softmax probabilities."""

    def __init__(self, model: nn.Module, streams: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.streams = streams

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(dict(zip(self.streams, tensors, strict=True)))
        return logits, torch.softmax(logits, dim=1)


def input_shapes(model: nn.Module, config: object) -> dict[str, tuple[int, int, int]]:
    """(C, n, n) of each input stream of a loaded network."""
    from tscnn.models.tscnn import stream_channels

    size = int(getattr(model, "input_size", None) or config.size)
    convs = getattr(model, "input_convs", None)
    shapes = {}
    for stream in model.streams:
        channels = convs[stream][0].in_channels if convs is not None else stream_channels(stream, config.blocks)
        shapes[stream] = (channels, size, size)
    return shapes


def export_onnx(model_path: str | Path, onnx_path: str | Path, tolerance: float = DEFAULT_TOLERANCE,
                check_batch: int = 4, seed: int = 0) -> dict:
    """Write the network of a ``tscnn train`` file as ONNX and check it with onnxruntime.

    Returns what was done: paths, model name, input names and shapes, output names, classes, file size,
    the largest absolute difference from PyTorch (``max_abs_diff``) on ``check_batch`` random clips and
    the tolerance. Raises FileNotFoundError / ValueError (one line) for a missing or bad model file, a
    features model, a model fused with the linear floor, or a difference above ``tolerance``;
    MissingPackageError when an ONNX package is absent.
    """
    from tscnn.models import get_model
    from tscnn.predict import load_saved_model, read_saved

    model_path, onnx_path = Path(model_path), Path(onnx_path)
    check_domains({"tolerance": tolerance}, {"tolerance": OPTION_DOMAINS["tolerance"]})
    if onnx_path.is_dir():
        raise ValueError(f"{onnx_path}: a folder; give the .onnx file to write (e.g. {onnx_path / 'model.onnx'})")
    require_onnx()
    if not model_path.is_file():
        raise FileNotFoundError(f"model file {model_path} does not exist (make one with `tscnn train`)")
    model_name = str(read_saved(model_path)["config"].get("model", "tscnn"))
    try:
        exportable = get_model(model_name).exports_onnx
    except ValueError as err:
        raise ValueError(f"{model_path}: {err}") from None
    if not exportable:
        raise ValueError(f"{model_path}: model {model_name!r} is a features model (fixed features + a scikit-learn "
                         "classifier), not a network; only networks can be exported to ONNX")
    saved = load_saved_model(model_path)
    if saved.floor is not None:
        raise ValueError(f"{model_path}: its recipe averages the network with the linear floor (--fuse-linear); an "
                         "ONNX file of the network alone would predict otherwise: export a model trained without "
                         "--fuse-linear, or predict with tscnn predict")
    model = saved.model.eval()
    shapes = input_shapes(model, saved.config)
    streams = tuple(shapes)
    wrapper = StreamsAsArguments(model, streams).eval()
    generator = torch.Generator().manual_seed(seed)
    example = tuple(torch.rand(2, *shapes[s], generator=generator) for s in streams)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed when checked: a failure leaves nothing, an old file stays whole.
    with atomic_path(onnx_path) as tmp:
        try:
            export_program(wrapper, example, streams, tmp)
            add_metadata(tmp, {"tscnn_classes": list(saved.classes), "tscnn_streams": list(streams),
                               "tscnn_input_size": shapes[streams[0]][1], "tscnn_model": model_name,
                               "tscnn_card": saved.card, "tscnn_tta_flip": saved.config.tta_flip})
            check = tuple(torch.rand(check_batch, *shapes[s], generator=generator) for s in streams)
            diff = max_abs_diff(wrapper, tmp, streams, check)
        except Exception as err:
            if isinstance(err, (ValueError, OSError)):
                raise
            raise ValueError(f"{model_path}: ONNX export failed: {one_line(err)}") from err
        finally:
            tmp.with_name(tmp.name + ".data").unlink(missing_ok=True)  # an exporter's external weights, if any
        if not diff <= tolerance:  # also catches NaN
            raise ValueError(f"{onnx_path}: onnxruntime differs from PyTorch by {diff:.3g} (tolerance "
                             f"{tolerance:g}); nothing was written")
    return {"model_path": str(model_path), "onnx_path": str(onnx_path), "model": model_name,
            "inputs": {s: ["batch", *shapes[s]] for s in streams}, "outputs": ["logits", "probabilities"],
            "classes": list(saved.classes), "opset": OPSET, "bytes": onnx_path.stat().st_size,
            "max_abs_diff": diff, "tolerance": tolerance, "check_batch": check_batch}


def export_program(wrapper: nn.Module, example: tuple[torch.Tensor, ...], streams: tuple[str, ...],
                   onnx_path: Path) -> None:
    """torch.export-based ONNX export with a free batch size, quietly (the exporter prints its progress).

    ``optimize=False``: onnxscript 0.7's constant folding fails on the shared trunk's split of a batch of
    free size; onnxruntime optimises the graph itself when it loads it."""
    batch = torch.export.Dim("batch", min=1)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, example, str(onnx_path), input_names=list(streams),
                              output_names=["logits", "probabilities"], opset_version=OPSET, dynamo=True,
                              optimize=False, dynamic_shapes=(tuple({0: batch} for _ in streams),), verbose=False,
                              external_data=False)  # one self-contained file: the weights inside the .onnx
    finally:
        quiet.setLevel(level)
    if not onnx_path.is_file():
        raise RuntimeError("the exporter wrote no file")


def add_metadata(onnx_path: Path, values: dict) -> None:
    """Store ``values`` (each as JSON) in the ONNX file's metadata_props."""
    import onnx

    proto = onnx.load(str(onnx_path))
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(onnx_path))


def onnx_session(onnx_path: str | Path, threads: int = 1):
    """An onnxruntime CPU session of ``onnx_path`` on ``threads`` threads."""
    require_onnx()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def max_abs_diff(wrapper: nn.Module, onnx_path: Path, streams: tuple[str, ...],
                 inputs: tuple[torch.Tensor, ...]) -> float:
    """Largest absolute difference of logits and probabilities between onnxruntime and PyTorch."""
    session = onnx_session(onnx_path)
    got = session.run(["logits", "probabilities"], {s: x.numpy() for s, x in zip(streams, inputs, strict=True)})
    with torch.no_grad():
        want = [t.numpy() for t in wrapper(*inputs)]
    return float(max(np.abs(np.asarray(g, np.float64) - w).max() for g, w in zip(got, want, strict=True)))
