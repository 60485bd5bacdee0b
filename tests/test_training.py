"""Learning and resuming on the synthetic database (small but real runs)."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from tscnn.config import from_preset
from tscnn.metrics import pooled_metrics
from tscnn.report import write_report
from tscnn.runner import default_out, run_experiment


def test_short_run_beats_chance(synth_db, synth_prepared, tmp_path):
    """LOSO with the DT stream, a fixed budget of 5 epochs: UF1 well above the ~0.2 of guessing (5 classes)."""
    config = from_preset("demo-sgd", streams=("dt",), max_epochs=5, selection="fixed", val_fraction=0.0, root="unused")
    result = run_experiment(config, tmp_path / "run", database=synth_db, progress=False,
                            cache_dir=tmp_path / "cache")
    m = result.metrics["per_seed"][0]
    majority = synth_db.table.label.value_counts().max() / len(synth_db.table)
    chance_uf1 = pooled_metrics(synth_db.table.label, np.random.default_rng(0).permutation(synth_db.table.label),
                                5)["uf1"]
    print(f"short DT run: UF1 {m['uf1']:.3f}, accuracy {m['accuracy']:.3f}, shuffled-label UF1 {chance_uf1:.3f}")
    assert m["uf1"] > max(0.35, chance_uf1 + 0.15), (m, chance_uf1)
    assert m["accuracy"] > majority + 0.05
    report = write_report(result, config, synth_db.table)
    text = report.read_text()
    assert "uf1" in text and "fixed epoch budget" in text and "LEAKY" not in text
    for name in ("confusion.png", "curves.png", "flow_example.png", "predictions.csv", "metrics.json",
                 "config.json", "run_info.json"):
        assert (result.out / name).exists(), name
    predictions = pd.read_csv(result.out / "predictions.csv")
    assert len(predictions) == len(synth_db.table) and predictions.fold.nunique() == synth_db.table.subject.nunique()


def test_resumed_run_gives_the_same_predictions(synth_db_3, tmp_path):
    db = synth_db_3
    config = from_preset("demo-sgd", streams=("dt",), max_epochs=1, root="unused")
    cache = tmp_path / "cache"
    whole = run_experiment(config, tmp_path / "whole", cache, database=db, progress=False)
    part = run_experiment(config, tmp_path / "resumed", cache, database=db, progress=False, max_new_folds=1)
    assert not part.complete and len(list((tmp_path / "resumed" / "seed_0" / "folds").glob("*.json"))) == 1
    resumed = run_experiment(config, tmp_path / "resumed", cache, database=db, progress=False)
    assert resumed.complete
    pd.testing.assert_frame_equal(whole.predictions, resumed.predictions)


def test_changed_settings_refuse_to_resume(synth_db, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    from_preset("demo-sgd", root="x").save(out / "config.json")
    other = from_preset("demo-sgd", root="x", lr=0.5)
    try:
        run_experiment(other, out, database=synth_db, progress=False)
    except ValueError as err:
        assert "lr" in str(err)
    else:
        raise AssertionError("a results folder with other settings was resumed")
    assert json.loads((out / "config.json").read_text())["lr"] == 0.01


def test_leaky_selection_is_labelled_everywhere(synth_db_3, tmp_path):
    db = synth_db_3
    config = from_preset("demo-sgd", streams=("dt",), max_epochs=2, selection="test_leaky", root="unused")
    result = run_experiment(config, tmp_path / "leaky", tmp_path / "cache", database=db, progress=False)
    assert result.metrics["leaky"] is True
    assert "LEAKY" in write_report(result, config, db.table).read_text().splitlines()[0]
    from tscnn.report import metrics_table

    assert "LEAKY" in metrics_table(result.metrics)
    record = json.loads(next((tmp_path / "leaky" / "seed_0" / "folds").glob("*.json")).read_text())
    assert "test_accuracy" in record["history"][0]  # the leak is recorded, not hidden
    # The leaky practice trains on every training subject: no validation subjects are held out unused.
    assert record["val_subjects"] == [] and record["n_train_clips"] == len(db.table) - (db.table.subject == record[
        "test_subject"]).sum()
    assert set(pd.read_csv(tmp_path / "leaky" / "predictions.csv")["selection"]) == {"test_leaky (LEAKY)"}
    assert default_out(config).name.endswith("-LEAKY")
    assert not default_out(replace(config, selection="val_loss")).name.endswith("LEAKY")


def test_device_resident_data_gives_the_host_path_bit_for_bit():
    """The GPU data path (prepared tensors moved to the device once; batches, augmentation variants and labels
    indexed there; the loss summed there) run on the CPU: the same history and probabilities as the host path."""
    from tscnn.train import Trainer

    rng = np.random.default_rng(0)
    clips = 12
    arrays = {s: rng.random((clips, 10, c, 48, 48)).astype(np.float16) for s, c in (("ss", 1), ("dt", 4))}
    labels = rng.integers(0, 5, clips)
    config = from_preset("demo-sgd", streams=("ss", "dt"), max_epochs=2, batch_size=16, lr=1e-3, root="unused")
    train, val, test = np.arange(6), np.arange(6, 9), np.arange(9, 12)
    results = []
    for resident in (False, True):
        trainer = Trainer(config, 5, seed=3, resident=resident)
        fit = trainer.fit(arrays, labels, train, val, test, progress=False)
        results.append(([{k: v for k, v in h.items() if k != "seconds"} for h in fit.history],
                        trainer.predict_proba(fit.model, arrays, test), fit.leaky_proba))
    (host_history, host_proba, host_leaky), (dev_history, dev_proba, dev_leaky) = results
    assert host_history == dev_history and np.isfinite(host_history[-1]["train_loss"])
    np.testing.assert_array_equal(host_proba, dev_proba)
    np.testing.assert_array_equal(host_leaky, dev_leaky)
