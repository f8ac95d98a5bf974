"""The derived asynchronous bound: its formula, its step condition, its constants, and a check
on simulated runs (mean over seeds with a confidence interval) that can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convcheck.algorithms import AsyncSparseSGD
from convcheck.compressors import RandK, TopK
from convcheck.engine import run_async
from convcheck.errors import InputError
from convcheck.problem import build_problem
from convcheck.theory.asynchronous import (
    async_sparsified_sgd_bound,
    max_step,
    mean_interval,
    memory_constant,
    minibatch_variance_bound,
    verdict,
)
from tests.helpers import small_problem

EXAMPLE = dict(
    L=2.0, alpha=0.01, T=100, delta=0.5, sigma2=0.3, tau_max=2, workers=3, f0=1.0, f_low=0.2
)


def test_formula_by_hand():
    """A_δ = 4·0.5/0.25 = 8; B = 2²·(1 + 8) + 3·3·8 = 108; Q = 0.02²·108 = 0.0432."""
    bound = async_sparsified_sgd_bound(**EXAMPLE)
    assert bound.constants["A_delta"] == pytest.approx(8.0)
    assert bound.constants["holding"] == 3  # τ_max + 1 by default
    assert bound.constants["Q"] == pytest.approx(0.0432)
    assert bound.terms["optimization"] == pytest.approx(1.6)
    assert bound.terms["noise"] == pytest.approx(0.006)
    assert bound.terms["delay_compression"] == pytest.approx(0.02592)
    assert bound.value == pytest.approx(1.63192)
    assert bound.holds_conditions and bound.source == "derived here"
    assert "docs/async-theory.md" in bound.citation
    bigger = async_sparsified_sgd_bound(**{**EXAMPLE, "holding": 5, "kappa": 4.0})
    assert bigger.constants["Q"] == pytest.approx(0.0004 * (4 * 4 * 9 + 3 * 5 * 8))


def test_dense_synchronous_case_is_the_classical_sgd_bound():
    """δ = 1 (no memory), τ_max = 0, one worker: 2(f⁰ − f_low)/(αT) + Lασ², for α ≤ 1/(2L)."""
    bound = async_sparsified_sgd_bound(**{**EXAMPLE, "delta": 1.0, "tau_max": 0, "workers": 1})
    assert bound.constants["Q"] == 0.0
    assert bound.value == pytest.approx(1.6 + 0.006)
    assert max_step(2.0, 1.0, 0, 1) == pytest.approx(0.25)


@pytest.mark.parametrize(("delta", "tau_max", "workers"), [(0.1, 7, 8), (0.5, 1, 2), (1.0, 3, 4)])
def test_max_step_is_where_the_condition_becomes_tight(delta, tau_max, workers):
    L = 3.0
    best = max_step(L, delta, tau_max, workers)
    kwargs = dict(L=L, T=10, delta=delta, sigma2=1.0, tau_max=tau_max, workers=workers, f0=1.0)
    q = async_sparsified_sgd_bound(alpha=best, **kwargs).constants["Q"]
    assert 1 - 2 * L * best - 4 * q == pytest.approx(0.0, abs=1e-12)
    assert async_sparsified_sgd_bound(alpha=0.999 * best, **kwargs).holds_conditions
    assert not async_sparsified_sgd_bound(alpha=1.001 * best, **kwargs).holds_conditions


def test_memory_constant_bounds_a_top_k_memory_sum():
    """Σ_j ‖e_j‖² ≤ A_δ α² Σ_j ‖g_j‖² for a top-k error memory fed arbitrary vectors."""
    rng = np.random.default_rng(0)
    d, k, alpha = 20, 4, 0.3
    top = TopK(k=k)
    e = np.zeros(d)
    memory, gradients = 0.0, 0.0
    for _ in range(500):
        g = rng.standard_cauchy(d)
        p = e + alpha * g
        e = p - top.compress(p)
        memory += e @ e
        gradients += g @ g
    assert memory <= memory_constant(k / d) * alpha**2 * gradients


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.5}, "delta"),
        ({"tau_max": -1}, "tau_max"),
        ({"alpha": 0.0}, "alpha"),
        ({"T": 0}, "T"),
        ({"sigma2": -1.0}, "sigma2"),
        ({"workers": 0}, "workers"),
        ({"holding": 0}, "holding"),
        ({"kappa": 0.0}, "kappa"),
        ({"L": -1.0}, "L"),
        ({"f0": math.nan}, "f0"),
    ],
)
def test_bad_input_names_the_field(change, field):
    with pytest.raises(InputError) as error:
        async_sparsified_sgd_bound(**{**EXAMPLE, **change})
    assert error.value.field == field


def test_minibatch_variance_bound_is_certified():
    """Exact variance of a B-sample minibatch at random points (enumerating the rows) stays
    below the bound, which is (1/B)·max_m mean_{i∈S_m} ‖a_i‖²."""
    objective = small_problem("nonconvex-logistic", 0.01, 0.1)
    batch = 3
    bound = minibatch_variance_bound(objective, batch)
    rows = [objective.shards.worker_rows(m) for m in range(objective.n_workers)]
    assert bound == pytest.approx(max((r * r).sum(axis=1).mean() for r in rows) / batch)
    rng = np.random.default_rng(1)
    for _ in range(5):
        theta = rng.normal(size=objective.dim) * 3
        for m, X in enumerate(rows):
            single = objective.restrict(m)
            labels = single.shards.labels.reshape(-1)
            _, slope = objective._loss(X @ theta, labels)
            per_row = slope[:, None] * X  # ∇ℓ_i, the only random part
            variance = ((per_row - per_row.mean(axis=0)) ** 2).sum(axis=1).mean() / batch
            assert variance <= bound
    with pytest.raises(InputError) as error:
        minibatch_variance_bound(small_problem("ridge", 0.0, 0.0), 2)
    assert error.value.field == "problem"


def test_mean_interval_and_verdicts():
    interval = mean_interval([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2  # t_{3, 0.975}
    assert interval.mean == 2.5 and interval.high == pytest.approx(2.5 + half)
    assert verdict(interval, 10.0) == "holds"
    assert verdict(interval, 0.1) == "violated"
    assert verdict(interval, 2.5) == "inconclusive"
    assert verdict(mean_interval([1.0, math.inf]), 5.0) == "violated"
    with pytest.raises(InputError):
        mean_interval([1.0])


def _ergodic(problem, algorithm, workers, tau_max, T, seeds):
    values, holding = [], 0
    for seed in seeds:
        result = run_async(algorithm, problem, T, workers=workers, tau_max=tau_max, seed=seed)
        values.append(result.summary["ergodic_grad_norm_sq"])
        holding = max(holding, result.summary["staleness"]["max_update_gap"])
    return mean_interval(values), holding


def test_bound_holds_on_simulated_runs_and_a_step_beyond_the_condition_violates_it():
    """Positive: top-k + memory, minibatch 8, 4 shared-data workers, τ_max = 3 (mean over 4
    seeds, 95% interval entirely below). Negative control: rand-k + memory with full gradients
    (σ² = 0, the bound is 2(f⁰ − f_low)/(αT)) at α = 1/L: the interval lies entirely above."""
    problem = build_problem("nonconvex-logistic", "wine", workers=1, lam_nc=0.01, cross_check=False)
    objective, L = problem.objective, problem.constants.L
    d = objective.dim
    f0 = objective.value(np.zeros(d))
    top = TopK(ratio=0.3)
    alpha = max_step(L, top.delta(d), 3, 4) / 2
    T = 1500
    interval, holding = _ergodic(
        problem, AsyncSparseSGD(alpha, top, batch_size=8), 4, 3, T, range(4)
    )
    bound = async_sparsified_sgd_bound(
        L=L,
        alpha=alpha,
        T=T,
        delta=top.delta(d),
        sigma2=minibatch_variance_bound(objective, 8),
        tau_max=3,
        workers=4,
        f0=f0,
        holding=holding,
    )
    assert holding <= 4 and bound.holds_conditions
    assert verdict(interval, bound.value) == "holds"
    rand = RandK(k=2)
    interval, holding = _ergodic(problem, AsyncSparseSGD(1.0 / L, rand), 8, 7, T, range(4))
    wrong = async_sparsified_sgd_bound(
        L=L,
        alpha=1.0 / L,
        T=T,
        delta=rand.delta(d),
        sigma2=0.0,
        tau_max=7,
        workers=8,
        f0=f0,
        holding=holding,
    )
    assert not wrong.holds_conditions
    assert verdict(interval, wrong.value) == "violated"


@pytest.mark.slow
def test_bound_check_experiment_gives_the_expected_verdicts():
    """The full check of docs/async-results.md: positives hold, both negative controls (step
    beyond the condition, dropped error memory) are violated."""
    from convcheck.experiments.asynchronous import bound_check

    result = bound_check(quick=False)
    assert all(row["as_expected"] for row in result["rows"]), result["rows"]
