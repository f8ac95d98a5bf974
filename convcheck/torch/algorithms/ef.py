"""Classic error feedback [EF] on tensors; with top-k it is the uplink-only top-k of [BIDIR].

Worker: ``p_m = α g_m + e_m``; ``c_m = C(p_m)``; ``e_m ← p_m − c_m``.
Server: ``θ^{k+1} = θ^k − (1/M) Σ_m c_m``, broadcast as a sparse message of its nonzeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from convcheck.algorithms import ErrorFeedback as Reference
from convcheck.torch.algorithms.base import (
    Oracle,
    TorchAlgorithm,
    mean_square_norm,
    torch_compressor,
)
from convcheck.torch.compressors import SPARSE
from convcheck.torch.ledger import Messages

Tensor = torch.Tensor


@dataclass
class EFState:
    theta: Tensor
    errors: Tensor


class ErrorFeedback(TorchAlgorithm):
    """Classic EF with any compressor (numpy or torch instance).

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    compressor : Compressor or TorchCompressor
    """

    name = "ef"
    State = EFState

    def __init__(self, alpha: float, compressor: Any) -> None:
        self.compressor = torch_compressor(compressor)
        self.reference = Reference(alpha, self.compressor.spec)
        self.alpha = self.reference.alpha

    @property
    def randomized(self) -> bool:
        return self.compressor.randomized

    def start(self, theta0: Tensor, oracle: Oracle, generator: torch.Generator) -> tuple:
        errors = theta0.new_zeros((oracle.workers, theta0.shape[0]))
        return EFState(theta0.clone(), errors), None

    def worker(
        self, errors: Tensor, gradients: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Rows ``(c_m, e_m')`` from rows ``(e_m, g_m)``."""
        corrected = self.alpha * gradients + errors
        sent = self.compressor.compress(corrected, generator)
        return sent, corrected - sent

    def step(self, state: EFState, oracle: Oracle, generator: torch.Generator) -> Messages:
        gradients = oracle(state.theta)
        sent, state.errors = self.worker(state.errors, gradients, generator)
        update = sent.mean(dim=0)
        state.theta = state.theta - update
        return Messages.of(sent, self.compressor, update, SPARSE)

    def diagnostics(self, state: EFState) -> dict[str, float]:
        """``(1/M) Σ_m ‖e_m‖²``."""
        return {"error_norm_sq": mean_square_norm(state.errors)}

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "compressor": self.compressor.describe()}
