"""GD-SEC: special cases, the per-round invariants (docs/theory.md §2), bad input."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import EF21, GD, GDSEC
from convcheck.compressors import Threshold
from convcheck.engine import Oracle, run
from convcheck.engine.rounds import start, sync_round
from convcheck.errors import InputError
from tests.helpers import engine_problem


def test_xi_zero_is_gd_to_round_off():
    """ξ = 0 sends every nonzero difference; the server's ĝ = h + mean(Δ̂) equals mean(g) in
    exact arithmetic only (h is a running sum), so iterates agree to round-off, not bit for bit."""
    problem = engine_problem()
    alpha = 1.0 / problem.constants.L
    gd = run(GD(alpha), problem, 200)
    sec = run(GDSEC(alpha, beta=0.5, xi=0.0), problem, 200)
    assert np.allclose(sec.columns["value"], gd.columns["value"], rtol=1e-13, atol=0)
    np.testing.assert_allclose(sec.theta, gd.theta, rtol=1e-11, atol=1e-13)
    assert np.all(sec.columns["error_norm_sq"] == 0.0)


def test_xi_zero_sends_every_nonzero_entry():
    problem = engine_problem()
    result = run(GDSEC(1.0 / problem.constants.L, xi=0.0), problem, 5)
    workers, d = problem.objective.n_workers, problem.objective.dim
    assert np.all(result.columns["nnz_up"][1:] == workers * d)


class _SecThreshold(Threshold):
    """A threshold whose τ the test sets before each round (GD-SEC's rule, for EF21)."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def set(self, tau: np.ndarray) -> None:
        self._tau = tau


def test_beta_one_without_correction_is_ef21_with_threshold():
    """GD-SEC with β = 1 and no error correction is EF21 (g_m starting at 0) whose compressor is
    the threshold ξ|θ^k − θ^{k−1}|/α: the same operations, so the same bits."""
    problem = engine_problem()
    alpha, xi = 1.0 / problem.constants.L, 0.3
    oracle = Oracle(problem.objective)
    theta0 = np.zeros(problem.objective.dim)
    workers = problem.objective.n_workers
    sec = GDSEC(alpha, beta=1.0, xi=xi, error_correction=False)
    compressor = _SecThreshold()
    ef21 = EF21(alpha, compressor, init="compressed")
    a, _ = start(sec, theta0, workers, lambda: None)
    b, _ = start(ef21, theta0, workers, lambda: None)
    previous = theta0
    for _ in range(100):
        compressor.set(xi * np.abs(b.model - previous) / alpha)
        previous = b.model
        sync_round(sec, a, oracle.worker_gradients(a.model), None)
        sync_round(ef21, b, oracle.worker_gradients(b.model), None)
        np.testing.assert_array_equal(a.server.theta, b.server.theta)
        np.testing.assert_array_equal(a.workers.h, b.workers.estimates)
    assert not np.allclose(a.server.theta, theta0)


@pytest.mark.parametrize("xi", [0.05, 0.3, np.linspace(0.0, 0.4, 8)])
@pytest.mark.parametrize("split", ["iid", "sorted"])
def test_invariants_every_round(xi, split):
    """ĝ = ∇f(θ^k) + mean(e_old − e_new); |e_m,i| ≤ τ_i; Δ_m,i sent iff |Δ_m,i| > τ_i."""
    problem = engine_problem(split=split)
    alpha = 1.0 / problem.constants.L
    algorithm = GDSEC(alpha, beta=0.7, xi=xi)
    oracle = Oracle(problem.objective)
    theta0 = np.zeros(problem.objective.dim)
    states, _ = start(algorithm, theta0, problem.objective.n_workers, lambda: None)
    sent_fractions = []
    for _ in range(150):
        tau = algorithm.thresholds(states.workers)
        errors_old = states.workers.errors
        gradients = oracle.worker_gradients(states.model)
        differences = gradients - states.workers.h + errors_old
        gradient = problem.objective.gradient(states.model)
        up = sync_round(algorithm, states, gradients, None).up
        errors = states.workers.errors
        expected = gradient + (errors_old - errors).mean(axis=0)
        np.testing.assert_allclose(states.server.g_hat, expected, rtol=1e-10, atol=1e-13)
        assert np.all(np.abs(errors) <= tau)
        np.testing.assert_array_equal(up != 0, np.abs(differences) > tau)
        np.testing.assert_allclose(up + errors, differences, rtol=0, atol=1e-15)
        sent_fractions.append(np.count_nonzero(up) / up.size)
    assert min(sent_fractions[1:]) < 1.0  # the thresholds did suppress messages


def test_w_norm_bounded_by_xi_times_step():
    """The error made in round k, ‖(α/M)Σ_m e_m‖ ≤ ξ_max ‖θ^k − θ^{k−1}‖ (docs/theory.md,
    Lemma 2.3); measured in the trace."""
    problem = engine_problem()
    result = run(GDSEC(1.0 / problem.constants.L, xi=0.25), problem, 300)
    # e^k was computed with τ^k = ξ|θ^k − θ^{k−1}|/α, recorded at row k+1 of the trace
    w = result.columns["w_norm"][1:]
    steps = result.columns["step_norm"][:-1]
    assert np.all(w <= 0.25 * steps * (1 + 1e-12) + 1e-300)
    assert w.max() > 0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": 1.0, "beta": 0.0}, "beta"),
        ({"alpha": 1.0, "beta": 1.5}, "beta"),
        ({"alpha": 1.0, "xi": -0.1}, "xi"),
        ({"alpha": 1.0, "xi": "big"}, "xi"),
        ({"alpha": 1.0, "error_correction": "yes"}, "error_correction"),
    ],
)
def test_bad_input(kwargs, field):
    with pytest.raises(InputError) as raised:
        GDSEC(**kwargs)
    assert raised.value.field == field


def test_xi_array_must_match_dimension():
    problem = engine_problem()
    with pytest.raises(InputError) as raised:
        run(GDSEC(1.0, xi=np.ones(3)), problem, 2)
    assert raised.value.field == "xi"
