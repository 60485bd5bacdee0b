"""The honest protocol and the recipe options: leaky shadow, cross-database folds, stale folds,
class weights, weight averaging, and every option checked before work starts."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tscnn import app, backends, runner
from tscnn.cli import main
from tscnn.config import PRESETS, from_preset
from tscnn.datasets import read_flowfolder
from tscnn.datasets.flowfolder import write_flow_image
from tscnn.fold import FoldJob
from tscnn.protocols import Fold, check_fold, cross_dataset_fold, loso_folds
from tscnn.runner import check_config, config_for, run_experiment
from tscnn.train import Trainer, class_weights

CLASSES = ("negative", "positive", "surprise")


def learnable_folder(root: Path, per_subject: int = 6, seed: int = 0) -> Path:
    """A tiny flow folder whose class is a blob of motion in one of three places (plus noise):
    two databases of three subjects each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    centres = [(8, 8), (8, 20), (20, 14)]
    rows = []
    for dataset, subjects in (("casme2", ("sub01", "sub02", "sub03")), ("smic", ("s01", "s02", "s03"))):
        for subject in subjects:
            for i in range(per_subject):
                label = i % 3
                cy, cx = centres[label]
                blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
                maps = np.stack([blob + 0.3 * rng.random((28, 28)), 0.5 * blob + 0.3 * rng.random((28, 28)),
                                 0.3 * rng.random((28, 28))])
                maps = np.stack([(m - m.min()) / (m.max() - m.min()) for m in maps]).astype(np.float32)
                relative = f"flow/{subject}_{i}.png"
                write_flow_image(root / relative, maps)
                rows.append({"dataset": dataset, "subject": subject, "clip": f"{subject}_{i}", "label": label,
                             "label_name": CLASSES[label], "flow": relative})
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)
    return root


@pytest.fixture(scope="module")
def flows(tmp_path_factory) -> Path:
    return learnable_folder(tmp_path_factory.mktemp("flows"))


@pytest.fixture(scope="module")
def arrays_and_labels(flows):
    from tscnn.preprocessing.prepare import PrepSettings, prepare

    db = read_flowfolder(flows)
    prepared = prepare(db.table, PrepSettings(size=28, augment=False), progress=False, streams=("uvs",))
    return prepared.arrays, prepared.table


# --- the leaky shadow -----------------------------------------------------------------------------------------


def test_leaky_shadow_selects_on_the_test_subject_and_the_honest_model_never_looks(arrays_and_labels):
    arrays, table = arrays_and_labels
    labels = table.label.to_numpy()
    fold = loso_folds(table, val_fraction=0.0)[0]
    config = replace(config_for("ststnet", lr=5e-3, max_epochs=8, batch_size=8, seeds=(0,)), bf16=False)
    first = Trainer(config, 3, seed=1).fit(arrays, labels, fold.train, fold.val, fold.test, progress=False)
    accuracies = [h["test_accuracy"] for h in first.history]
    assert first.leaky_epoch == int(np.argmax(accuracies)) + 1  # the first epoch of best test accuracy
    assert first.leaky_proba is not None and first.leaky_proba.shape == (len(fold.test), 3)
    # Other test labels change what the shadow picks, but nothing of the honest model.
    other = labels.copy()
    other[fold.test] = (other[fold.test] + 1) % 3
    second = Trainer(config, 3, seed=1).fit(arrays, other, fold.train, fold.val, fold.test, progress=False)
    assert [h["train_loss"] for h in second.history] == [h["train_loss"] for h in first.history]
    assert second.chosen_epoch == first.chosen_epoch == 8
    honest_a = Trainer(config, 3, 1).predict_proba(first.model, arrays, fold.test)
    honest_b = Trainer(config, 3, 1).predict_proba(second.model, arrays, fold.test)
    np.testing.assert_array_equal(honest_a, honest_b)
    assert second.leaky_epoch == int(np.argmax([h["test_accuracy"] for h in second.history])) + 1


def test_leaky_shadow_is_reported_beside_the_honest_figure(flows, tmp_path):
    config = config_for("ststnet", dataset="flowfolder", root=str(flows), classes="all", lr=5e-3, max_epochs=6,
                        batch_size=8, seeds=(0, 1))
    result = run_experiment(config, tmp_path / "run", progress=False)
    honest = result.metrics["mean_std_over_seeds"]["uf1"]["mean"]
    leaky = result.metrics["leaky_shadow"]["mean_std_over_seeds"]["uf1"]["mean"]
    assert leaky >= honest - 0.2  # the shadow picks each fold's best epoch on the test subject
    per_fold = [json.loads(p.read_text()) for p in (tmp_path / "run" / "seed_0" / "folds").glob("*.json")]
    for record in per_fold:
        accuracy = [h["test_accuracy"] for h in record["history"]]
        assert record["leaky_epoch"] == int(np.argmax(accuracy)) + 1
        assert record["chosen_epoch"] == 6  # honest: the fixed budget, whatever the test subject says
    assert "seed_ensemble" in result.metrics and set(result.metrics["per_seed"]) == {0, 1}
    assert [c for c in result.predictions if c.startswith("p_")] == [f"p_{c}" for c in CLASSES]


# --- protocols ------------------------------------------------------------------------------------------------


def test_cross_dataset_fold_trains_on_one_database_and_tests_on_the_other(arrays_and_labels):
    _, table = arrays_and_labels
    fold = cross_dataset_fold(table, ("casme2",), ("smic",), val_fraction=0.4, seed=0)
    assert set(table.dataset.iloc[fold.test]) == {"smic"} and len(fold.test) == (table.dataset == "smic").sum()
    assert set(table.dataset.iloc[np.concatenate([fold.train, fold.val])]) == {"casme2"}
    assert len(set(table.subject.iloc[fold.val])) == 1  # 40 % of three subjects, at least one
    assert not set(table.subject.iloc[fold.train]) & set(table.subject.iloc[fold.val])
    with pytest.raises(ValueError, match="no clips of database 'samm'"):
        cross_dataset_fold(table, ("samm",), ("smic",))


