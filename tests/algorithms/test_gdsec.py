"""GD-SEC: special cases, the per-round invariants of THEORY.md §3, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import EF21, GD, GDSEC
from convcheck.compressors import Threshold
from convcheck.engine import Oracle, run
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
    """Threshold whose τ is GD-SEC's rule read from a live EF21 state (test only)."""

    def __init__(self, xi: float, alpha: float) -> None:
        super().__init__(0.0)
        self.xi, self.alpha, self.state, self.previous = xi, alpha, None, None

    def _tau_for(self, d: int) -> np.ndarray:
        return self.xi * np.abs(self.state.theta - self.previous) / self.alpha


def test_beta_one_without_correction_is_ef21_with_threshold():
    problem = engine_problem()
    alpha, xi = 1.0 / problem.constants.L, 0.3
    oracle_a, oracle_b = Oracle(problem.objective), Oracle(problem.objective)
    rng = np.random.default_rng(0)
    theta0 = np.zeros(problem.objective.dim)
    sec = GDSEC(alpha, beta=1.0, xi=xi, error_correction=False)
    compressor = _SecThreshold(xi, alpha)
    ef21 = EF21(alpha, compressor)
    sec_state, _ = sec.start(theta0, oracle_a, rng)
    sec.step(sec_state, oracle_a, rng)  # round 0 sends everything: h_m = ∇f_m(θ⁰)
    ef21_state, _ = ef21.start(theta0, oracle_b, rng)
    for _ in range(100):
        compressor.state, compressor.previous = ef21_state, ef21_state.theta.copy()
        ef21.step(ef21_state, oracle_b, rng)
        sec.step(sec_state, oracle_a, rng)
        # both now hold the estimates at θ^j; GD-SEC has already taken its step from θ^j
        np.testing.assert_allclose(sec_state.theta_prev, ef21_state.theta, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            sec_state.h_workers, ef21_state.estimates, rtol=1e-12, atol=1e-14
        )


@pytest.mark.parametrize("xi", [0.05, 0.3, np.linspace(0.0, 0.4, 8)])
@pytest.mark.parametrize("split", ["iid", "sorted"])
def test_invariants_every_round(xi, split):
    """ĝ = ∇f(θ^k) + mean(e_old − e_new); |e_m,i| ≤ τ_i; Δ_m,i sent iff |Δ_m,i| > τ_i."""
    problem = engine_problem(split=split)
    alpha = 1.0 / problem.constants.L
    algorithm = GDSEC(alpha, beta=0.7, xi=xi)
    oracle, rng = Oracle(problem.objective), np.random.default_rng(0)
    state, _ = algorithm.start(np.zeros(problem.objective.dim), oracle, rng)
    sent_fractions = []
    for _ in range(150):
        tau = algorithm.thresholds(state)
        errors_old = state.errors.copy()
        differences = oracle.worker_gradients(state.theta) - state.h_workers + errors_old
        gradient = problem.objective.gradient(state.theta)
        messages = algorithm.step(state, oracle, rng)
        expected = gradient + (errors_old - state.errors).mean(axis=0)
        np.testing.assert_allclose(state.g_hat, expected, rtol=1e-10, atol=1e-13)
        assert np.all(np.abs(state.errors) <= tau)
        np.testing.assert_array_equal(messages.up != 0, np.abs(differences) > tau)
        np.testing.assert_allclose(messages.up + state.errors, differences, rtol=0, atol=1e-15)
        sent_fractions.append(np.count_nonzero(messages.up) / messages.up.size)
    assert min(sent_fractions[1:]) < 1.0  # the thresholds did suppress messages


def test_w_norm_bounded_by_xi_times_step():
    """‖w^k‖ = ‖(α/M)Σ e_m^k‖ ≤ ξ_max ‖θ^k − θ^{k−1}‖ (THEORY.md §3); measured in the trace."""
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
