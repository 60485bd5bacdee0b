"""SSSNet, the shallow single-stream network of the MEB benchmark (Varanka, Peng, Zhao).

Source: T. Varanka, W. Peng, G. Zhao, "Data leakage and evaluation issues in micro-expression
analysis", IEEE Transactions on Affective Computing, 2023, and the network as published in its
benchmark code (MEB, ``meb/models``: ``SSSNet``; first described in Varanka, Peng, Zhao,
"Micro-expression recognition with noisy labels", IS&T Electronic Imaging 2021). The best
leak-free result known on the MEGC2019 composite (UF1 0.762 in that paper).

Input: the prepared ``uvs`` stream, (N, 3, n, n) = onset->apex horizontal flow u, vertical flow v
and optical-strain magnitude, each min-max scaled to [0, 1] per image. MEB computes the same three
maps (u, v, then the strain of u and v, each normalised to [0, 1]) and resizes them to 64 x 64.

Architecture (one stream, two convolutions, two dense layers; hidden sizes 32, 64, 256)::

    conv 5x5, 3 -> 32, stride 1, no padding ('valid')  -> ReLU -> max-pool 3x3 / 3 -> BatchNorm
        -> dropout 0.5 (whole channels: Dropout2d)
    conv 3x3, 32 -> 64, stride 1, no padding ('valid') -> ReLU -> max-pool 2x2 / 2 -> BatchNorm
        -> dropout 0.5 (Dropout2d)
    flatten -> FC 256 -> ReLU -> dropout 0.5 -> FC classes (logits; the softmax is in the loss)

Note the order ReLU -> pool -> BatchNorm -> dropout, as MEB's forward pass has it. Sides: a side n
becomes (n - 4) // 3 after the first block and ((n - 4) // 3 - 2) // 2 after the second, so MEB's
64 x 64 input gives 60 -> 20 -> 18 -> 9 (its FC reads 9 x 9 x 64 = 5,184 values) and the
project's 28 x 28 flow input gives 24 -> 8 -> 6 -> 3 (3 x 3 x 64 = 576). The network is built for
the Config's ``size`` (at least 16, where the last maps are 1 x 1). Parameter count for 5 classes::

    conv1   (5 * 5 * 3 + 1) * 32        =     2,432
    BN1     2 * 32                      =        64
    conv2   (3 * 3 * 32 + 1) * 64       =    18,496
    BN2     2 * 64                      =       128
    FC1     (s * s * 64 + 1) * 256      =   147,712 at 28 px (s = 3);  1,327,360 at 64 px (s = 9)
    FC2     (256 + 1) * 5               =     1,285
    total                                   170,117 at 28 px;          1,349,765 at 64 px

(3 classes: 2 * 257 fewer, 169,603 and 1,349,251.) BatchNorm's running statistics are buffers.

Readings taken: the input side is the project's flow input side (28, the MEGC flows' native
size, the same input as STSTNet and Off-ApexNet in the same folds) rather than MEB's 64; ``--size
64`` builds MEB's exact layer sizes. MEB's optional softmax output (off by default) is left out.
Weights keep PyTorch's default initialisation (as MEB does); inputs are used as given.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from tscnn.models.registry import ModelSpec, register_model
from tscnn.models.ststnet import STREAM, check_uvs_channels

INPUT_SIZE = 28
"""The project's flow input side (MEB resizes to 64; see the module docstring)."""
MEB_INPUT_SIZE = 64
INPUT_CHANNELS = 3
HIDDEN: tuple[int, int, int] = (32, 64, 256)
"""Filters of the two convolutions and units of the hidden dense layer (MEB's ``h_dims``)."""
MIN_SIZE = 16


def pooled_side(input_size: int) -> int:
    """Side of the last maps: 5x5 valid conv, 3x3/3 pool, 3x3 valid conv, 2x2/2 pool (28 -> 3, 64 -> 9)."""
    return ((input_size - 4) // 3 - 2) // 2


class SSSNet(nn.Module):
    """The shallow single-stream network; ``forward`` takes ``{"uvs": (N, >=3, n, n)}`` and returns logits."""

    def __init__(self, num_classes: int, hidden: tuple[int, int, int] = HIDDEN, dropout: float = 0.5,
                 input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        if input_size < MIN_SIZE:
            raise ValueError(f"SSSNet needs inputs of at least {MIN_SIZE}x{MIN_SIZE} pixels, got {input_size}")
        h1, h2, h3 = hidden
        self.streams: tuple[str, ...] = (STREAM,)
        self.input_size = input_size
        self.block1 = nn.Sequential(
            nn.Conv2d(INPUT_CHANNELS, h1, 5), nn.ReLU(), nn.MaxPool2d(3, stride=3), nn.BatchNorm2d(h1),
            nn.Dropout2d(dropout),
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(h1, h2, 3), nn.ReLU(), nn.MaxPool2d(2, stride=2), nn.BatchNorm2d(h2), nn.Dropout2d(dropout),
        )
        self.dense = nn.Sequential(nn.Linear(h2 * pooled_side(input_size) ** 2, h3), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(h3, num_classes)

    def features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The flattened maps of the second block (N, 64 * s * s)."""
        x = inputs[STREAM][:, :INPUT_CHANNELS]
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"SSSNet was built for {self.input_size}x{self.input_size} inputs, got "
                             f"{tuple(x.shape[-2:])}")
        return torch.flatten(self.block2(self.block1(x)), 1)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Class logits (softmax is in the loss)."""
        return self.classifier(self.dense(self.features(inputs)))


def build_sssnet(config, num_classes: int, channels: Mapping[str, int] | None = None) -> SSSNet:
    """The registry's builder: SSSNet at the Config's input size (28 for this model's recipe)."""
    check_uvs_channels("SSSNet", INPUT_CHANNELS, channels)
    return SSSNet(num_classes, dropout=0.5, input_size=int(getattr(config, "size", INPUT_SIZE)))


register_model(ModelSpec(
    name="sssnet", kind="network", bf16=False, build=build_sssnet, streams=(STREAM,), size=INPUT_SIZE,
    preset="sssnet",
    description="SSSNet: shallow single-stream CNN (conv 32, conv 64, FC 256) on onset-apex u, v, optical strain",
    reference="Varanka, Peng, Zhao: Data leakage and evaluation issues in micro-expression analysis, "
              "IEEE Transactions on Affective Computing 2023 (MEB benchmark)",
))
