"""The synchronous parameter-server engine: rounds, bit pricing, tracing, stopping.

Each round the algorithm advances its state and returns its :class:`Messages`; the engine
prices them with their codecs (the bit count of the real encoding, per worker), evaluates the
trace at the new iterate and decides whether to stop (divergence or a target accuracy). One
full evaluation of the worker values and gradients per iterate serves both the trace and the
algorithm (see :class:`~convcheck.engine.oracle.Oracle`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm, Messages
from convcheck.engine.common import DEFAULT_BLOWUP, Measure, start_point, summarize
from convcheck.engine.oracle import Oracle
from convcheck.engine.trace import BASE_COLUMNS, Ledger, Run
from convcheck.environment import versions
from convcheck.errors import InputError, check_int, check_real
from convcheck.problem import Problem


def run(
    algorithm: Algorithm,
    problem: Problem,
    iterations: int,
    *,
    seed: int = 0,
    theta0: np.ndarray | None = None,
    target: float | None = None,
    target_metric: str | None = None,
    stop_at_target: bool = True,
    blowup: float = DEFAULT_BLOWUP,
    progress: bool = False,
) -> Run:
    """Run ``algorithm`` on ``problem`` for ``iterations`` synchronous rounds.

    Parameters
    ----------
    algorithm : Algorithm
    problem : Problem
    iterations : int
        Rounds ``T ≥ 1``; the trace has ``T + 1`` rows (fewer if the run stops early).
    seed : int
        Seeds the run's only random generator (minibatches, randomized compressors).
    theta0 : ndarray of shape (d,), optional
        Start point (default 0).
    target : float, optional
        Target accuracy on ``target_metric``; the first iterate at or below it is recorded
        with the bits spent to reach it.
    target_metric : {"suboptimality", "grad_norm_sq", "dist_sq"}, optional
        Default: ``"grad_norm_sq"`` for nonconvex problems, else ``"suboptimality"``.
    stop_at_target : bool
        End the run when the target is reached.
    blowup : float
        Divergence threshold factor (see :data:`DEFAULT_BLOWUP`); NaN or inf also stop.
    progress : bool
        Show a progress bar.
    """
    if not isinstance(algorithm, Algorithm):
        allowed = "a synchronous algorithm (asynchronous ones run with convcheck.engine.run_async)"
        raise InputError("algorithm", getattr(algorithm, "name", algorithm), allowed)
    iterations = check_int("iterations", iterations, 1)
    seed = check_int("seed", seed, 0)
    blowup = check_real("blowup", blowup, 1.0, low_open=True)
    measure = Measure.of(problem, target, target_metric)
    metric, target = measure.metric, measure.target
    objective = problem.objective
    d, workers = objective.dim, objective.n_workers
    theta0 = start_point(theta0, d)

    rng = np.random.default_rng(np.random.SeedSequence(seed))
    oracle = Oracle(objective)
    names = BASE_COLUMNS + algorithm.diagnostic_names
    table = np.full((iterations + 1, len(names)), np.nan)
    up_bits = np.zeros((iterations + 1, workers), dtype=np.int64)
    down_bits = np.zeros((iterations + 1, workers), dtype=np.int64)
    column = {name: j for j, name in enumerate(names)}

    def record(k: int, state: Any, messages: Messages | None, previous: np.ndarray) -> float:
        row = table[k]
        row[column["iteration"]] = k
        measure.write(row, column, oracle, state.theta, previous)
        nnz_up = nnz_down = 0
        if messages is not None:
            up_bits[k] = messages.up_codec.bits(messages.up)
            down_bits[k] = messages.down_codec.bits(messages.down)
            nnz_up = np.count_nonzero(messages.up)
            nnz_down = np.count_nonzero(messages.down)
            nnz_down *= workers if messages.down.ndim == 1 else 1
        row[column["bits_up"]] = up_bits[k].sum()
        row[column["bits_down"]] = down_bits[k].sum()
        row[column["nnz_up"]] = nnz_up
        row[column["nnz_down"]] = nnz_down
        diagnostics = algorithm.diagnostics(state, oracle)
        for name, value in zip(algorithm.diagnostic_names, diagnostics, strict=True):
            row[column[name]] = value
        return row[column[metric]]

    started = time.perf_counter()
    state, initial = algorithm.start(theta0, oracle, rng)
    first = record(0, state, initial, theta0)
    scale = blowup * max(1.0, abs(table[0, column["suboptimality"]]))
    status, reason, last = "completed", f"ran {iterations} rounds", 0
    reached = 0 if target is not None and first <= target else None
    rounds = range(1, iterations + 1)
    if progress:
        from tqdm import tqdm

        rounds = tqdm(rounds, desc=algorithm.name, unit="round")
    for k in rounds:
        if reached is not None and stop_at_target:
            break
        previous = state.theta.copy()
        with np.errstate(over="ignore", invalid="ignore"):
            messages = algorithm.step(state, oracle, rng)
            value = record(k, state, messages, previous)
        last = k
        sub = table[k, column["suboptimality"]]
        if not (np.isfinite(sub) and np.all(np.isfinite(state.theta))):
            status, reason = "diverged", f"non-finite iterate or value at iteration {k}"
            break
        if sub > scale:
            status = "diverged"
            reason = f"suboptimality {sub:.3g} > {blowup:g}·max(1, start) at iteration {k}"
            break
        if target is not None and reached is None and value <= target:
            reached = k
    if status != "diverged" and reached is not None and stop_at_target:
        status, reason = "target reached", f"{metric} <= {target:g} at iteration {reached}"
    elapsed = time.perf_counter() - started

    table, up_bits, down_bits = table[: last + 1], up_bits[: last + 1], down_bits[: last + 1]
    columns = {name: table[:, j].copy() for j, name in enumerate(names)}
    for name in ("iteration", "bits_up", "bits_down", "nnz_up", "nnz_down"):
        columns[name] = columns[name].astype(np.int64)
    columns["bits_up_total"] = np.cumsum(up_bits.sum(axis=1))
    columns["bits_down_total"] = np.cumsum(down_bits.sum(axis=1))
    summary = summarize(columns, metric, target, reached)
    meta = {
        "engine": "sync",
        "algorithm": algorithm.describe(),
        "problem": problem.describe(),
        "seed": seed,
        "theta0": theta0.tolist() if np.any(theta0) else None,
        "iterations_requested": iterations,
        "oracle": {
            "full_evaluations": oracle.full_evaluations,
            "stochastic_evaluations": oracle.stochastic_evaluations,
        },
        "wall_time_s": elapsed,
        "versions": versions(),
    }
    return Run(columns, Ledger(up_bits, down_bits), status, reason, summary, meta, state.theta)
