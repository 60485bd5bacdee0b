"""The TSCNN network: three CNN streams (static-spatial, local-spatial, dynamic-temporal) fused by dense layers.

Reading of the paper (Fig. 1 is unavailable; SPEC section 2 fixes the order):

    conv1(5x5, 64) - maxpool(5x5, s2) - conv2(5x5, 64) - conv3(5x5, 64) - avgpool(3x3, s2)
    - conv4(5x5, 128) - conv5(5x5, 128) - avgpool(3x3, s2)

every convolution stride 1 with "same" zero padding and followed by PReLU. The streams "share the
same weights except the channel number of their input layers": conv1 belongs to each stream, the
rest (the trunk) is shared when ``share_trunk`` is on and copied per stream when it is off (the
ablation). Each stream's 128 x 6 x 6 maps are flattened into its Dense 1 vector, the stream vectors
are concatenated and projected into the "super feature vector" (Dense 2), and a linear layer gives
the class logits (softmax is applied by the loss / at prediction). Dropout sits on every dense layer.

Two choices the paper leaves open, made here: weights use He initialisation for PReLU (He et al.
2015, the paper's PReLU reference; PyTorch's default init left SGD stuck at the class prior), and
inputs in [0, 1] are centred by a fixed shift of -0.5 inside the model (nothing is fitted on data);
the option ``centre_flow`` centres each flow map on its own median instead, and ``scale_flow`` also
divides it by a robust spread of its own (see ``TSCNN.centred``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from tscnn.models.registry import ModelSpec, register_model

STREAMS: tuple[str, ...] = ("ss", "ls", "dt")
"""The paper's streams in canonical order: static-spatial, local-spatial, dynamic-temporal."""
INPUT_STREAMS: tuple[str, ...] = (*STREAMS, "uvs")
"""Streams a TSCNN can read: the paper's three, and ``uvs`` (onset->apex u, v, optical strain: the
dynamic-temporal stream in the format the MEGC challenges distribute, for flow-folder databases)."""

INPUT_SIZE = 48
INPUT_CENTRE = 0.5
SPREAD_QUANTILE = 0.99
"""Share of a scaled flow map's pixels whose centred value ends within [-0.5, 0.5], the range of the -0.5 shift."""
GREY_LEVEL = 1 / 255
"""The smallest spread a flow map is divided by: one grey level of the 8-bit images the flows come in."""


def stream_channels(stream: str, blocks: int = 3) -> int:
    """Input channels of a stream: 1 grey key frame, k*k grey blocks, 4 flow maps (DT), or u, v, strain."""
    if stream == "ss":
        return 1
    if stream == "ls":
        return blocks * blocks
    if stream == "dt":
        return 4
    if stream == "uvs":
        return 3
    raise ValueError(f"unknown stream {stream!r}; expected one of {INPUT_STREAMS}")


def conv5x5(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 5x5, stride-1 convolution that keeps the map size, followed by PReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 5, padding=2), nn.PReLU(out_channels))


class Trunk(nn.Module):
    """Everything of one stream CNN after its input convolution: 48x48x64 in, 6x6x128 out."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.MaxPool2d(5, stride=2, padding=2),  # 48 -> 24
            conv5x5(64, 64),  # conv2
            conv5x5(64, 64),  # conv3
            nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),  # 24 -> 12
            conv5x5(64, 128),  # conv4
            conv5x5(128, 128),  # conv5
            nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),  # 12 -> 6
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def trunk_side(input_size: int) -> int:
    """Side of the trunk's output maps: three stride-2 pools with padding, 48 -> 24 -> 12 -> 6, 28 -> 14 -> 7 -> 4."""
    side = input_size
    for _ in range(3):
        side = (side + 1) // 2
    return side


TRUNK_FEATURES = 128 * trunk_side(INPUT_SIZE) ** 2


