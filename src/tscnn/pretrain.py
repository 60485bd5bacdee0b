"""Pre-training of TSCNN's input convolutions and shared trunk, before the main job trains on a database.

Two sources, one training path (``pretrain``):

- **face images** (``face_image_set``): the static stream on FER2013's Training rows (48x48 grey faces,
  the SS input format), as the paper does; early stopping watches PublicTest (PrivateTest is never read).
  Without FER2013 on disk the same path runs on a synthetic macro-expression set (``tscnn.synth.macro``).
- **synthetic micro-expressions** (``synthetic_micro_set``): the dynamic-temporal stream on many subjects of
  the project's own generator, prepared exactly as real key frames are (face crop, TV-L1 flow, x10
  augmentation); the last fifth of the subjects is held out. Its data seeds start at
  ``PRETRAIN_SEED_BASE``, so no face or clip of it is one the project evaluates on. ``dt_format``
  "flow-folder" gives the DT stream as a flow folder's u, v, strain (3 channels, the composite's format:
  the database exported with ``write_flow_folder`` and read back) instead of the frames' 4 flow maps.

The network trained on the set's streams saves each stream's input convolution and the trunk; the main job
starts from them with ``--pretrained`` (the other input convolutions and the dense layers start from random
weights, since the classes differ). The file is written and read by ``tscnn.checkpoints``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from tscnn.checkpoints import SYNTHETIC_MICRO, read_pretrained, save_pretrained
from tscnn.config import Config, from_preset
from tscnn.datasets import load_database, read_flowfolder, write_flow_folder
from tscnn.datasets.fer2013 import FaceImages
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.results_folder import atomic_write_text, writes_results_folder
from tscnn.synth import SynthSettings, write_database
from tscnn.synth.database import SETTINGS_FILE
from tscnn.train import Trainer

WEIGHTS = "pretrained.pt"
PRETRAIN_SEED_BASE = 1000
"""Synthetic pre-training data take the seed ``PRETRAIN_SEED_BASE + seed``: apart from every seed a synthetic
evaluation uses (the demo's 0, the preset choice's 1, the tests' 3, the synthetic composite's 7), whose faces
and clips would otherwise recur in the pre-training set."""
DT_FORMATS = ("frames", "flow-folder")
"""How a synthetic set gives the DT stream: the frames' 4 flow maps, or a flow folder's u, v, strain."""
SYNTHETIC_MICRO_SUBJECTS = 200
SYNTHETIC_MICRO_RECIPE = "tscnn-plus"
SYNTHETIC_MICRO_THREADS = 1
"""The named pre-training trains on one thread, whatever the run's ``--threads``: the order of floating-point
sums changes with the thread count, and 30 epochs carry that to visibly different weights, so one thread makes
one file per machine and arithmetic (bf16 or fp32). It costs little: 97 s against 101 s on two threads."""
_SHAPE_FIELDS = ("size", "blocks", "flow", "work_size", "centre_flow", "scale_flow")
"""The run's settings the default pre-training takes over, so that its weights fit the run's network and inputs."""


@dataclass
class PretrainSet:
    """What pre-training reads: stream arrays (clips, variants, C, n, n) in [0, 1], labels, the rows it trains
    on and the rows that watch it (other subjects or identities), the class names and where it came from."""

    arrays: dict[str, np.ndarray]
    labels: np.ndarray
    train: np.ndarray
    val: np.ndarray
    classes: tuple[str, ...]
    source: str


def face_image_set(data: FaceImages) -> PretrainSet:
    """FER2013 (or the synthetic macro set) as the static stream: Training rows train, PublicTest watches."""
    train, val = data.split("Training"), data.split("PublicTest")
    if not len(train) or not len(val):
        raise ValueError(f"{data.source}: need Training and PublicTest rows, found {len(train)} and {len(val)}")
    arrays = {"ss": (data.images[:, None, None].astype(np.float32) / 255.0).astype(np.float16)}
    return PretrainSet(arrays, data.labels, train, val, tuple(data.classes), data.source)


def synthetic_micro_set(subjects: int, seed: int, config: Config, data_dir: str | Path,
                        cache_dir: str | Path | None = None, streams: tuple[str, ...] = ("dt",),
                        dt_format: str = "frames", val_fraction: float = 0.2, progress: bool = True,
                        jobs: int = 1) -> PretrainSet:
    """A synthetic CASME II-layout database of ``subjects`` subjects (data seed ``PRETRAIN_SEED_BASE + seed``,
    the paper's 5 classes), written to ``data_dir`` once and reused, prepared with ``config``'s preparation
    settings into ``streams``; the last ``val_fraction`` of subjects (at least one) is held out. With
    ``dt_format`` "flow-folder" the only stream is DT as u, v, strain, from the database's flow folder
    (written once beside ``data_dir``). ``jobs`` worker processes prepare the clips not yet cached."""
    if dt_format not in DT_FORMATS:
        raise ValueError(f"unknown DT format {dt_format!r}; expected one of {', '.join(DT_FORMATS)}")
    if dt_format == "flow-folder" and tuple(streams) != ("dt",):
        raise ValueError(f"a flow folder gives the DT stream only, not {', '.join(streams)}")
    settings = SynthSettings(subjects=subjects, seed=PRETRAIN_SEED_BASE + seed, layout="casme2")
    data_dir = Path(data_dir)
    stamp = data_dir / SETTINGS_FILE
    wanted = json.loads(json.dumps(asdict(settings)))
    if stamp.is_file():
        found = json.loads(stamp.read_text())
        if found != wanted:
            raise ValueError(f"{data_dir} holds a synthetic database of other settings (subjects "
                             f"{found.get('subjects')}, seed {found.get('seed')}): use another --data folder")
    else:
        write_database(data_dir, settings)
    db = load_database("casme2", str(data_dir), classes="5class")
    prep = PrepSettings.from_config(config)
    if dt_format == "flow-folder":
        flows = data_dir.with_name(f"{data_dir.name}-flow{config.size}")
        if not (flows / "index.csv").is_file():
            write_flow_folder(db, flows, size=config.size, settings=prep, cache_dir=cache_dir, progress=progress,
                              jobs=jobs)
        db = read_flowfolder(flows, classes="all")  # its labels: the classes present, in the database's order
        prepared = prepare(db.table, prep, cache_dir, progress=progress, streams=("uvs",), jobs=jobs)
        prepared.arrays = {"dt": prepared.arrays["uvs"]}
    else:
        prepared = prepare(db.table, prep, cache_dir, progress=progress, streams=streams, jobs=jobs)
    table = prepared.table
    names = sorted(table["subject"].unique(), key=lambda s: (len(str(s)), str(s)))
    held_out = set(names[len(names) - max(1, round(len(names) * val_fraction)):])
    is_val = table["subject"].isin(held_out).to_numpy()
    source = (f"synthetic micro-expressions ({subjects} subjects, data seed {settings.seed}, "
              f"{len(table)} clips, casme2 5class, DT from {dt_format})")
    return PretrainSet(prepared.arrays, table["label"].to_numpy(), np.flatnonzero(~is_val), np.flatnonzero(is_val),
                       tuple(db.classes), source)


@writes_results_folder()
def pretrain(data: PretrainSet, config: Config, out: str | Path, progress: bool = True) -> dict:
    """Train TSCNN on ``data``'s streams (a shared trunk; ``data.val`` for early stopping where the recipe
    stops early) with ``config``'s recipe, and save each stream's input convolution and the trunk to
    ``out/pretrained.pt``. Resumes an interrupted run."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    variants = next(iter(data.arrays.values())).shape[1]
    config = replace(config, streams=tuple(data.arrays), share_trunk=True, pretrained="", pretrained_dense=False,
                     augment=variants > 1, au_weight=0.0, teacher="", fuse_linear=False, tta_flip=False)
    start = time.perf_counter()
    trainer = Trainer(config, len(data.classes), seed=config.seeds[0])
    result = trainer.fit(data.arrays, data.labels, data.train, data.val, desc="pretrain", progress=progress,
                         checkpoint=out / "checkpoint.pt")
    proba = trainer.predict_proba(result.model, data.arrays, data.val)
    summary = {
        "source": data.source, "streams": list(config.streams), "classes": list(data.classes),
        "train_rows": int(len(data.train)), "val_rows": int(len(data.val)), "chosen_epoch": result.chosen_epoch,
        "val_accuracy": float((proba.argmax(1) == data.labels[data.val]).mean()),
        "chance_accuracy": float(np.bincount(data.labels[data.val]).max() / len(data.val)),
        "seconds": time.perf_counter() - start, "config": config.to_dict(), "history": result.history,
    }
    save_pretrained(result.model, out / WEIGHTS, data.source, summary["val_accuracy"])
    atomic_write_text(out / "pretrain.json", json.dumps(summary, indent=2, default=str))
    (out / "checkpoint.pt").unlink(missing_ok=True)
    return summary