def test_learning_curve_folds_learn_from_a_share_of_the_training_subjects():
    """train_fraction < 1 draws each fold's training pool from the other subjects (validation subjects come out
    of the pool); the draw depends on the seed and the fold alone, and train_fraction 1 is the ordinary fold."""
    from tscnn.protocols import training_pool, validation_subjects

    table = pd.DataFrame({"subject": [f"s{i:02d}" for i in range(11) for _ in range(2)],
                          "dataset": ["a"] * 12 + ["b"] * 10})
    groups = table.subject.to_numpy()
    for fold in loso_folds(table, 0.2, seed=3, train_fraction=1.0):  # the folds as written before the option
        rng = np.random.default_rng([3, sum(map(ord, fold.test_subject))])
        val_subjects = validation_subjects(sorted(set(groups) - {fold.test_subject}), 0.2, rng)
        assert np.array_equal(fold.val, np.flatnonzero(np.isin(groups, val_subjects)))
        assert np.array_equal(fold.train, np.flatnonzero(~np.isin(groups, [fold.test_subject, *val_subjects])))

    def pools(val_fraction, seed):
        return [set(groups[np.concatenate([f.train, f.val])]) for f in
                loso_folds(table, val_fraction, seed=seed, train_fraction=0.5)]

    for fold, pool in zip(loso_folds(table, 0.2, seed=3, train_fraction=0.5), pools(0.2, 3), strict=True):
        assert len(pool) == 5 and fold.test_subject not in pool  # half of the 10 other subjects
        assert len(set(groups[fold.val])) == 1 and set(groups[fold.val]) < pool  # 20 % of the pool
        assert not np.isin(fold.train, fold.val).any()
    assert pools(0.0, 3) == pools(0.2, 3)  # with one seed every recipe learns from the same subjects
    assert pools(0.0, 3) != pools(0.0, 4)
    # "s02" and "s11" have the same sum of character codes: their draws must still differ
    names = [f"x{i}" for i in range(20)]
    assert training_pool(names, 0.5, 0, "s02") != training_pool(names, 0.5, 0, "s11")
    assert [len(training_pool([f"x{i}" for i in range(n)], 0.5, 0, "s")) for n in (1, 3, 5, 39)] == [1, 2, 3, 20]
    cross = cross_dataset_fold(table, ("a",), ("b",), val_fraction=0.4, seed=3, train_fraction=0.5)
    pool = set(groups[np.concatenate([cross.train, cross.val])])
    assert len(pool) == 3 and pool < set(groups[:12])  # 3 of a's 6 subjects
    assert len(set(groups[cross.val])) == 1 and not set(groups[cross.val]) & set(groups[cross.train])
    assert len(cross.test) == 10


def test_a_learning_curve_run_fits_each_fold_on_its_drawn_subjects(flows, tmp_path):
    """The floor in a learning-curve run predicts exactly what it predicts when fitted by hand on each fold's
    drawn subjects; the run says it is a learning curve, and only LOSO evaluation takes the option."""
    from tscnn.models.linear import linear_classifier
    from tscnn.preprocessing.prepare import PrepSettings, prepare

    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all", train_fraction=0.5,
                        seeds=(2,))
    result = run_experiment(config, tmp_path / "curve", progress=False)
    assert "learning curve: each fold learns from a share 0.5 of its training subjects" in result.metrics["protocol"]
    assert runner.default_out(config).name.endswith("train0.5-paper")
    db = read_flowfolder(flows)
    prepared = prepare(db.table, PrepSettings(size=28, augment=False), progress=False, streams=("uvs",))
    features = prepared.arrays["uvs"].reshape(len(prepared.table), -1)
    labels = prepared.table["label"].to_numpy()
    expected = pd.Series(-1, index=prepared.table["clip"])
    for fold in loso_folds(prepared.table, 0.0, seed=2, train_fraction=0.5):
        assert len(set(prepared.table.subject.iloc[fold.train])) == 3  # half of the 5 other subjects, half up
        classifier = linear_classifier().fit(features[fold.train], labels[fold.train])
        expected.iloc[fold.test] = classifier.predict(features[fold.test])
    got = result.predictions.set_index("clip")["pred"]
    assert (got.loc[expected.index].to_numpy() == expected.to_numpy()).all()
    with pytest.raises(ValueError, match="train_fraction is a share"):
        replace(config, train_fraction=0.0)
    with pytest.raises(ValueError, match="the final model learns from every subject"):
        app.train_final_model(replace(config, model="tscnn", streams=("uvs",), train_fraction=0.5),
                                     tmp_path / "final")


