"""Many synchronous runs as one batched computation: a leading run axis over the runs.

``run_batch(algorithms, problem, T)`` returns the runs that ``run(algorithms[r], problem, T)``
would return, one per algorithm, computed together where they can be. Runs of the same
algorithm class whose halves are shape-generic (``batch_axis``) and that differ only in
*batchable* scalar parameters (step size α, GD-SEC's β and ξ: ``Param.batchable``), in the seed
and in the start point form a *group*, stepped as one computation: the server's vectors
``(R, d)``, the workers' rows ``(R, M, d)``, the workers' model ``(R, d)``, and the differing
parameters as :class:`~convcheck.arrays.PerRun` values. Per round, one stacked evaluation of
the objective at the ``R`` models serves the trace, the diagnostics and the next round
(:class:`~convcheck.engine.oracle.RunsOracle`), the messages are priced run by run
(:func:`~convcheck.engine.rounds.price_runs`) and the traces written in one step
(:class:`~convcheck.engine.common.RunsRecorder`). A run that diverges or reaches its target
leaves the batch (the states are compacted) and the others go on.

Each run's iterates, trace, bits, ledger, status and summary are those of the run alone: the
batched arithmetic is the single run's, run by run (elementwise operations, the same
reductions, the objective's products through the same matrix-vector kernel), so on numpy they
agree bit for bit.

Runs that cannot share a computation are split into groups automatically: a different
algorithm class, a different non-batchable parameter (compressor, ``k``, error correction, a
per-coordinate ξ, …). Randomized runs (minibatches, randomized compressors: each has its own
random stream), runs of an algorithm without ``batch_axis`` (plug-ins, injected bugs) and
groups of one run alone go through :func:`convcheck.engine.run`. A group larger than the
memory budget (traces and working arrays, estimated per run) is run in chunks; each run's
``meta["batch"]`` says how it was run.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm
from convcheck.arrays import PerRun
from convcheck.engine.common import (
    DEFAULT_BLOWUP,
    DEFAULT_TRACE_BUDGET,
    STORED_COLUMNS,
    Recorder,
    RunQuantities,
    RunsRecorder,
    row_bytes,
    run_quantities,
    start_point,
)
from convcheck.engine.oracle import RunsOracle
from convcheck.engine.rounds import States, price_runs, start, sync_round
from convcheck.engine.sync import run
from convcheck.engine.trace import Run
from convcheck.errors import InputError, check_int
from convcheck.problem import Problem

#: Working memory of one run of a batch, in float64 words: per ``M·d`` entry (states,
#: messages, gradients and their temporaries) and per stored data row (the objective's row
#: arrays at the run's model).
WORDS_PER_ENTRY = 24
WORDS_PER_DATA_ROW = 8


class NumpyRuns:
    """Where a batch's arrays live: numpy float64, the reference (each run equal to the run
    alone bit for bit). Another backend (``convcheck.torch.batch.TorchRuns``: tensors on a
    device) offers the same methods."""

    name = "numpy"

    @staticmethod
    def asarray(points: np.ndarray) -> np.ndarray:
        """Start points ``(R, d)`` as this backend's array."""
        return points

    @staticmethod
    def evaluator(problem: Problem) -> Callable[[Any], tuple[Any, Any]]:
        """``thetas (A, d)`` → worker values ``(A, M)`` and gradients ``(A, M, d)``."""
        return problem.objective.runs_values_and_gradients

    @staticmethod
    def quantities(theta: np.ndarray, previous: np.ndarray, values: np.ndarray,
                   gradients: np.ndarray, theta_star: np.ndarray | None) -> RunQuantities:
        return run_quantities(theta, previous, values, gradients, theta_star)

    @staticmethod
    def index(rows: np.ndarray) -> np.ndarray:
        """Run positions as an index into this backend's arrays."""
        return rows

    @staticmethod
    def to_numpy(x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


#: The default backend.
NUMPY_RUNS = NumpyRuns()


@dataclass(frozen=True)
class _Member:
    """One requested run: its position in the request, algorithm, seed and start point."""

    index: int
    algorithm: Algorithm
    seed: int
    theta0: np.ndarray


def run_batch(
    algorithms: Sequence[Algorithm],
    problem: Problem | Sequence[Problem],
    iterations: int,
    *,
    seeds: int | Sequence[int] = 0,
    theta0: np.ndarray | Sequence[np.ndarray | None] | None = None,
    target: float | None = None,
    target_metric: str | None = None,
    stop_at_target: bool = True,
    blowup: float = DEFAULT_BLOWUP,
    memory_budget: int = DEFAULT_TRACE_BUDGET,
    backend: Any = NUMPY_RUNS,
) -> list[Run]:
    """Run every algorithm of ``algorithms`` on ``problem``, batching the runs that can be.

    Parameters
    ----------
    algorithms : sequence of Algorithm
        One per run (the same instance may appear several times, e.g. with different seeds or
        start points); synchronous ones.
    problem : Problem, or a sequence of one Problem per run
        Every run's problem; runs of different problems are refused (call once per problem).
    iterations : int
        Rounds ``T ≥ 1`` of every run.
    seeds : int or sequence of int
        One seed for every run, or one per run.
    theta0 : ndarray (d,) or (R, d), or a sequence of one start point (or None) per run
        Start points (default 0).
    target, target_metric, stop_at_target, blowup
        As in :func:`convcheck.engine.run`, for every run.
    memory_budget : int
        Bytes a group of runs may take at once (their traces and working arrays, estimated);
        a larger group is run in chunks, and a run whose trace alone exceeds it is run alone
        (as :func:`convcheck.engine.run` with this budget would, or refused the same way).
    backend : NumpyRuns or another backend
        Where the batched arrays live (default numpy float64;
        :func:`convcheck.torch.batch.run_batch` runs them as tensors on a device). Runs that go
        alone use :func:`convcheck.engine.run` (numpy) whatever the backend.

    Returns
    -------
    list of Run
        In the order of ``algorithms``; each equals ``run(algorithms[r], problem, iterations,
        seed=seeds[r], theta0=theta0[r], …)`` (``meta`` adds ``"batch"``: how it was run, and
        ``wall_time_s`` is the time of its batch until it left).

    Raises
    ------
    InputError
        Before any run starts: not a synchronous algorithm, different problems, a seed or
        start point list of the wrong length, a bad seed, start point or setting, a
        parameter that does not fit the problem's dimension, or a trace over the budget that
        cannot stop early.
    """
    algorithms = list(algorithms)
    if not algorithms:
        raise InputError("algorithms", algorithms, "a nonempty sequence of algorithms")
    for algorithm in algorithms:
        if not isinstance(algorithm, Algorithm) or "sync" not in algorithm.transports:
            allowed = ("synchronous algorithms (asynchronous ones run with "
                       "convcheck.engine.run_async)")
            raise InputError("algorithm", getattr(algorithm, "name", algorithm), allowed)
    count = len(algorithms)
    problem = _one_problem(problem, count)
    iterations = check_int("iterations", iterations, 1)
    memory_budget = check_int("memory_budget", memory_budget, 1)
    members = [
        _Member(i, algorithm, seed, start_point(point, problem.objective.dim))
        for i, (algorithm, seed, point) in enumerate(
            zip(algorithms, _per_run_seeds(seeds, count), _per_run_points(theta0, count),
                strict=True))
    ]
    settings = {"target": target, "target_metric": target_metric,
                "stop_at_target": stop_at_target, "blowup": blowup}
    for member in members:
        member.algorithm.prepare(problem.objective.dim)
    plan = _plan(members, problem, iterations, settings, memory_budget)
    runs: list[Run | None] = [None] * count
    for chunk, note in plan:
        if len(chunk) == 1:
            member = chunk[0]
            result = run(member.algorithm, problem, iterations, seed=member.seed,
                         theta0=member.theta0, memory_budget=memory_budget, **settings)
            result.meta["batch"] = {"runs": count, "batched_with": 1, "note": note}
            runs[member.index] = result
            continue
        results = _run_chunk(chunk, problem, iterations, settings, backend)
        for member, result in zip(chunk, results, strict=True):
            result.meta["batch"] = {"runs": count, "batched_with": len(chunk), "note": note,
                                    "arrays": backend.describe()}
            runs[member.index] = result
    return runs  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Validation and grouping
# ---------------------------------------------------------------------------------------------

def _one_problem(problem: Problem | Sequence[Problem], count: int) -> Problem:
    if isinstance(problem, Problem):
        return problem
    problems = list(problem)
    if len(problems) != count:
        raise InputError("problem", f"{len(problems)} problems",
                         f"one Problem, or one per run ({count})")
    first = problems[0]
    for other in problems[1:]:
        if other is not first:
            raise InputError("problem", getattr(other.objective, "name", repr(other)),
                             "the same Problem for every run of a batch (runs of different "
                             "problems cannot share a computation: call run_batch once per "
                             "problem)")
    if not isinstance(first, Problem):
        raise InputError("problem", repr(first), "a convcheck Problem")
    return first


def _per_run_seeds(seeds: int | Sequence[int], count: int) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return [check_int("seed", seeds, 0)] * count
    values = list(seeds)
    if len(values) != count:
        raise InputError("seeds", f"{len(values)} seeds", f"one seed, or one per run ({count})")
    return [check_int("seed", seed, 0) for seed in values]


def _per_run_points(theta0: Any, count: int) -> list[Any]:
    if theta0 is None:
        return [None] * count
    if isinstance(theta0, np.ndarray) and theta0.ndim == 1:
        return [theta0] * count
    points = list(theta0)
    if len(points) != count:
        raise InputError("theta0", f"{len(points)} start points",
                         f"one start point (d,), or one per run ({count})")
    return points


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def group_key(algorithm: Algorithm) -> tuple | None:
    """What runs of one batch share: the algorithm class and every parameter that is not a
    batchable scalar (compressors by their description); None for a run that goes alone
    (randomized, or a class without ``batch_axis``)."""
    cls = type(algorithm)
    if not cls.batch_axis or algorithm.randomized:
        return None
    described = algorithm.params()
    fixed = []
    for param in cls.parameters:
        if param.batchable and _is_scalar(getattr(algorithm, param.name)):
            continue
        fixed.append((param.name, json.dumps(described[param.name], sort_keys=True,
                                             default=repr)))
    return cls, tuple(fixed)


def _alone_reason(algorithm: Algorithm) -> str:
    if not type(algorithm).batch_axis:
        return f"run alone: {algorithm.name} has no batch axis"
    return "run alone: randomized (its own random stream)"


def run_bytes(problem: Problem, names: int, rows: int) -> tuple[int, int]:
    """Estimated bytes of one run of a batch: its trace (``rows`` rows of ``names`` columns
    and the ledger) and its working arrays (:data:`WORDS_PER_ENTRY`,
    :data:`WORDS_PER_DATA_ROW`)."""
    objective = problem.objective
    workers = objective.n_workers
    trace = rows * row_bytes(names, workers)
    working = 8 * (WORDS_PER_ENTRY * workers * objective.dim
                   + WORDS_PER_DATA_ROW * objective.shards.weights.size)
    return trace, working


def _plan(members: list[_Member], problem: Problem, iterations: int, settings: dict,
          budget: int) -> list[tuple[list[_Member], str]]:
    """The chunks to run, each with its note: groups of batchable runs (split into chunks
    under the memory budget) and runs alone."""
    workers = problem.objective.n_workers
    recorders: dict[tuple[str, ...], Recorder] = {}
    groups: dict[Any, list[_Member]] = {}
    plan: list[tuple[list[_Member], str]] = []
    for member in members:
        names = member.algorithm.diagnostic_names
        if names not in recorders:  # validates the settings; refuses, as run() would, a
            recorders[names] = Recorder(problem, names, workers, iterations + 1,  # trace
                                        budget=budget, **settings)  # over the budget
        key = group_key(member.algorithm)
        if key is None:
            plan.append(([member], _alone_reason(member.algorithm)))
        else:
            groups.setdefault(key, []).append(member)
    for group in groups.values():
        names = STORED_COLUMNS + group[0].algorithm.diagnostic_names
        recorder = recorders[group[0].algorithm.diagnostic_names]
        if len(group) == 1:
            plan.append((group, "run alone: the only run of its kind"))
            continue
        if iterations + 1 > recorder.max_rows:
            plan.extend(([m], "run alone: its trace may reach the memory budget")
                        for m in group)
            continue
        trace, working = run_bytes(problem, len(names), iterations + 1)
        size = max(1, budget // (trace + working))
        if size >= len(group):
            plan.append((group, ""))
            continue
        chunks = [group[i:i + size] for i in range(0, len(group), size)]
        note = (f"a batch of {len(group)} runs, run in {len(chunks)} chunks of at most {size} "
                f"under the memory budget of {budget / 2**30:.3g} GiB (about "
                f"{(trace + working) / 2**20:.3g} MiB per run)")
        plan.extend((chunk, note) for chunk in chunks)
    return plan


# ---------------------------------------------------------------------------------------------
# One batched computation
# ---------------------------------------------------------------------------------------------

def batched_algorithm(algorithms: Sequence[Algorithm]) -> Algorithm:
    """One algorithm standing for runs of one group: a copy of the first, with a
    :class:`~convcheck.arrays.PerRun` for every batchable parameter whose values differ."""
    first = algorithms[0]
    out = copy.copy(first)
    for param in type(first).parameters:
        if not param.batchable:
            continue
        values = [getattr(algorithm, param.name) for algorithm in algorithms]
        if _is_scalar(values[0]) and any(value != values[0] for value in values):
            setattr(out, param.name, PerRun(values))
    return out


def _compact(algorithm: Algorithm, states: States, keep: np.ndarray, index: Any) -> None:
    """Keep the runs at positions ``keep`` (``index``: the same as the backend's index): every
    array of the states (leading run axis; an array shared by two fields stays shared) and
    every per-run parameter."""
    taken: dict[int, Any] = {}

    def take(value: Any) -> Any:
        if getattr(value, "ndim", 0) == 0:
            return value
        if id(value) not in taken:
            taken[id(value)] = value[index]
        return taken[id(value)]

    for state in (states.server, states.workers):
        for field in dataclasses.fields(state):
            setattr(state, field.name, take(getattr(state, field.name)))
    states.model = take(states.model)
    for param in type(algorithm).parameters:
        value = getattr(algorithm, param.name)
        if isinstance(value, PerRun):
            setattr(algorithm, param.name, value.take(keep))


def _run_chunk(members: list[_Member], problem: Problem, iterations: int,
               settings: dict, backend: Any) -> list[Run]:
    """The runs of ``members`` (one group) as one computation on ``backend``."""
    objective = problem.objective
    workers, count = objective.n_workers, len(members)
    algorithms = [member.algorithm for member in members]
    algorithm = batched_algorithm(algorithms)
    thetas0 = backend.asarray(np.stack([member.theta0 for member in members]))
    oracle = RunsOracle(backend.evaluator(problem), count)
    recorder = RunsRecorder(problem, algorithm.diagnostic_names, workers, count,
                            iterations + 1, to_numpy=backend.to_numpy, **settings)
    theta_star = recorder.measure.theta_star
    if theta_star is not None:
        theta_star = backend.asarray(theta_star)
    states, wire = start(algorithm, thetas0, workers, lambda: oracle.worker_gradients(thetas0))
    diagnose = algorithm.diagnostics

    def record(k: int, wire: Any, previous: Any) -> np.ndarray:
        theta = states.server.theta
        values, gradients = oracle.evaluate(theta)
        up, down, nnz = price_runs(wire, theta.shape[0], workers)
        extra = diagnose(states.server, states.workers, gradients)
        quantities = backend.quantities(theta, previous, values, gradients, theta_star)
        return recorder.record(k, theta, quantities, up, down, nnz, extra)

    leave = record(0, wire, thetas0)
    for k in range(1, iterations + 1):
        if leave.any():
            keep = np.flatnonzero(~leave)
            if keep.size == 0:
                break
            index = backend.index(keep)
            _compact(algorithm, states, keep, index)
            oracle.take(keep, index)
        previous = states.server.theta
        with np.errstate(over="ignore", invalid="ignore"):
            model = states.model
            gradients = oracle.last_gradients if model is previous else (
                oracle.worker_gradients(model))
            wire = sync_round(algorithm, states, gradients, None)
            leave = record(k, wire, previous)
    metas = [
        {
            "engine": "sync",
            "seed": member.seed,
            "theta0": member.theta0.tolist() if np.any(member.theta0) else None,
            "oracle": {"full_evaluations": int(oracle.full_evaluations[i]),
                       "stochastic_evaluations": 0},
        }
        for i, member in enumerate(members)
    ]
    last = states.server.theta
    if leave.any():
        last = last[backend.index(np.flatnonzero(~leave))]
    return recorder.finish(algorithms, problem, last, metas, iterations)
