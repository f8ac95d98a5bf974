"""Empirical checks with an independent reference: a special case and an ordering claim.

* ``dgs/heavy-ball`` (two-sided) — DGS with ``ρ_up = ρ_down = 1`` and one worker sends its
  whole momentum buffer and gets the whole model back, so it *is* heavy-ball
  ``u^{t+1} = m u^t + α(∇f(θ^t) + wd·θ^t)``, ``θ^{t+1} = θ^t − u^{t+1}`` (docs/theory.md §9).
  The recursion is run here, independently of the algorithm's code, and ``f(θ^t)`` must match
  the trace at every row and ``θ^T`` the run's final iterate, to a relative tolerance.
  DGS has no convergence bound in convcheck: this special case, ``converges`` targets and the
  algorithm's invariants are what verifies it.
* ``below-reference`` (ordering) — the run ends below a reference run of another algorithm
  (``reference``, same problem, start, iterations and seeds): the mean of ``f − f_low`` over the
  last 10% of rows must be at most ``(1 − margin)`` times the reference's (e.g. the [BIDIR]
  claim that bidirectional top-k ends below uplink-only top-k on its toy problem).
"""

from __future__ import annotations

import numpy as np

from convcheck.verification.cases import Case, CheckSpec
from convcheck.verification.names import HEAVY_BALL, SPECIAL
from convcheck.verification.verdict import Verdict, base_fields, judge, run_start, thin

#: Default relative tolerance of ``dgs/heavy-ball``.
HEAVY_BALL_TOL = 1e-9
#: Default relative margin of ``below-reference``.
MARGIN = 0.01
#: Fraction of the last rows whose mean ``f − f_low`` is compared by ``below-reference``.
TAIL = 0.1


