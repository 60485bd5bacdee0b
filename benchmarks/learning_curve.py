"""Learning curve: how each model's honest LOSO figure grows with the number of training subjects.

Whether a network that does not beat the linear floor on a few hundred clips is held back by the
data or by itself is a question of slopes: if its UF1 rises faster than the floor's as training
subjects are added, more data would put it ahead; if not, it would not. Each point is an ordinary
LOSO run (``tscnn run`` with ``--train-fraction F``): every fold learns from a random share F of its
training subjects, drawn per seed and fold and the same for every model (``tscnn.protocols.training_pool``),
and is tested on its held-out subject as usual; predictions are pooled over the folds. Nothing is
chosen on a test subject. The rows and their recipes are those of ``tscnn bench`` (``tscnn.bench.ROWS``).

Usage: python benchmarks/learning_curve.py [--synthetic | --data DIR] [--rows tscnn-plus linear]
       [--fractions 0.25 0.5 1] [--seeds 0 1 2] [--out results/learning-curve-<data>]
       [--json benchmarks/learning_curve-<data>.json] [--threads N] [--jobs N]

Prints one table (rows x fractions: UF1 and UAR, mean +- std over seeds, and the mean number of
training subjects per fold) and writes it as JSON, each point with its seeds and machine. Resumable, as
every run; points already in the JSON (other rows or shares) are kept, and a JSON made from other data is
refused.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from flow_benchmark import REAL_DATA  # this folder's script: the default data

from tscnn.bench import ROWS, flow_folder, row_config, stored_folds
from tscnn.datasets import read_flowfolder
from tscnn.run_facts import cpu_name
from tscnn.runner import run_experiment


def folder_name(row: str, fraction: float) -> str:
    return row if fraction >= 1 else f"{row}-train{fraction:g}"


def training_subjects_per_fold(folds: list[dict]) -> float:
    """Mean number of subjects a fold learned from (training and validation) (NaN for folds stored before
    they named their training subjects)."""
    if not folds or any("train_subjects" not in f for f in folds):
        return float("nan")
    return float(np.mean([len(f["train_subjects"]) + len(f["val_subjects"]) for f in folds]))


def cell(stats: dict) -> str:
    return f"{stats['mean']:.3f} +- {stats['std']:.3f}"


def markdown(points: dict, fractions: list[float]) -> str:
    head = ["row", *[f"{f:g} of the subjects: UF1 / UAR (subjects per fold)" for f in fractions]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, by_fraction in points.items():
        cells = []
        for f in fractions:
            p = by_fraction.get(f"{f:g}")
            cells.append(f"{cell(p['uf1'])} / {cell(p['uar'])} ({p['subjects_per_fold']:.1f})" if p else "-")
        lines.append("| " + " | ".join([row, *cells]) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a flow folder (default: the real megc2019-flow28 beside the repo)")
    parser.add_argument("--synthetic", action="store_true", help="the synthetic MEGC2019-layout composite instead")
    parser.add_argument("--rows", nargs="+", default=["tscnn-plus", "linear"], choices=list(ROWS))
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--jobs", type=int, default=1, help="folds trained at once in worker processes")
    parser.add_argument("--out", type=Path, help="results folders (default: results/learning-curve-<data>)")
    parser.add_argument("--json", type=Path, help="summary (default: benchmarks/learning_curve-<data>.json)")
    args = parser.parse_args()
    found = flow_folder(args.synthetic, args.data or REAL_DATA, "learning curve")
    if found is None:
        return 0
    data, tag = found
    out = args.out or Path(f"results/learning-curve-{tag}")
    summary_path = args.json or Path(f"benchmarks/learning_curve-{tag}.json")
    db = read_flowfolder(data)
    print(f"{data}: {len(db.table)} clips, {db.table.subject.nunique()} subjects")
    fractions = sorted(set(args.fractions))
    previous = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    made_from = {"data": str(data), "clips": int(len(db.table)), "subjects": int(db.table.subject.nunique())}
    if previous and {k: previous.get(k) for k in made_from} != made_from:
        print(f"learning curve: {summary_path} was made from other data ({previous.get('data')}, "
              f"{previous.get('clips')} clips); give another --json.")
        return 1
    points: dict[str, dict] = previous.get("points", {})  # rows or shares run before are kept
    for row in args.rows:
        points.setdefault(row, {})
        for fraction in fractions:
            config = replace(row_config(row, data, tuple(args.seeds), "loso", None, args.threads),
                             train_fraction=fraction)
            folder = out / folder_name(row, fraction)
            start = time.perf_counter()
            metrics = run_experiment(config, folder, "data/cache", database=db, progress=False,
                                     allow_code_change=True, jobs=args.jobs).metrics
            folds = stored_folds(folder, args.seeds)
            over = metrics["mean_std_over_seeds"]
            points[row][f"{fraction:g}"] = {
                "uf1": over["uf1"], "uar": over["uar"], "seeds": args.seeds,
                "per_seed_uf1": {s: m["uf1"] for s, m in metrics["per_seed"].items()},
                "subjects_per_fold": training_subjects_per_fold(folds),
                "minutes_per_seed": sum(f["seconds"] for f in folds) / 60 / len(args.seeds),
                "machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(), "jobs": args.jobs,
                            "torch": torch.__version__, "python": platform.python_version()}}
            print(f"{row} at {fraction:g}: UF1 {cell(over['uf1'])}, UAR {cell(over['uar'])} "
                  f"({time.perf_counter() - start:.0f} s now)", flush=True)
            summary_path.parent.mkdir(parents=True, exist_ok=True)
            summary_path.write_text(json.dumps({
                **made_from, "fractions": sorted(set(fractions) | set(previous.get("fractions", []))),
                "points": points}, indent=2, default=str))
    print()
    print(markdown(points, sorted(set(fractions) | set(previous.get("fractions", [])))))
    print(f"\nwrote {summary_path}; machine: {cpu_name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
