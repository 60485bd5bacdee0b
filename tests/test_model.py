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
