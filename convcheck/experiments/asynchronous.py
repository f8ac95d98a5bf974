"""The figures of ``docs/async-results.md`` (issue 4): asynchronous engine, [STALE], [DGS].

Run ``python -m convcheck.experiments.asynchronous {special,staleness,stale,bound,dgs,all}
[--quick] [--out DIR] [--data-dir DIR]``: each experiment prints a Markdown table, and writes
its raw results as JSON (and plots as PNG where there is one) to ``DIR``. Everything is seeded;
the same command gives the same numbers.

* ``special`` — exact special cases: one worker with zero latency is synchronous SGD, DGS with
  ρ = 1 and one worker is heavy-ball SGD, ``τ_max = 0`` serializes workers into GD, the DGS
  invariant ``θ_k = θ_sync + A_k`` and SAMomentum's per-coordinate identity at every event,
  the error-feedback virtual iterate.
* ``staleness`` — staleness statistics: mean ≈ W − 1 at equal speeds, skewed histograms at
  heterogeneous speeds, ``τ_max`` respected and what it costs.
* ``stale`` — the [STALE] claim: log-log slope of the ergodic mean ``(1/T)Σ_{t<T}‖∇f(θ^t)‖²``
  against ``T`` with ``α = c/(L√T)``, dense vs top-k at two densities, two staleness regimes.
* ``bound`` — the derived bound (``convcheck.theory.asynchronous``) on the mean over seeds with a
  confidence interval, and two negative controls that must violate it.
* ``dgs`` — DGS vs dense async SGD vs async top-k with a dense downlink on real data: updates,
  simulated time, bits both ways and training accuracy at target accuracies.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convcheck.algorithms import DGS, GD, AsyncSGD, AsyncSparseSGD, ErrorFeedback
from convcheck.compressors import Identity, RandK, TopK
from convcheck.engine import run, run_async
from convcheck.engine.events import ComputationLog
from convcheck.engine.timing import Constant, Exponential, Link, LogNormal, Pareto
from convcheck.errors import InputError
from convcheck.problem import Problem, build_problem
from convcheck.theory.asynchronous import (
    async_sparsified_sgd_bound,
    max_step,
    mean_interval,
    minibatch_variance_bound,
    verdict,
)

EXPERIMENTS = ("special", "staleness", "stale", "bound", "dgs")


def _shared_problem(dataset: str = "breast-cancer", lam_nc: float | None = None) -> Problem:
    """Nonconvex logistic regression on one shard: any number of workers share the data."""
    return build_problem("nonconvex-logistic", dataset, workers=1, lam_nc=lam_nc, cross_check=False)


# ------------------------------------------------------------------------------ special cases
def special_cases() -> list[dict[str, Any]]:
    """Each special case: the largest difference between the two sides over the whole run."""
    rows = []

    def add(case: str, compared: str, difference: float, exact: bool, tolerance: float) -> None:
        rows.append(
            {
                "case": case,
                "compared": compared,
                "max_difference": float(difference),
                "claim": "bit for bit" if exact else f"round-off (<= {tolerance:g})",
                "holds": difference == 0.0 if exact else difference <= tolerance,
            }
        )

    one = build_problem("logistic", "breast-cancer", workers=1, cross_check=False)
    alpha = 0.5 / one.constants.L
    sync = run(GD(alpha), one, 300)
    result = run_async(AsyncSGD(alpha), one, 300, link=Link(latency_up=0.1, latency_down=0.1))
    add(
        "1 worker, async SGD (full gradients) vs GD",
        "f(θ^t), t ≤ 300",
        np.abs(result.columns["value"] - sync.columns["value"]).max(),
        True,
        0.0,
    )
    sync = run(ErrorFeedback(alpha, Identity(), batch_size=8), one, 300, seed=7)
    result = run_async(AsyncSGD(alpha, batch_size=8), one, 300, seed=7)
    add(
        "1 worker, async minibatch SGD vs synchronous SGD (same seed)",
        "θ^300",
        np.abs(result.theta - sync.theta).max(),
        True,
        0.0,
    )
    sync = run(ErrorFeedback(alpha, TopK(ratio=0.1), batch_size=8), one, 300, seed=7)
    result = run_async(AsyncSparseSGD(alpha, TopK(ratio=0.1), batch_size=8), one, 300, seed=7)
    add(
        "1 worker, async top-k SGD with memory vs synchronous EF-SGD",
        "θ^300",
        np.abs(result.theta - sync.theta).max(),
        True,
        0.0,
    )
    shared = _shared_problem()
    alpha = 0.5 / shared.constants.L
    sync = run(GD(alpha), shared, 300)
    result = run_async(
        AsyncSGD(alpha), shared, 300, workers=8, tau_max=0, compute=Pareto(1.0, spread=10.0)
    )
    add(
        "τ_max = 0, 8 shared-data workers, Pareto speeds vs GD",
        "θ^300",
        np.abs(result.theta - sync.theta).max(),
        True,
        0.0,
    )
    m = 0.9
    alpha = 0.1 / one.constants.L
    theta0 = np.linspace(-1.0, 1.0, one.objective.dim)
    reference = heavy_ball(one.objective, theta0, alpha, m, 300)
    for resync, exact in ((1, True), (None, False)):
        result = run_async(
            DGS(alpha, momentum=m, rho_up=1.0, rho_down=1.0, resync=resync),
            one,
            300,
            theta0=theta0,
        )
        scale = np.abs(reference).max()
        add(
            f"DGS ρ_up = ρ_down = 1, 1 worker, resync {resync} vs heavy ball (m = {m})",
            "θ^300 (relative)",
            np.abs(result.theta - reference).max() / scale,
            exact,
            1e-12,
        )
    eight = build_problem("logistic", "breast-cancer", workers=8, cross_check=False)
    alpha = 0.05 / eight.constants.L
    algorithm = DGS(alpha, momentum=m, rho_up=0.1, rho_down=0.1, layers=3, resync=50, batch_size=8)
    log = ComputationLog()
    worst = [0.0]

    def invariant(t: int, cluster: Any, event: dict) -> None:
        server = cluster.server
        scale = 1.0 + np.abs(server.theta_sync).max() + np.abs(server.accumulated).max()
        gap = np.abs(cluster.models - (server.theta_sync + server.accumulated)).max() / scale
        worst[0] = max(worst[0], gap)

    run_async(
        algorithm,
        eight,
        2000,
        compute=LogNormal(1.0, spread=8.0),
        observer=invariant,
        on_compute=log,
        trace_every=2000,
        seed=1,
    )
    add(
        "DGS θ_k = θ_sync + A_k at every event (8 workers, ρ = 0.1, resync 50)",
        "max_k ‖θ_k − θ_sync − A_k‖_∞ (relative)",
        worst[0],
        False,
        1e-13,
    )
    add(
        "SAMomentum: sent = m·(previous sent) + Σ α g since, per coordinate",
        "all sends of the same run (relative)",
        samomentum_identity_error(log, alpha, m),
        False,
        1e-12,
    )
    return rows


def heavy_ball(
    objective: Any, theta0: np.ndarray, alpha: float, m: float, steps: int
) -> np.ndarray:
    """``u ← m u + α∇f(θ)``, ``θ ← θ − u`` from ``u = 0`` (the DGS special case's reference)."""
    theta, u = theta0.copy(), np.zeros_like(theta0)
    for _ in range(steps):
        u = m * u + alpha * objective.gradient(theta)
        theta = theta - u
    return theta


def samomentum_identity_error(log: ComputationLog, alpha: float, m: float) -> float:
    """Largest relative error of ``sent_i = m·(previous sent_i) + α Σ g_i`` over all sends."""
    worst = 0.0
    for entries in log.entries.values():
        d = entries[0][0].size
        previous, accumulated = np.zeros(d), np.zeros(d)
        for gradient, sent, _ in entries:
            accumulated += alpha * gradient
            mask = sent != 0
            expected = m * previous[mask] + accumulated[mask]
            scale = np.maximum(np.abs(expected), np.abs(previous[mask]) + 1e-300)
            if mask.any():
                worst = max(worst, float((np.abs(sent[mask] - expected) / scale).max()))
            previous[mask] = sent[mask]
            accumulated[mask] = 0.0
    return worst


# ------------------------------------------------------------------------------ staleness
def staleness_statistics(quick: bool = False) -> dict[str, Any]:
    """Staleness at equal and unequal speeds, and under ``τ_max``."""
    problem = _shared_problem()
    alpha = 0.1 / problem.constants.L
    seeds = range(3 if quick else 5)
    updates = 1000 if quick else 4000

    def stats(workers: int, compute: Any, seed: int, tau_max: int | None = None) -> dict:
        result = run_async(
            AsyncSGD(alpha),
            problem,
            updates,
            workers=workers,
            compute=compute,
            tau_max=tau_max,
            trace_every=updates,
            seed=seed,
        )
        out = dict(result.summary["staleness"])
        out["time_per_update"] = result.summary["time"] / updates
        return out

    equal = []
    for workers in (1, 2, 4, 8, 16, 32):
        for name, compute in (("constant", Constant(1.0)), ("exponential", Exponential(1.0))):
            runs = [stats(workers, compute, seed) for seed in seeds]
            interval = mean_interval([r["mean"] for r in runs]) if workers > 1 else None
            equal.append(
                {
                    "workers": workers,
                    "compute": name,
                    "mean": float(np.mean([r["mean"] for r in runs])),
                    "mean_ci": None if interval is None else [interval.low, interval.high],
                    "max": max(r["max"] for r in runs),
                    "expected": workers - 1,
                }
            )
    heterogeneous = []
    models = (
        ("exponential, equal", Exponential(1.0)),
        ("lognormal σ=0.5, spread 16", LogNormal(1.0, sigma=0.5, spread=16.0)),
        ("pareto a=1.5 (heavy tail), equal", Pareto(1.0, shape=1.5)),
    )
    for name, compute in models:
        runs = [stats(8, compute, seed) for seed in seeds]
        histogram = _sum_histograms([r["histogram"] for r in runs])
        tau = np.repeat(np.arange(histogram.size), histogram)
        per_worker = np.mean([r["per_worker_mean"] for r in runs], axis=0)
        heterogeneous.append(
            {
                "compute": name,
                "mean": float(tau.mean()),
                "median": float(np.median(tau)),
                "p90": float(np.percentile(tau, 90)),
                "p99": float(np.percentile(tau, 99)),
                "max": int(tau.max()),
                "skewness": float(((tau - tau.mean()) ** 3).mean() / tau.std() ** 3),
                "per_worker_mean": per_worker.tolist(),
                "histogram": histogram.tolist(),
            }
        )
    bounded = []
    compute = LogNormal(1.0, sigma=0.5, spread=16.0)
    for tau_max in (None, 15, 7, 3, 0):
        runs = [stats(8, compute, seed, tau_max) for seed in seeds]
        bounded.append(
            {
                "tau_max": tau_max,
                "max": max(r["max"] for r in runs),
                "mean": float(np.mean([r["mean"] for r in runs])),
                "held_updates": float(np.mean([r["held_updates"] for r in runs])),
                "waited_reads": float(np.mean([r["waited_reads"] for r in runs])),
                "time_per_update": float(np.mean([r["time_per_update"] for r in runs])),
                "respected": tau_max is None or max(r["max"] for r in runs) <= tau_max,
            }
        )
    return {
        "updates": updates,
        "seeds": len(seeds),
        "equal": equal,
        "heterogeneous": heterogeneous,
        "tau_max": bounded,
    }


def _sum_histograms(histograms: Sequence[Sequence[int]]) -> np.ndarray:
    size = max(len(h) for h in histograms)
    return np.sum([np.pad(np.asarray(h), (0, size - len(h))) for h in histograms], axis=0)


# ------------------------------------------------------------------------------ [STALE] slopes
STALE_REGIMES = {
    "W=4, equal speeds (exponential)": (4, Exponential(1.0)),
    "W=16, unequal speeds (lognormal σ=1, spread 8)": (16, LogNormal(1.0, sigma=1.0, spread=8.0)),
}
STALE_METHODS = {
    "dense": lambda alpha, batch: AsyncSGD(alpha, batch_size=batch),
    "top-k 10%": lambda alpha, batch: AsyncSparseSGD(alpha, TopK(ratio=0.1), batch_size=batch),
    "top-k 30%": lambda alpha, batch: AsyncSparseSGD(alpha, TopK(ratio=0.3), batch_size=batch),
}


def stale_slopes(quick: bool = False, c: float = 1.0, batch_size: int = 16) -> dict[str, Any]:
    """Ergodic ``(1/T)Σ_{t<T}‖∇f(θ^t)‖²`` vs ``T`` with ``α = c/(L√T)``; per-seed log-log slopes.

    Slopes are fitted per seed (same seed = same schedule for every method), then averaged
    with a Student-t interval; the slope difference sparse − dense is paired by seed.
    """
    problem = _shared_problem()
    L = problem.constants.L
    horizons = (500, 1000, 2000) if quick else (500, 1000, 2000, 4000, 8000, 16000)
    seeds = range(3 if quick else 5)
    rows = []
    for regime, (workers, compute) in STALE_REGIMES.items():
        values: dict[str, np.ndarray] = {}
        for method, make in STALE_METHODS.items():
            table = np.empty((len(seeds), len(horizons)))
            for i, seed in enumerate(seeds):
                for j, T in enumerate(horizons):
                    alpha = c / (L * math.sqrt(T))
                    result = run_async(
                        make(alpha, batch_size),
                        problem,
                        T,
                        workers=workers,
                        compute=compute,
                        seed=seed,
                    )
                    table[i, j] = (
                        result.summary["ergodic_grad_norm_sq"]
                        if result.status == "completed"
                        else math.inf
                    )
            values[method] = table
        logs = np.log(np.asarray(horizons, dtype=float))
        slopes = {m: np.polyfit(logs, np.log(t).T, 1)[0] for m, t in values.items()}
        for method, table in values.items():
            slope = mean_interval(slopes[method])
            difference = (
                mean_interval(slopes[method] - slopes["dense"]) if method != "dense" else None
            )
            rows.append(
                {
                    "regime": regime,
                    "method": method,
                    "horizons": list(horizons),
                    "mean": table.mean(axis=0).tolist(),
                    "ratio_to_dense": (table.mean(axis=0) / values["dense"].mean(axis=0)).tolist(),
                    "slope": slope.mean,
                    "slope_ci": [slope.low, slope.high],
                    "slope_minus_dense_ci": None
                    if difference is None
                    else [difference.low, difference.high],
                    "values": table.tolist(),
                }
            )
    return {
        "problem": problem.objective.name,
        "L": L,
        "c": c,
        "batch_size": batch_size,
        "seeds": len(seeds),
        "rows": rows,
    }


# ------------------------------------------------------------------------------ the bound
def bound_check(quick: bool = False) -> dict[str, Any]:
    """The derived bound against the mean over seeds (95% t-interval), with negative controls.

    On nonconvex logistic regression (wine, ``λ_nc = 0.01``, shared data, exponential speeds):

    * top-k 30% with memory, minibatch 8, ``W = 4``, ``τ_max = 3``, ``α = α*/2`` (``α*``: the
      largest step the theorem allows): must hold;
    * rand-k 2/13 with memory, full gradients (``σ² = 0``), ``W = 8``, ``τ_max = 7``,
      ``α = 0.99 α*``: must hold; the same with ``α = 1/L``, far beyond the condition (the
      formula evaluated anyway; with ``σ² = 0`` it is ``2(f(θ⁰) − f_low)/(αT)``): must be
      violated;
    * rand-k 2/13, full gradients, ``W = 2``, ``τ_max = 1``, ``α = 0.99 α*``, with memory: must
      hold; the same with the memory dropped — the bug error feedback exists to prevent —
      against the same bound: must be violated (it needs ``T = 20000``, also with ``--quick``).
    """
    problem = _shared_problem("wine", lam_nc=0.01)
    objective, L = problem.objective, problem.constants.L
    d = objective.dim
    f0 = objective.value(np.zeros(d))
    seeds = range(4 if quick else 8)
    rows = []

    def check(
        name: str,
        expected: str,
        algorithm: Any,
        *,
        delta: float,
        sigma2: float,
        workers: int,
        tau_max: int,
        T: int,
    ) -> None:
        values, holding = [], 0
        for seed in seeds:
            result = run_async(
                algorithm,
                problem,
                T,
                workers=workers,
                tau_max=tau_max,
                seed=seed,
                compute=Exponential(1.0),
            )
            ergodic = result.summary["ergodic_grad_norm_sq"]
            values.append(ergodic if result.status == "completed" else math.inf)
            holding = max(holding, result.summary["staleness"]["max_update_gap"])
        bound = async_sparsified_sgd_bound(
            L=L,
            alpha=algorithm.alpha,
            T=T,
            delta=delta,
            sigma2=sigma2,
            tau_max=tau_max,
            workers=workers,
            f0=f0,
            holding=holding,
        )
        interval = mean_interval(values)
        outcome = verdict(interval, bound.value)
        rows.append(
            {
                "case": name,
                "expected": expected,
                "verdict": outcome,
                "as_expected": outcome == expected,
                "measured_mean": interval.mean,
                "measured_ci": [interval.low, interval.high],
                "bound": bound.value,
                "ratio": interval.high / bound.value,
                "conditions_hold": bound.holds_conditions,
                "bound_detail": bound.as_dict(),
                "seeds": len(values),
            }
        )

    batch, top = 8, TopK(ratio=0.3)
    alpha = max_step(L, top.delta(d), 3, 4) / 2
    check(
        "top-k 30% + memory, minibatch 8, W=4, τ_max=3, α = α*/2",
        "holds",
        AsyncSparseSGD(alpha, top, batch_size=batch),
        delta=top.delta(d),
        sigma2=minibatch_variance_bound(objective, batch),
        workers=4,
        tau_max=3,
        T=2000 if quick else 8000,
    )
    rand = RandK(k=2)
    setting = dict(delta=rand.delta(d), sigma2=0.0, workers=8, tau_max=7, T=2000 if quick else 8000)
    alpha = 0.99 * max_step(L, rand.delta(d), 7, 8)
    check(
        "rand-k 2/13 + memory, full gradients, W=8, τ_max=7, α = 0.99 α*",
        "holds",
        AsyncSparseSGD(alpha, rand),
        **setting,
    )
    check(
        "same, α = 1/L (beyond the condition)",
        "violated",
        AsyncSparseSGD(1.0 / L, rand),
        **setting,
    )
    setting = dict(delta=rand.delta(d), sigma2=0.0, workers=2, tau_max=1, T=20000)
    alpha = 0.99 * max_step(L, rand.delta(d), 1, 2)
    check(
        "rand-k 2/13 + memory, full gradients, W=2, τ_max=1, α = 0.99 α*",
        "holds",
        AsyncSparseSGD(alpha, rand),
        **setting,
    )
    check(
        "same, error memory dropped (injected bug)",
        "violated",
        AsyncSparseSGD(alpha, rand, error_memory=False),
        **setting,
    )
    return {
        "problem": objective.name,
        "lam_nc": problem.settings["lam_nc"],
        "L": L,
        "f0": f0,
        "rows": rows,
    }


# ------------------------------------------------------------------------------ DGS comparison
def training_accuracy(objective: Any, theta: np.ndarray) -> float:
    """Fraction of training rows with ``sign(a_iᵀθ) = b_i`` (ties count as errors)."""
    shards = objective.shards
    correct = (shards.forward(theta) * shards.labels > 0) & (shards.weights > 0)
    return float(correct.sum() / shards.sizes.sum())


DGS_TARGETS = (1e-2, 5e-3, 2e-3)


def dgs_comparison(
    quick: bool = False,
    datasets: Sequence[str] = ("phishing", "a9a"),
    data_dir: str | None = None,
    rho: float = 0.05,
    momentum: float = 0.9,
    c: float = 0.5,
) -> dict[str, Any]:
    """Updates, simulated time, bits and accuracy to ``f − f* ≤ ε`` on real datasets.

    Logistic regression (λ = 1e-3), 8 workers on iid shards, minibatch 32, exponential compute
    times (mean 1 s), links of ``32·d`` bits/s each way (a dense vector takes 1 s). Dense async
    SGD and async top-k (memory, dense downlink) use ``α = c/L``; DGS uses ``α = c(1 − m)/L``
    (the same effective step ``α/(1 − m)``), ``ρ_up = ρ_down = rho``, 4 contiguous layers,
    resync every 1000 versions. Bits count both directions.
    """
    every = 20
    updates = 3000 if quick else 20000
    seeds = range(2 if quick else 3)
    out = []
    for dataset in datasets:
        problem = build_problem(
            "logistic", dataset, workers=8, split="iid", data_dir=data_dir, cross_check=False
        )
        objective = problem.objective
        L, d = problem.constants.L, objective.dim
        methods = {
            "async SGD (dense both ways)": AsyncSGD(c / L, batch_size=32),
            f"async top-k {rho:g} + memory, dense downlink": AsyncSparseSGD(
                c / L, TopK(ratio=rho), batch_size=32
            ),
            f"DGS ρ_up = ρ_down = {rho:g}, m = {momentum:g}": DGS(
                c * (1 - momentum) / L,
                momentum=momentum,
                rho_up=rho,
                rho_down=rho,
                layers=4,
                resync=1000,
                batch_size=32,
            ),
        }
        link = Link(bandwidth_up=32.0 * d, bandwidth_down=32.0 * d)
        for name, algorithm in methods.items():
            per_seed = []
            for seed in seeds:
                accuracy: dict[int, float] = {0: training_accuracy(objective, np.zeros(d))}

                def observe(
                    t: int, state: Any, event: dict, acc: dict = accuracy, f: Any = objective
                ) -> None:
                    if t % every == 0:
                        acc[t] = training_accuracy(f, state.server.theta)

                result = run_async(
                    algorithm,
                    problem,
                    updates,
                    compute=Exponential(1.0),
                    link=link,
                    trace_every=every,
                    observer=observe,
                    seed=seed,
                )
                columns = result.columns
                hits = {}
                for target in DGS_TARGETS:
                    reached = np.flatnonzero(columns["suboptimality"] <= target)
                    if reached.size == 0:
                        hits[target] = None
                        continue
                    row = int(reached[0])
                    t = int(columns["iteration"][row])
                    hits[target] = {
                        "updates": t,
                        "time": float(columns["time"][row]),
                        "bits_up": int(columns["bits_up_total"][row]),
                        "bits_down": int(columns["bits_down_total"][row]),
                        "accuracy": accuracy.get(t),
                    }
                per_seed.append(
                    {
                        "hits": hits,
                        "final_suboptimality": float(columns["suboptimality"][-1]),
                        "final_accuracy": training_accuracy(problem.objective, result.theta),
                        "bits_up": int(columns["bits_up_total"][-1]),
                        "bits_down": int(columns["bits_down_total"][-1]),
                        "staleness_mean": result.summary["staleness"]["mean"],
                    }
                )
            out.append(
                {
                    "dataset": dataset,
                    "d": d,
                    "n": int(problem.objective.shards.sizes.sum()),
                    "L": L,
                    "method": name,
                    "params": algorithm.params(),
                    "targets": {
                        str(t): _mean_hits([s["hits"][t] for s in per_seed]) for t in DGS_TARGETS
                    },
                    "final_suboptimality": float(
                        np.mean([s["final_suboptimality"] for s in per_seed])
                    ),
                    "final_accuracy": float(np.mean([s["final_accuracy"] for s in per_seed])),
                    "per_seed": per_seed,
                }
            )
    return {"updates": updates, "seeds": len(seeds), "trace_every": every, "rho": rho, "rows": out}


def _mean_hits(hits: list[dict | None]) -> dict[str, Any] | None:
    """Means over the seeds that reached the target (and how many did)."""
    reached = [h for h in hits if h is not None]
    if not reached:
        return None
    mean = {key: float(np.mean([h[key] for h in reached])) for key in reached[0]}
    mean["reached"] = f"{len(reached)}/{len(hits)}"
    return mean


# ------------------------------------------------------------------------------ output
def _header(*names: str) -> list[str]:
    """A Markdown table header and its separator line."""
    return ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]


