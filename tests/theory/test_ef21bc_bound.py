"""The derived EF21-BC bounds (docs/theory.md §10): the trace holds the quantities of the proof,
its Lyapunov function decreases step by step at the theorem's step, the bounds hold on runs,
reduce to [EF21]'s with an identity downlink, are reported not applicable past their conditions
and fail when evaluated anyway there or on injected bugs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convcheck import make_algorithm, run
from convcheck.theory.bounds import EF21BCPL, EF21PL
from convcheck.theory.check import check_bound
from convcheck.theory.registry import BOUNDS, bounds_for
from convcheck.verification.mutants import inject
from tests.helpers import bidir_toy_problem
from tests.theory.test_bounds import problem_of

RTOL = 1e-9
BOUND_NAMES = ("ef21-bc/nonconvex", "ef21-bc/pl")


def constants(problem, **params):
    algorithm = make_algorithm("ef21-bc", problem.constants, **{"alpha": 1.0, **params})
    return EF21BCPL().constants(algorithm, problem)


def theorem_step(problem, kind, **params):
    """The largest step of both derived bounds (of the nonconvex one on a nonconvex problem)."""
    c = constants(problem, **params)
    if kind == "nonconvex":
        return c["step_nonconvex"]
    return min(c["step_pl"], c["step_pl_up"], c["step_pl_down"])


def top_k(x, k):
    """Keep the k entries of largest magnitude of each row (written here, not convcheck's)."""
    out = np.zeros_like(x)
    keep = np.argsort(-np.abs(x), axis=-1, kind="stable")[..., :k]
    np.put_along_axis(out, keep, np.take_along_axis(x, keep, axis=-1), axis=-1)
    return out


def paper_recursion(problem, alpha, k, k_down, rounds, init):
    """EF21-BC as [EF21-BW] writes it, from its state at t = 0: θ^{t+1} = θ^t − αb^t,
    g_m^{t+1} = g_m^t + C_w(∇f_m(θ^{t+1}) − g_m^t), b^{t+1} = b^t + C_s(g^{t+1} − b^t). Our
    start (g_m = ∇f_m(θ⁰) or 0, b = 0) enters through the first round. Returns f(θ^t), G^t and
    P^t for t = 0..rounds."""
    objective = problem.objective
    theta = np.zeros(objective.dim)
    grads = objective.worker_gradients(theta)
    estimates = grads.copy() if init == "full" else np.zeros_like(grads)
    estimates = estimates + top_k(grads - estimates, k)
    b = top_k(estimates.mean(axis=0), k_down)
    values, big_g, big_p = [], [], []
    for _ in range(rounds + 1):
        values.append(objective.value(theta))
        big_g.append(np.mean(np.sum((estimates - grads) ** 2, axis=1)))
        big_p.append(np.sum((b - estimates.mean(axis=0)) ** 2))
        theta = theta - alpha * b
        grads = objective.worker_gradients(theta)
        estimates = estimates + top_k(grads - estimates, k)
        b = b + top_k(estimates.mean(axis=0) - b, k_down)
    return np.array(values), np.array(big_g), np.array(big_p)


@pytest.mark.parametrize("init", ["full", "compressed"])
def test_the_trace_holds_the_quantities_of_the_proof(init):
    """``ef21_G`` at row t is the paper's G^t; ``downlink_error_sq`` one row later is P^t."""
    problem = problem_of("strongly convex")
    alpha, rounds = theorem_step(problem, "strongly convex", k=2, k_down=3), 60
    algorithm = make_algorithm("ef21-bc", problem.constants, alpha=alpha, k=2, k_down=3,
                               init=init)
    trace = run(algorithm, problem, rounds)
    values, big_g, big_p = paper_recursion(problem, alpha, 2, 3, rounds, init)
    np.testing.assert_allclose(trace.columns["value"], values, rtol=1e-12)
    np.testing.assert_allclose(trace.columns["ef21_G"], big_g, rtol=1e-9, atol=1e-24)
    np.testing.assert_allclose(trace.columns["downlink_error_sq"][1:], big_p[:-1], rtol=1e-9,
                               atol=1e-24)
    assert big_p[0] > 0 and (big_g[0] == 0) == (init == "full")
    for name in BOUND_NAMES:  # the bounds read the same start values
        start = check_bound(BOUNDS[name], trace, problem, algorithm).constants
        assert start["G0"] == pytest.approx(big_g[0], rel=1e-9, abs=1e-24)
        assert start["P0"] == pytest.approx(big_p[0], rel=1e-9)


@pytest.mark.parametrize("kind", ["strongly convex", "nonconvex"])
@pytest.mark.parametrize("init", ["full", "compressed"])
def test_the_lyapunov_function_decreases_at_every_step(kind, init):
    """The proof's one-step inequality Φ^{t+1} ≤ Φ^t − (α/2)‖∇f(θ^t)‖² (nonconvex weights) and
    Ψ^{t+1} ≤ (1 − αμ)Ψ^t (PL weights), checked on every round, not only summed."""
    problem = problem_of(kind)
    alpha = theorem_step(problem, kind, k=2, k_down=3)
    algorithm = make_algorithm("ef21-bc", problem.constants, alpha=alpha, k=2, k_down=3,
                               init=init)
    trace = run(algorithm, problem, 300)
    c = EF21BCPL().constants(algorithm, problem)
    f = np.asarray(trace.columns["value"]) - problem.optimum.f_low
    big_g = np.asarray(trace.columns["ef21_G"])[:-1]
    big_p = np.asarray(trace.columns["downlink_error_sq"])[1:]
    f, gradients = f[:-1], np.asarray(trace.columns["grad_norm_sq"])[:-1]
    phi = f + alpha / 2 * (c["weight_G"] * big_g + c["weight_P"] * big_p)
    slack = phi[:-1] - alpha / 2 * gradients[:-1] - phi[1:]
    assert np.min(slack / phi[:-1]) > -1e-12
    if kind == "strongly convex":
        psi = f + alpha * (c["weight_G_pl"] * big_g + c["weight_P_pl"] * big_p)
        ratio = psi[1:] / ((1 - alpha * c["mu"]) * psi[:-1])
        assert np.max(ratio) <= 1 + 1e-12


@pytest.mark.parametrize(("kind", "bounds"), [
    ("strongly convex", set(BOUND_NAMES)),
    ("ridge", set(BOUND_NAMES)),
    ("nonconvex", {"ef21-bc/nonconvex"}),
])
@pytest.mark.parametrize("init", ["full", "compressed"])
def test_bounds_hold_on_runs_at_the_theorems_step(kind, bounds, init):
    problem = problem_of(kind)
    algorithm = make_algorithm("ef21-bc", problem.constants, k=2, k_down=3, init=init,
                               alpha=theorem_step(problem, kind, k=2, k_down=3))
    trace = run(algorithm, problem, 400)
    found = {b.name: b for b in bounds_for(algorithm, problem, certified=False)}
    assert set(found) == bounds
    for bound in found.values():
        check = check_bound(bound, trace, problem, algorithm, rtol=RTOL)
        assert check.applicable and check.holds, (check.bound, check.max_ratio)
        assert 0 < check.max_ratio <= 1 + RTOL
        assert check.provenance == "derived here"
        assert np.isfinite(check.constants["P0"])


def test_identity_downlink_gives_ef21s_theorems():
    """With C_s = I (δ_s = 1, so P ≡ 0) the derived constants are [EF21] Thm 1 and 2's."""
    problem = problem_of("strongly convex")
    bc = constants(problem, k=2, ratio_down=1.0)
    ef21 = EF21PL().constants(make_algorithm("ef21", problem.constants, alpha=1.0, k=2),
                              problem)
    assert bc["step_nonconvex"] == pytest.approx(ef21["step_nonconvex"], rel=1e-14)
    assert bc["step_pl"] == pytest.approx(ef21["step_pl"], rel=1e-14)
    assert bc["step_pl_up"] == pytest.approx(ef21["step_pl_mu"], rel=1e-14)
    assert bc["weight_G"] == pytest.approx(1 / ef21["theta"], rel=1e-14)  # G⁰/(θT)
    assert bc["weight_G_pl"] == pytest.approx(1 / ef21["theta"], rel=1e-14)  # (α/θ)G
    assert bc["weight_P"] == bc["weight_P_pl"] == 0.0


def test_constants_match_their_closed_forms():
    """K, w_G, w_P at k = 2, k_down = 3 of d = 6, recomputed from the formulas of §10."""
    problem = problem_of("strongly convex")
    c = constants(problem, k=2, k_down=3)
    theta_w, theta_s = 1 - math.sqrt(2 / 3), 1 - math.sqrt(1 / 2)
    c1 = (2 / 3) / theta_w**2
    r = (1 + math.sqrt(2 / 3)) ** 2 * (1 / 2) / theta_s**2
    for m, keys in ((1, ("K_nonconvex", "weight_G", "weight_P")),
                    (2, ("K_pl", "weight_G_pl", "weight_P_pl"))):
        c2 = r * (1 + math.sqrt(m * c1)) ** 2
        a, q = math.sqrt(c1 / c2), 1 / math.sqrt(m * c1)
        expected = (m * (math.sqrt(c1) + math.sqrt(c2)) ** 2,
                    ((1 + 1 / a) + m * (1 + a) * r * (1 + q)) / theta_w, (1 + a) / theta_s)
        np.testing.assert_allclose([c[key] for key in keys], expected, rtol=1e-13)


def test_a_step_past_the_condition_is_not_applicable_and_fails_when_evaluated_anyway():
    problem = problem_of("strongly convex")
    algorithm = make_algorithm("ef21-bc", problem.constants, alpha="3/L", k=2, k_down=3)
    trace = run(algorithm, problem, 300)
    for name in ("ef21-bc/nonconvex", "ef21-bc/pl"):
        check = check_bound(BOUNDS[name], trace, problem, algorithm)
        assert not check.applicable and not check.evaluated
        assert "α ≤ 1/(L + L̃√K) fails" in check.reason
    forced = check_bound(BOUNDS["ef21-bc/nonconvex"], trace, problem, algorithm, force=True)
    assert forced.evaluated and forced.holds is False and forced.max_ratio > 100
    assert forced.reason.startswith("not applicable (evaluated anyway)")
    # at αμ > 1 the PL envelope (1 − αμ)^T changes sign: no violation can be claimed from it
    forced = check_bound(BOUNDS["ef21-bc/pl"], trace, problem, algorithm, force=True)
    assert not forced.evaluated and "the bound is negative" in forced.reason


def test_the_pl_step_conditions_on_mu_are_checked():
    """On the isotropic quadratics (μ = L = L̃ = 1) with an exact uplink and top-50% down, the
    downlink's θ_s/(2μ) is the binding PL condition: a step between it and 1/(L + L̃√K) fails
    that condition only."""
    problem = bidir_toy_problem()
    c = constants(problem, compressor="identity", ratio_down=0.5)
    assert c["step_pl_down"] < c["step_pl"] < c["step_pl_up"]
    algorithm = make_algorithm("ef21-bc", problem.constants, compressor="identity",
                               ratio_down=0.5, alpha=(c["step_pl_down"] + c["step_pl"]) / 2)
    check = check_bound(BOUNDS["ef21-bc/pl"], run(algorithm, problem, 5), problem, algorithm)
    failed = [condition.statement for condition in check.conditions if not condition.holds]
    assert failed == ["α ≤ θ_s/(2μ)"]


@pytest.mark.parametrize(("bug", "name"), [
    ("frozen-estimates", "ef21-bc/nonconvex"),
    ("frozen-estimates", "ef21-bc/pl"),
    ("stale-server-estimate", "ef21-bc/nonconvex"),
    ("stale-server-estimate", "ef21-bc/pl"),
])
def test_injected_bugs_violate_the_bounds(bug, name):
    problem = problem_of("strongly convex")
    alpha = theorem_step(problem, "strongly convex", k=2, k_down=3)
    algorithm = inject(make_algorithm("ef21-bc", problem.constants, alpha=alpha, k=2, k_down=3),
                       bug)
    check = check_bound(BOUNDS[name], run(algorithm, problem, 400), problem, algorithm)
    assert check.applicable and check.holds is False and check.max_ratio > 2


@pytest.mark.parametrize(("params", "failing"), [
    ({"compressor": "rand-k", "k": 2}, "uplink C_w deterministic"),
    ({"k": 2, "batch_size": 5}, "full local gradients (no minibatch)"),
])
def test_randomness_makes_the_bounds_not_applicable(params, failing):
    problem = problem_of("strongly convex")
    algorithm = make_algorithm("ef21-bc", problem.constants, alpha="0.001/L", k_down=3, **params)
    trace = run(algorithm, problem, 10, seed=1)
    for name in BOUND_NAMES:
        check = check_bound(BOUNDS[name], trace, problem, algorithm)
        assert not check.applicable and failing in check.reason


def test_an_unbiased_uplink_cannot_be_evaluated_even_when_forced():
    problem = problem_of("strongly convex")
    algorithm = make_algorithm("ef21-bc", problem.constants, alpha="0.001/L", compressor="qsgd",
                               s=4, k_down=3)
    trace = run(algorithm, problem, 10, seed=1)
    for name in BOUND_NAMES:
        check = check_bound(BOUNDS[name], trace, problem, algorithm, force=True)
        assert not check.evaluated and "δ-contractive compressors on both links" in check.reason
