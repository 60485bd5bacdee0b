"""Fuse a finished run's networks with the floor as `--fuse-linear` now defines it, without retraining.

A fused run's fold records keep the network member's probabilities (`network_proba`); a run trained without
fusion keeps them as its `proba`. Runs made before the floor member read its own maps (u, v, strain; code
a1a49d6 and earlier) fused a network that reads SS, LS or DT with a linear model of the network's inputs
instead. This script refits the floor on each fold's training clips (`tscnn.fold.fit_floor` on u, v, strain,
exactly what a run of the current code does), averages it with the stored network probabilities, and prints
and writes the figures: the recipe with `--fuse-linear` as it is defined now, on the same trained networks
(the network's training does not depend on the fusion). Nothing of the run folder is changed.

    python benchmarks/refuse_with_floor.py results/casme2kf-tscnn-plus-fused --cache data/cache \
        --json refused.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from tscnn.config import Config
from tscnn.datasets import Database
from tscnn.fold import floor_arrays, floor_proba
from tscnn.metrics import evaluate_predictions, over_seeds
from tscnn.models import get_model
from tscnn.models.linear import FLOOR_STREAMS
from tscnn.preprocessing.prepare import PrepSettings, prepare
from tscnn.run_facts import table_fingerprint
from tscnn.runner import config_database, fused_member_metrics


def refuse(folder: Path, cache: Path | None, database: Database | None = None) -> dict:
    """Figures per seed (and their mean +- std) of the stored network fused with the floor refitted per fold;
    ``database`` is the one the run read (by default the one its config names), checked by its fingerprint."""
    config = Config.load(folder / "config.json")
    network_key = "network_proba" if config.fuse_linear else "proba"  # the network member as the run stored it
    if not get_model(config.model).fuses_with_floor:  # what a run with --fuse-linear accepts
        raise SystemExit(f"error: {folder}: model {config.model} is a features model: it has no network to fuse")
    db = database or config_database(config)
    if table_fingerprint(db.table) != json.loads((folder / "fingerprint.json").read_text())["table"]:
        raise SystemExit(f"error: {folder}: the database now differs from the one the run read (its fingerprint)")
    prepared = prepare(db.table, PrepSettings.from_config(config), cache, progress=False, streams=FLOOR_STREAMS)
    table, labels, classes = prepared.table, prepared.table["label"].to_numpy(), len(db.classes)
    subjects = table["subject"].astype(str).to_numpy()
    features, floors = floor_arrays(prepared), {}  # the floor has no seed: one fit per fold and clip set
    per_seed, seeds = {}, []
    for seed_dir in sorted(folder.glob("seed_*")):
        rows = []
        for path in sorted((seed_dir / "folds").glob("*.json")):
            record = json.loads(path.read_text())
            test = np.asarray(record["rows"])
            fit = np.flatnonzero(np.isin(subjects, record["train_subjects"] + record["val_subjects"]))
            network = np.asarray(record[network_key])
            key = (tuple(fit), tuple(test))
            if key not in floors:
                floors[key] = floor_proba(features, labels, fit, test, classes)
            floor = floors[key]
            part = table.iloc[test][["dataset", "subject", "clip", "label"]].copy()
            part["fold"], part["network_pred"], part["floor_pred"] = (record["test_subject"], network.argmax(1),
                                                                      floor.argmax(1))
            part["pred"] = ((network + floor) / 2).argmax(1)
            rows.append(part)
        seed = seed_dir.name.removeprefix("seed_")
        predictions = pd.concat(rows).assign(seed=int(seed))
        per_seed[seed] = evaluate_predictions(predictions, classes)
        seeds.append(predictions)
    return {"folder": str(folder), "fused": over_seeds(list(per_seed.values())),
            "per_seed_uf1": {seed: m["uf1"] for seed, m in per_seed.items()},
            "members": fused_member_metrics(pd.concat(seeds), classes)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("data/cache"), help="the prepared-input cache")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    figures = refuse(args.folder, args.cache)
    for name, block in (("fused", figures["fused"]), *figures["members"].items()):
        print(f"{name:<8}" + "  ".join(f"{k} {block[k]['mean']:.4f} +- {block[k]['std']:.4f}"
                                       for k in ("accuracy", "uf1", "uar")))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