def test_learning_curve_benchmark_prints_each_fraction(flows, tmp_path):
    """``benchmarks/learning_curve.py`` runs each row at each share of the training subjects and stores the
    points: the floor at 0.5 learns from 3 subjects per fold (2.5 rounded half up) and at 1 from all 5 (6 subjects)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    summary = tmp_path / "curve.json"
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "learning_curve.py"), "--data", str(flows),
                           "--rows", "linear", "--fractions", "0.5", "1", "--seeds", "0",
                           "--out", str(tmp_path / "out"), "--json", str(summary)],
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    points = json.loads(summary.read_text())["points"]["linear"]
    assert points["0.5"]["subjects_per_fold"] == 3 and points["1"]["subjects_per_fold"] == 5
    assert (tmp_path / "out" / "linear-train0.5").is_dir() and (tmp_path / "out" / "linear").is_dir()
    row = next(line for line in done.stdout.splitlines() if line.startswith("| linear |"))
    assert f"{points['0.5']['uf1']['mean']:.3f} +- 0.000 / {points['0.5']['uar']['mean']:.3f} +- 0.000 (3.0)" in row
    assert points["0.5"]["seeds"] == [0] and points["0.5"]["machine"]["jobs"] == 1

    def again(data, *options):
        return subprocess.run([sys.executable, str(root / "benchmarks" / "learning_curve.py"), "--data", str(data),
                               "--seeds", "0", "--out", str(tmp_path / "out"), "--json", str(summary), *options],
                              capture_output=True, text=True, timeout=300, cwd=root)

    more = again(flows, "--rows", "hoof", "--fractions", "0.2")  # another row and share: the first points stay
    assert more.returncode == 0, more.stderr[-2000:]
    stored = json.loads(summary.read_text())
    assert set(stored["points"]) == {"linear", "hoof"} and set(stored["points"]["linear"]) == {"0.5", "1"}
    assert stored["fractions"] == [0.2, 0.5, 1.0] and stored["points"]["hoof"]["0.2"]["subjects_per_fold"] == 1
    other = learnable_folder(tmp_path / "other", per_subject=3)
    refused = again(other, "--rows", "linear", "--fractions", "1")
    assert refused.returncode == 1 and "was made from other data" in refused.stdout


def test_a_saved_fold_drawn_from_other_subjects_is_not_reused(flows, tmp_path):
    """A resumed run checks that each saved fold learned from the subjects its fold would learn from now: a
    changed fold rule must not pool old folds with new ones unnoticed."""
    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all", train_fraction=0.5)
    run_experiment(config, tmp_path / "run", progress=False)
    run_experiment(config, tmp_path / "run", progress=False)  # unchanged: resumes
    saved = tmp_path / "run" / "seed_0" / "folds" / "s01.json"
    record = json.loads(saved.read_text())
    record["train_subjects"] = ["sub01"]
    saved.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"seed 0, fold s01 was saved with train_subjects \['sub01'\]"):
        run_experiment(config, tmp_path / "run", progress=False)


def test_check_fold_catches_every_leak():
    groups = np.array(["a", "a", "b", "c", "d"])
    check_fold(Fold("a", np.array([2, 3]), np.array([4]), np.array([0, 1])), groups)
    with pytest.raises(AssertionError, match="test set holds"):
        check_fold(Fold("a", np.array([3]), np.array([4]), np.array([0, 1, 2])), groups)
    with pytest.raises(AssertionError, match="test subject appears"):
        check_fold(Fold("a", np.array([0, 3]), np.array([4]), np.array([1])), groups)
    with pytest.raises(AssertionError, match="in both train and val"):
        check_fold(Fold("a", np.array([2, 3]), np.array([3, 4]), np.array([0, 1])), groups)


def test_class_weights_by_hand():
    np.testing.assert_allclose(class_weights(np.array([0, 0, 0, 1]), 3), [4 / 6, 4 / 2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(class_weights(np.array([0, 1, 2]), 3), [1.0, 1.0, 1.0])


def test_weight_averaging_is_the_mean_of_the_last_epochs(arrays_and_labels):
    arrays, table = arrays_and_labels
    labels = table.label.to_numpy()
    train, val = np.arange(len(table)), np.array([], int)
    base = replace(config_for("tscnn", streams=("uvs",), size=28, lr=1e-2, batch_size=16, selection="fixed",
                              val_fraction=0.0), bf16=False, channels_last=False, augment=False)

    def weights(**changes) -> dict[str, torch.Tensor]:
        model = Trainer(replace(base, **changes), 3, seed=3).fit(arrays, labels, train, val, progress=False).model
        return {k: v.clone() for k, v in model.state_dict().items()}

    second, third = weights(max_epochs=2), weights(max_epochs=3)
    averaged = weights(max_epochs=3, average_last=2)
    name = "dense2.1.weight"
    torch.testing.assert_close(averaged[name], (second[name] + third[name]) / 2, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(averaged[name], third[name])


def test_flip_tta_is_the_mean_of_the_clip_and_its_mirror(flows):
    """tta_flip: each probability is the mean of the network's answer on variant 0 (the clip) and variant 1 (its
    mirror, u -> 1 - u), computed here by hand; without augmentation it is refused with a clear message."""
    from tscnn.preprocessing.prepare import PrepSettings, prepare

    db = read_flowfolder(flows)
    prepared = prepare(db.table, PrepSettings(size=28, augment=True), progress=False, streams=("uvs",))
    arrays, labels = prepared.arrays, prepared.table.label.to_numpy()
    np.testing.assert_allclose(arrays["uvs"][:, 1, 0], 1.0 - arrays["uvs"][:, 0, 0, :, ::-1], atol=1e-3)
    config = replace(config_for("tscnn", streams=("uvs",), size=28, max_epochs=2, selection="fixed", val_fraction=0.0,
                                batch_size=8, tta_flip=True), bf16=False, channels_last=False)
    trainer = Trainer(config, 3, seed=0)
    model = trainer.fit(arrays, labels, np.arange(30), np.array([], int), progress=False).model
    rows = np.arange(30, 36)
    model.eval()
    with torch.no_grad():
        by_hand = [torch.softmax(model({"uvs": torch.from_numpy(arrays["uvs"][rows, v].astype(np.float32))}), 1)
                   for v in (0, 1)]
    tta = trainer.predict_proba(model, arrays, rows)
    np.testing.assert_allclose(tta, ((by_hand[0] + by_hand[1]) / 2).numpy(), rtol=1e-5, atol=1e-6)
    plain = Trainer(replace(config, tta_flip=False), 3, seed=0).predict_proba(model, arrays, rows)
    np.testing.assert_allclose(plain, by_hand[0].numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(tta, plain)
    with pytest.raises(ValueError, match="tta_flip.*augment"):
        replace(config, augment=False)
    unaugmented = {"uvs": arrays["uvs"][:, :1]}
    with pytest.raises(ValueError, match="tta_flip needs the mirrored variant"):
        trainer.predict_proba(model, unaugmented, rows)


def test_fusion_with_the_floor_is_the_mean_of_the_unchanged_network_and_the_floor(flows, tmp_path):
    """fuse_linear: each clip's probabilities (and the leaky shadow's) are the mean of the network's, trained exactly
    as without fusion, and the linear floor's, fitted by hand here on the same training rows; the floor member
    predicts what the ``linear`` model predicts, and the metrics give each member alone; the reports say the
    run is fused. Features models refuse the option (a saved final model carries its floor: tests/test_predict.py)."""
    from tscnn.models.linear import linear_classifier
    from tscnn.preprocessing.prepare import PrepSettings, prepare

    settings = dict(dataset="flowfolder", root=str(flows), classes="all", streams=("uvs",), max_epochs=3,
                    average_last=2, batch_size=8, seeds=(0,))
    plain_config = replace(config_for("tscnn", "tscnn-plus", **settings), bf16=False, channels_last=False)
    fused_config = replace(plain_config, fuse_linear=True)
    plain = run_experiment(plain_config, tmp_path / "plain", progress=False)
    fused = run_experiment(fused_config, tmp_path / "fused", progress=False)
    floor = run_experiment(config_for("linear", dataset="flowfolder", root=str(flows), classes="all"),
                           tmp_path / "floor", progress=False)
    assert "linear floor" in fused.metrics["fusion"] and "fusion" not in plain.metrics
    members = fused.metrics["fused_members"]  # each member alone: what the network and the floor score unfused
    assert "fused_members" not in plain.metrics
    for key in ("accuracy", "uf1", "uar"):
        assert members["network"][key] == pytest.approx(plain.metrics["mean_std_over_seeds"][key])
        assert members["floor"][key] == pytest.approx(floor.metrics["mean_std_over_seeds"][key])
    from tscnn.html_report import write_html_report
    from tscnn.report import metrics_table, write_report

    report = write_report(fused, fused_config, read_flowfolder(flows).table).read_text()
    assert "late fusion, --fuse-linear" in report and "fused with the linear floor" in metrics_table(fused.metrics)
    assert f"network UF1 {members['network']['uf1']['mean']:.4f}" in metrics_table(fused.metrics)
    assert f"floor accuracy {members['floor']['accuracy']['mean']:.4f}" in report
    assert "Late fusion" in write_html_report(fused, fused_config).read_text()
    assert runner.default_out(fused_config).name.endswith("fused-linear-tscnn-plus")
    db = read_flowfolder(flows)
    prepared = prepare(db.table, PrepSettings(size=28, augment=False), progress=False, streams=("uvs",))
    features = prepared.arrays["uvs"].reshape(len(prepared.table), -1)
    labels = prepared.table["label"].to_numpy()
    floor_pred = floor.predictions.set_index("clip")["pred"]
    for path in sorted((tmp_path / "fused" / "seed_0" / "folds").glob("*.json")):
        record = json.loads(path.read_text())
        alone = json.loads((tmp_path / "plain" / "seed_0" / "folds" / path.name).read_text())
        assert record["network_proba"] == alone["proba"]  # the network trains as without fusion
        rows = np.asarray(record["rows"])
        train = np.flatnonzero(~np.isin(np.arange(len(labels)), rows))
        by_hand = linear_classifier().fit(features[train], labels[train]).predict_proba(features[rows])
        np.testing.assert_allclose(record["floor_proba"], by_hand, atol=1e-6)
        np.testing.assert_allclose(record["proba"], (np.asarray(alone["proba"]) + by_hand) / 2, atol=2e-6)
        np.testing.assert_allclose(record["leaky_proba"], (np.asarray(alone["leaky_proba"]) + by_hand) / 2,
                                   atol=2e-6)
        clips = prepared.table["clip"].iloc[rows]
        assert (by_hand.argmax(1) == floor_pred.loc[clips].to_numpy()).all()
    # With validation subjects (early stopping) the floor learns from them too: every training subject.
    held_out = replace(fused_config, selection="val_loss", val_fraction=0.4, average_last=0, max_epochs=2)
    run_experiment(held_out, tmp_path / "held-out", progress=False)
    for path in sorted((tmp_path / "held-out" / "seed_0" / "folds").glob("*.json")):
        record = json.loads(path.read_text())
        assert record["val_subjects"]
        rows = np.asarray(record["rows"])
        train = np.flatnonzero(~np.isin(np.arange(len(labels)), rows))
        by_hand = linear_classifier().fit(features[train], labels[train]).predict_proba(features[rows])
        np.testing.assert_allclose(record["floor_proba"], by_hand, atol=1e-6)
    # centre_floor: the same network, and a floor fitted on each map centred on its own median, here and alone.
    from tscnn.models.linear import centred_maps

    centred = centred_maps(prepared.arrays["uvs"][:, 0].astype(np.float32)).reshape(len(labels), -1)
    run_experiment(replace(fused_config, centre_floor=True), tmp_path / "centred", progress=False)
    floor_centred = run_experiment(replace(config_for("linear", dataset="flowfolder", root=str(flows), classes="all"),
                                           centre_floor=True), tmp_path / "floor-centred", progress=False)
    centred_pred = floor_centred.predictions.set_index("clip")["pred"]
    for path in sorted((tmp_path / "centred" / "seed_0" / "folds").glob("*.json")):
        record = json.loads(path.read_text())
        assert record["network_proba"] == json.loads((tmp_path / "fused" / "seed_0" / "folds" / path.name
                                                      ).read_text())["network_proba"]
        rows = np.asarray(record["rows"])
        train = np.flatnonzero(~np.isin(np.arange(len(labels)), rows))
        by_hand = linear_classifier().fit(centred[train], labels[train]).predict_proba(centred[rows])
        np.testing.assert_allclose(record["floor_proba"], by_hand, atol=1e-6)
        uncentred = json.loads((tmp_path / "fused" / "seed_0" / "folds" / path.name).read_text())["floor_proba"]
        assert np.abs(np.asarray(record["floor_proba"]) - uncentred).max() > 1e-4  # the maps' levels differ a little
        clips = prepared.table["clip"].iloc[rows]
        assert (by_hand.argmax(1) == centred_pred.loc[clips].to_numpy()).all()
    with pytest.raises(ValueError, match="fuse_linear averages a network's probabilities"):
        check_config(replace(config_for("linear"), fuse_linear=True))


def test_fit_set_gives_each_chosen_view_of_each_clip_a_row_of_its_own():
    """Hand-made maps: 2 clips x 3 variants (variant 1 the mirror, as in AUGMENTATIONS) of one 1 x 2 map; rows are
    clip by clip, the labels repeated."""
    from tscnn.fold import fit_set
    from tscnn.models.linear import pixel_features
    from tscnn.preprocessing.streams import AUGMENTATIONS

    assert AUGMENTATIONS[:2] == ((False, 0.0), (True, 0.0))
    maps = np.arange(12, dtype=np.float16).reshape(2, 3, 1, 1, 2)  # clip c, variant v: [6c + 2v, 6c + 2v + 1]
    labels = np.array([4, 7])
    x, y = fit_set(pixel_features, {"uvs": maps}, labels, np.array([1]), "every")
    np.testing.assert_array_equal(x, [[6, 7], [8, 9], [10, 11]])
    assert y.tolist() == [7, 7, 7] and x.dtype == np.float32
    x, y = fit_set(pixel_features, {"uvs": maps}, labels, np.array([0, 1]), "mirror")
    np.testing.assert_array_equal(x, [[0, 1], [2, 3], [6, 7], [8, 9]])
    assert y.tolist() == [4, 4, 7, 7]
    x, y = fit_set(pixel_features, {"uvs": maps}, labels, np.array([0, 1]))
    np.testing.assert_array_equal(x, [[0, 1], [6, 7]])
    assert y.tolist() == [4, 7]
    with pytest.raises(ValueError, match=r"different numbers of variants \(\[1, 3\]\)"):
        fit_set(pixel_features, {"uvs": maps, "dt": maps[:, :1]}, labels, np.array([0]), "every")
    with pytest.raises(ValueError, match="floor_views 'mirror' needs the augmentation variants of each clip"):
        fit_set(pixel_features, {"uvs": maps[:, :1]}, labels, np.array([0]), "mirror")


def test_floor_views_fit_the_floor_on_more_views_of_its_training_clips(flows, tmp_path):
    """floor_views: the floor, fused or alone, is fitted on the ten augmentation variants of each training clip
    (``every``) or on the original and its mirror (``mirror``), fitted by hand here view by view, and predicts each
    test clip's original view; the network trains exactly as without it."""
    from tscnn.models.linear import centred_maps, linear_classifier
    from tscnn.preprocessing.prepare import PrepSettings, prepare

    settings = dict(dataset="flowfolder", root=str(flows), classes="all", streams=("uvs",), max_epochs=2,
                    average_last=1, batch_size=8, seeds=(0,), centre_floor=True, fuse_linear=True)
    fused_config = replace(config_for("tscnn", "tscnn-plus", **settings), bf16=False, channels_last=False)
    assert fused_config.augment
    run_experiment(fused_config, tmp_path / "fused", tmp_path / "cache", progress=False)
    augmented = run_experiment(replace(fused_config, floor_views="every"), tmp_path / "augmented",
                               tmp_path / "cache", progress=False)
    run_experiment(replace(fused_config, floor_views="mirror"), tmp_path / "mirror", tmp_path / "cache",
                   progress=False)
    assert "every augmentation variant of each" in augmented.metrics["fusion"]
    floor_config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all", centre_floor=True,
                              floor_views="every")
    floor_pred = run_experiment(floor_config, tmp_path / "floor", tmp_path / "cache",
                                progress=False).predictions.set_index("clip")["pred"]
    prepared = prepare(read_flowfolder(flows).table, PrepSettings(size=28, augment=True), progress=False,
                       streams=("uvs",))
    maps, labels = prepared.arrays["uvs"].astype(np.float32), prepared.table["label"].to_numpy()
    assert maps.shape[1] == 10

    def features(clips: np.ndarray, variant: int) -> np.ndarray:
        return centred_maps(maps[clips, variant]).reshape(len(clips), -1)

    for path in sorted((tmp_path / "augmented" / "seed_0" / "folds").glob("*.json")):
        record = json.loads(path.read_text())
        plain = json.loads((tmp_path / "fused" / "seed_0" / "folds" / path.name).read_text())
        assert record["network_proba"] == plain["network_proba"]
        rows = np.asarray(record["rows"])
        train = np.flatnonzero(~np.isin(np.arange(len(labels)), rows))
        fitted = linear_classifier().fit(np.concatenate([features(train, v) for v in range(10)]),
                                         np.tile(labels[train], 10))
        by_hand = fitted.predict_proba(features(rows, 0))
        np.testing.assert_allclose(record["floor_proba"], by_hand, atol=1e-4)
        assert np.abs(by_hand - np.asarray(plain["floor_proba"])).max() > 1e-3  # ten views fit another floor
        assert (by_hand.argmax(1) == floor_pred.loc[prepared.table["clip"].iloc[rows]].to_numpy()).all()
        mirror = json.loads((tmp_path / "mirror" / "seed_0" / "folds" / path.name).read_text())
        assert mirror["network_proba"] == plain["network_proba"]
        two_views = linear_classifier().fit(np.concatenate([features(train, 0), features(train, 1)]),
                                            np.tile(labels[train], 2))
        np.testing.assert_allclose(mirror["floor_proba"], two_views.predict_proba(features(rows, 0)), atol=1e-4)
    with pytest.raises(ValueError, match="floor_views 'every' fits the floor on augmentation variants of each clip"):
        replace(fused_config, augment=False, floor_views="every")


