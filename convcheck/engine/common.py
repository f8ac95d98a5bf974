"""What the synchronous, the asynchronous and the batched engine share: run settings, the trace
recorders (quantities at every recorded iterate, the bit ledger, divergence, target, memory
budget) and the run summary.

The trace grows by blocks as rows are recorded, so memory follows the rows actually recorded
(a run asked for 10⁹ rounds that reaches its target after 10⁴ holds 10⁴ rows), and a run whose
trace would exceed the memory budget is refused before it starts when it cannot stop early, or
stops cleanly (status ``"stopped"``) when the budget is reached.

:class:`Recorder` traces one run; :class:`RunsRecorder` the ``R`` runs of a batch
(:mod:`convcheck.engine.batch`) with one vectorized write per round, each run with its own
rows, ledger, status and target, by the same rules and with the same words.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.arrays import NUMPY
from convcheck.engine.trace import BASE_COLUMNS, Ledger, Run
from convcheck.environment import versions
from convcheck.errors import InputError, check_choice, check_real
from convcheck.problem import Problem

#: Quantities a target accuracy may be set on.
TARGET_METRICS = ("suboptimality", "grad_norm_sq", "dist_sq")
#: A run has diverged when ``f − f_ref`` exceeds this factor times ``max(1, f(θ⁰) − f_ref)``:
#: orders of magnitude above where it started (or when an iterate or value is not finite).
DEFAULT_BLOWUP = 1e4
#: Default memory budget of one run's trace, in bytes: a quarter of the machine's memory,
#: at most 8 GiB.
DEFAULT_TRACE_BUDGET = min(8 << 30, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
#: Rows allocated at a time (the first block is smaller when the run is short).
BLOCK_ROWS = 4096
#: Bytes of a batch's traces reordered at a time (run by run) when its runs are assembled.
BATCH_BLOCK_BYTES = 64 << 20


@dataclass(frozen=True)
class Measure:
    """The trace quantities of an iterate, against the problem's reference.

    Attributes
    ----------
    f_ref : float
        ``f(θ̂)`` (convex problems) or the certified ``f_low`` (nonconvex).
    theta_star : ndarray or None
        ``θ̂`` for ``dist_sq`` (None for nonconvex problems).
    metric : str
        The target metric (default ``grad_norm_sq`` for nonconvex problems, else
        ``suboptimality``).
    target : float or None
    """

    f_ref: float
    theta_star: np.ndarray | None
    metric: str
    target: float | None

    @classmethod
    def of(cls, problem: Problem, target: float | None, target_metric: str | None) -> Measure:
        """Validated target settings and the reference of ``problem``."""
        nonconvex = problem.constants.problem_class == "nonconvex"
        metric = check_choice(
            "target_metric",
            target_metric or ("grad_norm_sq" if nonconvex else "suboptimality"),
            TARGET_METRICS,
        )
        if metric == "dist_sq" and nonconvex:
            raise InputError("target_metric", metric,
                             "suboptimality or grad_norm_sq on a nonconvex problem (it has no "
                             "reference optimum θ*, so dist_sq is not defined)")
        if target is not None:
            target = check_real("target", target, 0.0, low_open=True)
        optimum = problem.optimum
        f_ref = optimum.value if optimum.theta is not None else optimum.f_low
        theta_star = None if nonconvex or optimum.theta is None else optimum.theta
        return cls(f_ref, theta_star, metric, target)


def start_point(theta0: np.ndarray | None, d: int) -> np.ndarray:
    """A validated copy of the start point (default 0)."""
    if theta0 is None:
        return np.zeros(d)
    point = np.asarray(theta0, dtype=np.float64)
    if point.shape != (d,) or not np.all(np.isfinite(point)):
        allowed = f"a finite array of shape ({d},)"
        raise InputError("theta0", f"array of shape {point.shape}", allowed)
    return point.copy()


#: Columns the recorder stores per row, in order; transport and algorithm columns follow. The
#: running totals ``bits_up_total``/``bits_down_total`` are added from the ledger at the end
#: (the exported order is :data:`convcheck.engine.trace.BASE_COLUMNS`).
STORED_COLUMNS = (
    "iteration",
    "value",
    "suboptimality",
    "grad_norm_sq",
    "dist_sq",
    "step_norm",
    "bits_up",
    "bits_down",
    "nnz_up",
    "nnz_down",
)
#: Columns stored as integers.
INTEGER_COLUMNS = ("iteration", "bits_up", "bits_down", "nnz_up", "nnz_down")


def row_bytes(columns: int, workers: int) -> int:
    """Bytes of one trace row: the float columns and the two ledger rows."""
    return 8 * (columns + 2 * workers)


def _nonfinite(where: str) -> str:
    return f"non-finite iterate or value {where}"


def _blown_up(sub: float, blowup: float, where: str) -> str:
    return f"f − f_ref = {sub:.3g} > {blowup:g}·max(1, f(θ⁰) − f_ref) {where}"


def _target_met(measure: Measure, where: str) -> str:
    return f"{measure.metric} <= {measure.target:g} {where}"


def trace_columns(names: Sequence[str], table: np.ndarray, up: np.ndarray,
                  down: np.ndarray) -> tuple[dict[str, np.ndarray], Ledger]:
    """The exported columns (stored ones, running bit totals added, in
    :data:`~convcheck.engine.trace.BASE_COLUMNS` order, then the extra ones) and the ledger of
    a table of rows ``(rows, len(names))`` and per-worker bits ``(rows, M)``."""
    stored = {name: table[:, j].copy() for j, name in enumerate(names)}
    for name in INTEGER_COLUMNS:
        stored[name] = stored[name].astype(np.int64)
    stored["bits_up_total"] = np.cumsum(up.sum(axis=1))
    stored["bits_down_total"] = np.cumsum(down.sum(axis=1))
    order = BASE_COLUMNS + tuple(names[len(STORED_COLUMNS):])
    return {name: stored[name] for name in order}, Ledger(up, down)


def assemble_run(columns: dict[str, np.ndarray], ledger: Ledger, status: str, reason: str,
                 measure: Measure, reached: int | None, algorithm: Any, problem: Problem,
                 theta: np.ndarray, meta: dict, requested: int, wall_time: float, *,
                 reached_row: int | None = None, iterations: int | None = None,
                 problem_description: dict | None = None) -> Run:
    """The :class:`Run` of a recorded trace: status (``"completed"``: ran ``requested``
    iterations), summary (``reached``: the iteration of the target; ``reached_row``: its trace
    row, default the row of that iteration; ``iterations``: the iterations run, default the
    last row's) and metadata."""
    if status == "completed":
        reason = f"ran {requested} iterations"
    if reached_row is None and reached is not None:
        reached_row = int(np.flatnonzero(columns["iteration"] == reached)[0])
    summary = summarize(columns, measure.metric, measure.target, reached_row)
    if iterations is not None:
        summary["iterations"] = iterations
    summary["target_iteration"] = reached
    meta = {
        "algorithm": algorithm.describe(),
        "problem": problem.describe() if problem_description is None else problem_description,
        **meta,
        "iterations_requested": requested,
        "wall_time_s": wall_time,
        "versions": versions(),
    }
    return Run(columns, ledger, status, reason, summary, meta, theta)


class Recorder:
    """The trace of one run: rows of quantities, per-worker bits, and when to stop.

    Parameters
    ----------
    problem : Problem
    extra : sequence of str
        Columns after :data:`STORED_COLUMNS` (the transport's, then the algorithm's
        diagnostics).
    workers : int
        Columns of the bit ledger.
    rows : int
        Rows the run may record at most (``T + 1`` for ``T`` rounds).
    target, target_metric, stop_at_target, blowup
        As in :func:`convcheck.engine.run`.
    budget : int
        Memory budget of the trace, bytes.
    """

    def __init__(self, problem: Problem, extra: Sequence[str], workers: int,
                 rows: int, *, target: float | None, target_metric: str | None,
                 stop_at_target: bool, blowup: float, budget: int) -> None:
        self.measure = Measure.of(problem, target, target_metric)
        self.blowup = check_real("blowup", blowup, 1.0, low_open=True)
        self.workers = workers
        self.names = STORED_COLUMNS + tuple(extra)
        self.column = {name: j for j, name in enumerate(self.names)}
        self._metric = self.column[self.measure.metric]
        self.stop_at_target = bool(stop_at_target)
        per_row = row_bytes(len(self.names), workers)
        self.max_rows = max(2, int(budget) // per_row)
        if rows > self.max_rows and (self.measure.target is None or not self.stop_at_target):
            raise InputError(
                "iterations", rows - 1,
                f"at most {self.max_rows - 1} for this run: its trace would take about "
                f"{rows * per_row / 2**30:.3g} GiB ({per_row} bytes per row) against a budget of "
                f"{budget / 2**30:.3g} GiB; set a target that stops it earlier, or record fewer "
                "rows")
        self.per_row = per_row
        self.budget = budget
        self._blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._first = min(rows, BLOCK_ROWS)
        self.rows = 0
        self.reached: int | None = None
        self.status, self.reason = "completed", ""
        self._scale = np.inf
        self.started = time.perf_counter()

    # ------------------------------------------------------------------ rows
    def _row(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The arrays of the next row (a new block when the last one is full)."""
        index = self.rows
        if not self._blocks or index >= self._end:
            size = self._first if not self._blocks else min(2 * len(self._blocks[-1][0]), 1 << 20)
            self._blocks.append((np.full((size, len(self.names)), np.nan),
                                 np.zeros((size, self.workers), dtype=np.int64),
                                 np.zeros((size, self.workers), dtype=np.int64)))
            self._start, self._end = index, index + size
        table, up, down = self._blocks[-1]
        offset = index - self._start
        return table[offset], up[offset], down[offset]

    def record(self, iteration: int, theta: np.ndarray, previous: np.ndarray,
               evaluated: tuple[np.ndarray, np.ndarray], up_bits: np.ndarray | None,
               down_bits: np.ndarray | None, nnz: tuple[int, int],
               extra: Sequence[float] = ()) -> bool:
        """Record iterate ``θ`` (row ``iteration``; ``evaluated``: the worker values and
        gradients at ``θ``, :meth:`Oracle.evaluate`) and decide whether to stop.

        Returns True when the run must stop: the iterate or its value is not finite, ``f − f_ref``
        blew up (:data:`DEFAULT_BLOWUP`), the target was reached (with ``stop_at_target``), or
        the memory budget is full.
        """
        row, up, down = self._row()
        values, gradients = evaluated
        grad = NUMPY.mean_rows(gradients)
        value = float(np.add.reduce(values)) / values.shape[0]
        sub = value - self.measure.f_ref
        theta_star = self.measure.theta_star
        if theta_star is None:
            dist = math.nan
        else:
            gap = theta - theta_star
            dist = gap @ gap
        step = theta - previous
        step_sq = step @ step
        if up_bits is not None:
            up[:] = up_bits
        if down_bits is not None:
            down[:] = down_bits
        quantities = [iteration, value, sub, grad @ grad, dist, math.sqrt(step_sq),
                      np.add.reduce(up), np.add.reduce(down), *nnz, *extra]
        row[:len(quantities)] = quantities
        self.rows += 1
        if self.rows == 1:
            self._scale = self.blowup * max(1.0, abs(sub)) if math.isfinite(sub) else np.inf
        # the previous iterate is finite (else the run stopped there), so a finite step from
        # another array means a finite θ
        finite = math.isfinite(sub) and (
            (math.isfinite(step_sq) and previous is not theta) or np.isfinite(theta).all())
        return self._stop(iteration, finite, sub, quantities[self._metric])

    def _stop(self, iteration: int, finite: bool, sub: float, metric: float) -> bool:
        """``finite``: the iterate and its value are finite."""
        where = f"at iteration {iteration}"
        if not finite:
            self.status, self.reason = "diverged", _nonfinite(where)
            return True
        if sub > self._scale:
            self.status, self.reason = "diverged", _blown_up(sub, self.blowup, where)
            return True
        target = self.measure.target
        if target is not None and self.reached is None and metric <= target:
            self.reached = iteration
            if self.stop_at_target:
                self.status, self.reason = "target reached", _target_met(self.measure, where)
                return True
        if self.rows >= self.max_rows:
            self.status = "stopped"
            self.reason = (f"trace memory budget of {self.budget / 2**30:.3g} GiB reached "
                           f"{where}; ask for fewer iterations or a target")
            return True
        return False

    # ------------------------------------------------------------------ the result
    def columns(self) -> tuple[dict[str, np.ndarray], Ledger]:
        """The trace columns (with the running bit totals) and the ledger."""
        table = np.concatenate([b[0] for b in self._blocks])[: self.rows]
        up = np.concatenate([b[1] for b in self._blocks])[: self.rows]
        down = np.concatenate([b[2] for b in self._blocks])[: self.rows]
        return trace_columns(self.names, table, up, down)

    def finish(self, algorithm: Any, problem: Problem, state_theta: np.ndarray, meta: dict,
               requested: int, reached_row: int | None = None,
               iterations: int | None = None) -> Run:
        """The :class:`Run`: columns, ledger, status, summary and metadata.

        ``reached_row``: the trace row of the target (default: the row of iteration
        ``self.reached``); ``iterations``: the iterations run (default: the last row's).
        """
        columns, ledger = self.columns()
        run = assemble_run(columns, ledger, self.status, self.reason, self.measure, self.reached,
                           algorithm, problem, state_theta, meta, requested,
                           time.perf_counter() - self.started, reached_row=reached_row,
                           iterations=iterations)
        self.reason = run.reason
        return run


def row_dots(x: np.ndarray) -> np.ndarray:
    """``x_r · x_r`` for each row of ``(R, d)``: the dot product of a single run's ``x @ x``,
    bit for bit (one stacked product)."""
    return np.matmul(x[:, None, :], x[:, :, None])[:, 0, 0]


#: Per-run trace quantities of a batch's iterates, numpy ``(A,)`` arrays: ``f(θ)``,
#: ``‖∇f(θ)‖²``, ``‖θ − θ*‖²`` (None without ``θ*``), ``‖θ − θ_prev‖²``, and whether ``θ``
#: is finite.
RunQuantities = tuple[np.ndarray, np.ndarray, "np.ndarray | None", np.ndarray, np.ndarray]


def run_quantities(theta: np.ndarray, previous: np.ndarray, values: np.ndarray,
                   gradients: np.ndarray, theta_star: np.ndarray | None) -> RunQuantities:
    """The :data:`RunQuantities` of numpy iterates ``(A, d)`` from their worker values
    ``(A, M)`` and gradients ``(A, M, d)``: run by run, the same floating-point operations as
    :meth:`Recorder.record` of the run alone."""
    grad = NUMPY.mean_rows(gradients)
    value = np.add.reduce(values, axis=-1) / values.shape[-1]
    dist = None if theta_star is None else row_dots(theta - theta_star)
    return (value, row_dots(grad), dist, row_dots(theta - previous),
            np.isfinite(theta).all(axis=1))


class RunsRecorder:
    """The traces of the ``R`` runs of a batch that advance in lockstep.

    Every round the runs still in the batch (*active*, in batch order) are recorded with one
    write; a run leaves the batch when it stops (diverged, or its target reached with
    ``stop_at_target``) and its rows end there. Quantities, statuses, reasons, targets and
    summaries follow :class:`Recorder` exactly, run by run (``Recorder`` also validates the
    settings and refuses a trace over the memory budget: a batch checks its runs with it
    first).

    Parameters
    ----------
    problem : Problem
    extra : sequence of str
        The algorithm's diagnostics (columns after :data:`STORED_COLUMNS`).
    workers : int
    runs : int
        ``R``.
    rows : int
        Rows a run may record at most (``T + 1``).
    target, target_metric, stop_at_target, blowup
        As in :func:`convcheck.engine.run`.
    to_numpy : callable
        The runs' iterates as numpy arrays (the last iterate of each run is kept).

    Attributes
    ----------
    active : ndarray of int
        The batch positions (``0..R−1``) of the runs still recording, in batch order.
    """

    def __init__(self, problem: Problem, extra: Sequence[str], workers: int, runs: int,
                 rows: int, *, target: float | None, target_metric: str | None,
                 stop_at_target: bool, blowup: float,
                 to_numpy: Callable[[Any], np.ndarray] = np.asarray) -> None:
        self._to_numpy = to_numpy
        self.measure = Measure.of(problem, target, target_metric)
        self.blowup = check_real("blowup", blowup, 1.0, low_open=True)
        self.workers, self.runs = workers, runs
        self.names = STORED_COLUMNS + tuple(extra)
        self.metric_column = self.names.index(self.measure.metric)
        self.stop_at_target = bool(stop_at_target)
        self.active = np.arange(runs)
        self.rows = np.zeros(runs, dtype=np.int64)
        self.reached: list[int | None] = [None] * runs
        self.status = ["completed"] * runs
        self.reason = [""] * runs
        self.thetas: list[np.ndarray | None] = [None] * runs
        self.wall_time = np.zeros(runs)
        self._scale = np.full(runs, np.inf)
        self._unreached = np.ones(runs, dtype=bool)
        # one column after another, a run's rows last: a round writes each column in one
        # contiguous pass; every column of a recorded row is written, and memory is touched
        # only where rows are (runs that stop early leave the rest untouched)
        self._table = np.empty((len(self.names), rows, runs))
        self._up = np.zeros((rows, runs, workers), dtype=np.int64)
        self._down = np.zeros((rows, runs, workers), dtype=np.int64)
        self._row = 0
        self.started = time.perf_counter()

    def record(self, iteration: int, theta: Any, quantities: RunQuantities,
               up_bits: np.ndarray | None, down_bits: np.ndarray | None,
               nnz: tuple[np.ndarray, np.ndarray], extra: Sequence[Any] = ()) -> np.ndarray:
        """Record the active runs' iterates ``θ`` ``(A, d)`` (``quantities``: numpy ``(A,)``
        arrays, :func:`run_quantities`; bits ``(A, M)``; nonzeros and diagnostics ``(A,)``).

        Returns
        -------
        ndarray of bool, shape (A,)
            The runs that stop here (they leave :attr:`active`; their last iterate is kept).
        """
        row = self._row
        self._row += 1
        active = self.active
        runs = slice(None) if active.size == self.runs else active
        value, grad_sq, dist_sq, step_sq, finite_theta = quantities
        sub = value - self.measure.f_ref
        columns = [iteration, value, sub, grad_sq, np.nan if dist_sq is None else dist_sq,
                   np.sqrt(step_sq), 0 if up_bits is None else up_bits.sum(axis=1),
                   0 if down_bits is None else down_bits.sum(axis=1), *nnz, *extra]
        table = self._table[:, row]
        for j, column in enumerate(columns):
            table[j, runs] = column
        if up_bits is not None:
            self._up[row, runs] = up_bits
        if down_bits is not None:
            self._down[row, runs] = down_bits
        self.rows[active] += 1
        return self._stop(iteration, theta, finite_theta, sub, table[self.metric_column, runs])

    def _stop(self, iteration: int, theta: Any, finite_theta: np.ndarray, sub: np.ndarray,
              metric: np.ndarray) -> np.ndarray:
        """The rules of :meth:`Recorder._stop`, run by run."""
        active = self.active
        finite = np.isfinite(sub) & finite_theta
        if self._row == 1:
            self._scale[active] = np.where(np.isfinite(sub),
                                           self.blowup * np.maximum(1.0, np.abs(sub)), np.inf)
        blown = finite & (sub > self._scale[active])
        leave = ~finite | blown
        target = self.measure.target
        met = np.zeros_like(leave)
        if target is not None:
            met = ~leave & self._unreached[active] & (metric <= target)
        if not (leave.any() or met.any()):
            return leave
        where = f"at iteration {iteration}"
        for i in np.flatnonzero(leave | met):
            run = int(active[i])
            if not finite[i]:
                self.status[run], self.reason[run] = "diverged", _nonfinite(where)
            elif blown[i]:
                self.status[run] = "diverged"
                self.reason[run] = _blown_up(float(sub[i]), self.blowup, where)
            else:
                self.reached[run], self._unreached[run] = iteration, False
                if self.stop_at_target:
                    leave[i] = True
                    self.status[run] = "target reached"
                    self.reason[run] = _target_met(self.measure, where)
        if leave.any():
            now = time.perf_counter() - self.started
            leaving = np.flatnonzero(leave)
            for i, last in zip(leaving, self._to_numpy(theta)[leaving], strict=True):
                self.thetas[int(active[i])] = np.array(last)
                self.wall_time[active[i]] = now
            self.active = active[~leave]
        return leave

    def finish(self, algorithms: Sequence[Any], problem: Problem, thetas: Any,
               metas: Sequence[dict], requested: int) -> list[Run]:
        """The :class:`Run` of every run (``thetas``: the last iterates ``(A, d)`` of the runs
        still active; ``metas``: each run's engine metadata)."""
        now = time.perf_counter() - self.started
        for run, last in zip(self.active, self._to_numpy(thetas), strict=True):
            self.thetas[run] = np.array(last)
            self.wall_time[run] = now
        description = problem.describe()
        recorded = self._row
        group = max(1, BATCH_BLOCK_BYTES // (row_bytes(len(self.names), self.workers)
                                             * max(1, recorded)))
        runs = []
        for first in range(0, self.runs, group):
            part = slice(first, first + group)
            # each run's rows contiguous: (runs, columns, rows) and (runs, rows, M)
            table = np.ascontiguousarray(self._table[:, :recorded, part].transpose(2, 0, 1))
            up = np.ascontiguousarray(self._up[:recorded, part].transpose(1, 0, 2))
            down = np.ascontiguousarray(self._down[:recorded, part].transpose(1, 0, 2))
            for i, run in enumerate(range(part.start, min(part.stop, self.runs))):
                rows = int(self.rows[run])
                columns, ledger = trace_columns(self.names, table[i, :, :rows].T,
                                                up[i, :rows].copy(), down[i, :rows].copy())
                runs.append(assemble_run(columns, ledger, self.status[run], self.reason[run],
                                         self.measure, self.reached[run], algorithms[run],
                                         problem, self.thetas[run], metas[run], requested,
                                         float(self.wall_time[run]),
                                         problem_description=description))
        return runs


def summarize(
    columns: dict[str, np.ndarray], metric: str, target: float | None, reached: int | None
) -> dict[str, Any]:
    """Iterations, final values and the target statistics of a run's trace columns
    (``reached`` is the trace row where the target was first met)."""
    last = len(columns["iteration"]) - 1
    out: dict[str, Any] = {
        "iterations": int(columns["iteration"][last]),
        "final": {name: columns[name][last].item() for name in columns if name != "iteration"},
        "target_metric": metric,
        "target": target,
        "target_iteration": None if reached is None else int(columns["iteration"][reached]),
        "bits_up_to_target": None,
        "bits_down_to_target": None,
    }
    if reached is not None:
        out["bits_up_to_target"] = int(columns["bits_up_total"][reached])
        out["bits_down_to_target"] = int(columns["bits_down_total"][reached])
    return out
