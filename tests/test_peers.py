"""The peers run beside TSCNN: STSTNet, Off-ApexNet (networks) and HOOF + linear SVM (features).

Layer shapes and parameter counts against the papers, finite gradients, a short fit on a tiny
separable synthetic ``uvs`` set, and HOOF on hand-computed flow fields.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.svm import LinearSVC

from tscnn.config import Config
from tscnn.models import get_model
from tscnn.models.hoof import block_index, direction_bins, hoof, hoof_classifier, hoof_features, median_centred
from tscnn.models.offapexnet import OffApexNet
from tscnn.models.ststnet import STSTNet


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _synthetic_uvs(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """3 classes, each a flow blob with its own place and direction over noise; channels min-max scaled per image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float64)
    places = [(7, 7), (7, 20), (20, 14)]
    directions = [(1.0, 0.0), (0.0, 1.0), (-1.0, -1.0)]
    maps, labels = [], []
    for label, ((cy, cx), (du, dv)) in enumerate(zip(places, directions, strict=True)):
        for _ in range(per_class):
            blob = np.exp(-((yy - cy - rng.normal(0, 1)) ** 2 + (xx - cx - rng.normal(0, 1)) ** 2) / 12.0)
            u = du * blob + rng.normal(0, 0.1, (28, 28))
            v = dv * blob + rng.normal(0, 0.1, (28, 28))
            strain = np.hypot(*np.gradient(u)) + np.hypot(*np.gradient(v))
            maps.append(np.stack([u, v, strain]))
            labels.append(label)
    maps = np.asarray(maps)
    low = maps.min(axis=(2, 3), keepdims=True)
    high = maps.max(axis=(2, 3), keepdims=True)
    return ((maps - low) / (high - low)).astype(np.float32), np.asarray(labels)


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train_x, train_y = _synthetic_uvs(20, seed=1)  # 60 maps
    test_x, test_y = _synthetic_uvs(10, seed=2)  # 30 maps
    return train_x, train_y, test_x, test_y


# --- the registry ---------------------------------------------------------------------------------------------


def test_registry_entries() -> None:
    for name, kind, preset in (("ststnet", "network", "ststnet"), ("offapexnet", "network", "offapexnet"),
                               ("hoof", "features", None)):
        spec = get_model(name)
        assert spec.kind == kind
        assert spec.streams == ("uvs",)
        assert spec.size == 28
        assert spec.description and spec.reference
        if preset:
            assert spec.preset == preset
            model = spec.build(Config(size=28), 3, {"uvs": 3})
            assert model.streams == ("uvs",)
        else:
            assert spec.features is hoof_features
            assert isinstance(spec.classifier(), LinearSVC)


@pytest.mark.parametrize("name", ["ststnet", "offapexnet"])
def test_build_without_uvs_stream_is_a_named_error(name: str) -> None:
    build = get_model(name).build
    with pytest.raises(ValueError, match="'uvs' stream"):
        build(Config(size=28), 3, {"ss": 1, "dt": 4})
    with pytest.raises(ValueError, match="channels in the 'uvs' stream"):
        build(Config(size=28), 3, {"uvs": 1})


def test_hoof_without_uvs_stream_is_a_named_error() -> None:
    with pytest.raises(ValueError, match="'uvs' stream"):
        hoof_features({"dt": np.zeros((2, 4, 28, 28), np.float32)})


# --- STSTNet ----------------------------------------------------------------------------------------------------


def test_ststnet_layer_shapes() -> None:
    model = STSTNet(3).eval()
    x = torch.rand(2, 3, 28, 28)
    conv, relu, norm, pool, drop = model.branches
    assert isinstance(pool, torch.nn.MaxPool2d) and isinstance(relu, torch.nn.ReLU)
    assert conv(x).shape == (2, 3 + 5 + 8, 28, 28)  # the three streams' 3x3 'same' convolutions side by side
    assert model.branches(x).shape == (2, 16, 10, 10)  # max-pool 3x3 / 3 'same': 28 -> 10
    assert model.features({"uvs": x}).shape == (2, 400)  # avg-pool 2x2 / 2 -> 5 x 5 x 16
    assert model({"uvs": x}).shape == (2, 3)


def test_ststnet_parameter_count_matches_the_paper() -> None:
    model = STSTNet(3)
    convs, norms = _count(model.branches[0]), _count(model.branches[2])
    assert (convs, norms, _count(model.classifier)) == (448, 32, 1203)  # every conv sees all 3 channels
    assert _count(model) == 1683
    assert abs(_count(model) - 1670) / 1670 < 0.01  # paper: 0.00167 M
    assert _count(STSTNet(5)) == 2485


# --- Off-ApexNet ------------------------------------------------------------------------------------------------


def test_offapexnet_layer_shapes() -> None:
    model = OffApexNet(3).eval()
    x = torch.rand(2, 3, 28, 28)
    stream = model.flow_streams[0]
    assert stream[:3](x[:, :1]).shape == (2, 6, 14, 14)
    assert stream[:6](x[:, :1]).shape == (2, 16, 7, 7)
    assert model.features({"uvs": x}).shape == (2, 2 * 16 * 7 * 7)
    assert model.dense(model.features({"uvs": x})).shape == (2, 1024)
    assert model({"uvs": x}).shape == (2, 3)


