"""Certified (LMI) bounds on runs with heterogeneous workers: GD-SEC and EF21 are certified and
their trajectories respect ρ^{2k}V(s⁰) at every iteration; along the runs the Lyapunov function
itself decreases by ρ² per round; classic EF is not certified, and its run plateaus."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck import make_algorithm, run
from convcheck.compressors import TopK
from convcheck.engine.oracle import Oracle
from convcheck.engine.rounds import start, sync_round
from convcheck.errors import InputError
from convcheck.theory.bounds import EF21PL
from convcheck.theory.certified import (
    CertifiedBound,
    certificate_for,
    initial_state,
    model_for,
    state_rows,
)
from convcheck.theory.check import check_bound
from convcheck.theory.fits import fit_linear_rate, fit_power_law
from convcheck.verification.mutants import inject
from tests.helpers import engine_problem

#: The run checks here are about the bound on runs; the lower bound beside the certificate is
#: tested in test_lower.py and once below.
BOUND = CertifiedBound(lower_bound=False)


def heterogeneous():
    """Logistic regression, labels sorted over 4 workers: ∇f_m(θ*) ≠ 0, L_m all different."""
    problem = engine_problem("logistic", "sorted", workers=4, n_samples=200, n_features=6, lam=0.05)
    star = problem.objective.worker_gradients(problem.optimum.theta)
    assert np.linalg.norm(star, axis=1).min() > 1e-2
    assert np.ptp(problem.constants.L_workers) > 1e-2
    return problem


def ef21_theorem_step(problem, k=2):
    probe = make_algorithm("ef21", problem.constants, alpha=1.0, k=k)
    constants = EF21PL().constants(probe, problem)
    return min(constants["step_pl"], constants["step_pl_mu"])


CASES = [
    ("gd-sec", {"alpha": "0.5/L", "xi": 0.2}),
    ("gd-sec", {"alpha": "0.5/L", "xi": 0.2, "error_correction": False}),
    ("ef21", {"k": 2}),
    ("gd", {"alpha": "1/L"}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_certified_bound_holds_at_every_iteration(name, params):
    problem = heterogeneous()
    if name == "ef21":
        params = {**params, "alpha": ef21_theorem_step(problem)}
    algorithm = make_algorithm(name, problem.constants, **params)
    theta0 = np.linspace(-1.0, 1.0, problem.objective.dim)
    trace = run(algorithm, problem, 400, theta0=theta0)
    check = check_bound(BOUND, trace, problem, algorithm, theta0=theta0)
    assert check.applicable and check.holds, (check.reason, check.max_ratio, check.argmax)
    assert check.provenance == "certified (LMI)"
    assert 0 < check.max_ratio <= 1 + 1e-9
    assert check.constants["V0_lower"] >= check.constants["start_dist_sq"] * (1 - 1e-9)
    # the bound decays at ρ² per iteration
    bound = check.bound_values
    np.testing.assert_allclose(bound[1:] / bound[:-1], check.constants["rho"] ** 2, rtol=1e-12)


@pytest.mark.parametrize(("name", "params"), CASES[:3])
def test_lyapunov_function_decreases_along_runs(name, params):
    """V(s^{k+1}) ≤ ρ² V(s^k) on the algorithm's own states, round by round."""
    problem = heterogeneous()
    if name == "ef21":
        params = {**params, "alpha": ef21_theorem_step(problem)}
    algorithm = make_algorithm(name, problem.constants, **params)
    certificate = certificate_for(algorithm, problem, lower_bound=False)
    model = certificate.model
    oracle = Oracle(problem.objective)
    theta0 = np.ones(problem.objective.dim)
    states, _ = start(algorithm, theta0, problem.objective.n_workers,
                      lambda: oracle.worker_gradients(theta0))
    value = certificate.lyapunov(state_rows(model, algorithm, problem, states))
    for _ in range(60):
        sync_round(algorithm, states, oracle.worker_gradients(states.model), None)
        following = certificate.lyapunov(state_rows(model, algorithm, problem, states))
        assert following <= certificate.rho**2 * value * (1 + 1e-9) + 1e-20
        value = following


