"""Bidirectional top-k [BIDIR] on tensors (rules read from the authors' public code).

Worker: ``a_m = e_m + α g_m``; ``u_m = TopK_up(a_m)``; ``e_m ← a_m − u_m``.
Server: ``w = δ + (1/M) Σ_m u_m``; ``p = TopK_down(w)``; ``δ ← w − p``; broadcast ``p``;
``θ^{k+1} = θ^k − p``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from convcheck.algorithms import BidirectionalTopK as Reference
from convcheck.torch.algorithms.base import Oracle, TorchAlgorithm, mean_square_norm
from convcheck.torch.compressors import to_torch
from convcheck.torch.ledger import Messages

Tensor = torch.Tensor


@dataclass
class BidirectionalState:
    theta: Tensor
    errors: Tensor
    server_error: Tensor


class BidirectionalTopK(TorchAlgorithm):
    """Top-k up and down, each with its error memory (parameters as the numpy class).

    Parameters
    ----------
    alpha : float
    k_up, k_down, ratio_up, ratio_down
        Exactly one of ``k_*`` / ``ratio_*`` per direction.
    """

    name = "bidir-topk"
    State = BidirectionalState

    def __init__(
        self,
        alpha: float,
        *,
        k_up: int | None = None,
        k_down: int | None = None,
        ratio_up: float | None = None,
        ratio_down: float | None = None,
    ) -> None:
        self.reference = Reference(
            alpha, k_up=k_up, k_down=k_down, ratio_up=ratio_up, ratio_down=ratio_down
        )
        self.alpha = self.reference.alpha
        self.up, self.down = to_torch(self.reference.up), to_torch(self.reference.down)

    def start(self, theta0: Tensor, oracle: Oracle, generator: torch.Generator) -> tuple:
        errors = theta0.new_zeros((oracle.workers, theta0.shape[0]))
        return BidirectionalState(theta0.clone(), errors, torch.zeros_like(theta0)), None

    def worker(self, errors: Tensor, gradients: Tensor) -> tuple[Tensor, Tensor]:
        """Rows ``(u_m, e_m')`` from rows ``(e_m, g_m)``."""
        accumulated = errors + self.alpha * gradients
        sent = self.up.compress(accumulated)
        return sent, accumulated - sent

    def server(self, server_error: Tensor, mean_sent: Tensor) -> tuple[Tensor, Tensor]:
        """``(p, δ')`` from ``δ`` and ``(1/M) Σ_m u_m``."""
        aggregate = server_error + mean_sent
        broadcast = self.down.compress(aggregate)
        return broadcast, aggregate - broadcast

    def step(
        self, state: BidirectionalState, oracle: Oracle, generator: torch.Generator
    ) -> Messages:
        gradients = oracle(state.theta)
        sent, state.errors = self.worker(state.errors, gradients)
        broadcast, state.server_error = self.server(state.server_error, sent.mean(dim=0))
        state.theta = state.theta - broadcast
        return Messages.of(sent, self.up, broadcast, self.down)

    def diagnostics(self, state: BidirectionalState) -> dict[str, float]:
        """``(1/M) Σ_m ‖e_m‖²`` and ``‖δ‖²``."""
        return {
            "error_norm_sq": mean_square_norm(state.errors),
            "server_error_norm_sq": mean_square_norm(state.server_error[None]),
        }

    def params(self) -> dict[str, Any]:
        return self.reference.params()
