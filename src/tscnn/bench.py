"""The real-data benchmark (``tscnn bench``): TSCNN and its peers on a folder of onset->apex flows, one
honest protocol, every row an ordinary run.

Data: a flow folder (``tscnn.datasets.flowfolder``: ``index.csv`` + 28x28 u, v, strain PNGs), e.g. the
MEGC2019 composite's CASME II and SMIC-HS parts (309 clips, 40 subjects). Licensed data is read where it lies
and nothing derived from it is kept but metrics. ``synthetic`` runs the same table on a synthetic
MEGC2019-layout composite (CASME II, SAMM and SMIC layouts made by ``tscnn.synth``, its flows computed by
the project and exported to the same format), so the whole path runs without the data.

Every row is an ordinary ``tscnn run`` (``tscnn.runner.run_experiment``) in its own results folder under
``out``: LOSO over every subject, and the cross-database protocol (train on one or several databases' clips,
epoch choice on their held-out subjects, test on others) for each pair. Each finished fold is saved at once,
so an interrupted benchmark started again continues where it stopped, and the summary keeps the rows run
before. Per row: UF1 and UAR pooled over folds for the whole set and for each database, mean +- std over
the seeds, the seed ensemble, the leaky shadow (each fold's epoch chosen on the test subject: what the common
leaky practice would have claimed), minutes per seed, and the machine. ``merge`` joins summaries made in
several processes or machines; ``paired_to_base`` compares finished rows with one of them (the floor) by a
paired subject bootstrap, training nothing.
"""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import permutations
from pathlib import Path

import pandas as pd
import torch

from tscnn.bench_rows import REFERENCES, ROWS, Pair, pair_folder, pair_label
from tscnn.config import Config
from tscnn.datasets import read_flowfolder
from tscnn.datasets.flowfolder import write_flow_folder
from tscnn.datasets.megc2019 import read_megc2019
from tscnn.metrics import paired_subject_bootstrap
from tscnn.run_facts import cpu_name
from tscnn.runner import config_for, run_experiment
from tscnn.synth import SynthSettings, write_database
from tscnn.train import bf16_supported

SYNTHETIC_FRAMES = Path("data/synthetic-megc2019")
SYNTHETIC_FLOWS = Path("data/synthetic-megc2019-flow28")
SYNTHETIC_PARTS = (("CASME2_Cropped", "casme2", 16), ("SAMM", "samm", 8), ("SMIC_all_cropped", "smic", 10))
"""The synthetic composite's parts: folder, database layout, subjects (all generated with seed 7)."""


def make_synthetic_frames(frames: Path = SYNTHETIC_FRAMES, subjects: int | None = None) -> Path:
    """The synthetic MEGC2019-layout composite's frames (16 CASME II, 8 SAMM, 10 SMIC subjects, seed 7; or
    ``subjects`` per part), each part made once, then reused."""
    for folder, layout, count in SYNTHETIC_PARTS:
        if not (frames / folder).exists():
            write_database(frames / folder, SynthSettings(subjects=subjects or count, seed=7, layout=layout))
    return frames


def make_synthetic_flows(frames: Path = SYNTHETIC_FRAMES, flows: Path = SYNTHETIC_FLOWS) -> Path:
    """The synthetic MEGC2019-layout composite (``make_synthetic_frames``), its flows exported as a flow folder;
    made once, then reused."""
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
    folder = make_synthetic_flows() if synthetic else data
    if folder is None or not (folder / "index.csv").is_file():
        print(f"{program}: no flow folder at {folder or '(none given)'} (give --data DIR, a folder with "
              "index.csv, or --synthetic); nothing was run.", file=sys.stderr)
        return None
    return folder, "synthetic" if synthetic else folder.name