def test_injected_bug_violates_the_certified_bound():
    problem = heterogeneous()
    algorithm = inject(make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.2),
                       "stale-worker-memory")
    trace = run(algorithm, problem, 300)
    check = check_bound(BOUND, trace, problem, algorithm)
    assert check.applicable and check.holds is False and check.max_ratio > 1e3


def test_large_xi_has_no_certificate():
    problem = heterogeneous()
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.9/L", xi=0.45)
    trace = run(algorithm, problem, 50)
    check = check_bound(BOUND, trace, problem, algorithm)
    assert not check.applicable
    assert "a linear rate ρ < 1 is certified fails (no linear rate certified" in check.reason


def test_classic_ef_on_heterogeneous_workers_is_not_certified_and_plateaus():
    problem = heterogeneous()
    algorithm = make_algorithm("ef", problem.constants, alpha="0.5/L", k=2)
    certificate = certificate_for(algorithm, problem, lower_bound=False)
    assert not certificate.certified and "no linear rate certified" in certificate.reason
    trace = run(algorithm, problem, 3000)
    distance = trace.columns["dist_sq"]
    assert distance[1000:].min() > 1e-4  # GD-SEC and EF21 reach 1e-23 here (test above)
    linear = fit_linear_rate(distance, burn_in=0.3)
    assert linear.high >= 0.9999  # no geometric decay
    assert (
        abs(fit_power_law(distance, start=300).rate) < 0.2
    )  # no sublinear decay either: a plateau


def test_homogeneous_single_worker_ef_is_certified():
    problem = engine_problem("logistic", "iid", workers=1, n_samples=200, n_features=6, lam=0.05)
    algorithm = make_algorithm("ef", problem.constants, alpha="0.05/L", k=2)
    assert certificate_for(algorithm, problem, lower_bound=False).certified


def test_start_point_must_match_the_run():
    problem = heterogeneous()
    algorithm = make_algorithm("gd", problem.constants)
    trace = run(algorithm, problem, 20, theta0=np.ones(problem.objective.dim))
    check = check_bound(BOUND, trace, problem, algorithm)  # θ⁰ = 0 assumed
    assert not check.evaluated and "theta0" in check.reason
    model, _ = model_for(algorithm, problem)
    with pytest.raises(InputError, match="'theta0'"):
        initial_state(model, algorithm, problem, np.ones(3))


def test_stochastic_and_nonconvex_cases_have_no_model():
    problem = heterogeneous()
    stochastic = make_algorithm("ef", problem.constants, k=2, batch_size=4)
    model, why = model_for(stochastic, problem)
    assert model is None and "stochastic" in why
    nonconvex = engine_problem(
        "nonconvex-logistic", "sorted", workers=4, n_samples=200, n_features=6
    )
    gd = make_algorithm("gd", nonconvex.constants)
    check = check_bound(BOUND, run(gd, nonconvex, 5), nonconvex, gd)
    assert not check.applicable


