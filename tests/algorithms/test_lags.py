"""LAGS: adaptive counts against brute force, the pipeline model by hand, δ_l, parameters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcheck import encoding
from convcheck.algorithms import LAGS, ErrorFeedback
from convcheck.algorithms.lags import layer_delta, pipeline_times, select_layer_counts
from convcheck.compressors import LayerTopK
from convcheck.engine import run
from convcheck.errors import InputError
from tests.helpers import engine_problem

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
    rng = np.random.default_rng(0)
    x = np.tile(np.linspace(-2.0, 3.0, 12), (20000, 1))
    sizes, k = (5, 7), (2, 3)
    starts, kept = np.array([0, 5]), np.array([2 / 5, 3 / 7])
    masks = np.concatenate([np.argsort(rng.random((20000, 5)), axis=1) < 2,
                            np.argsort(rng.random((20000, 7)), axis=1) < 3], axis=1)
    sent = np.where(masks, x, 0.0)
    delta = layer_delta(sent, x - sent, starts, kept)
    np.testing.assert_allclose(delta.mean(axis=0), [1.0, 1.0], atol=0.02)
    top = LayerTopK(sizes, k).compress(x[:1])
    delta_top = layer_delta(top, x[:1] - top, starts, kept)
    assert np.all(delta_top <= 1.0) and np.all(delta_top > 0)
    assert layer_delta(x[:1], 0.0 * x[:1], np.array([0]), np.array([1.0])).item() == 0.0


def test_lags_is_error_feedback_with_layer_top_k() -> None:
    """Same iterates and uplink bits as EF with the layer-wise top-k; the downlink is priced per
    layer (each layer's aggregate its own message); δ_l ≤ 1 for top-k, measured every round."""
    problem = engine_problem("ridge", "sorted", n_features=9)
    alpha, sizes, k = 0.5 / problem.constants.L, (4, 2, 3), (2, 1, 1)
    reference = run(ErrorFeedback(alpha, LayerTopK(sizes, k)), problem, 30)
    aggregates = []
    lags = run(LAGS(alpha, layers=sizes, k=k), problem, 30,
               observer=lambda i, states, wire, grads: aggregates.append(wire.down[0][0]))
    np.testing.assert_array_equal(lags.theta, reference.theta)
    np.testing.assert_array_equal(lags.ledger.up, reference.ledger.up)
    bounds = np.cumsum([0, *sizes])
    expected = [sum(encoding.sparse_bits(int(np.count_nonzero(p[a:b])), b - a, 32)
                    for a, b in zip(bounds[:-1], bounds[1:], strict=True)) for p in aggregates]
    workers = problem.objective.n_workers
    np.testing.assert_array_equal(lags.ledger.down[1:], np.repeat(
        np.array(expected)[:, None], workers, axis=1))
    delta = lags.columns["delta_max"][1:]
    assert np.all(delta <= 1.0 + 1e-12) and delta.max() > 0


def test_parameters() -> None:
    with pytest.raises(InputError, match="'k'"):
        LAGS(0.1, layers=(3, 4))
    with pytest.raises(InputError, match="'k'"):
        LAGS(0.1, layers=(3, 4), k=(4, 1)).prepare(7)  # k_l > d_l
    with pytest.raises(InputError, match="'layers'"):
        LAGS(0.1, layers=(3, 0), ratio=0.5)
    with pytest.raises(InputError, match="'layers'"):
        LAGS(0.1, layers=(3, 4), ratio=0.5).prepare(8)  # sizes do not sum to d
    with pytest.raises(InputError, match="backward_times"):
        select_layer_counts((3, 4), [1.0], 0.0, 0.0, floor_ratio=0.5)
    lags = LAGS(0.1, ratio=0.5)
    assert lags.params()["layers"] is None
    lags.set_counts((4, 6), (1, 2))
    assert lags.compressor.k == (1, 2) and lags.compressor.layer_sizes == (4, 6)
