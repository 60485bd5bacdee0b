"""The training recipe for one fold: the paper's (section 3.2) by default, every deviation a Config field.

The paper: SGD with Nesterov momentum (0.9), learning rate 1e-3, weight decay 1e-5, mini-batch 128,
up to 200 epochs, cross-entropy loss, dropout on dense layers (in the model). One epoch is one pass
over the x10-augmented training set (every clip in all its variants, shuffled), as the paper expands
its data ten-fold. Early stopping watches the loss of validation *subjects* drawn from the training
subjects; the weights of the best validation epoch are kept. Validation and test use the original
(un-augmented) variant.

Options (see ``tscnn.config``): Adam / AdamW, a cosine learning-rate decay, a class-balanced loss,
one random augmentation variant per clip per epoch instead of all ten, mixup, a fixed epoch budget
whose last ``average_last`` epochs' weights are averaged, test-time flip averaging, a teacher's
soft labels as an auxiliary target of the static stream (``teacher``, see ``Trainer.teacher_soft_labels``), and
the coding sheet's action units as an auxiliary target of the super feature vector (``au_weight``, see
``tscnn.action_units``).

The leaky shadow: when test rows are given, every epoch's model is also run on them and the
predictions of the epoch with the best test accuracy are kept *beside* the honest ones
(``TrainResult.leaky_proba``). Nothing of the test subject reaches training or the honest choice;
the shadow only measures what choosing the epoch on the test subject would have claimed.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from tscnn.action_units import ActionUnitTargets
from tscnn.checkpoints import load_pretrained, load_weights
from tscnn.config import Config
from tscnn.console import bars_disabled
from tscnn.models import get_model
from tscnn.teachers import DISTILLATION_TEMPERATURE, FER_CLASSES, distillation_loss, teacher_targets


@dataclass
class TrainResult:
    """The trained model, its per-epoch history, the epoch whose weights it holds, and the leaky shadow."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    chosen_epoch: int = 0
    leaky_epoch: int = 0
    leaky_proba: np.ndarray | None = None


