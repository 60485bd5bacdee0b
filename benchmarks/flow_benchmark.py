"""Real-data benchmark: TSCNN and its peers on a folder of onset->apex flows, one honest protocol.

Data: a flow folder (``tscnn.datasets.flowfolder``: ``index.csv`` + 28x28 u, v, strain PNGs), by
default the real ``../shared/real/megc2019-flow28`` (CASME II and SMIC-HS parts of the MEGC2019
composite, 309 clips, 40 subjects). It is licensed data: it is read where it lies and nothing
derived from it is kept but metrics. ``--synthetic`` runs the same table on a synthetic
MEGC2019-layout composite (CASME II, SAMM and SMIC layouts made by ``tscnn.synth``, its flows
computed by the project and exported to the same format), so the whole path runs without the data.

Every row is an ordinary ``tscnn run`` (``tscnn.experiment.run_experiment``) in its own results
folder under ``--out``: LOSO over every subject, and the cross-database protocol (train on one
database's clips, epoch choice on its held-out subjects, test on another) for each pair of
databases in the folder. Each finished fold is saved at once, so an interrupted benchmark started
again continues where it stopped. Per row: UF1 and UAR pooled over folds for the whole set and for
each database, mean +- std over the seeds, the seed ensemble (class probabilities averaged over
seeds), and the leaky shadow (the same training runs with each fold's epoch chosen on the test
subject: what the common leaky practice would have claimed), minutes per seed, and the machine.

Usage: python benchmarks/flow_benchmark.py [--synthetic] [--rows tscnn-plus ststnet ...]
       [--protocols loso cross] [--seeds 0 1 2 3 4] [--data DIR] [--out results/flow-benchmark]
       [--json benchmarks/flow_benchmark-<data>.json] [--threads N] [--jobs N]
       python benchmarks/flow_benchmark.py --paired linear   (compare finished rows; trains nothing)
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from dataclasses import replace
from itertools import permutations
from pathlib import Path

import pandas as pd
import torch

from tscnn.datasets import read_flowfolder
from tscnn.experiment import config_for, cpu_name, run_experiment
from tscnn.metrics import paired_subject_bootstrap
from tscnn.train import bf16_supported

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real" / "megc2019-flow28"
SYNTHETIC_FRAMES = Path("data/synthetic-megc2019")
SYNTHETIC_FLOWS = Path("data/synthetic-megc2019-flow28")

# Each row: a model of the registry and the recipe preset it runs with (input streams and size are the
# model's own; on a flow folder TSCNN reads the uvs maps with its dynamic-temporal stream).
_DEV_TTA = {"model": "tscnn", "preset": "tscnn-plus", "streams": ("uvs",), "tta_flip": True}

ROWS: dict[str, dict] = {
    "tscnn-plus": {"model": "tscnn", "preset": "tscnn-plus", "streams": ("uvs",)},
    # The submitted recipe again, unchanged, in its own folder: its 5-seed figures above were made by code that
    # held the flow-folder maps in float16 (60fd25d); this measures it as today's code trains it (float32 maps).
    "tscnn-plus-rerun": {"model": "tscnn", "preset": "tscnn-plus", "streams": ("uvs",)},
    "tscnn-paper": {"model": "tscnn", "preset": "paper", "streams": ("uvs",)},
    "tscnn-plus-tta": {"model": "tscnn", "preset": "tscnn-plus-tta", "streams": ("uvs",)},
    "tscnn-plus-tta-centre": {"model": "tscnn", "preset": "tscnn-plus-tta", "streams": ("uvs",), "centre_flow": True},
    # To run on the real flows only if dev-scale-tta passed the rule written in the README before any run of it;
    # it failed that rule on the synthetic composite, so this row has never been run on real flows.
    "tscnn-plus-tta-scale": {"model": "tscnn", "preset": "tscnn-plus-tta", "streams": ("uvs",), "centre_flow": True,
                             "scale_flow": True},
    # tscnn-plus with late fusion: its probabilities averaged with the linear floor's (equal weights, the floor
    # fitted on the same training clips). Rule and reasons written in the README before its run, which met the
    # rule: the recipe submitted for the independent check. The same settings as --preset tscnn-plus-fused (only
    # the preset's name differs, kept so that the stored real run resumes).
    "tscnn-plus-fused": {"model": "tscnn", "preset": "tscnn-plus", "streams": ("uvs",), "fuse_linear": True},
    # tscnn-plus-fused with the network's flow maps centred on their own medians (--centre-flow; the floor's input is
    # unchanged). Rule written in the README and committed before its first run on the real flows (ninth session).
    "tscnn-plus-fused-centre": {"model": "tscnn", "preset": "tscnn-plus", "streams": ("uvs",), "fuse_linear": True,
                                "centre_flow": True},
    # Changes to tscnn-plus tried on the synthetic composite only (``--synthetic``) when tscnn-plus-tta was chosen.
    "dev-tta": _DEV_TTA,
    "dev-long-tta": {**_DEV_TTA, "max_epochs": 45, "average_last": 15},
    "dev-wd-tta": {**_DEV_TTA, "weight_decay": 5e-4},
    "dev-mixup-tta": {**_DEV_TTA, "mixup": 0.2},
    "dev-centre-tta": {**_DEV_TTA, "centre_flow": True},
    "dev-scale-tta": {**_DEV_TTA, "centre_flow": True, "scale_flow": True},
    "ststnet": {"model": "ststnet"},
    "offapexnet": {"model": "offapexnet"},
    "hoof": {"model": "hoof"},
    "linear": {"model": "linear"},
}
DEFAULT_ROWS = ("tscnn-plus-fused", "tscnn-plus", "ststnet", "offapexnet", "hoof", "linear")
# Published points (pooled UF1 / UAR) for the full 442-clip composite and its parts (SPEC section 9).
REFERENCES = {
    "STSTNet (published, leaky era)": {"whole": (0.7353, 0.7605), "casme2": (0.8382, 0.8686), "smic": (0.6801, 0.7013)},
    "STSTNet (leak-free re-run, MEB)": {"whole": (0.7127, None), "casme2": (0.7036, None), "smic": (0.7139, None)},
    "Off-ApexNet (published, leaky era)": {"whole": (0.7196, 0.7096), "casme2": (0.8764, 0.8681),
                                           "smic": (0.6817, 0.6695)},
    "Off-ApexNet (leak-free re-run, MEB)": {"whole": (0.7032, None), "casme2": (0.7744, None), "smic": (0.6832, None)},
}


SYNTHETIC_PARTS = (("CASME2_Cropped", "casme2", 16), ("SAMM", "samm", 8), ("SMIC_all_cropped", "smic", 10))
"""The synthetic composite's parts: folder, database layout, subjects (all generated with seed 7)."""


