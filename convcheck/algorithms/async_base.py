"""What every asynchronous algorithm is: worker computations and server updates, one event each.

An asynchronous parameter server has no rounds. The event engine
(:func:`convcheck.engine.run_async`) decides who computes on which model and when messages
arrive; the algorithm only says what happens at each event:

* :meth:`AsyncAlgorithm.worker_compute` — worker ``k`` computes on the model it holds and
  returns its uplink :class:`Message`;
* :meth:`AsyncAlgorithm.server_apply` — the server applies a worker's message at once
  (``θ^{t+1}``); it may return a message for every worker (a broadcast, e.g. DGS's resync);
* :meth:`AsyncAlgorithm.server_reply` — what the server sends worker ``k`` so that it can
  compute again (a dense model, or DGS's sparse model difference).

The engine prices every message with its codec (bits of the real encoding), times it on the
links, records the staleness and traces the server model. An algorithm keeps the model each
worker will compute on (``state.models``, one row per worker, ``(W, d)``), so it never needs
the clock.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convcheck.compressors import Compressor
from convcheck.described import Described

#: ``gradients(worker, theta, batch_size, rng)``: worker ``k``'s gradient at ``θ`` (``(d,)``);
#: full over its data when ``batch_size`` is ``None``, else a minibatch estimate.
WorkerGradient = Callable[[int, np.ndarray, "int | None", np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Message:
    """One message on one link.

    Attributes
    ----------
    vector : ndarray, shape (d,)
        What the receiver gets (decoded).
    codec : Compressor
        Prices it: ``codec.bits(vector)`` bits, the length of a real encoding.
    """

    vector: np.ndarray
    codec: Compressor


class AsyncAlgorithm(Described, abc.ABC):
    """An asynchronous distributed algorithm (THEORY.md §3, [STALE], [DGS]).

    Attributes
    ----------
    name : str
        Registry name.
    diagnostic_names : tuple of str
        Names of the quantities :meth:`diagnostics` returns at traced iterates.
    """

    name: ClassVar[str]
    diagnostic_names: ClassVar[tuple[str, ...]] = ()

    @property
    def stochastic(self) -> bool:
        """Whether the computations consume randomness (minibatches, randomized compressors)."""
        return False

    @abc.abstractmethod
    def start(self, theta0: np.ndarray, workers: int) -> Any:
        """The state at ``θ⁰`` with ``workers`` workers, each holding ``θ⁰``.

        The state has attributes ``theta`` (server model, ``(d,)``) and ``models`` (the model
        each worker computes on next, ``(W, d)``).
        """

    @abc.abstractmethod
    def worker_compute(
        self, state: Any, worker: int, gradients: WorkerGradient, rng: np.random.Generator
    ) -> Message:
        """Worker ``worker`` computes on ``state.models[worker]``; its uplink message."""

    @abc.abstractmethod
    def server_apply(self, state: Any, worker: int, message: np.ndarray) -> Message | None:
        """Apply ``worker``'s message to the server model; a broadcast to all workers, or None."""

    @abc.abstractmethod
    def server_reply(self, state: Any, worker: int) -> Message:
        """The downlink message that lets ``worker`` compute again (updates its model)."""

    def diagnostics(self, state: Any) -> tuple[float, ...]:
        """Values of :attr:`diagnostic_names` at the current state."""
        return ()

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Parameters (JSON-friendly) for traces and reports."""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "engine": "async"}


def model_drift(state: Any) -> float:
    """``(1/W) Σ_k ‖θ − θ_k‖²``: how far the workers' models are from the server's."""
    drift = state.models - state.theta
    flat = drift.reshape(-1)
    return float(flat @ flat) / state.models.shape[0]


class ComputationLog:
    """Records every worker computation of an algorithm: ``entries[k]`` lists worker ``k``'s
    ``(gradient, message vector, snapshot)`` in order, ``snapshot = extra(state, k)`` taken
    right after the computation (``None`` without ``extra``).

    Wraps the instance's :meth:`AsyncAlgorithm.worker_compute`, so runs are unchanged; used by the
    tests and the special-case figures to check per-computation identities independently.
    """

    def __init__(
        self, algorithm: AsyncAlgorithm, extra: Callable[[Any, int], Any] | None = None
    ) -> None:
        self.entries: dict[int, list[tuple[np.ndarray, np.ndarray, Any]]] = {}
        inner = algorithm.worker_compute

        def worker_compute(
            state: Any, worker: int, gradients: WorkerGradient, rng: np.random.Generator
        ) -> Message:
            seen: list[np.ndarray] = []

            def recording(
                k: int, theta: np.ndarray, batch_size: int | None, generator: np.random.Generator
            ) -> np.ndarray:
                seen.append(gradients(k, theta, batch_size, generator))
                return seen[-1]

            message = inner(state, worker, recording, rng)
            snapshot = None if extra is None else extra(state, worker)
            self.entries.setdefault(worker, []).append(
                (seen[-1].copy(), message.vector.copy(), snapshot)
            )
            return message

        algorithm.worker_compute = worker_compute  # type: ignore[method-assign]