def test_mixup_trains_on_the_convex_mix_of_paired_clips(arrays_and_labels, monkeypatch):
    """With mixup the network sees lam * x + (1 - lam) * x[pairing] in every stream, and the loss is the same mix
    of the two labels' losses (checked on the first batch, with lam and the pairing fixed by hand)."""
    arrays, table = arrays_and_labels
    labels = table.label.to_numpy()
    config = replace(config_for("tscnn", streams=("uvs",), size=28, max_epochs=1, selection="fixed", val_fraction=0.0,
                                batch_size=8, augment=False, mixup=0.4), bf16=False, channels_last=False)
    trainer = Trainer(config, 3, seed=0)
    pairing = torch.arange(7, -1, -1)
    monkeypatch.setattr(Trainer, "_mixup", lambda self, state, size: (0.25, pairing[:size]))
    seen: list[dict] = []
    state = trainer._new_state(trainer.data(arrays))
    state.model.register_forward_pre_hook(lambda module, args: seen.append({k: v.clone() for k, v in args[0].items()}))
    rows = np.arange(8)
    monkeypatch.setattr(Trainer, "_epoch_samples", lambda self, st, data, train: (rows, np.zeros(8, int)))
    loss, _, auxiliary = trainer._train_epoch(state, trainer.data(arrays), labels, rows, None)
    assert auxiliary == {}  # no teacher, no action units: no auxiliary term
    x = torch.from_numpy(arrays["uvs"][rows, 0].astype(np.float32))
    torch.testing.assert_close(seen[0]["uvs"], 0.25 * x + 0.75 * x[pairing])
    assert np.isfinite(loss)
    with pytest.raises(ValueError, match="mixup is the alpha"):
        replace(config, mixup=-1.0)