def synthetic_micro_weights(config: Config, cache_dir: str | Path | None, jobs: int = 1,
                            progress: bool = True) -> Path:
    """The weights file of ``tscnn pretrain --source synthetic-micro`` with its defaults (200 subjects, data seed
    1000, the DT stream, the ``tscnn-plus`` recipe, training seed 0) in the DT format of ``config``'s database
    (a flow folder's u, v, strain, else the frames' flow maps) and at its input settings, made once under
    ``cache_dir`` and reused by every run that needs the same file. The first time prepares about 1,900
    synthetic clips (the longest part; ``jobs`` worker processes) and trains for 30 epochs."""
    if cache_dir is None:
        raise ValueError(f"--pretrained {SYNTHETIC_MICRO} makes its weights once in the cache: give --cache DIR")
    dt_format = "flow-folder" if config.dataset == "flowfolder" else "frames"
    shape = {name: getattr(config, name) for name in _SHAPE_FIELDS}
    recipe = from_preset(SYNTHETIC_MICRO_RECIPE, seeds=(0,), threads=SYNTHETIC_MICRO_THREADS, device=config.device,
                         **shape)
    digest = hashlib.sha1(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:10]
    subjects, data_seed = SYNTHETIC_MICRO_SUBJECTS, PRETRAIN_SEED_BASE
    # Files made before Dense 1 was saved hold none: the runs that read it take a folder of their own, made anew.
    dense = "-dense1" if config.pretrained_dense else ""
    out = Path(cache_dir) / "pretrained" / f"{SYNTHETIC_MICRO}-{dt_format}-s{data_seed}-n{subjects}-{digest}{dense}"
    if not (out / WEIGHTS).is_file():
        data = synthetic_micro_set(subjects, 0, recipe, Path(cache_dir) / f"{SYNTHETIC_MICRO}-s{data_seed}-n{subjects}",
                                   cache_dir, dt_format=dt_format, progress=progress, jobs=jobs)
        run_threads = torch.get_num_threads()
        try:
            pretrain(data, recipe, out, progress=progress)
        finally:
            torch.set_num_threads(run_threads)  # the run goes on with its own thread count
    return out / WEIGHTS


def with_pretrained_file(config: Config, cache_dir: str | Path | None, jobs: int = 1,
                         progress: bool = True) -> Config:
    """``config`` with ``pretrained`` a file: ``synthetic-micro`` becomes the file ``synthetic_micro_weights`` makes,
    checked to fit the network (the results folder records that path and the file's SHA-1); any other config is
    returned as it is."""
    if config.pretrained != SYNTHETIC_MICRO:
        return config
    resolved = replace(config, pretrained=str(synthetic_micro_weights(config, cache_dir, jobs, progress)))
    read_pretrained(resolved.pretrained, resolved.streams, resolved.share_trunk, resolved.centre_flow,
                    resolved.scale_flow, resolved.pretrained_dense)
    return resolved
