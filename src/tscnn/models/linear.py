"""The linear floor: standardised input pixels + logistic regression (C = 0.01, class-balanced).

One setting, never tuned. The scaler and the classifier are fitted on each fold's training subjects
only. A deep model that does not beat it has learned nothing the pixels did not already say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from tscnn.models.registry import ModelSpec, register_model
from tscnn.protocols import loso_folds


def pixel_features(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Every input map of every stream, flattened: (clips, sum of C * n * n)."""
    return np.concatenate([arrays[s].reshape(len(arrays[s]), -1) for s in sorted(arrays)], axis=1).astype(np.float32)


def linear_classifier(C: float = 0.01) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced"))


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


register_model(ModelSpec(
    name="linear", kind="features", features=pixel_features, classifier=linear_classifier, streams=("uvs",), size=28,
    description="linear floor: standardised pixels + logistic regression (C = 0.01, balanced)",
))
