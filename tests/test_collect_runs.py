"""benchmarks/collect_runs.py: finished results folders -> one JSON and a Markdown table; unfinished ones left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def figures(uf1: float) -> dict:
    return {"accuracy": {"mean": 0.5, "std": 0.0}, "uf1": {"mean": uf1, "std": 0.01}, "uar": {"mean": 0.4, "std": 0.0}}


def results_folder(root: Path, name: str, finished: bool = True, config: dict | None = None,
                   metrics: dict | None = None, fold_code: str | None = None) -> Path:
    folder = root / name
    (folder / "seed_0" / "folds").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config or {"model": "sssnet", "preset": "sssnet",
                                                               "streams": ["uvs"], "size": 28, "protocol": "loso",
                                                               "seeds": [0]}))
    (folder / "run_info.json").write_text(json.dumps({"code_version": "0.1.0+gabc1234", "cpu": "AMD EPYC",
                                                       "threads": 1, "jobs": 2, "bf16": False}))
    for subject, seconds in (("s01", 90.0), ("s02", 30.0)):
        record = {"seconds": seconds, **({"code_version": fold_code} if fold_code else {})}
        (folder / "seed_0" / "folds" / f"{subject}.json").write_text(json.dumps(record))
    if finished:
        (folder / "metrics.json").write_text(json.dumps({
            "mean_std_over_seeds": figures(0.61), "leaky_shadow": {"mean_std_over_seeds": figures(0.7)},
            "seed_ensemble": {"accuracy": 0.5, "uf1": 0.61, "uar": 0.4, "confusion": [[1]]}, **(metrics or {})}))
    return folder


def test_rows_hold_the_figures_and_unfinished_runs_are_left_out(benchmark_script, tmp_path, capsys):
    done = results_folder(tmp_path, "done")
    running = results_folder(tmp_path, "running", finished=False)
    out = tmp_path / "runs.json"
    collect_runs = benchmark_script("collect_runs")
    assert collect_runs.main([str(done), str(running), "--data", "casme2-keyframes", "--json", str(out)]) == 0
    stored = json.loads(out.read_text())
    assert stored["data"] == "casme2-keyframes" and [r["folder"] for r in stored["rows"]] == ["done"]
    row = stored["rows"][0]
    assert row["honest"]["uf1"]["mean"] == 0.61 and row["leaky_shadow"]["uf1"]["mean"] == 0.7
    assert row["seed_ensemble"] == {"accuracy": 0.5, "uf1": 0.61, "uar": 0.4}
    assert row["fold_minutes"] == 2.0 and row["code_version"] == "0.1.0+gabc1234" and row["cpu"] == "AMD EPYC"
    printed = capsys.readouterr()
    assert printed.err == f"skipped {running}: no metrics.json there (not a finished run folder)\n"  # said, not silent
    table = printed.out.splitlines()
    assert len(table) == 3
    assert table[2] == ("| sssnet | sssnet | uvs | loso | 1 | 0.500 +- 0.000 | 0.610 +- 0.010 | 0.400 +- 0.000 | "
                        "0.700 +- 0.010 | - | 0.1.0+gabc1234 | AMD EPYC | 2.0 |")
    assert row["changes_from_preset"] == {} and row["fused_members"] is None


def test_a_reduced_fused_cross_run_names_its_changes_members_directions_and_fold_code(benchmark_script, tmp_path,
                                                                                      capsys):
    """A run that changes its preset's recipe is listed with the changes; a fused run with each member alone; a
    cross-database run with its direction; the code version is the folds' (a summary rewritten later keeps it)."""
    from tscnn.config import from_preset

    config = {**from_preset("paper", size=28, max_epochs=30, fuse_linear=True).to_dict(), "protocol": "cross",
              "train_datasets": ["casme2"], "test_datasets": ["smic"], "streams": ["ss", "ls", "dt"]}
    members = {"fused_members": {"what": "...", "network": figures(0.55), "floor": figures(0.65)}}
    folder = results_folder(tmp_path, "reduced", config=config, metrics=members, fold_code="0.1.0+gfff0000")
    out = tmp_path / "runs.json"
    collect_runs = benchmark_script("collect_runs")
    assert collect_runs.main([str(folder), "--data", "megc2019-flow28+apex224", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][0]
    assert row["changes_from_preset"] == {"size": 28, "max_epochs": 30, "fuse_linear": True}
    assert row["fused_members"]["network"]["uf1"]["mean"] == 0.55 and row["code_version"] == "0.1.0+gfff0000"
    line = capsys.readouterr().out.splitlines()[2]
    assert line.startswith("| tscnn | paper size=28 max_epochs=30 fuse_linear=True | ss,ls,dt | cross casme2 -> smic |")
    assert "| 0.550 +- 0.010 / 0.650 +- 0.010 | 0.1.0+gfff0000 |" in line


def test_a_features_model_has_no_recipe_to_change_but_the_floor_settings(benchmark_script, tmp_path):
    config = {"model": "linear", "preset": "paper", "streams": ["uvs"], "size": 28, "protocol": "loso", "seeds": [0],
              "lr": 0.5, "centre_floor": False, "floor_views": "original"}
    collect = benchmark_script("collect_runs").collect
    assert collect(results_folder(tmp_path, "floor", config=config))["changes_from_preset"] == {}
    centred = {**config, "centre_floor": True}
    assert collect(results_folder(tmp_path, "centred", config=centred))["changes_from_preset"] == {"centre_floor": True}
    mirrored = {**config, "floor_views": "mirror"}
    assert collect(results_folder(tmp_path, "mirrored", config=mirrored))["changes_from_preset"] == \
        {"floor_views": "mirror"}


def test_a_table_variant_is_named_by_its_path_under_the_base(benchmark_script, tmp_path):
    (tmp_path / "table4").mkdir()
    config = {"model": "tscnn", "preset": "tscnn-plus", "streams": ["ls", "dt"], "size": 28, "blocks": 3,
              "protocol": "loso", "seeds": [0]}
    folder = results_folder(tmp_path / "table4", "ls-dt", config=config)
    collect = benchmark_script("collect_runs").collect
    assert collect(folder, tmp_path)["folder"] == "table4/ls-dt" and collect(folder)["folder"] == "ls-dt"
    assert collect(folder)["blocks"] == 3


def test_a_folder_extended_with_a_seed_under_way_reports_the_finished_seeds_only(benchmark_script, tmp_path):
    """A run resumed with more seeds names them all in its config and holds the new seed's first folds, while
    its metrics still cover the finished seeds: the row gives those seeds and their folds' minutes only."""
    config = {"model": "tscnn", "preset": "tscnn-plus-fused", "streams": ["ss", "ls", "dt"], "size": 28,
              "protocol": "loso", "seeds": [0, 1]}
    folder = results_folder(tmp_path, "extended", config=config, metrics={"per_seed": {"0": figures(0.61)}},
                            fold_code="0.1.0+gabc1234")
    (folder / "seed_1" / "folds").mkdir(parents=True)
    (folder / "seed_1" / "folds" / "s01.json").write_text(json.dumps({"seconds": 600.0,
                                                                        "code_version": "0.1.0+gdef5678"}))
    row = benchmark_script("collect_runs").collect(folder)
    assert row["seeds"] == [0] and row["per_seed_uf1"] == {"0": figures(0.61)["uf1"]}
    assert row["fold_minutes"] == 2.0 and row["code_version"] == "0.1.0+gabc1234"


def one_seed_row(folder: str, seed: int, uf1: float) -> dict:
    """A stored row of one seed, as earlier collections wrote it (no per-seed block)."""
    return {"folder": folder, "model": "tscnn", "preset": "tscnn-plus-fused", "streams": ["ss", "ls", "dt"],
            "size": 28, "blocks": 3, "changes_from_preset": {}, "protocol": "loso", "train_datasets": [],
            "test_datasets": [], "seeds": [seed], "honest": figures(uf1), "leaky_shadow": figures(uf1 + 0.1),
            "fused_members": {"network": figures(uf1 - 0.1), "floor": figures(0.6)}, "per_seed_uf1": {},
            "seed_ensemble": {"accuracy": 0.5, "uf1": uf1, "uar": 0.4}, "code_version": "0.1.0+gaaa0000",
            "cpu": "AMD EPYC", "threads": 1, "jobs": 2, "bf16": False, "fold_minutes": 60.0, "finished": "-"}


def test_each_seed_figures_come_from_the_kept_predictions(benchmark_script, tmp_path):
    """Seed 1: labels 0 0 1 1, predictions 0 0 1 0 -> accuracy 3/4, F1 of class 0 = 4/5, of class 1 = 2/3;
    its leaky predictions are all right. A seed the metrics do not cover yet is left out."""
    config = {"model": "tscnn", "preset": "tscnn-plus", "streams": ["ss", "ls", "dt"], "size": 28,
              "protocol": "loso", "seeds": [1, 2]}
    folder = results_folder(tmp_path, "kept", config=config, metrics={"classes": ["a", "b"]})
    rows = [(seed, label, pred) for seed in (1, 2) for label, pred in ((0, 0), (0, 0), (1, 1), (1, 0))]
    pd.DataFrame({"seed": [r[0] for r in rows], "label": [r[1] for r in rows], "pred": [r[2] for r in rows],
                  "leaky_pred": [r[1] for r in rows]}).to_csv(folder / "predictions.csv", index=False)
    figures_by_seed = benchmark_script("collect_runs").per_seed_figures(folder, [1], 2)
    assert list(figures_by_seed) == ["1"]
    honest = figures_by_seed["1"]["honest"]
    assert honest["accuracy"] == pytest.approx(0.75) and honest["uf1"] == pytest.approx((4 / 5 + 2 / 3) / 2)
    assert honest["uar"] == pytest.approx((1 + 0.5) / 2)
    assert figures_by_seed["1"]["leaky_shadow"] == {"accuracy": 1.0, "uf1": 1.0, "uar": 1.0}
    assert set(figures_by_seed["1"]) == {"honest", "leaky_shadow"}  # not fused: no members


def test_update_keeps_stored_rows_and_pools_one_recipe_over_folders(benchmark_script, tmp_path, capsys):
    """Seed 0 in a folder collected earlier (UF1 0.70) and seeds 1, 2 in a new one (0.74, 0.78): the pooled
    entry is the mean and population std over the three seeds, for every reading; a row of another recipe
    stays apart, and a folder collected again replaces its row."""
    out = tmp_path / "runs.json"
    other = {**one_seed_row("other", 0, 0.5), "preset": "paper"}
    out.write_text(json.dumps({"data": "composite", "rows": [one_seed_row("loso-s0", 0, 0.70), other,
                                                              one_seed_row("loso-s12", 7, 0.1)]}))
    new = {**one_seed_row("loso-s12", 1, 0.0), "seeds": [1, 2], "per_seed": {
        str(seed): {"honest": {"accuracy": 0.5, "uf1": uf1, "uar": 0.4},
                    "leaky_shadow": {"accuracy": 0.5, "uf1": uf1 + 0.1, "uar": 0.4},
                    "network": {"accuracy": 0.5, "uf1": uf1 - 0.1, "uar": 0.4},
                    "floor": {"accuracy": 0.5, "uf1": 0.6, "uar": 0.4}} for seed, uf1 in ((1, 0.74), (2, 0.78))}}
    collect_runs = benchmark_script("collect_runs")
    collect_runs.collect = lambda folder, base=None: new  # the new folder's row, as collect reads it
    folder = tmp_path / "loso-s12"
    folder.mkdir()
    (folder / "metrics.json").write_text("{}")
    assert collect_runs.main([str(folder), "--data", "composite", "--json", str(out), "--update"]) == 0
    stored = json.loads(out.read_text())
    assert [r["folder"] for r in stored["rows"]] == ["loso-s0", "other", "loso-s12"]
    [pooled] = stored["pooled"]
    assert pooled["folders"] == ["loso-s0", "loso-s12"] and pooled["seeds"] == [0, 1, 2]
    spread = np.std([0.70, 0.74, 0.78])
    assert pooled["honest"]["uf1"] == pytest.approx({"mean": 0.74, "std": spread})
    assert pooled["leaky_shadow"]["uf1"] == pytest.approx({"mean": 0.84, "std": spread})
    assert pooled["fused_members"]["network"]["uf1"] == pytest.approx({"mean": 0.64, "std": spread})
    assert pooled["fused_members"]["floor"]["uf1"] == pytest.approx({"mean": 0.6, "std": 0.0})
    assert pooled["per_seed_uf1"] == {"0": 0.70, "1": 0.74, "2": 0.78}
    assert pooled["bf16"] == [False, False] and pooled["code_version"] == "0.1.0+gaaa0000"
    assert "| 3 | 0.500 +- 0.000 | 0.740 +- 0.033 |" in capsys.readouterr().out


def test_rows_sharing_a_seed_are_not_pooled(benchmark_script):
    """The same seed in two folders is one seed run twice, not two seeds: no pooled figure."""
    pool = benchmark_script("collect_runs").pool
    assert pool([one_seed_row("a", 0, 0.7), one_seed_row("b", 0, 0.72)]) == []
    assert len(pool([one_seed_row("a", 0, 0.7), one_seed_row("b", 1, 0.72)])) == 1


def test_rows_of_a_learning_curve_are_pooled_by_their_share_of_training_subjects(benchmark_script, capsys):
    """A point of a learning curve (each fold learning from a share of its training subjects) is not the recipe
    on the whole data: pooled only with rows of the same share; a row stored before the share was kept had all."""
    pool = benchmark_script("collect_runs").pool
    half = {**one_seed_row("half", 1, 0.6), "train_fraction": 0.5}
    assert pool([one_seed_row("whole", 0, 0.7), half]) == []
    [pooled] = pool([one_seed_row("whole", 0, 0.7), {**one_seed_row("whole-too", 1, 0.72), "train_fraction": 1.0}])
    assert pooled["train_fraction"] == 1.0 and pooled["seeds"] == [0, 1]
    [pooled] = pool([{**one_seed_row("half-too", 0, 0.62), "train_fraction": 0.5}, half])
    assert pooled["train_fraction"] == 0.5 and pooled["honest"]["uf1"]["mean"] == pytest.approx(0.61)
    collect_runs = benchmark_script("collect_runs")
    collect_runs._print_row(half)
    collect_runs._print_row(one_seed_row("whole", 0, 0.7))
    half_line, whole_line = capsys.readouterr().out.splitlines()
    assert "| loso, 0.5 of the training subjects | 1 |" in half_line and "| loso | 1 |" in whole_line


def test_update_refuses_rows_of_other_data(benchmark_script, tmp_path):
    out = tmp_path / "runs.json"
    out.write_text(json.dumps({"data": "casme2-keyframes", "rows": []}))
    with pytest.raises(SystemExit, match="runs.json: its rows are of data 'casme2-keyframes', not 'composite'"):
        benchmark_script("collect_runs").main([str(tmp_path), "--data", "composite", "--json", str(out), "--update"])
