"""All settings of a run in one plain, serialisable dataclass (stored in every results folder)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from tscnn.preprocessing.prepare import PrepSettings

SELECTIONS = ("val_loss", "fixed", "test_leaky")
"""How the epoch of a fold's model is chosen:

* ``val_loss``: early stopping on the loss of held-out *training* subjects (subject-disjoint); honest.
* ``fixed``: train ``max_epochs`` and keep the last epoch; honest.
* ``test_leaky``: keep the epoch with the best accuracy on the test subject. This is what much
  published MER code does and it inflates results; offered only to reproduce such numbers, and
  every output of a run that uses it says LEAKY.
"""


@dataclass
class Config:
    """A TSCNN experiment: data, preparation, network, training recipe and run settings."""

    # Data.
    dataset: str = "casme2"
    root: str = ""
    coding: str | None = None
    classes: str = "5class"
    apex_fallback: str = "spotter"  # apex rule when none is annotated or it is invalid: spotter or middle
    # Preparation (SPEC section 2).
    size: int = 48
    blocks: int = 3
    flow: str = "tvl1"
    work_size: int = 128
    augment: bool = True
    # Network.
    streams: tuple[str, ...] = ("ss", "ls", "dt")
    share_trunk: bool = True
    dense1: int = 256
    dense2: int = 256
    dropout: float = 0.5
    pretrained: str = ""  # weights from `tscnn pretrain` for the static stream and the shared trunk
    # Training recipe (paper section 3.2).
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-5
    batch_size: int = 128
    max_epochs: int = 200
    patience: int = 10
    selection: str = "val_loss"
    val_fraction: float = 0.2  # share of training subjects held out for early stopping (at least 1)
    # Run.
    preset: str = "paper"
    seeds: tuple[int, ...] = (0,)
    threads: int = 0  # 0 = torch's default
    device: str = "cpu"  # cpu, cuda or auto (CUDA when available); nothing needs a GPU
    bf16: bool = True  # bf16 autocast on CPUs that support it (the recipe's numbers are unchanged)
    channels_last: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.streams = tuple(self.streams)
        self.seeds = tuple(self.seeds)
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.blocks < 1:
            raise ValueError("blocks (k) must be at least 1")

    @property
    def leaky(self) -> bool:
        return self.selection == "test_leaky"

    def prep(self) -> PrepSettings:
        return PrepSettings(self.size, self.blocks, self.flow, self.work_size, self.augment)

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """A Config from stored settings; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: str | Path) -> Config:
        return cls.from_dict(json.loads(Path(path).read_text()))


PRESETS: dict[str, dict] = {
    # The paper's recipe, unchanged.
    "paper": {},
    # The main job on the small built-in synthetic database within a 10-minute CPU budget: the same
    # optimiser and augmentation with a smaller batch, larger step and fewer epochs.
    "demo": {"batch_size": 32, "lr": 1e-2, "max_epochs": 4, "patience": 2},
}


def from_preset(preset: str, **overrides) -> Config:
    """A Config from a named preset plus explicit overrides (``None`` overrides are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return replace(Config(preset=preset), **values)
