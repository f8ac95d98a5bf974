"""The oracle's one-point cache."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.engine import Oracle
from tests.helpers import engine_problem


def test_cache_and_counts():
    objective = engine_problem().objective
    oracle = Oracle(objective)
    theta = np.full(objective.dim, 0.1)
    values, gradients = oracle.evaluate(theta)
    np.testing.assert_allclose(values, objective.worker_values(theta), rtol=1e-14)
    np.testing.assert_allclose(gradients, objective.worker_gradients(theta), rtol=1e-14)
    assert oracle.worker_gradients(theta.copy()) is gradients
    assert oracle.full_evaluations == 1
    theta[0] = 0.2  # the cache keeps its own copy of the point
    assert oracle.worker_gradients(theta) is not gradients
    assert oracle.full_evaluations == 2


def test_cached_arrays_are_read_only():
    objective = engine_problem().objective
    gradients = Oracle(objective).worker_gradients(np.zeros(objective.dim))
    with pytest.raises(ValueError):
        gradients += 1.0


def test_shard_gradients_are_one_worker_rows_and_counted():
    objective = engine_problem().objective
    oracle = Oracle(objective)
    theta = np.full(objective.dim, 0.3)
    for m in range(objective.n_workers):
        np.testing.assert_array_equal(
            oracle.shard_gradient(m, theta), objective.worker_gradients(theta)[m]
        )
    assert oracle.shard_evaluations == objective.n_workers and oracle.full_evaluations == 0
    a = oracle.stochastic_shard_gradient(1, theta, 4, np.random.default_rng(2))
    b = objective.restrict(1).stochastic_worker_gradients(theta, 4, np.random.default_rng(2))[0]
    np.testing.assert_array_equal(a, b)
    assert oracle.stochastic_evaluations == 1
