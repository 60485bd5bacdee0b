"""A final model trained on every subject, saved, loaded, and used on new clips (frame folder, real video)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tscnn.app import train_final_model
from tscnn.config import from_preset
from tscnn.datasets import DatasetError
from tscnn.datasets.base import list_frames
from tscnn.predict import load_model, predict_clip


@pytest.fixture(scope="module")
def model_path(synth_db_3, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    db = synth_db_3
    config = from_preset("demo-sgd", streams=("ss", "dt"), max_epochs=1, root="unused")
    return train_final_model(config, out, tmp_path_factory.mktemp("cache"), database=db, progress=False)


def test_saved_model_round_trip(model_path):
    model, config, classes = load_model(model_path)
    assert config.streams == ("ss", "dt") and len(classes) == 5
    saved = torch.load(model_path, weights_only=False)
    assert saved["meta"]["val_subjects"] and not set(saved["meta"]["val_subjects"]) & set(
        saved["meta"]["train_subjects"])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved["state_dict"][name])


def test_predict_on_a_frame_folder(model_path, synth_db):
    row = synth_db.table.iloc[-1]
    spotted = predict_clip(model_path, row.frames_dir, cropped=True)
    assert spotted.apex_rule == "spotter" and spotted.onset < spotted.apex < spotted.offset
    assert sum(spotted.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert spotted.predicted == max(spotted.probabilities, key=spotted.probabilities.get)
    given = predict_clip(model_path, row.frames_dir, onset=row.onset, apex=row.apex, offset=row.offset, cropped=True)
    assert (given.onset, given.apex, given.offset, given.apex_rule) == (row.onset, row.apex, row.offset, "given")


def test_predict_on_a_real_video(model_path, real_faces):
    result = predict_clip(model_path, real_faces / "single_face.mp4")  # Haar detection on a real face, apex spotted
    assert (result.onset, result.offset) == (0, 71) and 0 < result.apex < 71


def test_predict_errors_name_the_source(model_path, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=f"{empty}: no frames"):
        predict_clip(model_path, empty)
    flat = tmp_path / "flat"
    flat.mkdir()
    for n in range(4):
        cv2.imwrite(str(flat / f"img{n}.jpg"), np.full((240, 320), 120, np.uint8))
    with pytest.raises(DatasetError, match=f"{flat}: no face found on the onset frame 0"):
        predict_clip(model_path, flat)
    with pytest.raises(DatasetError, match="onset 7 / offset None are not frames of this clip"):
        predict_clip(model_path, flat, onset=7, cropped=True)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a frame folder or a video file"):
        predict_clip(model_path, tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="tscnn train"):
        predict_clip(Path(tmp_path / "none.pt"), flat)


def test_model_card_round_trips_and_the_file_loads_safely(model_path, synth_db):
    from tscnn.predict import format_model_card, load_saved_model

    saved = torch.load(model_path, map_location="cpu", weights_only=True)  # tensors and plain data only
    card = load_saved_model(model_path).card
    assert card == saved["card"]
    subjects = sorted(synth_db.table.subject.unique())[:3]
    assert card["subject_ids"] == subjects and card["subjects"] == 3
    assert (card["database"], card["model"], card["preset"]) == (synth_db.name, "tscnn", "demo-sgd")
    assert card["classes"] == list(synth_db.classes) and card["date"] and card["code_version"]
    text = format_model_card(card)
    assert synth_db.name in text and ", ".join(subjects) in text and "demo-sgd" in text
    row = synth_db.table.iloc[-1]
    assert predict_clip(model_path, row.frames_dir, cropped=True).model_card == card


def test_a_bad_model_file_gives_one_line_error(tmp_path):
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    text = tmp_path / "text.pt"
    text.write_text("this is not a model\n")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, plain)
    for path, reason in ((random_bytes, "not a torch file"), (text, "not a torch file"),
                         (plain, "missing state_dict, config, classes, channels")):
        with pytest.raises(ValueError) as caught:
            load_model(path)
        assert str(caught.value) == f"{path}: not a tscnn model file ({reason})"


def test_a_truncated_or_code_carrying_model_file_is_refused(model_path, tmp_path):
    truncated = tmp_path / "truncated.pt"
    data = Path(model_path).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"{truncated}: not a tscnn model file \\(damaged or truncated") as caught:
        load_model(truncated)
    assert "\n" not in str(caught.value)
    pickled = tmp_path / "pickled.pt"
    torch.save({"state_dict": {}, "config": Path("x"), "classes": [], "channels": {}}, pickled)
    with pytest.raises(ValueError, match="not a tscnn model file \\(it holds objects other than tensors"):
        load_model(pickled)


def test_a_model_with_test_time_flip_averages_the_clip_and_its_mirror(model_path, synth_db, monkeypatch):
    """A model whose recipe has tta_flip predicts from two views (the clip, its mirror) and reports their mean,
    in the default and the fast path alike."""
    from dataclasses import replace

    from tscnn.fast import FastPredictor
    from tscnn.predict import load_saved_model

    saved = load_saved_model(model_path)
    flipping = replace(saved, config=replace(saved.config, tta_flip=True))
    row = synth_db.table.iloc[-1]
    numbered = list_frames(Path(row.frames_dir))
    numbers = [n for n in sorted(numbered) if row.onset <= n <= row.offset]
    frames = [cv2.imread(str(numbered[n]), cv2.IMREAD_GRAYSCALE) for n in numbers]
    span = dict(onset=0, apex=numbers.index(row.apex), offset=len(frames) - 1, cropped=True)
    batches: list[int] = []
    original = saved.model.forward
    monkeypatch.setattr(saved.model, "forward", lambda inputs: batches.append(len(next(iter(inputs.values()))))
                        or original(inputs))
    plain, both = saved.predict(frames, **span), flipping.predict(frames, **span)
    assert batches == [1, 2]
    assert plain.probabilities != both.probabilities
    assert sum(both.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    fast_inputs = FastPredictor(flipping, bf16=False).inputs(np.zeros((64, 64), np.uint8),
                                                             np.zeros((64, 64, 2), np.float32),
                                                             np.zeros((64, 64, 2), np.float32))
    assert fast_inputs["dt"].shape[0] == 2 and FastPredictor(saved, bf16=False).inputs(
        np.zeros((64, 64), np.uint8), np.zeros((64, 64, 2), np.float32), np.zeros((64, 64, 2), np.float32),
    )["dt"].shape[0] == 1


@pytest.mark.filterwarnings("ignore:this model was trained on tvl1 flow")  # the fast path's own warning
def test_a_fused_model_file_carries_its_floor_and_predicts_the_mean(synth_db_3, tmp_path_factory, tmp_path,
                                                                    monkeypatch):
    """A --fuse-linear recipe's model file holds its fitted linear floor as plain tensors, which give what the
    scikit-learn floor gives; prediction (default and fast path) averages the network's answer with the floor's,
    the floor reading the clip's u, v, strain maps while the network reads its own streams;
    a file whose recipe fuses but which holds no floor, or a floor fitted on other maps (files from before the
    floor read u, v, strain), is refused with one line, and so is its ONNX export."""
    from dataclasses import replace

    from tscnn import predict as predict_module
    from tscnn.fast import FastPredictor
    from tscnn.fold import fit_floor
    from tscnn.models.linear import floor_tensors, floor_tensors_proba
    from tscnn.predict import format_model_card, load_saved_model
    from tscnn.preprocessing.prepare import PrepSettings, prepare

    db = synth_db_3
    config = from_preset("demo-sgd", streams=("ss", "dt"), max_epochs=1, root="unused", fuse_linear=True)
    cache = tmp_path_factory.mktemp("cache")
    path = train_final_model(config, tmp_path / "fused", cache, database=db, progress=False)
    saved = load_saved_model(path)
    assert saved.floor is not None and "fused with the linear floor" in format_model_card(saved.card)
    prepared = prepare(db.table, PrepSettings.from_config(config), cache, progress=False, streams=("ss", "dt", "uvs"))
    labels = prepared.table["label"].to_numpy()
    fitted, features = fit_floor({"uvs": prepared.arrays["uvs"]}, labels, np.arange(len(labels)))
    np.testing.assert_allclose(floor_tensors_proba(saved.floor, features, 5), fitted.predict_proba(features),
                               atol=1e-6)  # float32 pixels, float64 arithmetic in both
    row = db.table.iloc[-1]
    numbered = list_frames(Path(row.frames_dir))
    numbers = [n for n in sorted(numbered) if row.onset <= n <= row.offset]
    frames = [cv2.imread(str(numbered[n]), cv2.IMREAD_GRAYSCALE) for n in numbers]
    span = dict(onset=0, apex=numbers.index(row.apex), offset=len(frames) - 1, cropped=True)
    network_alone = replace(saved, floor=None)

    floor_read: list[dict] = []  # the maps the floor was given, caught on their way in
    features_of = predict_module.floor_features
    monkeypatch.setattr(predict_module, "floor_features",
                        lambda maps, centre: floor_read.append(maps) or features_of(maps, centre))

    def floor_on(maps: dict[str, np.ndarray]) -> np.ndarray:
        """The scikit-learn floor on the clip's own u, v, strain maps (view 0), whatever streams the network read."""
        assert list(maps) == ["uvs"] and maps["uvs"].shape == (1, 3, config.size, config.size)
        return fitted.predict_proba(maps["uvs"].reshape(1, -1))[0]

    def answer(prediction) -> np.ndarray:
        return np.array(list(prediction.probabilities.values()))

    read: list[dict] = []  # what the network was fed, caught on its way in
    fast, fast_alone = FastPredictor(saved, bf16=False), FastPredictor(network_alone, bf16=False)
    network, fast_network = saved.model.forward, fast.forward
    monkeypatch.setattr(saved.model, "forward", lambda batch: read.append(batch) or network(batch))
    monkeypatch.setattr(fast, "forward", lambda batch: read.append(batch) or fast_network(batch))
    for fused, alone in ((saved, network_alone), (fast, fast_alone)):
        f = answer(fused.predict(frames, **span))
        floor = floor_on(floor_read[-1])
        assert set(read[-1]) == {"ss", "dt"}  # the network reads its own streams only
        n = answer(alone.predict(frames, **span))
        np.testing.assert_allclose(f, (n + floor) / 2, atol=2e-4)  # answers are rounded to 4 decimals
        assert not np.allclose(f, n)
    stored = torch.load(path, weights_only=True)
    del stored["floor"]
    torch.save(stored, tmp_path / "no-floor.pt")
    with pytest.raises(ValueError, match="fuses the network with the linear floor .fuse_linear., but it holds no"):
        load_saved_model(tmp_path / "no-floor.pt")
    # A file from before the floor read u, v, strain: its floor was fitted on the network's own maps.
    own_maps, _ = fit_floor({s: prepared.arrays[s] for s in ("ss", "dt")}, labels, np.arange(len(labels)))
    stored["floor"] = floor_tensors(own_maps)
    torch.save(stored, tmp_path / "old-floor.pt")
    size = config.size
    with pytest.raises(ValueError, match=rf"old-floor.pt: not a tscnn model file \(its linear floor reads "
                                         rf"{5 * size * size} values a clip, not the {3 * size * size} of u, v and "
                                         rf"strain at {size} px"):
        load_saved_model(tmp_path / "old-floor.pt")
    pytest.importorskip("onnxruntime")
    from tscnn.export import export_onnx

    with pytest.raises(ValueError, match="averages the network with the linear floor"):
        export_onnx(path, tmp_path / "fused.onnx")


