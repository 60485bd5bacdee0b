"""STSTNet (Liong, Gan, See, Khor, Huang, FG 2019): a shallow triple-stream CNN on onset->apex motion.

Input: the prepared ``uvs`` stream, (N, 3, 28, 28) = horizontal flow u, vertical flow v and optical
strain, each min-max scaled to [0, 1] per image (the authors' 28x28x3 images, u / v / strain as RGB).

Architecture (paper Fig. 2 and the authors' layer table; SPEC section 9)::

    three parallel streams, filters f = 3 / 5 / 8:
        conv 3x3, stride 1, 'same' (28x28xf) -> ReLU -> BatchNorm
        -> max-pool 3x3, stride 3, 'same' (10x10xf) -> dropout 0.5
    concatenate (10x10x16) -> average-pool 2x2, stride 2 (5x5x16) -> flatten (400) -> FC -> classes

The softmax of the paper sits in the loss (cross-entropy on logits). ReLU comes *before* BatchNorm,
as the authors' layer graph orders it.

Reading taken: the "three streams" are three convolutions of different widths that each see *all
three* input channels (u, v and strain together: the authors' layer graph feeds the one 28x28x3
image input to every convolution), not one stream per channel. Only this reading reaches the
paper's 0.00167 M: one channel per stream would give 160 convolution weights instead of 448, 1,395
in all. The exact count, for 3 classes (the paper's composite task), is::

    convolutions  (27 + 1) * (3 + 5 + 8)      =   448
    BatchNorm     scale + shift, 2 * 16        =    32
    FC            400 * 3 + 3                  = 1,203
    total                                       1,683   (paper: 0.00167 M, within 1 %)

(BatchNorm's running mean and variance are buffers, not learnt parameters.) For 5 classes the FC
grows to 2,005 and the total to 2,485. MATLAB's 'same' max-pool with 3x3 windows and stride 3 pads
28 by one on each side (ceil(28 / 3) = 10); ``MaxPool2d(3, 3, padding=1)`` is exactly that.

Inputs are used as given (no centring): the convolution bias absorbs a constant offset and the
BatchNorm after each ReLU fixes the scale. Weights keep PyTorch's default initialisation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from tscnn.models.registry import ModelSpec, register_model

STREAM = "uvs"
INPUT_SIZE = 28
INPUT_CHANNELS = 3
FILTERS: tuple[int, ...] = (3, 5, 8)


def pooled_side(input_size: int) -> int:
    """Side after the 'same' 3x3 / stride-3 max-pool and the 2x2 / stride-2 average pool: 28 -> 10 -> 5."""
    return -(-input_size // 3) // 2


def check_uvs_channels(model: str, needed: int, channels: Mapping[str, int] | None) -> None:
    """A clear error when the prepared data lacks the ``uvs`` stream or has too few channels in it."""
    if channels is None:
        return
    if STREAM not in channels:
        raise ValueError(f"{model} reads the {STREAM!r} stream (u, v, optical strain), but the prepared data has "
                         f"only {sorted(channels)}; prepare the {STREAM!r} stream for it")
    if channels[STREAM] < needed:
        raise ValueError(f"{model} needs {needed} channels in the {STREAM!r} stream, the prepared data has "
                         f"{channels[STREAM]}")


class STSTNet(nn.Module):
    """The three-stream shallow network; ``forward`` takes ``{"uvs": (N, >=3, n, n)}`` and returns logits."""

    def __init__(self, num_classes: int, filters: tuple[int, ...] = FILTERS, dropout: float = 0.5,
                 input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        self.streams: tuple[str, ...] = (STREAM,)
        self.input_size = input_size
        self.filters = tuple(filters)
        # The three streams run as one 16-filter convolution: channels 0-2, 3-7 and 8-15 are the 3-, 5- and
        # 8-filter streams. Every later layer (ReLU, BatchNorm, max-pool, dropout) acts per channel, so this
        # is the same function with the same 448 + 32 weights, in one pass instead of three (3x faster on CPU).
        self.branches = nn.Sequential(
            nn.Conv2d(INPUT_CHANNELS, sum(filters), 3, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(sum(filters)),
            nn.MaxPool2d(3, stride=3, padding=1),  # 28 -> ceil(28 / 3) = 10, MATLAB 'same'
            nn.Dropout(dropout),
        )
        self.pool = nn.AvgPool2d(2, stride=2)
        self.classifier = nn.Linear(sum(filters) * pooled_side(input_size) ** 2, num_classes)

    def features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The flattened 5x5x16 maps the classifier reads."""
        x = inputs[STREAM][:, :INPUT_CHANNELS]
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"STSTNet was built for {self.input_size}x{self.input_size} inputs, got "
                             f"{tuple(x.shape[-2:])}")
        return torch.flatten(self.pool(self.branches(x)), 1)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Class logits (softmax is in the loss)."""
        return self.classifier(self.features(inputs))


def build_ststnet(config, num_classes: int, channels: Mapping[str, int] | None = None) -> STSTNet:
    """The registry's builder: STSTNet at the Config's input size (28 for this model's recipe)."""
    check_uvs_channels("STSTNet", INPUT_CHANNELS, channels)
    return STSTNet(num_classes, dropout=0.5, input_size=int(getattr(config, "size", INPUT_SIZE)))


register_model(ModelSpec(
    name="ststnet", kind="network", bf16=False, build=build_ststnet, streams=(STREAM,), size=INPUT_SIZE,
    preset="ststnet",
    description="STSTNet: shallow triple-stream CNN (3/5/8 filters) on onset-apex u, v, optical strain",
    reference="Liong, Gan, See, Khor, Huang: Shallow Triple Stream Three-dimensional CNN (STSTNet) for "
              "Micro-expression Recognition, IEEE FG 2019",
))
