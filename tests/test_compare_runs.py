"""benchmarks/compare_runs.py: two runs' predictions, per seed and paired subject by subject over shared seeds."""

from __future__ import annotations

import pandas as pd
import pytest

CLIPS = [("s1", "c1", 0), ("s1", "c2", 1), ("s2", "c3", 0), ("s2", "c4", 1)]


def clip_rows(preds: dict[int, list[int]], network: dict[int, list[int]] | None = None) -> list[dict]:
    """predictions.csv rows of the 4 clips of CLIPS (2 classes) for each seed of ``preds``."""
    return [{"dataset": "casme2", "subject": subject, "clip": clip, "label": label, "pred": pred, "network_pred": net,
             "p_a": 0.5, "p_b": 0.5, "seed": seed, "fold": subject}
            for seed, answers in preds.items()
            for (subject, clip, label), pred, net in zip(CLIPS, answers, (network or preds)[seed], strict=True)]


def test_per_seed_uf1_and_the_paired_difference_are_the_hand_computed_ones(benchmark_script, predictions_folder):
    script = benchmark_script("compare_runs")
    a = predictions_folder("a", clip_rows({0: [0, 1, 0, 1], 1: [0, 0, 0, 1]},
                                          network={0: [0, 0, 0, 1], 1: [0, 0, 0, 1]}))
    b = predictions_folder("b", clip_rows({0: [0, 0, 0, 1], 2: [1, 1, 1, 1]}))
    result = script.compare(a, b)
    # seed 0 of b: class 0 F1 = 2*2 / (2*2 + 1) = 0.8, class 1 F1 = 2*1 / (2*1 + 1) = 2/3: UF1 11/15
    assert result["per_seed_uf1"]["b"]["prediction"][0] == pytest.approx(11 / 15)
    assert result["per_seed_uf1"]["a"]["prediction"] == pytest.approx({0: 1.0, 1: 11 / 15})
    assert result["shared_seeds"] == [0]
    paired = result["a_minus_b"]
    assert paired["prediction"]["uf1_difference"] == pytest.approx(1.0 - 11 / 15)
    assert paired["network member"]["uf1_difference"] == pytest.approx(0.0)  # the same answers on seed 0
    assert "leaky shadow" not in paired  # neither run holds it
    swapped = script.compare(b, a)["a_minus_b"]["prediction"]
    assert swapped["uf1_difference"] == pytest.approx(-paired["prediction"]["uf1_difference"])
    assert swapped["ci_low"] == pytest.approx(-paired["prediction"]["ci_high"])


def test_runs_that_cannot_be_paired_are_refused_in_one_line(benchmark_script, predictions_folder, tmp_path):
    script = benchmark_script("compare_runs")
    a = predictions_folder("a", clip_rows({0: [0, 1, 0, 1]}))
    with pytest.raises(SystemExit, match=r"^error: .*b, .*c: no seed in common; a paired comparison needs the same"):
        script.compare(predictions_folder("b", clip_rows({1: [0, 1, 0, 1]})),
                       predictions_folder("c", clip_rows({2: [0, 1, 0, 1]})))
    other = predictions_folder("other", clip_rows({0: [0, 1, 0, 1]}))
    table = pd.read_csv(other / "predictions.csv")
    table.loc[table["clip"] == "c4", "label"] = 0
    table.to_csv(other / "predictions.csv", index=False)
    with pytest.raises(SystemExit, match="^error: .*did not test the same clips with the same labels$"):
        script.compare(a, other)
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(SystemExit, match=r"^error: .*unfinished: no predictions.csv \(an unfinished run writes it"):
        script.compare(a, tmp_path / "unfinished")
