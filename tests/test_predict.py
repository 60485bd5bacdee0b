"""A final model trained on every subject, saved, loaded, and used on new clips (frame folder, real video)."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tscnn.config import from_preset
from tscnn.datasets import DatasetError
from tscnn.experiment import train_final_model
from tscnn.predict import load_model, predict_clip


@pytest.fixture(scope="module")
def model_path(synth_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    table = synth_db.table[synth_db.table.subject.isin(sorted(synth_db.table.subject.unique())[:3])]
    db = type(synth_db)(synth_db.name, synth_db.root, table.reset_index(drop=True), synth_db.classes, [])
    config = from_preset("demo", streams=("ss", "dt"), max_epochs=1, root="unused")
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
