"""Models: shapes, seeded initialization, bad input."""

from __future__ import annotations

import pytest
import torch

from convcheck.errors import InputError
from convcheck.torch.layout import Layout
from convcheck.torch.models import make_model


@pytest.mark.parametrize(
    ("name", "shape"),
    [("mlp", (1, 28, 28)), ("lenet", (1, 28, 28)), ("lenet", (1, 8, 8)), ("resnet8", (3, 32, 32))],
)
def test_shapes_and_seeded_init(name, shape) -> None:
    dim = shape[0] * shape[1] * shape[2]
    model = make_model(name, input_dim=dim, classes=7, image_shape=shape, seed=3)
    assert model(torch.zeros(2, dim)).shape == (2, 7)
    layout = Layout.of(model)
    again = make_model(name, input_dim=dim, classes=7, image_shape=shape, seed=3)
    other = make_model(name, input_dim=dim, classes=7, image_shape=shape, seed=4)
    assert torch.equal(layout.flatten_module(model), layout.flatten_module(again))
    assert not torch.equal(layout.flatten_module(model), layout.flatten_module(other))


def test_lenet_sizes_on_mnist() -> None:
    sizes = Layout.of(make_model("lenet", input_dim=784, classes=10, image_shape=(1, 28, 28))).sizes
    # conv1 6·1·5·5 + 6, conv2 16·6·5·5 + 16, fc 784·120 + 120, 120·84 + 84, 84·10 + 10
    assert sizes == (150, 6, 2400, 16, 94080, 120, 10080, 84, 840, 10)


def test_global_rng_is_untouched() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    make_model("mlp", input_dim=4, classes=2, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_bad_input() -> None:
    with pytest.raises(InputError, match="'model'"):
        make_model("vgg", input_dim=4, classes=2)
    with pytest.raises(InputError, match="'image_shape'"):
        make_model("lenet", input_dim=784, classes=10, image_shape=(1, 27, 28))
    with pytest.raises(InputError, match="'image_shape'"):
        make_model("lenet", input_dim=4, classes=10, image_shape=(1, 2, 2))
    with pytest.raises(InputError, match="'depth'"):
        make_model("mlp", input_dim=4, classes=2, depth=3)
    with pytest.raises(InputError, match="'classes'"):
        make_model("mlp", input_dim=4, classes=1)


def test_resnet18_is_real_sized() -> None:
    """≥ 10M parameters (11.17M for 3×32×32 input and 10 classes; the count does not depend on
    the image size, global pooling comes before the head), no buffers, any image ≥ 4×4."""
    big = make_model("resnet18", input_dim=3072, classes=10, image_shape=(3, 32, 32))
    layout = Layout.of(big)
    # convs 1728 + 147456 + 524288 + 2097152 + 8388608 (stem, stages), GroupNorms 7808,
    # head 5130
    assert layout.dim == 11_172_170 and len(layout.sizes) == 56
    small = make_model("resnet18", input_dim=3 * 8 * 8, classes=10, image_shape=(3, 8, 8))
    assert Layout.of(small).sizes == layout.sizes
    assert small(torch.zeros(1, 3 * 8 * 8)).shape == (1, 10)
