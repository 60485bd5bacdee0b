import numpy as np
import pandas as pd
import pytest

from tscnn.metrics import evaluate_predictions, pooled_metrics
from tscnn.protocols import Fold, check_fold, loso_folds


def test_loso_every_subject_tested_once_and_never_trained_on(synth_db):
    table = synth_db.table
    folds = loso_folds(table, val_fraction=0.2, seed=0)
    subjects = table.subject.to_numpy()
    assert sorted(f.test_subject for f in folds) == sorted(set(subjects))
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(table)))
    for fold in folds:
        assert set(subjects[fold.test]) == {fold.test_subject}
        assert fold.test_subject not in set(subjects[fold.train]) | set(subjects[fold.val])
        assert not set(subjects[fold.train]) & set(subjects[fold.val])
        assert len(fold.val) > 0 and len(fold.train) > 0
        assert len(fold.train) + len(fold.val) + len(fold.test) == len(table)


def test_check_fold_catches_a_leak():
    groups = np.array(["a", "a", "b", "c"])
    with pytest.raises(AssertionError, match="test subject"):
        check_fold(Fold("a", np.array([0, 2]), np.array([3]), np.array([1])), groups)


def test_metrics_hand_computed():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 0, 2])
    m = pooled_metrics(y, p, 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # F1: class0 P=2/3 R=2/3 -> 2/3; class1 P=1/2 R=1/2 -> 1/2; class2 -> 1.
    assert m["uf1"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["uar"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["confusion"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    # A class absent from the truth does not count in UF1 / UAR.
    assert pooled_metrics(np.array([0, 1]), np.array([0, 2]), 3)["uar"] == pytest.approx(0.5)


def test_per_dataset_subsets():
    frame = pd.DataFrame({"dataset": ["a", "a", "b", "b"], "label": [0, 1, 0, 1], "pred": [0, 1, 1, 1]})
    result = evaluate_predictions(frame, 2)
    assert result["per_dataset"]["a"]["accuracy"] == 1.0
    assert result["per_dataset"]["b"]["accuracy"] == 0.5
    assert result["accuracy"] == 0.75


def test_std_is_shown_only_with_several_seeds():
    from tscnn.metrics import format_mean_std

    assert format_mean_std({"mean": 0.61234, "std": 0.0}, seeds=1) == "0.6123"
    assert format_mean_std({"mean": 0.61234, "std": 0.02}, seeds=3) == "0.6123 +- 0.0200"