def bf16_supported() -> bool:
    """Whether this CPU runs bf16 natively (else autocast would be slower than fp32). A oneDNN instruction-set
    cap without bf16 (``ONEDNN_MAX_CPU_ISA=AVX2``, how an AVX2-only machine is emulated) counts as no."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap and cap not in ("ALL", "DEFAULT") and "BF16" not in cap and "AMX" not in cap:
        return False
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cuda_bf16() -> bool:
    """Whether the GPU computes bf16 natively (Ampere and later); assumed where this process sees no GPU
    (folds sent to a Ray cluster: its workers decide for themselves)."""
    try:
        return not torch.cuda.is_available() or torch.cuda.is_bf16_supported()
    except (AssertionError, RuntimeError):
        return False


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when available, else CPU; results never depend on having a GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def build_model(config: Config, num_classes: int, channels: dict[str, int] | None = None) -> nn.Module:
    """The network of ``config.model``; ``channels`` gives each stream's input channels in the data.
    With ``config.pretrained`` TSCNN's trunk and the input convolutions of the pre-trained streams (with
    ``config.pretrained_dense`` their Dense 1 layers too) start from ``tscnn pretrain`` weights."""
    spec = get_model(config.model)
    if not spec.trains_by_epochs:
        raise ValueError(f"model {config.model!r} is a features model; it is fitted, not trained by the Trainer")
    model = spec.build(config, num_classes, channels)
    if config.pretrained:
        load_pretrained(model, config.pretrained, dense=config.pretrained_dense)
    return model


class StreamData:
    """Prepared stream arrays, (clips, variants, C, n, n) each, where a batch is taken from.

    ``resident=False``: numpy arrays on the host; each batch is gathered there and copied to the device
    (the CPU path). ``resident=True``: each stream is moved to the training device once, in its stored
    dtype (float16, or float32 for flow folders); batches, their augmentation variants and their labels
    are then indexed on the device and converted to float32 there, so training on a GPU makes no
    per-batch host-to-device copy of data. Both give the same float32 batches, bit for bit.
    """

    def __init__(self, arrays: dict[str, np.ndarray], device: torch.device, channels_last: bool,
                 resident: bool = False) -> None:
        self.arrays, self.device, self.channels_last, self.resident = arrays, device, channels_last, resident
        self.tensors: dict[str, torch.Tensor] = {}
        if resident:
            with warnings.catch_warnings():  # read-only arrays (shared memory, a Ray object) are only read
                warnings.simplefilter("ignore", UserWarning)
                self.tensors = {s: torch.as_tensor(a).to(device) for s, a in arrays.items()}

    @property
    def variants(self) -> int:
        return next(iter(self.arrays.values())).shape[1]

    def channels(self) -> dict[str, int]:
        return {s: a.shape[2] for s, a in self.arrays.items()}

    def index(self, rows: np.ndarray) -> np.ndarray | torch.Tensor:
        """Row (or variant) indices in the form ``batch`` takes: on the device when resident."""
        return torch.from_numpy(np.asarray(rows, np.int64)).to(self.device) if self.resident else np.asarray(rows)

    def batch(self, streams: tuple[str, ...], rows: np.ndarray | torch.Tensor,
              variants: np.ndarray | torch.Tensor | int) -> dict[str, torch.Tensor]:
        """Float32 inputs of clip ``rows`` in augmentation ``variants`` (an index per row, or one for all)."""
        out = {}
        for s in streams:
            if self.resident:
                tensor = self.tensors[s][rows, variants].float()
            else:
                tensor = torch.from_numpy(self.arrays[s][rows, variants].astype(np.float32))
                tensor = tensor.to(self.device, non_blocking=True)
            out[s] = tensor.contiguous(memory_format=torch.channels_last) if self.channels_last else tensor
        return out


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse class frequency of ``labels`` (n / (K * n_k)), 0 for a class absent from them; the
    training rows' own labels only, so nothing of the test subject is used."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


@dataclass
class _State:
    """Everything that changes during training (what a checkpoint holds)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    rng: np.random.Generator
    history: list[dict] = field(default_factory=list)
    chosen_epoch: int = 0
    best_score: float = float("inf")
    best_state: dict | None = None
    stale: int = 0
    stopped: bool = False
    averaged: dict | None = None  # running sum of the weights of the averaged epochs
    averaged_count: int = 0
    leaky_accuracy: float = -1.0
    leaky_epoch: int = 0
    leaky_proba: np.ndarray | None = None
    teacher_head: nn.Module | None = None  # with a teacher: static-stream Dense 1 -> teacher logits (training only)
    au_head: nn.Module | None = None  # with au_weight: super feature vector -> action-unit logits (training only)


