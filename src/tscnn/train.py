"""The training recipe of the paper (section 3.2), for one fold.

SGD with Nesterov momentum (0.9), learning rate 1e-3, weight decay 1e-5, mini-batch 128, up to 200
epochs, cross-entropy loss, dropout on dense layers (in the model). One epoch is one pass over the
x10-augmented training set (every clip in all its variants, shuffled), as the paper expands its
data ten-fold. Early stopping watches the loss of validation *subjects* drawn from the training
subjects; the weights of the best validation epoch are kept. Validation and test use the original
(un-augmented) variant.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from tscnn.config import Config
from tscnn.model import TSCNN


@dataclass
class TrainResult:
    """The trained model, its per-epoch history and the epoch whose weights it holds."""

    model: TSCNN
    history: list[dict] = field(default_factory=list)
    chosen_epoch: int = 0


def bf16_supported() -> bool:
    """Whether this CPU runs bf16 natively (else autocast would be slower than fp32)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when available, else CPU; results never depend on having a GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def build_model(config: Config, num_classes: int, channels: dict[str, int] | None = None) -> TSCNN:
    """The network of ``config``; ``channels`` overrides a stream's input channels (e.g. 3 flow maps).
    With ``config.pretrained`` the static stream's input convolution and the shared trunk start from
    ``tscnn pretrain`` weights."""
    model = TSCNN(num_classes, config.streams, config.blocks, config.share_trunk, config.dense1, config.dense2,
                  config.dropout, channels=channels)
    if config.pretrained:
        from tscnn.pretrain import load_pretrained

        load_pretrained(model, config.pretrained)
    return model


def to_batch(arrays: dict[str, np.ndarray], index: np.ndarray, streams: tuple[str, ...],
             channels_last: bool, device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Float32 tensors of rows ``index`` of flattened (samples, C, n, n) stream arrays."""
    batch = {}
    for s in streams:
        tensor = torch.from_numpy(arrays[s][index].astype(np.float32))
        if device is not None:
            tensor = tensor.to(device, non_blocking=True)
        batch[s] = tensor.contiguous(memory_format=torch.channels_last) if channels_last else tensor
    return batch


def flatten_variants(arrays: dict[str, np.ndarray], rows: np.ndarray, variants: bool) -> dict[str, np.ndarray]:
    """(clips, variants, C, n, n) -> (samples, C, n, n) for the given clip rows: all variants, or the original."""
    if variants:
        return {s: a[rows].reshape(-1, *a.shape[2:]) for s, a in arrays.items()}
    return {s: a[rows, 0] for s, a in arrays.items()}


class Trainer:
    """Trains one model on given rows of prepared arrays; deterministic for a seed."""

    def __init__(self, config: Config, num_classes: int, seed: int) -> None:
        self.config = config
        self.num_classes = num_classes
        self.seed = seed
        self.device = resolve_device(config.device)
        self.autocast = config.bf16 and (self.device.type == "cuda" or bf16_supported())

    def predict_proba(self, model: TSCNN, arrays: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """Softmax probabilities of the original variant of ``rows``."""
        data = flatten_variants(arrays, rows, variants=False)
        model.eval()
        out = []
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            for start in range(0, len(rows), 256):
                index = np.arange(start, min(start + 256, len(rows)))
                logits = model(to_batch(data, index, model.streams, self.config.channels_last, self.device))
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)

    def loss_and_accuracy(self, model: TSCNN, arrays: dict[str, np.ndarray], rows: np.ndarray,
                          labels: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the original variant of ``rows``."""
        proba = self.predict_proba(model, arrays, rows)
        y = labels[rows]
        loss = float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)).mean())
        return loss, float((proba.argmax(1) == y).mean())

    def fit(self, arrays: dict[str, np.ndarray], labels: np.ndarray, train: np.ndarray, val: np.ndarray,
            test: np.ndarray | None = None, desc: str = "train", progress: bool = True,
            checkpoint: Path | None = None) -> TrainResult:
        """Train on ``train`` rows (all variants); choose the epoch by ``config.selection``.

        ``test`` is looked at only by the explicitly leaky selection (``test_leaky``). With
        ``checkpoint``, the whole training state is saved there after every epoch and a run that
        finds one resumes from it (long runs such as pre-training lose at most one epoch).
        """
        cfg = self.config
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        model = build_model(cfg, self.num_classes, {s: a.shape[2] for s, a in arrays.items()}).to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                    weight_decay=cfg.weight_decay)
        data = flatten_variants(arrays, train, variants=True)
        variants = next(iter(arrays.values())).shape[1]
        targets = torch.from_numpy(np.repeat(labels[train], variants)).long().to(self.device)
        result = TrainResult(model)
        best_score, best_state, stale = float("inf"), copy.deepcopy(model.state_dict()), 0
        first_epoch = 1
        if checkpoint is not None and Path(checkpoint).exists():
            saved = torch.load(checkpoint, map_location=self.device, weights_only=False)
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            rng.bit_generator.state = saved["numpy_rng"]
            torch.set_rng_state(saved["torch_rng"])
            result.history, result.chosen_epoch = saved["history"], saved["chosen_epoch"]
            best_score, best_state, stale = saved["best_score"], saved["best_state"], saved["stale"]
            first_epoch = len(result.history) + 1
            if saved.get("stopped"):
                first_epoch = cfg.max_epochs + 1
        bar = tqdm(range(first_epoch, cfg.max_epochs + 1), desc=desc, unit="epoch", leave=False,
                   disable=not progress)
        for epoch in bar:
            start = time.perf_counter()
            model.train()
            order = rng.permutation(len(targets))
            total, seen = 0.0, 0
            for b in range(0, len(order), cfg.batch_size):
                index = order[b:b + cfg.batch_size]
                batch = to_batch(data, index, model.streams, cfg.channels_last, self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                    logits = model(batch)
                loss = F.cross_entropy(logits.float(), targets[torch.from_numpy(index).to(self.device)])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
                seen += len(index)
            record = {"epoch": epoch, "train_loss": total / seen, "seconds": time.perf_counter() - start,
                      "samples": seen}
            if len(val):
                record["val_loss"], record["val_accuracy"] = self.loss_and_accuracy(model, arrays, val, labels)
            if cfg.selection == "test_leaky" and test is not None:
                record["test_loss"], record["test_accuracy"] = self.loss_and_accuracy(model, arrays, test, labels)
            result.history.append(record)
            bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k.endswith(("loss", "accuracy"))})
            score = self.selection_score(record)
            stop = False
            if score is not None:
                if score < best_score - 1e-6:
                    best_score, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
                    result.chosen_epoch = epoch
                else:
                    stale += 1
                    stop = cfg.selection == "val_loss" and stale >= cfg.patience
            if checkpoint is not None:
                tmp = Path(checkpoint).with_suffix(".tmp")
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                            "history": result.history, "chosen_epoch": result.chosen_epoch, "best_score": best_score,
                            "best_state": best_state, "stale": stale, "stopped": stop}, tmp)
                tmp.replace(checkpoint)
            if stop:
                break
        if cfg.selection == "fixed" or result.chosen_epoch == 0:
            result.chosen_epoch = len(result.history)
        else:
            model.load_state_dict(best_state)
        return result

    def selection_score(self, record: dict) -> float | None:
        """Lower is better; None when this selection keeps the last epoch."""
        if self.config.selection == "val_loss":
            return record.get("val_loss")
        if self.config.selection == "test_leaky":
            return -record["test_accuracy"] if "test_accuracy" in record else None
        return None
