"""The linear floor: standardised input pixels + logistic regression (C = 0.01, class-balanced).

One setting, never tuned. The scaler and the classifier are fitted on each fold's training subjects
only. A deep model that does not beat it has learned nothing the pixels did not already say.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from tscnn.models.registry import ModelSpec, register_model
from tscnn.protocols import loso_folds


def pixel_features(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Every input map of every stream, flattened: (clips, sum of C * n * n)."""
    return np.concatenate([arrays[s].reshape(len(arrays[s]), -1) for s in sorted(arrays)], axis=1).astype(np.float32)


def centred_maps(maps: np.ndarray) -> np.ndarray:
    """Each map of ``(clips, channels, n, n)`` minus its own lower median, the rule of TSCNN's ``centre_flow``:
    min-max normalisation puts zero motion at a different level in every flow map, and the still face, most of
    it, marks that level again (nothing is fitted)."""
    flat = maps.reshape(*maps.shape[:2], -1)
    middle = (flat.shape[2] - 1) // 2
    return maps - np.partition(flat, middle, axis=2)[..., middle, None, None]


def floor_features(maps: dict[str, np.ndarray], centre: bool = False) -> np.ndarray:
    """The floor's features of one view of its maps (each ``(clips, channels, n, n)``): every pixel, with
    ``centre`` (the setting ``centre_floor``) each map first centred on its own median (``centred_maps``)."""
    as_float = {s: a.astype(np.float32) for s, a in maps.items()}
    return pixel_features({s: centred_maps(a) for s, a in as_float.items()} if centre else as_float)


def linear_classifier(C: float = 0.01) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced"))


def floor_tensors(fitted: Pipeline) -> dict[str, torch.Tensor]:
    """A fitted floor (``linear_classifier``) as plain tensors, for a model file read with ``weights_only``."""
    scaler, logistic = fitted[0], fitted[-1]
    return {"mean": torch.from_numpy(scaler.mean_), "scale": torch.from_numpy(scaler.scale_),
            "coef": torch.from_numpy(logistic.coef_), "intercept": torch.from_numpy(logistic.intercept_),
            "classes": torch.from_numpy(logistic.classes_.astype(np.int64))}


def floor_tensors_proba(floor: dict[str, torch.Tensor], features: np.ndarray, num_classes: int) -> np.ndarray:
    """Class probabilities of a floor stored by ``floor_tensors`` (what its ``predict_proba`` gives: a softmax
    of the multinomial scores, or a sigmoid with two classes); a class it never saw gets 0."""
    x = (features - floor["mean"].numpy()) / floor["scale"].numpy()
    scores = x @ floor["coef"].numpy().T + floor["intercept"].numpy()
    if scores.shape[1] == 1:  # two classes: one score, for the second
        second = np.exp(-np.logaddexp(0, -scores))  # the logistic sigmoid, without overflow
        seen = np.hstack([1 - second, second])
    else:
        seen = np.exp(scores - scores.max(1, keepdims=True))
        seen /= seen.sum(1, keepdims=True)
    proba = np.zeros((len(features), num_classes))
    proba[:, floor["classes"].numpy()] = seen
    return proba


def linear_loso(features: np.ndarray, table: pd.DataFrame) -> pd.DataFrame:
    """Pooled LOSO predictions (columns subject, clip, label, pred) of the floor on any feature matrix, for
    scripts that probe other features (``benchmarks/synthetic_difficulty.py``)."""
    labels = table["label"].to_numpy()
    predictions = np.zeros_like(labels)
    for fold in loso_folds(table, val_fraction=0.0):
        classifier = linear_classifier().fit(features[fold.train], labels[fold.train])
        predictions[fold.test] = classifier.predict(features[fold.test])
    out = table[["subject", "clip"]].copy()
    out["label"], out["pred"] = labels, predictions
    return out.reset_index(drop=True)


FLOOR_STREAMS: tuple[str, ...] = ("uvs",)
"""The floor's inputs: u, v and optical strain, whatever streams a network fused with it reads."""


def with_floor_streams(streams: tuple[str, ...], fused: bool) -> tuple[str, ...]:
    """A network's streams, and when it is fused with the floor also the floor's: what a fused run prepares and
    what a fused model's prediction builds."""
    return (*streams, *(s for s in FLOOR_STREAMS if fused and s not in streams))

register_model(ModelSpec(
    name="linear", kind="features", features=pixel_features, classifier=linear_classifier, streams=FLOOR_STREAMS,
    centred_features=partial(floor_features, centre=True),
    size=28,
    description="linear floor: standardised pixels + logistic regression (C = 0.01, balanced)",
))
