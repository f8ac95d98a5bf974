"""The asynchronous parameter-server engine: an event-driven simulation (docs/async-theory.md §1).

Each worker repeats: receive a model (downlink), compute for a duration drawn from its
compute-time model, send its message (uplink). The server applies messages one at a time in
the order they arrive, ``θ^t → θ^{t+1}``, and replies to the sender at once. Simulated time
follows the :class:`~convcheck.engine.timing.Link` model, so it depends on the bits sent.

Definitions
-----------
* Server version ``t``: the number of updates applied; the model the server holds is ``θ^t``.
* A worker *reads* version ``r`` when the server sends it the reply it computes on (the model
  it will hold is fixed at that moment; links are FIFO, so nothing sent later overtakes it).
* Staleness of the update that makes ``θ^{t+1}``: ``τ_t = t − r``, the number of server
  updates since its sender read its model. Equal speeds give ``τ ≈ W − 1``.
* Order: arrivals are processed by ``(time, worker index, send sequence number)``, so ties are
  broken deterministically (lower worker index first).

Bounded staleness ``τ_max`` (optional). A message may be applied only if no message still
outstanding (being computed, in flight, or held) would then be forced past ``τ_max``: with the
other outstanding read versions sorted, ``r_(1) ≤ … ≤ r_(n)``, applying at version ``t``
requires ``t + i − r_(i) ≤ τ_max`` for every ``i`` (they could still all be applied in time,
oldest first). A message that fails this is *held* at the server and its worker waits (for
its fresh model) until older messages have been applied. When ``τ_max < W − 1`` at most
``τ_max + 1`` workers compute at once; the others wait in a first-come queue for a model.
This makes ``τ_t ≤ τ_max`` for every update, wastes no computation and never deadlocks (the
oldest outstanding message is always applicable). Dropping too-stale messages instead would
break the workers' error memories, which already hold what was sent.

A worker's computation is simulated as soon as the model it will compute on is determined
(when its reply is sent; links are FIFO, so nothing can change that model before it arrives).
Worker-side diagnostics of row ``t`` (error memories, momenta) are therefore read after the
workers served during update ``t`` have computed their next message.

Randomness: the algorithm's generator is ``default_rng(SeedSequence(seed))`` (as in the
synchronous engine, so one worker with zero latency reproduces synchronous SGD), and worker
``k``'s compute durations come from ``SeedSequence(seed).spawn(W)[k]``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm, put_rows, take_rows
from convcheck.arrays import NUMPY
from convcheck.compressors import Compressor
from convcheck.engine.common import DEFAULT_BLOWUP, DEFAULT_TRACE_BUDGET, Recorder, start_point
from convcheck.engine.oracle import Oracle
from convcheck.engine.rounds import start
from convcheck.engine.timing import ComputeTime, Exponential, Link
from convcheck.engine.trace import Run
from convcheck.errors import InputError, check_int
from convcheck.problem import Problem

#: Columns an asynchronous trace adds after the base columns: simulated time at which the
#: iterate was produced, the staleness of the update that produced it, its sender (row 0: -1),
#: and ``(1/W) Σ_k ‖θ − θ_k‖²``, how far the workers' models are from the server's.
ASYNC_COLUMNS = ("time", "staleness", "worker", "model_drift_sq")
#: Compute durations drawn per worker at a time.
_BLOCK = 256

#: ``on_compute(worker, gradient, message, cluster)`` is called after every worker computation.
ComputeObserver = Callable[[int, np.ndarray, np.ndarray, Any], None]
#: ``observer(t, cluster, event)`` is called after every server update ``t ≥ 1`` with
#: ``event = {"worker", "staleness", "time", "read"}``; ``cluster.server``, ``cluster.workers``
#: and ``cluster.models`` hold the algorithm's states and the workers' models.
Observer = Callable[[int, Any, dict], None]


class _Gradients:
    """Worker gradients for the algorithms: worker ``k`` uses shard ``shard_of[k]``."""

    def __init__(self, oracle: Oracle, shard_of: np.ndarray) -> None:
        self.oracle, self.shard_of = oracle, shard_of

    def __call__(
        self, worker: int, theta: np.ndarray, batch_size: int | None, rng: np.random.Generator
    ) -> np.ndarray:
        shard = int(self.shard_of[worker])
        if batch_size is None:
            return self.oracle.shard_gradient(shard, theta)
        return self.oracle.stochastic_shard_gradient(shard, theta, batch_size, rng)


class _Cluster:
    """Workers, links and the server's queue: who computes on which version, and when
    messages arrive (the module notes give the rules). Bits go to the ledger row ``row``."""

    def __init__(
        self,
        algorithm: Algorithm,
        theta0: np.ndarray,
        workers: int,
        gradients: _Gradients,
        rng: np.random.Generator,
        compute: ComputeTime,
        link: Link,
        tau_max: int | None,
        seed: int,
        on_compute: ComputeObserver | None = None,
    ) -> None:
        self.algorithm, self.gradients, self.rng = algorithm, gradients, rng
        self.on_compute = on_compute
        self.compute, self.link, self.tau_max = compute, link, tau_max
        self.batch = getattr(algorithm, "batch_size", None)
        states, _ = start(algorithm, theta0, workers, lambda: None)
        self.server, self.workers_state, self.models = states.server, states.workers, states.held
        self.up_bits = np.zeros(workers, dtype=np.int64)
        self.down_bits = np.zeros(workers, dtype=np.int64)
        self.nnz = np.zeros(2, dtype=np.int64)
        self.workers = workers
        self.timing = [
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(workers)
        ]
        self.durations = [np.empty(0)] * workers
        self.drawn = np.zeros(workers, dtype=np.int64)
        self.used = np.zeros(workers, dtype=np.int64)
        self.version, self.now, self.sequence = 0, 0.0, 0
        self.read = np.zeros(workers, dtype=np.int64)
        self.outstanding = np.zeros(workers, dtype=bool)
        self.pending: list[tuple[np.ndarray, int] | None] = [None] * workers
        self.arrivals: list[tuple[float, int, int]] = []
        self.held: list[tuple[float, int, int]] = []
        self.waiting: deque[int] = deque()
        self.queued_at = np.zeros(workers, dtype=np.int64)
        self.wait_since = np.zeros(workers)
        self.down_free = np.zeros(workers)
        self.counters = {"held_updates": 0, "hold_time": 0.0, "waited_reads": 0, "wait_time": 0.0}
        for k in range(workers):  # every worker holds θ⁰ at time 0
            if self.may_read():
                self.dispatch(k, None)
            else:
                self.waiting.append(k)

    def next_duration(self, k: int) -> float:
        if self.used[k] == self.drawn[k]:
            self.durations[k] = self.compute.durations(
                k, self.workers, int(self.drawn[k]), _BLOCK, self.timing[k]
            )
            self.drawn[k] += _BLOCK
        value = float(self.durations[k][self.used[k] - self.drawn[k] + _BLOCK])
        self.used[k] += 1
        if not (value >= 0 and math.isfinite(value)):
            raise InputError("compute", f"duration {value!r} for worker {k}", "durations >= 0")
        return value

    def send_down(self, k: int | slice, vector: np.ndarray, codec: Compressor) -> None:
        """Put ``vector`` on the downlink of worker ``k`` (or of every worker, ``k = slice``),
        after what is already queued there (FIFO), and price it in the current row."""
        bits = int(NUMPY.bits(codec, vector)[0])
        self.down_bits[k] += bits
        copies = self.workers if isinstance(k, slice) else 1
        self.nnz[1] += np.count_nonzero(vector) * copies
        self.down_free[k] = np.maximum(self.now, self.down_free[k]) + self.link.transmission(
            bits, "down"
        )

    def compute_message(self, k: int) -> np.ndarray:
        """Worker ``k``'s message, computed on its model: the algorithm's worker half on its
        row of the workers' state."""
        row = slice(k, k + 1)
        mine = take_rows(self.workers_state, row)
        gradient = self.gradients(k, self.models[k], self.batch, self.rng)
        message = self.algorithm.worker(mine, gradient[None], self.models[k], self.rng)[0]
        put_rows(self.workers_state, row, mine)
        if self.on_compute is not None:
            self.on_compute(k, gradient, message, self)
        return message

    def dispatch(self, k: int, reply: tuple[np.ndarray, Compressor] | None) -> None:
        """Worker ``k`` reads the current version: reply, compute, send."""
        if reply is not None:
            vector, codec = reply
            self.send_down(k, vector, codec)
            row = slice(k, k + 1)
            mine = take_rows(self.workers_state, row)
            self.models[k] = self.algorithm.receive_reply(mine, self.models[k], vector)
            put_rows(self.workers_state, row, mine)
            received = self.down_free[k] + self.link.latency("down")
        else:
            received = self.now
        self.read[k] = self.version
        self.outstanding[k] = True
        message = self.compute_message(k)
        bits = int(NUMPY.bits(self.algorithm.up_codec, message)[0])
        self.pending[k] = (message, bits)
        done = received + self.next_duration(k)
        arrival = done + self.link.transmission(bits, "up") + self.link.latency("up")
        heapq.heappush(self.arrivals, (arrival, k, self.sequence))
        self.sequence += 1

    def applicable(self, k: int) -> bool:
        """Applying ``k``'s message now forces no outstanding message past ``τ_max``."""
        if self.tau_max is None:
            return True
        others = np.sort(self.read[self.outstanding & (np.arange(self.workers) != k)])
        limit = self.version + np.arange(1, others.size + 1) - others
        return self.version - self.read[k] <= self.tau_max and bool(np.all(limit <= self.tau_max))

    def may_read(self) -> bool:
        return self.tau_max is None or int(self.outstanding.sum()) <= self.tau_max

    def next_message(self) -> tuple[int, np.ndarray, int]:
        """The next message to apply: a held one first (in arrival order), else the next
        arrival; advances the clock. Returns ``(worker, message, bits)``."""
        choice = next((i for i, (_, k, _) in enumerate(self.held) if self.applicable(k)), None)
        if choice is not None:
            arrived, k, _ = self.held.pop(choice)
            self.counters["hold_time"] += self.now - arrived
        else:
            while True:
                if not self.arrivals:  # impossible by construction; a bug if it happens
                    raise RuntimeError("asynchronous engine: no applicable message")
                self.now, k, seq = heapq.heappop(self.arrivals)
                if self.applicable(k):
                    break
                self.held.append((self.now, k, seq))
                self.counters["held_updates"] += 1
        message, bits = self.pending[k]
        self.pending[k] = None
        return k, message, bits

    def apply(self, k: int, message: np.ndarray, bits: int, t: int) -> None:
        """Update ``t``: the server applies ``k``'s message (the algorithm's asynchronous rule),
        sends any broadcast, then replies to the sender and to waiting workers as slots free up
        (each then computes its next message)."""
        self.up_bits[k] += bits
        self.nnz[0] += np.count_nonzero(message)
        broadcast = self.algorithm.server_event(self.server, k, message)
        self.version += 1
        self.outstanding[k] = False
        if broadcast is not None:
            vector, codec = broadcast
            self.send_down(slice(None), vector, codec)
            for j in range(self.workers):
                row = slice(j, j + 1)
                mine = take_rows(self.workers_state, row)
                self.models[j] = self.algorithm.receive_broadcast(mine, self.models[j], vector)
                put_rows(self.workers_state, row, mine)
        self.waiting.append(k)
        self.queued_at[k] = t
        self.wait_since[k] = self.now
        while self.waiting and self.may_read():
            j = self.waiting.popleft()
            if self.queued_at[j] != t:
                self.counters["waited_reads"] += 1
                self.counters["wait_time"] += self.now - self.wait_since[j]
            self.dispatch(j, self.algorithm.reply(self.server, j))

    def drift(self) -> float:
        """``(1/W) Σ_k ‖θ − θ_k‖²``."""
        return NUMPY.mean_square_norm(self.models - self.server.theta)

    def take_bits(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """The bits and nonzeros since the last call (one trace row), reset to zero."""
        out = (self.up_bits.copy(), self.down_bits.copy(), (int(self.nnz[0]), int(self.nnz[1])))
        self.up_bits[:] = 0
        self.down_bits[:] = 0
        self.nnz[:] = 0
        return out


def run_async(
    algorithm: Algorithm,
    problem: Problem,
    iterations: int,
    *,
    workers: int | None = None,
    compute: ComputeTime | None = None,
    link: Link | None = None,
    tau_max: int | None = None,
    seed: int = 0,
    theta0: np.ndarray | None = None,
    target: float | None = None,
    target_metric: str | None = None,
    stop_at_target: bool = True,
    trace_every: int = 1,
    blowup: float = DEFAULT_BLOWUP,
    progress: bool = False,
    observer: Observer | None = None,
    on_compute: ComputeObserver | None = None,
    memory_budget: int = DEFAULT_TRACE_BUDGET,
) -> Run:
    """Simulate ``algorithm`` on an asynchronous parameter server for ``iterations`` updates.

    Parameters
    ----------
    algorithm : Algorithm
        One with the ``"async"`` transport (its asynchronous rule).
    problem : Problem
    iterations : int
        Server updates ``T ≥ 1``.
    workers : int, optional
        Number of workers ``W``. Default: one per shard of the problem. A problem with a single
        shard may be served by ``W`` workers that all sample the whole dataset (the
        "shared data" setting of asynchronous SGD analyses).
    compute : ComputeTime, optional
        Compute-time model (default: exponential, mean 1 s, equal speeds).
    link : Link, optional
        Latency and bandwidth per direction (default: instantaneous).
    tau_max : int, optional
        Hard staleness bound ``τ_max ≥ 0`` (see the module notes); ``None``: unbounded.
    seed : int
        Seeds the algorithm's generator and the compute durations.
    theta0 : ndarray of shape (d,), optional
        Start point (default 0); every worker holds it at time 0.
    target, target_metric, stop_at_target, blowup, progress, memory_budget
        As in :func:`convcheck.engine.run`.
    trace_every : int
        Evaluate and record the server model every this many updates (and at the last one).
        ``f`` and ``∇f`` need a pass over all the data, ``W`` times a worker's share, so
        thinning saves time; staleness statistics, bits and the ledger still cover every
        update. The summary's ``ergodic_grad_norm_sq`` = ``(1/T) Σ_{t<T} ‖∇f(θ^t)‖²`` is exact
        only with ``trace_every = 1`` (``ergodic_exact``); otherwise it is the mean over the
        traced iterates ``t < T``, a systematic sample.
    observer : callable, optional
        Called after every update (tests check invariants at every event with it).
    on_compute : callable, optional
        Called after every worker computation (e.g. a :class:`ComputationLog`).

    Returns
    -------
    Run
        Rows are traced server versions (``summary["iterations"]`` counts server updates,
        ``Run.iterations`` trace rows); columns: the base columns, :data:`ASYNC_COLUMNS`, then
        the algorithm's diagnostics. The ledger row of a traced version holds the bits of
        the updates since the previous traced row, per worker (uplink of the sender; downlink
        of the replies and broadcasts sent). The summary adds simulated time and bits to the
        target, the ergodic mean squared gradient norm and the staleness statistics.
    """
    if not isinstance(algorithm, Algorithm) or "async" not in algorithm.transports:
        raise InputError(
            "algorithm", getattr(algorithm, "name", algorithm),
            "an asynchronous algorithm (synchronous ones run with convcheck.engine.run)"
        )
    iterations = check_int("iterations", iterations, 1)
    seed = check_int("seed", seed, 0)
    trace_every = check_int("trace_every", trace_every, 1)
    if tau_max is not None:
        tau_max = check_int("tau_max", tau_max, 0)
    objective = problem.objective
    shards = objective.n_workers
    if workers is None:
        workers = shards
    workers = check_int("workers", workers, 1)
    if shards not in (1, workers):
        allowed = f"{shards} (one per shard), or any number with a one-shard problem"
        raise InputError("workers", workers, allowed)
    shard_of = np.zeros(workers, dtype=np.int64) if shards == 1 else np.arange(workers)
    compute = Exponential(1.0) if compute is None else compute
    if not isinstance(compute, ComputeTime):
        raise InputError("compute", compute, "a convcheck.engine.timing.ComputeTime")
    compute.check_workers(workers)
    link = Link() if link is None else link
    if not isinstance(link, Link):
        raise InputError("link", link, "a convcheck.engine.timing.Link")
    theta0 = start_point(theta0, objective.dim)
    oracle = Oracle(objective)
    recorder = Recorder(problem, ASYNC_COLUMNS + algorithm.diagnostic_names, workers,
                        iterations // trace_every + 2, target=target,
                        target_metric=target_metric, stop_at_target=stop_at_target,
                        blowup=blowup, budget=memory_budget)
    staleness = np.zeros(iterations, dtype=np.int64)
    sender = np.zeros(iterations, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    cluster = _Cluster(algorithm, theta0, workers, _Gradients(oracle, shard_of), rng, compute,
                       link, tau_max, seed, on_compute)
    diagnose = algorithm.diagnostics
    reached_time: float | None = None

    def record(t: int, previous: np.ndarray) -> bool:
        up, down, nnz = cluster.take_bits()
        last = (cluster.now, staleness[t - 1] if t else -1, sender[t - 1] if t else -1,
                cluster.drift())
        extra = last + diagnose(cluster.server, cluster.workers_state, None)
        theta = cluster.server.theta
        return recorder.record(t, theta, previous, oracle.evaluate(theta), up, down, nnz, extra)

    stop = record(0, theta0)
    if recorder.reached == 0:
        reached_time = 0.0
    last = 0
    updates: Any = range(1, iterations + 1)
    if progress:
        from tqdm import tqdm

        updates = tqdm(updates, desc=algorithm.name, unit="update")
    for t in updates:
        if stop:
            break
        k, message, bits = cluster.next_message()
        previous = cluster.server.theta
        staleness[t - 1] = cluster.version - cluster.read[k]
        sender[t - 1] = k
        with np.errstate(over="ignore", invalid="ignore"):
            cluster.apply(k, message, bits, t)
        if observer is not None:
            event = {"worker": k, "staleness": int(staleness[t - 1]), "time": cluster.now,
                     "read": int(cluster.read[k])}
            observer(t, cluster, event)
        last = t
        finite = NUMPY.all_finite(cluster.server.theta)
        if finite and t % trace_every and t != iterations:
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            stop = record(t, previous)
        if recorder.reached == t and reached_time is None:
            reached_time = cluster.now
    run = recorder.finish(algorithm, problem, cluster.server.theta, {
        "engine": "async",
        "seed": seed,
        "workers": workers,
        "data": "shared (every worker samples the whole dataset)"
        if shards == 1 and workers > 1
        else "one shard per worker",
        "compute": compute.describe(),
        "link": link.describe(),
        "tau_max": tau_max,
        "trace_every": trace_every,
        "oracle": {
            "full_evaluations": oracle.full_evaluations,
            "shard_evaluations": oracle.shard_evaluations,
            "stochastic_evaluations": oracle.stochastic_evaluations,
        },
    }, iterations, iterations=last)
    columns, summary = run.columns, run.summary
    for name in ("staleness", "worker"):
        columns[name] = columns[name].astype(np.int64)
    summary["target_time"] = reached_time
    summary["time"] = float(columns["time"][-1])
    before_last = columns["iteration"] < columns["iteration"][-1]
    summary["ergodic_grad_norm_sq"] = (
        float(columns["grad_norm_sq"][before_last].mean()) if before_last.any() else None
    )
    summary["ergodic_exact"] = trace_every == 1 and run.status != "diverged"
    summary["staleness"] = {
        **_staleness_summary(staleness[:last], sender[:last], workers),
        "tau_max": tau_max,
        **cluster.counters,
    }
    return run


class ComputationLog:
    """Every worker computation of a run (pass it as ``on_compute``): ``entries[k]`` lists
    worker ``k``'s ``(gradient, message, snapshot)`` in order, ``snapshot = extra(cluster, k)``
    taken right after the computation (``None`` without ``extra``). Tests and the special-case
    figures check per-computation identities with it."""

    def __init__(self, extra: Callable[[Any, int], Any] | None = None) -> None:
        self.extra = extra
        self.entries: dict[int, list[tuple[np.ndarray, np.ndarray, Any]]] = {}

    def __call__(self, worker: int, gradient: np.ndarray, message: np.ndarray,
                 cluster: Any) -> None:
        snapshot = None if self.extra is None else self.extra(cluster, worker)
        self.entries.setdefault(worker, []).append((gradient.copy(), message.copy(), snapshot))


def _staleness_summary(taus: np.ndarray, senders: np.ndarray, workers: int) -> dict[str, Any]:
    """Mean, max, histogram and per-worker statistics of the staleness of ``T`` updates, and
    ``max_update_gap`` ``H``: the most server updates between two updates of one worker, or
    from its last update to ``T`` (the holding time of its error memory in the bound)."""
    T = taus.size
    if T == 0:
        return {
            "mean": None,
            "max": None,
            "histogram": [],
            "per_worker_mean": [None] * workers,
            "updates_per_worker": [0] * workers,
            "max_update_gap": None,
        }
    counts = np.bincount(senders, minlength=workers)
    sums = np.bincount(senders, weights=taus, minlength=workers)
    order = np.lexsort((np.arange(T), senders))  # updates grouped by worker, in time order
    steps, who = np.arange(T)[order], senders[order]
    same = who[1:] == who[:-1]
    gaps = (steps[1:] - steps[:-1])[same]
    last = np.ones(T, dtype=bool)
    last[:-1] = ~same  # the last update of each worker
    gap = max(int(gaps.max(initial=0)), int((T - 1 - steps[last]).max()))
    return {
        "mean": float(taus.mean()),
        "max": int(taus.max()),
        "histogram": np.bincount(taus).tolist(),
        "per_worker_mean": [
            float(total / count) if count else None
            for total, count in zip(sums, counts, strict=True)
        ],
        "updates_per_worker": counts.tolist(),
        "max_update_gap": gap,
    }
