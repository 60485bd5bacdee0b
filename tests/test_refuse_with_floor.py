"""benchmarks/refuse_with_floor.py: a run's stored network probabilities fused with the floor refitted per fold give,
for a fused run of the current code, exactly that run's own figures and members, and for the same recipe trained
without fusion, exactly the fused run's figures (the network's training does not depend on the fusion)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from tscnn.config import from_preset
from tscnn.runner import run_experiment


def test_refusing_a_current_run_gives_its_own_figures(benchmark_script, synth_db, synth_db_3, synth_root, tmp_path):
    db = synth_db_3
    config = from_preset("demo-sgd", dataset="casme2", root=str(synth_root), streams=("ss", "dt"), size=28,
                         max_epochs=1, fuse_linear=True, flow="dis", seeds=(0, 1))
    run = run_experiment(config, tmp_path / "fused", tmp_path / "cache", database=db, progress=False)
    script = benchmark_script("refuse_with_floor")
    floors: dict = {}
    figures = script.refuse(tmp_path / "fused", tmp_path / "cache", database=db, floors=floors)
    fits = len(floors)
    assert fits > 0
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
    refused = script.refuse(tmp_path / "plain", tmp_path / "cache", database=db, floors=floors)
    assert len(floors) == fits  # the same folds of the same clips: the floor fitted once for both folders
    assert refused["recipe"] == figures["recipe"]  # both rows are the recipe fused with the floor
    assert figures["recipe"]["fuse_linear"] is True and figures["recipe"]["streams"] == ["ss", "dt"]
    assert figures["recipe"]["preset"] == "demo-sgd" and figures["recipe"]["max_epochs"] == 1
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
    centred = run_experiment(replace(config, centre_floor=True), tmp_path / "centred", tmp_path / "cache",
                             database=db, progress=False)  # the other floor, on the same networks
    refused_centred = script.refuse(tmp_path / "fused", tmp_path / "cache", database=db, floors=floors,
                                    centre_floor=True)
    assert refused_centred["recipe"] == {**figures["recipe"], "centre_floor": True}
    uncentred_again = script.refuse(tmp_path / "centred", tmp_path / "cache", database=db, floors=floors,
                                    centre_floor=False)
    assert uncentred_again["recipe"] == figures["recipe"]
    for key in ("accuracy", "uf1", "uar"):
        assert refused_centred["fused"][key]["mean"] == pytest.approx(
            centred.metrics["mean_std_over_seeds"][key]["mean"])
        assert refused_centred["members"]["floor"][key]["mean"] == pytest.approx(
            centred.metrics["fused_members"]["floor"][key]["mean"])
        assert uncentred_again["fused"][key]["mean"] == pytest.approx(figures["fused"][key]["mean"])
    per_seed = figures["per_seed"]  # each seed's figures, which pooling folders needs, agree with the means
    assert sorted(per_seed) == ["0", "1"]
    for name, block in (("fused", figures["fused"]), ("network", figures["members"]["network"])):
        assert block["uf1"]["mean"] == pytest.approx(np.mean([per_seed[s][name]["uf1"] for s in per_seed]))
    # the two floors compared subject by subject on the same networks: each point is a difference of the means
    paired = script.paired_bootstrap([tmp_path / "fused"], tmp_path / "cache", database=db, floors=floors,
                                     centre_floor=True)
    assert paired["fused"] == "fused with the centred floor" and paired["seeds"] == [0, 1]
    versus = paired["against"]["fused with the uncentred floor"]
    assert versus["uf1_difference"] == pytest.approx(refused_centred["fused"]["uf1"]["mean"]
                                                     - figures["fused"]["uf1"]["mean"])
    assert versus["ci_low"] <= versus["ci_high"] and versus["subjects"] == db.table["subject"].nunique()
    assert paired["against"]["uncentred floor alone"]["uf1_difference"] == pytest.approx(
        refused_centred["fused"]["uf1"]["mean"] - figures["members"]["floor"]["uf1"]["mean"])
    assert paired["against"]["network member"]["uf1_difference"] == pytest.approx(
        refused_centred["fused"]["uf1"]["mean"] - figures["members"]["network"]["uf1"]["mean"])
    reverse = script.paired_bootstrap([tmp_path / "fused"], tmp_path / "cache", database=db, floors=floors,
                                      centre_floor=False)
    assert reverse["against"]["fused with the centred floor"]["uf1_difference"] == pytest.approx(
        -versus["uf1_difference"])
    # floor_views every: the floor fitted on every augmentation variant of the training clips, on the same networks
    assert config.augment
    augmented = run_experiment(replace(config, floor_views="every"), tmp_path / "augmented", tmp_path / "cache",
                               database=db, progress=False)
    refused_augmented = script.refuse(tmp_path / "fused", tmp_path / "cache", database=db, floors=floors,
                                      floor_views="every")
    assert refused_augmented["recipe"] == {**figures["recipe"], "floor_views": "every"}
    assert figures["recipe"]["floor_views"] == "original"
    for key in ("accuracy", "uf1", "uar"):
        assert refused_augmented["fused"][key]["mean"] == pytest.approx(
            augmented.metrics["mean_std_over_seeds"][key]["mean"])
        assert refused_augmented["members"]["floor"][key]["mean"] == pytest.approx(
            augmented.metrics["fused_members"]["floor"][key]["mean"])
    by_variants = script.paired_bootstrap([tmp_path / "fused"], tmp_path / "cache", database=db, floors=floors,
                                          floor_views="every", vary="floor_views")
    assert by_variants["fused"] == "fused with the floor fitted on every variant"
    assert by_variants["against"]["fused with the floor fitted on original views"]["uf1_difference"] == pytest.approx(
        refused_augmented["fused"]["uf1"]["mean"] - figures["fused"]["uf1"]["mean"])
    assert by_variants["against"]["floor fitted on original views alone"]["uf1_difference"] == pytest.approx(
        refused_augmented["fused"]["uf1"]["mean"] - figures["members"]["floor"]["uf1"]["mean"])
    with pytest.raises(SystemExit, match="compares a floor fitted on more views with the original views"):
        script.paired_bootstrap([tmp_path / "fused"], tmp_path / "cache", database=db, vary="floor_views")
    with pytest.raises(SystemExit, match="plain: the folders share a seed"):
        script.paired_bootstrap([tmp_path / "fused", tmp_path / "plain"], tmp_path / "cache", database=db)
    empty = tmp_path / "empty"  # a run stopped before its first fold: its folder has no fold record yet
    (empty / "seed_0" / "folds").mkdir(parents=True)
    for name in ("config.json", "fingerprint.json"):
        shutil.copy(tmp_path / "fused" / name, empty / name)
    with pytest.raises(SystemExit, match="empty: no finished fold to fuse"):
        script.refuse(empty, tmp_path / "cache", database=db)


def _row(folder: str, seeds: dict[str, tuple[float, float, float]]) -> dict:
    """A fused row as the script writes it, each seed's (fused, network, floor) UF1 given; accuracy and UAR
    are set to UF1 plus 0.1 and 0.2 so that every reading is checked."""
    per_seed = {s: {name: {"accuracy": v + 0.1, "uf1": v, "uar": v + 0.2}
                    for name, v in zip(("fused", "network", "floor"), values, strict=True)}
                for s, values in seeds.items()}
    mean = {name: {k: {"mean": float(np.mean([f[name][k] for f in per_seed.values()])), "std": 0.0}
                   for k in ("accuracy", "uf1", "uar")} for name in ("fused", "network", "floor")}
    return {"folder": folder, "fused": mean["fused"], "members": {m: mean[m] for m in ("network", "floor")},
            "per_seed_uf1": {s: v[0] for s, v in seeds.items()}, "per_seed": per_seed}


def test_update_keeps_replaces_and_pools_rows(benchmark_script):
    script = benchmark_script("refuse_with_floor")
    old = _row("paper-s0", {"0": (0.62, 0.52, 0.63)})
    del old["per_seed"]  # a file of one folder written before each seed's figures were kept
    stored = {**old, "data": "casme2-keyframes", "what": "seed 0"}
    written = script.update(stored, _row("paper-s1", {"1": (0.60, 0.55, 0.63), "2": (0.66, 0.50, 0.63)}))
    assert written["data"] == "casme2-keyframes"
    assert [row["folder"] for row in written["rows"]] == ["paper-s0", "paper-s1"]
    assert written["rows"][0]["what"] == "seed 0"
    pooled = written["pooled"]
    assert pooled["seeds"] == [0, 1, 2]
    for name, block, values in (("fused", pooled["fused"], [0.62, 0.60, 0.66]),
                                ("network", pooled["members"]["network"], [0.52, 0.55, 0.50])):
        for key, offset in (("accuracy", 0.1), ("uf1", 0.0), ("uar", 0.2)):
            assert block[key]["mean"] == pytest.approx(np.mean(values) + offset), (name, key)
            assert block[key]["std"] == pytest.approx(np.std(values)), (name, key)
    again = script.update(written, _row("paper-s1", {"1": (0.70, 0.55, 0.63)}))  # fused again: replaced
    assert [row["folder"] for row in again["rows"]] == ["paper-s0", "paper-s1"]
    assert again["pooled"]["per_seed_uf1"] == {"0": 0.62, "1": 0.70}
    with pytest.raises(SystemExit, match="paper-s0, paper-s1, paper-s1b: seed 1 is in two runs"):
        script.update(again, _row("paper-s1b", {"1": (0.61, 0.55, 0.63)}))


def test_update_pools_rows_of_one_recipe_only(benchmark_script):
    """Rows naming their recipe must name the same one; a row written before rows named theirs is trusted."""
    script = benchmark_script("refuse_with_floor")
    paper = {"model": "tscnn", "preset": "paper", "size": 28, "max_epochs": 30, "fuse_linear": True}
    untagged = _row("paper-s0", {"0": (0.62, 0.52, 0.63)})
    stored = script.update(untagged, {**_row("paper-s1", {"1": (0.60, 0.55, 0.63)}), "recipe": paper})
    stored = script.update(stored, {**_row("paper-s2", {"2": (0.66, 0.50, 0.63)}), "recipe": dict(paper)})
    assert stored["pooled"]["seeds"] == [0, 1, 2]
    other = {**_row("paper48-s3", {"3": (0.70, 0.60, 0.63)}), "recipe": {**paper, "size": 48, "max_epochs": 200}}
    with pytest.raises(SystemExit, match=r"paper48-s3: not the recipe of paper-s1 \(it differs in max_epochs, "
                                         r"size\); one recipe per file"):
        script.update(stored, other)
    # A setting added after a row was written counts as its default there: the same recipe, unless set otherwise.
    later = {**_row("paper-s4", {"4": (0.61, 0.53, 0.62)}), "recipe": {**paper, "au_weight": 0.0}}
    assert script.update(stored, later)["pooled"]["seeds"] == [0, 1, 2, 4]
    with pytest.raises(SystemExit, match=r"differs in au_weight\)"):
        script.update(stored, {**later, "recipe": {**paper, "au_weight": 1.0}})