def row_config(row: str, data: Path, seeds: tuple[int, ...], protocol: str, pair: Pair | None,
               threads: int) -> Config:
    """The Config of one benchmark row under a protocol (``pair``: the cross-database pair)."""
    settings = dict(ROWS[row])
    config = config_for(settings.pop("model"), settings.pop("preset", None), dataset="flowfolder", root=str(data),
                        classes="all", seeds=seeds, threads=threads, **settings)
    if protocol == "cross":
        if pair is None:
            raise ValueError(f"row {row}: the cross-database protocol needs a TRAIN:TEST pair")
        if config.selection == "fixed":
            config = replace(config, val_fraction=0.0)  # a fixed budget needs no validation subjects
        config = replace(config, protocol="cross", train_datasets=tuple(pair[0]), test_datasets=tuple(pair[1]))
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


def merge(paths: list[Path], out: Path | None) -> dict:
    """One summary from several, e.g. rows run with different seeds in parallel processes, written to ``out``
    when given. Each row keeps the machine of the summary it came from (the summary's own ``machine`` is the
    first part's)."""
    parts = [json.loads(p.read_text()) for p in paths]
    merged = {**parts[0], "rows": {}, "merged_from": [str(p) for p in paths]}
    for part in parts:
        merged["rows"].update({name: {"machine": part.get("machine"), **row} for name, row in part["rows"].items()})
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(merged, indent=2, default=str))
    return merged


def paired_to_base(out: Path, base: str, summary_path: Path | None, resamples: int = 2000) -> dict:
    """UF1 difference of every finished row in ``out`` to the row ``base`` (e.g. the floor) on the same clips,
    per protocol (LOSO, and each cross-database pair the base has), with a 95 % interval from resampling
    subjects (``tscnn.metrics.paired_subject_bootstrap``): whether a gap between two rows is larger than the
    subjects' spread; stored into the summary at ``summary_path`` when it exists. Trains nothing."""
    if not (out / base / "predictions.csv").is_file():
        raise ValueError(f"bench: no finished LOSO run of {base!r} in {out}; run it first")
    protocols = {"": ""}  # folder suffix -> the suffix of the summary's row names
    for folder in sorted(out.glob(f"{base}-*")):
        pair = re.fullmatch(r"-([a-z0-9+]+)-to-([a-z0-9+]+)", folder.name[len(base):])
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
    comparison = {"base": base, "resamples": resamples, "rows": paired}
    if summary_path is not None and summary_path.exists():
        summary = json.loads(summary_path.read_text())
        summary.setdefault("paired_subject_bootstrap", {})[base] = {"resamples": resamples, "rows": paired}
        summary_path.write_text(json.dumps(summary, indent=2, default=str))
        comparison["stored_in"] = str(summary_path)
    return comparison


def paired_markdown(comparison: dict) -> str:
    """The paired comparison as a table: each row's UF1 difference to the base, its interval and sign share."""
    base = comparison["base"]
    lines = [f"| row | UF1 - UF1({base}) | 95 % interval (subjects resampled) | share of resamples above 0 |",
             "|---|---|---|---|"]
    lines += [f"| {row} | {r['uf1_difference']:+.3f} | [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
              f"{r['share_above_zero']:.3f} |" for row, r in comparison["rows"].items()]
    return "\n".join(lines)