def test_cache_files_are_written_under_a_name_private_to_the_process(tmp_path):
    """Two benchmark rows preparing the same clip at once each write their own temporary file."""
    from tscnn.preprocessing.prepare import private_tmp_path

    path = tmp_path / "clip.npz"
    assert private_tmp_path(path, 11) != private_tmp_path(path, 12)
    assert private_tmp_path(path, 11).parent == tmp_path and private_tmp_path(path, 11).name.endswith(".npz")


def test_val_loss_without_validation_subjects_is_an_error(arrays_and_labels):
    arrays, table = arrays_and_labels
    config = config_for("ststnet", selection="val_loss", max_epochs=2)
    with pytest.raises(ValueError, match="needs validation subjects.*selection 'fixed'"):
        Trainer(config, 3, 0).fit(arrays, table.label.to_numpy(), np.arange(10), np.array([], int))


# --- results that stay true -----------------------------------------------------------------------------------


def test_a_changed_clip_table_refuses_to_resume(tmp_path):
    flows = learnable_folder(tmp_path / "flows")
    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all")
    run_experiment(config, tmp_path / "run", progress=False)
    index = pd.read_csv(flows / "index.csv")
    index.loc[0, ["label", "label_name"]] = [2, "surprise"]
    index.to_csv(flows / "index.csv", index=False)
    with pytest.raises(ValueError, match="another clip table"):
        run_experiment(config, tmp_path / "run", progress=False)


