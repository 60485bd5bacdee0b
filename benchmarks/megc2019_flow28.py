"""Real-data benchmark: TSCNN's dynamic-temporal (DT) stream, leave-one-subject-out on real flow.

Data: ``../shared/real/megc2019-flow28`` (real onset->apex TV-L1 flow of the CASME II and SMIC-HS
parts of the MEGC2019 composite: 309 clips, 40 subjects, 3 classes; 28x28 PNG, R = u, G = v,
B = optical strain, each channel min-max normalised per image). It is licensed data: it is read
where it lies and nothing derived from it is kept except the metrics.

Protocol: the project's own LOSO folds (one per subject, 40), its Trainer and its metrics on
predictions pooled over all folds, for the whole set and for the CASME II and SMIC parts, repeated
over seeds (mean +- std). The network is TSCNN with the DT stream only, its input convolution
taking the 3 maps, resized to the paper's 48x48. Hyperparameters are the project's defaults,
never tuned here:

* ``--setting paper`` (default): the paper's recipe (SGD-Nesterov, lr 1e-3, batch 128, up to 200
  epochs, early stopping with patience 10 on the loss of 20% held-out *training* subjects) and the
  x10 augmentation. Hours on 2 CPU cores; minutes on a GPU (``--device auto``).
* ``--setting demo``: the project's ``demo`` preset (batch 32, lr 1e-2, at most 4 epochs, patience 2)
  with the same x10 augmentation: about 13 minutes per seed on 2 CPU cores.
* ``--setting quick``: the ``demo`` preset on the original maps only (no x10 augmentation): the
  setting that fits CI time on 2 cores with all 5 seeds.

Augmentation of normalised maps: a horizontal flip mirrors the maps and turns u into 1 - u (the
exact min-max-normalised image of -u); rotations move the maps but cannot turn the vectors, since
u and v were normalised separately.

``--model linear`` runs the linear floor instead (``tscnn.baselines.linear_loso`` on the native
28x28x3 pixels, fitted per fold on the training subjects; deterministic, so one run), which checks
this script's protocol and metrics against the floor quoted in the data folder's README.

Usage: python benchmarks/megc2019_flow28.py [--model tscnn-dt|linear] [--setting paper|demo|quick]
       [--seeds 0 1 2 3 4] [--device auto] [--jobs N] [--data DIR] [--out benchmarks/megc2019_flow28-<setting>.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from tscnn.baselines import linear_loso
from tscnn.config import Config, from_preset
from tscnn.datasets.flowfolder import read_flowfolder
from tscnn.metrics import evaluate_predictions, over_seeds
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.protocols import loso_folds
from tscnn.train import Trainer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "real" / "megc2019-flow28"
CLASSES = ("negative", "positive", "surprise")
# Published / measured reference points (pooled UF1 / UAR) from the data folder's README.
REFERENCES = [
    ("STSTNet, full 442-clip composite (published)", 0.735, 0.761),
    ("STSTNet, leak-free re-run, fixed epochs (F1 only)", 0.713, None),
    ("Off-ApexNet, full composite (published)", 0.720, 0.710),
    ("STSTNet, CASME II part (published)", 0.838, 0.869),
    ("STSTNet, SMIC part (published)", 0.680, 0.701),
    ("linear floor on this folder: whole", 0.763, 0.771),
    ("linear floor on this folder: CASME II part", 0.856, 0.869),
    ("linear floor on this folder: SMIC part", 0.682, 0.687),
]


def load_flow_maps(data: Path, size: int = 48) -> tuple[pd.DataFrame, np.ndarray]:
    """The clip table and (clips, variants, 3, size, size) float16 maps (u, v, strain in 0..1), read by
    the library's flow-folder reader (``tscnn.datasets.flowfolder``) and ``prepare`` (no cache)."""
    table = read_flowfolder(data).table
    return table, prepare(table, PrepSettings(size=size), progress=False, streams=("uvs",)).arrays["uvs"]


def run_seed(config: Config, table: pd.DataFrame, arrays: np.ndarray, seed: int) -> pd.DataFrame:
    """LOSO over all subjects for one seed; pooled predictions."""
    torch.set_num_threads(config.threads or torch.get_num_threads())
    labels = table["label"].to_numpy()
    rows = []
    for index, fold in enumerate(loso_folds(table, config.val_fraction, seed)):
        trainer = Trainer(config, len(CLASSES), seed=seed * 1000 + index)
        result = trainer.fit({"dt": arrays}, labels, fold.train, fold.val, desc=fold.test_subject, progress=False)
        pred = trainer.predict_proba(result.model, {"dt": arrays}, fold.test).argmax(1)
        for r, p in zip(fold.test, pred, strict=True):
            rows.append({"seed": seed, "dataset": table.dataset.iloc[r], "subject": table.subject.iloc[r],
                         "clip": table["clip"].iloc[r], "label": int(labels[r]), "pred": int(p),
                         "epoch": result.chosen_epoch})
    return pd.DataFrame(rows)


