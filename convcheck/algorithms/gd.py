"""Distributed gradient descent: ``θ^{k+1} = θ^k − α (1/M) Σ_m ∇f_m(θ^k)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import DENSE, Algorithm, Messages, check_step, worker_mean


@dataclass
class GDState:
    theta: np.ndarray


class GD(Algorithm):
    """Every worker sends its full gradient (dense); the server broadcasts ``θ^{k+1}``.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    """

    name = "gd"

    def __init__(self, alpha: float) -> None:
        self.alpha = check_step(alpha)

    def start(self, theta0: np.ndarray, oracle: Any, rng: np.random.Generator) -> tuple:
        return GDState(theta=theta0.copy()), None

    def step(self, state: GDState, oracle: Any, rng: np.random.Generator) -> Messages:
        gradients = oracle.worker_gradients(state.theta)
        state.theta = state.theta - self.alpha * worker_mean(gradients)
        return Messages(gradients, DENSE, state.theta, DENSE)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}
