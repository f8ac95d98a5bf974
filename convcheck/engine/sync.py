"""The synchronous parameter-server engine on numpy: rounds, bit pricing, tracing, stopping.

Each round the workers compute their gradients at the model they hold and run the algorithm's
worker half, the server runs its half on the mean of their messages, and the workers receive
the downlink (:func:`convcheck.engine.rounds.sync_round`). The engine prices the messages with
their codecs (the bit count of the real encoding, per worker) and records the new iterate
(:class:`~convcheck.engine.common.Recorder`). One evaluation of the worker values and gradients
per iterate serves both the trace and the algorithm (:class:`~convcheck.engine.oracle.Oracle`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm
from convcheck.engine.common import DEFAULT_BLOWUP, DEFAULT_TRACE_BUDGET, Recorder, start_point
from convcheck.engine.oracle import Oracle
from convcheck.engine.rounds import States, Wire, price_round, start, sync_round
from convcheck.engine.trace import Run
from convcheck.errors import InputError, check_int
from convcheck.problem import Problem

#: ``observer(k, states, wire, gradients)`` is called after every round ``k ≥ 1`` with the
#: round's messages and the gradients the workers used (verification checks invariants with it);
#: an observer with a ``start(states)`` method is also given the states at ``θ⁰``.
Observer = Callable[[int, States, Wire, np.ndarray], None]


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
    observer: Observer | None = None,
    memory_budget: int = DEFAULT_TRACE_BUDGET,
) -> Run:
    """Run ``algorithm`` on ``problem`` for ``iterations`` synchronous rounds.

    Parameters
    ----------
    algorithm : Algorithm
        One with the ``"sync"`` transport.
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
        Divergence factor (:data:`~convcheck.engine.common.DEFAULT_BLOWUP`); NaN or inf also stop.
    progress : bool
        Show a progress bar.
    observer : callable, optional
        Called after every round (see :data:`Observer`).
    memory_budget : int
        Bytes the trace may take (see :class:`~convcheck.engine.common.Recorder`).
    """
    if not isinstance(algorithm, Algorithm) or "sync" not in algorithm.transports:
        allowed = "a synchronous algorithm (asynchronous ones run with convcheck.engine.run_async)"
        raise InputError("algorithm", getattr(algorithm, "name", algorithm), allowed)
    iterations = check_int("iterations", iterations, 1)
    seed = check_int("seed", seed, 0)
    objective = problem.objective
    workers = objective.n_workers
    theta0 = start_point(theta0, objective.dim)
    oracle = Oracle(objective)
    recorder = Recorder(problem, algorithm.diagnostic_names, workers, iterations + 1,
                        target=target, target_metric=target_metric,
                        stop_at_target=stop_at_target, blowup=blowup, budget=memory_budget)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    batch = getattr(algorithm, "batch_size", None)

    def gradients(point: np.ndarray) -> np.ndarray:
        if batch is None:
            return oracle.worker_gradients(point)
        return oracle.stochastic_worker_gradients(point, batch, rng)

    states, wire = start(algorithm, theta0, workers, lambda: oracle.worker_gradients(theta0))
    diagnose = algorithm.diagnostics

    def record(k: int, wire: Wire, previous: np.ndarray) -> bool:
        theta = states.server.theta
        evaluated = oracle.evaluate(theta)
        up, down, nnz = price_round(wire, workers)
        extra = diagnose(states.server, states.workers, evaluated[1])
        return recorder.record(k, theta, previous, evaluated, up, down, nnz, extra)

    def round_gradients() -> np.ndarray:
        """The gradients at the workers' model: from the trace's evaluation when the model is
        the recorded iterate (the same array), else computed (or a minibatch)."""
        model = states.model
        if batch is None and model is previous:
            return oracle.last_gradients
        return gradients(model)

    stop = record(0, wire, theta0)
    if observer is not None and hasattr(observer, "start"):
        observer.start(states)
    rounds: Any = range(1, iterations + 1)
    if progress:
        from tqdm import tqdm

        rounds = tqdm(rounds, desc=algorithm.name, unit="round")
    with np.errstate(over="ignore", invalid="ignore"):
        for k in rounds:
            if stop:
                break
            previous = states.server.theta
            grads = round_gradients()
            wire = sync_round(algorithm, states, grads, rng)
            if observer is not None:
                observer(k, states, wire, grads)
            stop = record(k, wire, previous)
    meta = {
        "engine": "sync",
        "seed": seed,
        "theta0": theta0.tolist() if np.any(theta0) else None,
        "oracle": {
            "full_evaluations": oracle.full_evaluations,
            "stochastic_evaluations": oracle.stochastic_evaluations,
        },
    }
    return recorder.finish(algorithm, problem, states.server.theta, meta, iterations)
