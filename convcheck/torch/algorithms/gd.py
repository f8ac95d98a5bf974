"""Distributed (stochastic) gradient descent: ``θ^{k+1} = θ^k − α (1/M) Σ_m g_m^k``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from convcheck.algorithms import GD as Reference
from convcheck.torch.algorithms.base import Oracle, TorchAlgorithm
from convcheck.torch.compressors import DENSE
from convcheck.torch.ledger import Messages


@dataclass
class GDState:
    theta: torch.Tensor


class GD(TorchAlgorithm):
    """Every worker sends its gradient densely; the server broadcasts ``θ^{k+1}`` densely.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0`` (validated by the numpy :class:`convcheck.algorithms.GD`).
    """

    name = "gd"
    State = GDState

    def __init__(self, alpha: float) -> None:
        self.reference = Reference(alpha)
        self.alpha = self.reference.alpha

    def start(self, theta0: torch.Tensor, oracle: Oracle, generator: torch.Generator) -> tuple:
        return GDState(theta0.clone()), None

    def server(self, theta: torch.Tensor, mean_gradient: torch.Tensor) -> torch.Tensor:
        """``θ − α ḡ``."""
        return theta - self.alpha * mean_gradient

    def step(self, state: GDState, oracle: Oracle, generator: torch.Generator) -> Messages:
        gradients = oracle(state.theta)
        state.theta = self.server(state.theta, gradients.mean(dim=0))
        return Messages.of(gradients, DENSE, state.theta, DENSE)

    def params(self) -> dict[str, Any]:
        return self.reference.params()
