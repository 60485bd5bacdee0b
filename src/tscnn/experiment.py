"""Leave-one-subject-out experiment: database -> prepared tensors -> folds -> trainer -> predictions -> metrics.

Every finished fold is written to ``<out>/seed_<s>/folds/<subject>.json`` at once, so an
interrupted run resumes from the last finished fold and gives the same pooled predictions.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tscnn import __version__
from tscnn.config import Config
from tscnn.datasets import Database, load_database
from tscnn.metrics import evaluate_predictions, over_seeds
from tscnn.preprocessing.prepare import Prepared, prepare
from tscnn.protocols import loso_folds
from tscnn.train import Trainer


@dataclass
class ExperimentResult:
    """What a run produced: pooled predictions of every seed and their metrics."""

    out: Path
    predictions: pd.DataFrame
    metrics: dict
    complete: bool


def code_version() -> str:
    """Package version plus the git commit (and '+dirty') when run from a checkout."""
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    return f"{__version__}" + (f"+g{commit}" if commit else "") + ("-dirty" if dirty else "")


def config_database(config: Config) -> Database:
    """The database a Config names, read with its class set and apex rule."""
    return load_database(config.dataset, config.root, config.coding, config.classes, config.apex_fallback)


def check_or_store_config(config: Config, out: Path) -> None:
    """Store the config in a new results folder; refuse to resume one made with other settings."""
    path = out / "config.json"
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != json.loads(json.dumps(config.to_dict())):
            changed = sorted(k for k in stored if stored.get(k) != json.loads(json.dumps(config.to_dict())).get(k))
            raise ValueError(f"{out} holds a run with other settings ({', '.join(changed)}); "
                             "use another --out or delete it to start over")
        return
    out.mkdir(parents=True, exist_ok=True)
    config.save(path)


def run_fold(config: Config, prepared: Prepared, labels: np.ndarray, num_classes: int, fold, seed: int,
             fold_index: int, progress: bool) -> dict:
    """Train and test one fold; returns a JSON-ready record of its predictions and training history."""
    arrays = {s: prepared.arrays[s] for s in config.streams}
    trainer = Trainer(config, num_classes, seed=seed * 1000 + fold_index)
    start = time.perf_counter()
    result = trainer.fit(arrays, labels, fold.train, fold.val, fold.test, desc=f"fold {fold.test_subject}",
                         progress=progress)
    proba = trainer.predict_proba(result.model, arrays, fold.test)
    table = prepared.table
    return {
        "test_subject": fold.test_subject,
        "val_subjects": sorted(set(table.subject.iloc[fold.val])),
        "n_train_clips": int(len(fold.train)),
        "chosen_epoch": result.chosen_epoch,
        "seconds": time.perf_counter() - start,
        "history": result.history,
        "rows": fold.test.tolist(),
        "proba": np.round(proba, 6).tolist(),
    }


def fold_predictions(record: dict, table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per-clip prediction rows of a finished fold."""
    rows = table.iloc[record["rows"]]
    proba = np.asarray(record["proba"])
    out = rows[["dataset", "subject", "clip", "emotion", "label"]].copy()
    out["pred"] = proba.argmax(1)
    for c in range(proba.shape[1]):
        out[f"p{c}"] = proba[:, c]
    out["seed"] = seed
    out["fold"] = record["test_subject"]
    return out


