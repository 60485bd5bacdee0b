"""What fast optical flow costs in accuracy: TV-L1 against DIS and Farneback, in training and at prediction.

1. Training with each flow (LOSO; ``training``): the ``tscnn-plus`` recipe on the u, v, strain stream (``uvs``) of the
   synthetic MEGC2019-layout composite's frames (16 CASME II, 8 SAMM, 10 SMIC-layout subjects; 254 clips,
   3 classes; the frames ``tscnn bench --synthetic`` makes), the flow computed by each method. Per
   flow: UF1 / UAR (mean +- std over seeds), the seed ensemble, the paired subject bootstrap of each fast
   flow against TV-L1 (``tscnn.metrics.paired_subject_bootstrap``), and the flow's time per clip.
   ``training_casme2``: the same with all three streams (SS, LS, DT) on the main job's synthetic CASME II
   database (data seed 0, 114 clips, 12 subjects, 5 classes), TV-L1 against DIS.
2. The fast path at prediction (``tscnn predict --fast``): ``tscnn-plus`` models (three streams) trained
   with TV-L1 and with DIS on every clip of the synthetic CASME II database of data seed 0, then every clip
   of data seed 1 (other subjects, never seen) predicted by ``tscnn predict``'s path (``predict_frames``,
   the model's own flow) and by ``FastPredictor`` with DIS and with Farneback (apex as annotated):
   accuracy, UF1, UAR of each and the share of clips whose answer equals the reference path's.

Results folders are resumable (``--out``); the summary goes to ``--json`` (``--parts`` reruns one part and
keeps the other's figures). ``--quick`` runs both parts on
tiny generated databases with 2 epochs (a smoke test of the script, not a measurement).

Usage: python benchmarks/fast_flow_accuracy.py [--seeds 0 1 2] [--threads 1] [--jobs 2]
       [--out results/fast-flow-accuracy] [--json benchmarks/fast_flow_accuracy.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tscnn.app import ensure_demo_data, train_final_model
from tscnn.bench import make_synthetic_frames  # the synthetic composite, made one way
from tscnn.config import Config
from tscnn.datasets import Database, read_casme2, read_megc2019
from tscnn.fast import FastPredictor
from tscnn.metrics import evaluate_predictions, paired_subject_bootstrap
from tscnn.predict import SavedModel, load_saved_model, predict_frames, read_clip
from tscnn.preprocessing.prepare import PrepSettings, clip_inputs
from tscnn.run_facts import cpu_name
from tscnn.runner import config_for, run_experiment
from tscnn.synth import SynthSettings, write_database

FLOWS = ("tvl1", "dis", "farneback")


def flow_ms_per_clip(table: pd.DataFrame, flow: str, clips: int = 20) -> float:
    """Median milliseconds of one clip's two flow fields (onset->apex, apex->offset) at the work size."""
    settings = PrepSettings.from_config(config_for("tscnn", "tscnn-plus", flow=flow))
    times = []
    for row in table.head(clips).to_dict("records"):
        start = time.perf_counter()
        clip_inputs(row, settings)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def training_part(db: Database, root: Path, streams: tuple[str, ...], flows: tuple[str, ...], seeds: tuple[int, ...],
                  threads: int, jobs: int, out: Path, quick: bool) -> dict:
    """LOSO with each flow (the ``tscnn-plus`` recipe on ``streams``); every other flow paired against the first."""
    results, predictions = {}, {}
    for flow in flows:
        config = config_for("tscnn", "tscnn-plus", dataset=db.name, root=str(root), classes=db_classes(db),
                            apex_fallback="middle", streams=streams, flow=flow, seeds=seeds, threads=threads)
        if quick:
            config = replace(config, max_epochs=2, average_last=1)
        folder = out / f"loso-{flow}" if streams == ("uvs",) else out / f"loso-{db.name}-{'-'.join(streams)}-{flow}"
        start = time.perf_counter()
        run = run_experiment(config, folder, cache_dir="data/cache", database=db, progress=False, jobs=jobs)
        folds = [json.loads(p.read_text())["seconds"] for s in seeds
                 for p in (folder / f"seed_{s}" / "folds").glob("*.json")]
        metrics = run.metrics
        results[flow] = {"uf1": metrics["mean_std_over_seeds"]["uf1"], "uar": metrics["mean_std_over_seeds"]["uar"],
                         "seed_ensemble": {k: metrics["seed_ensemble"][k] for k in ("uf1", "uar")},
                         "per_seed_uf1": [metrics["per_seed"][s]["uf1"] for s in seeds],
                         "flow_ms_per_clip": flow_ms_per_clip(db.table, flow, 4 if quick else 20),
                         "train_minutes_per_seed": sum(folds) / 60 / len(seeds),
                         "wall_minutes": (time.perf_counter() - start) / 60}
        predictions[flow] = run.predictions
    for flow in flows[1:]:
        results[flow]["against_" + flows[0]] = paired_subject_bootstrap(
            predictions[flow], predictions[flows[0]], len(db.classes), resamples=200 if quick else 2000)
    return {"data": str(root), "clips": int(len(db.table)), "subjects": int(db.table.subject.nunique()),
            "classes": list(db.classes), "seeds": list(seeds), "recipe": f"tscnn-plus, streams {'+'.join(streams)}",
            "flows": results}


