"""benchmarks/refuse_with_floor.py: a run's stored network probabilities fused with the floor refitted per fold give,
for a fused run of the current code, exactly that run's own figures and members, and for the same recipe trained
without fusion, exactly the fused run's figures (the network's training does not depend on the fusion)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from tscnn.config import from_preset
from tscnn.runner import run_experiment


def test_refusing_a_current_run_gives_its_own_figures(benchmark_script, synth_db, synth_db_3, synth_root, tmp_path):
    db = synth_db_3
    config = from_preset("demo-sgd", dataset="casme2", root=str(synth_root), streams=("ss", "dt"), size=28,
                         max_epochs=1, fuse_linear=True, flow="dis", seeds=(0, 1))
    run = run_experiment(config, tmp_path / "fused", tmp_path / "cache", database=db, progress=False)
    script = benchmark_script("refuse_with_floor")
    figures = script.refuse(tmp_path / "fused", tmp_path / "cache", database=db)
    for key in ("accuracy", "uf1", "uar"):
        assert figures["fused"][key]["mean"] == pytest.approx(run.metrics["mean_std_over_seeds"][key]["mean"])
        for member in ("network", "floor"):
            assert figures["members"][member][key]["mean"] == pytest.approx(
                run.metrics["fused_members"][member][key]["mean"])
    plain = run_experiment(replace(config, fuse_linear=False), tmp_path / "plain", tmp_path / "cache", database=db,
                           progress=False)
    assert plain.metrics.get("fused_members") is None
    assert plain.metrics["mean_std_over_seeds"]["uf1"]["mean"] == pytest.approx(
        run.metrics["fused_members"]["network"]["uf1"]["mean"])
    refused = script.refuse(tmp_path / "plain", tmp_path / "cache", database=db)
    for key in ("accuracy", "uf1", "uar"):
        assert refused["fused"][key]["mean"] == pytest.approx(figures["fused"][key]["mean"])
        assert refused["members"]["network"][key]["mean"] == pytest.approx(figures["members"]["network"][key]["mean"])
    floor = tmp_path / "floor"  # a run folder of the floor itself: the plain run's, its model changed
    shutil.copytree(tmp_path / "plain", floor)
    replace(config, model="linear", fuse_linear=False).save(floor / "config.json")
    with pytest.raises(SystemExit, match="model linear is a features model: it has no network to fuse"):
        script.refuse(floor, tmp_path / "cache", database=db)
    with pytest.raises(SystemExit, match="differs from the one the run read"):
        script.refuse(tmp_path / "fused", tmp_path / "cache", database=synth_db)