def run_experiment(config: Config, out: str | Path, cache_dir: str | Path | None = None,
                   database: Database | None = None, progress: bool = True,
                   max_new_folds: int | None = None) -> ExperimentResult:
    """Run (or resume) LOSO over every seed of ``config``; write predictions and metrics under ``out``.

    ``max_new_folds`` stops after that many newly trained folds (work in chunks; tests use it to
    simulate an interruption).
    """
    out = Path(out)
    if config.threads:
        torch.set_num_threads(config.threads)
    check_or_store_config(config, out)
    db = database or config_database(config)
    prepared = prepare(db.table, config.prep(), cache_dir, progress=progress)
    labels = prepared.table["label"].to_numpy()
    num_classes = len(db.classes)
    new_folds, complete, all_predictions = 0, True, []
    for seed in config.seeds:
        folds = loso_folds(prepared.table, config.val_fraction, seed)
        fold_dir = out / f"seed_{seed}" / "folds"
        fold_dir.mkdir(parents=True, exist_ok=True)
        for index, fold in enumerate(folds):
            path = fold_dir / f"{fold.test_subject}.json"
            if not path.exists():
                if max_new_folds is not None and new_folds >= max_new_folds:
                    complete = False
                    break
                record = run_fold(config, prepared, labels, num_classes, fold, seed, index, progress)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(record))
                tmp.replace(path)
                new_folds += 1
            all_predictions.append(fold_predictions(json.loads(path.read_text()), prepared.table, seed))
    predictions = pd.concat(all_predictions, ignore_index=True) if all_predictions else pd.DataFrame()
    metrics = summarise(predictions, config, db, num_classes) if complete else {}
    if complete:
        predictions.to_csv(out / "predictions.csv", index=False)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out / "run_info.json").write_text(json.dumps({
            "code_version": code_version(), "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "threads": torch.get_num_threads(), "seeds": list(config.seeds),
        }, indent=2))
    return ExperimentResult(out, predictions, metrics, complete)


def summarise(predictions: pd.DataFrame, config: Config, db: Database, num_classes: int) -> dict:
    """Metrics per seed (pooled over folds) and their mean +- std over seeds."""
    per_seed = {int(seed): evaluate_predictions(part, num_classes) for seed, part in predictions.groupby("seed")}
    per_dataset = {name: over_seeds([m["per_dataset"][name] for m in per_seed.values()])
                   for name in sorted(next(iter(per_seed.values())).get("per_dataset", {}))}
    return {
        "dataset": db.name, "classes": list(db.classes), "clips": int(len(db.table)),
        "subjects": int(db.table.subject.nunique()), "protocol": "leave-one-subject-out",
        "selection": config.selection, "leaky": config.leaky,
        "f1": "UF1 = macro F1 over classes present, on predictions pooled over all folds",
        "mean_std_over_seeds": over_seeds(list(per_seed.values())),
        "per_seed": per_seed, "quirks": db.quirks,
        **({"per_dataset_mean_std_over_seeds": per_dataset} if per_dataset else {}),
    }


def train_final_model(config: Config, out: str | Path, cache_dir: str | Path | None = None,
                      database: Database | None = None, progress: bool = True) -> Path:
    """One model on every subject of the database, for prediction on new clips (``tscnn predict``).

    Early stopping uses held-out subjects as in LOSO (``val_fraction``); there is no test subject,
    so this model has no evaluation figure of its own: LOSO (``tscnn run``) measures the recipe.
    """
    from tscnn.predict import save_model
    from tscnn.protocols import validation_subjects

    if config.threads:
        torch.set_num_threads(config.threads)
    db = database or config_database(config)
    prepared = prepare(db.table, config.prep(), cache_dir, progress=progress)
    subjects = prepared.table["subject"].astype(str).to_numpy()
    val_subjects = validation_subjects(sorted(set(subjects)), config.val_fraction,
                                       np.random.default_rng([config.seeds[0], 17]))
    val = np.flatnonzero(np.isin(subjects, val_subjects))
    train = np.flatnonzero(~np.isin(subjects, val_subjects))
    arrays = {s: prepared.arrays[s] for s in config.streams}
    labels = prepared.table["label"].to_numpy()
    trainer = Trainer(config, len(db.classes), seed=config.seeds[0])
    result = trainer.fit(arrays, labels, train, val, desc="final model", progress=progress)
    meta = {"database": db.name, "clips": int(len(db.table)), "train_subjects": sorted(set(subjects[train])),
            "val_subjects": val_subjects, "chosen_epoch": result.chosen_epoch, "code_version": code_version(),
            "history": result.history}
    return save_model(Path(out) / "model.pt", result.model, config, db.classes, meta)