def test_a_saved_centred_floor_reads_each_map_centred():
    """A model file of a recipe with centre_floor fuses the network with its floor fed each map minus its own
    median, as in training: a constant shift of a clip's maps leaves the fused answer unchanged."""
    from dataclasses import replace

    from tscnn.models.linear import centred_maps, floor_tensors, linear_classifier
    from tscnn.predict import SavedModel

    rng = np.random.default_rng(1)
    maps = rng.integers(0, 256, size=(40, 3, 4, 4)).astype(np.float32)
    labels = np.arange(40) % 3
    maps[:, 0, 0, 0] += 60 * labels  # a corner that says the class once the maps are centred
    maps += rng.integers(-50, 50, size=(40, 3, 1, 1))  # each map at its own level
    fitted = linear_classifier().fit(centred_maps(maps).reshape(40, -1), labels)
    config = replace(from_preset("tscnn-plus-fused", streams=("dt",)), centre_floor=True)
    saved = SavedModel(None, config, ("a", "b", "c"), {}, floor_tensors(fitted))
    network = np.array([0.2, 0.3, 0.5])
    clip = maps[5:6]
    expected = (network + fitted.predict_proba(centred_maps(clip).reshape(1, -1))[0]) / 2
    np.testing.assert_allclose(saved.fuse(network, {"uvs": clip}), expected, atol=1e-6)
    np.testing.assert_allclose(saved.fuse(network, {"uvs": clip + 30}), expected, atol=1e-6)
    uncentred = replace(saved, config=replace(config, centre_floor=False))
    assert not np.allclose(uncentred.fuse(network, {"uvs": clip + 30}), expected, atol=1e-3)


