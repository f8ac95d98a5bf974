"""Asynchronous SGD, dense or sparsified, with or without worker error memory [STALE].

The server applies each arriving message at once, ``θ^{t+1} = θ^t − c_t``, where worker ``k``
computed ``c_t`` on the model it read ``τ_t`` server updates earlier (THEORY.md §3):

* without memory: ``c_t = C(α g_k(θ^{t−τ_t}))``;
* with memory (error feedback on the worker): ``p = e_k + α g_k(θ^{t−τ_t})``; ``c_t = C(p)``;
  ``e_k ← p − C(p)``.

Dense asynchronous SGD is ``C = identity`` (``θ^{t+1} = θ^t − α g(θ^{t−τ_t})``). The server
replies with its model, densely (``32·d`` bits): "async top-k with a dense downlink".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.async_base import (
    AsyncAlgorithm,
    Message,
    WorkerGradient,
    model_drift,
)
from convcheck.algorithms.base import (
    DENSE,
    check_fits,
    check_step,
    mean_square_norm,
    require_compressor,
)
from convcheck.compressors import Compressor, Identity
from convcheck.errors import InputError, check_int


@dataclass
class AsyncSGDState:
    theta: np.ndarray
    models: np.ndarray
    errors: np.ndarray


class AsyncSparseSGD(AsyncAlgorithm):
    """Asynchronous sparsified SGD [STALE] with any compressor.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    compressor : Compressor
        Top-k, rand-k, ... (identity gives dense asynchronous SGD).
    error_memory : bool
        Keep what the compressor dropped on the worker and add it to its next message.
    batch_size : int, optional
        Minibatch size of each worker computation; ``None`` uses the worker's full gradient.
    """

    name = "async-sparse-sgd"
    diagnostic_names = ("error_norm_sq", "model_drift_sq")

    def __init__(
        self,
        alpha: float,
        compressor: Compressor,
        *,
        error_memory: bool = True,
        batch_size: int | None = None,
    ) -> None:
        self.alpha = check_step(alpha)
        self.compressor = require_compressor(compressor)
        if not isinstance(error_memory, (bool, np.bool_)):
            raise InputError("error_memory", error_memory, "True or False")
        self.error_memory = bool(error_memory)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, 1)

    @property
    def stochastic(self) -> bool:
        return self.batch_size is not None or self.compressor.randomized

    def start(self, theta0: np.ndarray, workers: int) -> AsyncSGDState:
        check_fits(self.compressor, theta0.shape[0])
        models = np.tile(theta0, (workers, 1))
        return AsyncSGDState(theta0.copy(), models, np.zeros_like(models))

    def worker_compute(
        self, state: AsyncSGDState, worker: int, gradients: WorkerGradient, rng: np.random.Generator
    ) -> Message:
        gradient = gradients(worker, state.models[worker], self.batch_size, rng)
        corrected = self.alpha * gradient
        if self.error_memory:
            corrected += state.errors[worker]
        sent = self.compressor.compress(corrected, rng)
        if self.error_memory:
            np.subtract(corrected, sent, out=state.errors[worker])
        return Message(sent, self.compressor)

    def server_apply(self, state: AsyncSGDState, worker: int, message: np.ndarray) -> None:
        state.theta = state.theta - message
        return None

    def server_reply(self, state: AsyncSGDState, worker: int) -> Message:
        state.models[worker] = state.theta
        return Message(state.theta, DENSE)

    def diagnostics(self, state: AsyncSGDState) -> tuple[float, ...]:
        """``(1/W) Σ_k ‖e_k‖²`` and ``(1/W) Σ_k ‖θ − θ_k‖²``."""
        return mean_square_norm(state.errors), model_drift(state)

    def params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "compressor": self.compressor.describe(),
            "error_memory": self.error_memory,
            "batch_size": self.batch_size,
        }


class AsyncSGD(AsyncSparseSGD):
    """Dense asynchronous SGD: ``θ^{t+1} = θ^t − α g_k(θ^{t−τ_t})``, dense both ways.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    batch_size : int, optional
        Minibatch size; ``None`` uses the worker's full gradient.
    """

    name = "async-sgd"

    def __init__(self, alpha: float, *, batch_size: int | None = None) -> None:
        super().__init__(alpha, Identity(), error_memory=False, batch_size=batch_size)
