"""Bidirectional top-k: special cases, the [BIDIR] toy example, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import GD, BidirectionalTopK, ErrorFeedback
from convcheck.compressors import TopK
from convcheck.engine import run
from convcheck.errors import InputError
from tests.algorithms.test_ef import EXACT_STEP
from tests.helpers import bidir_toy_problem, engine_problem


def test_full_k_both_ways_equals_gd_bit_for_bit():
    problem = engine_problem()
    d = problem.objective.dim
    gd = run(GD(EXACT_STEP), problem, 100)
    bidir = run(BidirectionalTopK(EXACT_STEP, k_up=d, k_down=d), problem, 100)
    np.testing.assert_array_equal(bidir.theta, gd.theta)


def test_full_downlink_equals_unidirectional_bit_for_bit():
    problem = engine_problem(split="sorted")
    alpha = 0.5 / problem.constants.L
    d = problem.objective.dim
    uni = run(ErrorFeedback(alpha, TopK(k=2)), problem, 100)
    bidir = run(BidirectionalTopK(alpha, k_up=2, k_down=d), problem, 100)
    np.testing.assert_array_equal(bidir.theta, uni.theta)
    assert np.all(bidir.columns["server_error_norm_sq"] == 0.0)


def test_bidir_toy_example():
    """The [BIDIR] toy (docs/sync-results.md): F* = 6100/9; bidirectional stalls below
    uplink-only (K = 1, α = 0.01)."""
    problem = bidir_toy_problem()
    assert problem.optimum.value == pytest.approx(6100 / 9, rel=1e-14)
    uni = run(ErrorFeedback(0.01, TopK(k=1)), problem, 1000)
    bidir = run(BidirectionalTopK(0.01, k_up=1, k_down=1), problem, 1000)
    f_uni, f_bidir = uni.columns["value"][-1], bidir.columns["value"][-1]
    # an independent implementation from x⁰ = 0, ties to the lowest index: 712.5 and 700.9
    assert f_uni == pytest.approx(712.496, abs=1e-3)
    assert f_bidir == pytest.approx(700.859, abs=1e-3)
    assert f_bidir < f_uni
    d = problem.objective.dim
    assert np.all(bidir.columns["nnz_down"][1:] <= 3)  # one entry broadcast to 3 workers
    assert np.all(uni.columns["nnz_up"][1:] <= 3) and d == 100


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"alpha": 0.0, "k_up": 1, "k_down": 1}, "alpha"),
        ({"alpha": 1.0, "k_down": 1}, "k_up"),
        ({"alpha": 1.0, "k_up": 1, "ratio_up": 0.5, "k_down": 1}, "k_up"),
        ({"alpha": 1.0, "k_up": 0, "k_down": 1}, "k_up"),
        ({"alpha": 1.0, "k_up": 1, "ratio_down": 1.5}, "ratio_down"),
    ],
)
def test_bad_input(kwargs, field):
    with pytest.raises(InputError) as raised:
        BidirectionalTopK(**kwargs)
    assert raised.value.field == field


def test_k_down_larger_than_d_is_refused():
    problem = engine_problem()
    d = problem.objective.dim
    with pytest.raises(InputError) as raised:
        run(BidirectionalTopK(1.0, k_up=1, k_down=d + 1), problem, 2)
    assert raised.value.field == "k_down"


def test_the_lmi_model_takes_each_links_own_contraction():
    """δ_up = k_up/d and δ_down = k_down/d, each from its own link (a copy-paste of the uplink's
    δ into the downlink's passed every case: they all have k_up = k_down)."""
    name, params = BidirectionalTopK(alpha=0.1, k_up=5, k_down=20).lmi_model(100)
    assert name == "bidir-topk"
    assert params == {"alpha": 0.1, "delta_up": 0.05, "delta_down": 0.2}
