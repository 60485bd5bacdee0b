"""Compare two recipes' finished runs on the same clips, seed by seed and subject by subject.

Each results folder's ``predictions.csv`` holds every test clip of every seed with the prediction (``pred``) and,
where the run has them, each fused member's (``network_pred``) and the leaky shadow's (``leaky_pred``). This
script prints each reading's UF1 per seed for both folders, and over the seeds both ran a paired subject
bootstrap (`tscnn.metrics.paired_subject_bootstrap`: whole subjects resampled, both runs scored on the same draw)
of the UF1 difference, A minus B, for the prediction and for each reading both have. Two runs of one machine type
and one seed differ only by their recipes, so this is how a variant is set beside the recipe it would replace.
Nothing of the folders is changed.

    python benchmarks/compare_runs.py results/variant results/submitted [--json compared.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from tscnn.metrics import PREDICTION_KEY, evaluate_predictions, paired_subject_bootstrap, read_run_predictions

READINGS = {"prediction": "pred", "network member": "network_pred", "leaky shadow": "leaky_pred"}
"""What a predictions file may hold (the name printed, its column): the run's answer, a fused run's network member
alone, and the leaky shadow (each fold's epoch chosen on its test subject: not a result)."""


def per_seed_uf1(table: pd.DataFrame, classes: int) -> dict[str, dict[int, float]]:
    """UF1 of each reading the table holds, per seed (predictions pooled over the seed's folds)."""
    return {name: {int(seed): evaluate_predictions(part.assign(pred=part[column]), classes)["uf1"]
                   for seed, part in table.groupby("seed", sort=True)}
            for name, column in READINGS.items() if column in table.columns}


def compare(a: Path, b: Path) -> dict:
    """Per-seed UF1 of both folders, and over their shared seeds the paired subject bootstrap of A minus B for
    each reading both hold. Refused in one line when the folders share no seed or did not test the same clips."""
    try:
        (whole_a, names), (whole_b, names_b) = read_run_predictions(a), read_run_predictions(b)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    if names != names_b:
        raise SystemExit(f"error: {a}, {b}: classes {', '.join(names)} and {', '.join(names_b)}: not runs of one "
                         "database")
    classes = len(names)
    shared = sorted(set(whole_a["seed"]) & set(whole_b["seed"]))
    if not shared:
        raise SystemExit(f"error: {a}, {b}: no seed in common; a paired comparison needs the same seeds")
    first, second = (t[t["seed"].isin(shared)].sort_values(PREDICTION_KEY).reset_index(drop=True)
                     for t in (whole_a, whole_b))
    if not first[PREDICTION_KEY + ["label"]].equals(second[PREDICTION_KEY + ["label"]]):
        raise SystemExit(f"error: {a}, {b}: the runs did not test the same clips with the same labels")
    both = [name for name, column in READINGS.items() if column in first.columns and column in second.columns]
    bootstrap = {name: paired_subject_bootstrap(first.assign(pred=first[READINGS[name]]),
                                                second.assign(pred=second[READINGS[name]]), classes)
                 for name in both}
    return {"a": a.name, "b": b.name, "classes": classes, "shared_seeds": [int(s) for s in shared],
            "per_seed_uf1": {a.name: per_seed_uf1(whole_a, classes), b.name: per_seed_uf1(whole_b, classes)},
            "a_minus_b": bootstrap}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="a finished results folder (the variant)")
    parser.add_argument("b", type=Path, help="another one on the same clips (the recipe it is set beside)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    result = compare(args.a, args.b)
    for folder, readings in result["per_seed_uf1"].items():
        print(folder)
        for name, seeds in readings.items():
            print(f"  {name:<15}" + "  ".join(f"seed {s} {v:.4f}" for s, v in seeds.items()))
    print(f"A - B over seeds {result['shared_seeds']} (UF1 difference, 95 % interval over subjects):")
    for name, b in result["a_minus_b"].items():
        print(f"  {name:<15} {b['uf1_difference']:+.4f} [{b['ci_low']:+.4f}, {b['ci_high']:+.4f}], above zero in "
              f"{b['share_above_zero']:.0%} of {b['resamples']} resamples of {b['subjects']} subjects")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
