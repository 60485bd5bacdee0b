"""Collect finished `tscnn run` results folders into one JSON and a Markdown table.

For runs that are not rows of `tscnn bench` (databases of frames, such as the CASME II key frames): each
folder's settings, honest and leaky figures, seed ensemble, code version, machine and training time, so that
a results page can quote them and the JSON under `benchmarks/` keeps them. Reads only what the runs wrote.

    python benchmarks/collect_runs.py results/casme2kf-* --data casme2-keyframes \
        --json benchmarks/runs-casme2-keyframes.json
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path


def _members(row: dict) -> str:
    members = row["fused_members"]
    return "-" if not members else f"{_figure(members['network'], 'uf1')} / {_figure(members['floor'], 'uf1')}"


def _figure(block: dict, key: str) -> str:
    value = block.get(key)
    return "-" if value is None else f"{value['mean']:.3f} +- {value['std']:.3f}"


def changes_from_preset(config: dict) -> dict:
    """The recipe settings (``tscnn.config.RECIPE_FIELDS``) in which a run differs from its preset: a reduced
    recipe names its reductions. A features model has no training recipe: none."""
    from tscnn.config import RECIPE_FIELDS, from_preset
    from tscnn.models import get_model

    if not get_model(config["model"]).trains_by_epochs:
        return {}

    preset = from_preset(config["preset"]).to_dict()
    return {key: config[key] for key in RECIPE_FIELDS if key in config and config[key] != preset[key]}


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
        "test_datasets": config.get("test_datasets", []), "seeds": seeds,
        "honest": metrics["mean_std_over_seeds"], "leaky_shadow": metrics["leaky_shadow"]["mean_std_over_seeds"],
        "per_seed_uf1": {seed: m["uf1"] for seed, m in metrics.get("per_seed", {}).items()},
        "fused_members": {name: metrics["fused_members"][name] for name in ("network", "floor")}
        if "fused_members" in metrics else None,
        "seed_ensemble": {k: metrics["seed_ensemble"][k] for k in ("accuracy", "uf1", "uar")},
        "code_version": ", ".join(versions), "cpu": info["cpu"], "threads": info["threads"],
        "jobs": info.get("jobs"), "bf16": info["bf16"],
        "fold_minutes": round(sum(r["seconds"] for r in records) / 60, 1),
        "finished": datetime.datetime.fromtimestamp((folder / "metrics.json").stat().st_mtime)
        .isoformat(" ", "minutes"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--data", required=True, help="the data folder's name, recorded in the JSON")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--base", type=Path, help="name each folder by its path under this one (default: its name)")
    args = parser.parse_args(argv)
    rows = [collect(folder, args.base) for folder in args.folders if (folder / "metrics.json").exists()]
    print("| model | preset | streams | protocol | seeds | accuracy | UF1 | UAR | leaky UF1 | members UF1 (network / "
          "floor) | code | CPU | fold min |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        changes = "".join(f" {key}={value}" for key, value in r["changes_from_preset"].items())
        protocol = r["protocol"] + (f" {'+'.join(r['train_datasets'])} -> {'+'.join(r['test_datasets'])}"
                                    if r["train_datasets"] else "")
        print(f"| {r['model']} | {r['preset']}{changes} | {','.join(r['streams'])} | {protocol} | {len(r['seeds'])} | "
              f"{_figure(r['honest'], 'accuracy')} | {_figure(r['honest'], 'uf1')} | {_figure(r['honest'], 'uar')} | "
              f"{_figure(r['leaky_shadow'], 'uf1')} | {_members(r)} | {r['code_version']} | {r['cpu']} | "
              f"{r['fold_minutes']} |")
    if args.json:
        args.json.write_text(json.dumps({"data": args.data, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
