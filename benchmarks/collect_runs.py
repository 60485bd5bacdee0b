"""Collect finished `tscnn run` results folders into one JSON and a Markdown table.

For runs that are not rows of `tscnn bench` (databases of frames, such as the CASME II key frames): each
folder's settings, honest and leaky figures, seed ensemble, code version, machine and training time, so that
a results page can quote them and the JSON under `benchmarks/` keeps them. Reads only what the runs wrote.

A results folder may not outlive the machine it ran on, so one recipe's seeds can end up in several folders.
``--update`` keeps the rows already in the JSON (a folder collected again replaces its row), and rows of one
recipe whose seeds do not overlap are pooled: mean +- std over all their seeds, from each seed's figures.

    python benchmarks/collect_runs.py results/casme2kf-* --data casme2-keyframes \
        --json benchmarks/runs-casme2-keyframes.json [--update]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import pandas as pd

from tscnn.config import RECIPE_FIELDS, RUN_IDENTITY_FIELDS, changed_floor_settings, from_preset

# What makes two rows the same recipe on the same protocol: rows equal in these, with seeds apart, are pooled. A
# learning curve's point (each fold learning from a share of its training subjects) is a protocol of its own.
_RECIPE_KEYS = (*RUN_IDENTITY_FIELDS, "size", "blocks", "changes_from_preset", "train_fraction")
_STORED_BEFORE = {"train_fraction": 1.0}  # what a row collected before its key was kept had: every training subject
_METRICS = ("accuracy", "uf1", "uar")
_HEADER = ("| model | preset | streams | protocol | seeds | accuracy | UF1 | UAR | leaky UF1 | members UF1 (network / "
           "floor) | code | CPU | ")


def _members(row: dict) -> str:
    members = row["fused_members"]
    return "-" if not members else f"{_figure(members['network'], 'uf1')} / {_figure(members['floor'], 'uf1')}"


def _figure(block: dict, key: str) -> str:
    value = block.get(key)
    return "-" if value is None else f"{value['mean']:.3f} +- {value['std']:.3f}"


def changes_from_preset(config: dict) -> dict:
    """The recipe settings (``tscnn.config.RECIPE_FIELDS``) in which a run differs from its preset: a reduced
    recipe names its reductions. A features model has no training recipe: only the floor's settings
    (``FLOOR_FIELDS``: a centred floor is another model) where they differ from the defaults."""
    from tscnn.models import get_model

    if not get_model(config["model"]).trains_by_epochs:
        return changed_floor_settings(config)

    preset = from_preset(config["preset"]).to_dict()
    return {key: config[key] for key in RECIPE_FIELDS if key in config and config[key] != preset[key]}


def per_seed_figures(folder: Path, seeds: list[int], num_classes: int) -> dict[str, dict[str, dict[str, float]]]:
    """Each seed's accuracy, UF1 and UAR (honest, leaky shadow and, for a fused run, each member alone) from the
    predictions the run kept: what pooling seeds from several folders needs. None kept: empty."""
    from tscnn.metrics import pooled_metrics

    path = folder / "predictions.csv"
    if not path.exists():
        return {}
    predictions = pd.read_csv(path)
    readings = {"honest": "pred", "leaky_shadow": "leaky_pred", "network": "network_pred", "floor": "floor_pred"}
    return {str(seed): {name: {k: pooled_metrics(part.label, part[column], num_classes)[k] for k in _METRICS}
                        for name, column in readings.items() if column in part}
            for seed, part in predictions.groupby("seed") if int(seed) in seeds}


def collect(folder: Path, base: Path | None = None) -> dict:
    """One results folder's settings and figures (it must hold a finished run: metrics.json), for the seeds its
    metrics cover (a later seed still under way in the same folder is left out). The code version
    is the one each fold record names (a summary rewritten by later code keeps its folds' version). The folder
    is named by its path under ``base`` (a table's variants: ``casme2kf-table4/dt``), else by its own name."""
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    info = json.loads((folder / "run_info.json").read_text())
    # The seeds the figures rest on: a folder being extended with more seeds holds a config naming them all
    # and the folds of the seed under way, while its metrics are still those of the finished seeds.
    seeds = sorted(int(s) for s in metrics["per_seed"]) if metrics.get("per_seed") else config["seeds"]
    records = [json.loads(p.read_text()) for seed in seeds for p in sorted(folder.glob(f"seed_{seed}/folds/*.json"))]
    versions = sorted({r["code_version"] for r in records if "code_version" in r}) or [info["code_version"]]
    return {
        "folder": folder.relative_to(base).as_posix() if base else folder.name,
        "model": config["model"], "preset": config["preset"], "streams": config["streams"], "size": config["size"],
        "blocks": config.get("blocks"),
        "changes_from_preset": changes_from_preset(config),
        "protocol": config["protocol"], "train_datasets": config.get("train_datasets", []),
        "test_datasets": config.get("test_datasets", []), "train_fraction": config.get("train_fraction", 1.0),
        "seeds": seeds,
        "honest": metrics["mean_std_over_seeds"], "leaky_shadow": metrics["leaky_shadow"]["mean_std_over_seeds"],
        "per_seed_uf1": {seed: m["uf1"] for seed, m in metrics.get("per_seed", {}).items()},
        "per_seed": per_seed_figures(folder, seeds, len(metrics["classes"])) if "classes" in metrics else {},
        "fused_members": {name: metrics["fused_members"][name] for name in ("network", "floor")}
        if "fused_members" in metrics else None,
        "seed_ensemble": {k: metrics["seed_ensemble"][k] for k in ("accuracy", "uf1", "uar")},
        "code_version": ", ".join(versions), "cpu": info["cpu"], "threads": info["threads"],
        "jobs": info.get("jobs"), "bf16": info["bf16"],
        "fold_minutes": round(sum(r["seconds"] for r in records) / 60, 1),
        "finished": datetime.datetime.fromtimestamp((folder / "metrics.json").stat().st_mtime)
        .isoformat(" ", "minutes"),
    }


def _seed_figures(row: dict) -> dict | None:
    """A row's figures for each of its seeds: kept per seed, or, for a row of one seed, its means (exact)."""
    if row.get("per_seed"):
        return row["per_seed"]
    if len(row["seeds"]) != 1:
        return None
    blocks = {"honest": row["honest"], "leaky_shadow": row["leaky_shadow"], **(row["fused_members"] or {})}
    return {str(row["seeds"][0]): {name: {k: block[k]["mean"] for k in _METRICS} for name, block in blocks.items()}}


def _identity(row: dict, key: str) -> object:
    """A row's value of one of ``_RECIPE_KEYS``, with what a row stored before that key was kept implies."""
    return row.get(key, _STORED_BEFORE.get(key))


def pool(rows: list[dict]) -> list[dict]:
    """Rows of one recipe in several folders with no seed in common, pooled: mean +- (population) std over the
    union of their seeds, as a single run of all those seeds reports them. The seed ensemble needs the
    predictions of every seed together, so a pooled entry has none. The entry names every code version and CPU
    it rests on; rows of code that changed the recipe's behaviour belong in separate JSON files."""
    from tscnn.metrics import over_seeds, seeds_together

    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(json.dumps([_identity(row, k) for k in _RECIPE_KEYS], sort_keys=True), []).append(row)
    pooled = []
    for group in (g for g in groups.values() if len(g) > 1):
        parts = [_seed_figures(row) for row in group]
        if any(part is None for part in parts):
            continue  # a row without its seeds' figures: nothing to pool from
        try:
            by_seed = seeds_together(parts)
        except ValueError:
            continue  # the same seed in two folders is one seed run twice, not two seeds
        names = set.intersection(*(set(figures) for figures in by_seed.values()))
        pooled.append({
            **{key: _identity(group[0], key) for key in _RECIPE_KEYS},
            "folders": [row["folder"] for row in group], "seeds": sorted(int(s) for s in by_seed),
            **{name: over_seeds([figures[name] for figures in by_seed.values()], _METRICS)
               for name in ("honest", "leaky_shadow")},
            "fused_members": {m: over_seeds([figures[m] for figures in by_seed.values()], _METRICS)
                              for m in ("network", "floor")} if {"network", "floor"} <= names else None,
            "per_seed_uf1": {s: by_seed[s]["honest"]["uf1"] for s in sorted(by_seed, key=int)},
            "code_version": ", ".join(sorted({v for row in group for v in row["code_version"].split(", ")})),
            "cpu": ", ".join(sorted({row["cpu"] for row in group})),
            "bf16": [row.get("bf16") for row in group],  # each folder's, in the order of "folders"
        })
    return pooled


def _print_row(r: dict, folders: str = "") -> None:
    changes = "".join(f" {key}={value}" for key, value in r["changes_from_preset"].items())
    protocol = r["protocol"] + (f" {'+'.join(r['train_datasets'])} -> {'+'.join(r['test_datasets'])}"
                                if r["train_datasets"] else "")
    share = _identity(r, "train_fraction")
    protocol += f", {share:g} of the training subjects" if share != 1.0 else ""
    print(f"| {r['model']} | {r['preset']}{changes} | {','.join(r['streams'])} | {protocol} | {len(r['seeds'])} | "
          f"{_figure(r['honest'], 'accuracy')} | {_figure(r['honest'], 'uf1')} | {_figure(r['honest'], 'uar')} | "
          f"{_figure(r['leaky_shadow'], 'uf1')} | {_members(r)} | {r['code_version']} | {r['cpu']} | {folders}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--data", required=True, help="the data folder's name, recorded in the JSON")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--base", type=Path, help="name each folder by its path under this one (default: its name)")
    parser.add_argument("--update", action="store_true",
                        help="keep the rows already in --json; a folder collected again replaces its row")
    args = parser.parse_args(argv)
    rows = [collect(folder, args.base) for folder in args.folders if (folder / "metrics.json").exists()]
    for folder in args.folders:
        if not (folder / "metrics.json").exists():
            print(f"skipped {folder}: no metrics.json there (not a finished run folder)", file=sys.stderr)
    if args.update and args.json and args.json.exists():
        stored = json.loads(args.json.read_text())
        if stored["data"] != args.data:
            raise SystemExit(f"error: {args.json}: its rows are of data {stored['data']!r}, not {args.data!r}")
        collected = {row["folder"] for row in rows}
        rows = [row for row in stored["rows"] if row["folder"] not in collected] + rows
    print(_HEADER + "fold min |\n" + "|---" * 13 + "|")
    for r in rows:
        _print_row(r, f"{r['fold_minutes']} |")
    pooled = pool(rows)
    if pooled:
        print("\nPooled over folders (seeds of one recipe run apart):\n")
        print(_HEADER + "folders |\n" + "|---" * 13 + "|")
        for r in pooled:
            _print_row(r, f"{', '.join(r['folders'])} |")
    if args.json:
        args.json.write_text(json.dumps({"data": args.data, "rows": rows, **({"pooled": pooled} if pooled else {})},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
