"""The "uvs" stream (onset->key u, v, optical strain) and the preparation cache key."""

import cv2
import numpy as np
import pytest

from tscnn.preprocessing import prepare as prep
from tscnn.preprocessing.flow import minmax_normalise, optical_strain
from tscnn.preprocessing.streams import (
    AUGMENTATIONS,
    augmented_streams,
    make_streams,
    normalised_uvs_variants,
    resize_flow,
    transform_flow,
)


def field(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([u, v], axis=-1).astype(np.float32)


Y, X = np.mgrid[0:20, 0:30].astype(np.float64)


@pytest.mark.parametrize(("u", "v", "expected"), [
    (0.3 * X, 0 * X, 0.3),                            # stretch along x: e_xx = a
    (0 * X, -0.2 * Y, 0.2),                           # stretch along y: e_yy = b, magnitude |b|
    (0.3 * X, 0.4 * Y, 0.5),                          # sqrt(a^2 + b^2)
    (0.5 * Y, 0 * X, np.sqrt(2 * 0.25**2)),           # shear u = c y: e_xy = c / 2, sqrt(2 e_xy^2)
    (1.7 + 0 * X, -0.6 + 0 * X, 0.0),                 # translation: no deformation
    (-Y, X, 0.0),                                     # rotation u = -y, v = x: antisymmetric, no strain
])
def test_optical_strain_of_hand_computed_fields(u, v, expected):
    strain = optical_strain(field(u, v))
    assert strain.shape == (20, 30) and strain.dtype == np.float32
    np.testing.assert_allclose(strain, expected, atol=1e-6)


def test_optical_strain_rejects_a_non_flow():
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        optical_strain(np.zeros((5, 5)))


def smooth_flow(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth, non-symmetric flow field (no map constant)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    u = np.sin(3 * x + 1.3 * y + rng.uniform()) + 0.5 * x * y
    v = np.cos(2 * y - 0.7 * x + rng.uniform()) + 0.3 * x**2
    return field(u, v)


def test_make_streams_gives_uvs_in_unit_range():
    rng = np.random.default_rng(0)
    key = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    flow1, flow2 = smooth_flow(seed=1), smooth_flow(seed=2)
    streams = make_streams(key, flow1, flow2, size=28, blocks=3)
    uvs = streams["uvs"]
    assert uvs.shape == (3, 28, 28) and uvs.dtype == np.float32
    for m in uvs:
        assert m.min() == 0 and m.max() == pytest.approx(1)
    np.testing.assert_allclose(uvs[:2], streams["dt"][:2])  # u, v are DT's onset->key maps
    strain = cv2.resize(optical_strain(flow1), (28, 28), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(uvs[2], minmax_normalise(strain), atol=1e-6)


def test_uvs_of_a_flipped_clip_is_the_mirrored_uvs_with_u_turned():
    rng = np.random.default_rng(3)
    key = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    variants = augmented_streams(key, smooth_flow(seed=4), smooth_flow(seed=5), size=24, blocks=2)
    uvs = variants["uvs"]
    assert uvs.shape == (len(AUGMENTATIONS), 3, 24, 24)
    original, flipped = uvs[AUGMENTATIONS.index((False, 0.0))], uvs[AUGMENTATIONS.index((True, 0.0))]
    expected = original[:, :, ::-1].copy()
    assert np.ptp(expected[0]) > 0  # u is not constant, so -u normalises to 1 - u
    expected[0] = 1.0 - expected[0]
    np.testing.assert_allclose(flipped, expected, atol=1e-5)


@pytest.mark.parametrize("variant", [2, 7])
def test_rotated_uvs_comes_from_the_rotated_raw_flow(variant):
    flip, angle = AUGMENTATIONS[variant]
    flow = smooth_flow(seed=6)
    uvs = augmented_streams(np.zeros((64, 64), np.uint8), flow, flow, size=24, blocks=2)["uvs"][variant]
    moved = transform_flow(flow, flip, angle)
    uv = resize_flow(moved, 24)
    strain = cv2.resize(optical_strain(moved), (24, 24), interpolation=cv2.INTER_AREA)
    expected = np.stack([minmax_normalise(uv[..., 0]), minmax_normalise(uv[..., 1]), minmax_normalise(strain)])
    np.testing.assert_allclose(uvs, expected, atol=1e-6)


def test_normalised_uvs_variants_flip_and_shapes():
    rng = np.random.default_rng(7)
    maps = cv2.GaussianBlur(rng.uniform(0, 1, (28, 28, 3)).astype(np.float32), (0, 0), 2)
    out = normalised_uvs_variants(maps, size=28)
    assert out.shape == (10, 3, 28, 28)
    np.testing.assert_allclose(out[0], maps.transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_allclose(out[1, 0], 1.0 - maps[:, ::-1, 0], atol=1e-6)
    np.testing.assert_allclose(out[1, 1:], maps[:, ::-1, 1:].transpose(2, 0, 1), atol=1e-6)
    assert normalised_uvs_variants(maps, size=48, augment=False).shape == (1, 3, 48, 48)
    with pytest.raises(ValueError, match="H, W, 3"):
        normalised_uvs_variants(maps[..., :2])


def test_cache_key_hashes_the_preparation_code(monkeypatch):
    sources = prep.preparation_sources()
    assert set(sources) == {"tscnn.preprocessing.flow", "tscnn.preprocessing.streams", "tscnn.preprocessing.prepare",
                            "tscnn.preprocessing.face", "tscnn.preprocessing.frames", "tscnn.preprocessing.align",
                            "tscnn.preprocessing.flowapex"}
    assert "def optical_strain" in sources["tscnn.preprocessing.flow"]
    base = prep.PrepSettings().key()
    assert prep.PrepSettings().key() == base and prep.PrepSettings(size=28).key() != base
    for name in sources:
        edited = {**sources, name: sources[name] + "\n# an edit\n"}
        monkeypatch.setattr(prep, "preparation_sources", lambda edited=edited: edited)
        assert prep.PrepSettings().key() != base, name
    monkeypatch.setattr(prep, "preparation_sources", lambda: dict(sources))
    assert prep.PrepSettings().key() == base
