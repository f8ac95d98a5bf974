"""Closed-form bounds on runs of the synchronous engine: they hold where their conditions hold,
are reported not applicable (with the reason) where not, and fail on negative controls (a step
past the condition, evaluated anyway; injected bugs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convcheck import make_algorithm, run
from convcheck.theory.bounds import CLOSED_FORM, EF21PL
from convcheck.theory.check import check_bound
from convcheck.theory.quantities import Reference
from convcheck.theory.registry import BOUNDS, bounds_for
from convcheck.verification.mutants import inject
from tests.helpers import bidir_toy_problem, engine_problem

RTOL = 1e-9


def problem_of(kind):
    if kind == "strongly convex":
        return engine_problem(
            "logistic", "sorted", workers=4, n_samples=200, n_features=6, lam=0.05
        )
    if kind == "ridge":
        return engine_problem("ridge", "sorted", workers=4, n_samples=200, n_features=6)
    if kind == "convex":
        return engine_problem("logistic", "sorted", workers=4, n_samples=200, n_features=6, lam=0.0)
    return engine_problem("nonconvex-logistic", "sorted", workers=4, n_samples=200, n_features=6)


def checks(name, params, kind, iterations=400):
    problem = problem_of(kind)
    algorithm = make_algorithm(name, problem.constants, **params)
    trace = run(algorithm, problem, iterations)
    return {
        bound.name: check_bound(bound, trace, problem, algorithm, rtol=RTOL)
        for bound in bounds_for(algorithm, problem, certified=False)
    }


def ef21_step(kind, k=2):
    """The largest step of [EF21] Theorem 2 (PL), or Theorem 1 on a nonconvex problem."""
    problem = problem_of(kind)
    algorithm = make_algorithm("ef21", problem.constants, alpha=1.0, k=k)
    constants = EF21PL().constants(algorithm, problem)
    if kind == "nonconvex":
        return constants["step_nonconvex"]
    return min(constants["step_pl"], constants["step_pl_mu"])


POSITIVE = [
    (
        "gd",
        {"alpha": "1/L"},
        "strongly convex",
        {"gd/strongly-convex", "gd/convex", "gd/nonconvex"},
    ),
    ("gd", {"alpha": "1.5/L"}, "ridge", {"gd/strongly-convex", "gd/nonconvex"}),
    ("gd", {"alpha": "1/L"}, "convex", {"gd/convex", "gd/nonconvex"}),
    ("gd", {"alpha": "1/L"}, "nonconvex", {"gd/nonconvex"}),
    (
        "gd-sec",
        {"alpha": "0.3/L", "xi": 0.2},
        "strongly convex",
        {"gd-sec/nonconvex", "gd-sec/convex"},
    ),
    (
        "gd-sec",
        {"alpha": "0.3/L", "xi": 0.2, "beta": 0.5},
        "ridge",
        {"gd-sec/nonconvex", "gd-sec/convex"},
    ),
    ("gd-sec", {"alpha": "0.3/L", "xi": 0.2}, "convex", {"gd-sec/nonconvex", "gd-sec/convex"}),
    ("gd-sec", {"alpha": "0.4/L", "xi": 0.15}, "nonconvex", {"gd-sec/nonconvex"}),
    ("ef21", {"k": 2}, "strongly convex", {"ef21/nonconvex", "ef21/pl"}),
    ("ef21", {"k": 2, "init": "compressed"}, "ridge", {"ef21/nonconvex", "ef21/pl"}),
    ("ef21", {"k": 2}, "nonconvex", {"ef21/nonconvex"}),
]


@pytest.mark.parametrize(("name", "params", "kind", "applicable"), POSITIVE)
def test_bounds_hold_on_runs(name, params, kind, applicable):
    if name == "ef21":
        params = {**params, "alpha": ef21_step(kind)}
    results = checks(name, params, kind)
    assert {n for n, c in results.items() if c.applicable} == applicable
    for check in results.values():
        if check.applicable:
            assert check.evaluated and check.holds, (check.bound, check.max_ratio, check.argmax)
            assert 0 < check.max_ratio <= 1 + RTOL
        else:
            assert check.reason.startswith("not applicable") and check.holds is None


def test_gd_strongly_convex_bound_is_attained_on_isotropic_quadratics():
    """On the [BIDIR] quadratics ∇²f = I (μ = L = 1): f(θ^k) − f* = (1 − α)^{2k}(f(θ⁰) − f*),
    exactly the bound (1 − αμ(2 − αL))^k — a wrong constant or exponent would show."""
    problem = bidir_toy_problem()
    algorithm = make_algorithm("gd", problem.constants, alpha=0.3)
    trace = run(algorithm, problem, 40)
    check = check_bound(BOUNDS["gd/strongly-convex"], trace, problem, algorithm)
    assert check.holds
    resolved = check.bound_values > 1e6 * check.atol
    assert resolved.sum() >= 20
    np.testing.assert_allclose(
        check.measured[resolved] / check.bound_values[resolved], 1.0, rtol=1e-9
    )


def test_step_beyond_the_condition_is_not_applicable_and_fails_when_evaluated_anyway():
    """On a quadratic, GD with α = 2.1/L grows like |1 − αL|^{2k} in f, faster than the bound's
    (1 − αμ(2 − αL))^k evaluated outside its range. The nonconvex formula is negative there:
    it cannot be evaluated even when forced (a negative "bound" is violated by every run)."""
    problem = problem_of("ridge")
    algorithm = make_algorithm("gd", problem.constants, alpha="2.1/L")
    trace = run(algorithm, problem, 200)
    for name in ("gd/strongly-convex", "gd/nonconvex"):
        check = check_bound(BOUNDS[name], trace, problem, algorithm)
        assert not check.applicable and not check.evaluated and check.holds is None
        assert "α < 2/L fails" in check.reason
    forced = check_bound(BOUNDS["gd/strongly-convex"], trace, problem, algorithm, force=True)
    assert forced.evaluated and not forced.applicable and forced.holds is False
    assert forced.max_ratio > 10
    assert forced.reason.startswith("not applicable (evaluated anyway)")
    forced = check_bound(BOUNDS["gd/nonconvex"], trace, problem, algorithm, force=True)
    assert not forced.evaluated and forced.holds is None
    assert forced.reason.startswith("cannot be evaluated") and "≤ 0" in forced.reason


def test_gdsec_step_beyond_the_condition_cannot_be_evaluated_even_when_forced():
    """c < 0 makes 2(f(θ⁰) − f_low)/(αTc) negative: not a bound, whatever the run does (the
    converging run below was once reported as violating it)."""
    problem = problem_of("nonconvex")
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.9/L", xi=0.3)
    trace = run(algorithm, problem, 200)
    check = check_bound(BOUNDS["gd-sec/nonconvex"], trace, problem, algorithm)
    assert not check.applicable and "c = 1 − Lα − (Lαξ/(1 − 2ξ))² > 0 fails" in check.reason
    assert check.constants["c"] < 0
    forced = check_bound(BOUNDS["gd-sec/nonconvex"], trace, problem, algorithm, force=True)
    assert not forced.evaluated and forced.holds is None and "c = " in forced.reason
    for xi in (0.5, 0.6):  # 1/(1 − 2ξ) is infinite or negative
        algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.1/L", xi=xi)
        forced = check_bound(BOUNDS["gd-sec/nonconvex"], run(algorithm, problem, 20), problem,
                             algorithm, force=True)
        assert not forced.evaluated and "ξ" in forced.reason


def test_ef21_divergent_step_fails_when_evaluated_anyway():
    """α = 3/L: the nonconvex formula stays positive and is violated; the PL formula's rate
    1 − αμ is negative (an alternating "envelope"), so it cannot be evaluated."""
    problem = problem_of("strongly convex")
    algorithm = make_algorithm("ef21", problem.constants, alpha="3/L", k=2)
    trace = run(algorithm, problem, 300)
    for name in ("ef21/nonconvex", "ef21/pl"):
        check = check_bound(BOUNDS[name], trace, problem, algorithm)
        assert not check.applicable and "fails" in check.reason
    assert check_bound(BOUNDS["ef21/nonconvex"], trace, problem, algorithm,
                       force=True).holds is False
    pl = check_bound(BOUNDS["ef21/pl"], trace, problem, algorithm, force=True)
    assert not pl.evaluated and "negative" in pl.reason


@pytest.mark.parametrize("bug", ["stale-worker-memory", "error-not-cleared"])
@pytest.mark.parametrize("kind", ["strongly convex", "ridge"])
def test_injected_bugs_violate_the_gdsec_bounds(bug, kind):
    problem = problem_of(kind)
    algorithm = inject(make_algorithm("gd-sec", problem.constants, alpha="0.3/L", xi=0.1), bug)
    trace = run(algorithm, problem, 400)
    bounds = bounds_for(algorithm, problem, certified=False)
    assert {b.name for b in bounds} == {"gd-sec/nonconvex", "gd-sec/convex"}
    for bound in bounds:
        check = check_bound(bound, trace, problem, algorithm)
        assert check.applicable and check.holds is False, bound.name
        assert check.max_ratio > 2


def test_error_not_cleared_violates_the_nonconvex_bound():
    problem = problem_of("nonconvex")
    algorithm = inject(make_algorithm("gd-sec", problem.constants, alpha="0.3/L", xi=0.1),
                       "error-not-cleared")
    trace = run(algorithm, problem, 400)
    check = check_bound(BOUNDS["gd-sec/nonconvex"], trace, problem, algorithm)
    assert check.applicable and check.holds is False


@pytest.mark.parametrize(
    ("params", "failing"),
    [
        ({"xi": 0.5}, "ξ = max_i ξ_i < 1/2"),
        ({"xi": 0.2, "error_correction": False}, "error correction on"),
        ({"xi": np.array([0.1, 0.1, 0.6, 0.1, 0.1, 0.1])}, "ξ = max_i ξ_i < 1/2"),
    ],
)
def test_gdsec_conditions(params, failing):
    problem = problem_of("strongly convex")
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.1/L", **params)
    trace = run(algorithm, problem, 20)
    for name in ("gd-sec/nonconvex", "gd-sec/convex"):
        check = check_bound(BOUNDS[name], trace, problem, algorithm)
        assert not check.applicable and failing + " fails" in check.reason


def test_ef21_with_a_randomized_compressor_is_not_applicable():
    problem = problem_of("strongly convex")
    algorithm = make_algorithm("ef21", problem.constants, alpha="0.01/L", compressor="rand-k", k=2)
    trace = run(algorithm, problem, 20)
    check = check_bound(BOUNDS["ef21/nonconvex"], trace, problem, algorithm)
    assert not check.applicable and "deterministic compressor" in check.reason


def test_bounds_for_selects_by_algorithm_and_class():
    strongly = problem_of("strongly convex")
    gd = make_algorithm("gd", strongly.constants)
    assert {b.name for b in bounds_for(gd, strongly)} == {
        "gd/strongly-convex",
        "gd/convex",
        "gd/nonconvex",
        "lmi/distance",
    }
    assert "lmi/distance" not in {b.name for b in bounds_for(gd, strongly, certified=False)}
    nonconvex = problem_of("nonconvex")
    assert [b.name for b in bounds_for(gd, nonconvex)] == ["gd/nonconvex"]
    ef = make_algorithm("ef", strongly.constants, k=2)
    assert [b.name for b in bounds_for(ef, strongly)] == ["ef/nonconvex", "lmi/distance"]
    lags = make_algorithm("lags", strongly.constants, ratio=0.5)
    assert [b.name for b in bounds_for(lags, strongly)] == ["ef/nonconvex", "lmi/distance"]
    wrong = check_bound(BOUNDS["ef21/pl"], run(gd, strongly, 5), strongly, gd)
    assert not wrong.applicable and "not gd" in wrong.reason


def test_every_bound_declares_provenance_and_citation():
    for bound in BOUNDS.values():
        described = bound.describe()
        assert described["provenance"] in ("classical", "paper", "derived here", "certified (LMI)")
        assert described["citation"] and described["statement"] and described["quantity"]
    assert {b.provenance for b in CLOSED_FORM.values() if b.name.startswith("gd-sec")} == {
        "derived here"
    }
    assert {b.provenance for b in CLOSED_FORM.values() if b.name.startswith("ef21/")} == {"paper"}


def test_bound_check_is_plain_data():
    results = checks("ef21", {"alpha": ef21_step("strongly convex"), "k": 2}, "strongly convex", 50)
    for check in results.values():
        text = json.dumps(check.as_dict(with_arrays=True))
        back = json.loads(text)
        assert back["bound"] == check.bound and back["holds"] == check.holds
        assert len(back["measured"]) == 51
        assert back["tolerance"].startswith("measured ≤ (1 + 1e-09)")


def test_ratio_after_the_start_excludes_the_tight_first_row():
    problem = problem_of("strongly convex")
    algorithm = make_algorithm("gd", problem.constants)
    check = check_bound(
        BOUNDS["gd/strongly-convex"], run(algorithm, problem, 50), problem, algorithm
    )
    assert check.argmax == 0 and check.max_ratio == pytest.approx(1.0, abs=1e-9)
    assert check.max_ratio_after_start < 1 - 1e-3


def test_ef21_with_an_unbiased_compressor_cannot_be_evaluated_even_when_forced():
    problem = problem_of("strongly convex")
    algorithm = make_algorithm("ef21", problem.constants, alpha="0.01/L", compressor="qsgd", s=4)
    trace = run(algorithm, problem, 10, seed=1)
    for name in ("ef21/nonconvex", "ef21/pl"):
        check = check_bound(BOUNDS[name], trace, problem, algorithm, force=True)
        assert not check.applicable and not check.evaluated
        assert "δ-contractive compressor" in check.reason


# -- error feedback (EF, LAGS, bidirectional top-k): derived here ------------------------------
def quadratics(centers, workers=2):
    from convcheck.problem import build_problem

    return build_problem("ridge", "quadratics", split="natural", workers=workers, scaling="none",
                         lam=0.0, cross_check=False, dataset_params={"centers": centers})


def test_gradient_dissimilarity():
    from convcheck.theory.bounds import gradient_dissimilarity

    # ∇f_m − ∇f = c̄ − c_m exactly: (1/2)(‖(10, 0)‖² + ‖(−10, 0)‖²) = 100
    assert gradient_dissimilarity(quadratics([[10.0, 0.0], [-10.0, 0.0]]))[0] == pytest.approx(
        100.0, rel=1e-12)
    assert np.isinf(gradient_dissimilarity(problem_of("ridge"))[0])  # unequal worker Hessians
    logistic = problem_of("nonconvex")
    zeta2, how = gradient_dissimilarity(logistic)
    assert "|∂ℓ/∂z| ≤ 1" in how
    rng = np.random.default_rng(0)
    for scale in (0.0, 1.0, 10.0, 1000.0):  # the supremum is never exceeded, far out included
        for _ in range(5):
            grads = logistic.objective.worker_gradients(scale * rng.normal(size=6))
            spread = np.mean(np.sum((grads - grads.mean(axis=0)) ** 2, axis=1))
            assert spread <= zeta2 * (1 + 1e-12)


def _memory_energy(name, params, problem, theta0, steps=300):
    """(√Σ_k E^k + √Σ_k D^k, α√Σ_k Γ^k) over a run stepped by hand: E = (1/M)Σ‖e_m‖²,
    D = ‖δ‖², Γ = (1/M)Σ‖∇f_m(θ^k)‖² (Lemma 7.2 of docs/theory.md)."""
    from convcheck.engine import Oracle
    from convcheck.engine.rounds import start, sync_round

    algorithm = make_algorithm(name, problem.constants, **params)
    oracle = Oracle(problem.objective)
    states, _ = start(algorithm, np.asarray(theta0, dtype=float), problem.objective.n_workers,
                      lambda: None)
    errors, server, gammas = [], [], []
    for _ in range(steps):
        gradients = oracle.worker_gradients(states.server.theta)
        diagnostics = algorithm.diagnostics(states.server, states.workers, gradients)
        errors.append(diagnostics[0])
        server.append(diagnostics[1] if len(diagnostics) > 1 else 0.0)
        gammas.append(np.mean(np.sum(gradients**2, axis=1)))
        sync_round(algorithm, states, oracle.worker_gradients(states.model), None)
    return (np.sqrt(np.sum(errors)) + np.sqrt(np.sum(server)),
            algorithm.alpha * np.sqrt(np.sum(gammas)), algorithm)


@pytest.mark.parametrize(
    ("name", "params", "bound"),
    [
        ("ef", {"alpha": 0.05, "k": 1}, "ef/nonconvex"),
        ("ef", {"alpha": 0.05, "compressor": "layer-top-k", "layer_sizes": [1, 2], "k": [1, 1]},
         "ef/nonconvex"),
        ("lags", {"alpha": 0.05, "layers": [1, 2], "k": [1, 1]}, "ef/nonconvex"),
        ("bidir-topk", {"alpha": 0.05, "k_up": 1, "k_down": 1}, "bidir-topk/nonconvex"),
        ("bidir-topk", {"alpha": 0.05, "k_up": 2, "k_down": 1}, "bidir-topk/nonconvex"),
    ],
)
def test_memory_energy_lemma_on_runs(name, params, bound):
    """Σ‖z^k‖² ≤ Q²α²ΣΓ^k, with Q the bound's own constant, on three heterogeneous quadratics."""
    problem = quadratics([[10.0, 0.0, 3.0], [-10.0, 1.0, 0.0], [0.0, -4.0, 2.0]], workers=3)
    memory, drive, algorithm = _memory_energy(name, params, problem, [5.0, 3.0, -2.0])
    gain = BOUNDS[bound].constants(algorithm, problem)["Q"]
    assert memory > 0 and memory <= gain * drive


