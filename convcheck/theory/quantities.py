"""Measured quantities of a run, computed so that a bound check can only err on the safe side.

The reference optimum ``θ̂`` of a problem is certified, not exact (docs/algorithms.md §1):
``f_low ≤ f* ≤ f(θ̂)`` and, for μ-strongly convex ``f``, ``‖θ̂ − θ*‖ ≤ r := ‖∇f(θ̂)‖/μ``. So

* a measured left-hand side is an **upper** estimate of the true one: ``f(θ^k) − f_low ≥
  f(θ^k) − f*`` and ``(‖θ^k − θ̂‖ + r)² ≥ ‖θ^k − θ*‖²``;
* a start value on a right-hand side is a **lower** estimate: ``f(θ⁰) − f(θ̂) ≤ f(θ⁰) − f*`` and
  ``max(‖θ⁰ − θ̂‖ − r, 0)² ≤ ‖θ⁰ − θ*‖²``.

A check that passes with these passes for the exact optimum too. For convex problems without
``μ > 0`` the distance to ``θ*`` is not certified (``r = 0``, flagged ``radius_certified``).
Nonconvex problems use ``f_low = 0`` (no ``θ*``).

Floors (the ``atol`` of a check): nothing below the accuracy of the reference optimum or a
few ulps of the numbers a quantity is computed from can be resolved, so

* values: ``(f(θ̂) − f_low) + F·ε·max(1, |f(θ⁰)|, |f(θ̂)|)`` (a converged run measures up to the
  certified gap of ``θ̂`` plus round-off);
* squared distance: ``(2r + F·ε·(max(1, ‖θ̂‖)/(αμ) + g/μ))²`` with
  ``g = max(1, L‖θ̂‖, max_m‖∇f_m(θ̂)‖)`` (``θ̂`` is within ``r`` of ``θ*``, the measured upper
  estimate adds ``r`` again; the rounding of each step accumulates over the ``≈ 1/(αμ)`` steps
  of a contraction, and a gradient computed to ``F·ε·g`` moves the fixed point by ``F·ε·g/μ``);
* squared gradient norms: ``(F·ε·g)²``;

with ``F = 2¹⁰`` (:data:`FLOOR_ULPS`) and ``ε`` the machine epsilon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcheck.engine.trace import Run
from convcheck.errors import InputError
from convcheck.problem import Problem

#: Ulps in a floating-point floor.
FLOOR_ULPS = 2.0**10
EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class Reference:
    """What the problem's certified optimum says about ``f*`` and ``θ*``.

    Attributes
    ----------
    f_low : float
        Certified ``f_low ≤ f*``.
    f_hat : float or None
        ``f(θ̂) ≥ f*`` (None for nonconvex problems).
    theta_hat : ndarray or None
    radius : float
        ``r ≥ ‖θ̂ − θ*‖`` (0 when not certified).
    radius_certified : bool
    gradient_scale : float
        ``g = max(1, L‖θ̂‖, max_m ‖∇f_m(θ̂)‖)``, the scale of gradient round-off.
    """

    f_low: float
    f_hat: float | None
    theta_hat: np.ndarray | None
    radius: float
    radius_certified: bool
    gradient_scale: float

    @classmethod
    def of(cls, problem: Problem) -> Reference:
        optimum, constants = problem.optimum, problem.constants
        if optimum.theta is None:
            return cls(optimum.f_low, None, None, 0.0, False, max(1.0, constants.L))
        certified = constants.mu > 0 and optimum.grad_norm is not None
        radius = optimum.grad_norm / constants.mu if certified else 0.0
        worker = problem.objective.worker_gradients(optimum.theta)
        scale = max(
            1.0,
            constants.L * float(np.linalg.norm(optimum.theta)),
            float(np.sqrt(np.max(np.sum(worker**2, axis=1)))),
        )
        return cls(optimum.f_low, optimum.value, optimum.theta, radius, certified, scale)


def column(run: Run, name: str) -> np.ndarray:
    """A trace column as float64; a clear error when the algorithm does not record it."""
    if name not in run.columns:
        raise InputError("run", f"trace without {name!r}", f"a trace with the column {name!r}")
    return np.asarray(run.columns[name], dtype=np.float64)


def running_mean(values: np.ndarray) -> np.ndarray:
    """``out[T] = (1/T) Σ_{k<T} values[k]`` for ``T ≥ 1``; ``out[0] = nan`` (undefined)."""
    out = np.full(values.shape, np.nan)
    out[1:] = np.cumsum(values)[:-1] / np.arange(1, values.shape[0])
    return out


def gap_upper(run: Run, ref: Reference) -> np.ndarray:
    """``f(θ^k) − f_low ≥ f(θ^k) − f*``."""
    return column(run, "value") - ref.f_low


def start_gap_lower(run: Run, ref: Reference) -> float:
    """``f(θ⁰) − f(θ̂) ≤ f(θ⁰) − f*`` (``f(θ⁰) − f_low`` when there is no ``θ̂``)."""
    start = float(column(run, "value")[0])
    return start - (ref.f_hat if ref.f_hat is not None else ref.f_low)


def start_gap_upper(run: Run, ref: Reference) -> float:
    """``f(θ⁰) − f_low``: the quantity the nonconvex theorems use (valid for any ``f_low ≤ f*``)."""
    return float(column(run, "value")[0]) - ref.f_low


def distance_sq_upper(run: Run, ref: Reference) -> np.ndarray:
    """``(‖θ^k − θ̂‖ + r)² ≥ ‖θ^k − θ*‖²``."""
    return (np.sqrt(column(run, "dist_sq")) + ref.radius) ** 2


def start_distance_sq_lower(run: Run, ref: Reference) -> float:
    """``max(‖θ⁰ − θ̂‖ − r, 0)² ≤ ‖θ⁰ − θ*‖²``."""
    return max(float(np.sqrt(column(run, "dist_sq")[0])) - ref.radius, 0.0) ** 2


def value_floor(run: Run, ref: Reference) -> float:
    scale = max(1.0, abs(float(column(run, "value")[0])), abs(ref.f_hat or 0.0))
    certified_gap = 0.0 if ref.f_hat is None else ref.f_hat - ref.f_low
    return certified_gap + FLOOR_ULPS * EPS * scale


def gradient_sq_floor(ref: Reference) -> float:
    return (FLOOR_ULPS * EPS * ref.gradient_scale) ** 2


def distance_sq_floor(ref: Reference, alpha: float, mu: float) -> float:
    if ref.theta_hat is None or mu <= 0:
        return 0.0
    iterate = max(1.0, float(np.linalg.norm(ref.theta_hat)))
    rounding = FLOOR_ULPS * EPS * (iterate / (alpha * mu) + ref.gradient_scale / mu)
    return (2.0 * ref.radius + rounding) ** 2
