"""Classic error feedback: k = d is GD, the virtual iterate, minibatches, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import GD, ErrorFeedback
from convcheck.compressors import RandK, TopK
from convcheck.engine import run
from convcheck.errors import InputError
from tests.helpers import engine_problem

#: A power of two: α·x is exact, so (1/M)Σ α g_m == α (1/M)Σ g_m bit for bit.
EXACT_STEP = 2.0**-5


def test_full_top_k_equals_gd_bit_for_bit():
    problem = engine_problem()
    d = problem.objective.dim
    gd = run(GD(EXACT_STEP), problem, 100)
    ef = run(ErrorFeedback(EXACT_STEP, TopK(k=d)), problem, 100)
    np.testing.assert_array_equal(ef.theta, gd.theta)
    np.testing.assert_array_equal(ef.columns["value"], gd.columns["value"])
    assert np.all(ef.columns["error_norm_sq"] == 0.0)


def test_virtual_iterate():
    """θ^k − (1/M)Σ e_m^k follows plain GD on the sequence of gradients actually used."""
    problem = engine_problem()
    algorithm = ErrorFeedback(0.5 / problem.constants.L, TopK(k=2))
    virtual = np.zeros(problem.objective.dim)
    checked = []

    def observe(k, states, wire, gradients):
        virtual[:] -= algorithm.alpha * gradients.mean(axis=0)
        np.testing.assert_allclose(states.server.theta - states.workers.errors.mean(axis=0),
                                   virtual, atol=1e-12)
        checked.append(k)

    run(algorithm, problem, 100, observer=observe)
    assert checked == list(range(1, 101))


def test_minibatch_runs_are_seeded():
    problem = engine_problem()
    algorithm = ErrorFeedback(0.5 / problem.constants.L, TopK(k=3), batch_size=4)
    assert algorithm.randomized
    first, again = run(algorithm, problem, 50, seed=3), run(algorithm, problem, 50, seed=3)
    other = run(algorithm, problem, 50, seed=4)
    for name in first.columns:
        np.testing.assert_array_equal(first.columns[name], again.columns[name])
    np.testing.assert_array_equal(first.ledger.up, again.ledger.up)
    assert not np.array_equal(first.columns["value"], other.columns["value"])
    assert first.meta["oracle"]["stochastic_evaluations"] == 50


def test_randomized_compressor_is_seeded():
    problem = engine_problem()
    algorithm = ErrorFeedback(0.5 / problem.constants.L, RandK(k=2))
    first, again = run(algorithm, problem, 30, seed=1), run(algorithm, problem, 30, seed=1)
    np.testing.assert_array_equal(first.theta, again.theta)
    assert not np.array_equal(first.theta, run(algorithm, problem, 30, seed=2).theta)


@pytest.mark.parametrize(
    "args, kwargs, field",
    [
        ((0.0, TopK(k=1)), {}, "alpha"),
        ((1.0, "top-k"), {}, "compressor"),
        ((1.0, TopK(k=1)), {"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_input(args, kwargs, field):
    with pytest.raises(InputError) as raised:
        ErrorFeedback(*args, **kwargs)
    assert raised.value.field == field


def test_k_larger_than_d_is_refused_at_start():
    problem = engine_problem()
    with pytest.raises(InputError) as raised:
        run(ErrorFeedback(1.0, TopK(k=problem.objective.dim + 1)), problem, 2)
    assert raised.value.field == "compressor"
