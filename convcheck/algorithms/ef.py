"""Classic error feedback [EF] (Stich, Cordonnier, Jaggi 2018; Karimireddy et al. 2019).

``p_m = α g_m^k + e_m``; ``c_m = C(p_m)``; ``e_m ← p_m − c_m``; ``θ^{k+1} = θ^k − (1/M) Σ_m c_m``.
``g_m^k`` is the full gradient ``∇f_m(θ^k)`` or, with a batch size, a minibatch estimate.
With top-k this is also the unidirectional top-k of [BIDIR] (their ``a_m = e_m + α g_m``,
``u_m = TopK(a_m)``, ``e_m ← a_m − u_m`` is the same recursion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import (
    SPARSE,
    Algorithm,
    Messages,
    check_fits,
    check_step,
    mean_square_norm,
    require_compressor,
    worker_mean,
)
from convcheck.compressors import Compressor
from convcheck.errors import check_int


@dataclass
class EFState:
    theta: np.ndarray
    errors: np.ndarray


class ErrorFeedback(Algorithm):
    """Classic EF with any compressor.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    compressor : Compressor
        Usually contractive (top-k); any compressor runs.
    batch_size : int, optional
        Minibatch size per worker per round; ``None`` uses full local gradients.

    The server broadcasts the aggregate ``(1/M) Σ_m c_m``, priced as a sparse message of its
    nonzeros (the union of the workers' supports).
    """

    name = "ef"
    diagnostic_names = ("error_norm_sq",)

    def __init__(
        self, alpha: float, compressor: Compressor, *, batch_size: int | None = None
    ) -> None:
        self.alpha = check_step(alpha)
        self.compressor = require_compressor(compressor)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, 1)

    @property
    def stochastic(self) -> bool:
        return self.batch_size is not None or self.compressor.randomized

    def start(self, theta0: np.ndarray, oracle: Any, rng: np.random.Generator) -> tuple:
        check_fits(self.compressor, theta0.shape[0])
        errors = np.zeros((oracle.objective.n_workers, theta0.shape[0]))
        return EFState(theta=theta0.copy(), errors=errors), None

    def step(self, state: EFState, oracle: Any, rng: np.random.Generator) -> Messages:
        if self.batch_size is None:
            gradients = oracle.worker_gradients(state.theta)
        else:
            gradients = oracle.stochastic_worker_gradients(state.theta, self.batch_size, rng)
        corrected = self.alpha * gradients + state.errors
        sent = self.compressor.compress(corrected, rng)
        np.subtract(corrected, sent, out=state.errors)
        update = worker_mean(sent)
        state.theta = state.theta - update
        return Messages(sent, self.compressor, update, SPARSE)

    def diagnostics(self, state: EFState, oracle: Any) -> tuple[float, ...]:
        """``(1/M) Σ_m ‖e_m‖²``."""
        return (mean_square_norm(state.errors),)

    def params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "compressor": self.compressor.describe(),
            "batch_size": self.batch_size,
        }