def test_offapexnet_reads_u_and_v_only() -> None:
    model = OffApexNet(3).eval()
    x = torch.rand(2, 3, 28, 28)
    y = x.clone()
    y[:, 2] = torch.rand(2, 28, 28)  # another strain map
    assert torch.equal(model({"uvs": x}), model({"uvs": y}))


def test_offapexnet_parameter_count_matches_the_paper() -> None:
    model = OffApexNet(3)
    assert sum(_count(s) for s in model.flow_streams) == 2 * (156 + 2416)
    assert _count(model) == 2_664_475  # 2.66 M, the third-party figure
    assert abs(_count(model) - 2.77e6) / 2.77e6 < 0.05  # paper: 2.77 M
    assert _count(OffApexNet(5)) == 2_666_525


# --- both networks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [STSTNet, OffApexNet])
def test_forward_backward_gives_finite_gradients(cls) -> None:
    torch.manual_seed(0)
    model = cls(3).train()
    loss = torch.nn.functional.cross_entropy(model({"uvs": torch.rand(8, 3, 28, 28)}), torch.arange(8) % 3)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_wrong_input_size_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="28x28"):
        STSTNet(3)({"uvs": torch.rand(1, 3, 48, 48)})
    with pytest.raises(ValueError, match="28x28"):
        OffApexNet(3)({"uvs": torch.rand(1, 3, 48, 48)})


@pytest.mark.parametrize(("name", "lr", "steps"),
                         [("ststnet", 1e-2, 80), ("offapexnet", 1e-3, 40), ("sssnet", 1e-3, 40)])
def test_short_fit_learns_a_separable_set(synthetic, name: str, lr: float, steps: int) -> None:
    train_x, train_y, test_x, test_y = synthetic
    torch.manual_seed(0)
    model = get_model(name).build(Config(size=28), 3, {"uvs": 3})
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = {"uvs": torch.from_numpy(train_x)}, torch.from_numpy(train_y)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        predicted = model({"uvs": torch.from_numpy(test_x)}).argmax(1).numpy()
    assert (predicted == test_y).mean() >= 0.8  # chance is 1/3


# --- HOOF -------------------------------------------------------------------------------------------------------


def _field(u: float, v: float, clips: int = 1, n: int = 28) -> tuple[np.ndarray, np.ndarray]:
    return np.full((clips, n, n), u), np.full((clips, n, n), v)


def test_hoof_blocks_are_a_5x5_grid_of_near_equal_bands() -> None:
    blocks = block_index(28)
    assert np.bincount(blocks[:, 0] // 5).tolist() == [6, 5, 6, 5, 6]  # row bands
    assert np.array_equal(blocks[0, :], np.repeat(np.arange(5), [6, 5, 6, 5, 6]))  # column bands
    assert set(np.unique(blocks)) == set(range(25))


def test_hoof_direction_bins_with_y_growing_downwards() -> None:
    u = np.array([1.0, 1.0, 0.0, -1.0, -1.0, -1.0, 0.0, 1.0])
    v = np.array([0.0, -1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 1.0])  # v < 0 is up on screen
    assert direction_bins(u, v).tolist() == list(range(8))  # right, up-right, up, ..., down-right
    assert direction_bins(np.array([1.0]), np.array([-0.41])).tolist() == [0]  # 22.3 deg: still "right"
    assert direction_bins(np.array([1.0]), np.array([-0.42])).tolist() == [1]  # 22.8 deg: "up-right"


@pytest.mark.parametrize(("u", "v", "expected_bin"), [(1.0, 0.0, 0), (0.0, -1.0, 2), (-2.0, 0.0, 4), (0.0, 1.0, 6)])
def test_hoof_uniform_field_puts_each_block_in_one_bin(u: float, v: float, expected_bin: int) -> None:
    features = hoof(*_field(u, v))
    assert features.shape == (1, 200)
    blocks = features.reshape(25, 8)
    expected = np.zeros((25, 8))
    expected[:, expected_bin] = 1 / 5  # each block sums to 1, then the L2 norm of 25 ones is 5
    np.testing.assert_allclose(blocks, expected, atol=1e-12)


def test_hoof_two_vectors_in_one_block_by_hand() -> None:
    u, v = _field(0.0, 0.0)
    u[0, 0, 0], v[0, 0, 0] = 3.0, 4.0  # magnitude 5, atan2(-4, 3) = -53.1 deg -> down-right, bin 7
    u[0, 1, 1], v[0, 1, 1] = -1.0, 0.0  # magnitude 1, left, bin 4
    blocks = hoof(u, v).reshape(25, 8)
    # Block 0 before the L2 step: bin 7 = 5/6, bin 4 = 1/6; its L2 norm is sqrt(26)/6.
    expected = np.zeros((25, 8))
    expected[0, 7], expected[0, 4] = 5 / math.sqrt(26), 1 / math.sqrt(26)
    np.testing.assert_allclose(blocks, expected, atol=1e-12)


def test_hoof_output_has_unit_l2_norm_and_still_faces_stay_zero() -> None:
    rng = np.random.default_rng(0)
    features = hoof(rng.normal(size=(5, 28, 28)), rng.normal(size=(5, 28, 28)))
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-12)
    assert np.all(features >= 0)
    assert not hoof(*_field(0.0, 0.0)).any()


