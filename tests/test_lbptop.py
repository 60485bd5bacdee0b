"""LBP-TOP + linear SVM (the paper's Tables 1 and 2 baseline) and the face-volume stream it reads."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tscnn.app import train_final_model
from tscnn.config import PRESETS, from_preset
from tscnn.datasets import DatasetError, read_flowfolder
from tscnn.models import get_model
from tscnn.models.lbptop import (
    BINS,
    DIMENSION,
    UNIFORM_BIN,
    UNIFORM_CODES,
    lbp_codes,
    lbptop,
    lbptop_classifier,
    lbptop_features,
)
from tscnn.preprocessing import prepare as prepare_module
from tscnn.preprocessing.prepare import PrepSettings, clip_volume_frames, prepare, volume_cache_path
from tscnn.preprocessing.streams import volume_maps
from tscnn.runner import check_config, config_for, run_experiment
from tscnn.tables import run_table


def test_the_58_uniform_patterns_and_the_bin_of_every_other():
    assert len(UNIFORM_CODES) == 58 and BINS == 59 and DIMENSION == 5 * 5 * 3 * 59
    assert 0 in UNIFORM_CODES and 255 in UNIFORM_CODES and 0b00111000 in UNIFORM_CODES
    assert UNIFORM_BIN[0b01010101] == 58 and UNIFORM_BIN[0b00100100] == 58  # 8 and 4 transitions
    assert UNIFORM_BIN[0] == 0 and UNIFORM_BIN[255] == 57


def test_an_lbp_code_by_hand_on_each_plane():
    """Centre 6; ring clockwise from the top-left: 5 9 1 7 3 6 2 4 -> bits 1, 3, 5 set (>= 6): 2 + 8 + 32."""
    patch = np.array([[5, 9, 1], [4, 6, 7], [2, 6, 3]], float)
    volume = np.stack([patch] * 3)
    assert lbp_codes(volume, "xy")[1, 1, 1] == 42
    assert (lbp_codes(volume, "xy")[:, 0] == -1).all()  # the plane's border has no code
    # Brightness rising in time, constant in space: on XT and YT the ring's row above (t - 1) is darker
    # (bits 0-2 clear), the centre row equal (bits 3 and 7 set), the row below brighter (bits 4-6 set).
    rising = np.arange(3, dtype=float)[:, None, None] * np.ones((3, 3, 3))
    for plane in ("xt", "yt"):
        assert lbp_codes(rising, plane)[1, 1, 1] == 8 + 16 + 32 + 64 + 128
    assert lbp_codes(rising, "xy")[1, 1, 1] == 255
    # A ramp along x only: on XY and XT the right column (bits 2, 3, 4) and the centre column (bits 1, 5)
    # are >= the centre: 2 + 4 + 8 + 16 + 32 = 62; on YT (t, y) every neighbour equals the centre: 255.
    # Swapped plane axes would give another code on one of them.
    ramp = np.zeros((3, 3, 3))
    ramp[:] = np.arange(3, dtype=float)[None, None, :]
    assert [lbp_codes(ramp, plane)[1, 1, 1] for plane in ("xy", "xt", "yt")] == [62, 62, 255]


def test_lbptop_histograms_sum_to_one_and_a_flat_volume_is_all_uniform_255():
    features = lbptop(np.random.default_rng(0).random((10, 48, 48)))
    assert features.shape == (DIMENSION,)
    np.testing.assert_allclose(features.reshape(25, 3, BINS).sum(-1), 1.0)
    flat = lbptop(np.full((10, 48, 48), 0.5)).reshape(25, 3, BINS)
    assert (flat[..., UNIFORM_BIN[255]] == 1).all() and flat.sum() == 75
    with pytest.raises(ValueError, match="LBP-TOP needs"):
        lbptop(np.zeros((2, 48, 48)))


def test_the_volume_is_resampled_in_time_by_linear_interpolation():
    frames = [np.zeros((20, 20), np.uint8), np.full((20, 20), 100, np.uint8), np.full((20, 20), 200, np.uint8)]
    volume = volume_maps(frames, 8, length=5)
    assert volume.shape == (5, 8, 8) and volume.dtype == np.float32
    np.testing.assert_allclose(volume[:, 0, 0], np.array([0, 50, 100, 150, 200]) / 255, atol=1e-6)
    still = volume_maps(frames[1:2], 8, length=4)  # one frame (onset == offset): a still volume
    np.testing.assert_allclose(still, 100 / 255, atol=1e-6)
    with pytest.raises(ValueError, match="at least 1 frame"):
        volume_maps([], 8)


def test_the_vol_stream_reads_every_frame_of_the_span_and_is_cached(synth_db, tmp_path, monkeypatch):
    table = synth_db.table.head(3)
    row = table.iloc[0]
    paths = clip_volume_frames(row)
    assert len(paths) == row.offset - row.onset + 1 and paths[0] == row.onset_path and paths[-1] == row.offset_path
    settings = PrepSettings()
    first = prepare(table, settings, tmp_path, progress=False, streams=("vol",))
    assert set(first.arrays) == {"vol"} and first.arrays["vol"].shape == (3, 1, 10, 48, 48)
    cached = sorted(p.name for p in tmp_path.glob("prep-*/*__vol__*.npz"))
    assert len(cached) == 3
    assert first.arrays["vol"].dtype == np.float32  # LBP compares neighbours: no float16 ties

    def refuse(*args, **kwargs):
        raise AssertionError("the volume was recomputed, not read from the cache")

    with monkeypatch.context() as patch:
        patch.setattr(prepare_module, "prepare_volume", refuse)
        again = prepare(table, settings, tmp_path, progress=False, streams=("dt", "vol"))
    np.testing.assert_array_equal(again.arrays["vol"], first.arrays["vol"])
    assert again.arrays["dt"].shape[:2] == (3, 10)


def test_a_changed_frame_inside_the_span_gives_a_new_volume_cache_file(synth_root, tmp_path):
    import shutil

    from tscnn.datasets import read_casme2

    root = tmp_path / "db"
    shutil.copytree(synth_root, root)
    table = read_casme2(root).table.head(1)
    row = table.iloc[0]
    before = volume_cache_path(tmp_path / "cache", row, PrepSettings(), "k")
    middle = clip_volume_frames(row)[1]  # neither onset, apex nor offset may be what changed
    assert middle not in (row.onset_path, row.offset_path)
    image = cv2.imread(middle)
    cv2.imwrite(middle, 255 - image)
    assert volume_cache_path(tmp_path / "cache", row, PrepSettings(), "k") != before


def test_the_volume_takes_only_frames_named_as_the_onset_file(synth_db, tmp_path):
    """Masks or another format beside the frames (img_mask2.png, img3.png next to img3.jpg) never enter the
    volume; a clip with onset == offset gives its one frame."""
    import shutil

    row = synth_db.table.iloc[0].to_dict()
    folder = tmp_path / "clip"
    shutil.copytree(row["frames_dir"], folder)
    onset = Path(row["onset_path"]).name
    prefix, suffix = onset[:onset.rindex(str(row["onset"]))], Path(onset).suffix
    for number in range(row["onset"], row["offset"] + 1):
        (folder / f"{prefix}mask{number}.png").write_bytes(b"not a frame")
        (folder / f"{prefix}{number}.png").write_bytes(b"not a frame either")
    moved = {**row, "frames_dir": str(folder), "onset_path": str(folder / onset)}
    paths = clip_volume_frames(moved)
    assert len(paths) == row["offset"] - row["onset"] + 1
    assert all(Path(p).suffix == suffix and "mask" not in p for p in paths)
    single = clip_volume_frames({**moved, "offset": row["onset"]})
    assert single == [str(folder / onset)]


def test_only_a_model_that_reads_the_volume_may_ask_for_it(tmp_path):
    with pytest.raises(ValueError, match="feeds hand-crafted features"):
        check_config(config_for("tscnn", streams=("ss", "vol"), root="unused"))
    check_config(config_for("lbptop", root="unused"))
    with pytest.raises(ValueError, match="is a features model"):  # refused before any preparation
        train_final_model(config_for("lbptop", root=str(tmp_path / "nowhere")), tmp_path / "model")


def test_a_flow_folder_cannot_give_the_volume(tmp_path):
    from test_protocols_and_recipes import learnable_folder

    db = read_flowfolder(learnable_folder(tmp_path / "flows"))
    with pytest.raises(DatasetError, match="gives only the uvs stream; asked for vol"):
        prepare(db.table, PrepSettings(size=28), progress=False, streams=("vol",))


PEERS = ("ststnet", "offapexnet", "sssnet")


def short_peer_recipes(monkeypatch) -> None:
    """The peers' own recipes, cut to 2 epochs so that a methods table runs in seconds."""
    for name in PEERS:
        monkeypatch.setitem(PRESETS, name, {**PRESETS[name], "max_epochs": 2})


