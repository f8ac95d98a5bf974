"""Injected bugs: each breaks exactly the line it names, only where it applies, and the mutated
algorithm still is the real one for the bounds (a subclass)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from convcheck.algorithms import GDSEC, make_algorithm
from convcheck.engine import run
from convcheck.engine.oracle import Oracle
from convcheck.engine.rounds import start, sync_round
from convcheck.errors import InputError
from convcheck.verification.mutants import all_mutants, inject
from tests.helpers import engine_problem


def rounds(algorithm, problem, count=3):
    """States before and after the last of ``count`` rounds from θ⁰ = 1, and its messages."""
    oracle = Oracle(problem.objective)
    theta0 = np.ones(problem.objective.dim)
    states, _ = start(algorithm, theta0, problem.objective.n_workers,
                      lambda: oracle.worker_gradients(theta0))
    for _ in range(count):
        before = copy.deepcopy(states)
        wire = sync_round(algorithm, states, oracle.worker_gradients(states.model), None)
    return before, states, wire


def test_frozen_error_memory_turns_ef_into_compressed_gd():
    """EF with e_m ≡ 0 is θ⁺ = θ − (1/M) Σ_m TopK(α ∇f_m(θ)); checked against a direct loop."""
    problem = engine_problem()
    ef = make_algorithm("ef", problem.constants, k=2)
    broken = inject(ef, "frozen-error-memory")
    assert broken.name == "ef[frozen-error-memory]" and broken.alpha == ef.alpha
    assert broken.params()["injected_bug"] == "frozen-error-memory"
    result = run(broken, problem, 20)
    theta = np.zeros(problem.objective.dim)
    for _ in range(20):
        steps = ef.alpha * problem.objective.worker_gradients(theta)
        theta = theta - ef.compressor.compress(steps).mean(axis=0)
    np.testing.assert_allclose(result.theta, theta, rtol=1e-12, atol=1e-15)
    assert np.all(result.columns["error_norm_sq"] == 0.0)
    assert not np.allclose(run(ef, problem, 20).theta, theta)
    assert ef.name == "ef" and type(ef).__name__ == "ErrorFeedback"  # the original is untouched


def test_gdsec_bugs_break_exactly_their_line():
    problem = engine_problem("logistic", "sorted", workers=3, n_samples=120, n_features=5)
    correct = rounds(make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.3), problem)

    def mutated(bug):
        algorithm = inject(make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.3), bug)
        assert isinstance(algorithm, GDSEC)  # the GD-SEC bounds apply to it
        return rounds(algorithm, problem)

    stale = mutated("stale-worker-memory")[1]
    np.testing.assert_array_equal(stale.workers.h, 0.0)  # never updated
    assert np.any(correct[1].workers.h != 0) and np.any(stale.server.h != 0)
    before, after, _ = mutated("error-not-cleared")
    delta = (problem.objective.worker_gradients(before.model) - before.workers.h
             + before.workers.errors)
    np.testing.assert_allclose(after.workers.errors, delta, rtol=1e-12, atol=1e-15)  # e ← Δ
    server = mutated("server-memory-not-updated")[1]
    np.testing.assert_array_equal(server.server.h, 0.0)
    assert np.any(server.workers.h != 0)


def test_frozen_estimates_keep_ef21_at_its_start():
    problem = engine_problem()
    ef21 = inject(make_algorithm("ef21", problem.constants, k=2), "frozen-estimates")
    before, after, _ = rounds(ef21, problem)
    initial = problem.objective.worker_gradients(np.ones(problem.objective.dim))
    np.testing.assert_array_equal(after.workers.estimates, initial)


def test_mutants_refuse_other_algorithms():
    problem = engine_problem()
    with pytest.raises(InputError) as info:
        inject(make_algorithm("gd", problem.constants), "frozen-error-memory")
    assert info.value.field == "inject"
    with pytest.raises(InputError):
        inject(make_algorithm("gd-sec", problem.constants), "frozen-error-memory")
    with pytest.raises(InputError):
        inject(make_algorithm("gd", problem.constants), "nosuch")
    assert set(all_mutants()) >= {"frozen-error-memory", "frozen-estimates",
                                  "stale-worker-memory", "error-not-cleared",
                                  "server-memory-not-updated"}