def make_synthetic_frames(frames: Path = SYNTHETIC_FRAMES, subjects: int | None = None) -> Path:
    """The synthetic MEGC2019-layout composite's frames (16 CASME II, 8 SAMM, 10 SMIC subjects, seed 7; or
    ``subjects`` per part), each part made once, then reused."""
    from tscnn.synth import SynthSettings, write_database

    for folder, layout, count in SYNTHETIC_PARTS:
        if not (frames / folder).exists():
            write_database(frames / folder, SynthSettings(subjects=subjects or count, seed=7, layout=layout))
    return frames


def make_synthetic_flows(frames: Path = SYNTHETIC_FRAMES, flows: Path = SYNTHETIC_FLOWS) -> Path:
    """The synthetic MEGC2019-layout composite (``make_synthetic_frames``), its flows exported as a flow folder;
    made once, then reused."""
    from tscnn.datasets import read_megc2019
    from tscnn.datasets.flowfolder import write_flow_folder

    if (flows / "index.csv").exists():
        return flows
    write_flow_folder(read_megc2019(make_synthetic_frames(frames), apex_fallback="middle"), flows, size=28,
                      cache_dir="data/cache")
    return flows


def stored_folds(folder: Path, seeds: list[int]) -> list[dict]:
    """The saved fold records of the given seeds in a results folder (not of other seeds a folder may hold)."""
    return [json.loads(p.read_text()) for s in seeds for p in (folder / f"seed_{s}" / "folds").glob("*.json")]


def flow_folder(synthetic: bool, data: Path | None, program: str) -> tuple[Path, str] | None:
    """The flow folder a benchmark reads and its tag (for default paths), or None, said, when it is absent."""
    folder = make_synthetic_flows() if synthetic else (data or REAL_DATA)
    if not (folder / "index.csv").is_file():
        print(f"{program}: no flow folder at {folder} (expects ../shared/real/megc2019-flow28 beside the "
              "repository, --data DIR, or --synthetic); nothing was run.")
        return None
    return folder, "synthetic" if synthetic else folder.name


def row_config(row: str, data: Path, seeds: tuple[int, ...], protocol: str, pair: tuple[str, str] | None,
               threads: int):
    settings = dict(ROWS[row])
    config = config_for(settings.pop("model"), settings.pop("preset", None), dataset="flowfolder", root=str(data),
                        classes="all", seeds=seeds, threads=threads, **settings)
    if protocol == "cross":
        if config.selection == "fixed":
            config = replace(config, val_fraction=0.0)  # a fixed budget needs no validation subjects
        config = replace(config, protocol="cross", train_datasets=(pair[0],), test_datasets=(pair[1],))
    return config


def _uf1_uar(whole: dict, per_dataset: dict) -> dict:
    """UF1 and UAR of the whole set and of each database."""
    return {"whole": {k: whole[k] for k in ("uf1", "uar")},
            **{name: {k: values[k] for k in ("uf1", "uar")} for name, values in per_dataset.items()}}


