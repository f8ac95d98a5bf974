"""Backward profile: the time lands on the right parameter, in forward order, and feeds LAGS."""

from __future__ import annotations

import time

import torch
from torch import nn

from convcheck.algorithms.lags import select_layer_counts
from convcheck.torch.layout import Layout
from convcheck.torch.profile import backward_profile

PAUSE = 0.1


class _SlowBackward(torch.autograd.Function):
    """Identity whose backward sleeps ``PAUSE`` seconds."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        time.sleep(PAUSE)
        return grad


class SlowBackward(nn.Module):
    def forward(self, x):
        return _SlowBackward.apply(x)


def model_with_slow_first_layer() -> nn.Module:
    torch.manual_seed(0)
    # backprop: linear 3, linear 2, the pause, then linear 1's gradients
    return nn.Sequential(nn.Linear(4, 8), SlowBackward(), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                         nn.Linear(8, 3))


def test_the_pause_is_charged_to_the_layer_behind_it() -> None:
    model = model_with_slow_first_layer()
    X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    times = backward_profile(model, X, y, repeats=1, warmup=0)
    assert len(times) == len(Layout.of(model).sizes) == 6
    assert min(times) >= 0.0
    assert max(times[0], times[1]) >= PAUSE  # linear 1 (weight, bias) waits for the pause
    assert max(times[2:]) < PAUSE
    assert all(p.grad is None for p in model.parameters())


def test_profile_feeds_lags_count_selection() -> None:
    """With 1 µs per bit and no latency, a layer whose gradient is ready ≥ 0.1 s before the
    end of backward may send 10⁵ bits: linear 2 (64 weights) sends all, the first layer
    (nothing left to overlap with) gets the floor."""
    model = model_with_slow_first_layer()
    X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    sizes = Layout.of(model).sizes
    times = backward_profile(model, X, y, repeats=1, warmup=0)
    counts = select_layer_counts(sizes, times, 0.0, 1e-6, floor_ratio=0.01)
    assert counts[0] == 1 and counts[1] == 1
    assert counts[2] == 64 and counts[3] == 8