def heavy_ball_values(objective, theta0: np.ndarray, alpha: float, momentum: float,
                      weight_decay: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``f(θ^t)`` for ``t = 0…steps`` of heavy-ball from ``θ⁰`` (``u⁰ = 0``), and ``θ^steps``."""
    theta = theta0.copy()
    velocity = np.zeros_like(theta)
    values = [objective.value(theta)]
    for _ in range(steps):
        velocity = momentum * velocity + alpha * (objective.gradient(theta) + weight_decay * theta)
        theta = theta - velocity
        values.append(objective.value(theta))
    return np.array(values), theta


def heavy_ball(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """``dgs/heavy-ball`` on every run; the verdict of the run farthest from heavy-ball."""
    from convcheck.algorithms.dgs import DGS

    base = base_fields(check, case, problem, algorithm, runs)
    common = {"source": SPECIAL[HEAVY_BALL].source, "citation": SPECIAL[HEAVY_BALL].citation}
    if not isinstance(algorithm, DGS):
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason=f"not applicable: {check.bound} is about dgs, not {algorithm.name}")
    params = algorithm.params()
    workers = len(runs[0].summary["staleness"]["updates_per_worker"])
    failed = [text for text, ok in (
        (f"ρ_up = 1 (ρ_up = {params['rho_up']})", params["rho_up"] == 1),
        (f"ρ_down = 1 (ρ_down = {params['rho_down']})", params["rho_down"] == 1),
        (f"one worker (W = {workers})", workers == 1),
        (f"one shard (M = {problem.objective.n_workers})", problem.objective.n_workers == 1),
        (f"full gradients (batch_size = {params['batch_size']})", params["batch_size"] is None),
    ) if not ok]
    if failed and check.kind == "positive":
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason="not applicable: " + "; ".join(failed) + " fails")
    tol = HEAVY_BALL_TOL if check.tolerance is None else check.tolerance
    worst = None
    for run in runs:
        rows = np.asarray(run.columns["iteration"], dtype=np.int64)
        values, theta = heavy_ball_values(problem.objective, run_start(run, problem.objective.dim),
                                          float(algorithm.alpha), params["momentum"],
                                          params["weight_decay"], int(rows[-1]))
        traced = np.asarray(run.columns["value"], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            gaps = np.abs(traced - values[rows]) / np.maximum(1.0, np.abs(values[rows]))
        gaps = np.where(np.isfinite(gaps), gaps, np.inf)
        final = float(np.linalg.norm(run.theta - theta)) / max(1.0, float(np.linalg.norm(theta)))
        score = max(float(np.max(gaps)), final if np.isfinite(final) else np.inf)
        if worst is None or score > worst[0]:
            worst = (score, int(rows[np.argmax(gaps)]), final, rows, traced, values[rows])
    score, where, final, rows, traced, reference = worst
    holds = bool(score <= tol)
    reason = (f"max relative |f(θ^t) − f(θ_hb^t)| and ‖θ^T − θ_hb^T‖ = {score:.3g} (worst row "
              f"{where}; final iterate {final:.3g}; tolerance {tol:g})")
    if failed:
        reason = f"not applicable ({'; '.join(failed)} fails); evaluated anyway: " + reason
    outcome, note = judge(check, holds, "differs")
    index = thin(rows.size)
    return Verdict(
        **base, **common, holds=holds, applicable=not failed,
        reason=reason + (f"; {note}" if note else ""), outcome=outcome,
        max_ratio=score / tol, worst_iteration=where, tolerance=tol,
        constants={"alpha": float(algorithm.alpha), "momentum": params["momentum"],
                   "weight_decay": params["weight_decay"], "workers": workers},
        extra={"note": "no bound: invariants and empirical checks only"},
        series={"iteration": rows[index].tolist(), "measured": traced[index].tolist(),
                "bound": reference[index].tolist(),
                "quantity": "f(θ^t) (bound: independent heavy-ball recursion)"},
    )


def below_reference(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """``below-reference``: every seed's tail gap below ``(1 − margin)`` × the reference's."""
    from convcheck.algorithms import ASYNC_ALGORITHMS, make_algorithm
    from convcheck.engine import run as run_sync

    base = base_fields(check, case, problem, algorithm, runs)
    params = dict(check.reference)
    name = params.pop("name")
    common = {"source": "empirical", "citation": f"ordering against {name}"}
    if name in ASYNC_ALGORITHMS or case.algorithm_name in ASYNC_ALGORITHMS:
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason="cannot be evaluated: below-reference compares synchronous runs")
    reference = make_algorithm(name, problem.constants, **params)
    margin = MARGIN if check.tolerance is None else check.tolerance
    f_low = problem.optimum.f_low
    ratios = []
    for run in runs:
        other = run_sync(reference, problem, int(run.meta["iterations_requested"]),
                         seed=int(run.meta["seed"]), theta0=run_start(run, problem.objective.dim),
                         stop_at_target=False)
        gaps = []
        for trace in (run, other):
            values = np.asarray(trace.columns["value"], dtype=np.float64)
            tail = values[-max(1, int(np.ceil(TAIL * values.size))):]
            gaps.append(float(np.mean(tail)) - f_low)
        ratio = gaps[0] / gaps[1] if gaps[1] > 0 else np.inf
        ratios.append((ratio if np.isfinite(ratio) else np.inf, gaps, other))
    worst, gaps, other = max(ratios, key=lambda r: r[0])
    holds = all(r[0] <= 1.0 - margin for r in ratios)
    reason = (f"tail mean f − f_low {gaps[0]:.6g} vs {reference.name}'s {gaps[1]:.6g}: ratio "
              f"{worst:.4g} (must be ≤ {1 - margin:g})")
    outcome, note = judge(check, holds, "not-below")
    mine = np.asarray(runs[0].columns["value"], dtype=np.float64) - f_low
    theirs = np.asarray(other.columns["value"], dtype=np.float64) - f_low
    length = min(mine.size, theirs.size)
    index = thin(length)
    return Verdict(
        **base, **common, holds=holds, applicable=True,
        reason=reason + (f"; {note}" if note else ""), outcome=outcome,
        max_ratio=worst, tolerance=margin,
        constants={"reference": dict(check.reference), "f_low": f_low, "tail": TAIL},
        series={"iteration": index.tolist(), "measured": mine[index].tolist(),
                "bound": theirs[index].tolist(),
                "quantity": f"f − f_low (bound: the reference {reference.name})"},
    )
