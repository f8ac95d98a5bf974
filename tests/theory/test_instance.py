"""Instance certificates on quadratic problems: exact for GD (the spectral radius of I − αH,
computed here independently), within 1% of the measured rate on the suite's quadratic case,
never worse than the class, and refused for a problem that is not quadratic."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck import build_problem, make_algorithm
from convcheck.errors import InputError
from convcheck.theory.certified import certificate_for
from convcheck.theory.instance import instance_certificate, instance_model, worker_hessians
from convcheck.verification.cases import default_folder, load_case
from convcheck.verification.certificates import case_certificates
from tests.helpers import engine_problem


def quadratics():
    centers = [[10.0, 0.0], [-10.0, 0.0], [0.0, 4.0]]
    return build_problem("ridge", "quadratics", workers=3, split="natural", scaling="none",
                         lam=0.1, dataset_params={"centers": centers})


def test_worker_hessians_average_to_the_hessian():
    problem = engine_problem("ridge", "sorted", workers=3, n_samples=90, n_features=4)
    hessians = worker_hessians(problem)
    zero = np.zeros(problem.objective.dim)
    np.testing.assert_allclose(hessians.mean(axis=0), problem.objective.hessian(zero),
                               rtol=1e-12, atol=1e-12)


def test_gd_instance_certificate_is_the_spectral_radius():
    problem = engine_problem("ridge", "sorted", workers=3, n_samples=90, n_features=4)
    for alpha in ("0.5/L", "1/L", "1.8/L"):
        gd = make_algorithm("gd", problem.constants, alpha=alpha)
        certificate = instance_certificate(gd, problem, tol=1e-9)
        eigenvalues = np.linalg.eigvalsh(problem.objective.hessian(np.zeros(4)))
        exact = np.max(np.abs(1.0 - gd.alpha * eigenvalues))
        assert certificate.rho == pytest.approx(exact, abs=2e-8)
        assert certificate.rho_low == pytest.approx(exact, abs=1e-12)
        assert certificate.model.params["model"] == "instance"


def test_the_suite_quadratic_case_instance_rate_is_within_one_percent_of_the_runs():
    """problems/gd/ridge-divergent-step.toml (least squares on diabetes, 4 workers)."""
    case = load_case(default_folder() / "gd" / "ridge-divergent-step.toml")
    found = case_certificates(case)
    instance, measured = found["instance"]["rho"], found["measured"]["rate"]
    assert found["instance"]["certified"] and measured is not None
    assert abs(instance - measured) <= 0.01 * measured
    assert found["class"]["rho"] >= instance - 1e-6  # the class holds for this instance too


@pytest.mark.slow
def test_compressed_instance_is_no_worse_than_the_class():
    """GD-SEC with thresholds on three quadratics: the instance model (the actual Hessians,
    thresholds per coordinate) certifies at most the class rate."""
    problem = quadratics()
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.3)
    instance = instance_certificate(algorithm, problem, tol=1e-7)
    general = certificate_for(algorithm, problem, tol=1e-7)
    assert instance.certified and general.certified
    assert instance.rho <= general.rho + 1e-6
    assert instance.rho_low is None and "not one linear map" in instance.lower_bound_method


def test_a_quadratic_class_for_logistic_regression_is_refused():
    problem = engine_problem("logistic", "sorted", workers=2, n_samples=60, n_features=3)
    gd = make_algorithm("gd", problem.constants)
    assert instance_certificate(gd, problem) is None
    model, why = instance_model(gd, problem)
    assert model is None and "not a quadratic" in why
    with pytest.raises(InputError, match="'class'") as error:
        instance_model(gd, problem, strict=True)
    assert "logistic" in str(error.value)
