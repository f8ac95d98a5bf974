"""Batches of runs on torch tensors: :func:`convcheck.engine.batch.run_batch` on a device.

The same grouping, rounds, pricing, traces and stopping as the numpy batch; the runs' states,
the objective's evaluation
(:meth:`~convcheck.torch.oracle.ObjectiveOracle.runs_values_and_gradients`) and the algorithms'
halves (through :mod:`convcheck.torch.arrays`) run as tensors on ``device``;
per round, the runs' trace quantities and bit counts come back to the host in one transfer each.
On float64 the runs agree with the numpy engine to rounding (the products are summed in another
order), not bit for bit; runs that go alone (randomized, …) use the numpy engine.

``python -m convcheck.torch.batch --device cuda`` times a GD-SEC sweep on a device
(:func:`sweep`; the figure recorded in ``gpu_runs/``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from convcheck.algorithms import make_algorithm
from convcheck.algorithms.base import Algorithm
from convcheck.atomic import write_atomic
from convcheck.engine import run
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


def sweep(steps: int, xis: int, rounds: int, *, device: str, check: int,
          memory_budget: int | None = None) -> dict[str, Any]:
    """``steps × xis`` GD-SEC runs (α·L in [0.1, 2], ξ in [0, 1.5]) on breast-cancer with an
    intercept (logistic, λ = 10⁻³, iid over M = 4 workers, d = 31), ``rounds`` rounds, in one
    call on ``device``; ``check`` of them (spread over the grid) compared with the numpy engine's
    runs alone (status and ledger equal, largest iterate difference)."""
    from convcheck.bench import LAM
    from convcheck.problem import build_problem

    problem = build_problem("logistic", "breast-cancer", workers=4, split="iid", lam=LAM,
                            intercept=True, cross_check=False)
    L = problem.constants.L
    grid = [(float(a), float(x)) for a in np.linspace(0.1, 2.0, steps)
            for x in np.linspace(0.0, 1.5, xis)]
    algorithms = [make_algorithm("gd-sec", problem.constants, alpha=a / L, xi=x)
                  for a, x in grid]
    options = {} if memory_budget is None else {"memory_budget": memory_budget}
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    runs = run_batch(algorithms, problem, rounds, device=device, **options)
    seconds = time.perf_counter() - start
    chunks: dict[str, float] = {}
    for result in runs:  # a chunk's rounds end when its last run leaves
        key = str(result.meta["batch"]["batched_with"]) + result.meta["batch"]["note"]
        chunks[key] = max(chunks.get(key, 0.0), result.meta["wall_time_s"])
    statuses: dict[str, int] = {}
    for result in runs:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    checked = []
    for index in np.linspace(0, len(runs) - 1, min(check, len(runs))).astype(int).tolist():
        alone = run(algorithms[index], problem, rounds)
        batched = runs[index]
        checked.append({
            "run": index, "alpha_L": grid[index][0], "xi": grid[index][1],
            "status_equal": batched.status == alone.status,
            "ledger_equal": bool(np.array_equal(batched.ledger.up, alone.ledger.up)
                                 and np.array_equal(batched.ledger.down, alone.ledger.down)),
            "max_theta_difference": float(np.max(np.abs(batched.theta - alone.theta))),
            "theta_scale": float(np.max(np.abs(alone.theta))),
        })
    return {
        "runs": len(runs), "rounds": rounds, "workers": 4, "dim": problem.objective.dim,
        "device": device, "device_name": (torch.cuda.get_device_name(device)
                                          if torch.device(device).type == "cuda" else "cpu"),
        "seconds": seconds, "ms_per_run": 1e3 * seconds / len(runs),
        "rounds_seconds_per_chunk": chunks, "note": runs[0].meta["batch"]["note"],
        "statuses": statuses, "checked": checked, "torch": torch.__version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m convcheck.torch.batch [--device cuda] [--steps S] [--xis X] [--rounds T]
    [--check N] [--memory-budget-gib G] [--out FILE.json]``: :func:`sweep`."""
    parser = argparse.ArgumentParser(prog="python -m convcheck.torch.batch",
                                     description=sweep.__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--xis", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--check", type=int, default=8)
    parser.add_argument("--memory-budget-gib", type=float)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    budget = None if args.memory_budget_gib is None else int(args.memory_budget_gib * 2**30)
    result = sweep(args.steps, args.xis, args.rounds, device=args.device, check=args.check,
                   memory_budget=budget)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        write_atomic(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
