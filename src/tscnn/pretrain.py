"""Pre-training of the static stream (and the shared trunk) on FER2013, as the paper does.

TSCNN with the static stream only is trained on FER2013's Training rows (48x48 grey faces, the
SS input format) with the project's recipe; early stopping watches PublicTest (PrivateTest is
never read). The input convolution of the static stream and the trunk are saved; the main job
starts from them with ``--pretrained`` (the other streams' input convolutions and the dense
layers start from random weights, since the classes differ). Without FER2013 on disk the same
path runs on a synthetic macro-expression set (``tscnn.synth.macro``). The weights file is written
and read by ``tscnn.checkpoints`` (``save_pretrained``, ``load_pretrained``).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from tscnn.checkpoints import save_pretrained
from tscnn.config import Config
from tscnn.datasets.fer2013 import FaceImages
from tscnn.results_folder import atomic_write_text, writes_results_folder
from tscnn.train import Trainer

WEIGHTS = "pretrained.pt"


@writes_results_folder()
def pretrain(data: FaceImages, config: Config, out: str | Path, progress: bool = True) -> dict:
    """Train the SS network on ``data`` (Training rows; PublicTest for early stopping) and save its
    static-stream input convolution and trunk to ``out/pretrained.pt``. Resumes an interrupted run."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    config = replace(config, streams=("ss",), share_trunk=True, pretrained="", augment=False, au_weight=0.0)
    train, val = data.split("Training"), data.split("PublicTest")
    if not len(train) or not len(val):
        raise ValueError(f"{data.source}: need Training and PublicTest rows, found {len(train)} and {len(val)}")
    arrays = {"ss": (data.images[:, None, None].astype(np.float32) / 255.0).astype(np.float16)}
    start = time.perf_counter()
    trainer = Trainer(config, len(data.classes), seed=config.seeds[0])
    result = trainer.fit(arrays, data.labels, train, val, desc="pretrain", progress=progress,
                         checkpoint=out / "checkpoint.pt")
    proba = trainer.predict_proba(result.model, arrays, val)
    summary = {
        "source": data.source, "classes": list(data.classes), "train_rows": int(len(train)),
        "val_rows": int(len(val)), "chosen_epoch": result.chosen_epoch,
        "val_accuracy": float((proba.argmax(1) == data.labels[val]).mean()),
        "chance_accuracy": float(np.bincount(data.labels[val]).max() / len(val)),
        "seconds": time.perf_counter() - start, "config": config.to_dict(), "history": result.history,
    }
    save_pretrained(result.model, out / WEIGHTS, data.source, summary["val_accuracy"])
    atomic_write_text(out / "pretrain.json", json.dumps(summary, indent=2, default=str))
    (out / "checkpoint.pt").unlink(missing_ok=True)
    return summary

