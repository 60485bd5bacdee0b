from itertools import combinations

import pytest
import torch

from tscnn.models.tscnn import STREAMS, TSCNN, stream_channels

SUBSETS = [c for r in (1, 2, 3) for c in combinations(STREAMS, r)]


@pytest.mark.parametrize("streams", SUBSETS)
@pytest.mark.parametrize("k", [2, 3, 4])
def test_output_shape_every_subset_and_k(streams, k):
    model = TSCNN(5, streams, blocks=k).eval()
    batch = {s: torch.rand(3, stream_channels(s, k), 48, 48) for s in streams}
    assert model(batch).shape == (3, 5)


def test_layer_shapes_follow_the_paper():
    model = TSCNN(5)
    x = torch.rand(2, 64, 48, 48)
    assert model.trunk(x).shape == (2, 128, 6, 6)
    convs = [m for m in model.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (64, 64, (5, 5), (1, 1)), (64, 64, (5, 5), (1, 1)), (64, 128, (5, 5), (1, 1)), (128, 128, (5, 5), (1, 1))]
    assert [c[0].in_channels for c in model.input_convs.values()] == [1, 9, 4]
    assert any(isinstance(m, torch.nn.PReLU) for m in model.modules())


def test_sharing_switch():
    shared, unshared = TSCNN(5), TSCNN(5, share_trunk=False)
    trunk = sum(p.numel() for p in shared.trunk.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(unshared) - count(shared) == 2 * trunk


def test_empty_stream_set_is_rejected():
    with pytest.raises(ValueError, match="at least one stream"):
        TSCNN(5, ())


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return value if isinstance(value, tuple) else (value, value)


def leaf_layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules that compute (no containers), in the order they run."""
    return [m for m in module.modules() if not list(m.children())]


def test_trunk_layer_types_and_order():
    """conv1 (per stream) - maxpool 5/2 - conv2 - conv3 - avgpool 3/2 - conv4 - conv5 - avgpool 3/2,
    every convolution 5x5, stride 1, "same" padding and followed by PReLU; pools padded."""
    model = TSCNN(5)
    trunk = leaf_layers(model.trunk)
    assert [type(m).__name__ for m in trunk] == [
        "MaxPool2d", "Conv2d", "PReLU", "Conv2d", "PReLU", "AvgPool2d",
        "Conv2d", "PReLU", "Conv2d", "PReLU", "AvgPool2d"]
    maxpool, avgpools = trunk[0], [trunk[5], trunk[10]]
    assert [pair(v) for v in (maxpool.kernel_size, maxpool.stride, maxpool.padding)] == [(5, 5), (2, 2), (2, 2)]
    for pool in avgpools:
        assert [pair(v) for v in (pool.kernel_size, pool.stride, pool.padding)] == [(3, 3), (2, 2), (1, 1)]
        assert pool.count_include_pad is False  # border averages over real pixels only
    for conv in [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]:
        assert (conv.kernel_size, conv.stride, conv.padding) == ((5, 5), (1, 1), (2, 2))
    for s, first in model.input_convs.items():
        layers = leaf_layers(first)
        assert [type(m).__name__ for m in layers] == ["Conv2d", "PReLU"], s
        assert layers[0].out_channels == 64 and layers[1].num_parameters == 64
    every = leaf_layers(model)
    convs = [i for i, m in enumerate(every) if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 + 4  # three input convolutions and the shared trunk's four
    for i in convs:
        assert isinstance(every[i + 1], torch.nn.PReLU) and every[i + 1].num_parameters == every[i].out_channels


@pytest.mark.parametrize(("size", "sides"), [(48, [48, 24, 12, 6]), (28, [28, 14, 7, 4])])
def test_map_sizes_through_the_pools(size, sides):
    model = TSCNN(5, input_size=size).eval()
    seen = []
    for layer in leaf_layers(model.trunk):
        if isinstance(layer, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)):
            layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[-1]))
    batch = {s: torch.rand(2, stream_channels(s), size, size) for s in STREAMS}
    with torch.no_grad():
        maps = model.trunk_features(batch)
    assert [size, *seen] == sides  # the shared trunk runs once, on the streams stacked in one batch
    assert all(m.shape == (2, 128, sides[-1], sides[-1]) for m in maps.values())


@pytest.mark.parametrize(("streams", "size", "flat"), [
    (STREAMS, 48, 128 * 6 * 6), (("ss",), 48, 128 * 6 * 6), (("dt", "ls"), 28, 128 * 4 * 4)])
def test_dense_sizes_and_dropout(streams, size, flat):
    """Dense 1: 256 per stream from the flattened 128 x 6 x 6 maps (4 x 4 at 28 px); Dense 2: 256
    from the concatenated stream vectors; then the classifier. Dropout p = 0.5 before each."""
    model = TSCNN(7, streams, input_size=size)
    for s in model.streams:
        layers = leaf_layers(model.dense1[s])
        assert [type(m).__name__ for m in layers] == ["Flatten", "Dropout", "Linear", "PReLU"], s
        assert (layers[2].in_features, layers[2].out_features) == (flat, 256)
        assert layers[1].p == 0.5
    dense2 = leaf_layers(model.dense2)
    assert [type(m).__name__ for m in dense2] == ["Dropout", "Linear", "PReLU"]
    assert (dense2[1].in_features, dense2[1].out_features) == (256 * len(streams), 256) and dense2[0].p == 0.5
    classifier = leaf_layers(model.classifier)
    assert [type(m).__name__ for m in classifier] == ["Dropout", "Linear"]
    assert (classifier[1].in_features, classifier[1].out_features) == (256, 7) and classifier[0].p == 0.5
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == len(streams) + 2 and all(m.p == 0.5 for m in dropouts)
    batch = {s: torch.rand(3, stream_channels(s), size, size) for s in streams}
    assert model.eval()(batch).shape == (3, 7)


def test_centre_flow_takes_each_flow_maps_own_median():
    """centre_flow: every flow map minus its median (hand-computed), static maps still shifted by -0.5; the
    answer no longer depends on where min-max normalisation put zero motion (a constant added to a map)."""
    torch.manual_seed(0)
    model = TSCNN(3, streams=("ss", "uvs"), input_size=28, centre_flow=True).eval()
    x = torch.rand(2, 3, 28, 28)
    x[0, 1] = 0.0
    x[0, 1, :, :14] = 1.0  # half ones, half zeros: the lower median is 0
    centred = model.centred("uvs", x)
    assert torch.equal(centred[0, 1], x[0, 1])
    torch.testing.assert_close(centred[1, 2], x[1, 2] - x[1, 2].flatten().median())
    grey = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(model.centred("ss", grey), grey - 0.5)
    shifted = x + torch.tensor([0.2, -0.1, 0.05])[None, :, None, None]
    with torch.no_grad():
        torch.testing.assert_close(model({"ss": grey, "uvs": shifted}), model({"ss": grey, "uvs": x}))
        plain = TSCNN(3, streams=("ss", "uvs"), input_size=28).eval()
        plain.load_state_dict(model.state_dict())
        assert not torch.allclose(plain({"ss": grey, "uvs": shifted}), plain({"ss": grey, "uvs": x}))


def test_scale_flow_divides_each_centred_map_by_its_robust_spread():
    """scale_flow: a centred flow map times 0.5 / (its 99th percentile of |value|), hand-computed on a map of
    784 known values; the answer is the same for any positive affine rescaling of a map (what min-max
    normalisation does), and the option is refused without centring."""
    torch.manual_seed(0)
    model = TSCNN(3, streams=("uvs",), input_size=28, centre_flow=True, scale_flow=True).eval()
    x = torch.full((1, 3, 28, 28), 0.5)
    x[0, 0].view(-1)[:100] = torch.linspace(0.6, 1.0, 100)  # 684 pixels at the median 0.5, 100 above it
    # |centred| sorted: 684 zeros, then 0.1 ... 0.5; rank int(0.99 * 783) = 775 is the 92nd of the 100 (index 91).
    spread = torch.linspace(0.6, 1.0, 100)[91] - 0.5
    scaled = model.centred("uvs", x)
    torch.testing.assert_close(scaled[0, 0], (x[0, 0] - 0.5) * (0.5 / spread))
    assert torch.equal(scaled[0, 1], torch.zeros(28, 28))  # a still map stays zero (the spread floor, no 0 / 0)
    flows = torch.rand(2, 3, 28, 28)
    rescaled = 0.3 * flows + torch.tensor([0.1, 0.4, 0.2])[None, :, None, None]
    with torch.no_grad():
        torch.testing.assert_close(model({"uvs": rescaled}), model({"uvs": flows}), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="needs centre_flow"):
        TSCNN(3, streams=("uvs",), input_size=28, scale_flow=True)
