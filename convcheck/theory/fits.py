"""Empirical rates of a measured quantity: linear (geometric) and sublinear (power law).

* :func:`fit_linear_rate` — ``q_k ≈ C·r^k``: a robust slope of ``log q_k`` against ``k`` after a
  burn-in and above a floor, ``r = exp(slope)`` per iteration, with a confidence interval. For a
  squared distance, compare ``r`` with ``ρ²`` of a certificate.
* :func:`fit_power_law` — ``q_T ≈ C·T^p``: the slope ``p`` of ``log q_T`` against ``log T`` on
  log-spaced points, with a confidence interval (e.g. ``p ≈ −1`` for an ``O(1/T)`` running mean).

Both use Theil–Sen by default (the median of pairwise slopes, robust to the plateaus and kinks
of real traces; interval from Kendall's τ, :func:`scipy.stats.theilslopes`) or ordinary least
squares (interval from the t distribution, :func:`scipy.stats.linregress`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from convcheck.errors import InputError, check_choice, check_int, check_real

METHODS = ("theil-sen", "least-squares")
#: At most this many points enter a fit (evenly or log-spaced), so Theil–Sen's O(n²) stays small.
MAX_POINTS = 2000


@dataclass(frozen=True)
class RateFit:
    """A fitted rate.

    Attributes
    ----------
    kind : {"linear", "power"}
    rate : float
        Linear: the factor per iteration ``r = exp(slope)``. Power: the exponent ``p``.
    low, high : float
        Confidence interval of ``rate``.
    confidence : float
    slope, intercept : float
        Of the fitted line (``log q`` against ``k`` or ``log T``).
    start, stop : int
        First and last iteration used.
    points : int
        Number of points used.
    method : str
    """

    kind: str
    rate: float
    low: float
    high: float
    confidence: float
    slope: float
    intercept: float
    start: int
    stop: int
    points: int
    method: str

    def as_dict(self) -> dict:
        return asdict(self)


def _line(x: np.ndarray, y: np.ndarray, method: str, confidence: float):
    """``(slope, intercept, slope_low, slope_high)``."""
    from scipy import stats

    if method == "theil-sen":
        slope, intercept, low, high = stats.theilslopes(y, x, alpha=confidence)
        return float(slope), float(intercept), float(low), float(high)
    fit = stats.linregress(x, y)
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 2)) * fit.stderr
    return float(fit.slope), float(fit.intercept), fit.slope - half, fit.slope + half


def _prepare(values, iterations, field: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    k = (
        np.arange(y.size, dtype=np.float64)
        if iterations is None
        else np.asarray(iterations, dtype=np.float64).reshape(-1)
    )
    if k.shape != y.shape:
        raise InputError("iterations", f"length {k.size}", f"length {y.size} (one per value)")
    return k, y


def fit_linear_rate(
    values: np.ndarray,
    iterations: np.ndarray | None = None,
    *,
    burn_in: float = 0.1,
    floor: float | None = None,
    method: str = "theil-sen",
    confidence: float = 0.95,
    min_points: int = 5,
) -> RateFit:
    """Fit ``values_k ≈ C·r^k``.

    Parameters
    ----------
    values : array of shape (n,)
        The measured quantity per iteration (e.g. ``dist_sq`` or ``suboptimality``).
    iterations : array of shape (n,), optional
        Default ``0..n−1``.
    burn_in : float
        Fraction of the run left out at the start (``[0, 1)``).
    floor : float, optional
        Points are used up to the last one above ``floor`` (default ``2¹⁰·ε·max(values)``:
        below it a trace is round-off).
    method : {"theil-sen", "least-squares"}
    confidence : float
        Level of the interval, in ``(0, 1)``.
    min_points : int
        Fewer usable points raise.

    Raises
    ------
    InputError
        Too few positive finite points above the floor after the burn-in.
    """
    method = check_choice("method", method, METHODS)
    burn_in = check_real("burn_in", burn_in, 0.0, 1.0, high_open=True)
    confidence = check_real("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    min_points = check_int("min_points", min_points, 3)
    k, y = _prepare(values, iterations, "values")
    finite = np.isfinite(y) & (y > 0)
    if not finite.any():
        raise InputError("values", "no positive finite value", "a trace with positive values")
    if floor is None:
        floor = 2.0**10 * np.finfo(float).eps * float(np.max(y[finite]))
    above = np.flatnonzero(finite & (y > floor))
    start = int(math.ceil(burn_in * y.size))
    stop = int(above[-1]) + 1 if above.size else 0
    use = np.arange(start, stop)
    use = use[finite[use] & (y[use] > floor)] if use.size else use
    if use.size < min_points:
        raise InputError(
            "values",
            f"{use.size} usable points (after burn-in {start}, above floor {floor:.3g})",
            f"at least {min_points} positive finite points",
        )
    use = _thin(use, MAX_POINTS, geometric=False)
    slope, intercept, low, high = _line(k[use], np.log(y[use]), method, confidence)
    return RateFit(
        "linear",
        math.exp(slope),
        math.exp(low),
        math.exp(high),
        confidence,
        slope,
        intercept,
        int(k[use[0]]),
        int(k[use[-1]]),
        int(use.size),
        method,
    )


def fit_power_law(
    values: np.ndarray,
    iterations: np.ndarray | None = None,
    *,
    start: int | None = None,
    method: str = "theil-sen",
    confidence: float = 0.95,
    min_points: int = 5,
) -> RateFit:
    """Fit ``values_T ≈ C·T^p`` on iterations ``T ≥ start`` (``T > 0``).

    Parameters
    ----------
    values : array of shape (n,)
        E.g. a running mean ``(1/T)Σ_{k<T}‖∇f(θ^k)‖²`` (``nan`` at ``T = 0`` is skipped).
    iterations : array of shape (n,), optional
        Default ``0..n−1``.
    start : int, optional
        First ``T`` used (default ``max(1, n/10)``: the pre-asymptotic start is left out).
    method, confidence, min_points
        As in :func:`fit_linear_rate`. Points are log-spaced, so each decade weighs the same.
    """
    method = check_choice("method", method, METHODS)
    confidence = check_real("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    min_points = check_int("min_points", min_points, 3)
    k, y = _prepare(values, iterations, "values")
    start = max(1, y.size // 10) if start is None else check_int("start", start, 1)
    use = np.flatnonzero((k >= start) & np.isfinite(y) & (y > 0))
    if use.size < min_points:
        raise InputError(
            "values",
            f"{use.size} usable points with T >= {start}",
            f"at least {min_points} positive finite points",
        )
    use = _thin(use, MAX_POINTS, geometric=True, positions=k)
    slope, intercept, low, high = _line(np.log(k[use]), np.log(y[use]), method, confidence)
    return RateFit(
        "power",
        slope,
        low,
        high,
        confidence,
        slope,
        intercept,
        int(k[use[0]]),
        int(k[use[-1]]),
        int(use.size),
        method,
    )


def _thin(
    use: np.ndarray, limit: int, *, geometric: bool, positions: np.ndarray | None = None
) -> np.ndarray:
    """At most ``limit`` of the indices ``use``: evenly spaced, or log-spaced in ``positions``."""
    if use.size <= limit and not geometric:
        return use
    if not geometric:
        return use[np.unique(np.linspace(0, use.size - 1, limit).round().astype(np.int64))]
    where = positions[use]
    targets = np.geomspace(where[0], where[-1], min(limit, use.size))
    picked = np.unique(np.searchsorted(where, targets).clip(0, use.size - 1))
    return use[picked]
