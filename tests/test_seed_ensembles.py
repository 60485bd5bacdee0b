"""benchmarks/seed_ensembles.py: the ensembles of every k seeds of one recipe, from finished runs' predictions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

CLIPS = [("s1", "c1", 0), ("s1", "c2", 1), ("s2", "c3", 0), ("s2", "c4", 1)]
# Probability of class "a" (class 0) per clip and seed; each seed alone predicts one clip wrong (UF1 11/15).
P_A = {0: [0.9, 0.6, 0.8, 0.3], 1: [0.3, 0.2, 0.9, 0.2], 2: [0.6, 0.1, 0.05, 0.1]}


def seed_rows(seeds: list[int], extra_class: bool = False) -> list[dict]:
    """predictions.csv rows of the 4 clips of CLIPS (2 classes; a third, never likely, with ``extra_class``) for
    each of ``seeds``."""
    return [{"dataset": "casme2", "subject": subject, "clip": clip, "label": label, "pred": int(p_a < 0.5),
             "p_a": p_a, "p_b": 1 - p_a, "seed": seed, "fold": subject, **({"p_c": 0.0} if extra_class else {})}
            for seed in seeds for (subject, clip, label), p_a in zip(CLIPS, P_A[seed], strict=True)]


def test_every_subset_of_seeds_is_scored_as_computed_by_hand(benchmark_script, predictions_folder):
    script = benchmark_script("seed_ensembles")
    folders = [predictions_folder("a", seed_rows([0, 1])), predictions_folder("b", seed_rows([2]))]
    table, classes = script.pooled_seeds(folders)
    assert classes == 2
    one, two, three = script.subset_ensembles(table, classes)
    assert (one["subsets"], two["subsets"], three["subsets"]) == (3, 3, 1)
    assert one["uf1_mean"] == pytest.approx(11 / 15) and one["uf1_min"] == one["uf1_max"]
    # pairs: {0, 1} predicts every clip right (1), {0, 2} misses c3 (11/15), {1, 2} predicts class 1 everywhere:
    # class 0 F1 0, class 1 F1 2*2 / (2*2 + 2) = 2/3, UF1 1/3
    assert (two["uf1_min"], two["uf1_max"]) == (pytest.approx(1 / 3), pytest.approx(1.0))
    assert two["uf1_mean"] == pytest.approx((1 + 11 / 15 + 1 / 3) / 3)
    assert two["uf1_gain_over_one_seed"] == pytest.approx(two["uf1_mean"] - 11 / 15)
    assert three["uf1_mean"] == pytest.approx(1.0)  # mean p_a 0.6, 0.3, 0.58, 0.2: every clip right
    assert three["uar_mean"] == pytest.approx(1.0)


def test_seeds_that_cannot_be_pooled_are_refused_in_one_line(benchmark_script, predictions_folder, tmp_path):
    script = benchmark_script("seed_ensembles")
    a = predictions_folder("a", seed_rows([0, 1]))
    with pytest.raises(SystemExit, match=r"^error: .*again: seed 1 is also in .*a; give each seed once$"):
        script.pooled_seeds([a, predictions_folder("again", seed_rows([1, 2]))])
    with pytest.raises(SystemExit, match=r"^error: .*three: classes a, b, c, in .*a a, b: not runs of one database$"):
        script.pooled_seeds([a, predictions_folder("three", seed_rows([2], extra_class=True))])
    other = predictions_folder("other", seed_rows([2]))
    table = pd.read_csv(other / "predictions.csv")
    table.loc[table["clip"] == "c4", "label"] = 0
    table.to_csv(other / "predictions.csv", index=False)
    with pytest.raises(SystemExit, match="other: seed 2 did not test the same clips with the same labels as seed 0"):
        script.pooled_seeds([a, other])
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(SystemExit, match=r"^error: .*unfinished: no predictions.csv"):
        script.pooled_seeds([a, tmp_path / "unfinished"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "predictions.csv").write_text("")
    with pytest.raises(SystemExit, match=r"^error: .*empty/predictions.csv: not a predictions file \(No columns"):
        script.pooled_seeds([a, tmp_path / "empty"])
    without_pred = [{k: v for k, v in row.items() if k != "pred"} for row in seed_rows([2])]
    not_a_run = predictions_folder("not_a_run", without_pred)
    with pytest.raises(SystemExit, match=r"not_a_run/predictions.csv: not a predictions file \(no pred column\)"):
        script.pooled_seeds([a, not_a_run])


def test_the_command_prints_a_row_per_ensemble_size_and_writes_json(benchmark_script, predictions_folder, tmp_path,
                                                                    capsys):
    script = benchmark_script("seed_ensembles")
    out = tmp_path / "ensembles.json"
    assert script.main([str(predictions_folder("a", seed_rows([0, 1, 2]))), "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].split()[:3] == ["seeds", "subsets", "UF1"]
    written = json.loads(out.read_text())
    assert written["seeds"] == [0, 1, 2] and written["clips"] == 4
    assert [r["seeds_in_ensemble"] for r in written["ensembles"]] == [1, 2, 3]


def test_folders_of_other_recipes_are_refused_naming_the_first_difference(benchmark_script, predictions_folder):
    script = benchmark_script("seed_ensembles")
    settings = {"model": "tscnn", "preset": "tscnn-plus-fused", "centre_floor": True, "seeds": [0, 1], "threads": 1}
    folders = [predictions_folder(name, seed_rows(seeds)) for name, seeds in (("a", [0, 1]), ("b", [2]))]
    folders[0].joinpath("config.json").write_text(json.dumps(settings))
    folders[1].joinpath("config.json").write_text(json.dumps({**settings, "seeds": [2], "threads": 2}))
    assert script.one_recipe(folders) == settings  # seeds and threads are the run's, not the recipe's
    folders[1].joinpath("config.json").write_text(json.dumps({**settings, "seeds": [2], "centre_floor": False}))
    with pytest.raises(SystemExit, match=r"^error: .*b: centre_floor is False, in .*a True: not seeds of one recipe$"):
        script.one_recipe(folders)


def test_read_run_predictions_names_what_is_wrong(tmp_path, predictions_folder):
    from tscnn.metrics import read_run_predictions

    table, classes = read_run_predictions(predictions_folder("run", seed_rows([0])))
    assert classes == ("a", "b") and len(table) == 4
    no_class = predictions_folder("no_class", [{k: v for k, v in r.items() if not k.startswith("p_")}
                                               for r in seed_rows([0])])
    with pytest.raises(ValueError, match=r"no_class/predictions.csv: not a predictions file \(no p_<class> column\)"):
        read_run_predictions(no_class)
    with pytest.raises(ValueError, match=r"nothing: no predictions.csv"):
        read_run_predictions(tmp_path / "nothing")
