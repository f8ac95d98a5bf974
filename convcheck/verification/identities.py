"""The identity checks every synchronous case gets beside its own checks.

* ``invariants`` — every identity the algorithm declares
  (:mod:`convcheck.algorithms.invariants`: its virtual iterate, its memories, "sent iff above the
  threshold", exactly ``k`` entries per top-k message, the workers holding the server's model)
  holds at every round of every run, to a stated round-off tolerance (exact comparisons for
  copies and selections), and every message's bits, re-encoded from its contents by the
  codec of the algorithm's specification (not the one the transport priced it with), equal
  the ledger's row.
* ``reductions`` — each special case the algorithm declares (GD-SEC with ``ξ = 0`` is GD, error
  feedback with the identity compressor is GD, bidirectional top-k with ``k_down = d`` is error
  feedback, ...) is run beside the case, from its start point, and must follow the algorithm it
  reduces to iterate by iterate.

Neither needs a bound, so a bug that makes a run *faster* or leaves every bound satisfied still
breaks them. A case may name them to set a tolerance (``tolerance``) or restrict ``invariants``
to some identities (``names``); a negative control may name them with an injected bug, which
must then break them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.algorithms.invariants import RTOL, monitor_for
from convcheck.verification.cases import Case, CheckSpec, RunSpec
from convcheck.verification.names import (
    BITS_CHECK,
    INVARIANTS,
    REDUCTIONS,
    SPECIAL,
    TRACE_CHECK,
    identity_names,
)
from convcheck.verification.verdict import Verdict, base_fields, judge, thin

#: Default relative tolerance of ``reductions`` (on ``max_k ‖a_k − b_k‖ / max_k ‖a_k‖``).
REDUCTION_RTOL = 1e-9
#: Rounds of each reduction run (the case's iterations when fewer).
REDUCTION_ROUNDS = 300


def implicit_checks(case: Case, algorithm: Any) -> list[CheckSpec]:
    """``invariants`` for a case that does not name it (where the algorithm declares
    identities) and ``reductions`` for a synchronous one (where the algorithm declares some and
    its runs are deterministic)."""
    named = {check.bound for check in case.checks if check.kind == "positive"}
    out = []
    if "async" in algorithm.transports:
        if algorithm.event_invariants and INVARIANTS not in named:
            out.append(CheckSpec(bound=INVARIANTS, kind="positive", name=INVARIANTS))
        return out
    if INVARIANTS not in named:
        out.append(CheckSpec(bound=INVARIANTS, kind="positive", name=INVARIANTS))
    if REDUCTIONS not in named and algorithm.reductions and not algorithm.randomized:
        out.append(CheckSpec(bound=REDUCTIONS, kind="positive", name=REDUCTIONS))
    return out


def _common(name: str) -> dict[str, str]:
    kind = SPECIAL[name]
    return {"source": kind.source, "citation": kind.citation}


def invariants(check: CheckSpec, case: Case, problem: Any, algorithm: Any, runs: list,
               monitors: list[Any] | None) -> Verdict:
    """The ``invariants`` verdict from the monitors that watched ``runs`` (one per seed)."""
    base = base_fields(check, case, problem, algorithm, runs)
    common = _common(INVARIANTS)
    if monitors is None:
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason=f"not applicable: {algorithm.name} declares no identities")
    rtol = RTOL if check.tolerance is None else check.tolerance
    wanted = set(check.names or identity_names(algorithm))
    broken = []
    for seed, run, monitor in zip(base["seeds"], runs, monitors, strict=True):
        for name, (k, error, scale) in sorted(monitor.failures.items(), key=lambda x: x[1][0]):
            if name in wanted:
                broken.append(f"{name} at round {k} of seed {seed} (error {error:.3g}, scale "
                              f"{scale:.3g})")
        if BITS_CHECK in wanted:
            mismatch = monitor.ledger_mismatch(run.ledger)
            if mismatch is not None:
                broken.append(f"{BITS_CHECK}: seed {seed}, {mismatch[1]}")
        if TRACE_CHECK in wanted:
            traced = monitor.trace_mismatch(run)
            if traced is not None:
                broken.append(f"{TRACE_CHECK}: seed {seed}, {traced}")
    rounds = sum(m.rounds for m in monitors)
    unchecked = [(seed, m.nonfinite) for seed, m in zip(base["seeds"], monitors, strict=True)
                 if m.nonfinite is not None]
    worst_name, (worst, worst_round) = max(
        ((name, value) for m in monitors for name, value in m.worst.items()
         if name in wanted and not _exact(algorithm, name)),
        key=lambda item: item[1][0], default=("", (0.0, 0)))
    holds = not broken
    if holds:
        reason = (f"{len(wanted)} identities hold on {rounds} rounds (updates) over "
                  f"{len(runs)} seed(s); "
                  f"largest round-off {worst:.3g} ({worst_name}, round {worst_round}) ≤ "
                  f"{rtol:g}")
    else:
        reason = "violated: " + "; ".join(broken[:3]) + (
            f"; and {len(broken) - 3} more" if len(broken) > 3 else "")
    if unchecked:
        reason += "; not checked from the first non-finite model: " + ", ".join(
            f"seed {seed} round {k}" for seed, k in unchecked)
    outcome, note = judge(check, holds, "violated")
    history = np.asarray(monitors[0].history, dtype=float)
    index = thin(history.size)
    return Verdict(
        **base, **common, holds=holds, applicable=True, outcome=outcome,
        reason=reason + (f"; {note}" if note else ""), tolerance=rtol,
        max_ratio=worst / rtol if rtol > 0 else None, worst_iteration=worst_round,
        extra={"identities": sorted(wanted), "failures": broken},
        series={"iteration": (index + 1).tolist(), "measured": history[index].tolist(),
                "bound": [rtol] * index.size,
                "quantity": "largest relative round-off of the identities (seed "
                            f"{base['seeds'][0]})"},
    )


def _exact(algorithm: Any, name: str) -> bool:
    found = [i for i in monitor_for(algorithm).invariants() if i.name == name]
    return name in (BITS_CHECK, TRACE_CHECK) or bool(found and found[0].exact)


def _special_case(algorithm: Any, overrides: dict[str, Any]) -> Any:
    """``algorithm`` (its class: a mutant stays a mutant) with ``overrides`` of its values."""
    values = {p.name: getattr(algorithm, p.name) for p in type(algorithm).parameters}
    return type(algorithm)(**{**values, **overrides})


def _trajectory(algorithm: Any, problem: Any, iterations: int, seed: int,
                theta0: np.ndarray | None) -> np.ndarray:
    """The server's iterates ``θ⁰ … θ^T`` of one synchronous run."""
    from convcheck.engine import run

    points = [np.zeros(problem.objective.dim) if theta0 is None else theta0]

    def observe(k: int, states: Any, wire: Any, gradients: Any) -> None:
        points.append(np.array(states.server.theta, dtype=float))

    run(algorithm, problem, iterations, seed=seed, theta0=theta0, stop_at_target=False,
        observer=observe)
    return np.stack(points)


