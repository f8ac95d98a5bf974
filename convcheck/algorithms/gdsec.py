"""GD-SEC [GDSEC]: sparsified gradient differences with error correction.

Our specification of the paper's description (docs/algorithms.md). Round ``k``, worker ``m``:

1. ``Δ_m = g_m^k − h_m + e_m`` (``+ e_m`` only with error correction);
2. ``τ_i^k = ξ_i |θ_i^k − θ_i^{k−1}| / α`` and ``Δ̂_m = threshold_τ(Δ_m)`` (keep ``|Δ_{m,i}| > τ_i``;
   ``θ^{−1} = θ⁰``, so everything nonzero is sent at ``k = 0``);
3. ``e_m ← Δ_m − Δ̂_m`` with error correction, else ``e_m = 0``;
4. ``h_m ← h_m + β Δ̂_m``; the uplink carries ``Δ̂_m`` only (a sparse message).

Server: ``ĝ = h + (1/M) Σ_m Δ̂_m``, ``h ← h + β (1/M) Σ_m Δ̂_m``, ``θ^{k+1} = θ^k − α ĝ``,
broadcast densely. ``ξ = 0`` is GD; ``β = 1`` without error correction is EF21 with the
threshold compressor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import (
    Algorithm,
    Param,
    batch_param,
    flag_param,
    real_param,
    shared,
    step_param,
)
from convcheck.algorithms.invariants import (
    Invariant,
    Reduction,
    Round,
    magnitude,
    mean_of_rows,
    norm,
)
from convcheck.algorithms.mutation import Mutant, common, frozen, frozen_server, replaced
from convcheck.arrays import namespace
from convcheck.errors import InputError


@dataclass
class GDSECWorkers:
    """Memories ``h_m``, errors ``e_m`` ``(M, d)`` and the last model step ``θ^k − θ^{k−1}``."""

    h: Any
    errors: Any
    last_step: Any = shared()


@dataclass
class GDSECServer:
    """``θ^k``, the server memory ``h`` and the last direction ``ĝ``."""

    theta: Any
    h: Any
    g_hat: Any


def _check_xi(value: Any) -> float | np.ndarray:
    allowed = "a real number >= 0 or a list of reals >= 0 (one per coordinate)"
    try:
        xi = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("xi", value, allowed) from None
    if isinstance(value, (str, bool)) or xi.ndim > 1 or not np.all(xi >= 0) or not np.all(
            np.isfinite(xi)):
        raise InputError("xi", value, allowed)
    return float(xi) if xi.ndim == 0 else xi


def _error_not_cleared(alg: Algorithm, real: Any, w: GDSECWorkers, *args: Any) -> Any:
    """``e_m ← Δ_m`` instead of ``Δ_m − Δ̂_m``: what was sent is sent again next round."""
    sent = real(w, *args)
    if alg.error_correction:
        w.errors = w.errors + sent
    return sent


def _differences(alg: Any, r: Round) -> np.ndarray:
    """``Δ_m = g_m − h_m (+ e_m)`` from the states before the round."""
    w = r.before.workers
    return r.gradients - w.h + (w.errors if alg.error_correction else 0.0)


def _thresholds(alg: Any, r: Round) -> np.ndarray:
    return np.asarray(alg.xi) * np.abs(r.before.workers.last_step) / alg.alpha


def _sent_iff_above(alg: Any, r: Round) -> tuple[float, float]:
    """``Δ̂_{m,i} = Δ_{m,i}`` where ``|Δ_{m,i}| > τ_i``, else 0 (bit for bit)."""
    delta = _differences(alg, r)
    expected = np.where(np.abs(delta) > _thresholds(alg, r), delta, 0.0)
    return float(np.count_nonzero(expected != r.up)), 0.0


def _error_bound(alg: Any, r: Round) -> tuple[float, float]:
    """``|e_{m,i}| ≤ τ_i`` and ``e_m = Δ_m − Δ̂_m`` (0 without error correction)."""
    errors = r.after.workers.errors
    expected = _differences(alg, r) - r.up if alg.error_correction else 0.0 * errors
    excess = np.maximum(np.abs(errors) - _thresholds(alg, r), 0.0).sum()
    return float(excess + np.count_nonzero(errors != expected)), 0.0


def _direction(alg: Any, r: Round) -> tuple[float, float]:
    """``ĝ = (1/M) Σ_m g_m + (1/M) Σ_m (e_m^old − e_m^new)``: the identity of every proof."""
    change = (r.before.workers.errors - r.after.workers.errors).mean(axis=0)
    error = norm(r.after.server.g_hat - (r.gradients.mean(axis=0) + change))
    terms = (norm(r.after.server.g_hat) + norm(r.before.server.h) + magnitude(r.gradients)
             + magnitude(r.before.workers.errors) + magnitude(r.after.workers.errors))
    return error, terms


def _memories(alg: Any, r: Round) -> tuple[float, float]:
    """``h = (1/M) Σ_m h_m`` (the server's memory is the workers' mean)."""
    return mean_of_rows(r.after.server.h, r.after.workers.h)


def _step(alg: Any, r: Round) -> tuple[float, float]:
    """``θ⁺ = θ − α ĝ``, and ``θ⁺`` is broadcast."""
    expected = r.before.server.theta - alg.alpha * r.after.server.g_hat
    return norm(r.after.server.theta - expected) + norm(r.down - r.after.server.theta), 0.0


def _g_hat_from_part_of_h(alg: Algorithm, real: Any, s: GDSECServer, up_mean: Any) -> Any:
    """``ĝ = 0.9 h + mean(Δ̂)`` instead of ``h + mean(Δ̂)``."""
    h = s.h
    real(s, up_mean)
    s.g_hat = s.g_hat - 0.1 * h
    s.theta = s.theta + alg.alpha * 0.1 * h
    return s.theta


def _threshold_from_model(alg: Algorithm, real: Any, w: GDSECWorkers, gradients: Any,
                          model: Any, rng: Any) -> Any:
    """``τ = ξ|θ^k|/α`` instead of ``ξ|θ^k − θ^{k−1}|/α``."""
    step = w.last_step
    w.last_step = model
    try:
        return real(w, gradients, model, rng)
    finally:
        w.last_step = step


def _error_not_added(alg: Algorithm, real: Any, w: GDSECWorkers, *args: Any) -> Any:
    """``Δ_m = g_m − h_m`` (the error memory is kept but never added back)."""
    errors = w.errors
    w.errors = 0.0 * errors
    return real(w, *args)


class GDSEC(Algorithm):
    """GD-SEC: thresholded gradient differences with error correction."""

    name = "gd-sec"
    summary = ("GD-SEC: workers send the entries of their gradient difference above "
               "ξ|θ^k − θ^(k−1)|/α, with memories and error correction")
    parameters = (
        step_param(),
        real_param("beta", "memory weight β of h_m and h", 0.0, 1.0, 1.0, low_open=True,
                   batchable=True),
        Param("xi", "threshold weights ξ (scalar or one per coordinate); 0 is GD",
              "a real number >= 0 or a list of reals >= 0", _check_xi, 0.0, batchable=True),
        flag_param("error_correction", "keep the unsent part e_m and add it next round", True),
        batch_param(),
    )
    diagnostic_names = ("error_norm_sq", "w_norm")
    wire_format = ("sparse", "dense")
    batch_axis = True
    reductions = (
        Reduction("xi-zero-is-gd", "ξ = 0 (any β): every difference is sent, GD-SEC is GD",
                  lambda alg, d: ({"xi": 0.0}, "gd", {"alpha": alg.alpha})),
    )
    invariants = (
        Invariant("sent-iff-above-threshold", "Δ̂_m,i = Δ_m,i if |Δ_m,i| > τ_i else 0, "
                  "τ = ξ|θ^k − θ^(k−1)|/α", _sent_iff_above, exact=True),
        Invariant("error-below-threshold", "e_m = Δ_m − Δ̂_m and |e_m,i| ≤ τ_i", _error_bound,
                  exact=True),
        Invariant("direction", "ĝ = (1/M)Σ g_m + (1/M)Σ (e_m^old − e_m^new)", _direction),
        Invariant("server-memory", "h = (1/M) Σ_m h_m", _memories),
        Invariant("step", "θ⁺ = θ − α ĝ, broadcast", _step, exact=True),
    )
    mutants = (
        *common("server", sparse_uplink=True),
        frozen("h", "the workers never update h_m while the server updates h",
               "stale-worker-memory"),
        Mutant("error-not-cleared", "the error memory keeps what was sent: e_m ← Δ_m",
               worker=_error_not_cleared),
        Mutant("error-not-added-back", "Δ_m = g_m − h_m: the error memory is never added back",
               worker=_error_not_added),
        frozen_server("h", "the server memory h is never updated", "server-memory-not-updated"),
        replaced("beta", lambda alg: 1.0, "server", "beta-one-side",
                 "β is applied on the workers' side only (the server uses 1)",
                 survives="an equivalent mutant where every case has β = 1 (the server's "
                          "weight is 1 either way): a case with β < 1 catches it"),
        replaced("xi", lambda alg: alg.xi * alg.alpha**2, "worker", "threshold-times-alpha",
                 "τ = ξα|θ^k − θ^(k−1)| (scaled by α instead of 1/α)"),
        Mutant("g-hat-from-0.9h", "ĝ = 0.9·h + mean(Δ̂)", server=_g_hat_from_part_of_h),
        Mutant("threshold-from-model", "τ = ξ|θ^k|/α instead of ξ|θ^k − θ^(k−1)|/α",
               worker=_threshold_from_model),
    )

    @property
    def xi_max(self) -> float:
        """``max_i ξ_i``."""
        return float(np.max(self.xi)) if np.size(self.xi) else 0.0

    def prepare(self, d: int) -> None:
        if np.ndim(self.xi) == 1 and np.shape(self.xi)[0] != d:
            raise InputError("xi", f"a list of length {np.shape(self.xi)[0]}",
                             f"a scalar or a list of length d={d}")

    def start_workers(self, theta0: Any, workers: int, initial_gradients: Any) -> tuple:
        xp = namespace(theta0)
        zeros = xp.rows_like(theta0, workers)
        return GDSECWorkers(h=zeros, errors=xp.copy(zeros), last_step=xp.zeros_like(theta0)), None

    def start_server(self, theta0: Any, workers: int, initial_mean: Any) -> GDSECServer:
        xp = namespace(theta0)
        return GDSECServer(theta=xp.copy(theta0), h=xp.zeros_like(theta0),
                           g_hat=xp.zeros_like(theta0))

    def thresholds(self, w: GDSECWorkers) -> Any:
        """``τ^k = ξ |θ^k − θ^{k−1}| / α``, shape ``(d,)`` (per run ``(R, d)``)."""
        xp = namespace(w.last_step)
        xi = self.xi if np.ndim(self.xi) == 0 else xp.asarray(self.xi, like=w.last_step)
        return xi * xp.abs(w.last_step) / self.alpha

    def worker(self, w: GDSECWorkers, gradients: Any, model: Any, rng: Any) -> Any:
        xp = namespace(gradients)
        differences = gradients - w.h
        if self.error_correction:
            differences = differences + w.errors
        sent = xp.threshold(differences, self.thresholds(w))
        if self.error_correction:
            w.errors = differences - sent
        w.h = w.h + self.beta * sent
        return sent

    def server(self, s: GDSECServer, up_mean: Any) -> Any:
        s.g_hat = s.h + up_mean
        s.h = s.h + self.beta * up_mean
        s.theta = s.theta - self.alpha * s.g_hat
        return s.theta

    def receive(self, w: GDSECWorkers, model: Any, down: Any) -> Any:
        w.last_step = down - model
        return down

    def lmi_model(self, d: int) -> tuple[str | None, dict[str, Any]]:
        if self.batch_size is not None:
            return None, {"reason": "minibatch gradients (no sure bound)"}
        return "gd-sec", {"alpha": self.alpha, "beta": self.beta, "xi": self.xi_max,
                          "error_correction": self.error_correction}

    def coordinate_thresholds(self, d: int) -> np.ndarray:
        """``ξ_i`` for every coordinate ``i < d`` (a scalar ξ repeated)."""
        return np.broadcast_to(np.asarray(self.xi, dtype=float), (d,)).copy()

    def lmi_state(self, s: GDSECServer, w: GDSECWorkers, gradients: Any, optimum: Any,
                  optimum_gradients: Any) -> dict:
        """``x_prev = θ^{k−1} − θ*``, ``h_m = α(h_m − ∇f_m(θ*))``, ``e_m = α e_m``."""
        return {"x_prev": s.theta - w.last_step - optimum,
                "h": self.alpha * (w.h - optimum_gradients), "e": self.alpha * w.errors}

    def diagnostics(self, s: GDSECServer, w: GDSECWorkers, gradients: Any) -> tuple[float, ...]:
        """``(1/M) Σ ‖e_m‖²`` and ``‖w‖ = ‖(α/M) Σ_m e_m‖``."""
        xp = namespace(w.errors)
        return (xp.mean_square_norm(w.errors),
                xp.norm(self.alpha * xp.mean_rows(w.errors)))
