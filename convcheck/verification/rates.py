"""Rate checks on quadratic instances (:mod:`convcheck.theory.quadratic`).

* ``gd/exact-rate`` (two-sided) — GD on least squares moves exactly as
  ``θ^k − θ* = (I − αH)^k(θ⁰ − θ*)``; the rate fitted to the run's ``‖θ^k − θ̂‖²`` must match
  the rate fitted alike to that exact trajectory (whose asymptote is ``max_i (1 − αλ_i)²``)
  within a relative tolerance on the convergence speed ``−log(rate)`` (default 1%): a run
  2× slower, or faster (a step ×1.3), fails.
* ``lower/slowest-direction`` (lower side) — ``‖θ^k − θ*‖`` must stay above the envelope of
  :func:`convcheck.theory.quadratic.slowest_direction_envelope`: along the slowest
  eigen-direction no algorithm of the GD / GD-SEC / EF / EF21 / bidirectional family converges
  faster than ``1 − αμ`` up to what its memories carry. Beside an LMI certificate (the upper
  side), "slower than certified" and "faster than possible" both fail.
"""

from __future__ import annotations

import math

import numpy as np

from convcheck.errors import ConvcheckError
from convcheck.verification.cases import Case, CheckSpec
from convcheck.verification.names import EXACT_RATE, SLOWEST_DIRECTION, SPECIAL
from convcheck.verification.verdict import Verdict, base_fields, judge, run_start, thin

#: Default relative tolerance on the convergence speed of ``gd/exact-rate``.
SPEED_TOL = 0.01
EXACT_SOURCE, EXACT_CITATION = SPECIAL[EXACT_RATE].source, SPECIAL[EXACT_RATE].citation
LOWER_SOURCE = SPECIAL[SLOWEST_DIRECTION].source
LOWER_CITATION = SPECIAL[SLOWEST_DIRECTION].citation


def _seed_error(base: dict, common: dict, seed: int, error: Exception) -> Verdict:
    return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                   reason=f"cannot be evaluated on seed {seed}: {error}")


def exact_rate(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """``gd/exact-rate`` on every run; the verdict of the run farthest from the exact rate."""
    from convcheck.algorithms.gd import GD
    from convcheck.theory import fit_linear_rate
    from convcheck.theory import quantities as q
    from convcheck.theory.quadratic import gd_distances, spectrum

    base = base_fields(check, case, problem, algorithm, runs)
    common = {"source": EXACT_SOURCE, "citation": EXACT_CITATION}
    applicable = isinstance(algorithm, GD)
    if not applicable and check.kind == "positive":
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason=f"not applicable: {check.bound} is about gd, not {algorithm.name}")
    tol = SPEED_TOL if check.tolerance is None else check.tolerance
    ref = q.Reference.of(problem)
    alpha = float(algorithm.alpha)
    try:
        spec = spectrum(problem)
        if ref.theta_hat is None or spec.eigenvalues[0] <= 0:
            raise ConvcheckError("no unique minimizer (λ_min(H) ≤ 0)")
    except ConvcheckError as error:
        return Verdict(**base, **common, holds=None, applicable=False, outcome="error",
                       reason=f"cannot be evaluated: {error}")
    floor = q.distance_sq_floor(ref, alpha, float(spec.eigenvalues[0]))
    fits = []
    for seed, run in zip(base["seeds"], runs, strict=True):
        iterations = q.column(run, "iteration")
        measured = q.column(run, "dist_sq")
        predicted = gd_distances(spec, run_start(run, problem.objective.dim), ref.theta_hat,
                                 alpha, iterations)
        above = np.flatnonzero(np.isfinite(measured) & (measured > 4.0 * floor))
        stop = int(above[-1]) + 1 if above.size else 0
        try:
            fitted = fit_linear_rate(measured[:stop], iterations[:stop], floor=4.0 * floor)
            window = (iterations >= fitted.start) & (iterations <= fitted.stop)
            exact = fit_linear_rate(predicted[window], iterations[window], burn_in=0.0,
                                    floor=0.0)
        except ConvcheckError as error:
            return _seed_error(base, common, seed, error)
        speed, exact_speed = -math.log(fitted.rate), -math.log(exact.rate)
        if exact_speed == 0:
            return _seed_error(base, common, seed, ConvcheckError("the exact rate is 1"))
        deviation = speed / exact_speed - 1.0
        fits.append((abs(deviation), deviation, fitted, exact, iterations, measured, predicted))
    _, deviation, fitted, exact, iterations, measured, predicted = max(fits, key=lambda f: f[0])
    holds = all(f[0] <= tol for f in fits)
    faster = (deviation > 0) == (exact.rate < 1)
    failure = "too-fast" if faster else "too-slow"
    spectral = spec.gd_rate(alpha)
    reason = (f"fitted rate {fitted.rate:.6g} per iteration on ‖θ^k − θ̂‖² vs exact "
              f"{exact.rate:.6g} (iterations {fitted.start}–{fitted.stop}; "
              f"max_i|1 − αλ_i|² = {spectral**2:.6g}): "
              f"speed −log(rate) off by {100 * deviation:+.3g}% (tolerance ±{100 * tol:g}%)")
    if not holds:
        reason += f": {failure.replace('-', ' ')}"
    if not applicable:
        reason = f"not applicable ({algorithm.name} is not gd); evaluated anyway: " + reason
    outcome, note = judge(check, holds, failure)
    index = thin(iterations.size)
    return Verdict(
        **base, **common, holds=holds, applicable=applicable,
        reason=reason + (f"; {note}" if note else ""), outcome=outcome,
        max_ratio=fitted.rate / exact.rate, tolerance=tol,
        fitted_rate=fitted.rate, theory_rate=exact.rate, rate_kind="linear",
        constants={"alpha": alpha, "lambda_min": float(spec.eigenvalues[0]),
                   "lambda_max": float(spec.eigenvalues[-1]), "gd_rate": spectral,
                   "hessian_asymmetry": spec.asymmetry, "floor": floor},
        extra={"speed_deviation": deviation, "fit": fitted.as_dict(), "exact_fit": exact.as_dict()},
        series={"iteration": iterations[index].tolist(), "measured": measured[index].tolist(),
                "bound": predicted[index].tolist(),
                "quantity": "‖θ^k − θ̂‖² (bound: exact GD trajectory from the spectrum)"},
    )