def test_the_fingerprint_follows_file_contents_not_times(tmp_path):
    """A re-mounted or copied database (new times, same bytes) resumes; an edited flow image refuses."""
    import os

    flows = learnable_folder(tmp_path / "flows")
    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all")
    run_experiment(config, tmp_path / "run", progress=False)
    first = sorted(flows.rglob("*.png"))[0]
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert run_experiment(config, tmp_path / "run", progress=False).complete
    image = first.read_bytes()
    write_flow_image(first, np.full((3, 28, 28), 0.3, np.float32))
    assert first.read_bytes() != image
    with pytest.raises(ValueError, match="another clip table"):
        run_experiment(config, tmp_path / "run", progress=False)


def test_a_changed_pretrained_weights_file_refuses_to_resume(tmp_path):
    """The fingerprint keeps the weights file's hash: the same path with other contents would make stale folds."""
    from tscnn.run_facts import check_or_store_run

    weights = tmp_path / "pretrained.pt"
    weights.write_bytes(b"first")
    config = config_for("tscnn", "tscnn-plus", dataset="flowfolder", pretrained=str(weights))
    table = pd.DataFrame({"dataset": ["d"], "subject": ["s1"], "clip": ["c1"], "label": [0]})
    check_or_store_run(config, tmp_path / "run", table)
    stamp = json.loads((tmp_path / "run" / "fingerprint.json").read_text())
    assert stamp["pretrained_sha1"] == "e0996a37c13d44c3b06074939d43fa3759bd32c1"  # sha1 of b"first"
    check_or_store_run(config, tmp_path / "run", table)  # the same bytes resume
    weights.write_bytes(b"second")
    with pytest.raises(ValueError, match="other contents of the pre-trained weights file"):
        check_or_store_run(config, tmp_path / "run", table)
    del stamp["pretrained_sha1"]  # a folder from before the hash was kept resumes
    (tmp_path / "run" / "fingerprint.json").write_text(json.dumps(stamp))
    check_or_store_run(config, tmp_path / "run", table)


def test_a_folder_from_before_a_new_config_field_resumes(tmp_path):
    """A Config field added later (its default keeps the earlier behaviour) does not orphan older folders;
    a field stored with another value still refuses."""
    flows = learnable_folder(tmp_path / "flows")
    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all")
    run_experiment(config, tmp_path / "run", progress=False)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    del stored["face_align"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(stored))
    assert run_experiment(config, tmp_path / "run", progress=False).complete
    stored["face_align"] = "landmarks"
    (tmp_path / "run" / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"other settings \(face_align\)"):
        run_experiment(config, tmp_path / "run", progress=False)


def test_another_code_version_refuses_to_resume_unless_allowed(flows, tmp_path, monkeypatch):
    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all")
    run_experiment(config, tmp_path / "run", progress=False)
    monkeypatch.setattr("tscnn.run_facts.code_version", lambda: "9.9.9+gdeadbee")
    with pytest.raises(ValueError, match="made by code"):
        run_experiment(config, tmp_path / "run", progress=False)
    assert run_experiment(config, tmp_path / "run", progress=False, allow_code_change=True).complete


def test_features_models_run_in_the_same_protocol(flows, tmp_path):
    for model in ("linear", "hoof"):
        config = config_for(model, dataset="flowfolder", root=str(flows), classes="all")
        metrics = run_experiment(config, tmp_path / model, progress=False).metrics
        assert metrics["model"] == model and metrics["per_seed"][0]["n"] == 36
        assert metrics["mean_std_over_seeds"]["uf1"]["mean"] > 0.6  # the blob's place is easy to see


# --- options checked before any work --------------------------------------------------------------------------


@pytest.mark.parametrize("option, message", [
    (["--streams", "foo"], "unknown stream 'foo'"),
    (["--streams", "SS"], "unknown stream 'SS'"),
    (["--device", "tpu"], "device 'tpu' is not available"),
    (["--blocks", "100"], "blocks .k = 100. must leave face blocks"),
    (["--model", "ststnet", "--streams", "dt"], "reads the stream"),
    (["--streams", "uvs", "--scale-flow"], "give --centre-flow with --scale-flow"),
    (["--model", "linear", "--fuse-linear"], "fuse_linear averages a network's probabilities"),
    (["--model", "ststnet", "--streams", "uvs", "--centre-floor"], "centre_floor centres the linear floor's maps; "
                                                                   "model ststnet has no floor"),
    (["--model", "ststnet", "--streams", "uvs", "--augment", "--floor-views", "mirror"],
     "floor_views fits the linear floor on augmentation variants; model ststnet has no floor"),
    (["--model", "ststnet", "--streams", "uvs", "--floor-views", "every"],
     "floor_views 'every' fits the floor on augmentation variants of each clip, which only augment prepares"),
])
def test_bad_options_fail_before_any_work(flows, tmp_path, capsys, option, message):
    out = tmp_path / "never"
    code = main(["run", "--dataset", "flowfolder", "--root", str(flows), "--out", str(out), *option])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err
    assert not out.exists()


