"""Flat parameter layout: round trip, views, refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convcheck.errors import InputError
from convcheck.torch.layout import Layout


def test_round_trip_and_views() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    layout = Layout.of(model)
    assert layout.names == ("0.weight", "0.bias", "2.weight", "2.bias")
    assert layout.sizes == (12, 4, 8, 2) and layout.dim == 26
    assert layout.offsets == (0, 12, 16, 24, 26)
    flat = layout.flatten_module(model)
    for (name, p), view in zip(model.named_parameters(), layout.unflatten(flat).values(),
                               strict=True):
        assert torch.equal(view, p.detach()), name
    rows = torch.arange(3 * 26, dtype=torch.float32).reshape(3, 26)
    views = layout.unflatten(rows)
    assert views["2.weight"].shape == (3, 2, 4)
    assert torch.equal(views["2.weight"][1].reshape(-1), rows[1, 16:24])
    views["0.bias"][2, 0] = -1.0  # a view: writes go to the flat tensor
    assert rows[2, 12] == -1.0
    assert torch.equal(layout.flatten(views, batch_dims=1), rows)


def test_refusals() -> None:
    with pytest.raises(InputError, match="buffers"):
        Layout.of(nn.BatchNorm1d(3))
    layout = Layout.of(nn.Linear(2, 2))
    with pytest.raises(InputError, match="'flat'"):
        layout.unflatten(torch.zeros(5))
    with pytest.raises(InputError, match="'weight'"):
        layout.flatten({"weight": torch.zeros(3), "bias": torch.zeros(2)})
