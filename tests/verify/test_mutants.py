"""Injected bugs: each breaks exactly the line it names, and only where it applies."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import make_algorithm
from convcheck.engine import run
from convcheck.errors import InputError
from convcheck.verify.mutants import MUTANTS, inject
from tests.helpers import engine_problem


def test_frozen_error_memory_turns_ef_into_compressed_gd():
    """EF with e_m ≡ 0 is θ⁺ = θ − (1/M) Σ_m TopK(α ∇f_m(θ)); checked against a direct loop."""
    problem = engine_problem()
    ef = make_algorithm("ef", problem.constants, k=2)
    broken = inject(ef, "frozen-error-memory")
    assert broken.name == "ef[frozen-error-memory]" and broken.alpha == ef.alpha
    result = run(broken, problem, 20)
    theta = np.zeros(problem.objective.dim)
    for _ in range(20):
        steps = ef.alpha * problem.objective.worker_gradients(theta)
        theta = theta - ef.compressor.compress(steps).mean(axis=0)
    np.testing.assert_allclose(result.theta, theta, rtol=1e-12, atol=1e-15)
    assert np.all(result.columns["error_norm_sq"] == 0.0)
    assert not np.allclose(run(ef, problem, 20).theta, theta)


def test_frozen_estimates_and_server_memory():
    problem = engine_problem()
    ef21 = inject(make_algorithm("ef21", problem.constants, k=2), "frozen-estimates")
    oracle_start = problem.objective.worker_gradients(np.zeros(problem.objective.dim))
    state, _ = ef21.start(np.zeros(problem.objective.dim), _Oracle(problem), None)
    ef21.step(state, _Oracle(problem), None)
    np.testing.assert_array_equal(state.estimates, oracle_start)
    gdsec = inject(make_algorithm("gd-sec", problem.constants, xi=0.2),
                   "server-memory-not-updated")
    result = run(gdsec, problem, 30)
    assert result.columns["suboptimality"][-1] > run(
        make_algorithm("gd-sec", problem.constants, xi=0.2), problem, 30
    ).columns["suboptimality"][-1]


class _Oracle:
    def __init__(self, problem):
        self.objective = problem.objective

    def worker_gradients(self, theta):
        return self.objective.worker_gradients(theta)


def test_mutants_refuse_other_algorithms():
    problem = engine_problem()
    with pytest.raises(InputError) as info:
        inject(make_algorithm("gd", problem.constants), "frozen-error-memory")
    assert info.value.field == "inject"
    with pytest.raises(InputError):
        inject(make_algorithm("gd", problem.constants), "nosuch")
    assert set(MUTANTS) == {"frozen-error-memory", "frozen-estimates",
                            "server-memory-not-updated"}
