"""Metrics on predictions pooled over all folds (never averaged per fold unless said so).

UF1 is the macro F1 over the classes present in the ground truth; UAR is the macro recall over them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, recall_score


def pooled_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """Accuracy, UF1, UAR and the confusion matrix (rows = truth) of pooled predictions."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    present = sorted(set(y_true.tolist()))
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "uf1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "confusion": confusion_matrix(y_true, y_pred, labels=list(range(num_classes))).tolist(),
    }


def evaluate_predictions(predictions: pd.DataFrame, num_classes: int) -> dict:
    """Pooled metrics for the whole set and, for composites, for each dataset within it."""
    result = {"pooling": "pooled over all LOSO folds", **pooled_metrics(predictions.label, predictions.pred,
                                                                       num_classes)}
    if "fold" in predictions and len(predictions):
        # Papers rarely say how their F1 is pooled; the mean of each fold's macro F1 (classes present in that
        # fold) is the other common reading, given beside the pooled UF1 so tables can be compared like for like.
        folds = [pooled_metrics(part.label, part.pred, num_classes) for _, part in predictions.groupby("fold")]
        result["fold_mean_f1"] = float(np.mean([m["uf1"] for m in folds]))
        result["fold_mean_accuracy"] = float(np.mean([m["accuracy"] for m in folds]))
    if predictions["dataset"].nunique() > 1:
        result["per_dataset"] = {
            name: pooled_metrics(part.label, part.pred, num_classes)
            for name, part in predictions.groupby("dataset")
        }
    return result


PREDICTION_KEY = ["seed", "dataset", "subject", "clip"]
"""What names one row of a run's ``predictions.csv``: a clip of one seed."""


def read_run_predictions(folder: Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """A finished run's ``predictions.csv`` and its class names (from the ``p_<class>`` columns, in order), for
    scripts that set finished runs side by side. A ``ValueError`` in one line names the folder when it has none, or
    the file when it is not one."""
    path = folder / "predictions.csv"
    if not path.is_file():
        raise ValueError(f"{folder}: no predictions.csv (an unfinished run writes it when its seeds are done)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise ValueError(f"{path}: not a predictions file ({str(error).splitlines()[0]})") from None
    missing = [c for c in (*PREDICTION_KEY, "label", "pred") if c not in table.columns]
    classes = tuple(c.removeprefix("p_") for c in table.columns if c.startswith("p_"))
    if missing or not classes:
        raise ValueError(f"{path}: not a predictions file (no {', '.join(missing) or 'p_<class>'} column)")
    return table, classes


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation over seeds."""
    array = np.asarray(values, float)
    return float(array.mean()), float(array.std())


def format_mean_std(cell: dict[str, float], seeds: int) -> str:
    """``mean +- std`` with several seeds; the mean alone with one (a std of one seed says nothing)."""
    return f"{cell['mean']:.4f} +- {cell['std']:.4f}" if seeds > 1 else f"{cell['mean']:.4f}"


def over_seeds(metrics: list[dict], keys: tuple[str, ...] = ("accuracy", "uf1", "uar")) -> dict[str, dict[str, float]]:
    """{metric: {"mean", "std"}} over the per-seed metric dicts (each pooled over folds)."""
    return {k: dict(zip(("mean", "std"), mean_std([m[k] for m in metrics]), strict=True)) for k in keys}


def seeds_together(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """Each seed's figures from several runs of one recipe (``{seed: figures}`` each), as one run of all their
    seeds: what pooling seeds kept in several results folders needs. The same seed in two runs is one seed
    run twice, not two seeds: a ``ValueError`` naming it."""
    together: dict[str, dict] = {}
    for run in runs:
        for seed, figures in run.items():
            if seed in together:
                raise ValueError(f"seed {seed} is in two runs")
            together[seed] = figures
    return together


def uf1_from_confusions(confusions: np.ndarray) -> np.ndarray:
    """UF1 of each confusion matrix in a stack (..., C, C; rows = truth), over the classes present in its
    truth: the same figure as ``pooled_metrics`` gives, computed for thousands of resamples at once."""
    confusions = np.asarray(confusions, float)
    tp = np.diagonal(confusions, axis1=-2, axis2=-1)
    truth, predicted = confusions.sum(-1), confusions.sum(-2)
    present = truth > 0
    denominator = truth + predicted  # = 2 TP + FP + FN
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return (f1 * present).sum(-1) / np.maximum(present.sum(-1), 1)


def _subject_confusions(predictions: pd.DataFrame, subjects: list, num_classes: int) -> np.ndarray:
    """Confusion matrices per seed and subject: (seeds, subjects, C, C)."""
    seeds = sorted(predictions["seed"].unique()) if "seed" in predictions else [None]
    out = np.zeros((len(seeds), len(subjects), num_classes, num_classes))
    index = {s: i for i, s in enumerate(subjects)}
    for k, seed in enumerate(seeds):
        part = predictions if seed is None else predictions[predictions["seed"] == seed]
        np.add.at(out[k], (part["subject"].map(index).to_numpy(), part["label"].to_numpy(), part["pred"].to_numpy()), 1)
    return out


def paired_subject_bootstrap(a: pd.DataFrame, b: pd.DataFrame, num_classes: int, resamples: int = 2000,
                             level: float = 0.95, seed: int = 0) -> dict:
    """UF1(a) - UF1(b) on the same clips, with a percentile interval from resampling whole subjects.

    Clips of one subject are not independent (one person, one session), so the unit drawn with
    replacement is the subject, and both methods are scored on the same draw (a paired comparison).
    With several seeds (a ``seed`` column), a method's UF1 is the mean of its per-seed pooled UF1, as
    the tables report it. Columns used: subject, label, pred (and seed).
    """
    if set(a["subject"]) != set(b["subject"]):
        raise ValueError("paired_subject_bootstrap: the two prediction tables cover different subjects")
    for name, table in (("a", a), ("b", b)):
        values = table[["label", "pred"]].to_numpy()
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"paired_subject_bootstrap: table {name} has a label or prediction outside "
                             f"0..{num_classes - 1}")
    subjects = sorted(set(a["subject"]))
    conf_a, conf_b = (_subject_confusions(p, subjects, num_classes) for p in (a, b))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(subjects), np.full(len(subjects), 1 / len(subjects)), size=resamples)

    def uf1(conf: np.ndarray, w: np.ndarray) -> np.ndarray:  # (R,) mean over seeds of the pooled UF1
        pooled = np.einsum("rs,ksij->rkij", w, conf)
        return uf1_from_confusions(pooled).mean(-1)

    point = float(uf1(conf_a, np.ones((1, len(subjects))))[0] - uf1(conf_b, np.ones((1, len(subjects))))[0])
    diffs = uf1(conf_a, weights) - uf1(conf_b, weights)
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return {"uf1_difference": point, "ci_low": float(low), "ci_high": float(high), "level": level,
            "resamples": resamples, "subjects": len(subjects), "share_above_zero": float((diffs > 0).mean())}
