"""Metrics on predictions pooled over all folds (never averaged per fold unless said so).

UF1 is the macro F1 over the classes present in the ground truth; UAR is the macro recall over them.
"""

from __future__ import annotations

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
    if predictions["dataset"].nunique() > 1:
        result["per_dataset"] = {
            name: pooled_metrics(part.label, part.pred, num_classes)
            for name, part in predictions.groupby("dataset")
        }
    return result


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