def summary_row(metrics: dict, seconds: float, seeds: int) -> dict:
    leaky, ensemble = metrics["leaky_shadow"], metrics["seed_ensemble"]
    return {"honest": _uf1_uar(metrics["mean_std_over_seeds"], metrics.get("per_dataset_mean_std_over_seeds", {})),
            "seed_ensemble": _uf1_uar(ensemble, ensemble.get("per_dataset", {})),
            "leaky_shadow": _uf1_uar(leaky["mean_std_over_seeds"], leaky.get("per_dataset_mean_std_over_seeds", {})),
            "minutes_per_seed": seconds / 60 / max(seeds, 1), "clips": metrics["clips"],
            "subjects": metrics["subjects"], "protocol": metrics["protocol"]}


def cell(values: dict | None, key: str) -> str:
    if not values:
        return "-"
    v = values[key]
    return f"{v['mean']:.3f} +- {v['std']:.3f}" if isinstance(v, dict) else f"{v:.3f}"


def markdown(results: dict, datasets: list[str]) -> str:
    """One table: rows = model x recipe x protocol; whole and per-database UF1 / UAR, honest, the seed
    ensemble and the leaky shadow."""
    head = ["row", "protocol", "whole UF1", "whole UAR", *[f"{d} UF1 / UAR" for d in datasets],
            "seed ensemble UF1 / UAR", "leaky shadow UF1 / UAR", "min/seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        h, e, lk = r["honest"], r["seed_ensemble"], r["leaky_shadow"]
        # a folder of one database has no per-database metrics: its column is the whole set's (LOSO only)
        parts = {datasets[0]: h["whole"]} if len(datasets) == 1 and r["protocol_short"] == "loso" else h
        per = [f"{cell(parts[d], 'uf1')} / {cell(parts[d], 'uar')}" if d in parts else "-" for d in datasets]
        lines.append("| " + " | ".join([
            name, r["protocol_short"], cell(h["whole"], "uf1"), cell(h["whole"], "uar"), *per,
            f"{cell(e['whole'], 'uf1')} / {cell(e['whole'], 'uar')}",
            f"{cell(lk['whole'], 'uf1')} / {cell(lk['whole'], 'uar')}", f"{r['minutes_per_seed']:.1f}"]) + " |")
    return "\n".join(lines)


def merge(paths: list[Path], out: Path | None) -> int:
    """One summary (and one table) from several, e.g. rows run with different seeds in parallel processes. Each
    row keeps the machine of the summary it came from (the summary's own ``machine`` is the first part's)."""
    parts = [json.loads(p.read_text()) for p in paths]
    merged = {**parts[0], "rows": {}, "merged_from": [str(p) for p in paths]}
    for part in parts:
        merged["rows"].update({name: {"machine": part.get("machine"), **row} for name, row in part["rows"].items()})
    if out:
        out.write_text(json.dumps(merged, indent=2, default=str))
    print(markdown(merged["rows"], merged["databases"]))
    print(f"\nmachine: {merged['machine']}" + (f"; wrote {out}" if out else ""))
    return 0


def paired_to_base(out: Path, base: str, summary_path: Path, resamples: int = 2000) -> int:
    """UF1 difference of every finished row in ``out`` to the row ``base`` (e.g. the floor) on the same clips,
    per protocol (LOSO, and each cross-database pair the base has), with a 95 % interval from resampling
    subjects (``tscnn.metrics.paired_subject_bootstrap``): whether a gap between two rows is larger than the
    subjects' spread. Trains nothing."""
    if not (out / base / "predictions.csv").is_file():
        print(f"flow benchmark: no finished LOSO run of {base!r} in {out}; run it first.")
        return 1
    protocols = {"": ""}  # folder suffix -> the suffix of the summary's row names
    for folder in sorted(out.glob(f"{base}-*")):
        pair = re.fullmatch(r"-([a-z0-9]+)-to-([a-z0-9]+)", folder.name[len(base):])
        if pair and (folder / "predictions.csv").is_file():
            protocols[folder.name[len(base):]] = f" [{pair[1]} -> {pair[2]}]"
    num_classes = len(json.loads((out / base / "metrics.json").read_text())["classes"])
    paired = {}
    for suffix, label in protocols.items():
        base_predictions = pd.read_csv(out / f"{base}{suffix}" / "predictions.csv")
        for row in ROWS:
            folder = out / f"{row}{suffix}"
            if row != base and (folder / "predictions.csv").is_file():
                paired[row + label] = paired_subject_bootstrap(pd.read_csv(folder / "predictions.csv"),
                                                               base_predictions, num_classes, resamples=resamples)
    lines = [f"| row | UF1 - UF1({base}) | 95 % interval (subjects resampled) | share of resamples above 0 |",
             "|---|---|---|---|"]
    lines += [f"| {row} | {r['uf1_difference']:+.3f} | [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
              f"{r['share_above_zero']:.3f} |" for row, r in paired.items()]
    print("\n".join(lines))
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        summary.setdefault("paired_subject_bootstrap", {})[base] = {"resamples": resamples, "rows": paired}
        summary_path.write_text(json.dumps(summary, indent=2, default=str))
        print(f"\nwrote the comparison into {summary_path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a flow folder (default: the real megc2019-flow28 beside the repo)")
    parser.add_argument("--synthetic", action="store_true", help="the synthetic MEGC2019-layout composite instead")
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), choices=list(ROWS))
    parser.add_argument("--protocols", nargs="+", default=["loso", "cross"], choices=["loso", "cross"])
    parser.add_argument("--pairs", nargs="+", metavar="TRAIN:TEST",
                        help="cross-database pairs (default: every ordered pair of the folder's databases)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--jobs", type=int, default=1, help="folds trained at once in worker processes (each with "
                        "--threads threads); every seed's folds share them")
    parser.add_argument("--merge", type=Path, nargs="+", help="only merge these summaries (rows run with other "
                        "seeds or in other processes) into --json and print the table")
    parser.add_argument("--paired", metavar="BASE", help="only compare every finished row with row BASE (e.g. "
                        "linear), per protocol: UF1 difference with a subject-bootstrap 95 %% interval; trains nothing")
    parser.add_argument("--out", type=Path, help="results folders (default: results/flow-benchmark-<data>)")
    parser.add_argument("--json", type=Path, help="summary (default: benchmarks/flow_benchmark-<data>.json)")
    args = parser.parse_args()
    if args.merge:
        return merge(args.merge, args.json)
    if args.paired:
        tag = "synthetic" if args.synthetic else (args.data or REAL_DATA).name
        return paired_to_base(args.out or Path(f"results/flow-benchmark-{tag}"), args.paired,
                              args.json or Path(f"benchmarks/flow_benchmark-{tag}.json"))
    found = flow_folder(args.synthetic, args.data, "flow benchmark")
    if found is None:
        return 0
    data, tag = found
    out = args.out or Path(f"results/flow-benchmark-{tag}")
    summary_path = args.json or Path(f"benchmarks/flow_benchmark-{tag}.json")
    db = read_flowfolder(data)
    datasets = sorted(db.table.dataset.unique())
    print(f"{data}: {len(db.table)} clips, {db.table.subject.nunique()} subjects, databases "
          + ", ".join(f"{d} {n}" for d, n in db.table.groupby("dataset").size().items()))
    previous = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    previous.pop("paired_subject_bootstrap", None)  # made from the rows as they were: run --paired again
    results = previous.get("rows", {})
    jobs = [(row, "loso", None) for row in args.rows] if "loso" in args.protocols else []
    if "cross" in args.protocols:
        pairs = [tuple(p.split(":")) for p in args.pairs] if args.pairs else list(permutations(datasets, 2))
        jobs += [(row, "cross", pair) for row in args.rows for pair in pairs]
    for row, protocol, pair in jobs:
        name = row if protocol == "loso" else f"{row} [{pair[0]} -> {pair[1]}]"
        config = row_config(row, data, tuple(args.seeds), protocol, pair, args.threads)
        folder = out / (row if protocol == "loso" else f"{row}-{pair[0]}-to-{pair[1]}")
        start = time.perf_counter()
        result = run_experiment(config, folder, "data/cache", database=db, progress=False, allow_code_change=True,
                                jobs=args.jobs)
        seconds = sum(f["seconds"] for f in stored_folds(folder, args.seeds))
        results[name] = {**summary_row(result.metrics, seconds, len(args.seeds)), "row": row,
                         "protocol_short": protocol if protocol == "loso" else f"{pair[0]} -> {pair[1]}",
                         "config": config.to_dict()}
        print(f"{name}: UF1 {cell(results[name]['honest']['whole'], 'uf1')}, leaky shadow "
              f"{cell(results[name]['leaky_shadow']['whole'], 'uf1')} ({time.perf_counter() - start:.0f} s now)",
              flush=True)
        summary_path.write_text(json.dumps({
            **previous, "data": str(data), "clips": int(len(db.table)), "subjects": int(db.table.subject.nunique()),
            "databases": datasets, "seeds": args.seeds, "machine": {
                "cpu": cpu_name(), "native_bf16": bf16_supported(), "threads": torch.get_num_threads(),
                "torch": torch.__version__, "python": platform.python_version()},
            "references": REFERENCES, "rows": results}, indent=2, default=str))
    print()
    print(markdown(results, datasets))
    print(f"\nwrote {summary_path}; machine: {cpu_name()} (native bf16: {bf16_supported()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
