"""What seed ensembles buy: from finished runs of one recipe, the UF1 and UAR of every ensemble of k of its seeds.

A seed ensemble averages the class probabilities of the same recipe trained with different seeds (every run
reports the ensemble of all its seeds, ``seed_ensemble``). It costs k trainings where one seed costs one, so it is
a lever a recipe pays for in time. This script measures it without training anything: for each k from 1 to the
number of seeds, the mean, lowest and highest figure over all k-seed subsets, and the mean's gain over single
seeds. One recipe's seeds may lie in several folders (a folder may not outlive its machine): their runs must agree
in recipe, protocol and data (``SAME_RUN_FIELDS``), each seed must come from one folder only, and every seed must
hold the same clips with the same labels. Nothing is changed.

    python benchmarks/seed_ensembles.py results/seeds01 results/seeds234 [--json seed_ensembles.json]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from tscnn.config import RECIPE_FIELDS, RUN_IDENTITY_FIELDS
from tscnn.metrics import PREDICTION_KEY, evaluate_predictions, read_run_predictions
from tscnn.run_facts import code_version
from tscnn.runner import seed_ensemble

SAME_RUN_FIELDS = (*RUN_IDENTITY_FIELDS, *RECIPE_FIELDS, "dataset", "classes", "train_fraction")
"""What every folder's ``config.json`` must agree on to be seeds of one recipe on one protocol (the machine, threads
and seeds may differ)."""


def one_recipe(folders: list[Path]) -> dict | None:
    """The settings the folders' runs share (the first folder's ``config.json``), refused in one line naming the
    first field in which another folder's run differs; None when no folder holds its settings."""
    configs = {f: json.loads((f / "config.json").read_text()) for f in folders if (f / "config.json").is_file()}
    if not configs:
        return None
    (first, settings), *others = configs.items()
    for folder, config in others:
        for field in SAME_RUN_FIELDS:
            if config.get(field) != settings.get(field):
                raise SystemExit(f"error: {folder}: {field} is {config.get(field)!r}, in {first} "
                                 f"{settings.get(field)!r}: not seeds of one recipe")
    return settings


def pooled_seeds(folders: list[Path]) -> tuple[pd.DataFrame, int]:
    """The predictions of every seed in ``folders``, together, and the number of classes; refused in one line when
    a seed is in two folders, the folders name other classes, or the seeds did not test the same clips with the
    same labels."""
    tables, names, origin = [], {}, {}
    for folder in folders:
        try:
            table, names[folder] = read_run_predictions(folder)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
        for seed in sorted(set(table["seed"])):
            if seed in origin:
                raise SystemExit(f"error: {folder}: seed {seed} is also in {origin[seed]}; give each seed once")
            origin[seed] = folder
        tables.append(table)
    classes = names[folders[0]]
    for folder, other in names.items():
        if other != classes:
            raise SystemExit(f"error: {folder}: classes {', '.join(other)}, in {folders[0]} {', '.join(classes)}: "
                             "not runs of one database")
    table = pd.concat(tables, ignore_index=True)
    clips = [part[PREDICTION_KEY[1:] + ["label"]].sort_values(PREDICTION_KEY[1:]).reset_index(drop=True)
             for _, part in table.groupby("seed", sort=True)]
    for seed, other in zip(sorted(origin)[1:], clips[1:], strict=True):
        if not other.equals(clips[0]):
            raise SystemExit(f"error: {origin[seed]}: seed {seed} did not test the same clips with the same labels "
                             f"as seed {min(origin)}")
    return table, len(classes)


def subset_ensembles(table: pd.DataFrame, classes: int) -> list[dict]:
    """For k = 1 .. seeds: UF1 and UAR of the ensemble of each k-seed subset (mean, lowest, highest over the
    subsets) and the mean UF1's gain over the mean single seed."""
    seeds = sorted(set(table["seed"]))
    rows = []
    for k in range(1, len(seeds) + 1):
        figures = [evaluate_predictions(seed_ensemble(table[table["seed"].isin(chosen)]), classes)
                   for chosen in itertools.combinations(seeds, k)]
        uf1, uar = (np.array([f[name] for f in figures]) for name in ("uf1", "uar"))
        rows.append({"seeds_in_ensemble": k, "subsets": len(figures), "uf1_mean": float(uf1.mean()),
                     "uf1_min": float(uf1.min()), "uf1_max": float(uf1.max()), "uar_mean": float(uar.mean())})
    for row in rows:
        row["uf1_gain_over_one_seed"] = row["uf1_mean"] - rows[0]["uf1_mean"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="finished results folders of one recipe (its seeds)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    settings = one_recipe(args.folders)
    table, classes = pooled_seeds(args.folders)
    rows = subset_ensembles(table, classes)
    print(f"{'seeds':>5} {'subsets':>7} {'UF1 mean':>9} {'lowest':>7} {'highest':>7} {'gain':>7} {'UAR mean':>9}")
    for r in rows:
        print(f"{r['seeds_in_ensemble']:>5} {r['subsets']:>7} {r['uf1_mean']:>9.4f} {r['uf1_min']:>7.4f} "
              f"{r['uf1_max']:>7.4f} {r['uf1_gain_over_one_seed']:>+7.4f} {r['uar_mean']:>9.4f}")
    if args.json:
        result = {"date": datetime.date.today().isoformat(), "code_version": code_version(),
                  "folders": [f.name for f in args.folders], "settings": settings,
                  "seeds": sorted(int(s) for s in set(table["seed"])),
                  "clips": int(len(table) / table["seed"].nunique()), "classes": classes, "ensembles": rows}
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