class TSCNN(nn.Module):
    """Three-stream CNN; any non-empty subset of ``("ss", "ls", "dt")`` can be built for ablations."""

    def __init__(
        self,
        num_classes: int,
        streams: Sequence[str] = STREAMS,
        blocks: int = 3,
        share_trunk: bool = True,
        dense1: int = 256,
        dense2: int = 256,
        dropout: float = 0.5,
        channels: Mapping[str, int] | None = None,
        input_size: int = INPUT_SIZE,
        centre_flow: bool = False,
        scale_flow: bool = False,
    ) -> None:
        super().__init__()
        if scale_flow and not centre_flow:
            raise ValueError("scale_flow divides the centred flow maps: it needs centre_flow")
        unknown = sorted(set(streams) - set(INPUT_STREAMS))
        if unknown:
            raise ValueError(f"unknown stream(s) {unknown}; TSCNN reads some of {INPUT_STREAMS}")
        streams = tuple(s for s in INPUT_STREAMS if s in set(streams))
        if not streams:
            raise ValueError("TSCNN needs at least one stream out of ss, ls, dt, uvs")
        self.streams = streams
        self.blocks = blocks
        self.share_trunk = share_trunk
        self.input_size = input_size
        self.centre_flow = centre_flow
        self.scale_flow = scale_flow
        features = 128 * trunk_side(input_size) ** 2
        channels = {s: stream_channels(s, blocks) for s in streams} | dict(channels or {})
        self.input_convs = nn.ModuleDict({s: conv5x5(channels[s], 64) for s in streams})
        if share_trunk:
            self.trunk = Trunk()
        else:
            self.trunks = nn.ModuleDict({s: Trunk() for s in streams})
        self.dense1 = nn.ModuleDict(
            {
                s: nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, dense1), nn.PReLU())
                for s in streams
            }
        )
        self.dense2 = nn.Sequential(nn.Dropout(dropout), nn.Linear(dense1 * len(streams), dense2), nn.PReLU())
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(dense2, num_classes))
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, a=0.25)  # 0.25 = PReLU's initial slope
                nn.init.zeros_(module.bias)

    def centred(self, stream: str, x: torch.Tensor) -> torch.Tensor:
        """What the input convolution sees: the maps shifted by -0.5, or with ``centre_flow`` each flow map (DT,
        UVS) minus its own median. Min-max normalisation puts zero motion at a different level in every map;
        most of a face is still, so its median marks that level again (a per-clip rule: nothing is fitted).

        ``scale_flow`` then divides each centred map by twice its 99th percentile of absolute values (at
        least one grey level), so that about 99 % of its pixels fall within [-0.5, 0.5]. Min-max
        normalisation scales each map by its single most extreme pixel, often an artefact (a blink, the
        face border); centred and scaled this way, a map whose spread exceeds one grey level no longer
        depends on any positive affine rescaling of it, so the network sees the flow itself up to a
        robust scale of its own."""
        if not (self.centre_flow and stream in ("dt", "uvs")):
            return x - INPUT_CENTRE
        flat = x.flatten(2)  # the lower median, as torch.median gives it, taken by sorting (ONNX has no median)
        pixels = flat.shape[2]
        centred = x - flat.sort(dim=2).values[..., (pixels - 1) // 2, None, None]
        if not self.scale_flow:
            return centred
        rank = int(SPREAD_QUANTILE * (pixels - 1))
        spread = centred.abs().flatten(2).sort(dim=2).values[..., rank, None, None].clamp_min(GREY_LEVEL)
        return centred * (INPUT_CENTRE / spread)

    def trunk_features(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run each stream's input conv and the trunk; a shared trunk runs once on the stacked batch."""
        first = {s: self.input_convs[s](self.centred(s, inputs[s])) for s in self.streams}
        if not self.share_trunk:
            return {s: self.trunks[s](first[s]) for s in self.streams}
        stacked = self.trunk(torch.cat([first[s] for s in self.streams], dim=0))
        # The same views as split(batch); written so that torch.export (ONNX) keeps the batch size free.
        return dict(zip(self.streams, stacked.unflatten(0, (len(self.streams), -1)).unbind(0), strict=True))

    def stream_vectors(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each stream's Dense 1 vector of a batch."""
        maps = self.trunk_features(inputs)
        return {s: self.dense1[s](maps[s]) for s in self.streams}

    def super_features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The fused "super feature vector" (Dense 2) of a batch."""
        vectors = self.stream_vectors(inputs)
        return self.dense2(torch.cat([vectors[s] for s in self.streams], dim=1))

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Class logits; ``inputs`` maps stream name to an (N, C, n, n) tensor, n = ``input_size``."""
        return self.classifier(self.super_features(inputs))

    def forward_with_vectors(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Class logits, each stream's Dense 1 vector and, under ``"fused"``, the super feature vector, in one pass
        (the trainer's auxiliary heads read them; ``forward`` computes the same logits)."""
        vectors = self.stream_vectors(inputs)
        fused = self.dense2(torch.cat([vectors[s] for s in self.streams], dim=1))
        return self.classifier(fused), {**vectors, "fused": fused}


def _build_tscnn(config, num_classes: int, channels: Mapping[str, int] | None = None) -> TSCNN:
    return TSCNN(num_classes, config.streams, config.blocks, config.share_trunk, config.dense1, config.dense2,
                 config.dropout, channels=channels, input_size=config.size, centre_flow=config.centre_flow,
                 scale_flow=config.scale_flow)


register_model(ModelSpec(
    name="tscnn", kind="network", build=_build_tscnn, streams=STREAMS, preset="paper", any_streams=True,
    pretrained_weights=True, auxiliary_targets=True,
    description="TSCNN: three-stream CNN (static-spatial, local-spatial, dynamic-temporal), shared trunk",
    reference="the paper in seed/tscnn-paper.txt",
))