def format_markdown(name: str, result: Any) -> str:
    """The Markdown table(s) of one experiment's result."""
    lines: list[str] = []
    if name == "special":
        lines += [
            "| special case | compared | max difference | claim | holds |",
            "|---|---|---|---|---|",
        ]
        for r in result:
            lines.append(
                f"| {r['case']} | {r['compared']} | {r['max_difference']:.3g} | {r['claim']} | "
                f"{'yes' if r['holds'] else 'NO'} |"
            )
    elif name == "staleness":
        lines += [
            f"Equal speeds ({result['updates']} updates, {result['seeds']} seeds):",
            "",
            "| W | compute | mean τ (95% CI) | max τ | W − 1 |",
            "|---|---|---|---|---|",
        ]
        for r in result["equal"]:
            ci = "" if r["mean_ci"] is None else f" ({r['mean_ci'][0]:.3f}, {r['mean_ci'][1]:.3f})"
            lines.append(
                f"| {r['workers']} | {r['compute']} | {r['mean']:.3f}{ci} | {r['max']} | "
                f"{r['expected']} |"
            )
        lines += [
            "",
            "8 workers, all seeds pooled:",
            "",
            *_header(
                "compute",
                "mean",
                "median",
                "p90",
                "p99",
                "max",
                "skewness",
                "mean τ per worker (fast → slow)",
            ),
        ]
        for r in result["heterogeneous"]:
            per = ", ".join(f"{v:.1f}" for v in r["per_worker_mean"])
            lines.append(
                f"| {r['compute']} | {r['mean']:.2f} | {r['median']:.0f} | {r['p90']:.0f} | "
                f"{r['p99']:.0f} | {r['max']} | {r['skewness']:.2f} | {per} |"
            )
        lines += [
            "",
            "τ_max, 8 workers, lognormal σ=0.5, spread 16:",
            "",
            *_header(
                "τ_max",
                "max τ",
                "mean τ",
                "held updates",
                "waited reads",
                "simulated s / update",
                "respected",
            ),
        ]
        for r in result["tau_max"]:
            lines.append(
                f"| {r['tau_max'] if r['tau_max'] is not None else 'none'} | {r['max']} | "
                f"{r['mean']:.2f} | {r['held_updates']:.0f} | {r['waited_reads']:.0f} | "
                f"{r['time_per_update']:.3f} | {'yes' if r['respected'] else 'NO'} |"
            )
    elif name.startswith("stale"):
        horizons = result["rows"][0]["horizons"]
        lines += [
            f"{result['problem']}, α = {result['c']:g}/(L√T), minibatch {result['batch_size']}, "
            f"{result['seeds']} seeds; ergodic mean (1/T)Σ‖∇f(θ^t)‖² (mean over seeds):",
            "",
            "| regime | method | "
            + " | ".join(f"T={T}" for T in horizons)
            + " | slope (95% CI) | slope − dense (95% CI) |",
            "|---|---|" + "---|" * len(horizons) + "---|---|",
        ]
        for r in result["rows"]:
            values = " | ".join(
                f"{v:.3g}" + ("" if r["method"] == "dense" else f" ({q:.2f}×)")
                for v, q in zip(r["mean"], r["ratio_to_dense"], strict=True)
            )
            diff = r["slope_minus_dense_ci"]
            lines.append(
                f"| {r['regime']} | {r['method']} | {values} | {r['slope']:.3f} "
                f"({r['slope_ci'][0]:.3f}, {r['slope_ci'][1]:.3f}) | "
                + ("—" if diff is None else f"({diff[0]:+.3f}, {diff[1]:+.3f})")
                + " |"
            )
    elif name == "bound":
        lines += [
            f"{result['problem']} (λ_nc = {result['lam_nc']:g}), L = {result['L']:.4g}, "
            f"f(θ⁰) = {result['f0']:.4f}, f_low = 0:",
            "",
            *_header(
                "case",
                "measured mean (95% CI)",
                "bound",
                "high/bound",
                "conditions",
                "verdict",
                "expected",
            ),
        ]
        for r in result["rows"]:
            lines.append(
                f"| {r['case']} | {r['measured_mean']:.4g} ({r['measured_ci'][0]:.4g}, "
                f"{r['measured_ci'][1]:.4g}) | {r['bound']:.4g} | {r['ratio']:.3g} | "
                f"{'hold' if r['conditions_hold'] else 'VIOLATED'} | {r['verdict']} | "
                f"{r['expected']}{'' if r['as_expected'] else ' (NOT as expected)'} |"
            )
    elif name == "dgs":
        lines += [
            f"{result['updates']} server updates, {result['seeds']} seeds (means over the seeds "
            f"that reached the target), trace every {result['trace_every']} updates:",
            "",
            "| dataset | method | target f−f* | reached | updates | simulated s | bits up | "
            "bits down | bits total | train accuracy |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in result["rows"]:
            for target, hit in r["targets"].items():
                if hit is None:
                    lines.append(
                        f"| {r['dataset']} | {r['method']} | {float(target):g} | "
                        f"0/{result['seeds']} | — | — | — | — | — | — |"
                    )
                    continue
                total = hit["bits_up"] + hit["bits_down"]
                lines.append(
                    f"| {r['dataset']} | {r['method']} | {float(target):g} | {hit['reached']} | "
                    f"{hit['updates']:.0f} | {hit['time']:.0f} | {hit['bits_up']:.3g} | "
                    f"{hit['bits_down']:.3g} | {total:.3g} | {hit['accuracy']:.4f} |"
                )
        lines += [
            "",
            "| dataset | method | final f−f* | final train accuracy |",
            "|---|---|---|---|",
        ]
        for r in result["rows"]:
            lines.append(
                f"| {r['dataset']} | {r['method']} | {r['final_suboptimality']:.3g} | "
                f"{r['final_accuracy']:.4f} |"
            )
    return "\n".join(lines)


def plot(name: str, result: Any, out: str) -> list[str]:
    """PNG figures of an experiment (matplotlib, imported here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    if name == "staleness":
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in result["heterogeneous"]:
            h = np.asarray(r["histogram"], dtype=float)
            ax.step(np.arange(h.size), h / h.sum(), where="mid", label=r["compute"])
        ax.set_xlabel("staleness τ (server updates)")
        ax.set_ylabel("fraction of updates")
        ax.set_xlim(0, 60)
        ax.set_title("8 workers: staleness histograms")
        ax.legend(fontsize=7)
        paths.append(os.path.join(out, "async-staleness.png"))
    elif name.startswith("stale"):
        regimes = list(dict.fromkeys(r["regime"] for r in result["rows"]))
        fig, axes = plt.subplots(1, len(regimes), figsize=(10, 3.8), sharey=True)
        for ax, regime in zip(np.atleast_1d(axes), regimes, strict=True):
            for r in (r for r in result["rows"] if r["regime"] == regime):
                ax.loglog(
                    r["horizons"], r["mean"], marker="o", label=f"{r['method']} ({r['slope']:.2f})"
                )
            T = np.asarray(result["rows"][0]["horizons"], dtype=float)
            first = next(r for r in result["rows"] if r["regime"] == regime)["mean"][0]
            ax.loglog(T, first * np.sqrt(T[0] / T), "k--", lw=0.8, label="slope −1/2")
            ax.set_title(regime, fontsize=8)
            ax.set_xlabel("T (server updates)")
            ax.legend(fontsize=7)
        np.atleast_1d(axes)[0].set_ylabel("(1/T) Σ ‖∇f(θ^t)‖²")
        paths.append(os.path.join(out, f"async-{name}-slopes.png"))
    else:
        return []
    fig.tight_layout()
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)
    return paths


RUNNERS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "special": lambda args: special_cases(),
    "staleness": lambda args: staleness_statistics(args.quick),
    "stale": lambda args: stale_slopes(args.quick, c=args.stale_c),
    "bound": lambda args: bound_check(args.quick),
    "dgs": lambda args: dgs_comparison(args.quick, data_dir=args.data_dir),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run experiments, print Markdown, write JSON and PNG to ``--out``."""
    from convcheck.atomic import write_atomic
    from convcheck.environment import versions

    parser = argparse.ArgumentParser(
        prog="python -m convcheck.experiments.asynchronous", description=__doc__.split("\n")[0]
    )
    parser.add_argument("experiment", choices=list(EXPERIMENTS) + ["all"])
    parser.add_argument("--quick", action="store_true", help="smaller T and fewer seeds")
    parser.add_argument("--out", default="async-results", help="folder for JSON and PNG")
    parser.add_argument(
        "--data-dir", help="folder of the real datasets (before $CONVCHECK_DATA, the user cache)"
    )
    parser.add_argument(
        "--stale-c", type=float, default=1.0, help="c of the step α = c/(L√T) in 'stale' (1)"
    )
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    names = EXPERIMENTS if args.experiment == "all" else (args.experiment,)
    try:
        for name in names:
            result = RUNNERS[name](args)
            if name == "stale" and args.stale_c != 1.0:
                name = f"stale-c{args.stale_c:g}"
            document = {
                "experiment": name,
                "quick": args.quick,
                "result": result,
                "versions": versions(),
            }
            write_atomic(
                os.path.join(args.out, f"async-{name}.json"),
                json.dumps(document, indent=1, default=float) + "\n",
            )
            figures = plot(name, result, args.out)
            print(f"## {name}\n\n{format_markdown(name, result)}\n")
            for path in figures:
                print(f"(figure: {path})\n")
            sys.stdout.flush()
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
