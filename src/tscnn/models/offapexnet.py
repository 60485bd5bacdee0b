"""Off-ApexNet (Gan, Liong, Yau, Huang, Tan, Signal Processing: Image Communication 2019).

Input: onset->apex horizontal flow u and vertical flow v at 28x28, read as channels 0 and 1 of the
prepared ``uvs`` stream (each min-max scaled to [0, 1] per image). Two streams with their own
weights, one for u and one for v, each::

    conv 5x5, 6 filters, pad 2 (28x28x6) -> ReLU -> max-pool 2x2 (14x14x6)
    -> conv 5x5, 16 filters, pad 2 (14x14x16) -> ReLU -> max-pool 2x2 (7x7x16) -> flatten (784)

then the two 784-vectors are concatenated (1,568) -> FC 1024 -> ReLU -> dropout 0.5 -> FC 1024 ->
ReLU -> dropout 0.5 -> FC classes (logits; the softmax is in the loss).

Reading taken: the paper gives the second convolution's padding only through its parameter count.
'Same' padding (pad 2) keeps 7x7 maps after the second pool and gives, for 3 classes::

    per stream   conv1 (25 + 1) * 6 = 156, conv2 (150 + 1) * 16 = 2,416     x 2 =     5,144
    FC1          1,568 * 1,024 + 1,024                                      =  1,606,656
    FC2          1,024 * 1,024 + 1,024                                      =  1,049,600
    FC3          1,024 * 3 + 3                                              =      3,075
    total                                                                      2,664,475

i.e. 2.66 M, the third-party figure in SPEC section 9 and 4 % under the paper's quoted 2.77 M. A
'valid' second convolution (5x5 maps, 800 features) gives 1.88 M, 32 % under, so 'same' is the
reading that lands near the paper; no plain reading of the description reaches 2.77 M exactly. For
5 classes the total is 2,666,525.

Weights keep PyTorch's default initialisation; inputs are used as given (no centring).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from tscnn.models.registry import ModelSpec, register_model
from tscnn.models.ststnet import STREAM, check_uvs_channels

INPUT_SIZE = 28
FLOW_CHANNELS: tuple[int, ...] = (0, 1)
"""Channels of the ``uvs`` stream this model reads: u and v (optical strain, channel 2, is not used)."""


def stream_side(input_size: int) -> int:
    """Side of a stream's last maps: two 'same' convolutions and two 2x2 pools, 28 -> 14 -> 7."""
    return input_size // 2 // 2


def _flow_stream() -> nn.Sequential:
    """One stream (u or v): two conv-ReLU-pool stages, 1 channel in, 16 x 7 x 7 flattened out."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )


class OffApexNet(nn.Module):
    """Two-stream (u, v) CNN with two 1024-wide dense layers; ``forward`` takes ``{"uvs": ...}``, returns logits."""

    def __init__(self, num_classes: int, hidden: int = 1024, dropout: float = 0.5,
                 input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        self.streams: tuple[str, ...] = (STREAM,)
        self.input_size = input_size
        self.flow_streams = nn.ModuleList(_flow_stream() for _ in FLOW_CHANNELS)
        features = len(FLOW_CHANNELS) * 16 * stream_side(input_size) ** 2
        self.dense = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(hidden, num_classes)

    def features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The concatenated flattened u and v stream maps (N, 1568)."""
        x = inputs[STREAM]
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"Off-ApexNet was built for {self.input_size}x{self.input_size} inputs, got "
                             f"{tuple(x.shape[-2:])}")
        return torch.cat([net(x[:, c:c + 1]) for net, c in zip(self.flow_streams, FLOW_CHANNELS, strict=True)], dim=1)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Class logits (softmax is in the loss)."""
        return self.classifier(self.dense(self.features(inputs)))


def build_offapexnet(config, num_classes: int, channels: Mapping[str, int] | None = None) -> OffApexNet:
    """The registry's builder: Off-ApexNet at the Config's input size (28 for this model's recipe)."""
    check_uvs_channels("Off-ApexNet", len(FLOW_CHANNELS), channels)
    return OffApexNet(num_classes, input_size=int(getattr(config, "size", INPUT_SIZE)))


register_model(ModelSpec(
    name="offapexnet", kind="network", bf16=False, build=build_offapexnet, streams=(STREAM,), size=INPUT_SIZE,
    preset="offapexnet",
    description="Off-ApexNet: two-stream (u, v) LeNet-like CNN with two 1024-wide dense layers",
    reference="Gan, Liong, Yau, Huang, Tan: OFF-ApexNet on micro-expression recognition system, "
              "Signal Processing: Image Communication, 2019",
))
