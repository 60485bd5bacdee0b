"""How hard is the synthetic database? LOSO UF1 of a linear classifier on appearance vs motion.

Logistic regression (C = 0.01, balanced class weights, standardised features fitted on the training
subjects of each fold, one setting, not tuned) on: apex pixels (what SS sees), onset->apex flow
(X1, Y1) and all four DT maps, each 48x48 from the project's own preparation. Predictions pooled
over folds. Motion should carry the label far better than appearance, and neither be near-perfect.

Usage: python benchmarks/synthetic_difficulty.py [--subjects 12] [--seed 0] [--out benchmarks/synthetic_difficulty.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tscnn.config import Config
from tscnn.datasets import read_casme2
from tscnn.metrics import pooled_metrics
from tscnn.models.linear import linear_loso
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.synth import SynthSettings, write_database
from tscnn.synth.database import CASME2_CODING


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None, help="database folder (generated when absent)")
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/synthetic_difficulty.json"))
    args = parser.parse_args()
    data = args.data or Path(f"data/synthetic-casme2-s{args.subjects}-seed{args.seed}")
    if not (data / CASME2_CODING).exists():
        start = time.perf_counter()
        write_database(data, SynthSettings(subjects=args.subjects, seed=args.seed))
        print(f"generated {data} in {time.perf_counter() - start:.1f} s")
    db = read_casme2(data)
    prepared = prepare(db.table, PrepSettings.from_config(Config()), args.cache)
    labels, subjects = db.table.label.to_numpy(), db.table.subject.to_numpy()
    n = len(labels)
    features = {
        "apex pixels (SS input)": prepared.arrays["ss"][:, 0].reshape(n, -1),
        "onset->apex flow X1,Y1": prepared.arrays["dt"][:, 0, :2].reshape(n, -1),
        "all four DT maps": prepared.arrays["dt"][:, 0].reshape(n, -1),
    }
    results = {"database": str(data), "clips": n, "subjects": int(len(set(subjects))), "classes": list(db.classes)}
    print(f"{'features':<26}{'UF1':>8}{'UAR':>8}{'acc':>8}")
    for name, x in features.items():
        pred = linear_loso(x.astype(np.float32), db.table)
        m = pooled_metrics(pred.label, pred.pred, len(db.classes))
        results[name] = {k: m[k] for k in ("uf1", "uar", "accuracy")}
        print(f"{name:<26}{m['uf1']:>8.3f}{m['uar']:>8.3f}{m['accuracy']:>8.3f}")
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