def reductions(check: CheckSpec, case: Case, problem: Any, algorithm: Any, runs: list,
               spec: RunSpec, seed_offset: int) -> Verdict:
    """The ``reductions`` verdict: every declared special case against its reference."""
    from convcheck.algorithms import make_algorithm
    from convcheck.errors import ConvcheckError

    base = base_fields(check, case, problem, algorithm, runs)
    common = _common(REDUCTIONS)
    declared = algorithm.reductions
    if not declared or algorithm.randomized or "async" in algorithm.transports:
        why = ("it declares none" if not declared else "its runs are random"
               if algorithm.randomized else "it runs on the event engine")
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason=f"not applicable: no reductions to check for {algorithm.name} "
                              f"({why})")
    rtol = REDUCTION_RTOL if check.tolerance is None else check.tolerance
    iterations = min(spec.iterations, REDUCTION_ROUNDS)
    seed = spec.seeds[0] + seed_offset
    theta0 = None if spec.theta0 is None else np.array(spec.theta0)
    d = problem.objective.dim
    rows, worst, worst_series = [], (-1.0, "", 0), None
    for reduction in declared:
        overrides, reference, params = reduction.special(algorithm, d)
        try:
            special = _special_case(algorithm, overrides)
            target = make_algorithm(reference, problem.constants, **params)
            a = _trajectory(special, problem, iterations, seed, theta0)
            b = _trajectory(target, problem, iterations, seed, theta0)
        except ConvcheckError as error:
            return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                           reason=f"{reduction.name}: cannot be run ({error})")
        length = min(len(a), len(b))
        a, b = a[:length], b[:length]
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            rows.append(f"{reduction.name}: a run is not finite (the special case "
                        f"{'diverges' if not np.all(np.isfinite(a)) else 'converges'}, "
                        f"{reference} {'diverges' if not np.all(np.isfinite(b)) else 'does not'})")
            worst = (np.inf, reduction.name, 0)
            continue
        scale = max(np.max(np.linalg.norm(a, axis=1)), np.max(np.linalg.norm(b, axis=1)),
                    np.finfo(float).tiny)
        gaps = np.linalg.norm(a - b, axis=1) / scale
        k = int(np.argmax(gaps))
        rows.append(f"{reduction.name} ({reduction.statement}): largest relative difference "
                    f"{gaps[k]:.3g} at iterate {k}")
        if gaps[k] > worst[0]:
            worst, worst_series = (float(gaps[k]), reduction.name, k), gaps
    holds = worst[0] <= rtol
    outcome, note = judge(check, holds, "differs")
    reason = (f"{len(declared)} reduction(s) over {iterations} rounds, tolerance {rtol:g}: "
              + "; ".join(rows))
    series = {}
    if worst_series is not None:
        index = thin(worst_series.size)
        series = {"iteration": index.tolist(), "measured": worst_series[index].tolist(),
                  "bound": [rtol] * index.size,
                  "quantity": f"‖θ^k − θ_ref^k‖ / max‖θ‖ ({worst[1]})"}
    return Verdict(**base, **common, holds=holds, applicable=True, outcome=outcome,
                   reason=reason + (f"; {note}" if note else ""), tolerance=rtol,
                   max_ratio=worst[0] / rtol, worst_iteration=worst[2],
                   extra={"reductions": [r.name for r in declared]}, series=series)