def test_hoof_median_centring_removes_a_constant_offset() -> None:
    uvs = np.zeros((2, 3, 28, 28), np.float32)
    uvs[:, 0], uvs[:, 1] = 0.7, 0.3  # min-max scaled maps of a still face: a constant, not zero
    np.testing.assert_allclose(median_centred(uvs[:, 0]), 0.0)
    assert not hoof_features({"uvs": uvs}).any()
    uvs[0, 0, :6, :6] = 1.0  # one block (a minority of the face) moves right over the offset
    features = hoof_features({"uvs": uvs})
    assert features.shape == (2, 200) and features.dtype == np.float32
    expected = np.zeros(200)
    expected[0] = 1.0  # block 0, bin 0; the other 24 blocks are still
    np.testing.assert_allclose(features[0], expected, atol=1e-6)
    assert not features[1].any()


def test_hoof_with_linear_svm_learns_a_separable_set(synthetic) -> None:
    train_x, train_y, test_x, test_y = synthetic
    classifier = hoof_classifier().fit(hoof_features({"uvs": train_x}), train_y)
    assert (classifier.predict(hoof_features({"uvs": test_x})) == test_y).mean() >= 0.8


@pytest.mark.parametrize("labels_seen", [(0, 2, 4), (1, 3)])
def test_the_floor_as_tensors_gives_scikit_learns_probabilities(labels_seen: tuple[int, ...]) -> None:
    """A model file's floor (``floor_tensors``) answers as the fitted scikit-learn floor, with several classes
    (softmax) and two (sigmoid), each class it never saw at probability 0, also for scores far from 0."""
    from tscnn.models.linear import floor_tensors, floor_tensors_proba, linear_classifier

    rng = np.random.default_rng(len(labels_seen))
    labels = np.asarray(labels_seen)[np.arange(60) % len(labels_seen)]
    features = rng.normal(size=(60, 12)) + labels[:, None] * np.linspace(-1, 1, 12)
    features[:, 3] = 2.0  # a constant pixel: its stored scale is 1
    fitted = linear_classifier(C=10.0).fit(features, labels)
    probe = np.vstack([features[:7], 50 * features[7:9]])
    expected = np.zeros((len(probe), 5))
    expected[:, list(labels_seen)] = fitted.predict_proba(probe)
    with np.errstate(over="raise"):
        got = floor_tensors_proba(floor_tensors(fitted), probe, 5)
    np.testing.assert_allclose(got, expected, atol=1e-7)
    assert (got[:, [c for c in range(5) if c not in labels_seen]] == 0).all()


def test_centred_maps_subtract_each_maps_lower_median_by_hand() -> None:
    """centre_floor's rule: each map of each clip minus its own lower median, as TSCNN's centre_flow does."""
    from tscnn.models.linear import centred_maps, floor_features

    maps = np.zeros((2, 2, 2, 2), np.float32)
    maps[0, 0] = [[1, 2], [3, 10]]  # sorted 1, 2, 3, 10: the lower median is 2
    maps[0, 1] = [[5, 5], [5, 5]]
    maps[1, 0] = [[-4, 0], [7, 1]]  # sorted -4, 0, 1, 7: 0
    maps[1, 1] = [[9, 8], [7, 6]]  # 6, 7, 8, 9: 7
    expected = np.array([[[[-1, 0], [1, 8]], [[0, 0], [0, 0]]], [[[-4, 0], [7, 1]], [[2, 1], [0, -1]]]])
    np.testing.assert_array_equal(centred_maps(maps), expected)
    np.testing.assert_array_equal(floor_features({"uvs": maps}, centre=True), expected.reshape(2, -1))
    np.testing.assert_array_equal(floor_features({"uvs": maps}), maps.reshape(2, -1))  # off: the pixels as they are


def test_the_centred_floor_ignores_a_constant_shift_of_any_map() -> None:
    """Centred, the floor's features (and so its fit and answers) do not change when a clip's map is shifted by a
    constant, the level min-max normalisation gives zero motion; uncentred, they do."""
    from tscnn.models.linear import floor_features

    rng = np.random.default_rng(0)
    maps = rng.integers(0, 256, size=(6, 3, 5, 5)).astype(np.float16)
    shifted = maps + rng.integers(-40, 40, size=(6, 3, 1, 1)).astype(np.float16)
    np.testing.assert_array_equal(floor_features({"uvs": shifted}, True), floor_features({"uvs": maps}, True))
    assert not np.array_equal(floor_features({"uvs": shifted}), floor_features({"uvs": maps}))
    assert floor_features({"uvs": maps}, True).dtype == np.float32
