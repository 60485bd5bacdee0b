"""Baselines evaluated in the same protocol as TSCNN (LOSO folds, predictions pooled).

``linear_loso``: standardised features + logistic regression (C = 0.01, class-balanced weights,
one setting, never tuned). The scaler and the classifier are fitted on the training subjects of
each fold only. It is the floor a deep model must beat to have learned anything the pixels did
not already say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tscnn.protocols import loso_folds


def linear_loso(features: np.ndarray, table: pd.DataFrame, C: float = 0.01) -> pd.DataFrame:
    """Pooled LOSO predictions (columns dataset, subject, clip, label, pred) of the linear floor."""
    labels = table["label"].to_numpy()
    predictions = np.zeros_like(labels)
    for fold in loso_folds(table, val_fraction=0.0):
        scaler = StandardScaler().fit(features[fold.train])
        model = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
        model.fit(scaler.transform(features[fold.train]), labels[fold.train])
        predictions[fold.test] = model.predict(scaler.transform(features[fold.test]))
    out = table[["dataset", "subject", "clip"]].copy() if "dataset" in table else table[["subject", "clip"]].copy()
    out["label"], out["pred"] = labels, predictions
    return out.reset_index(drop=True)
