"""The coding sheet's action units as an auxiliary target of TSCNN (``au_weight``, ``tscnn.action_units``)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_flowfolder import make_folder

from tscnn.action_units import AU_MIN_CLIPS, au_targets, au_vocabulary, parse_action_units
from tscnn.cli import main
from tscnn.config import from_preset
from tscnn.models.tscnn import TSCNN
from tscnn.runner import check_config
from tscnn.train import Trainer


@pytest.mark.parametrize(("code", "units"), [
    ("4+L10", {4, 10}),  # CASME II: side prefixes dropped
    ("R1+R2", {1, 2}),
    ("L2+26+38", {2, 26, 38}),
    ("12", {12}),
    (12, {12}),  # a one-unit cell read as a number
    ("AU12C + AU14", {12, 14}),  # an AU prefix and an intensity letter
    ("4+?", {4}),  # an unreadable token is skipped
])
def test_an_entry_gives_its_units_without_side_or_intensity(code, units):
    assert parse_action_units(code) == frozenset(units)


@pytest.mark.parametrize("code", ["", "?", "  ", None, float("nan"), "none"])
def test_an_entry_without_a_readable_unit_has_no_target(code):
    assert parse_action_units(code) is None


def test_the_targets_are_the_units_of_the_training_clips_only():
    codes = ["4+L10"] * 5 + ["12", "12+15", "?"] + ["14"] * 6  # AU 14 only on the (test) rows 8-13
    train = np.arange(8)
    t = au_targets(codes, train)
    assert t.units == (4, 10)  # 12 is on 2 training clips (fewer than AU_MIN_CLIPS), 14 on none
    assert AU_MIN_CLIPS == 5 and au_vocabulary([parse_action_units(c) for c in codes]) == (4, 10, 14)
    expected = np.zeros((len(codes), 2), np.float32)
    expected[:5] = 1.0
    np.testing.assert_array_equal(t.targets, expected)
    np.testing.assert_array_equal(t.known, [True] * 7 + [False] + [True] * 6)
    assert au_targets(codes, np.arange(len(codes)), min_clips=2).units == (4, 10, 12, 14)


def test_a_fold_without_units_is_refused():
    with pytest.raises(ValueError, match="no unit is shown by 5 or more training clips"):
        au_targets(["", "?"] * 10, np.arange(20))


def test_the_fused_vector_is_the_super_feature_vector_the_classifier_reads():
    torch.manual_seed(0)
    model = TSCNN(5, streams=("ss", "dt"), input_size=28).eval()
    inputs = {"ss": torch.rand(3, 1, 28, 28), "dt": torch.rand(3, 4, 28, 28)}
    with torch.no_grad():
        logits, vectors = model.forward_with_vectors(inputs)
        torch.testing.assert_close(vectors["fused"], model.super_features(inputs))
        torch.testing.assert_close(logits, model(inputs))
    assert set(vectors) == {"ss", "dt", "fused"} and vectors["fused"].shape == (3, 256)


def tiny_problem(clips=12, side=28):
    """Noise maps in which AU 4 brightens the top rows, AU 7 the middle and AU 12 the bottom: learnable units."""
    rng = np.random.default_rng(0)
    codes = ["4+7", "12", "4+L10", "12+15", "1+2", "4+7+9"] * 2
    dt = 0.3 * rng.random((clips, 10, 4, side, side))
    for row, code in enumerate(codes):
        for unit, band in ((4, slice(0, 9)), (7, slice(9, 18)), (12, slice(18, 28))):
            if unit in parse_action_units(code):
                dt[row, :, :, band] += 0.6
    return {"dt": dt.astype(np.float16)}, rng.integers(0, 5, clips), codes, np.arange(8), np.arange(8, 12)


def au_config(**overrides):
    settings = {"streams": ("dt",), "max_epochs": 8, "average_last": 2, "optimizer": "adam", "lr": 1e-3,
                "augment_mode": "expand", "batch_size": 16, "root": "unused"}
    return replace(from_preset("tscnn-plus-fused-au", **{**settings, **overrides}), bf16=False)


def test_the_units_head_trains_its_loss_falls_and_is_dropped_after_training():
    arrays, labels, codes, train, test = tiny_problem()
    units = au_targets(codes, train, min_clips=2)
    assert units.units == (4, 7, 12)
    trainer = Trainer(au_config(), 5, seed=1)
    fit = trainer.fit(arrays, labels, train, np.arange(0), test, progress=False, action_units=units)
    losses = [h["au_loss"] for h in fit.history]
    assert all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0], losses
    assert isinstance(fit.model, TSCNN) and not any(p.shape[0] == len(units.units) for p in fit.model.parameters())
    proba = trainer.predict_proba(fit.model, arrays, test)
    assert proba.shape == (len(test), 5) and np.allclose(proba.sum(1), 1, atol=1e-5)
    # The auxiliary loss changes what the network learns: the same seed without it ends elsewhere.
    plain = Trainer(replace(au_config(), au_weight=0.0), 5, seed=1).fit(arrays, labels, train, np.arange(0), test,
                                                                        progress=False)
    assert "au_loss" not in plain.history[0]
    assert not torch.equal(plain.model.classifier[-1].weight, fit.model.classifier[-1].weight)


def test_a_clip_without_units_adds_nothing_to_the_loss():
    """Training reads no target of a clip whose entry names no unit: changing them leaves training bit for bit."""
    arrays, labels, codes, train, test = tiny_problem()
    codes[0] = codes[3] = "?"
    units = au_targets(codes, train, min_clips=2)
    garbage = replace(units, targets=units.targets.copy())
    garbage.targets[[0, 3]] = 1.0 - garbage.targets[[0, 3]]
    config = au_config(max_epochs=2, average_last=1)
    runs = [Trainer(config, 5, seed=2).fit(arrays, labels, train, np.arange(0), test, progress=False, action_units=u)
            for u in (units, garbage)]
    assert [h["au_loss"] for h in runs[0].history] == [h["au_loss"] for h in runs[1].history]
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_au_weight_is_refused_where_it_cannot_work(tmp_path, capsys):
    with pytest.raises(ValueError, match="au_weight trains an auxiliary head on TSCNN's super feature vector; "
                                         "model sssnet has none"):
        check_config(replace(from_preset("sssnet", model="sssnet", streams=("uvs",)), au_weight=1.0))
    with pytest.raises(ValueError, match="au_weight needs the action units"):
        Trainer(au_config(), 5, seed=0).fit(*tiny_problem()[:2], np.arange(8), np.arange(0), progress=False)
    folder = make_folder(tmp_path / "flows")  # a flow folder names no action unit
    code = main(["--quiet", "run", "--dataset", "flowfolder", "--root", str(folder), "--streams", "uvs",
                 "--au-weight", "1", "--max-epochs", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {folder}: no clip names an action unit; au_weight trains on the coding sheet's")
    assert not (tmp_path / "out").exists()  # refused before a results folder is made


def test_a_run_on_a_coded_database_trains_each_fold_on_its_training_clips_units(synth_db_3, tmp_path, monkeypatch):
    """End to end on the synthetic CASME II (its sheet names every clip's units): each fold's targets are built
    from that fold's training rows, and its epochs record the units' loss."""
    import tscnn.fold
    from tscnn.runner import run_experiment

    built = []
    original = tscnn.fold.au_targets
    monkeypatch.setattr(tscnn.fold, "au_targets", lambda codes, train: built.append(train) or original(codes, train))
    config = from_preset("tscnn-plus-fused-au", dataset="casme2", root=str(synth_db_3.root), streams=("dt",),
                         max_epochs=2, average_last=1, threads=1)
    result = run_experiment(config, tmp_path / "out", tmp_path / "cache", database=synth_db_3, progress=False,
                            max_new_folds=1)
    record = json.loads(next((tmp_path / "out").rglob("folds/*.json")).read_text())
    subjects = synth_db_3.table.subject.astype(str).to_numpy()
    assert len(built) == 1 and sorted(set(subjects[built[0]])) == record["train_subjects"]
    assert record["test_subject"] not in set(subjects[built[0]])
    assert [set(h) >= {"au_loss", "train_loss"} for h in record["history"]] == [True, True]
    assert not result.complete  # one fold of three was asked for


def test_the_final_model_learns_the_units_of_every_training_clip_and_predicts_alone(synth_db_3, tmp_path):
    from tscnn.app import train_final_model
    from tscnn.predict import load_saved_model

    config = from_preset("tscnn-plus-fused-au", dataset="casme2", root=str(synth_db_3.root), streams=("dt",),
                         max_epochs=1, average_last=1, threads=1)
    path = train_final_model(config, tmp_path / "model", tmp_path / "cache", database=synth_db_3, progress=False)
    saved = load_saved_model(path)
    assert isinstance(saved.model, TSCNN) and saved.config.au_weight == 1.0 and saved.floor is not None
    assert saved.model.state_dict().keys() == TSCNN(len(saved.classes), ("dt",), input_size=28).state_dict().keys()