def test_bidirectional_constant_reduces_to_its_one_sided_cases():
    problem = quadratics([[10.0, 0.0, 0.0, 0.0], [-10.0, 0.0, 0.0, 0.0]])
    ef = make_algorithm("ef", problem.constants, alpha=0.01, k=1)
    up_only = make_algorithm("bidir-topk", problem.constants, alpha=0.01, k_up=1, k_down=4)
    down_only = make_algorithm("bidir-topk", problem.constants, alpha=0.01, k_up=4, k_down=1)
    q_ef = BOUNDS["ef/nonconvex"].constants(ef, problem)["Q"]
    assert BOUNDS["bidir-topk/nonconvex"].constants(up_only, problem)["Q"] == pytest.approx(q_ef)
    assert BOUNDS["bidir-topk/nonconvex"].constants(down_only, problem)["Q"] == pytest.approx(q_ef)
    t = np.sqrt(1 - 1 / 4)
    assert q_ef == pytest.approx(t / (1 - t))


@pytest.mark.parametrize(
    ("name", "params", "bound"),
    [
        ("ef", {"k": 1}, "ef/nonconvex"),
        ("bidir-topk", {"k_up": 1, "k_down": 1}, "bidir-topk/nonconvex"),
    ],
)
def test_feedback_bounds_hold_and_a_frozen_memory_breaks_them(name, params, bound):
    """On ½‖x − (±10, 0)‖² from (5, 3): the correct run holds the bound; without the worker
    memory it stalls at ‖∇f‖² = 9, above the bound."""
    problem = quadratics([[10.0, 0.0], [-10.0, 0.0]])
    algorithm = make_algorithm(name, problem.constants, alpha=0.01, **params)
    theta0 = np.array([5.0, 3.0])
    check = check_bound(BOUNDS[bound], run(algorithm, problem, 3000, theta0=theta0), problem,
                        algorithm)
    assert check.applicable and check.holds and 0.1 < check.max_ratio <= 1
    mutant = inject(algorithm, "frozen-error-memory")
    broken = check_bound(BOUNDS[bound], run(mutant, problem, 3000, theta0=theta0), problem, mutant)
    assert broken.applicable and broken.holds is False


