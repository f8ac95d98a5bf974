"""EF21 [EF21] (Richtárik, Sokolov, Fatkhullin 2021).

``θ^{k+1} = θ^k − α g^k``; ``c_m = C(∇f_m(θ^{k+1}) − g_m)``; ``g_m ← g_m + c_m``;
``g^{k+1} = (1/M) Σ_m g_m``. Initialization ``g_m⁰ = ∇f_m(θ⁰)`` sent dense (``init="full"``)
or ``g_m⁰ = C(∇f_m(θ⁰))`` (``init="compressed"``); the choice is recorded in the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import (
    DENSE,
    Algorithm,
    Messages,
    check_fits,
    check_step,
    mean_square_norm,
    require_compressor,
    worker_mean,
)
from convcheck.compressors import Compressor
from convcheck.errors import check_choice

INITS = ("full", "compressed")


@dataclass
class EF21State:
    """``θ^k``, the workers' estimates ``g_m`` ``(M, d)`` and their mean ``g^k``."""

    theta: np.ndarray
    estimates: np.ndarray
    estimate: np.ndarray


class EF21(Algorithm):
    """EF21 with any compressor.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    compressor : Compressor
    init : {"full", "compressed"}
    """

    name = "ef21"
    diagnostic_names = ("ef21_G",)

    def __init__(self, alpha: float, compressor: Compressor, *, init: str = "full") -> None:
        self.alpha = check_step(alpha)
        self.compressor = require_compressor(compressor)
        self.init = check_choice("init", init, INITS)

    @property
    def stochastic(self) -> bool:
        return self.compressor.randomized

    def start(self, theta0: np.ndarray, oracle: Any, rng: np.random.Generator) -> tuple:
        check_fits(self.compressor, theta0.shape[0])
        gradients = oracle.worker_gradients(theta0)
        if self.init == "full":
            estimates, codec = gradients.copy(), DENSE
        else:
            estimates, codec = self.compressor.compress(gradients, rng), self.compressor
        state = EF21State(theta=theta0.copy(), estimates=estimates, estimate=worker_mean(estimates))
        return state, Messages(estimates, codec, theta0, DENSE)

    def step(self, state: EF21State, oracle: Any, rng: np.random.Generator) -> Messages:
        state.theta = state.theta - self.alpha * state.estimate
        gradients = oracle.worker_gradients(state.theta)
        sent = self.compressor.compress(gradients - state.estimates, rng)
        state.estimates += sent
        state.estimate = worker_mean(state.estimates)
        return Messages(sent, self.compressor, state.theta, DENSE)

    def diagnostics(self, state: EF21State, oracle: Any) -> tuple[float, ...]:
        """``G^k = (1/M) Σ_m ‖g_m^k − ∇f_m(θ^k)‖²``."""
        return (mean_square_norm(state.estimates - oracle.worker_gradients(state.theta)),)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "compressor": self.compressor.describe(), "init": self.init}