def machine() -> dict:
    """The machine a benchmark's minutes come from."""
    return {"cpu": cpu_name(), "native_bf16": bf16_supported(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def run_bench(data: Path, out: Path, summary_path: Path, rows: list[str], protocols: list[str],
              seeds: list[int], pairs: list[Pair] | None = None, threads: int = 0, jobs: int = 1,
              cache_dir: str | Path = "data/cache", say: Callable[[str], None] = print) -> dict:
    """Run (or resume) every row under every protocol on the flow folder ``data``; the summary (written to
    ``summary_path`` after each row, keeping the rows run before) is returned. ``pairs``: the cross-database
    pairs (default: every ordered pair of the folder's databases, one database on each side)."""
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        raise ValueError(f"unknown benchmark row(s) {', '.join(unknown)}; expected some of {', '.join(ROWS)}")
    db = read_flowfolder(data)
    datasets = sorted(db.table.dataset.unique())
    say(f"{data}: {len(db.table)} clips, {db.table.subject.nunique()} subjects, databases "
        + ", ".join(f"{d} {n}" for d, n in db.table.groupby("dataset").size().items()))
    previous = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    previous.pop("paired_subject_bootstrap", None)  # made from the rows as they were: run the comparison again
    results = previous.get("rows", {})
    summary = previous
    work: list[tuple[str, str, Pair | None]] = [(row, "loso", None) for row in rows] if "loso" in protocols else []
    if "cross" in protocols:
        chosen = pairs if pairs else [((a,), (b,)) for a, b in permutations(datasets, 2)]
        work += [(row, "cross", pair) for row in rows for pair in chosen]
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    for row, protocol, pair in work:
        name = row if pair is None else f"{row} [{pair_label(pair)}]"
        config = row_config(row, data, tuple(seeds), protocol, pair, threads)
        folder = out / pair_folder(row, pair)
        start = time.perf_counter()
        result = run_experiment(config, folder, cache_dir, database=db, progress=False, allow_code_change=True,
                                jobs=jobs)
        seconds = sum(f["seconds"] for f in stored_folds(folder, seeds))
        results[name] = {**summary_row(result.metrics, seconds, len(seeds)), "row": row,
                         "protocol_short": protocol if pair is None else pair_label(pair),
                         "config": config.to_dict()}
        say(f"{name}: UF1 {cell(results[name]['honest']['whole'], 'uf1')}, leaky shadow "
            f"{cell(results[name]['leaky_shadow']['whole'], 'uf1')} ({time.perf_counter() - start:.0f} s now)")
        summary = {**previous, "data": str(data), "clips": int(len(db.table)),
                   "subjects": int(db.table.subject.nunique()), "databases": datasets, "seeds": list(seeds),
                   "machine": machine(), "references": REFERENCES, "rows": results}
        summary_path.write_text(json.dumps(summary, indent=2, default=str))
    return summary


def default_paths(tag: str) -> tuple[Path, Path]:
    """Where ``tscnn bench`` writes unless told: the results folders, and the summary inside them."""
    out = Path(f"results/flow-benchmark-{tag}")
    return out, out / "summary.json"


def bench_main(args, default_data: Path | None = None,
               summary_default: Callable[[str], Path] | None = None, as_json: bool = False) -> int:
    """What ``tscnn bench`` (and the benchmark script) does with its parsed options: merge, compare, or run.
    With ``as_json`` the result is printed as JSON on stdout (progress on stderr) instead of tables."""
    def say(text: str) -> None:
        print(text, file=sys.stderr if as_json else sys.stdout, flush=True)

    def summary_for(tag: str) -> Path:
        return args.summary or (summary_default(tag) if summary_default else default_paths(tag)[1])

    if args.merge:
        merged = merge(args.merge, args.summary)
        if as_json:
            print(json.dumps(merged, indent=2, default=str))
        else:
            print(markdown(merged["rows"], merged["databases"]))
            print(f"\nmachine: {merged['machine']}" + (f"; wrote {args.summary}" if args.summary else ""))
        return 0
    data = args.data or default_data
    if args.paired:
        tag = "synthetic" if args.synthetic else (data.name if data else "data")
        comparison = paired_to_base(args.out or default_paths(tag)[0], args.paired, summary_for(tag))
        if as_json:
            print(json.dumps(comparison, indent=2, default=str))
        else:
            print(paired_markdown(comparison))
            if "stored_in" in comparison:
                print(f"\nwrote the comparison into {comparison['stored_in']}")
        return 0
    found = flow_folder(args.synthetic, data, "bench")
    if found is None:
        return 0 if default_data is not None else 2
    data, tag = found
    summary_path = summary_for(tag)
    summary = run_bench(data, args.out or default_paths(tag)[0], summary_path, args.rows, args.protocols,
                        args.seeds, args.pairs, args.threads, args.jobs, say=say)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print()
        print(markdown(summary.get("rows", {}), summary.get("databases", [])))
        print(f"\nwrote {summary_path}; machine: {cpu_name()} (native bf16: {bf16_supported()})")
    return 0
