"""Ergodic nonconvex bound for asynchronous sparsified SGD with worker error memory.

Provenance: **derived here**; the proof is in ``docs/async-theory.md`` (virtual iterate +
error feedback with delays). It is not a theorem of [STALE] or of any other paper.

Setting: ``f`` is ``L``-smooth with ``f ≥ f_low``; the server applies
``θ^{t+1} = θ^t − c_t`` with ``c_t = C(e_k + α g_t)``, ``e_k ← e_k + α g_t − c_t`` for the
sender ``k``; ``g_t`` is a stochastic gradient at the model the sender read, ``τ_t ≤ τ_max``
updates earlier, with ``E[g_t | past] = ∇f(θ^{t−τ_t})`` and variance ``≤ σ²``; the compressor
is contractive, ``E‖C(p) − p‖² ≤ (1 − δ)‖p‖²``, with ``‖C(p)‖² ≤ κ‖p‖²`` (``κ = 1`` for
sparsifiers); ``W`` workers, and a worker's successive updates are at most ``H`` server updates
apart (``H ≤ τ_max + 1`` when workers never wait for a model); the schedule does not depend on
the gradients' or the compressor's randomness. With ``A_δ = 4(1 − δ)/δ²`` and

    Q = L²α² (κ τ_max² (1 + A_δ) + W H A_δ),

if ``1 − 2Lα − 4Q ≥ 0`` then

    (1/T) Σ_{t<T} E‖∇f(θ^t)‖² ≤ 2(f(θ⁰) − f_low)/(αT) + Lασ² + 2Qσ².

With ``α = c/√T`` the first two terms are ``O(1/√T)`` and do not depend on ``δ`` or ``τ_max``;
compression and staleness enter only through ``2Qσ² = O(1/T)`` and the step-size condition
(``T`` large enough): the [STALE] claim, in the form this derivation supports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convcheck.errors import InputError, check_int, check_real

SOURCE = "derived here"
CITATION = (
    "docs/async-theory.md, Theorem 1 (derived here by the virtual-iterate / error-feedback "
    "technique with bounded delays; the setting is that of [STALE] Candela et al., "
    "arXiv 1910.09466, whose own theorem is not reproduced)"
)


@dataclass(frozen=True)
class AsyncBound:
    """The bound's value, its terms, its conditions and the constants it was evaluated with.

    Attributes
    ----------
    value : float
        Right-hand side: a bound on ``(1/T) Σ_{t<T} E‖∇f(θ^t)‖²`` when :attr:`holds_conditions`.
    terms : dict
        ``optimization`` ``2(f(θ⁰) − f_low)/(αT)``, ``noise`` ``Lασ²``, ``delay_compression``
        ``2Qσ²``.
    conditions : dict of str to bool
        Each condition of the theorem and whether it holds.
    constants : dict
        Every input, ``A_delta``, ``Q`` and ``holding`` as used.
    source, citation : str
    """

    value: float
    terms: dict[str, float]
    conditions: dict[str, bool]
    constants: dict[str, Any]
    source: str = SOURCE
    citation: str = CITATION

    @property
    def holds_conditions(self) -> bool:
        return all(self.conditions.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "terms": dict(self.terms),
            "conditions": dict(self.conditions),
            "holds_conditions": self.holds_conditions,
            "constants": dict(self.constants),
            "source": self.source,
            "citation": self.citation,
        }


def memory_constant(delta: float) -> float:
    """``A_δ = 4(1 − δ)/δ²``: ``Σ_j ‖e^{(j)}‖² ≤ A_δ α² Σ_j ‖g^{(j)}‖²`` over a worker's updates."""
    delta = check_real("delta", delta, 0.0, 1.0, low_open=True)
    return 4.0 * (1.0 - delta) / delta**2


def _delay_factor(delta: float, tau_max: int, workers: int, holding: int, kappa: float) -> float:
    """``B = κ τ_max² (1 + A_δ) + W H A_δ``, so that ``Q = L²α² B``."""
    a = memory_constant(delta)
    return kappa * tau_max**2 * (1.0 + a) + workers * holding * a


def _checked(
    L: float, delta: float, tau_max: int, workers: int, holding: int | None, kappa: float
) -> tuple[float, float, int, int, int, float]:
    L = check_real("L", L, 0.0, low_open=True)
    delta = check_real("delta", delta, 0.0, 1.0, low_open=True)
    tau_max = check_int("tau_max", tau_max, 0)
    workers = check_int("workers", workers, 1)
    holding = tau_max + 1 if holding is None else check_int("holding", holding, 1)
    kappa = check_real("kappa", kappa, 0.0, low_open=True)
    return L, delta, tau_max, workers, holding, kappa


def max_step(
    L: float,
    delta: float,
    tau_max: int,
    workers: int,
    *,
    holding: int | None = None,
    kappa: float = 1.0,
) -> float:
    """The largest ``α`` with ``1 − 2Lα − 4L²α²B ≥ 0``: ``Lα* = (√(1 + 4B) − 1)/(4B)``
    (``1/(2L)`` when ``B = 0``)."""
    L, delta, tau_max, workers, holding, kappa = _checked(
        L, delta, tau_max, workers, holding, kappa
    )
    b = _delay_factor(delta, tau_max, workers, holding, kappa)
    if b == 0.0:
        return 0.5 / L
    return (math.sqrt(1.0 + 4.0 * b) - 1.0) / (4.0 * b) / L