def db_classes(db: Database) -> str:
    """The class-set name a Config needs for the databases read here."""
    return "3class" if db.name == "megc2019" else "5class"


def prediction_part(train_root: Path, test_root: Path, threads: int, out: Path, quick: bool,
                    train_flows: tuple[str, ...] = ("tvl1", "dis")) -> dict:
    """For each training flow, a model trained on every clip of data seed 0; every clip of data seed 1 predicted
    by the reference path (``predict_frames``, the model's own flow) and by the fast path with DIS and with
    Farneback. Agreement is with the same model's reference path."""
    test = read_casme2(test_root, classes="5class")
    if quick:
        test = replace(test, table=test.table.head(6))
    result = {"train": str(train_root), "test": str(test_root), "test_clips": int(len(test.table)),
              "test_subjects": int(test.table.subject.nunique()), "models": {}}
    for train_flow in train_flows:
        config = config_for("tscnn", "tscnn-plus", dataset="casme2", root=str(train_root), classes="5class",
                            threads=threads, flow=train_flow)
        if quick:
            config = replace(config, max_epochs=2, average_last=1)
        model_path = out / f"final-{train_flow}" / "model.pt"
        if not model_path.exists() or _recipe(load_saved_model(model_path).config) != _recipe(config):
            train_final_model(config, out / f"final-{train_flow}", cache_dir="data/cache", progress=False)
        saved = load_saved_model(model_path)
        result["models"][train_flow] = _predict_every_clip(saved, test)
        result["classes"] = list(saved.classes)
    return result


def _recipe(config: Config) -> dict:
    """What decides a trained model (the thread count does not)."""
    return {k: v for k, v in config.to_dict().items() if k != "threads"}


def _predict_every_clip(saved: SavedModel, test: Database) -> dict:
    """Every clip of ``test`` by the reference path and each fast flow: scores, agreement, time per clip."""
    paths = {"reference": None, **{flow: FastPredictor(saved, flow=flow) for flow in FLOWS[1:]}}
    rows = []
    for row in test.table.to_dict("records"):
        images, numbers = read_clip(row["frames_dir"])
        phases = [int(row[c]) for c in ("onset", "apex", "offset")]  # frame numbers, as annotated
        answers = {}
        for path, fast in paths.items():
            start = time.perf_counter()
            if fast is None:
                answer = predict_frames(saved, images, numbers, row["clip"], *phases, cropped=bool(row["cropped"]))
            else:
                answer = fast.predict(images, *(numbers.index(n) for n in phases), cropped=bool(row["cropped"]))
            answers[path] = (saved.classes.index(answer.predicted), time.perf_counter() - start)
        rows.append({"dataset": row["dataset"], "subject": row["subject"], "clip": row["clip"],
                     "label": int(row["label"]), **{f"pred_{p}": a[0] for p, a in answers.items()},
                     **{f"seconds_{p}": a[1] for p, a in answers.items()}})
    table = pd.DataFrame(rows)
    scores = {}
    for path in paths:
        scored = evaluate_predictions(table.assign(pred=table[f"pred_{path}"]), len(saved.classes))
        scores[path] = {"accuracy": scored["accuracy"], "uf1": scored["uf1"], "uar": scored["uar"],
                        "agrees_with_reference": float((table[f"pred_{path}"] == table["pred_reference"]).mean()),
                        "median_ms_per_clip": 1000 * float(table[f"seconds_{path}"].median())}
    return {"flow_in_training": saved.config.flow, "paths": scores}


