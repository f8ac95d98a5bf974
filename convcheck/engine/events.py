"""The asynchronous parameter-server engine: an event-driven simulation (THEORY.md §4).

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
import time as wallclock
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from convcheck.algorithms.async_base import AsyncAlgorithm, Message
from convcheck.engine.common import DEFAULT_BLOWUP, Measure, start_point, summarize
from convcheck.engine.oracle import Oracle
from convcheck.engine.timing import ComputeTime, Exponential, Link
from convcheck.engine.trace import BASE_COLUMNS, Ledger, Run
from convcheck.environment import versions
from convcheck.errors import InputError, check_int, check_real
from convcheck.problem import Problem

#: Columns an asynchronous trace adds after :data:`BASE_COLUMNS`: simulated time at which the
#: iterate was produced, the staleness of the update that produced it and its sender (row 0: -1).
ASYNC_COLUMNS = ("time", "staleness", "worker")
#: Compute durations drawn per worker at a time.
_BLOCK = 256

#: ``observer(t, state, event)`` is called after every server update ``t ≥ 1`` with
#: ``event = {"worker", "staleness", "time", "read"}``.
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
        algorithm: AsyncAlgorithm,
        state: Any,
        gradients: _Gradients,
        rng: np.random.Generator,
        compute: ComputeTime,
        link: Link,
        tau_max: int | None,
        seed: int,
        ledger: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> None:
        self.algorithm, self.state, self.gradients, self.rng = algorithm, state, gradients, rng
        self.compute, self.link, self.tau_max = compute, link, tau_max
        self.up_bits, self.down_bits, self.nnz = ledger
        workers = self.workers = state.models.shape[0]
        self.timing = [
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(workers)
        ]
        self.durations = [np.empty(0)] * workers
        self.drawn = np.zeros(workers, dtype=np.int64)
        self.used = np.zeros(workers, dtype=np.int64)
        self.version, self.now, self.row, self.sequence = 0, 0.0, 0, 0
        self.read = np.zeros(workers, dtype=np.int64)
        self.outstanding = np.zeros(workers, dtype=bool)
        self.pending: list[tuple[Message, int] | None] = [None] * workers
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

    def send_down(self, k: int | slice, message: Message) -> None:
        """Put ``message`` on the downlink of worker ``k`` (or of every worker, ``k = slice``),
        after what is already queued there (FIFO), and price it in the current row."""
        bits = int(message.codec.bits(message.vector))
        self.down_bits[self.row, k] += bits
        copies = self.workers if isinstance(k, slice) else 1
        self.nnz[self.row, 1] += np.count_nonzero(message.vector) * copies
        self.down_free[k] = np.maximum(self.now, self.down_free[k]) + self.link.transmission(
            bits, "down"
        )

    def dispatch(self, k: int, reply: Message | None) -> None:
        """Worker ``k`` reads the current version: reply, compute, send."""
        if reply is not None:
            self.send_down(k, reply)
            received = self.down_free[k] + self.link.latency("down")
        else:
            received = self.now
        self.read[k] = self.version
        self.outstanding[k] = True
        message = self.algorithm.worker_compute(self.state, k, self.gradients, self.rng)
        bits = int(message.codec.bits(message.vector))
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

    def next_message(self) -> tuple[int, Message, int]:
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

    def applied(self, k: int, t: int, broadcast: Message | None) -> None:
        """Bookkeeping after update ``t`` from ``k``: broadcast, then replies to the sender and
        to waiting workers as slots free up (each then computes its next message)."""
        self.version += 1
        self.outstanding[k] = False
        if broadcast is not None:
            self.send_down(slice(None), broadcast)
        self.waiting.append(k)
        self.queued_at[k] = t
        self.wait_since[k] = self.now
        while self.waiting and self.may_read():
            j = self.waiting.popleft()
            if self.queued_at[j] != t:
                self.counters["waited_reads"] += 1
                self.counters["wait_time"] += self.now - self.wait_since[j]
            self.dispatch(j, self.algorithm.server_reply(self.state, j))


def run_async(
    algorithm: AsyncAlgorithm,
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
) -> Run:
    """Simulate ``algorithm`` on an asynchronous parameter server for ``iterations`` updates.

    Parameters
    ----------
    algorithm : AsyncAlgorithm
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
    target, target_metric, stop_at_target, blowup, progress
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

    Returns
    -------
    Run
        Rows are traced server versions (``summary["iterations"]`` counts server updates,
        ``Run.iterations`` trace rows); columns :data:`BASE_COLUMNS`, :data:`ASYNC_COLUMNS`,
        then the algorithm's diagnostics. The ledger row of a traced version holds the bits of
        the updates since the previous traced row, per worker (uplink of the sender; downlink
        of the replies and broadcasts sent). The summary adds simulated time and bits to the
        target, the ergodic mean squared gradient norm and the staleness statistics.
    """
    if not isinstance(algorithm, AsyncAlgorithm):
        raise InputError(
            "algorithm", getattr(algorithm, "name", algorithm), "an asynchronous algorithm"
        )
    iterations = check_int("iterations", iterations, 1)
    seed = check_int("seed", seed, 0)
    trace_every = check_int("trace_every", trace_every, 1)
    blowup = check_real("blowup", blowup, 1.0, low_open=True)
    if tau_max is not None:
        tau_max = check_int("tau_max", tau_max, 0)
    measure = Measure.of(problem, target, target_metric)
    metric, target = measure.metric, measure.target
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
    d = objective.dim
    theta0 = start_point(theta0, d)

    rng = np.random.default_rng(np.random.SeedSequence(seed))
    oracle = Oracle(objective)
    rows = iterations // trace_every + 2
    names = BASE_COLUMNS + ASYNC_COLUMNS + algorithm.diagnostic_names
    column = {name: j for j, name in enumerate(names)}
    table = np.full((rows, len(names)), np.nan)
    up_bits = np.zeros((rows, workers), dtype=np.int64)
    down_bits = np.zeros((rows, workers), dtype=np.int64)
    nnz = np.zeros((rows, 2), dtype=np.int64)
    staleness = np.zeros(iterations, dtype=np.int64)
    sender = np.zeros(iterations, dtype=np.int64)

    def record(row: int, t: int, previous: np.ndarray | None) -> float:
        line = table[row]
        line[column["iteration"]] = t
        measure.write(line, column, oracle, state.theta, theta0 if previous is None else previous)
        line[column["bits_up"]] = up_bits[row].sum()
        line[column["bits_down"]] = down_bits[row].sum()
        line[column["nnz_up"]], line[column["nnz_down"]] = nnz[row]
        line[column["time"]] = cluster.now
        line[column["staleness"]] = staleness[t - 1] if t else -1
        line[column["worker"]] = sender[t - 1] if t else -1
        diagnostics = algorithm.diagnostics(state)
        for name, value in zip(algorithm.diagnostic_names, diagnostics, strict=True):
            line[column[name]] = value
        return line[column[metric]]

    started = wallclock.perf_counter()
    state = algorithm.start(theta0, workers)
    cluster = _Cluster(
        algorithm,
        state,
        _Gradients(oracle, shard_of),
        rng,
        compute,
        link,
        tau_max,
        seed,
        (up_bits, down_bits, nnz),
    )
    first = record(0, 0, None)
    scale = blowup * max(1.0, abs(table[0, column["suboptimality"]]))
    status, reason, last = "completed", f"ran {iterations} server updates", 0
    reached = 0 if target is not None and first <= target else None
    reached_time = 0.0 if reached == 0 else None
    cluster.row = 1
    updates = range(1, iterations + 1)
    if progress:
        from tqdm import tqdm

        updates = tqdm(updates, desc=algorithm.name, unit="update")
    for t in updates:
        if reached is not None and stop_at_target:
            break
        k, message, bits = cluster.next_message()
        row = cluster.row
        previous = state.theta
        staleness[t - 1] = cluster.version - cluster.read[k]
        sender[t - 1] = k
        up_bits[row, k] += bits
        nnz[row, 0] += np.count_nonzero(message.vector)
        with np.errstate(over="ignore", invalid="ignore"):
            broadcast = algorithm.server_apply(state, k, message.vector)
            cluster.applied(k, t, broadcast)
        if observer is not None:
            event = {
                "worker": k,
                "staleness": int(staleness[t - 1]),
                "time": cluster.now,
                "read": int(cluster.read[k]),
            }
            observer(t, state, event)
        last = t
        if not np.all(np.isfinite(state.theta)):
            record(row, t, previous)
            status, reason = "diverged", f"non-finite iterate at server update {t}"
            cluster.row += 1
            break
        if t % trace_every and t != iterations:
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            value = record(row, t, previous)
        sub = table[row, column["suboptimality"]]
        cluster.row += 1
        if not np.isfinite(sub):
            status, reason = "diverged", f"non-finite value at server update {t}"
            break
        if sub > scale:
            status = "diverged"
            reason = f"suboptimality {sub:.3g} > {blowup:g}·max(1, start) at server update {t}"
            break
        if target is not None and reached is None and value <= target:
            reached, reached_time = t, cluster.now
    if status != "diverged" and reached is not None and stop_at_target:
        status, reason = "target reached", f"{metric} <= {target:g} at server update {reached}"
    elapsed = wallclock.perf_counter() - started

    row = cluster.row
    table, up_bits, down_bits = table[:row], up_bits[:row], down_bits[:row]
    columns = {name: table[:, j].copy() for j, name in enumerate(names)}
    for name in ("iteration", "bits_up", "bits_down", "nnz_up", "nnz_down", "staleness", "worker"):
        columns[name] = columns[name].astype(np.int64)
    columns["bits_up_total"] = np.cumsum(up_bits.sum(axis=1))
    columns["bits_down_total"] = np.cumsum(down_bits.sum(axis=1))
    # the target row in the (possibly thinned) trace
    target_row = (
        None if reached is None else int(np.flatnonzero(columns["iteration"] == reached)[0])
    )
    summary = summarize(columns, metric, target, target_row)
    summary["iterations"] = last
    summary["target_iteration"] = reached
    summary["target_time"] = reached_time
    summary["time"] = float(columns["time"][-1])
    before_last = columns["iteration"] < columns["iteration"][-1]
    summary["ergodic_grad_norm_sq"] = (
        float(columns["grad_norm_sq"][before_last].mean()) if before_last.any() else None
    )
    summary["ergodic_exact"] = trace_every == 1 and status != "diverged"
    summary["staleness"] = {
        **_staleness_summary(staleness[:last], sender[:last], workers),
        "tau_max": tau_max,
        **cluster.counters,
    }
    meta = {
        "engine": "async",
        "algorithm": algorithm.describe(),
        "problem": problem.describe(),
        "seed": seed,
        "iterations_requested": iterations,
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
        "wall_time_s": elapsed,
        "versions": versions(),
    }
    return Run(columns, Ledger(up_bits, down_bits), status, reason, summary, meta, state.theta)


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