def async_sparsified_sgd_bound(
    *,
    L: float,
    alpha: float,
    T: int,
    delta: float,
    sigma2: float,
    tau_max: int,
    workers: int,
    f0: float,
    f_low: float = 0.0,
    holding: int | None = None,
    kappa: float = 1.0,
) -> AsyncBound:
    """Evaluate Theorem 1 of ``docs/async-theory.md`` (see the module docstring).

    Parameters
    ----------
    L : float
        Smoothness of ``f``.
    alpha : float
        Step size ``α > 0``.
    T : int
        Number of server updates ``T ≥ 1`` (the average is over ``θ^0, …, θ^{T−1}``).
    delta : float
        Contraction ``δ ∈ (0, 1]`` of the compressor (``k/d`` for top-k and unscaled rand-k;
        1 for dense SGD, where the memory stays 0).
    sigma2 : float
        Variance bound ``σ² ≥ 0`` of a worker's stochastic gradient.
    tau_max : int
        Staleness bound ``τ_max ≥ 0``.
    workers : int
        Number of workers ``W``.
    f0, f_low : float
        ``f(θ⁰)`` and a certified lower bound ``f_low ≤ inf f``.
    holding : int, optional
        ``H``: most server updates between two updates of one worker (default ``τ_max + 1``,
        valid when workers never wait for a model).
    kappa : float
        ``κ`` with ``‖C(p)‖² ≤ κ‖p‖²`` (1 for sparsifiers; ``(1 + √(1−δ))²`` in general).
    """
    L, delta, tau_max, workers, holding, kappa = _checked(
        L, delta, tau_max, workers, holding, kappa
    )
    alpha = check_real("alpha", alpha, 0.0, low_open=True)
    T = check_int("T", T, 1)
    sigma2 = check_real("sigma2", sigma2, 0.0)
    f0 = check_real("f0", f0)
    f_low = check_real("f_low", f_low)
    a = memory_constant(delta)
    q = (L * alpha) ** 2 * _delay_factor(delta, tau_max, workers, holding, kappa)
    terms = {
        "optimization": 2.0 * (f0 - f_low) / (alpha * T),
        "noise": L * alpha * sigma2,
        "delay_compression": 2.0 * q * sigma2,
    }
    conditions = {
        "1 - 2 L alpha - 4 Q >= 0": 1.0 - 2.0 * L * alpha - 4.0 * q >= 0.0,
        "f0 >= f_low": f0 >= f_low,
    }
    constants = {
        "L": L,
        "alpha": alpha,
        "T": T,
        "delta": delta,
        "sigma2": sigma2,
        "tau_max": tau_max,
        "workers": workers,
        "holding": holding,
        "kappa": kappa,
        "f0": f0,
        "f_low": f_low,
        "A_delta": a,
        "Q": q,
        "max_step": max_step(L, delta, tau_max, workers, holding=holding, kappa=kappa),
    }
    return AsyncBound(sum(terms.values()), terms, conditions, constants)


def minibatch_variance_bound(objective: Any, batch_size: int) -> float:
    """A certified ``σ²`` for the minibatch gradients of a logistic-family objective.

    Worker ``m`` samples ``B`` rows of its shard uniformly with replacement and adds the exact
    regularizer gradient, so ``E‖g − ∇f_m(θ)‖² = Var(ℓ'(a_iᵀθ) a_i)/B ≤ E‖ℓ'(a_iᵀθ) a_i‖²/B
    ≤ (1/(B n_m)) Σ_{i∈S_m} ‖a_i‖²`` because ``|ℓ'| ≤ 1`` for the logistic loss. Returns the
    largest over the shards.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    if objective.family not in ("logistic", "nonconvex-logistic"):
        raise InputError("problem", objective.family, "a logistic family (|ℓ'| ≤ 1)")
    shards = objective.shards
    worst = 0.0
    for m in range(objective.n_workers):
        rows = shards.worker_rows(m)
        squares = rows.multiply(rows).sum() if hasattr(rows, "multiply") else np.sum(rows * rows)
        worst = max(worst, float(squares) / rows.shape[0])
    return worst / batch_size


@dataclass(frozen=True)
class MeanInterval:
    """Mean of i.i.d. samples with a two-sided Student-t confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float
    values: tuple[float, ...] = field(default=(), repr=False)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> MeanInterval:
    """``mean ± t_{n−1, (1+c)/2} · s/√n`` (non-finite samples make the interval infinite)."""
    from scipy import stats

    confidence = check_real("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise InputError("values", f"{x.size} samples", "at least 2 samples")
    if not np.all(np.isfinite(x)):
        return MeanInterval(math.inf, math.inf, math.inf, x.size, confidence, tuple(x.tolist()))
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    mean = float(x.mean())
    return MeanInterval(mean, mean - half, mean + half, x.size, confidence, tuple(x.tolist()))


#: Verdicts of a check of a bound in expectation against the mean over seeds.
VERDICTS = ("holds", "violated", "inconclusive")


def verdict(interval: MeanInterval, bound: float) -> str:
    """``holds`` if the whole interval is at or below the bound, ``violated`` if it is entirely
    above it, otherwise ``inconclusive``."""
    if interval.high <= bound:
        return "holds"
    if interval.low > bound:
        return "violated"
    return "inconclusive"
