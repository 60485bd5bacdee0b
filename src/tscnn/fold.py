"""One fold: its rows (from the protocol), its training or fitting, the late fusion with the linear floor, and
the JSON-ready record every backend returns and the runner stores."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from tscnn.action_units import au_targets
from tscnn.config import Config
from tscnn.models import get_model
from tscnn.models.linear import FLOOR_STREAMS, floor_features
from tscnn.preprocessing.prepare import Prepared
from tscnn.preprocessing.streams import AUGMENTATIONS
from tscnn.protocol_specs import get_protocol
from tscnn.protocols import Fold
from tscnn.run_facts import code_version
from tscnn.train import Trainer


def make_folds(config: Config, table: pd.DataFrame, seed: int) -> list[Fold]:
    """The folds of the Config's protocol: one per subject (LOSO), or one cross-database fold; with
    ``train_fraction`` < 1 each learns from a seeded share of its training subjects (a learning curve).

    The leaky selection (``test_leaky``) holds out no validation subjects: the practice it reproduces
    trains on every training subject and picks the epoch on the test subject."""
    val_fraction = 0.0 if config.leaky else config.val_fraction
    return get_protocol(config.protocol).folds(config, table, seed, val_fraction)


def run_fold(config: Config, prepared: Prepared, labels: np.ndarray, num_classes: int, fold: Fold, seed: int,
             fold_index: int, progress: bool) -> dict:
    """Train (or fit) and test one fold; a JSON-ready record of its predictions, the leaky shadow and history."""
    spec = get_model(config.model)
    arrays = {s: prepared.arrays[s] for s in config.streams}
    start = time.perf_counter()
    if not spec.trains_by_epochs:
        features_of = spec.centred_features if config.centre_floor else spec.features  # checked to exist
        # No epochs to choose: every training subject fits, in table order (a solver's result depends on it).
        fit_rows = np.sort(np.concatenate([fold.train, fold.val]))
        classifier = spec.classifier()
        with contextlib.suppress(ValueError):
            classifier.set_params(**{k: seed for k in classifier.get_params() if k.endswith("random_state")})
        classifier.fit(*fit_set(features_of, arrays, labels, fit_rows, config.floor_views))
        pred = classifier.predict(features_of(original_views(arrays, fold.test)))
        proba = np.eye(num_classes)[pred]
        history, chosen, leaky_epoch, leaky_proba = [], 0, 0, proba
    else:
        trainer = Trainer(config, num_classes, seed=seed * 1000 + fold_index)
        units = au_targets(prepared.table["action_units"], fold.train) if config.au_weight else None
        result = trainer.fit(arrays, labels, fold.train, fold.val, fold.test, desc=f"fold {fold.test_subject}",
                             progress=progress, action_units=units)
        proba = trainer.predict_proba(result.model, arrays, fold.test)
        history, chosen, leaky_epoch, leaky_proba = (result.history, result.chosen_epoch, result.leaky_epoch,
                                                     result.leaky_proba)
    fused = {}
    if config.fuse_linear:
        floor = floor_proba(floor_arrays(prepared), labels, np.sort(np.concatenate([fold.train, fold.val])), fold.test,
                            num_classes, centre=config.centre_floor, views=config.floor_views)
        fused = {"network_proba": np.round(proba, 6).tolist(), "floor_proba": np.round(floor, 6).tolist()}
        proba, leaky_proba = (proba + floor) / 2, (leaky_proba + floor) / 2
    table = prepared.table
    return {
        "test_subject": fold.test_subject,
        "val_subjects": sorted(set(table.subject.iloc[fold.val])),
        "train_subjects": sorted(set(table.subject.iloc[fold.train])),
        "n_train_clips": int(len(fold.train)),
        "chosen_epoch": chosen,
        "leaky_epoch": leaky_epoch,
        "seconds": time.perf_counter() - start,
        "code_version": code_version(),
        "history": history,
        "rows": fold.test.tolist(),
        "proba": np.round(proba, 6).tolist(),
        "leaky_proba": np.round(leaky_proba, 6).tolist(),
        **fused,
    }


def floor_arrays(prepared: Prepared) -> dict[str, np.ndarray]:
    """The prepared maps the floor member of a fused run reads (``FLOOR_STREAMS``, which a fused run prepares)."""
    return {s: prepared.arrays[s] for s in FLOOR_STREAMS}


def original_views(arrays: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Each stream's original view (variant 0) of ``rows``, in float32: what a features model reads of a clip."""
    return {s: a[rows, 0].astype(np.float32) for s, a in arrays.items()}


_MIRROR = AUGMENTATIONS.index((True, 0.0))  # the variant index of the mirrored original


