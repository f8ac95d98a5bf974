"""Batches of runs on torch tensors: each run agrees with the numpy engine's run alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convcheck.algorithms import make_algorithm
from convcheck.engine import run
from convcheck.errors import InputError
from convcheck.torch.batch import TorchRuns, run_batch
from convcheck.torch.oracle import ObjectiveOracle
from tests.helpers import engine_problem
from tests.torch.test_backends import SYNC


def assert_close_run(batched, alone):
    """Status, bits and nonzeros exactly; iterates and values to 1e-10 (torch sums the products
    in another order, so they agree to rounding, not bit for bit)."""
    assert (batched.status, batched.reason) == (alone.status, alone.reason)
    np.testing.assert_array_equal(batched.ledger.up, alone.ledger.up)
    np.testing.assert_array_equal(batched.ledger.down, alone.ledger.down)
    for name in ("iteration", "nnz_up", "nnz_down", "bits_up_total"):
        np.testing.assert_array_equal(batched.columns[name], alone.columns[name])
    np.testing.assert_allclose(batched.columns["value"], alone.columns["value"], rtol=1e-10)
    np.testing.assert_allclose(batched.theta, alone.theta, rtol=0, atol=1e-10)
    assert batched.meta["batch"]["arrays"]["name"] == "torch"


@pytest.mark.parametrize(("name", "params"), SYNC, ids=[f"{n}-{i}" for i, (n, _) in
                                                         enumerate(SYNC)])
def test_torch_batch_equals_the_numpy_runs_alone(name, params):
    problem = engine_problem("ridge", "sorted", n_features=8)
    L = problem.constants.L
    scales = (0.2, 0.5, 0.8)
    algorithms = [make_algorithm(name, problem.constants, alpha=c / L, **params) for c in scales]
    starts = np.random.default_rng(1).normal(size=(3, problem.objective.dim))
    batch = run_batch(algorithms, problem, 30, theta0=starts)
    for algorithm, start, batched in zip(algorithms, starts, batch, strict=True):
        assert_close_run(batched, run(algorithm, problem, 30, theta0=start))


def test_runs_leave_a_torch_batch_where_they_stop_alone():
    problem = engine_problem("ridge", "iid")
    L = problem.constants.L
    algorithms = [make_algorithm("gd-sec", problem.constants, alpha=c / L, xi=0.2, beta=b)
                  for c, b in ((1.0, 1.0), (1.5, 0.7), (2.6, 1.0), (40.0, 0.9), (0.2, 1.0))]
    batch = run_batch(algorithms, problem, 80, target=1e-8)
    statuses = [r.status for r in batch]
    assert statuses == ["target reached", "target reached", "diverged", "diverged", "completed"]
    for algorithm, batched in zip(algorithms, batch, strict=True):
        assert_close_run(batched, run(algorithm, problem, 80, target=1e-8))


@pytest.mark.parametrize("family", ["ridge", "logistic"])
def test_values_and_gradients_at_the_runs_of_a_batch(family):
    objective = engine_problem(family, "sorted").objective
    thetas = np.random.default_rng(2).normal(size=(5, objective.dim))
    values, gradients = ObjectiveOracle(objective).runs_values_and_gradients(
        torch.as_tensor(thetas))
    expected_values, expected_gradients = objective.runs_values_and_gradients(thetas)
    np.testing.assert_allclose(values.numpy(), expected_values, rtol=1e-13)
    np.testing.assert_allclose(gradients.numpy(), expected_gradients, rtol=1e-12, atol=1e-15)


def test_unsupported_objectives_are_refused_before_any_run():
    problem = engine_problem("nonconvex-logistic", "sorted")
    algorithms = [make_algorithm("gd", problem.constants, alpha=a) for a in (0.1, 0.2)]
    with pytest.raises(InputError) as error:
        run_batch(algorithms, problem, 5)
    assert error.value.field == "objective"
    assert TorchRuns().describe() == {"name": "torch", "device": "cpu",
                                      "dtype": "torch.float64"}