def test_cuda_without_a_gpu_is_named(flows):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        check_config(config_for("linear", device="cuda"))


def test_version_and_examples_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("tscnn ")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "examples:" in capsys.readouterr().out


def test_every_config_field_is_an_option(capsys):
    from tscnn.cli import build_parser
    from tscnn.config import Config

    parser = build_parser()
    args = parser.parse_args(["run", "--root", "x", "--lr", "0.5", "--seeds", "0", "1,2", "--no-augment",
                              "--average-last", "3", "--selection", "fixed"])
    from tscnn.cli import config_from_args

    config = config_from_args(args)
    assert (config.lr, config.seeds, config.augment, config.average_last) == (0.5, (0, 1, 2), False, 3)
    assert config.batch_size == Config().batch_size  # not given: the preset's value


def test_parallel_folds_give_the_sequential_predictions(flows, tmp_path):
    config = replace(config_for("ststnet", dataset="flowfolder", root=str(flows), classes="all", lr=5e-3,
                                max_epochs=3, batch_size=8, seeds=(0, 1)), threads=1)
    sequential = run_experiment(config, tmp_path / "one", progress=False)
    parallel = run_experiment(config, tmp_path / "two", progress=False, jobs=2)
    pd.testing.assert_frame_equal(sequential.predictions, parallel.predictions)
    resumed = run_experiment(config, tmp_path / "two", progress=False, jobs=2)  # every fold saved: nothing new
    pd.testing.assert_frame_equal(resumed.predictions, sequential.predictions)


def test_a_failing_fold_is_retried_once_then_named(flows, tmp_path, monkeypatch):
    calls = []

    def broken(config, prepared, labels, num_classes, fold, seed, index, progress):
        calls.append(fold.test_subject)
        raise RuntimeError("boom")

    monkeypatch.setattr("tscnn.fold.run_fold", broken)
    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all")
    jobs = [FoldJob(0, 0, loso_folds(read_flowfolder(flows).table, 0.0)[0], tmp_path / "a.json")]
    with pytest.raises(RuntimeError, match="boom"):  # the sequential path stops at once
        backends.run_fold_jobs(jobs, config, None, None, 3, False, jobs=1)
    assert calls == ["s01"]


def good_and_broken_fold_jobs(flows: Path, tmp_path: Path, **settings) -> tuple:
    """Two fold jobs of the linear model: one that fits, one whose training rows hold one class (the
    classifier cannot fit, wherever it runs); with their config, prepared data and labels."""
    from tscnn.preprocessing.prepare import PrepSettings, prepare

    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all", **settings)
    db = read_flowfolder(flows)
    prepared = prepare(db.table, PrepSettings(size=28, augment=False), progress=False, streams=("uvs",))
    labels = prepared.table.label.to_numpy()
    good = loso_folds(prepared.table, 0.0)[0]
    one_class = np.flatnonzero(labels == 0)
    bad = Fold("broken", one_class[one_class != good.test[0]], np.array([], int), good.test[:1])
    jobs = [FoldJob(0, 0, good, tmp_path / "good.json"), FoldJob(0, 1, bad, tmp_path / "b.json")]
    return config, prepared, labels, jobs


def test_worker_failures_are_retried_once_and_named(flows, tmp_path):
    """In worker processes a fold whose training rows hold one class (the classifier cannot fit) fails
    twice and is named; the other fold is saved."""
    config, prepared, labels, jobs = good_and_broken_fold_jobs(flows, tmp_path)
    failed = backends.run_fold_jobs(jobs, config, prepared, labels, 3, False, jobs=2)
    assert len(failed) == 1 and failed[0].startswith("fold broken of seed 0 failed twice")
    assert (tmp_path / "good.json").exists() and not (tmp_path / "b.json").exists()


def test_a_run_may_add_seeds_and_reuses_the_finished_ones(flows, tmp_path):
    config = config_for("linear", dataset="flowfolder", root=str(flows), classes="all", seeds=(0,))
    first = run_experiment(config, tmp_path / "run", progress=False)
    more = run_experiment(replace(config, seeds=(0, 1)), tmp_path / "run", progress=False)
    assert set(more.metrics["per_seed"]) == {0, 1}
    pd.testing.assert_frame_equal(more.predictions[more.predictions.seed == 0].reset_index(drop=True),
                                  first.predictions)
    with pytest.raises(ValueError, match=r"other settings \(extra\)"):
        run_experiment(replace(config, extra={"C": 1}), tmp_path / "run", progress=False)


def test_linear_floor_on_the_real_flows_matches_the_independent_measurement(tmp_path):
    """The linear floor through this project's reader, folds and metrics gives the figures the data folder's
    README quotes from an independent measurement (UF1 0.763, UAR 0.771; CASME II 0.856 / 0.869, SMIC
    0.682 / 0.687): a check of the protocol and the metric code on real data."""
    from conftest import real_or_skip

    folder = real_or_skip("megc2019-flow28")
    config = config_for("linear", dataset="flowfolder", root=str(folder), classes="all")
    metrics = run_experiment(config, tmp_path / "floor", tmp_path / "cache", progress=False).metrics
    whole, parts = metrics["per_seed"][0], metrics["per_seed"][0]["per_dataset"]
    assert (round(whole["uf1"], 3), round(whole["uar"], 3)) == (0.763, 0.771)
    assert (round(parts["casme2"]["uf1"], 3), round(parts["casme2"]["uar"], 3)) == (0.856, 0.869)
    assert (round(parts["smic"]["uf1"], 3), round(parts["smic"]["uar"], 3)) == (0.682, 0.687)