def slowest_direction(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> Verdict:
    """``lower/slowest-direction`` on every run; the verdict of the run closest to (or
    farthest below) its envelope."""
    from convcheck.theory import RTOL, fit_linear_rate
    from convcheck.theory.quadratic import slowest_direction_envelope

    base = base_fields(check, case, problem, algorithm, runs)
    common = {"source": LOWER_SOURCE, "citation": LOWER_CITATION}
    rtol = RTOL if check.tolerance is None else check.tolerance
    results = []
    for seed, run in zip(base["seeds"], runs, strict=True):
        try:
            envelope = slowest_direction_envelope(run, problem, algorithm,
                                                  run_start(run, problem.objective.dim))
        except ConvcheckError as error:
            return _seed_error(base, common, seed, error)
        resolved = envelope.lower > 0
        ratio = np.zeros(envelope.lower.size)
        ratio[resolved] = envelope.lower[resolved] / (envelope.distance[resolved] + envelope.floor)
        ratio[~np.isfinite(envelope.distance)] = 0.0  # a diverged run is not faster than possible
        results.append((float(np.max(ratio)), int(np.argmax(ratio)), envelope))
    worst, where, envelope = max(results, key=lambda r: r[0])
    holds = all(r[0] <= 1.0 + rtol for r in results)
    iterations = envelope.iterations
    reason = (f"max lower envelope/‖θ^k − θ*‖ = {worst:.4g} at iteration {iterations[where]} "
              f"(envelope resolved until iteration {envelope.constants['resolved_until']}; "
              f"lower rate (1 − αμ)² = {envelope.rate**2:.6g} per iteration on ‖θ − θ*‖²)")
    if not holds:
        reason += ": faster than possible"
    outcome, note = judge(check, holds, "violated")
    measured = (envelope.distance - envelope.constants["radius"]) ** 2
    try:
        fitted = fit_linear_rate(measured, iterations.astype(float),
                                 floor=4.0 * envelope.floor**2).rate
    except ConvcheckError:
        fitted = None
    index = thin(iterations.size)
    return Verdict(
        **base, **common, holds=holds, applicable=True,
        reason=reason + (f"; {note}" if note else ""), outcome=outcome,
        max_ratio=worst, worst_iteration=int(iterations[where]), tolerance=rtol,
        fitted_rate=fitted, theory_rate=envelope.rate**2, rate_kind="linear",
        constants=envelope.constants, extra={"floor": envelope.floor},
        series={"iteration": iterations[index].tolist(),
                "measured": envelope.distance[index].tolist(),
                "bound": np.maximum(envelope.lower[index], 0.0).tolist(),
                "quantity": "‖θ^k − θ*‖ (upper estimate) above its lower envelope"},
    )
