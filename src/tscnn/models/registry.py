"""One registry that names every model: TSCNN and the peers run beside it in the same protocol.

A model is either a *network* (a ``torch.nn.Module`` trained by ``tscnn.train.Trainer``; its
``forward`` takes ``{stream name: (N, C, n, n) tensor}`` and it has a ``streams`` attribute) or a
*features* model (a fixed feature extractor plus a scikit-learn classifier, fitted per fold on the
training subjects only). ``@register_model`` adds a spec; ``get_model(name)`` finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tscnn._registry import add_entry, look_up


@dataclass(frozen=True)
class ModelSpec:
    """What the runner needs to know of a model.

    * ``build(config, num_classes, channels)``: a network (kind ``network``), ``channels`` mapping each
      input stream to its channel count in the prepared data.
    * ``features(arrays) -> (clips, d)`` and ``classifier() -> sklearn estimator`` (kind ``features``):
      ``arrays`` maps stream name to (clips, C, n, n) float arrays (the original variant).
    * ``streams``: the prepared input streams it reads by default (``any_streams``: or any combination of
      them); ``size``: its input side in pixels (None = the Config's); ``preset``: the training recipe it runs
      with unless one is named; ``bf16``: whether bf16 autocast may be used for it (it slows tiny networks down).
    * What it can do, asked by the runner, the reports and the commands instead of its name:
      ``trains_by_epochs``, ``fuses_with_floor``, ``exports_onnx`` (each, unless given, whether it is a network),
      ``pretrained_weights``, ``auxiliary_targets`` (its ``forward_with_vectors`` gives each stream's vector and
      the fused one, which the teacher's and the action units' heads read), ``centred_features`` (the features
      with each map first centred on its own median: the option ``centre_floor``) and ``is_features``.
    """

    name: str
    kind: str
    description: str
    streams: tuple[str, ...]
    size: int | None = None
    preset: str = "paper"
    build: Callable[..., Any] | None = None
    features: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None
    classifier: Callable[[], Any] | None = None
    reference: str = ""
    bf16: bool = True  # bf16 autocast pays only for large convolutions; small networks run faster in fp32
    any_streams: bool = False  # reads any combination of the prepared streams (TSCNN), not only its own
    pretrained_weights: bool = False  # `tscnn pretrain` weights (input convolutions and trunk) load into it
    trains_by_epochs: bool | None = None  # None: a network does (Trainer, epoch choice), a features model is fitted
    fuses_with_floor: bool | None = None  # None: a network's probabilities may be averaged with the linear floor's
    exports_onnx: bool | None = None  # None: a network can be written as ONNX (`tscnn export`)
    auxiliary_targets: bool = False  # forward_with_vectors gives the vectors the trainer's auxiliary heads read
    centred_features: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None  # its features of each map
    # minus its own median (``centre_floor``): the linear floor's
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        network = self.kind == "network"
        for name in ("trains_by_epochs", "fuses_with_floor", "exports_onnx"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, network)

    @property
    def is_features(self) -> bool:
        """A fixed feature extractor plus a classifier, fitted per fold (no epochs, no saved model)."""
        return self.kind == "features"


MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.kind not in ("network", "features"):
        raise ValueError(f"model {spec.name!r}: kind must be 'network' or 'features', got {spec.kind!r}")
    return add_entry(MODELS, "model", spec.name, spec)


def get_model(name: str) -> ModelSpec:
    """The spec of a registered model, or an error listing the known names."""
    return look_up(MODELS, "model", name)