def test_sample_mode_draws_one_variant_per_clip_and_expand_passes_every_variant():
    """augment_mode: "sample" (tscnn-plus) gives each training clip once per epoch in one random variant;
    "expand" (the paper) gives every clip in all its variants."""
    from tscnn.train import _State

    rng = np.random.default_rng(0)
    arrays = {"uvs": rng.random((6, 10, 3, 28, 28)).astype(np.float32)}
    train = np.array([0, 2, 3, 5])
    for mode, count in (("sample", 4), ("expand", 40)):
        trainer = Trainer(replace(config_for("tscnn", streams=("uvs",), size=28), augment_mode=mode), 3, seed=0)
        state = _State(None, None, None, np.random.default_rng(1))
        draws = [trainer._epoch_samples(state, trainer.data(arrays), train) for _ in range(30)]
        rows, variants = draws[0]
        assert len(rows) == count and sorted(set(rows)) == train.tolist()
        if mode == "sample":
            assert sorted(rows) == train.tolist()  # each clip exactly once
            seen = np.concatenate([v for _, v in draws])
            assert set(seen) == set(range(10))  # over epochs, every variant is drawn
        else:
            pairs = sorted(zip(rows.tolist(), variants.tolist(), strict=True))
            assert pairs == [(r, v) for r in train.tolist() for v in range(10)]


def test_the_cosine_schedule_decays_the_learning_rate_to_zero_over_the_budget(arrays_and_labels):
    arrays, table = arrays_and_labels
    labels = table.label.to_numpy()
    config = replace(config_for("tscnn", streams=("uvs",), size=28, lr=0.1, batch_size=16, selection="fixed",
                                val_fraction=0.0, max_epochs=4, schedule="cosine"), bf16=False,
                     channels_last=False, augment=False)
    result = Trainer(config, 3, seed=0).fit(arrays, labels, np.arange(len(table)), np.array([], int), progress=False)
    lrs = [record["lr"] for record in result.history]  # the rate each epoch trained with
    assert lrs == pytest.approx([0.1 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)])
    constant = Trainer(replace(config, schedule="constant", max_epochs=2), 3, seed=0).fit(
        arrays, labels, np.arange(len(table)), np.array([], int), progress=False)
    assert [r["lr"] for r in constant.history] == [0.1, 0.1]


def test_the_presets_hold_the_recipes_the_guide_describes():
    paper, plus = from_preset("paper"), from_preset("tscnn-plus")
    assert (paper.size, paper.optimizer, paper.lr, paper.batch_size, paper.selection, paper.augment_mode,
            paper.pretrained) == (48, "sgd", 1e-3, 128, "val_loss", "expand", "")
    assert (plus.size, plus.lr, plus.batch_size, plus.max_epochs, plus.schedule, plus.selection, plus.val_fraction,
            plus.average_last, plus.class_balanced, plus.augment_mode, plus.tta_flip) == \
        (28, 1e-2, 32, 30, "cosine", "fixed", 0.0, 10, True, "sample", False)
    assert from_preset("tscnn-plus-tta") == replace(plus, preset="tscnn-plus-tta", tta_flip=True)
    assert from_preset("tscnn-plus-fused") == replace(plus, preset="tscnn-plus-fused", fuse_linear=True)
    demo = from_preset("demo")
    assert (demo.optimizer, demo.lr, demo.batch_size, demo.max_epochs, demo.selection, demo.class_balanced,
            demo.size, demo.augment) == ("adam", 1e-3, 16, 1, "fixed", True, 48, True)


def test_a_recipe_is_every_setting_a_preset_fixes_and_with_recipe_keeps_the_run():
    """RECIPE_FIELDS holds every setting any preset sets; ``with_recipe`` swaps the whole recipe (a peer in a table
    trains with its own) and keeps the data, streams, protocol and seeds of the run."""
    from tscnn.config import RECIPE_FIELDS, with_recipe

    assert {key for recipe in PRESETS.values() for key in recipe} <= set(RECIPE_FIELDS)
    run = from_preset("tscnn-plus-fused", dataset="flowfolder", root="data", seeds=(0, 1), teacher="fer",
                      protocol="cross", train_datasets=("casme2",), test_datasets=("smic",), streams=("uvs",))
    peer = with_recipe(run, "ststnet")
    assert peer == replace(from_preset("ststnet"), dataset="flowfolder", root="data", seeds=(0, 1), protocol="cross",
                           train_datasets=("casme2",), test_datasets=("smic",), streams=("uvs",))
    assert (peer.fuse_linear, peer.teacher, peer.class_balanced) == (False, "", False)


def test_what_names_a_run_besides_its_recipe_is_config_fields_outside_the_recipe():
    """Results tables pool rows by RUN_IDENTITY_FIELDS and RECIPE_FIELDS together: each is a Config field, and a
    field is either the run's or the recipe's, never both (a preset may not change which run a row is)."""
    from dataclasses import fields

    from tscnn.config import RECIPE_FIELDS, RUN_IDENTITY_FIELDS, Config

    assert set(RUN_IDENTITY_FIELDS) <= {f.name for f in fields(Config)}
    assert not set(RUN_IDENTITY_FIELDS) & set(RECIPE_FIELDS)


def test_a_fused_network_of_other_streams_is_averaged_with_the_floor_of_u_v_strain(synth_db_3, tmp_path):
    """fuse_linear with a network that reads SS and DT: its floor member is the ``linear`` model (u, v, strain),
    not a linear model of the network's own inputs; it predicts what a ``linear`` run predicts on the same folds."""
    db = synth_db_3
    config = from_preset("demo-sgd", streams=("ss", "dt"), size=28, max_epochs=1, root="unused", fuse_linear=True,
                         flow="dis")
    fused = run_experiment(config, tmp_path / "fused", tmp_path / "cache", database=db, progress=False)
    floor = run_experiment(config_for("linear", root="unused", flow="dis"), tmp_path / "floor", tmp_path / "cache",
                           database=db, progress=False)
    by_clip = floor.predictions.set_index(["subject", "clip"])["pred"]
    for path in sorted((tmp_path / "fused" / "seed_0" / "folds").glob("*.json")):
        record = json.loads(path.read_text())
        clips = list(db.table[["subject", "clip"]].iloc[record["rows"]].itertuples(index=False, name=None))
        assert np.argmax(record["floor_proba"], axis=1).tolist() == by_clip.loc[clips].tolist()
    members = fused.metrics["fused_members"]
    assert members["floor"]["uf1"]["mean"] == pytest.approx(floor.metrics["mean_std_over_seeds"]["uf1"]["mean"])
