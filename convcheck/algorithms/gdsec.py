"""GD-SEC [GDSEC]: sparsified gradient differences with error correction.

THEORY.md §3 (our specification of the paper's description). Per round ``k``:

1. ``Δ_m = g_m^k − h_m + e_m``;
2. ``τ_i^k = ξ_i |θ_i^k − θ_i^{k−1}| / α`` and ``Δ̂_m = threshold_τ(Δ_m)`` (``θ^{−1} = θ⁰``, so
   everything nonzero is sent at ``k = 0``);
3. ``e_m ← Δ_m − Δ̂_m`` with error correction, else ``e_m = 0``;
4. ``h_m ← h_m + β Δ̂_m``; the uplink carries ``Δ̂_m`` only;
5. server: ``ĝ = h + (1/M) Σ_m Δ̂_m``, ``h ← h + β (1/M) Σ_m Δ̂_m``, ``θ^{k+1} = θ^k − α ĝ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import (
    DENSE,
    Algorithm,
    Messages,
    check_step,
    mean_square_norm,
    worker_mean,
)
from convcheck.compressors import Threshold
from convcheck.errors import InputError, check_real


@dataclass
class GDSECState:
    """``θ^k``, ``θ^{k−1}``, worker memories ``h_m`` and errors ``e_m`` ``(M, d)``, server ``h``."""

    theta: np.ndarray
    theta_prev: np.ndarray
    h_workers: np.ndarray
    h_server: np.ndarray
    errors: np.ndarray
    g_hat: np.ndarray


class GDSEC(Algorithm):
    """GD-SEC.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    beta : float
        Memory weight ``β ∈ (0, 1]``.
    xi : float or array of shape (d,)
        Threshold weights ``ξ ≥ 0`` (scalar or per coordinate); ``ξ = 0`` is GD.
    error_correction : bool
        Keep the unsent part ``e_m`` and add it to the next difference.
    """

    name = "gd-sec"
    diagnostic_names = ("error_norm_sq", "w_norm")

    def __init__(
        self,
        alpha: float,
        beta: float = 1.0,
        xi: float | np.ndarray = 0.0,
        *,
        error_correction: bool = True,
    ) -> None:
        self.alpha = check_step(alpha)
        self.beta = check_real("beta", beta, 0.0, 1.0, low_open=True)
        xi_values = np.asarray(xi, dtype=np.float64) if not isinstance(xi, str) else None
        if xi_values is None or xi_values.ndim > 1 or not np.all(xi_values >= 0):
            raise InputError("xi", xi, "a real number >= 0 or a 1-D array of reals >= 0")
        self.xi = xi_values
        if not isinstance(error_correction, (bool, np.bool_)):
            raise InputError("error_correction", error_correction, "true or false")
        self.error_correction = bool(error_correction)

    @property
    def xi_max(self) -> float:
        return float(self.xi.max()) if self.xi.size else 0.0

    def start(self, theta0: np.ndarray, oracle: Any, rng: np.random.Generator) -> tuple:
        d, workers = theta0.shape[0], oracle.objective.n_workers
        if self.xi.ndim == 1 and self.xi.shape[0] != d:
            raise InputError("xi", f"array of length {self.xi.shape[0]}", f"length d={d}")
        zeros = np.zeros((workers, d))
        state = GDSECState(
            theta=theta0.copy(),
            theta_prev=theta0.copy(),
            h_workers=zeros,
            h_server=np.zeros(d),
            errors=zeros.copy(),
            g_hat=np.zeros(d),
        )
        return state, None

    def thresholds(self, state: GDSECState) -> np.ndarray:
        """``τ^k = ξ |θ^k − θ^{k−1}| / α``, shape ``(d,)``."""
        return self.xi * np.abs(state.theta - state.theta_prev) / self.alpha

    def step(self, state: GDSECState, oracle: Any, rng: np.random.Generator) -> Messages:
        gradients = oracle.worker_gradients(state.theta)
        differences = gradients - state.h_workers
        if self.error_correction:
            differences += state.errors
        compressor = Threshold(self.thresholds(state))
        sent = compressor.compress(differences)
        if self.error_correction:
            np.subtract(differences, sent, out=state.errors)
        state.h_workers += self.beta * sent
        mean_sent = worker_mean(sent)
        state.g_hat = state.h_server + mean_sent
        state.h_server += self.beta * mean_sent
        state.theta_prev = state.theta
        state.theta = state.theta - self.alpha * state.g_hat
        return Messages(sent, compressor, state.theta, DENSE)

    def diagnostics(self, state: GDSECState, oracle: Any) -> tuple[float, ...]:
        """``(1/M) Σ ‖e_m‖²`` and ``‖w‖ = ‖(α/M) Σ_m e_m‖``."""
        w = self.alpha * worker_mean(state.errors)
        return mean_square_norm(state.errors), float(np.linalg.norm(w))

    def params(self) -> dict[str, Any]:
        xi: Any = float(self.xi) if self.xi.ndim == 0 else self.xi.tolist()
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "xi": xi,
            "error_correction": self.error_correction,
        }
