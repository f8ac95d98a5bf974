"""EF21 [EF21] on tensors.

Server: ``θ^{k+1} = θ^k − α g^k``. Worker: ``c_m = C(∇f_m(θ^{k+1}) − g_m)``; ``g_m ← g_m + c_m``.
Server: ``g^{k+1} = g^k + (1/M) Σ_m c_m`` (equal to ``(1/M) Σ_m g_m``; this incremental form needs
no worker state at the server, the numpy reference averages the ``g_m`` instead, which agrees up
to rounding). Initialization ``g_m⁰ = ∇f_m(θ⁰)`` sent dense (``init="full"``) or
``g_m⁰ = C(∇f_m(θ⁰))`` (``init="compressed"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from convcheck.algorithms import EF21 as Reference
from convcheck.torch.algorithms.base import Oracle, TorchAlgorithm, torch_compressor
from convcheck.torch.compressors import DENSE
from convcheck.torch.ledger import Messages

Tensor = torch.Tensor


@dataclass
class EF21State:
    """``θ^k``, the workers' estimates ``g_m`` ``(M, D)`` and the server's ``g^k``."""

    theta: Tensor
    estimates: Tensor
    estimate: Tensor


class EF21(TorchAlgorithm):
    """EF21 with any compressor.

    Parameters
    ----------
    alpha : float
    compressor : Compressor or TorchCompressor
    init : {"full", "compressed"}
    """

    name = "ef21"
    State = EF21State

    def __init__(self, alpha: float, compressor: Any, *, init: str = "full") -> None:
        self.compressor = torch_compressor(compressor)
        self.reference = Reference(alpha, self.compressor.spec, init=init)
        self.alpha, self.init = self.reference.alpha, self.reference.init

    @property
    def randomized(self) -> bool:
        return self.compressor.randomized

    def start(self, theta0: Tensor, oracle: Oracle, generator: torch.Generator) -> tuple:
        gradients = oracle(theta0)
        if self.init == "full":
            estimates, codec = gradients.clone(), DENSE
        else:
            estimates, codec = self.compressor.compress(gradients, generator), self.compressor
        state = EF21State(theta0.clone(), estimates, estimates.mean(dim=0))
        return state, Messages.of(estimates, codec, theta0, DENSE)

    def worker(
        self, estimates: Tensor, gradients: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Rows ``(c_m, g_m + c_m)`` from rows ``(g_m, ∇f_m(θ^{k+1}))``."""
        sent = self.compressor.compress(gradients - estimates, generator)
        return sent, estimates + sent

    def step(self, state: EF21State, oracle: Oracle, generator: torch.Generator) -> Messages:
        state.theta = state.theta - self.alpha * state.estimate
        gradients = oracle(state.theta)
        sent, state.estimates = self.worker(state.estimates, gradients, generator)
        state.estimate = state.estimate + sent.mean(dim=0)
        return Messages.of(sent, self.compressor, state.theta, DENSE)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "compressor": self.compressor.describe(), "init": self.init}
