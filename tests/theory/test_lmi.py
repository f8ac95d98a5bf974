"""LMI certificates: the GD anchor [LRP], the numpy re-check, quadratic forms, outcomes that
the theory predicts (certified / not certified), and the bisection bracket."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from convcheck.errors import InputError
from convcheck.theory import lmi
from convcheck.theory.certified import certify, gd_rate
from convcheck.theory.lmi import QuadraticConstraint, Signal, certify_model, sector
from convcheck.theory.models import ModelConstants, build_model


def test_quadratic_forms_equal_direct_inner_products():
    """``Σ_ab Q_ab ⟨v_a, v_b⟩`` equals the constraint evaluated on vectors (d = 4)."""
    rng = np.random.default_rng(0)
    names = ("x", "u", "r")
    index = {n: i for i, n in enumerate(names)}
    v = rng.normal(size=(3, 4))
    x, u, r = (Signal.var(n) for n in names)
    checks = [
        (sector(u, x, 0.2, 3.0, "s"), (v[1] - 0.2 * v[0]) @ (3.0 * v[0] - v[1])),
        (lmi.norm_bound(r, u - x, 0.7, "n"), 0.7 * (v[1] - v[0]) @ (v[1] - v[0]) - v[2] @ v[2]),
        (lmi.orthogonal(r, u, "o"), v[2] @ (v[1] - v[2])),
    ]
    for constraint, direct in checks:
        Q = constraint.matrix(index, 3)
        np.testing.assert_allclose(Q, Q.T)
        assert np.sum(Q * (v @ v.T)) == pytest.approx(direct, rel=1e-12)
    assert repr(2.0 * x - u / 2) == "2·x + -0.5·u"


def gd_grid():
    return [
        (alpha, mu, L)
        for L, mu_ratio, alpha_ratio in itertools.product(
            (1.0, 7.5), (0.01, 0.3, 0.9), (0.1, 1.0, 1.7, 1.99)
        )
        for mu in [mu_ratio * L]
        for alpha in [alpha_ratio / L]
    ]


@pytest.mark.parametrize(("alpha", "mu", "L"), gd_grid())
def test_gd_certificate_reproduces_the_exact_rate(alpha, mu, L):
    certificate = certify("gd", L=L, mu=mu, alpha=alpha, tol=1e-8)
    expected = gd_rate(alpha, mu, L)
    assert certificate.certified
    assert abs(certificate.rho - expected) <= 1e-6
    assert certificate.rho_infeasible <= certificate.rho
    assert max(certificate.verification.lmi_max_eigenvalue) < 0
    assert certificate.verification.p_min_eigenvalue > 0


@pytest.mark.slow
@pytest.mark.parametrize(("alpha", "mu", "L"), gd_grid())
def test_gd_certificate_with_per_worker_constraints_reproduces_the_exact_rate(alpha, mu, L):
    certificate = certify("gd", L=L, mu=mu, alpha=alpha, tol=1e-8, workers=3)
    assert abs(certificate.rho - gd_rate(alpha, mu, L)) <= 1e-6


@pytest.mark.parametrize("alpha", [0.1, 1.0, 1.7])
def test_gd_with_condition_number_one_is_certified_but_less_sharply(alpha):
    """μ = L turns the sector into ``u = αLx``: a strict certificate near ρ* needs multipliers of
    order 1/(ρ − ρ*), the solver loses accuracy, and ρ comes out up to ~4e-4 high (still a valid
    certificate, never below the exact rate)."""
    certificate = certify("gd", L=1.0, mu=1.0, alpha=alpha, tol=1e-8)
    exact = gd_rate(alpha, 1.0, 1.0)
    assert exact - 1e-9 <= certificate.rho <= exact + 1e-3


def test_gd_beyond_two_over_L_has_no_certified_rate():
    certificate = certify("gd", L=1.0, mu=0.1, alpha=2.05)
    assert not certificate.certified and certificate.rho is None
    assert "no linear rate certified" in certificate.reason


def test_the_numpy_recheck_rejects_a_certificate_at_a_smaller_rate():
    """The verification can fail: the certified (P, λ) of GD do not certify ρ − 0.01."""
    certificate = certify("gd", L=1.0, mu=0.1, alpha=1.0, tol=1e-6)
    sdp = lmi._SDP(certificate.model)
    (values,) = certificate.multipliers
    lams = [(np.array(list(values.values())), np.zeros(0))]
    good = sdp.verify(certificate.rho, certificate.P, lams)
    bad = sdp.verify(certificate.rho - 0.01, certificate.P, lams)
    assert good.passed and not bad.passed
    assert bad.lmi_max_eigenvalue[0] > 0
    # a P that does not dominate e eᵀ fails the second test
    assert not sdp.verify(certificate.rho, 0.5 * certificate.P, lams).passed


def test_lyapunov_of_a_certificate_bounds_the_distance():
    certificate = certify("gd-sec", L=1.0, mu=0.1, workers=2, alpha=0.5, xi=0.2)
    rng = np.random.default_rng(2)
    for _ in range(20):
        state = rng.normal(size=(len(certificate.model.states), 5))
        assert certificate.lyapunov(state) >= state[0] @ state[0]


CERTIFIED = [
    ("gd-sec", {"alpha": 0.5, "xi": 0.1}),
    ("gd-sec", {"alpha": 0.5, "xi": 0.1, "error_correction": False}),
    ("ef21", {"alpha": 0.08, "delta": 0.3}),
    ("ef", {"alpha": 0.05, "delta": 0.5, "heterogeneous": False}),
    ("bidir-topk", {"alpha": 0.05, "delta_up": 0.5, "delta_down": 0.5, "heterogeneous": False}),
]
NOT_CERTIFIED = [
    ("gd-sec", {"alpha": 1.0, "xi": 0.45}),  # ξ too large for this step
    ("ef21", {"alpha": 0.08, "delta": 0.3, "lifting": False}),  # docs/theory.md §4.2: infeasible
    ("ef", {"alpha": 0.05, "delta": 0.5}),  # heterogeneous workers: no fixed point
    ("bidir-topk", {"alpha": 0.05, "delta_up": 0.5, "delta_down": 0.5}),
    ("compressed-gd", {"alpha": 0.05, "delta": 0.5}),  # top-k without error feedback
]
HETEROGENEOUS = {"L": 1.0, "mu": 0.05, "workers": 3, "L_workers": [0.6, 1.2, 1.8]}


@pytest.mark.parametrize(("name", "params"), CERTIFIED)
def test_certified_on_heterogeneous_workers(name, params):
    certificate = certify(name, **HETEROGENEOUS, tol=1e-5, **params)
    assert certificate.certified, certificate.reason
    # no compressed method beats the exact rate of GD with the same step on S(μ, L)
    assert certificate.rho >= gd_rate(params["alpha"], 0.05, 1.0) - 1e-6
    assert certificate.rho < 1


@pytest.mark.parametrize(("name", "params"), NOT_CERTIFIED)
def test_not_certified(name, params):
    certificate = certify(name, **HETEROGENEOUS, **params)
    assert not certificate.certified
    assert certificate.reason.startswith("no linear rate certified")
    assert certificate.as_dict()["rho"] is None


@pytest.mark.parametrize(
    ("alpha", "mu", "tau"), [(0.2, 0.05, 2), (0.1, 0.1, 1), (0.3, 0.1, 1), (0.05, 0.01, 4)]
)
def test_delayed_gd_matches_the_worst_quadratic(alpha, mu, tau):
    """On f = (h/2)‖x‖², h ∈ [μ, L], θ^{k+1} = θ^k − αhθ^{k−τ} contracts at the largest root of
    z^{τ+1} − z^τ + αh: no certificate can be smaller, and here the LMI attains it (1e-6)."""
    worst = max(
        np.abs(np.roots([1.0, -1.0] + [0.0] * (tau - 1) + [alpha * h])).max()
        for h in np.linspace(mu, 1.0, 2001)
    )
    certificate = certify("gd-delay", L=1.0, mu=mu, alpha=alpha, tau=tau, tol=1e-8)
    assert certificate.rho >= worst - 1e-8
    assert certificate.rho <= worst + 1e-6


def test_varying_delays_certify_no_better_than_the_fixed_delay():
    fixed = certify("gd-delay", L=1.0, mu=0.1, alpha=0.2, tau=2, tol=1e-6)
    varying = certify("gd-delay", L=1.0, mu=0.1, alpha=0.2, tau=2, varying=True, tol=1e-6)
    assert fixed.certified and varying.certified
    assert varying.rho >= fixed.rho - 1e-6
    assert len(varying.model.modes) == 3 and len(varying.multipliers) == 3


def test_certify_errors_name_the_field():
    with pytest.raises(InputError, match="'algorithm'"):
        certify("adam", L=1.0, mu=0.1, alpha=1.0)
    with pytest.raises(InputError, match="'mu'"):
        certify("gd", L=1.0, mu=2.0, alpha=1.0)
    with pytest.raises(InputError, match="'L_workers'"):
        certify("gd", L=1.0, mu=0.1, workers=2, L_workers=[1, 2, 3], alpha=1.0)
    with pytest.raises(InputError, match="'d'"):
        certify("ef21", L=1.0, mu=0.1, alpha=0.1, k=3)
    with pytest.raises(InputError, match="'k'"):
        certify("ef21", L=1.0, mu=0.1, alpha=0.1, k=30, d=10)
    with pytest.raises(InputError, match="'alpha'"):
        certify("gd", L=1.0, mu=0.1, alpha="1/nu")
    with pytest.raises(InputError, match="'tol'"):
        certify("gd", L=1.0, mu=0.1, alpha=1.0, tol=0.5)


def test_step_names_and_k_over_d_resolve():
    by_name = certify("ef21", L=2.0, mu=0.1, alpha="0.05/L", k=3, d=10, tol=1e-5)
    by_value = certify("ef21", L=2.0, mu=0.1, alpha=0.025, delta=0.3, tol=1e-5)
    assert by_name.model.params == by_value.model.params
    assert by_name.rho == by_value.rho


def test_a_model_without_updates_for_a_state_is_refused():
    model = lmi.LinearModel(
        "broken",
        {},
        ("x", "y"),
        ("u",),
        (lmi.Mode("m", {"x": Signal.var("x")}, (QuadraticConstraint("q", "inequality", ()),)),),
    )
    with pytest.raises(ValueError, match="'y'"):
        model.matrices(model.modes[0])
    with pytest.raises(InputError, match="'tol'"):
        certify_model(build_model("gd", ModelConstants.make(1.0, 0.1), alpha=1.0), tol=0.0)