def test_a_final_model_with_floor_views_carries_the_floor_fitted_on_every_variant(synth_db_3, tmp_path):
    """``floor_views`` every: the floor a model file carries is fitted on every augmentation variant of every clip, as
    in each fold, and differs from the floor of the original views alone."""
    from tscnn.fold import fit_floor
    from tscnn.models.linear import floor_tensors_proba
    from tscnn.predict import load_saved_model
    from tscnn.preprocessing.prepare import PrepSettings, prepare

    config = from_preset("demo-sgd", streams=("dt",), max_epochs=1, root="unused", fuse_linear=True,
                         floor_views="every")
    path = train_final_model(config, tmp_path / "model", tmp_path / "cache", database=synth_db_3, progress=False)
    floor = load_saved_model(path).floor
    prepared = prepare(synth_db_3.table, PrepSettings.from_config(config), tmp_path / "cache", progress=False,
                       streams=("dt", "uvs"))
    labels, every = prepared.table["label"].to_numpy(), np.arange(len(prepared.table))
    fitted, features = fit_floor({"uvs": prepared.arrays["uvs"]}, labels, every, views="every")
    plain, _ = fit_floor({"uvs": prepared.arrays["uvs"]}, labels, every)
    np.testing.assert_allclose(floor_tensors_proba(floor, features, 5), fitted.predict_proba(features), atol=1e-6)
    assert np.abs(fitted.predict_proba(features) - plain.predict_proba(features)).max() > 1e-3
