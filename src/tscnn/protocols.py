"""Evaluation protocols: leave-one-subject-out folds with a subject-disjoint validation split.

Nothing of the test subject is used for training, validation, early stopping or normalisation:
``loso_folds`` guarantees it and ``check_fold`` asserts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    """Row indices of one fold; ``test_subject`` is held out entirely."""

    test_subject: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def validation_subjects(subjects: list[str], fraction: float, rng: np.random.Generator) -> list[str]:
    """A random share of the training subjects (at least one, never all) for early stopping."""
    if fraction <= 0 or len(subjects) < 2:
        return []
    count = min(len(subjects) - 1, max(1, int(round(fraction * len(subjects)))))
    return sorted(rng.choice(subjects, size=count, replace=False).tolist())


def loso_folds(table: pd.DataFrame, val_fraction: float = 0.2, seed: int = 0,
               group: str = "subject") -> list[Fold]:
    """One fold per subject (sorted), each with validation subjects drawn from the rest."""
    groups = table[group].astype(str).to_numpy()
    folds = []
    for subject in sorted(set(groups)):
        others = sorted(set(groups) - {subject})
        rng = np.random.default_rng([seed, sum(map(ord, subject))])
        val_subjects = validation_subjects(others, val_fraction, rng)
        test = np.flatnonzero(groups == subject)
        val = np.flatnonzero(np.isin(groups, val_subjects))
        train = np.flatnonzero(~np.isin(groups, [subject, *val_subjects]))
        fold = Fold(subject, train, val, test)
        check_fold(fold, groups)
        folds.append(fold)
    return folds


def check_fold(fold: Fold, groups: np.ndarray) -> None:
    """Raise if the test subject leaks into training or validation, or subjects are shared."""
    train, val, test = (set(groups[idx]) for idx in (fold.train, fold.val, fold.test))
    if test != {fold.test_subject}:
        raise AssertionError(f"fold {fold.test_subject}: test set holds subjects {sorted(test)}")
    if fold.test_subject in train | val:
        raise AssertionError(f"fold {fold.test_subject}: test subject appears in training or validation")
    if train & val:
        raise AssertionError(f"fold {fold.test_subject}: subjects {sorted(train & val)} in both train and val")
