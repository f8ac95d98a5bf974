"""Certified optimum: independent solutions, the certificate, the cvxpy cross-check, failures."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck import optimum as optimum_module
from convcheck.data import Dataset, Split
from convcheck.errors import OptimumError
from convcheck.objectives import make_objective
from convcheck.optimum import certify_optimum, cross_check
from tests.helpers import small_problem


def test_ridge_optimum_equals_normal_equations():
    objective = small_problem("ridge", 0.2, 0.0)
    result = certify_optimum(objective)
    # independent: assemble (1/M) Σ_m (A_mᵀA_m/n_m) + λI and the right-hand side per worker
    d, M = objective.dim, objective.n_workers
    hessian, rhs = 0.2 * np.eye(d), np.zeros(d)
    for m in range(M):
        rows = objective.shards.worker_rows(m)
        labels = objective.shards.labels[m, : rows.shape[0]]
        hessian += rows.T @ rows / (M * rows.shape[0])
        rhs += rows.T @ labels / (M * rows.shape[0])
    np.testing.assert_allclose(result.theta, np.linalg.solve(hessian, rhs), rtol=1e-10)
    assert result.grad_norm <= result.tolerance


@pytest.mark.parametrize(("family", "lam"), [("logistic", 0.05), ("logistic", 0.0), ("ridge", 0.0)])
def test_certificate_and_cross_check(family, lam):
    objective = small_problem(family, lam, 0.0)
    result = certify_optimum(objective)
    assert (
        result.grad_norm
        <= result.tolerance
        <= 1e-10 * max(1.0, np.linalg.norm(objective.gradient(np.zeros(objective.dim))))
    )
    check = result.cross_check
    assert check is not None and check.agrees, check
    # the certificate: nothing the solver finds lies below f_low
    assert check.value >= result.f_low - check.tolerance
    if objective.constants.mu > 0:
        assert result.gap_bound == pytest.approx(result.grad_norm**2 / (2 * objective.constants.mu))
        assert result.f_low <= result.value
    else:
        assert result.gap_bound is None and "uncertified" in result.certificate


def test_gap_bound_inequality_holds_away_from_the_optimum():
    """f(θ) − f* ≤ ‖∇f(θ)‖²/(2μ) at perturbed points (the inequality the certificate uses)."""
    objective = small_problem("logistic", 0.05, 0.0)
    result = certify_optimum(objective, with_cross_check=False)
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1e-1, 1.0):
        theta = result.theta + scale * rng.normal(size=objective.dim)
        gap = objective.value(theta) - result.f_low
        assert gap <= np.linalg.norm(objective.gradient(theta)) ** 2 / (2 * objective.constants.mu)


def test_conjugate_gradient_newton_path(monkeypatch):
    objective = small_problem("logistic", 0.05, 0.0)
    dense = certify_optimum(objective, with_cross_check=False)
    monkeypatch.setattr(optimum_module, "DENSE_NEWTON_LIMIT", 2)
    krylov = certify_optimum(objective, with_cross_check=False)
    assert krylov.grad_norm <= krylov.tolerance
    np.testing.assert_allclose(krylov.theta, dense.theta, rtol=1e-8)


def test_nonconvex_uses_zero_lower_bound():
    result = certify_optimum(small_problem("nonconvex-logistic", 0.0, 0.3))
    assert result.f_low == 0.0 and result.theta is None and "nonnegative" in result.certificate


def test_cross_check_reports_disagreement():
    objective = small_problem("logistic", 0.05, 0.0)
    wrong = certify_optimum(objective, with_cross_check=False).theta + 0.5
    check = cross_check(objective, wrong)
    assert not check.agrees and check.value_difference < 0 and check.distance > 0.1


def test_values_that_agree_are_not_enough_without_one_minimizer(monkeypatch):
    """A reference a little off the optimum (its value within the tolerance of cvxpy's) but
    claimed exact (gradient 0): cvxpy's point lies below the claimed lower bound f_low, which no
    single minimizer allows. Without the false claim the same points agree."""
    objective = small_problem("logistic", 0.05, 0.0)
    theta = certify_optimum(objective, with_cross_check=False).theta
    direction = np.ones(objective.dim) / np.sqrt(objective.dim)
    reference = theta + 1e-3 * direction
    honest = cross_check(objective, reference)
    gap = objective.value(reference) - objective.value(theta)
    assert 0 < gap < honest.tolerance and honest.agrees, honest
    assert honest.distance <= honest.distance_bound
    monkeypatch.setattr(type(objective), "gradient", lambda self, t: np.zeros(self.dim))
    claimed = cross_check(objective, reference)
    assert abs(claimed.value_difference) <= claimed.tolerance and not claimed.agrees


def test_separable_data_without_l2_has_no_minimizer():
    X = np.array([[1.0, 0.2], [2.0, -0.1], [-1.0, 0.3], [-2.0, 0.1]])
    dataset = Dataset("separable", X, np.array([1, 1, -1, -1]), "classification", "t")
    objective = make_objective("logistic", dataset, Split((np.arange(4),), "t"))
    with pytest.raises(OptimumError, match="lam > 0"):
        certify_optimum(objective, with_cross_check=False)
