"""Evaluate one check of a case on its runs: a bound, or convergence to the target.

* a bound name of :data:`convcheck.theory.BOUNDS` (closed forms, and ``lmi/distance``: an LMI
  certificate of a linear rate ρ exists and ``‖θ^k − θ*‖² ≤ ρ^{2k}V(s⁰)``) — checked by
  :func:`convcheck.theory.check_bound` on every run (every seed): the bound's conditions first,
  then the measured quantity against the bound at every iteration. A negative control
  evaluates the bound even where its conditions fail (``force``), to show it is violated;
* ``"converges"`` — every run reaches the case's target accuracy.

Beside the verdict, the empirical rate of the measured quantity is fitted the same way as the
bound's own (a geometric bound: linear rate per iteration; a ``1/T`` bound: log-log slope), so
the report can set the fitted rate beside the theory's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.verify.cases import SPECIAL_CHECKS, Case, CheckSpec
from convcheck.verify.verdict import Verdict


def known_checks() -> tuple[str, ...]:
    """Names a case may use in ``bound``: every bound of the theory, then ``converges``."""
    from convcheck.theory import BOUNDS

    return (*BOUNDS, *SPECIAL_CHECKS)


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
    from convcheck.verify.runner import thin

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


def rates(iterations: np.ndarray, measured: np.ndarray, bound: np.ndarray
          ) -> tuple[float | None, float | None, str]:
    """Fitted rate of ``measured`` and the bound's own rate, fitted alike.

    A bound whose consecutive ratios are constant is geometric: its rate is that ratio and the
    measured quantity gets a linear-rate fit; any other bound gets log-log slopes (``−1`` for
    ``1/T``). Returns ``(fitted, theory, kind)``; ``None`` where a fit has too few points.
    """
    from convcheck.errors import InputError
    from convcheck.theory import fit_linear_rate, fit_power_law

    usable = np.isfinite(bound) & (bound > 0)
    steps = bound[1:][usable[1:] & usable[:-1]] / bound[:-1][usable[1:] & usable[:-1]]
    geometric = steps.size >= 2 and np.ptp(steps) <= 1e-9 * np.max(steps)
    try:
        if geometric:
            fitted = fit_linear_rate(measured, iterations).rate
            return fitted, float(np.median(steps)), "linear"
        theory = fit_power_law(bound[usable], iterations[usable]).rate
        return fit_power_law(measured, iterations).rate, theory, "power"
    except InputError:
        return None, None, "linear" if geometric else "power"


def _bound(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """``check.bound`` on every run; the verdict of the worst run."""
    from convcheck.theory import BOUNDS, RTOL, check_bound
    from convcheck.verify.runner import thin

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
        verdict.fitted_rate, verdict.theory_rate, kind = rates(
            worst.iterations.astype(float), worst.measured, worst.bound_values)
        verdict.extra["rate_kind"] = kind
        index = thin(worst.iterations.size)
        verdict.series = {"iteration": worst.iterations[index].tolist(),
                          "measured": worst.measured[index].tolist(),
                          "bound": worst.bound_values[index].tolist(),
                          "quantity": worst.quantity_formula}
    return verdict


def evaluate_check(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """The verdict of ``check`` on the ``runs`` of ``algorithm`` on ``problem``."""
    if check.bound == "converges":
        return _converges(check, case, problem, algorithm, runs)
    return _bound(check, case, problem, algorithm, runs)
