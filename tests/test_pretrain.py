"""FER2013 reader (both variants, real header rows), pre-training and loading its weights."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from tscnn.checkpoints import load_pretrained
from tscnn.config import from_preset
from tscnn.datasets import DatasetError
from tscnn.datasets.fer2013 import read_fer2013
from tscnn.pretrain import WEIGHTS, pretrain
from tscnn.synth.macro import macro_expression_set
from tscnn.train import Trainer, build_model


def test_fer2013_reader_on_the_real_head(fer_head):
    data = read_fer2013(fer_head)
    first = fer_head.read_text().splitlines()[1].split(",")
    assert data.images.shape == (31, 48, 48) and data.images.dtype == np.uint8
    assert data.labels[0] == int(first[0])
    assert data.images[0, 0, :5].tolist() == [int(v) for v in first[1].split()[:5]]
    assert data.images[0, 1, 0] == int(first[1].split()[48])  # row-major
    assert set(data.usage) == {"Training"} and len(data.split("Training")) == 31


def test_icml_variant_with_leading_space_headers(fer_head, tmp_path):
    lines = fer_head.read_text().splitlines()
    icml = ["emotion, Usage, pixels"] + [f"{e},{u},{p}" for e, p, u in (line.split(",") for line in lines[1:])]
    (tmp_path / "icml_face_data.csv").write_text("\n".join(icml) + "\n")
    variant = read_fer2013(tmp_path / "icml_face_data.csv")
    original = read_fer2013(fer_head)
    assert np.array_equal(variant.images, original.images) and np.array_equal(variant.labels, original.labels)


def test_fer2013_bad_rows_name_file_and_row(tmp_path):
    good = " ".join(["7"] * 2304)
    short = " ".join(["1"] * 2303)
    (tmp_path / "short.csv").write_text(f"emotion,pixels,Usage\n0,{good},Training\n3,{short},Training\n")
    with pytest.raises(DatasetError, match=r"short.csv row 3: expected 2304 pixel values in 0..255, got 2303"):
        read_fer2013(tmp_path / "short.csv")
    (tmp_path / "label.csv").write_text(f"emotion,pixels,Usage\n9,{good},Training\n")
    with pytest.raises(DatasetError, match=r"label.csv row 2: emotion '9'"):
        read_fer2013(tmp_path / "label.csv")
    (tmp_path / "cols.csv").write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(DatasetError, match="missing columns"):
        read_fer2013(tmp_path / "cols.csv")


def test_synthetic_macro_set_has_fer2013_shape():
    data = macro_expression_set(subjects=5, per_class=1)
    assert data.images.shape == (35, 48, 48) and np.bincount(data.labels).tolist() == [5] * 7
    assert len(data.split("PublicTest")) == 7  # one held-out identity


def test_pretrain_saves_weights_the_main_job_loads(tmp_path):
    data = macro_expression_set(subjects=5, per_class=1)
    config = from_preset("demo-sgd", max_epochs=1)
    summary = pretrain(data, config, tmp_path, progress=False)
    assert (tmp_path / WEIGHTS).is_file() and summary["val_rows"] == 7
    saved = torch.load(tmp_path / WEIGHTS, weights_only=True)
    model = build_model(replace(config, pretrained=str(tmp_path / WEIGHTS)), num_classes=5)
    assert torch.equal(model.input_convs["ss"][0].weight, saved["input_conv_ss"]["0.weight"])
    trunk = model.trunk.state_dict()
    assert trunk.keys() == saved["trunk"].keys()
    assert all(torch.equal(trunk[k], saved["trunk"][k]) for k in trunk)
    fresh = build_model(config, num_classes=5)
    assert not torch.equal(fresh.input_convs["ss"][0].weight, saved["input_conv_ss"]["0.weight"])
    with pytest.raises(FileNotFoundError, match="tscnn pretrain"):
        load_pretrained(fresh, tmp_path / "missing.pt")


def test_training_resumes_from_its_checkpoint(tmp_path):
    """An interrupted run resumed from the checkpoint ends exactly where an uninterrupted one does."""
    data = macro_expression_set(subjects=4, per_class=1)
    arrays = {"ss": (data.images[:, None, None] / 255.0).astype(np.float16)}
    train, val = data.split("Training"), data.split("PublicTest")
    config = replace(from_preset("demo-sgd", streams=("ss",), max_epochs=2, patience=5), bf16=False)
    whole = Trainer(config, 7, seed=1).fit(arrays, data.labels, train, val, progress=False)
    checkpoint = tmp_path / "ckpt.pt"
    Trainer(replace(config, max_epochs=1), 7, seed=1).fit(arrays, data.labels, train, val, progress=False,
                                                           checkpoint=checkpoint)
    resumed = Trainer(config, 7, seed=1).fit(arrays, data.labels, train, val, progress=False, checkpoint=checkpoint)
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in whole.history])
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float())
