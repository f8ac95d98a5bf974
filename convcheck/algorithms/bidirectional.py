"""Bidirectional top-k [BIDIR] (rules read from the authors' public code; THEORY.md §3).

Worker: ``a_m = e_m + α g_m^k``; ``u_m = TopK_up(a_m)``; ``e_m ← a_m − u_m``.
Server: ``w = δ + (1/M) Σ_m u_m``; ``p = TopK_down(w)``; ``δ ← w − p``; broadcast ``p``;
``θ^{k+1} = θ^k − p``. Both error memories start at 0. The unidirectional variant is
:class:`~convcheck.algorithms.ef.ErrorFeedback` with top-k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import (
    Algorithm,
    Messages,
    check_fits,
    check_step,
    mean_square_norm,
    worker_mean,
)
from convcheck.compressors import TopK
from convcheck.errors import InputError


@dataclass
class BidirectionalState:
    theta: np.ndarray
    errors: np.ndarray
    server_error: np.ndarray


class BidirectionalTopK(Algorithm):
    """Top-k on the uplink and on the downlink, each with its error memory.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    k_up, k_down : int, optional
        Entries kept per worker message and in the broadcast (``1 ≤ k ≤ d``).
    ratio_up, ratio_down : float, optional
        Or the kept fractions ``k/d ∈ (0, 1]`` (exactly one of ``k_*`` / ``ratio_*``).
    """

    name = "bidir-topk"
    diagnostic_names = ("error_norm_sq", "server_error_norm_sq")

    def __init__(
        self,
        alpha: float,
        *,
        k_up: int | None = None,
        k_down: int | None = None,
        ratio_up: float | None = None,
        ratio_down: float | None = None,
    ) -> None:
        self.alpha = check_step(alpha)
        self.up = _top_k(k_up, ratio_up, "k_up")
        self.down = _top_k(k_down, ratio_down, "k_down")

    def start(self, theta0: np.ndarray, oracle: Any, rng: np.random.Generator) -> tuple:
        d = theta0.shape[0]
        check_fits(self.up, d, "k_up")
        check_fits(self.down, d, "k_down")
        errors = np.zeros((oracle.objective.n_workers, d))
        return BidirectionalState(theta0.copy(), errors, np.zeros(d)), None

    def step(self, state: BidirectionalState, oracle: Any, rng: np.random.Generator) -> Messages:
        gradients = oracle.worker_gradients(state.theta)
        accumulated = state.errors + self.alpha * gradients
        sent = self.up.compress(accumulated)
        np.subtract(accumulated, sent, out=state.errors)
        aggregate = state.server_error + worker_mean(sent)
        broadcast = self.down.compress(aggregate)
        state.server_error = aggregate - broadcast
        state.theta = state.theta - broadcast
        return Messages(sent, self.up, broadcast, self.down)

    def diagnostics(self, state: BidirectionalState, oracle: Any) -> tuple[float, ...]:
        """``(1/M) Σ_m ‖e_m‖²`` and ``‖δ‖²``."""
        return mean_square_norm(state.errors), float(state.server_error @ state.server_error)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "up": self.up.params(), "down": self.down.params()}


def _top_k(k: int | None, ratio: float | None, field: str) -> TopK:
    """A top-k compressor from ``k`` or ``ratio``; errors name ``field`` (``k_up``, ...)."""
    ratio_field = field.replace("k_", "ratio_")
    if (k is None) == (ratio is None):
        raise InputError(field, k, f"exactly one of {field} (int >= 1) or {ratio_field} in (0, 1]")
    try:
        return TopK(k=k) if k is not None else TopK(ratio=ratio)
    except InputError as error:
        raise InputError(
            field if k is not None else ratio_field, error.value, error.allowed
        ) from None
