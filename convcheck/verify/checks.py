"""Evaluate one check of a case on its runs: a bound, or convergence to the target.

* a bound name of :data:`convcheck.theory.BOUNDS` (closed forms, and ``lmi/distance``: an LMI
  certificate of a linear rate ρ exists and ``‖θ^k − θ*‖² ≤ ρ^{2k}V(s⁰)``) — checked by
  :func:`convcheck.theory.check_bound` on every run (every seed): the bound's conditions first,
  then the measured quantity against the bound at every iteration. A negative control
  evaluates the bound even where its conditions fail (``force``), to show it is violated;
* ``"async-sparse-sgd/nonconvex"`` — the derived ergodic bound of asynchronous (sparsified) SGD
  with error memory (:mod:`convcheck.theory.asynchronous`), a bound in expectation: the mean
  over the seeds of ``(1/T) Σ_{t<T} ‖∇f(θ^t)‖²`` with its 95% t-interval must lie below it
  (``holds``), entirely above it (``violated``), or the check is inconclusive;
* ``"converges"`` — every run reaches the case's target accuracy.

Beside the verdict, the empirical rate of the measured quantity is fitted the same way as the
bound's own (a geometric bound: linear rate per iteration; a ``1/T`` bound: log-log slope), so
the report can set the fitted rate beside the theory's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.verify.cases import Case, CheckSpec
from convcheck.verify.names import ASYNC_BOUND
from convcheck.verify.verdict import Verdict, thin


def _base(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> dict[str, Any]:
    """Verdict fields every check shares (run statistics: mean over seeds)."""
    first = runs[0]
    reached = [r.summary["target_iteration"] for r in runs]
    return {
        "case": case.name,
        "name": check.name,
        "algorithm": algorithm.name,
        "problem": case.problem.describe(),
        "problem_class": problem.constants.problem_class,
        "bound": check.bound,
        "kind": check.kind,
        "why": check.why,
        "iterations": int(round(np.mean([r.iterations for r in runs]))),
        "bits_up": int(round(np.mean([r.ledger.up.sum() for r in runs]))),
        "bits_down": int(round(np.mean([r.ledger.down.sum() for r in runs]))),
        "seeds": [int(r.meta["seed"]) for r in runs],
        "status": ", ".join(sorted({r.status for r in runs})),
        "target_iteration": None if None in reached else int(max(reached)),
        "bits_up_to_target": first.summary["bits_up_to_target"],
    }


def stacked(runs: list, column: str) -> np.ndarray:
    """``(seeds, K)`` array of a trace column over the runs, cut to the shortest run."""
    length = min(len(r.columns[column]) for r in runs)
    return np.array([r.columns[column][:length] for r in runs], dtype=float)


def _converges(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """Every run reaches the target; measured = best value so far of the target metric."""
    base = _base(check, case, problem, algorithm, runs)
    target = runs[0].summary["target"]
    metric = runs[0].summary["target_metric"]
    if target is None:
        return Verdict(**base, source="empirical", citation="", holds=None, applicable=False,
                       reason="the case sets no [run] target")
    best = np.max([np.minimum.accumulate(values) for values in stacked(runs, metric)], axis=0)
    holds = base["target_iteration"] is not None
    index = thin(best.size)
    reason = (f"{metric} ≤ {target:g} at iteration {base['target_iteration']}" if holds
              else f"{metric} never reached {target:g}: best {np.nanmin(best):.3g} "
                   f"({base['status']})")
    return Verdict(
        **base, source="empirical", citation="", holds=holds, applicable=True, reason=reason,
        max_ratio=float(np.nanmin(best) / target), tolerance=0.0,
        series={"iteration": index.tolist(), "measured": best[index].tolist(),
                "bound": [target] * index.size, "quantity": f"best {metric} so far"},
    )


def rates(iterations: np.ndarray, measured: np.ndarray, bound: np.ndarray, floor: float
          ) -> tuple[float | None, float | None, str]:
    """Fitted rate of ``measured`` and the bound's own rate, fitted alike.

    A bound whose consecutive ratios are constant is geometric: its rate is that ratio and the
    measured quantity gets a linear-rate fit (:func:`convcheck.theory.fit_linear_rate`); any
    other bound gets log-log slopes (``−1`` for ``1/T``). Only measured points above
    ``4·floor`` (the check's absolute tolerance) enter a fit: below it a trace is the reference
    optimum's accuracy or round-off. Returns ``(fitted, theory, kind)`` with kind ``"linear"``
    or ``"power"``; ``None`` where a fit has too few points.
    """
    from convcheck.errors import InputError
    from convcheck.theory import fit_linear_rate, fit_power_law

    usable = np.isfinite(bound) & (bound > 0)
    pairs = usable[1:] & usable[:-1]
    steps = bound[1:][pairs] / bound[:-1][pairs]
    geometric = steps.size >= 2 and np.ptp(steps) <= 1e-9 * np.max(steps)
    kind = "linear" if geometric else "power"
    above = np.isfinite(measured) & (measured > 4.0 * floor)
    try:
        if geometric:
            fitted = fit_linear_rate(measured, iterations, floor=4.0 * floor).rate
            return fitted, float(np.median(steps)), kind
        theory = fit_power_law(bound[usable], iterations[usable]).rate
        return fit_power_law(measured[above], iterations[above]).rate, theory, kind
    except InputError:
        return None, None, kind


def _bound(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """``check.bound`` on every run; the verdict of the worst run."""
    from convcheck.theory import BOUNDS, RTOL, check_bound
    base = _base(check, case, problem, algorithm, runs)
    bound = BOUNDS[check.bound]
    if not bound.matches(algorithm, problem):
        names = ", ".join(cls.name for cls in bound.algorithms)
        reason = (f"{bound.name} is about {names} on {bound.problem_class} problems, not "
                  f"{algorithm.name} on a {problem.constants.problem_class} problem")
        return Verdict(**base, source=bound.provenance, citation=bound.citation, holds=None,
                       applicable=False, reason=reason)
    rtol = RTOL if check.tolerance is None else check.tolerance
    theta0 = runs[0].meta.get("theta0")
    results = [
        check_bound(bound, r, problem, algorithm, rtol=rtol,
                    theta0=None if theta0 is None else np.asarray(theta0),
                    force=check.kind == "negative_control")
        for r in runs
    ]
    evaluated = [r for r in results if r.evaluated and r.max_ratio is not None]
    worst = max(evaluated, key=lambda r: r.max_ratio) if evaluated else results[0]
    holds = all(r.holds for r in evaluated) if evaluated else None
    applicable = all(r.applicable for r in results)
    if evaluated:
        reason = (f"max measured/bound = {worst.max_ratio:.4g} at iteration {worst.argmax} "
                  f"({worst.quantity})")
        if not applicable:
            reason = f"not applicable ({worst.reason}); evaluated anyway: " + reason
    else:
        reason = worst.reason or "not evaluated"
    verdict = Verdict(**base, source=bound.provenance, citation=bound.citation, holds=holds,
                      applicable=applicable, reason=reason, tolerance=rtol,
                      constants=worst.as_dict()["constants"],
                      extra={"statement": bound.statement, "tolerance": worst.tolerance,
                             "conditions": [c.as_dict() for c in worst.conditions]})
    if worst.bound_values is not None:
        verdict.max_ratio, verdict.worst_iteration = worst.max_ratio, worst.argmax
        verdict.fitted_rate, verdict.theory_rate, verdict.rate_kind = rates(
            worst.iterations.astype(float), worst.measured, worst.bound_values, worst.atol)
        verdict.extra["max_ratio_after_start"] = worst.max_ratio_after_start
        index = thin(worst.iterations.size)
        verdict.series = {"iteration": worst.iterations[index].tolist(),
                          "measured": worst.measured[index].tolist(),
                          "bound": worst.bound_values[index].tolist(),
                          "quantity": worst.quantity_formula}
    return verdict


def _async_bound(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """The derived asynchronous bound against the mean over seeds with its t-interval.

    Constants: ``δ`` of the compressor (1 for dense async SGD), ``σ²`` certified for the
    minibatches (0 for full gradients), ``τ_max`` of the case (else the largest staleness
    observed), ``H`` the largest update gap observed, ``f(θ⁰)`` and ``f_low``.
    """
    from convcheck.algorithms.async_sgd import AsyncSGD, AsyncSparseSGD
    from convcheck.theory import asynchronous as theory

    base = _base(check, case, problem, algorithm, runs)
    base["iterations"] = int(runs[0].summary["iterations"])
    common = {"source": theory.SOURCE, "citation": theory.CITATION}
    if not isinstance(algorithm, AsyncSGD | AsyncSparseSGD):
        return Verdict(**base, **common, holds=None, applicable=False,
                       reason=f"{ASYNC_BOUND} is about async-sgd and async-sparse-sgd, "
                              f"not {algorithm.name}")
    objective = problem.objective
    compressor = getattr(algorithm, "compressor", None)
    memory = getattr(algorithm, "error_memory", True)
    contractive = compressor is None or compressor.guarantee == "contractive"
    if not runs[0].summary.get("ergodic_exact", False) or not contractive:
        return Verdict(**base, **common, holds=None, applicable=False,
                       reason="needs every iterate traced and a contractive compressor")
    staleness = [r.summary["staleness"] for r in runs]
    settings = case.asynchronous or {}
    tau_max = settings.get("tau_max", max(s["max"] for s in staleness))
    batch = getattr(algorithm, "batch_size", None)
    bound = theory.async_sparsified_sgd_bound(
        L=problem.constants.L, alpha=algorithm.alpha, T=base["iterations"],
        delta=1.0 if compressor is None else compressor.delta(objective.dim),
        sigma2=0.0 if batch is None else theory.minibatch_variance_bound(objective, batch),
        tau_max=tau_max, workers=len(staleness[0]["updates_per_worker"]),
        f0=float(runs[0].columns["value"][0]), f_low=problem.optimum.f_low,
        holding=max(s["max_update_gap"] for s in staleness),
    )
    values = [r.summary["ergodic_grad_norm_sq"] if r.status == "completed" else np.inf
              for r in runs]
    interval = theory.mean_interval(values)
    outcome = theory.verdict(interval, bound.value)
    applicable = bound.holds_conditions and memory
    failed = [name for name, ok in bound.conditions.items() if not ok]
    failed += [] if memory else ["error memory on"]
    reason = (f"mean over {interval.n} seeds {interval.mean:.4g}, 95% interval "
              f"[{interval.low:.4g}, {interval.high:.4g}] vs bound {bound.value:.4g}: {outcome}")
    if not applicable:
        reason = f"not applicable ({'; '.join(failed)} fails); evaluated anyway: " + reason
    # the bound at every horizon T' ≤ T (α fixed): 2(f⁰ − f_low)/(αT') + the constant terms
    stacked_grads = stacked(runs, "grad_norm_sq")
    horizons = np.arange(1, stacked_grads.shape[1])
    measured = np.cumsum(stacked_grads.mean(axis=0))[:-1] / horizons
    constant = bound.terms["noise"] + bound.terms["delay_compression"]
    values_at = bound.terms["optimization"] * base["iterations"] / horizons + constant
    index = thin(horizons.size)
    return Verdict(
        **base, **common, holds={"holds": True, "violated": False}.get(outcome),
        applicable=applicable, reason=reason, max_ratio=interval.high / bound.value,
        worst_iteration=base["iterations"], tolerance=0.0,
        constants=bound.as_dict()["constants"],
        extra={"interval": [interval.low, interval.high], "mean": interval.mean,
               "verdict": outcome, "terms": bound.terms, "conditions": bound.conditions,
               "staleness_mean": float(np.mean([s["mean"] for s in staleness]))},
        series={"iteration": horizons[index].tolist(), "measured": measured[index].tolist(),
                "bound": values_at[index].tolist(),
                "quantity": "(1/T) Σ_{t<T} ‖∇f(θ^t)‖², mean over seeds"},
    )


def evaluate_check(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """The verdict of ``check`` on the ``runs`` of ``algorithm`` on ``problem``."""
    if check.bound == "converges":
        return _converges(check, case, problem, algorithm, runs)
    if check.bound == ASYNC_BOUND:
        return _async_bound(check, case, problem, algorithm, runs)
    return _bound(check, case, problem, algorithm, runs)
