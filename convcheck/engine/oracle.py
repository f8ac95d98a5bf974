"""Gradient oracle of a run: worker values and gradients with a one-point cache.

The engine traces ``f(θ^k)`` and ``∇f(θ^k)`` at every iterate, and most algorithms need the
worker gradients at that same point; the cache makes both one evaluation (one forward and one
backward pass over the data). Cached arrays are read-only so that no algorithm can corrupt them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convcheck.arrays import namespace
from convcheck.objectives import Objective


def _same_point(theta: Any, point: Any) -> bool:
    """``np.array_equal(theta, point)`` (NaN never equal), without its Python wrapper (numpy
    arrays or tensors)."""
    return point is not None and point.shape == theta.shape and bool((theta == point).all())


class Oracle:
    """Values and gradients of an :class:`~convcheck.objectives.Objective`, counted and cached.

    Attributes
    ----------
    objective : Objective
    full_evaluations : int
        Number of full (all rows) evaluations actually computed.
    stochastic_evaluations : int
        Number of minibatch gradient evaluations.
    shard_evaluations : int
        Number of one-shard full gradients (the asynchronous engine's worker gradients).
    """

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.full_evaluations = 0
        self.stochastic_evaluations = 0
        self.shard_evaluations = 0
        self._point: np.ndarray | None = None
        self._values: np.ndarray | None = None
        self._gradients: np.ndarray | None = None

    def evaluate(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f_m(θ))_m`` ``(M,)`` and ``(∇f_m(θ))_m`` ``(M, d)`` at a shared point ``θ``.

        Served from the cache when ``θ`` equals the last point exactly.
        """
        if not _same_point(theta, self._point):
            values, gradients = self.objective.worker_values_and_gradients(theta)
            values.flags.writeable = False
            gradients.flags.writeable = False
            point = np.array(theta, dtype=np.float64)
            point.flags.writeable = False
            self._point, self._values, self._gradients = point, values, gradients
            self.full_evaluations += 1
        return self._values, self._gradients

    @property
    def last_gradients(self) -> np.ndarray:
        """The worker gradients of the last :meth:`evaluate` (read-only)."""
        return self._gradients

    def worker_gradients(self, theta: np.ndarray) -> np.ndarray:
        """``(∇f_m(θ))_m``, shape ``(M, d)`` (read-only)."""
        return self.evaluate(theta)[1]

    def stochastic_worker_gradients(
        self, theta: np.ndarray, batch_size: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Minibatch gradients, see :meth:`Objective.stochastic_worker_gradients`."""
        self.stochastic_evaluations += 1
        return self.objective.stochastic_worker_gradients(theta, batch_size, rng)

    def shard_gradient(self, m: int, theta: np.ndarray) -> np.ndarray:
        """``∇f_m(θ)``, shape ``(d,)``: one shard only (not cached)."""
        self.shard_evaluations += 1
        return self.objective.restrict(m).worker_gradients(theta)[0]

    def stochastic_shard_gradient(
        self, m: int, theta: np.ndarray, batch_size: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Shard ``m``'s minibatch gradient, shape ``(d,)``; one ``rng.random((1, B))`` draw."""
        self.stochastic_evaluations += 1
        return self.objective.restrict(m).stochastic_worker_gradients(theta, batch_size, rng)[0]


class RunsOracle:
    """Worker values and gradients at the models of a batch's runs ``(A, d)``, with a
    one-batch cache (the batched :class:`Oracle`).

    Parameters
    ----------
    evaluate : callable
        ``evaluate(thetas)`` → values ``(A, M)`` and gradients ``(A, M, d)``:
        :meth:`Objective.runs_values_and_gradients` on numpy, or a tensor backend's.
    runs : int

    Attributes
    ----------
    full_evaluations : ndarray of int, shape (R,)
        Evaluations computed that included each run (a run's ``full_evaluations`` alone).
    """

    def __init__(self, evaluate: Callable[[Any], tuple[Any, Any]], runs: int) -> None:
        self._evaluate = evaluate
        self.full_evaluations = np.zeros(runs, dtype=np.int64)
        self._active = np.arange(runs)
        self._point: np.ndarray | None = None
        self._values: np.ndarray | None = None
        self._gradients: np.ndarray | None = None

    def evaluate(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f_m(θ_r))`` ``(A, M)`` and ``(∇f_m(θ_r))`` ``(A, M, d)``, cached like
        :meth:`Oracle.evaluate` (read-only)."""
        if not _same_point(thetas, self._point):
            values, gradients = self._evaluate(thetas)
            self._keep(namespace(thetas).copy(thetas), values, gradients)
            self.full_evaluations[self._active] += 1
        return self._values, self._gradients

    def _keep(self, point: Any, values: Any, gradients: Any) -> None:
        for array in (point, values, gradients):
            if isinstance(array, np.ndarray):
                array.flags.writeable = False
        self._point, self._values, self._gradients = point, values, gradients

    @property
    def last_gradients(self) -> np.ndarray:
        """The worker gradients of the last :meth:`evaluate` (read-only)."""
        return self._gradients

    def worker_gradients(self, thetas: np.ndarray) -> np.ndarray:
        return self.evaluate(thetas)[1]

    def take(self, keep: np.ndarray, index: Any = None) -> None:
        """Keep the runs at positions ``keep`` (numpy) of the batch (the others left it);
        ``index``: the same positions on the arrays' backend (default ``keep``)."""
        index = keep if index is None else index
        self._active = self._active[keep]
        if self._point is not None:
            self._keep(self._point[index], self._values[index], self._gradients[index])