class Trainer:
    """Trains one model on given rows of prepared arrays; deterministic for a seed."""

    def __init__(self, config: Config, num_classes: int, seed: int, resident: bool | None = None) -> None:
        """``resident``: keep the prepared data on the device (see ``StreamData``); default on a GPU only
        (on the CPU both ways give the same batches, and the host path is the measured one)."""
        self.config = config
        self.num_classes = num_classes
        self.seed = seed
        self.device = resolve_device(config.device)
        self.resident = self.device.type != "cpu" if resident is None else resident
        native = _cuda_bf16() if self.device.type == "cuda" else bf16_supported()
        self.autocast = config.bf16 and get_model(config.model).bf16 and native
        self._data: tuple[dict, StreamData] | None = None
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels

    def data(self, arrays: dict[str, np.ndarray] | StreamData) -> StreamData:
        """The arrays as ``StreamData`` for this trainer's device; the same dict gives the same (moved once)."""
        if isinstance(arrays, StreamData):
            return arrays
        if self._data is None or self._data[0] is not arrays:
            self._data = (arrays, StreamData(arrays, self.device, self.config.channels_last, self.resident))
        return self._data[1]

    # -- evaluation ---------------------------------------------------------------------------------
    def predict_proba(self, model: nn.Module, arrays: dict[str, np.ndarray] | StreamData,
                      rows: np.ndarray) -> np.ndarray:
        """Softmax probabilities of the original variant of ``rows``; with ``tta_flip`` the mean of the
        original's and its horizontal mirror's (variant 1, see ``AUGMENTATIONS``): the mirrored face shows
        the same expression, so averaging the two removes the network's left-right bias at no training cost."""
        data = self.data(arrays)
        variants = (0, 1) if self.config.tta_flip else (0,)
        if len(variants) > data.variants:
            raise ValueError("tta_flip needs the mirrored variant of every clip, but the data were prepared "
                             "without augmentation")
        model.eval()
        out = []
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            for start in range(0, len(rows), 256):
                index = data.index(rows[start:start + 256])
                proba = [torch.softmax(model(data.batch(model.streams, index, v)).float(), dim=1) for v in variants]
                out.append(torch.stack(proba).mean(0).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)

    def loss_and_accuracy(self, model: nn.Module, arrays: dict[str, np.ndarray] | StreamData, rows: np.ndarray,
                          labels: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the original variant of ``rows``."""
        loss, accuracy, _ = self._scored(model, arrays, rows, labels)
        return loss, accuracy

    def _scored(self, model: nn.Module, arrays: dict[str, np.ndarray] | StreamData, rows: np.ndarray,
                labels: np.ndarray) -> tuple[float, float, np.ndarray]:
        proba = self.predict_proba(model, arrays, rows)
        y = labels[rows]
        loss = float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)).mean())
        return loss, float((proba.argmax(1) == y).mean()), proba

    # -- training -----------------------------------------------------------------------------------
    def fit(self, arrays: dict[str, np.ndarray], labels: np.ndarray, train: np.ndarray, val: np.ndarray,
            test: np.ndarray | None = None, desc: str = "train", progress: bool = True,
            checkpoint: Path | None = None, action_units: ActionUnitTargets | None = None) -> TrainResult:
        """Train on ``train`` rows; choose the epoch by ``config.selection``.

        ``test`` feeds only the leaky shadow (and the explicitly leaky selection ``test_leaky``). With
        ``checkpoint``, the whole training state is saved there after every epoch and a run that
        finds one resumes from it (long runs such as pre-training lose at most one epoch).
        ``action_units`` (every clip's, ``tscnn.action_units.au_targets``) is the auxiliary target of
        ``au_weight``; only the training rows' are read.
        """
        cfg = self.config
        if cfg.selection == "val_loss" and not len(val):
            raise ValueError("selection 'val_loss' needs validation subjects, but there are none: set "
                             "val_fraction > 0 with at least two training subjects (a train_fraction < 1 "
                             "may leave fewer), or use selection 'fixed'")
        if cfg.au_weight and action_units is None:
            raise ValueError("au_weight needs the action units of the clips (tscnn.action_units.au_targets)")
        units = action_units if cfg.au_weight else None  # au_weight 0: the units are not read
        data = self.data(arrays)
        state = self._new_state(data, units)
        soft = self.teacher_soft_labels(data, train) if cfg.teacher else None
        if checkpoint is not None and Path(checkpoint).exists():
            self._restore(state, checkpoint)
        weights = torch.from_numpy(class_weights(labels[train], self.num_classes)).to(self.device) \
            if cfg.class_balanced else None
        bar = tqdm(range(len(state.history) + 1, cfg.max_epochs + 1), desc=desc, unit="epoch", leave=False,
                   disable=bars_disabled(progress and not state.stopped))
        for epoch in bar:
            if state.stopped:
                break
            start = time.perf_counter()
            train_loss, seen, auxiliary = self._train_epoch(state, data, labels, train, weights, soft, units)
            record = {"epoch": epoch, "train_loss": train_loss, "seconds": time.perf_counter() - start,
                      "samples": seen, "lr": state.optimizer.param_groups[0]["lr"], **auxiliary}
            if state.scheduler is not None:
                state.scheduler.step()
            self._evaluate(state, record, data, labels, val, test)
            state.history.append(record)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items()
                             if k.endswith(("loss", "accuracy")) and not k.startswith("test")})
            self._select(state, record)
            self._accumulate_average(state, epoch)
            if checkpoint is not None:
                self._save(state, checkpoint)
        return self._finish(state, data, train)

    def _new_state(self, data: StreamData, action_units: ActionUnitTargets | None = None) -> _State:
        cfg = self.config
        torch.manual_seed(self.seed)
        model = build_model(cfg, self.num_classes, data.channels()).to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        head = self._teacher_head(model) if cfg.teacher else None
        au_head = self._au_head(model, len(action_units.units)) if action_units is not None else None
        parameters = [*model.parameters(), *(p for h in (head, au_head) if h is not None for p in h.parameters())]
        if cfg.optimizer == "sgd":
            optimizer = torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                        weight_decay=cfg.weight_decay)
        else:
            kind = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
            optimizer = kind(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.max_epochs) \
            if cfg.schedule == "cosine" else None
        return _State(model, optimizer, scheduler, np.random.default_rng(self.seed),
                      best_state=copy.deepcopy(model.state_dict()), teacher_head=head, au_head=au_head)

    # -- teacher (distillation into the static stream) ---------------------------------------------------
    def _teacher_head(self, model: nn.Module) -> nn.Module:
        """The auxiliary head: a linear layer from the static stream's Dense 1 vector to the teacher's 7 logits.
        It lives in the trainer, not in the model: it is trained beside the network and dropped after training,
        so the trained model, its predictions and what is saved of it are TSCNN's own."""
        if "ss" not in getattr(model, "streams", ()) or not hasattr(model, "forward_with_vectors"):
            raise ValueError(f"teacher distils into TSCNN's static-spatial stream; model {self.config.model} with "
                             f"streams {', '.join(getattr(model, 'streams', ()))} has none")
        head = nn.Linear(model.dense1["ss"][-2].out_features, len(FER_CLASSES))
        nn.init.kaiming_normal_(head.weight, a=0.25)  # it reads a PReLU output, as the model's own layers
        nn.init.zeros_(head.bias)
        return head.to(self.device)

    def _au_head(self, model: nn.Module, units: int) -> nn.Module:
        """The action units' head: a linear layer from the super feature vector to one logit per unit. Like the
        teacher's, it lives in the trainer and is dropped after training."""
        if not get_model(self.config.model).auxiliary_targets:
            raise ValueError(f"au_weight trains an auxiliary head on TSCNN's super feature vector; model "
                             f"{self.config.model} has none")
        head = nn.Linear(model.dense2[-2].out_features, units)
        nn.init.kaiming_normal_(head.weight, a=0.25)  # it reads a PReLU output, as the model's own layers
        nn.init.zeros_(head.bias)
        return head.to(self.device)

    def teacher_soft_labels(self, data: StreamData, train: np.ndarray) -> np.ndarray:
        """(clips, variants, 7) soft labels of the teacher (``tscnn.teachers``, temperature
        ``DISTILLATION_TEMPERATURE``) for the apex face of each *training* clip in each augmentation variant,
        computed once from the prepared ``ss`` arrays the network itself is fed. Rows outside ``train`` (the
        validation and test subjects) stay zero and are never read: only training batches use them."""
        ss = data.arrays["ss"]
        soft = np.zeros((len(ss), data.variants, len(FER_CLASSES)), np.float32)
        faces = ss[train]  # (train clips, variants, 1, n, n) in [0, 1]
        probabilities = teacher_targets(faces.reshape(-1, *faces.shape[-2:]), DISTILLATION_TEMPERATURE)
        soft[train] = probabilities.reshape(len(train), data.variants, -1)
        return soft

    def _epoch_samples(self, state: _State, data: StreamData,
                       train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clip row, variant) of every sample of one epoch, shuffled."""
        variants = data.variants
        if self.config.augment_mode == "sample":
            rows, chosen = train, state.rng.integers(0, variants, size=len(train))
        else:
            rows, chosen = np.repeat(train, variants), np.tile(np.arange(variants), len(train))
        order = state.rng.permutation(len(rows))
        return rows[order], chosen[order]

    def _train_epoch(self, state: _State, data: StreamData, labels: np.ndarray, train: np.ndarray,
                     weights: torch.Tensor | None, soft: np.ndarray | None = None,
                     action_units: ActionUnitTargets | None = None) -> tuple[float, int, dict[str, float]]:
        """One pass over the epoch's samples. The epoch's order, variants and labels are moved to the device
        once (resident data), and the loss is summed there in float64 (the same sum as adding each
        ``loss.item()`` on the host, without a device synchronisation per batch).

        With a teacher (``soft``, see ``teacher_soft_labels``), the auxiliary head's distillation loss times
        ``teacher_weight`` is added to the cross-entropy; with ``action_units``, the units' head's binary
        cross-entropy (over the batch's clips with known units) times ``au_weight``. The epoch's mean
        cross-entropy is returned apart from the auxiliary losses' means (``teacher_loss``, ``au_loss``)."""
        cfg, model, head, au_head = self.config, state.model, state.teacher_head, state.au_head
        model.train()
        rows, variants = self._epoch_samples(state, data, train)
        all_rows, all_variants = data.index(rows), data.index(variants)
        targets = torch.from_numpy(labels[rows].astype(np.int64)).to(self.device)
        taught = torch.from_numpy(soft[rows, variants]).to(self.device) if head is not None else None
        if au_head is not None:
            units = torch.from_numpy(action_units.targets[rows]).to(self.device)
            known = torch.from_numpy(action_units.known[rows].astype(np.float32)).to(self.device)
        total, seen = torch.zeros((), dtype=torch.float64, device=self.device), 0
        teacher_total = torch.zeros((), dtype=torch.float64, device=self.device)
        au_total, au_seen = (torch.zeros((), dtype=torch.float64, device=self.device) for _ in range(2))
        for b in range(0, len(rows), cfg.batch_size):
            r, v = all_rows[b:b + cfg.batch_size], all_variants[b:b + cfg.batch_size]
            inputs, y = data.batch(model.streams, r, v), targets[b:b + cfg.batch_size]
            mix = self._mixup(state, len(r)) if cfg.mixup else None
            if mix is not None:
                inputs = {s: mix[0] * x + (1.0 - mix[0]) * x[mix[1]] for s, x in inputs.items()}
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                if head is None and au_head is None:
                    logits = model(inputs).float()
                else:
                    logits, vectors = model.forward_with_vectors(inputs)
                    logits = logits.float()
                    head_logits = head(vectors["ss"]).float() if head is not None else None
                    unit_logits = au_head(vectors["fused"]).float() if au_head is not None else None
            loss = F.cross_entropy(logits, y, weight=weights)
            if mix is not None:
                loss = mix[0] * loss + (1.0 - mix[0]) * F.cross_entropy(logits, y[mix[1]], weight=weights)
            objective = loss
            if head is not None:
                teacher = taught[b:b + cfg.batch_size]
                if mix is not None:
                    teacher = mix[0] * teacher + (1.0 - mix[0]) * teacher[mix[1]]
                distilled = distillation_loss(head_logits, teacher)
                objective = objective + cfg.teacher_weight * distilled
                teacher_total += distilled.detach().double() * len(r)
            if au_head is not None:  # masked by weights, not by indexing: no device synchronisation per batch
                shown, mask = units[b:b + cfg.batch_size], known[b:b + cfg.batch_size]
                if mix is not None:
                    shown, mask = mix[0] * shown + (1.0 - mix[0]) * shown[mix[1]], mask * mask[mix[1]]
                per_clip = F.binary_cross_entropy_with_logits(unit_logits, shown, reduction="none").mean(1) * mask
                objective = objective + cfg.au_weight * per_clip.sum() / mask.sum().clamp_min(1.0)
                au_total += per_clip.detach().sum().double()
                au_seen += mask.sum().double()
            state.optimizer.zero_grad(set_to_none=True)
            objective.backward()
            state.optimizer.step()
            total += loss.detach().double() * len(r)
            seen += len(r)
        auxiliary = {"teacher_loss": teacher_total.item() / max(seen, 1)} if head is not None else {}
        if au_head is not None:
            auxiliary["au_loss"] = au_total.item() / max(au_seen.item(), 1.0)
        return total.item() / max(seen, 1), seen, auxiliary

    def _mixup(self, state: _State, size: int) -> tuple[float, torch.Tensor]:
        """Mixup (Zhang et al. 2018): a weight from Beta(alpha, alpha) and a pairing of the batch, drawn from the
        training generator (so a resumed run draws the same); every stream is mixed with the same pairing."""
        lam = float(state.rng.beta(self.config.mixup, self.config.mixup))
        return lam, torch.from_numpy(state.rng.permutation(size)).to(self.device)

    def _evaluate(self, state: _State, record: dict, data: StreamData, labels: np.ndarray,
                  val: np.ndarray, test: np.ndarray | None) -> None:
        if len(val):
            record["val_loss"], record["val_accuracy"] = self.loss_and_accuracy(state.model, data, val, labels)
        if test is not None and len(test):
            record["test_loss"], record["test_accuracy"], proba = self._scored(state.model, data, test, labels)
            if record["test_accuracy"] > state.leaky_accuracy:  # the leaky shadow; ties keep the earlier epoch
                state.leaky_accuracy, state.leaky_epoch, state.leaky_proba = (record["test_accuracy"], record["epoch"],
                                                                              proba)

    def _select(self, state: _State, record: dict) -> None:
        """Keep the best weights so far by the selection score; stop early on stale validation loss."""
        score = self.selection_score(record)
        if score is None:
            return
        if score < state.best_score - 1e-6:
            state.best_score, state.best_state, state.stale = score, copy.deepcopy(state.model.state_dict()), 0
            state.chosen_epoch = record["epoch"]
        else:
            state.stale += 1
            state.stopped = self.config.selection == "val_loss" and state.stale >= self.config.patience

    def _accumulate_average(self, state: _State, epoch: int) -> None:
        """Sum the weights of the last ``average_last`` epochs (floating-point tensors only)."""
        if not self.config.average_last or epoch <= self.config.max_epochs - self.config.average_last:
            return
        current = {k: v.detach().float().clone() for k, v in state.model.state_dict().items() if v.is_floating_point()}
        if state.averaged is None:
            state.averaged = current
        else:
            for k, v in current.items():
                state.averaged[k] += v
        state.averaged_count += 1

    def _finish(self, state: _State, data: StreamData, train: np.ndarray) -> TrainResult:
        cfg, model = self.config, state.model
        if cfg.selection == "fixed" or state.chosen_epoch == 0:
            state.chosen_epoch = len(state.history)
            if state.averaged is not None:
                merged = model.state_dict()
                for k, v in state.averaged.items():
                    merged[k] = (v / state.averaged_count).to(merged[k].dtype)
                model.load_state_dict(merged)
                self._recompute_batchnorm(model, data, train)
        else:
            model.load_state_dict(state.best_state)
        return TrainResult(model, state.history, state.chosen_epoch, state.leaky_epoch, state.leaky_proba)

    def _recompute_batchnorm(self, model: nn.Module, data: StreamData, train: np.ndarray) -> None:
        """Averaged weights need batch-norm statistics of their own: one pass over the training clips."""
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
        model.train()
        with torch.no_grad():
            for start in range(0, len(train), 256):
                model(data.batch(model.streams, data.index(train[start:start + 256]), 0))

    def selection_score(self, record: dict) -> float | None:
        """Lower is better; None when this selection keeps the last epoch."""
        if self.config.selection == "val_loss":
            return record.get("val_loss")
        if self.config.selection == "test_leaky":
            return -record["test_accuracy"] if "test_accuracy" in record else None
        return None

    # -- checkpoints --------------------------------------------------------------------------------
    def _save(self, state: _State, checkpoint: Path) -> None:
        tmp = Path(checkpoint).with_suffix(".tmp")
        torch.save({"model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
                    "scheduler": state.scheduler.state_dict() if state.scheduler else None,
                    "numpy_rng": state.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "history": state.history, "chosen_epoch": state.chosen_epoch, "best_score": state.best_score,
                    "best_state": state.best_state, "stale": state.stale, "stopped": state.stopped,
                    "averaged": state.averaged, "averaged_count": state.averaged_count,
                    "leaky": [state.leaky_accuracy, state.leaky_epoch,
                              None if state.leaky_proba is None else state.leaky_proba.tolist()],
                    "teacher_head": None if state.teacher_head is None else state.teacher_head.state_dict(),
                    "au_head": None if state.au_head is None else state.au_head.state_dict()}, tmp)
        tmp.replace(checkpoint)

    def _restore(self, state: _State, checkpoint: Path) -> None:
        saved = load_weights(checkpoint, "training checkpoint", ("model", "optimizer"), map_location=self.device)
        state.model.load_state_dict(saved["model"])
        state.optimizer.load_state_dict(saved["optimizer"])
        if state.scheduler is not None and saved.get("scheduler"):
            state.scheduler.load_state_dict(saved["scheduler"])
        state.rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        state.history, state.chosen_epoch = saved["history"], saved["chosen_epoch"]
        state.best_score, state.best_state, state.stale = saved["best_score"], saved["best_state"], saved["stale"]
        state.stopped = saved.get("stopped", False)
        state.averaged, state.averaged_count = saved.get("averaged"), saved.get("averaged_count", 0)
        accuracy, epoch, proba = saved.get("leaky", [-1.0, 0, None])
        state.leaky_accuracy, state.leaky_epoch = accuracy, epoch
        state.leaky_proba = None if proba is None else np.asarray(proba, np.float32)
        if state.teacher_head is not None:
            state.teacher_head.load_state_dict(saved["teacher_head"])
        if state.au_head is not None:
            state.au_head.load_state_dict(saved["au_head"])
