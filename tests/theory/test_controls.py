"""The faulty GD-SEC variants do exactly what their names say, and nothing else."""

from __future__ import annotations

import copy

import numpy as np

from convcheck import make_algorithm
from convcheck.engine.oracle import Oracle
from convcheck.theory.controls import FAULTY, GDSECErrorNotCleared, GDSECStaleWorkerMemory
from tests.helpers import engine_problem


def one_round(algorithm, problem, rounds=3):
    oracle, rng = Oracle(problem.objective), np.random.default_rng(0)
    state, _ = algorithm.start(np.ones(problem.objective.dim), oracle, rng)
    for _ in range(rounds):
        before = copy.deepcopy(state)
        messages = algorithm.step(state, oracle, rng)
    return before, state, messages


def test_faulty_variants_differ_from_gdsec_only_by_their_bug():
    problem = engine_problem("logistic", "sorted", workers=3, n_samples=120, n_features=5)
    alpha = 0.5 / problem.constants.L
    correct = one_round(make_algorithm("gd-sec", problem.constants, alpha=alpha, xi=0.3), problem)
    stale = one_round(GDSECStaleWorkerMemory(alpha, xi=0.3), problem)
    np.testing.assert_array_equal(stale[1].h_workers, 0.0)  # never updated
    assert np.any(correct[1].h_workers != 0)
    assert np.any(stale[1].h_server != 0)  # the server still updates its h
    cleared = one_round(GDSECErrorNotCleared(alpha, xi=0.3), problem)
    before, after, messages = cleared
    delta = problem.objective.worker_gradients(before.theta) - before.h_workers + before.errors
    np.testing.assert_allclose(after.errors, delta, rtol=1e-12, atol=1e-15)  # e ← Δ, not Δ − Δ̂
    assert set(FAULTY) == {GDSECStaleWorkerMemory.name, GDSECErrorNotCleared.name}
