"""Evaluation protocols: leave-one-subject-out folds, and cross-database folds, each with a
subject-disjoint validation split drawn from the training subjects, and optionally (for a learning
curve) a training pool that is a random share of them.

Nothing of the test subjects is used for training, validation, early stopping or normalisation:
``loso_folds`` and ``cross_dataset_fold`` guarantee it and ``check_fold`` asserts it.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    """Row indices of one fold; ``test_subject`` names the fold (LOSO: the held-out subject) and
    ``test_subjects`` lists every held-out subject (LOSO: that one)."""

    test_subject: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_subjects: tuple[str, ...] = ()

    def held_out(self) -> set[str]:
        return set(self.test_subjects) or {self.test_subject}


def validation_subjects(subjects: list[str], fraction: float, rng: np.random.Generator) -> list[str]:
    """A random share of the training subjects (at least one, never all) for early stopping."""
    if fraction <= 0 or len(subjects) < 2:
        return []
    count = min(len(subjects) - 1, max(1, int(round(fraction * len(subjects)))))
    return sorted(rng.choice(subjects, size=count, replace=False).tolist())


def training_pool(subjects: list[str], fraction: float, seed: int, name: str) -> list[str]:
    """The subjects a fold may learn from: all of them, or (``fraction`` < 1, a learning curve) a random
    share of them (``fraction`` x their number rounded half up, at least one), drawn from ``seed`` and a
    CRC-32 of the fold's ``name`` alone, so every model and recipe run with the same seed learns from the
    same subjects, and folds with different names draw independently."""
    if fraction >= 1 or not subjects:
        return list(subjects)
    count = max(1, math.floor(fraction * len(subjects) + 0.5 + 1e-9))
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 1])
    return sorted(rng.choice(subjects, size=count, replace=False).tolist())


def loso_folds(table: pd.DataFrame, val_fraction: float = 0.2, seed: int = 0,
               group: str = "subject", train_fraction: float = 1.0) -> list[Fold]:
    """One fold per subject (sorted), each with validation subjects drawn from the rest (from its training
    pool when ``train_fraction`` < 1; the subjects outside the pool are used for nothing)."""
    groups = table[group].astype(str).to_numpy()
    folds = []
    for subject in sorted(set(groups)):
        others = training_pool(sorted(set(groups) - {subject}), train_fraction, seed, subject)
        rng = np.random.default_rng([seed, sum(map(ord, subject))])
        val_subjects = validation_subjects(others, val_fraction, rng)
        test = np.flatnonzero(groups == subject)
        val = np.flatnonzero(np.isin(groups, val_subjects))
        train = np.flatnonzero(np.isin(groups, others) & ~np.isin(groups, val_subjects))
        fold = Fold(subject, train, val, test)
        check_fold(fold, groups)
        folds.append(fold)
    return folds


def cross_dataset_fold(table: pd.DataFrame, train_datasets: tuple[str, ...], test_datasets: tuple[str, ...],
                       val_fraction: float = 0.2, seed: int = 0, train_fraction: float = 1.0) -> Fold:
    """Train on every clip of ``train_datasets`` (validation subjects drawn from them), test on every clip
    of ``test_datasets``: the domain gap a recipe fitted to one database's subjects shows on another."""
    datasets = table["dataset"].astype(str).to_numpy()
    known = sorted(set(datasets))
    for name in (*train_datasets, *test_datasets):
        if name not in known:
            raise ValueError(f"cross-database protocol: no clips of database {name!r} (the table has {known})")
    groups = table["subject"].astype(str).to_numpy()
    training = np.isin(datasets, train_datasets)
    name = f"{'+'.join(train_datasets)}-to-{'+'.join(test_datasets)}"
    subjects = training_pool(sorted(set(groups[training])), train_fraction, seed, name)
    training &= np.isin(groups, subjects)
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    val_subjects = validation_subjects(subjects, val_fraction, rng)
    test = np.flatnonzero(np.isin(datasets, test_datasets))
    val = np.flatnonzero(training & np.isin(groups, val_subjects))
    train = np.flatnonzero(training & ~np.isin(groups, val_subjects))
    fold = Fold(name, train, val, test, tuple(sorted(set(groups[test]))))
    check_fold(fold, groups)
    return fold


def check_fold(fold: Fold, groups: np.ndarray) -> None:
    """Raise if a test subject leaks into training or validation, or subjects are shared."""
    train, val, test = (set(groups[idx]) for idx in (fold.train, fold.val, fold.test))
    if test != fold.held_out():
        raise AssertionError(f"fold {fold.test_subject}: test set holds subjects {sorted(test)}")
    if fold.held_out() & (train | val):
        raise AssertionError(f"fold {fold.test_subject}: test subject appears in training or validation")
    if train & val:
        raise AssertionError(f"fold {fold.test_subject}: subjects {sorted(train & val)} in both train and val")