def summarise(predictions: pd.DataFrame) -> dict:
    per_seed = {int(s): evaluate_predictions(p, len(CLASSES)) for s, p in predictions.groupby("seed")}
    summary = {name: over_seeds([m if name == "whole" else m["per_dataset"][name] for m in per_seed.values()])
               for name in ("whole", "casme2", "smic")}
    return {"per_seed": per_seed, "mean_std_over_seeds": summary}


def print_table(summary: dict, setting: str, seeds: list[int]) -> None:
    print(f"\nLOSO (40 subjects), {setting}, seeds {seeds}; pooled over folds")
    print(f"{'':<52}{'UF1':>16}{'UAR':>16}")
    for name, label in (("whole", "this run: whole (309 clips)"), ("casme2", "this run: CASME II part (145)"),
                        ("smic", "this run: SMIC part (164)")):
        m = summary[name]
        print(f"{label:<52}{m['uf1']['mean']:>9.3f} +- {m['uf1']['std']:.3f}"
              f"{m['uar']['mean']:>9.3f} +- {m['uar']['std']:.3f}")
    print("reference points:")
    for label, uf1, uar in REFERENCES:
        uar_text = "-" if uar is None else f"{uar:.3f}"
        print(f"  {label:<50}{uf1:>16.3f}{uar_text:>16}")


def run_linear_floor(data: Path, out: Path) -> int:
    """The linear floor on the native pixels, in this script's protocol."""
    start = time.perf_counter()
    table = pd.read_csv(data / "index.csv")
    pixels = np.stack([cv2.imread(str(data / f), cv2.IMREAD_COLOR).reshape(-1) for f in table.flow]).astype(np.float32)
    predictions = linear_loso(pixels, table).assign(seed=0)
    summary = summarise(predictions)
    out.write_text(json.dumps({"model": "linear", "seconds": time.perf_counter() - start, **summary}, indent=2,
                              default=str))
    print_table(summary["mean_std_over_seeds"], "linear floor (C = 0.01, balanced)", [0])
    print(f"{time.perf_counter() - start:.0f} s; wrote {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", choices=["tscnn-dt", "linear"], default="tscnn-dt")
    parser.add_argument("--setting", choices=["paper", "demo", "quick"], default="paper")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0 = default)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (args.data / "index.csv").is_file():
        print(f"megc2019-flow28 benchmark: no data at {args.data} (expects ../shared/real/megc2019-flow28 beside "
              "the repository, or --data DIR); nothing was run.")
        return 0
    if args.model == "linear":
        return run_linear_floor(args.data, args.out or Path("benchmarks/megc2019_flow28-linear.json"))
    preset = "demo" if args.setting == "quick" else args.setting
    config = replace(from_preset(preset, dataset="megc2019-flow28", classes="3class", streams=("dt",)),
                     device=args.device, threads=args.threads, seeds=tuple(args.seeds),
                     augment=args.setting != "quick")
    start = time.perf_counter()
    table, arrays = load_flow_maps(args.data, config.size)
    if not config.augment:
        arrays = np.ascontiguousarray(arrays[:, :1])
    print(f"read {len(table)} clips, {table.subject.nunique()} subjects from {args.data} "
          f"({time.perf_counter() - start:.1f} s); device {args.device}, jobs {args.jobs}")
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(run_seed, [config] * len(args.seeds), [table] * len(args.seeds),
                                  [arrays] * len(args.seeds), args.seeds))
    else:
        parts = []
        for seed in args.seeds:
            t = time.perf_counter()
            parts.append(run_seed(config, table, arrays, seed))
            print(f"seed {seed}: {time.perf_counter() - t:.0f} s", flush=True)
    predictions = pd.concat(parts, ignore_index=True)
    summary = summarise(predictions)
    seconds = time.perf_counter() - start
    epochs = predictions.groupby(["seed", "subject"]).epoch.first()
    out = args.out or Path(f"benchmarks/megc2019_flow28-{args.setting}.json")
    out.write_text(json.dumps({
        "setting": args.setting, "config": config.to_dict(), "device": args.device,
        "torch": torch.__version__, "seconds": seconds, "clips": len(table),
        "subjects": int(table.subject.nunique()), "chosen_epochs": epochs.describe().to_dict(),
        "references": REFERENCES, **summary,
    }, indent=2, default=str))
    print_table(summary["mean_std_over_seeds"], args.setting, args.seeds)
    print(f"chosen epochs per fold: median {epochs.median():.0f} (min {epochs.min()}, max {epochs.max()}); "
          f"{seconds:.0f} s in all; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
