"""LAGS: adaptive counts against brute force, the pipeline model by hand, δ_l, parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convcheck import encoding
from convcheck.errors import InputError
from convcheck.torch.algorithms import LAGS, layer_delta, pipeline_times, select_layer_counts
from convcheck.torch.compressors import layer_top_k, rand_k_mask

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None)


@FAST
@given(
    st.lists(st.integers(1, 300), min_size=1, max_size=5),
    st.data(),
    st.floats(0.0, 1e-3),
    st.floats(0.0, 1e-6),
    st.sampled_from([0.001, 0.05, 0.5, 1.0]),
)
def test_counts_are_the_largest_that_fit_brute_force(sizes, data, alpha_c, beta_c, floor) -> None:
    times = [data.draw(st.floats(0.0, 1e-3)) for _ in sizes]
    counts = select_layer_counts(sizes, times, alpha_c, beta_c, floor_ratio=floor)
    for layer, (d, k) in enumerate(zip(sizes, counts, strict=True)):
        budget = sum(times[:layer])  # backward time still to come when layer's gradient is ready
        fitting = [j for j in range(1, d + 1)
                   if alpha_c + beta_c * encoding.sparse_bits(j, d, 32) <= budget]
        floor_k = max(1, int(np.floor(floor * d + 1e-9)))
        assert k == max(max(fitting, default=0), floor_k)


def test_first_layer_gets_the_floor_and_fast_links_send_dense() -> None:
    sizes = (1000, 1000, 1000)
    counts = select_layer_counts(sizes, [1.0, 1.0, 1.0], 0.0, 1e-12, floor_ratio=0.01)
    assert counts == (10, 1000, 1000)  # layer 0: nothing left to hide behind
    slow = select_layer_counts(sizes, [1e-3] * 3, 1e-4, 1e-6, floor_ratio=0.01)
    # layer 1: 1e-4 + 1e-6·bits ≤ 1e-3 → bits ≤ 900 → k·(10 + 32) ≤ 900 → k = 21
    assert slow == (10, 21, 45)


def test_pipeline_times_by_hand() -> None:
    # two layers, backward 1 s each (layer 1 first); messages of 2 s and 0.5 s
    sizes, counts = (10, 10), (10, 10)  # bitmap: 10 + 10·32 = 330 bits each
    beta = 1.0 / 330
    times = pipeline_times(sizes, counts, [1.0, 1.0], 0.0, beta)
    # layer 1 ready at 1, sends [1, 2]; layer 0 ready at 2, sends [2, 3]
    assert times == {"overlapped": 3.0, "sequential": 4.0, "backward": 2.0, "communication": 2.0}
    slow = pipeline_times(sizes, counts, [1.0, 1.0], 1.0, beta)  # 2 s per message
    # layer 1: [1, 3]; layer 0 ready at 2 but the link is busy: [3, 5]
    assert slow["overlapped"] == 5.0 and slow["sequential"] == 6.0


def test_layer_delta_denominator_is_the_rand_k_expectation() -> None:
    """E‖x − RandK(x)‖² = (1 − k/d)‖x‖², so δ_l of a rand-k selection averages to 1, and top-k
    gives δ_l ≤ 1 (it drops the smallest squares)."""
    x = torch.linspace(-2.0, 3.0, 12, dtype=torch.float64)[None].expand(20000, 12).contiguous()
    sizes, k = (5, 7), (2, 3)
    masks = torch.cat([rand_k_mask(20000, 5, 2, torch.Generator().manual_seed(0)),
                       rand_k_mask(20000, 7, 3, torch.Generator().manual_seed(1))], dim=1)
    delta = layer_delta(x, torch.where(masks, 0.0, x), sizes, k)
    assert torch.allclose(delta.mean(dim=0), torch.ones(2, dtype=torch.float64), atol=0.02)
    top = layer_delta(x[:1], x[:1] - layer_top_k(x[:1], sizes, k), sizes, k)
    assert bool((top <= 1.0).all()) and bool((top > 0).all())
    full = layer_delta(x[:1], torch.zeros_like(x[:1]), (12,), (12,))
    assert full.item() == 0.0  # nothing dropped: 0/0 reported as 0


def test_parameters() -> None:
    with pytest.raises(InputError, match="'k'"):
        LAGS(0.1, (3, 4))
    with pytest.raises(InputError, match="'k'"):
        LAGS(0.1, (3, 4), k=(4, 1))  # k_l > d_l
    with pytest.raises(InputError, match="layer_sizes"):
        LAGS(0.1, (3, 0), ratio=0.5)
    with pytest.raises(InputError, match="backward_times"):
        select_layer_counts((3, 4), [1.0], 0.0, 0.0, floor_ratio=0.5)
    lags = LAGS(0.1, ratio=0.5)
    assert lags.params()["layer_sizes"] is None
    lags.set_layers((4, 6), (1, 2))
    assert lags.k == (1, 2) and lags.codec.spec.layer_sizes == (4, 6)