def fit_set(features_of: Callable[[dict[str, np.ndarray]], np.ndarray], arrays: dict[str, np.ndarray],
            labels: np.ndarray, fit_rows: np.ndarray, views: str = "original") -> tuple[np.ndarray, np.ndarray]:
    """Features and labels a features model fits on: each fit row's original view, or (the setting
    ``floor_views``) with ``mirror`` also its mirror, with ``every`` each of its augmentation variants (mirror,
    rotations: the views the network trains on), each a row of its own, in table order, each clip's views together."""
    if views == "original":
        return features_of(original_views(arrays, fit_rows)), labels[fit_rows]
    variants = {a.shape[1] for a in arrays.values()}
    if len(variants) != 1:
        raise ValueError(f"floor_views {views!r}: the floor's streams hold different numbers of variants "
                         f"({sorted(variants)})")
    count = variants.pop()
    chosen = [0, _MIRROR] if views == "mirror" else list(range(count))
    if count <= max(chosen) or count == 1:
        raise ValueError(f"floor_views {views!r} needs the augmentation variants of each clip; the prepared inputs "
                         "hold the original view only (set augment)")
    picked = {s: a[fit_rows][:, chosen].reshape(-1, *a.shape[2:]).astype(np.float32) for s, a in arrays.items()}
    return features_of(picked), np.repeat(labels[fit_rows], len(chosen))


def fit_floor(arrays: dict[str, np.ndarray], labels: np.ndarray, fit_rows: np.ndarray, centre: bool = False,
              views: str = "original") -> tuple[object, np.ndarray]:
    """The linear floor (the ``linear`` model: standardised pixels of its own maps, u, v and strain, each centred
    on its own median with ``centre``, + logistic regression) fitted on ``fit_rows`` (the ``views`` of each:
    ``fit_set``), and the feature matrix of every clip's
    original view: the second member of ``fuse_linear``."""
    features_of = partial(floor_features, centre=centre)
    classifier = get_model("linear").classifier().fit(*fit_set(features_of, arrays, labels, fit_rows, views))
    return classifier, features_of(original_views(arrays, np.arange(len(labels))))


def floor_proba(arrays: dict[str, np.ndarray], labels: np.ndarray, fit_rows: np.ndarray, test_rows: np.ndarray,
                num_classes: int, centre: bool = False, views: str = "original") -> np.ndarray:
    """Class probabilities of the floor fitted on ``fit_rows`` (``fit_floor``) for ``test_rows``; a class absent
    from the fitted rows gets probability 0."""
    classifier, features = fit_floor(arrays, labels, fit_rows, centre, views)
    proba = np.zeros((len(test_rows), num_classes))
    proba[:, classifier.classes_] = classifier.predict_proba(features[test_rows])
    return proba


@dataclass
class FoldJob:
    """One fold of one seed still to train, and where its record goes."""

    seed: int
    index: int
    fold: Fold
    path: Path


@dataclass
class FoldContext:
    """What every fold job reads: the settings and the prepared data (sent to each worker once)."""

    config: Config
    prepared: Prepared
    labels: np.ndarray
    num_classes: int

    def run(self, job: FoldJob, progress: bool = False) -> dict:
        return run_fold(self.config, self.prepared, self.labels, self.num_classes, job.fold, job.seed, job.index,
                        progress)


FUSED_MEMBERS: tuple[str, ...] = ("network", "floor")
"""The members of a fused fold (``fuse_linear``), each with its probabilities in the fold record."""


def fold_predictions(record: dict, table: pd.DataFrame, seed: int, classes: tuple[str, ...]) -> pd.DataFrame:
    """Per-clip prediction rows of a finished fold: the honest prediction, its class probabilities, the
    leaky shadow's prediction (the epoch with the best test accuracy) and, for a fused fold, each member's."""
    rows = table.iloc[record["rows"]]
    proba = np.asarray(record["proba"])
    out = rows[["dataset", "subject", "clip", "emotion", "label"]].copy()
    out["pred"] = proba.argmax(1)
    out["leaky_pred"] = np.asarray(record["leaky_proba"]).argmax(1)
    for member in FUSED_MEMBERS:  # a fused fold keeps each member's probabilities: its predictions alone
        if f"{member}_proba" in record:
            out[f"{member}_pred"] = np.asarray(record[f"{member}_proba"]).argmax(1)
    for c, name in enumerate(classes):
        out[f"p_{name}"] = proba[:, c]
    out["seed"] = seed
    out["fold"] = record["test_subject"]
    return out


def check_stored_fold(path: Path, fold: Fold, table: pd.DataFrame, seed: int) -> dict:
    """A saved fold's record, refused when it learned from other subjects than this run's fold would (the fold
    rule changed since it was saved): its predictions would be pooled with the new folds' unnoticed."""
    stored = json.loads(path.read_text())
    subjects = table["subject"].astype(str)
    for part, rows in (("val_subjects", fold.val), ("train_subjects", fold.train)):
        now = sorted(set(subjects.iloc[rows]))
        if part in stored and sorted(map(str, stored[part])) != now:
            raise ValueError(f"{path}: seed {seed}, fold {fold.test_subject} was saved with {part} "
                             f"{stored[part]}, but this run's fold has {now}; the folds are drawn differently "
                             "now: write to another --out folder, or move this one away")
    return stored