def markdown(summary: dict) -> str:
    lines = []
    for part in ("training", "training_casme2"):
        if part not in summary:
            continue
        t = summary[part]
        lines += ["", f"Training with each flow: LOSO, {t['recipe']}, {t['clips']} clips, {t['subjects']} subjects, "
                  f"seeds {t['seeds']} ({t['data']})", "",
                  "| flow | UF1 | UAR | seed ensemble UF1 / UAR | UF1 minus TV-L1's [95 % interval] | flow ms / clip |",
                  "|---|---|---|---|---|---|"]
        for flow, r in t["flows"].items():
            pair = r.get("against_tvl1")
            gap = "-" if pair is None else \
                f"{pair['uf1_difference']:+.3f} [{pair['ci_low']:+.3f}, {pair['ci_high']:+.3f}]"
            lines.append(f"| {flow} | {r['uf1']['mean']:.3f} +- {r['uf1']['std']:.3f} | {r['uar']['mean']:.3f} +- "
                         f"{r['uar']['std']:.3f} | {r['seed_ensemble']['uf1']:.3f} / {r['seed_ensemble']['uar']:.3f} "
                         f"| {gap} | {r['flow_ms_per_clip']:.1f} |")
    if "prediction" in summary:
        p = summary["prediction"]
        lines += ["", f"Prediction: {p['test_clips']} unseen clips of {p['test_subjects']} subjects", "",
                  "| model trained with | prediction path | accuracy | UF1 | UAR | same answer as the reference path "
                  "| ms / clip |", "|---|---|---|---|---|---|---|"]
        for train_flow, model in p["models"].items():
            for path, r in model["paths"].items():
                name = f"`tscnn predict` ({train_flow})" if path == "reference" else f"fast, {path}"
                lines.append(f"| {train_flow} | {name} | {r['accuracy']:.3f} | {r['uf1']:.3f} | {r['uar']:.3f} | "
                             f"{r['agrees_with_reference']:.3f} | {r['median_ms_per_clip']:.1f} |")
    return "\n".join(lines)


def casme2_roots(data: Path, quick: bool) -> tuple[Path, Path]:
    """The synthetic CASME II databases of data seeds 0 and 1 (the main job's and the one it was chosen on;
    3 subjects each with ``quick``)."""
    if not quick:
        return ensure_demo_data(data / "synthetic-casme2", 0), ensure_demo_data(data / "synthetic-casme2-s1", 1)
    roots = data / "casme2-s0", data / "casme2-s1"
    for root, seed in zip(roots, (0, 1), strict=True):
        if not root.exists():
            write_database(root, SynthSettings(subjects=3, seed=seed))
    return roots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="folds trained at once in worker processes")
    parser.add_argument("--parts", nargs="+", default=["training", "training_casme2", "prediction"],
                        choices=["training", "training_casme2", "prediction"])
    parser.add_argument("--out", type=Path, default=Path("results/fast-flow-accuracy"))
    parser.add_argument("--json", type=Path, help="summary (default: benchmarks/fast_flow_accuracy.json; with --quick "
                        "OUT/quick/fast_flow_accuracy.json)")
    parser.add_argument("--quick", action="store_true", help="tiny databases, 2 epochs: a smoke test, no measurement "
                        "(everything under OUT/quick, apart from the real results)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.out = args.out / "quick"
    args.json = args.json or (args.out / "fast_flow_accuracy.json" if args.quick
                              else Path("benchmarks/fast_flow_accuracy.json"))
    data = args.out / "data" if args.quick else Path("data")
    previous = json.loads(args.json.read_text()) if args.json.exists() else {}
    summary: dict = {**previous, "cpu": cpu_name(), "torch": torch.__version__, "quick": args.quick}
    if "training" in args.parts:
        # The frames tscnn bench --synthetic makes (2 subjects per part with --quick).
        frames = make_synthetic_frames(data / "synthetic-megc2019", 2) if args.quick else make_synthetic_frames()
        db = read_megc2019(frames, apex_fallback="middle")
        summary["training"] = training_part(db, frames, ("uvs",), FLOWS, tuple(args.seeds), args.threads, args.jobs,
                                            args.out, args.quick)
    if "training_casme2" in args.parts:
        root = casme2_roots(data, args.quick)[0]
        summary["training_casme2"] = training_part(read_casme2(root, classes="5class"), root, ("ss", "ls", "dt"),
                                                   FLOWS[:2], tuple(args.seeds), args.threads, args.jobs, args.out,
                                                   args.quick)
    if "prediction" in args.parts:
        train_root, test_root = casme2_roots(data, args.quick)
        summary["prediction"] = prediction_part(train_root, test_root, args.threads, args.out, args.quick)
    print(markdown(summary))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