def test_initial_state_uses_the_algorithms_start():
    """EF21 with init="compressed" starts from g_m⁰ = C(∇f_m(θ⁰)) (computed here directly)."""
    problem = heterogeneous()
    algorithm = make_algorithm("ef21", problem.constants, alpha=0.1, k=2, init="compressed")
    model, _ = model_for(algorithm, problem)
    theta0 = np.full(problem.objective.dim, 0.5)
    rows = initial_state(model, algorithm, problem, theta0)
    star = problem.objective.worker_gradients(problem.optimum.theta)
    g0 = rows[model.states.index("g_0")]
    expected = TopK(k=2).compress(problem.objective.worker_gradients(theta0)[0])
    np.testing.assert_allclose(g0, 0.1 * (expected - star[0]), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(rows[model.states.index("x")], theta0 - problem.optimum.theta)


@pytest.mark.slow
def test_libsvm_phishing_ten_workers(shared_data):
    """GD-SEC and EF21 on phishing, labels sorted over 10 workers: certified, and the runs
    respect every applicable bound (about a minute: two M = 10 certificates)."""
    from convcheck import build_problem
    from convcheck.theory.registry import bounds_for

    problem = build_problem(
        "logistic", "phishing", workers=10, split="sorted", lam=0.01, data_dir=str(shared_data)
    )
    for name, params in [
        ("gd-sec", {"alpha": "0.5/L", "xi": 0.2}),
        ("ef21", {"k": 6, "alpha": ef21_theorem_step(problem, k=6)}),
    ]:
        algorithm = make_algorithm(name, problem.constants, **params)
        trace = run(algorithm, problem, 300)
        results = [
            check_bound(b, trace, problem, algorithm) for b in bounds_for(algorithm, problem)
        ]
        assert any(r.bound == "lmi/distance" and r.applicable for r in results)
        for result in results:
            assert result.holds or not result.applicable, (result.bound, result.max_ratio)


def test_the_report_data_carries_the_lower_bound_and_the_class():
    """What results.json gets for an lmi/distance check: ρ, ρ_low, the gap, how ρ_low was
    found, the model in words and the class of the certificate."""
    problem = heterogeneous()
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.2)
    constants = CertifiedBound().constants(algorithm, problem)
    assert constants["certified"] and constants["rho_low"] <= constants["rho"]
    assert 0 <= constants["gap"] <= 1e-3
    assert constants["lower_bound_method"].startswith("explicit instance")
    assert constants["model_description"]["name"] == "sector"
    assert "S(μ_m, L_m)" in constants["assumptions"]
    assert constants["instance_rho"] is None and "not a quadratic" in constants["instance_reason"]


def test_the_size_guard_names_the_parameter_and_the_allowed_range():
    """Distinct constants for 200 workers: 200 classes; the error names ``workers`` and says how
    many classes fit; with classes=10 the same constants are certified. τ = 10000: ``tau``."""
    from convcheck.theory.certified import certify

    L_workers = np.linspace(0.5, 1.0, 200)
    with pytest.raises(InputError, match="'workers'") as error:
        certify("gd-sec", L=1.0, mu=0.1, workers=200, L_workers=L_workers, alpha=0.5, xi=0.2)
    assert "at most" in str(error.value) and "classes" in str(error.value)
    rounded = certify("gd-sec", L=1.0, mu=0.1, workers=200, L_workers=L_workers, alpha=0.5,
                      xi=0.2, classes=3, lower_bound=False, tol=1e-5)
    assert rounded.certified and rounded.model.params["classes"] == 3
    with pytest.raises(InputError, match="'tau'") as error:
        certify("gd-delay", L=1.0, mu=0.1, alpha=0.01, tau=10_000)
    assert "tau ≤" in str(error.value) and "force" in str(error.value)


def test_lyapunov_of_a_reduced_certificate_decreases_along_runs():
    """Four workers with equal constants (quadratics with one Hessian, different centers): the
    model has a main and a deviation block, and V — evaluated on the engine's explicit state
    through the class means and deviations — decreases by ρ² per round of GD-SEC."""
    from convcheck import build_problem

    centers = [[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0], [0.0, -3.0]]
    problem = build_problem("ridge", "quadratics", workers=4, split="natural", scaling="none",
                            lam=0.0, dataset_params={"centers": centers})
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.3)
    certificate = certificate_for(algorithm, problem, lower_bound=False)
    model = certificate.model
    assert certificate.certified and len(model.blocks) == 2
    oracle, theta0 = Oracle(problem.objective), np.array([1.0, 2.0])
    state, _ = start(algorithm, theta0, problem.objective.n_workers,
                     lambda: oracle.worker_gradients(theta0))
    rows = state_rows(model, algorithm, problem, state)
    value = certificate.lyapunov(rows)
    assert value >= rows[0] @ rows[0]
    for _ in range(40):
        sync_round(algorithm, state, oracle.worker_gradients(state.model), None)
        following = certificate.lyapunov(state_rows(model, algorithm, problem, state))
        assert following <= certificate.rho**2 * value * (1 + 1e-9) + 1e-20
        value = following
