"""Evaluate one check of a case on its runs: a bound, a certified rate, or convergence.

* a bound name of :mod:`convcheck.theory` — the measured quantity of every run must stay
  within the bound at every iteration (bounds in expectation: the mean over the seeds);
* ``"certified"`` — an LMI certificate of a linear rate ρ exists for the algorithm on the
  problem's constants, and ``‖θ^k − θ*‖² ≤ ρ^{2k} s₀ᵀPs₀`` along every run;
* ``"converges"`` — every run reaches the case's target accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.verify.cases import SPECIAL_CHECKS, Case, CheckSpec
from convcheck.verify.verdict import Verdict


def known_checks() -> tuple[str, ...]:
    """Names a case may use in ``bound``."""
    return SPECIAL_CHECKS


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


def evaluate_check(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """The verdict of ``check`` on the ``runs`` of ``algorithm`` on ``problem``."""
    if check.bound == "converges":
        return _converges(check, case, problem, algorithm, runs)
    raise NotImplementedError(check.bound)
