"""Rates on quadratics: the difference Hessian is the objective's, GD's exact trajectory is the
run's, and the slowest-direction envelope holds for every algorithm with a virtual iterate and
fails for a run faster than its claimed step allows."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck import make_algorithm, run
from convcheck.problem import build_problem
from convcheck.theory.base import NotEvaluable
from convcheck.theory.quadratic import gd_distances, slowest_direction_envelope, spectrum


@pytest.fixture(scope="module")
def ridge():
    return build_problem(
        "ridge", "synthetic-regression", split="natural", workers=4, scaling="none",
        cross_check=False,
        dataset_params={"n_samples": 200, "n_features": 6, "condition_number": 10.0,
                        "n_groups": 4, "heterogeneity": 0.3, "scale_spread": 0.5})


def test_difference_hessian_matches_the_objective_and_the_dataset(ridge):
    spec = spectrum(ridge)
    np.testing.assert_allclose(spec.hessian, ridge.objective.hessian(np.zeros(6)), atol=1e-12)
    # the generator's exact spectrum: λ_j = κ^(−j/(d−1)) of XᵀX/n (λ = 0), here κ = 10
    np.testing.assert_allclose(spec.eigenvalues[[0, -1]], [ridge.constants.mu, ridge.constants.L],
                               rtol=1e-9)
    assert spec.eigenvalues[-1] / spec.eigenvalues[0] == pytest.approx(10.0, rel=1e-9)
    assert spec.asymmetry < 1e-12


def test_gd_exact_trajectory_is_the_run(ridge):
    algorithm = make_algorithm("gd", ridge.constants, alpha="1.2/L")
    trace = run(algorithm, ridge, 80)
    theta0 = np.zeros(6)
    predicted = gd_distances(spectrum(ridge), theta0, ridge.optimum.theta, algorithm.alpha,
                             trace.columns["iteration"])
    np.testing.assert_allclose(trace.columns["dist_sq"], predicted, rtol=1e-8, atol=1e-24)


def test_not_a_quadratic_is_not_evaluable():
    problem = build_problem("logistic", "breast-cancer", workers=2, cross_check=False)
    with pytest.raises(NotEvaluable, match="not a quadratic"):
        spectrum(problem)


CASES = [
    ("gd", {"alpha": "1/L"}),
    ("gd-sec", {"alpha": "0.5/L", "xi": 0.2, "beta": 0.5}),
    ("ef", {"alpha": "0.3/L", "k": 3}),
    ("ef21", {"alpha": "0.1/L", "k": 3}),
    ("bidir-topk", {"alpha": "0.3/L", "k_up": 3, "k_down": 4}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_envelope_holds_and_a_faster_run_breaks_it(ridge, name, params):
    theta0 = np.full(6, 2.0)
    algorithm = make_algorithm(name, ridge.constants, **params)
    envelope = slowest_direction_envelope(run(algorithm, ridge, 400, theta0=theta0), ridge,
                                          algorithm, theta0)
    assert np.all(envelope.lower <= envelope.distance + envelope.floor)
    assert envelope.rate == pytest.approx(1 - algorithm.alpha * ridge.constants.mu, rel=1e-9)
    # the same code at twice the step, evaluated for the claimed step
    faster = make_algorithm(name, ridge.constants, **{**params, "alpha": 2 * algorithm.alpha})
    broken = slowest_direction_envelope(run(faster, ridge, 400, theta0=theta0), ridge,
                                        algorithm, theta0)
    assert np.max(broken.lower - broken.distance - broken.floor) > 0


def test_gd_envelope_is_tight_along_the_slowest_direction(ridge):
    """Without memories the envelope is (1 − αμ)^k ‖P(θ⁰ − θ*)‖, which GD attains
    asymptotically: the ratio tends to 1 from below."""
    algorithm = make_algorithm("gd", ridge.constants, alpha="1/L")
    theta0 = np.full(6, 2.0)
    envelope = slowest_direction_envelope(run(algorithm, ridge, 150, theta0=theta0), ridge,
                                          algorithm, theta0)
    ratio = envelope.lower[100:] / envelope.distance[100:]
    assert np.all(ratio <= 1) and ratio[-1] > 0.999


def test_envelope_without_a_slow_component_is_not_evaluable(ridge):
    """A start on the optimum plus a fast eigenvector has no slowest-direction component."""
    spec = spectrum(ridge)
    theta0 = ridge.optimum.theta + spec.eigenvectors[:, -1]
    algorithm = make_algorithm("gd", ridge.constants, alpha="1/L")
    with pytest.raises(NotEvaluable, match="below the floor"):
        slowest_direction_envelope(run(algorithm, ridge, 50, theta0=theta0), ridge, algorithm,
                                   theta0)


def test_randomized_compressor_is_not_evaluable(ridge):
    algorithm = make_algorithm("ef", ridge.constants, alpha="0.3/L", compressor="rand-k", k=3)
    with pytest.raises(NotEvaluable, match="randomized"):
        slowest_direction_envelope(run(algorithm, ridge, 20), ridge, algorithm, np.zeros(6))