def test_lbptop_runs_loso_through_the_registry_and_the_methods_table(synth_db_3, tmp_path, monkeypatch):
    spec = get_model("lbptop")
    assert (spec.kind, spec.streams) == ("features", ("vol",))
    db = synth_db_3
    config = config_for("lbptop", dataset="casme2", root="unused")
    result = run_experiment(config, tmp_path / "lbptop", tmp_path / "cache", database=db, progress=False)
    # The runner's predictions are those of LBP-TOP features and a linear SVM fitted on each fold's training
    # subjects, computed here by hand from the same prepared volumes.
    volumes = prepare(db.table, PrepSettings(), tmp_path / "cache", progress=False, streams=("vol",)).arrays["vol"]
    features, labels = lbptop_features({"vol": volumes[:, 0]}), db.table.label.to_numpy()
    expected = np.empty_like(labels)
    for subject in db.table.subject.unique():
        test = (db.table.subject == subject).to_numpy()
        classifier = lbptop_classifier().set_params(random_state=0)  # the runner seeds it with the run's seed
        expected[test] = classifier.fit(features[~test], labels[~test]).predict(features[test])
    got = result.predictions.set_index(["subject", "clip"]).loc[list(zip(db.table.subject, db.table["clip"],
                                                                         strict=True)), "pred"].to_numpy()
    np.testing.assert_array_equal(got, expected)
    # The paper's Tables 1 / 2 shape: LBP-TOP, HOOF, the floor and TSCNN on the same folds, the paper beside.
    short_peer_recipes(monkeypatch)
    base = from_preset("demo-sgd", dataset="casme2", root="unused", flow="dis", max_epochs=1, streams=("dt",))
    path = run_table("methods", base, tmp_path / "t1", tmp_path / "cache", database=db, progress=False)
    stored = json.loads((tmp_path / "t1" / "table.json").read_text())
    assert list(stored["rows"]) == ["LBP-TOP", "HOOF", "linear", "STSTNet", "Off-ApexNet", "SSSNet", "TSCNN"]
    assert stored["paper"]["LBP-TOP"] == [43.78, 0.3337] and stored["paper"]["HOOF"] == [76.6, 0.55]
    hoof = json.loads((tmp_path / "t1" / "hoof" / "config.json").read_text())
    assert (hoof["model"], hoof["streams"], hoof["size"]) == ("hoof", ["uvs"], 28)
    lbp = json.loads((tmp_path / "t1" / "lbp-top" / "config.json").read_text())
    assert (lbp["model"], lbp["streams"], lbp["size"]) == ("lbptop", ["vol"], 48)
    # A peer trains with its own recipe (its preset), on the table's data, folds and seeds.
    ststnet = json.loads((tmp_path / "t1" / "ststnet" / "config.json").read_text())
    recipe = (ststnet["preset"], ststnet["optimizer"], ststnet["lr"], ststnet["augment"])
    assert recipe == ("ststnet", "adam", 5e-5, False)
    assert (ststnet["flow"], ststnet["seeds"], ststnet["max_epochs"], ststnet["streams"]) == ("dis", [0], 2, ["uvs"])
    tscnn = json.loads((tmp_path / "t1" / "tscnn" / "config.json").read_text())
    assert (tscnn["preset"], tscnn["optimizer"], tscnn["max_epochs"]) == ("demo-sgd", "sgd", 1)
    assert "Tables 1 and 2" in path.read_text() and "| LBP-TOP |" in path.read_text()
    assert "own recipes (preset): STSTNet `ststnet`, Off-ApexNet `offapexnet`, SSSNet `sssnet`" in path.read_text()
    with pytest.raises(ValueError, match="run it with --model tscnn"):
        run_table("methods", config_for("ststnet", root="unused"), tmp_path / "t2", database=db, progress=False)


def test_the_methods_table_on_a_flow_folder_leaves_lbptop_out_and_says_so(tmp_path, monkeypatch):
    from test_protocols_and_recipes import learnable_folder

    short_peer_recipes(monkeypatch)
    db = read_flowfolder(learnable_folder(tmp_path / "flows"))
    base = config_for("tscnn", "tscnn-plus", dataset="flowfolder", root="unused", classes="all", streams=("uvs",),
                      max_epochs=1, average_last=1)
    path = run_table("methods", base, tmp_path / "t", database=db, progress=False)
    stored = json.loads((tmp_path / "t" / "table.json").read_text())
    assert list(stored["rows"]) == ["HOOF", "linear", "STSTNet", "Off-ApexNet", "SSSNet", "TSCNN"]
    assert "vol stream" in stored["skipped"]["LBP-TOP"] and "| LBP-TOP | skipped" in path.read_text()
