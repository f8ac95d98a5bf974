"""GD-SEC [GDSEC] on tensors (THEORY.md §3; our specification of the paper's description).

1. ``Δ_m = g_m^k − h_m + e_m``;
2. ``τ^k = ξ |θ^k − θ^{k−1}| / α`` (per coordinate, float64) and ``Δ̂_m = threshold_τ(Δ_m)``;
3. ``e_m ← Δ_m − Δ̂_m`` with error correction (else ``e_m = 0``);
4. ``h_m ← h_m + β Δ̂_m``; the uplink carries ``Δ̂_m``;
5. server: ``ĝ = h + (1/M) Σ_m Δ̂_m``; ``h ← h + β (1/M) Σ_m Δ̂_m``; ``θ^{k+1} = θ^k − α ĝ``,
   broadcast densely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from convcheck.algorithms import GDSEC as Reference
from convcheck.errors import InputError
from convcheck.torch.algorithms.base import Oracle, TorchAlgorithm, mean_square_norm
from convcheck.torch.compressors import DENSE, SPARSE, threshold
from convcheck.torch.ledger import Messages

Tensor = torch.Tensor


@dataclass
class GDSECState:
    """``θ^k``, ``θ^{k−1}``, worker ``h_m`` and ``e_m`` ``(M, D)``, server ``h`` and ``ĝ``."""

    theta: Tensor
    theta_prev: Tensor
    h_workers: Tensor
    h_server: Tensor
    errors: Tensor
    g_hat: Tensor


class GDSEC(TorchAlgorithm):
    """GD-SEC (parameters validated by the numpy :class:`convcheck.algorithms.GDSEC`).

    Parameters
    ----------
    alpha : float
    beta : float in (0, 1]
    xi : float or array of shape (D,)
    error_correction : bool
    """

    name = "gd-sec"
    State = GDSECState

    def __init__(
        self, alpha: float, beta: float = 1.0, xi: Any = 0.0, *, error_correction: bool = True
    ) -> None:
        self.reference = Reference(alpha, beta, xi, error_correction=error_correction)
        self.alpha, self.beta = self.reference.alpha, self.reference.beta
        self.error_correction = self.reference.error_correction

    def start(self, theta0: Tensor, oracle: Oracle, generator: torch.Generator) -> tuple:
        d, xi = theta0.shape[0], self.reference.xi
        if xi.ndim == 1 and xi.shape[0] != d:
            raise InputError("xi", f"array of length {xi.shape[0]}", f"length D={d}")
        zeros = theta0.new_zeros((oracle.workers, d))
        state = GDSECState(
            theta=theta0.clone(),
            theta_prev=theta0.clone(),
            h_workers=zeros,
            h_server=torch.zeros_like(theta0),
            errors=zeros.clone(),
            g_hat=torch.zeros_like(theta0),
        )
        return state, None

    def thresholds(self, theta: Tensor, theta_prev: Tensor) -> Tensor:
        """``τ = ξ |θ^k − θ^{k−1}| / α`` in float64, shape ``(D,)``."""
        xi = torch.as_tensor(self.reference.xi, dtype=torch.float64, device=theta.device)
        return xi * (theta - theta_prev).abs().to(torch.float64) / self.alpha

    def worker(
        self, h_workers: Tensor, errors: Tensor, gradients: Tensor, tau: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Rows ``(Δ̂_m, h_m', e_m')`` from rows ``(h_m, e_m, g_m)`` and ``τ``."""
        differences = gradients - h_workers
        if self.error_correction:
            differences = differences + errors
        sent = threshold(differences, tau)
        if self.error_correction:
            errors = differences - sent
        return sent, h_workers + self.beta * sent, errors

    def server(self, h_server: Tensor, mean_sent: Tensor) -> tuple[Tensor, Tensor]:
        """``(ĝ, h')`` from ``h`` and ``(1/M) Σ_m Δ̂_m``."""
        return h_server + mean_sent, h_server + self.beta * mean_sent

    def step(self, state: GDSECState, oracle: Oracle, generator: torch.Generator) -> Messages:
        gradients = oracle(state.theta)
        tau = self.thresholds(state.theta, state.theta_prev)
        sent, state.h_workers, state.errors = self.worker(
            state.h_workers, state.errors, gradients, tau
        )
        state.g_hat, state.h_server = self.server(state.h_server, sent.mean(dim=0))
        state.theta_prev = state.theta
        state.theta = state.theta - self.alpha * state.g_hat
        return Messages.of(sent, SPARSE, state.theta, DENSE)

    def diagnostics(self, state: GDSECState) -> dict[str, float]:
        """``(1/M) Σ ‖e_m‖²`` and ``‖w‖ = ‖(α/M) Σ_m e_m‖``."""
        w = self.alpha * state.errors.mean(dim=0)
        return {
            "error_norm_sq": mean_square_norm(state.errors),
            "w_norm": float(w.double().norm()),
        }

    def params(self) -> dict[str, Any]:
        return self.reference.params()
