"""Batches of runs on torch tensors: :func:`convcheck.engine.batch.run_batch` on a device.

The same grouping, rounds, pricing, traces and stopping as the numpy batch; the runs' states,
the objective's evaluation
(:meth:`~convcheck.torch.oracle.ObjectiveOracle.runs_values_and_gradients`) and the algorithms'
halves (through :mod:`convcheck.torch.arrays`) run as tensors on ``device``;
per round, the runs' trace quantities and bit counts come back to the host in one transfer each.
On float64 the runs agree with the numpy engine to rounding (the products are summed in another
order), not bit for bit; runs that go alone (randomized, …) use the numpy engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from convcheck.algorithms.base import Algorithm
from convcheck.engine.batch import run_batch as run_numpy_batch
from convcheck.engine.common import RunQuantities
from convcheck.engine.trace import Run
from convcheck.problem import Problem
from convcheck.torch.oracle import ObjectiveOracle


class TorchRuns:
    """A batch's arrays as tensors on ``device`` with ``dtype`` (a backend of
    :func:`convcheck.engine.batch.run_batch`)."""

    name = "torch"

    def __init__(self, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float64) -> None:
        self.device, self.dtype = torch.device(device), dtype
        self._oracles: dict[int, ObjectiveOracle] = {}

    def oracle(self, problem: Problem) -> ObjectiveOracle:
        """The problem's objective on this device (built once; refuses unsupported ones)."""
        key = id(problem.objective)
        if key not in self._oracles:
            self._oracles[key] = ObjectiveOracle(problem.objective, dtype=self.dtype,
                                                 device=self.device)
        return self._oracles[key]

    def asarray(self, points: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(points, dtype=self.dtype, device=self.device)

    def evaluator(self, problem: Problem) -> Callable[[Any], tuple[Any, Any]]:
        return self.oracle(problem).runs_values_and_gradients

    def quantities(self, theta: torch.Tensor, previous: torch.Tensor, values: torch.Tensor,
                   gradients: torch.Tensor, theta_star: torch.Tensor | None) -> RunQuantities:
        """The runs' trace quantities in float64, brought to the host in one transfer."""
        grad = gradients.double().mean(dim=-2)
        step = (theta - previous).double()
        rows = [values.double().mean(dim=-1), (grad * grad).sum(dim=-1),
                (step * step).sum(dim=-1), torch.isfinite(theta).all(dim=-1).double()]
        if theta_star is not None:
            gap = (theta - theta_star).double()
            rows.append((gap * gap).sum(dim=-1))
        out = torch.stack(rows).cpu().numpy()
        dist = out[4] if theta_star is not None else None
        return out[0], out[1], dist, out[2], out[3] > 0

    def index(self, rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(rows, device=self.device)

    @staticmethod
    def to_numpy(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "device": str(self.device), "dtype": str(self.dtype)}


def run_batch(algorithms: Sequence[Algorithm], problem: Problem, iterations: int, *,
              device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64,
              **options: Any) -> list[Run]:
    """:func:`convcheck.engine.batch.run_batch` with the batched arrays as tensors on
    ``device`` (the problem: ridge or logistic on dense shards, checked first); ``options`` as
    there (seeds, theta0, target, …)."""
    backend = TorchRuns(device, dtype)
    backend.oracle(problem)
    return run_numpy_batch(algorithms, problem, iterations, backend=backend, **options)
