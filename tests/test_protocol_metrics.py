import numpy as np
import pandas as pd
import pytest

from tscnn.metrics import evaluate_predictions, over_seeds, pooled_metrics, seeds_together
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


def test_fold_mean_f1_averages_each_folds_macro_f1():
    """Fold a: truth 0 0 1, predicted 0 1 1 -> F1 (2/3 + 2/3) / 2; fold b: truth 2 2, predicted 2 0 -> only
    class 2 present: F1 2/3. Mean 2/3; pooled, the five clips give another figure."""
    from tscnn.metrics import evaluate_predictions

    table = pd.DataFrame({"dataset": "x", "fold": ["a", "a", "a", "b", "b"], "label": [0, 0, 1, 2, 2],
                          "pred": [0, 1, 1, 2, 0]})
    m = evaluate_predictions(table, 3)
    assert m["fold_mean_f1"] == pytest.approx(((2 / 3 + 2 / 3) / 2 + 2 / 3) / 2)
    assert m["fold_mean_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["uf1"] == pytest.approx(pooled_metrics(table.label, table.pred, 3)["uf1"])
    assert m["uf1"] != pytest.approx(m["fold_mean_f1"])


def test_per_dataset_subsets():
    frame = pd.DataFrame({"dataset": ["a", "a", "b", "b"], "label": [0, 1, 0, 1], "pred": [0, 1, 1, 1]})
    result = evaluate_predictions(frame, 2)
    assert result["per_dataset"]["a"]["accuracy"] == 1.0
    assert result["per_dataset"]["b"]["accuracy"] == 0.5
    assert result["accuracy"] == 0.75


def test_seeds_of_several_runs_pool_as_one_run_and_a_shared_seed_is_refused():
    """Seed 0 in one folder and seeds 1, 2 in another: the mean and population std over the three seeds."""
    together = seeds_together([{"0": {"uf1": 0.70}}, {"1": {"uf1": 0.74}, "2": {"uf1": 0.78}}])
    assert sorted(together) == ["0", "1", "2"]
    pooled = over_seeds(list(together.values()), ("uf1",))["uf1"]
    assert pooled["mean"] == pytest.approx(0.74) and pooled["std"] == pytest.approx(np.sqrt(0.0032 / 3))
    with pytest.raises(ValueError, match="seed 1 is in two runs"):
        seeds_together([{"0": {}, "1": {}}, {"1": {}}])


def test_std_is_shown_only_with_several_seeds():
    from tscnn.metrics import format_mean_std

    assert format_mean_std({"mean": 0.61234, "std": 0.0}, seeds=1) == "0.6123"
    assert format_mean_std({"mean": 0.61234, "std": 0.02}, seeds=3) == "0.6123 +- 0.0200"


def test_uf1_from_confusions_matches_pooled_metrics_on_many_draws():
    from tscnn.metrics import uf1_from_confusions

    rng = np.random.default_rng(3)
    for _ in range(20):
        truth = rng.integers(0, 3, 30)
        truth[truth == 2] = rng.integers(0, 2)  # class 2 absent from the truth, yet sometimes predicted
        pred = rng.integers(0, 3, 30)
        expected = pooled_metrics(truth, pred, 3)
        assert uf1_from_confusions(np.array(expected["confusion"])) == pytest.approx(expected["uf1"])


def _predictions(subjects: list[str], labels: list[int], preds: list[int], seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"subject": subjects, "label": labels, "pred": preds, "seed": seed})


def test_paired_subject_bootstrap_identical_methods_differ_by_exactly_zero():
    from tscnn.metrics import paired_subject_bootstrap

    a = _predictions(["s1", "s1", "s2", "s3"], [0, 1, 1, 0], [0, 0, 1, 1])
    result = paired_subject_bootstrap(a, a.copy(), 2, resamples=200)
    assert result["uf1_difference"] == 0 and result["ci_low"] == 0 and result["ci_high"] == 0
    assert result["share_above_zero"] == 0


def test_paired_subject_bootstrap_resamples_subjects_not_clips():
    from tscnn.metrics import paired_subject_bootstrap

    # 10 subjects, 4 clips each; the methods disagree only on subject s0, where a is right and b wrong.
    subjects = [f"s{i}" for i in range(10) for _ in range(4)]
    labels = [0, 1, 0, 1] * 10
    b_pred = list(labels)
    b_pred[:4] = [1, 0, 1, 0]
    a, b = _predictions(subjects, labels, labels), _predictions(subjects, labels, b_pred)
    result = paired_subject_bootstrap(a, b, 2, resamples=4000)
    # Point estimate by hand: a is perfect (UF1 1); b has TP 18 / FP 2 / FN 2 for each class: F1 = 0.9.
    assert result["uf1_difference"] == pytest.approx(1 - pooled_metrics(np.array(labels), np.array(b_pred), 2)["uf1"])
    assert result["uf1_difference"] == pytest.approx(0.1)
    # A draw leaves s0 out with probability 0.9 ** 10 = 0.35: then the methods tie. Drawing clips instead
    # of subjects would almost never tie.
    assert result["ci_low"] == 0
    assert result["share_above_zero"] == pytest.approx(1 - 0.9**10, abs=0.03)


def test_paired_subject_bootstrap_averages_the_seeds_as_the_tables_do():
    from tscnn.metrics import paired_subject_bootstrap

    subjects, labels = ["s1", "s1", "s2", "s2"], [0, 1, 0, 1]
    a = pd.concat([_predictions(subjects, labels, [0, 1, 0, 1], 0), _predictions(subjects, labels, [0, 0, 0, 1], 1)])
    b = _predictions(subjects, labels, [1, 1, 0, 1])
    per_seed = [pooled_metrics(np.array(labels), np.array(p), 2)["uf1"] for p in ([0, 1, 0, 1], [0, 0, 0, 1])]
    floor = pooled_metrics(np.array(labels), np.array([1, 1, 0, 1]), 2)["uf1"]
    result = paired_subject_bootstrap(a, b, 2, resamples=100)
    assert result["uf1_difference"] == pytest.approx(np.mean(per_seed) - floor)


def test_paired_subject_bootstrap_refuses_different_subjects():
    from tscnn.metrics import paired_subject_bootstrap

    with pytest.raises(ValueError, match="different subjects"):
        paired_subject_bootstrap(_predictions(["s1"], [0], [0]), _predictions(["s2"], [0], [0]), 2)
    with pytest.raises(ValueError, match="table b has a label or prediction outside 0..1"):
        paired_subject_bootstrap(_predictions(["s1"], [0], [0]), _predictions(["s1"], [0], [-1]), 2)
