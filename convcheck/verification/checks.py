"""Evaluate one check of a case on its runs and decide its outcome (pass, fail, error,
refuted; :data:`convcheck.verification.verdict.OUTCOMES`).

* a bound name of :data:`convcheck.theory.BOUNDS` (closed forms, and ``lmi/distance``: an LMI
  certificate of a linear rate ρ exists and ``‖θ^k − θ*‖² ≤ ρ^{2k}V(s⁰)``) — checked by
  :func:`convcheck.theory.check_bound` on every run (every seed): the bound's conditions first,
  then the measured quantity against the bound at every iteration. A negative control
  evaluates the bound even where its conditions fail (``force``), to show it is violated; a
  bound that cannot be evaluated (not a finite positive envelope) on any seed is an error. A
  negative control of ``lmi/distance`` may instead expect that no certificate exists;
* ``"async-sparse-sgd/nonconvex"`` — the derived ergodic bound of asynchronous (sparsified) SGD
  with error memory (:mod:`convcheck.theory.asynchronous`), a bound in expectation: the mean
  over the seeds of ``(1/T) Σ_{t<T} ‖∇f(θ^t)‖²`` with its 95% t-interval must lie below it
  (``holds``) or entirely above it (``violated``); in between nothing is decided (an error);
* ``"converges"`` — every run reaches the case's target accuracy;
* ``gd/exact-rate``, ``lower/slowest-direction`` (:mod:`convcheck.verification.rates`) and
  ``dgs/heavy-ball``, ``below-reference`` (:mod:`convcheck.verification.special`).

Beside the verdict, the empirical rate of the measured quantity is fitted the same way as the
bound's own (a geometric bound: linear rate per iteration; a ``1/T`` bound: log-log slope), so
the report can set the fitted rate beside the theory's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convcheck.verification import rates as rate_checks
from convcheck.verification import special
from convcheck.verification.cases import Case, CheckSpec
from convcheck.verification.names import (
    ASYNC_BOUND,
    ATTAINED_WINDOW,
    BELOW_REFERENCE,
    CONVERGES,
    EXACT_RATE,
    HEAVY_BALL,
    NOT_ATTAINED,
    SLOWEST_DIRECTION,
)
from convcheck.verification.verdict import Verdict, base_fields, judge, thin


def stacked(runs: list, column: str) -> np.ndarray:
    """``(seeds, K)`` array of a trace column over the runs, cut to the shortest run."""
    length = min(len(r.columns[column]) for r in runs)
    return np.array([r.columns[column][:length] for r in runs], dtype=float)


def _converges(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """Every run reaches the target; measured = best value so far of the target metric."""
    base = base_fields(check, case, problem, algorithm, runs)
    target = runs[0].summary["target"]
    metric = runs[0].summary["target_metric"]
    if target is None:
        return Verdict(**base, source="empirical", citation="", holds=None, applicable=False,
                       reason="cannot be evaluated: the case sets no [run] target",
                       outcome="error")
    best = np.max([np.minimum.accumulate(values) for values in stacked(runs, metric)], axis=0)
    holds = base["target_iteration"] is not None
    index = thin(best.size)
    reason = (f"{metric} ≤ {target:g} at iteration {base['target_iteration']}" if holds
              else f"{metric} never reached {target:g}: best {np.nanmin(best):.3g} "
                   f"({base['status']})")
    outcome, note = judge(check, holds, "target-missed")
    return Verdict(
        **base, source="empirical", citation="", holds=holds, applicable=True,
        reason=reason + (f"; {note}" if note else ""), outcome=outcome,
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


def _mutated(check: CheckSpec, algorithm) -> bool:
    """The runs are not of the algorithm as claimed (an injected bug, other parameters)."""
    return check.inject is not None or bool(check.ran_with) or "[" in algorithm.name


def _bound(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """``check.bound`` on every run; the verdict of the worst run.

    Every seed must be evaluated (a negative control evaluates outside the bound's conditions
    on purpose, ``force``); a seed that is not, a positive check whose conditions fail, or a
    bound that is not a finite positive envelope is an error. A run of the certified algorithm
    itself that leaves an LMI certificate's envelope refutes the certificate.
    """
    from convcheck.theory import BOUNDS, RTOL, check_bound

    base = base_fields(check, case, problem, algorithm, runs)
    bound = BOUNDS[check.bound]
    common = {"source": bound.provenance, "citation": bound.citation}
    if not bound.matches(algorithm, problem):
        names = ", ".join(cls.name for cls in bound.algorithms)
        reason = (f"not applicable: {bound.name} is about {names} on {bound.problem_class} "
                  f"problems, not {algorithm.name} on a {problem.constants.problem_class} "
                  "problem")
        return Verdict(**base, **common, holds=None, applicable=False, reason=reason,
                       outcome="error")
    rtol = RTOL if check.tolerance is None else check.tolerance
    theta0 = runs[0].meta.get("theta0")
    results = [
        check_bound(bound, r, problem, algorithm, rtol=rtol,
                    theta0=None if theta0 is None else np.asarray(theta0),
                    force=check.kind == "negative_control")
        for r in runs
    ]
    if check.expect == "no-certificate":
        return _no_certificate(check, base, common, results)
    missing = [seed for seed, r in zip(base["seeds"], results, strict=True) if not r.evaluated]
    applicable = all(r.applicable for r in results)
    if missing:
        first = next(r for r in results if not r.evaluated)
        reason = first.reason
        if len(missing) < len(results):
            reason = f"seed(s) {missing} of {base['seeds']} not evaluated: {reason}"
        return Verdict(**base, **common, holds=None, applicable=applicable, reason=reason,
                       outcome="error", constants=first.as_dict()["constants"],
                       extra={"conditions": [c.as_dict() for c in first.conditions]})
    worst = max(results, key=lambda r: r.max_ratio)
    holds = all(r.holds for r in results)
    failure = "violated"
    reason = (f"max measured/bound = {worst.max_ratio:.4g} at iteration {worst.argmax} "
              f"({worst.quantity})")
    if check.attained is not None:
        lowest, where, count = min(_attainment(r) for r in results)
        reason += (f"; lowest measured/bound {lowest:.6g} at iteration {where} over {count} "
                   f"iterations where the bound ≥ {ATTAINED_WINDOW:g} of its start (attained "
                   f"iff ≥ 1 − {check.attained:g})")
        if holds and not lowest >= 1.0 - check.attained:
            holds, failure = False, NOT_ATTAINED
    if not applicable:
        reason = f"not applicable ({worst.reason}); evaluated anyway: " + reason
    outcome, note = judge(check, holds, failure)
    certified = bound.provenance == "certified (LMI)"
    if certified and not holds and applicable and not _mutated(check, algorithm):
        outcome = "refuted"
        note = (f"a run of {algorithm.name} itself leaves the certified envelope ρ^(2k)V(s⁰) "
                f"(ρ = {worst.constants.get('rho')}): the certificate is wrong — an error in "
                "the certifier or its model")
    verdict = Verdict(**base, **common, holds=holds, applicable=applicable,
                      reason=reason + (f"; {note}" if note else ""), outcome=outcome,
                      tolerance=rtol, constants=worst.as_dict()["constants"],
                      extra={"statement": bound.statement, "tolerance": worst.tolerance,
                             "conditions": [c.as_dict() for c in worst.conditions]})
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


def _attainment(result: Any) -> tuple[float, int, int]:
    """The lowest measured/bound of a run over the iterations ``k ≥ 1`` where the bound is at
    least :data:`ATTAINED_WINDOW` of its start, where it is reached, and how many there are
    (``(−inf, 0, 0)`` when there are none: nothing shows the bound attained)."""
    bound = np.asarray(result.bound_values, dtype=float)
    window = (np.asarray(result.iterations) >= 1) & (bound >= ATTAINED_WINDOW * bound[0]) & (
        bound > 0)
    if not window.any():
        return -math.inf, 0, 0
    ratio = np.asarray(result.measured, dtype=float)[window] / bound[window]
    ratio = np.where(np.isfinite(ratio), ratio, -math.inf)
    at = int(np.argmin(ratio))
    return float(ratio[at]), int(np.asarray(result.iterations)[window][at]), int(window.sum())


def _no_certificate(check: CheckSpec, base: dict, common: dict, results: list) -> Verdict:
    """A negative control of the LMI bound that expects *no* certificate: it passes iff the
    algorithm has an LMI model and no rate ρ < 1 is certified for it. A certificate found is a
    failure; one that a run then violates is refuted."""
    first = results[0]
    constants = first.constants
    plain = first.as_dict()["constants"]
    if constants.get("model") is None or not constants.get("mu", 0) > 0:
        why = constants.get("model_reason") or "μ = 0"
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       constants=plain,
                       reason=f"cannot be evaluated: no LMI model to certify ({why})")
    if not constants.get("certified"):
        reason = f"no linear rate certified: {constants.get('certificate_reason', '')}"
        outcome, note = judge(check, False, "no-certificate")
        return Verdict(**base, **common, holds=False, applicable=False, outcome=outcome,
                       reason=reason + (f"; {note}" if note else ""), constants=plain)
    violated = [r for r in results if r.evaluated and not r.holds]
    if violated:
        return Verdict(**base, **common, holds=False, applicable=True, outcome="refuted",
                       constants=plain, max_ratio=violated[0].max_ratio,
                       reason=(f"a certificate ρ = {constants['rho']:.6g} was found where none "
                               f"can exist, and the run leaves its envelope (max ratio "
                               f"{violated[0].max_ratio:.4g}): the certifier is unsound"))
    return Verdict(**base, **common, holds=True, applicable=True, outcome="fail",
                   constants=plain,
                   reason=f"a linear rate ρ = {constants['rho']:.6g} was certified; the control "
                          "expects none")


def _async_bound(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """The derived asynchronous bound against the mean over seeds with its t-interval.

    Constants: ``δ`` of the compressor (1 for dense async SGD), ``σ²`` certified for the
    minibatches (0 for full gradients), ``τ_max`` of the case (else the largest staleness
    observed), ``H`` the largest update gap observed, ``f(θ⁰)`` and ``f_low``. An interval that
    straddles the bound decides nothing: an error (more seeds are needed), never a pass.
    """
    from convcheck.algorithms.async_sgd import AsyncSGD, AsyncSparseSGD
    from convcheck.theory import asynchronous as theory

    base = base_fields(check, case, problem, algorithm, runs)
    base["iterations"] = int(runs[0].summary["iterations"])
    common = {"source": theory.SOURCE, "citation": theory.CITATION}
    if not isinstance(algorithm, AsyncSGD | AsyncSparseSGD):
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason=f"not applicable: {ASYNC_BOUND} is about async-sgd and "
                              f"async-sparse-sgd, not {algorithm.name}")
    objective = problem.objective
    compressor = getattr(algorithm, "compressor", None)
    memory = getattr(algorithm, "error_memory", True)
    contractive = compressor is None or compressor.guarantee == "contractive"
    if not runs[0].summary.get("ergodic_exact", False) or not contractive:
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason="cannot be evaluated: needs every iterate traced and a "
                              "contractive compressor")
    staleness = [r.summary["staleness"] for r in runs]
    settings = case.asynchronous or {}
    measured = max(s["max"] for s in staleness)
    tau_max = settings.get("tau_max", measured)
    if measured > tau_max:
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason=f"cannot be evaluated: the runs' staleness reaches {measured} > "
                              f"τ_max = {tau_max} of the case (the engine did not enforce it; "
                              "the bound for τ_max does not cover them)")
    batch = getattr(algorithm, "batch_size", None)
    bound = theory.async_sparsified_sgd_bound(
        L=problem.constants.L, alpha=algorithm.alpha, T=base["iterations"],
        delta=1.0 if compressor is None else compressor.delta(objective.dim),
        sigma2=0.0 if batch is None else theory.minibatch_variance_bound(objective, batch),
        tau_max=tau_max, workers=len(staleness[0]["updates_per_worker"]),
        f0=float(runs[0].columns["value"][0]), f_low=problem.optimum.f_low,
        holding=max(s["max_update_gap"] for s in staleness),
    )
    applicable = bound.holds_conditions and memory
    failed = [name for name, ok in bound.conditions.items() if not ok]
    failed += [] if memory else ["error memory on"]
    if not (math.isfinite(bound.value) and bound.value > 0):
        return Verdict(**base, **common, holds=None, applicable=applicable, outcome="error",
                       reason=f"cannot be evaluated: the bound is {bound.value!r}, not a finite "
                              "positive number")
    if not applicable and check.kind == "positive":
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason=f"not applicable: {'; '.join(failed)} fails",
                       constants=bound.as_dict()["constants"])
    values = [r.summary["ergodic_grad_norm_sq"] if r.status == "completed" else np.inf
              for r in runs]
    interval = theory.mean_interval(values)
    result = theory.verdict(interval, bound.value)
    reason = (f"mean over {interval.n} seeds {interval.mean:.4g}, 95% interval "
              f"[{interval.low:.4g}, {interval.high:.4g}] vs bound {bound.value:.4g}: {result}")
    if not applicable:
        reason = f"not applicable ({'; '.join(failed)} fails); evaluated anyway: " + reason
    holds = {"holds": True, "violated": False}.get(result)
    if holds is None:
        outcome, note = "error", "the interval straddles the bound: nothing is decided (add seeds)"
    else:
        outcome, note = judge(check, holds, "violated")
    # the bound at every horizon T' ≤ T (α fixed): 2(f⁰ − f_low)/(αT') + the constant terms
    stacked_grads = stacked(runs, "grad_norm_sq")
    horizons = np.arange(1, stacked_grads.shape[1])
    measured = np.cumsum(stacked_grads.mean(axis=0))[:-1] / horizons
    constant = bound.terms["noise"] + bound.terms["delay_compression"]
    values_at = bound.terms["optimization"] * base["iterations"] / horizons + constant
    index = thin(horizons.size)
    return Verdict(
        **base, **common, holds=holds, applicable=applicable,
        reason=reason + (f"; {note}" if note else ""), outcome=outcome,
        max_ratio=interval.high / bound.value, worst_iteration=base["iterations"], tolerance=0.0,
        constants=bound.as_dict()["constants"],
        extra={"interval": [interval.low, interval.high], "mean": interval.mean,
               "verdict": result, "terms": bound.terms, "conditions": bound.conditions,
               "staleness_mean": float(np.mean([s["mean"] for s in staleness]))},
        series={"iteration": horizons[index].tolist(), "measured": measured[index].tolist(),
                "bound": values_at[index].tolist(),
                "quantity": "(1/T) Σ_{t<T} ‖∇f(θ^t)‖², mean over seeds"},
    )


def evaluate_check(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """The verdict of ``check`` on the ``runs`` of ``algorithm`` on ``problem``."""
    handlers = {
        CONVERGES: _converges,
        ASYNC_BOUND: _async_bound,
        EXACT_RATE: rate_checks.exact_rate,
        SLOWEST_DIRECTION: rate_checks.slowest_direction,
        HEAVY_BALL: special.heavy_ball,
        BELOW_REFERENCE: special.below_reference,
    }
    return handlers.get(check.bound, _bound)(check, case, problem, algorithm, runs)