def test_feedback_bound_conditions():
    problem = problem_of("ridge")  # unequal worker Hessians: ζ² = ∞
    algorithm = make_algorithm("ef", problem.constants, alpha="0.01/L", k=2)
    trace = run(algorithm, problem, 20)
    check = check_bound(BOUNDS["ef/nonconvex"], trace, problem, algorithm, force=True)
    assert not check.applicable and not check.evaluated and "ζ² is infinite" in check.reason
    problem = quadratics([[10.0, 0.0], [-10.0, 0.0]])
    algorithm = make_algorithm("ef", problem.constants, alpha=0.5, k=1)  # c < 0
    check = check_bound(BOUNDS["ef/nonconvex"], run(algorithm, problem, 20), problem, algorithm,
                        force=True)
    assert not check.evaluated and "c = 1 − Lα − (LαQ)²" in check.reason


def test_gd_bound_values_follow_their_statements():
    """Each GD bound's values, recomputed here from its statement with the run's first row
    and the problem's constants (a constant or exponent changed in bounds.py shows, even
    where the bound stays respected)."""
    problem = problem_of("strongly convex")
    L, mu = problem.constants.L, problem.constants.mu
    alpha = 0.7 / L
    algorithm = make_algorithm("gd", problem.constants, alpha=alpha)
    trace = run(algorithm, problem, 50)
    k = np.arange(51)
    f0 = trace.columns["value"][0]
    ref = Reference.of(problem)  # θ̂ within a certified radius of θ*, f_low ≤ f* ≤ f(θ̂)
    f_low, f_hat = ref.f_low, ref.f_hat
    dist0 = max(np.sqrt(trace.columns["dist_sq"][0]) - ref.radius, 0.0) ** 2
    expected = {
        "gd/strongly-convex": (1 - alpha * mu * (2 - alpha * L)) ** k * (f0 - f_hat),
        "gd/convex": dist0 / (2 * alpha * np.maximum(k, 1)),
        "gd/nonconvex": (f0 - f_low) / (alpha * (1 - alpha * L / 2) * np.maximum(k, 1)),
    }
    for name, values in expected.items():
        check = check_bound(BOUNDS[name], trace, problem, algorithm, force=True)
        rows = check.iterations >= 1
        np.testing.assert_allclose(check.bound_values[rows], values[check.iterations[rows]],
                                   rtol=1e-6, err_msg=name)
