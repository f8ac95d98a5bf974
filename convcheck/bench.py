"""Performance benchmark of the synchronous engine (``convcheck bench``).

Two figures, measured on the same problem in one process:

* **ratio** — one engine round, ``wall(run(algorithm, problem, T)) / T`` (best of repeats), over
  the bare computation of the ``M`` local gradients ``objective.worker_gradients(θ)`` (best of
  repeats) on the identical :class:`~convcheck.objectives.Objective`. The floor of a round is
  the gradients; the ratio is the engine's overhead above it: the algorithm's
  passes over the ``(M, d)`` state, bit pricing and the trace. ``run`` evaluates ``T + 1``
  iterates for ``T`` rounds, so the ratio includes ``1/T`` of an extra evaluation.
* **speed-up** — a per-worker Python-loop reference of the same rounds (each worker computes
  ``f_m`` and ``∇f_m`` on its own rows, compresses its own vector, updates its own memories;
  the server averages) over the vectorized engine. Before a speed-up is reported the loop
  reference and the engine must agree after the same rounds: same iterate (``np.allclose``),
  same bits per worker and round, same traced ``f``, ``‖∇f‖²`` and ``mean ‖e_m‖²``; otherwise
  :class:`BenchmarkError`.

Algorithms: GD-SEC (``ξ = 0.1``, ``β = 1``, error correction) and EF with top-k
(``ratio = 0.01``, ``k = max(1, ⌊d/100⌋)``), both with ``α = 1/L``. Problems: synthetic
logistic regression (``λ = 10⁻³``, iid split) with dense Gaussian rows, or sparse CSR rows with
a fixed number of stored entries per row; the optimum is not computed (``f_low = 0``) and ``L``
is the row-norm bound ``L_m = ¼ max_{i∈S_m} ‖a_i‖² + λ ≥ λmax(∇²f_m)``, ``L = mean_m L_m``.

A third figure (:func:`batch_figure`, ``convcheck bench --batch``): a grid of GD-SEC runs
(step sizes × ξ) on breast-cancer in one batched call (:func:`convcheck.engine.batch.run_batch`)
against the same runs one by one (a stratified sample timed and extrapolated), after checking
that the batch's runs equal the runs alone bit for bit.
"""

from __future__ import annotations

import cProfile
import math
import pstats
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from convcheck.algorithms import Algorithm, make_algorithm
from convcheck.arrays import NUMPY
from convcheck.compressors import keep
from convcheck.data import Dataset, make_dataset, split_dataset
from convcheck.encoding import sparse_bits
from convcheck.engine import Oracle, run
from convcheck.engine.batch import run_batch
from convcheck.engine.rounds import start, sync_round
from convcheck.environment import machine, versions
from convcheck.errors import ConvcheckError, InputError, check_int
from convcheck.objectives import Constants, logistic_loss, make_objective
from convcheck.optimum import Optimum
from convcheck.problem import Problem, build_problem

#: L2 weight of the benchmark's logistic problems.
LAM = 1e-3
#: Targets stated by the issue (reported against, never asserted).
TARGET_RATIO = 1.3
TARGET_RATIO_DIM = 10_000
TARGET_SPEEDUP = 10.0
TARGET_SPEEDUP_WORKERS = 100
#: Small-problem targets: at M = 4, d = 50 an engine round within this many bare gradient
#: evaluations, and this many times faster than the per-worker loop.
SMALL_CASE = (4, 50)
TARGET_SMALL_RATIO = 3.0
TARGET_SMALL_SPEEDUP = 1.5
#: The two benchmarked algorithms: registry name and parameters (``α = 1/L`` for both).
ALGORITHMS: dict[str, dict[str, Any]] = {
    "gd-sec": {"xi": 0.1, "beta": 1.0, "error_correction": True},
    "ef": {"compressor": "top-k", "ratio": 0.01},
}
#: Uplink value precision of both algorithms' messages (the compressors' default).
VALUE_BITS = 32


class BenchmarkError(ConvcheckError, RuntimeError):
    """The loop reference and the engine disagree: a speed-up would compare two computations."""


@dataclass(frozen=True)
class Case:
    """One grid point.

    Attributes
    ----------
    workers : int
        ``M``.
    dim : int
        ``d``.
    samples : int
        ``n`` (rows split iid over the workers).
    density : float or None
        Fraction of stored entries per row (CSR data), or ``None`` for dense rows.
    """

    workers: int
    dim: int
    samples: int
    density: float | None = None

    @property
    def layout(self) -> str:
        return "dense" if self.density is None else f"CSR {100 * self.density:g}%"


#: Full grid: M ∈ {10, 100}, d ∈ {10², 10⁴}, n = 20·d where memory permits (dense d = 10⁴ would
#: need 16 GB at n = 20·d, so d = 10⁴ is run sparse at n = 20·d and dense at n = 2000).
FULL_GRID = (
    Case(10, 100, 2_000),
    Case(100, 100, 2_000),
    Case(10, 10_000, 200_000, 0.01),
    Case(100, 10_000, 200_000, 0.01),
    Case(10, 10_000, 2_000),
    Case(100, 10_000, 2_000),
)
#: Quick grid (seconds): one dense and one sparse problem.
QUICK_GRID = (Case(4, 50, 400), Case(8, 500, 2_000, 0.02))
#: Defaults of the full and quick modes: rounds T of the timed engine runs, repeats (best
#: of), rounds of the loop reference (also the rounds of the agreement check). The quick
#: mode's small problem needs a few hundred rounds for a round's time to be that of a round
#: (not of a run's start and summary).
FULL_SETTINGS = {"rounds": 20, "repeats": 4, "loop_rounds": 3}
QUICK_SETTINGS = {"rounds": 200, "repeats": 5, "loop_rounds": 20}


# ---------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------

def synthetic_logistic(case: Case, seed: int) -> Dataset:
    """Labels ±1 with ``P(y_i = +1) = sigmoid(a_iᵀθ*)``, ``θ* ~ N(0, 4I)``.

    Dense rows are ``N(0, I/d)``; sparse rows store ``s = max(1, round(density·d))`` entries
    ``N(0, 1/s)`` at uniformly drawn columns (duplicates summed). Either way ``E‖a_i‖² = 1``
    and the margins ``a_iᵀθ*`` have variance 4.
    """
    n, d = case.samples, case.dim
    rows_ss, theta_ss, label_ss = np.random.SeedSequence(seed).spawn(3)
    rng = np.random.default_rng(rows_ss)
    if case.density is None:
        X: np.ndarray | sp.csr_matrix = rng.standard_normal((n, d)) / math.sqrt(d)
    else:
        s = max(1, round(case.density * d))
        columns = rng.integers(0, d, size=n * s, dtype=np.int32)
        values = rng.standard_normal(n * s) / math.sqrt(s)
        X = sp.csr_matrix((values, columns, np.arange(0, n * s + 1, s)), shape=(n, d))
    theta_star = 2.0 * np.random.default_rng(theta_ss).standard_normal(d)
    p_plus = expit(X @ theta_star)
    y = np.where(np.random.default_rng(label_ss).random(n) < p_plus, 1.0, -1.0)
    source = f"convcheck.bench.synthetic_logistic({case}, seed={seed})"
    return make_dataset("bench-logistic", X, y, task="classification", source=source)


def row_norm_constants(dataset: Dataset, shards: Sequence[np.ndarray], lam: float) -> Constants:
    """Cheap valid constants: ``L_m = ¼ max_{i∈S_m} ‖a_i‖² + λ``, ``L = mean_m L_m``, ``μ = λ``.

    ``∇²f_m ⪯ ¼ A_mᵀA_m/n_m + λI`` and ``λmax(A_mᵀA_m/n_m) ≤ max_i ‖a_i‖²``; ``∇²f`` is the mean
    of the ``∇²f_m``. (The exact spectrum at ``d = 10⁴``, ``M = 100`` takes minutes.)
    """
    X = dataset.X
    norms = np.asarray(X.multiply(X).sum(axis=1)).ravel() if sp.issparse(X) else (X * X).sum(1)
    L_workers = np.array([0.25 * norms[rows].max() + lam for rows in shards])
    return Constants(
        L_workers=L_workers,
        L=float(L_workers.mean()),
        L_tilde=float(np.sqrt(np.mean(L_workers**2))),
        L_max=float(L_workers.max()),
        curvature_lower=lam,
        mu=lam,
        problem_class="strongly convex",
        eigen_method="row-norm bound (benchmark)",
        safety_factor=1.0,
    )


def benchmark_problem(case: Case, dataset: Dataset, seed: int) -> Problem:
    """Logistic ``λ = LAM`` on ``dataset`` split iid over ``case.workers``; optimum not computed."""
    split = split_dataset(dataset, case.workers, "iid", seed=seed)
    objective = make_objective("logistic", dataset, split, lam=LAM)
    optimum = Optimum(
        theta=None, value=None, grad_norm=None, tolerance=None, gap_bound=None, f_low=0.0,
        certificate="not computed: benchmark", iterations=0, cross_check=None,
    )
    settings = {"benchmark": True, "case": asdict(case), "seed": seed, "lam": LAM}
    constants = row_norm_constants(dataset, split.shards, LAM)
    return Problem(objective, split, constants, optimum, settings)


# ---------------------------------------------------------------------------------------------
# Loop reference: one Python iteration per worker, each on its own rows
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoopWorker:
    """Worker ``m`` of the loop reference: its rows ``A_m``, labels ``b_m`` and ``λ``."""

    rows: np.ndarray | sp.csr_matrix
    labels: np.ndarray
    lam: float

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``f_m(θ) = mean_i log(1 + e^{−b_i a_iᵀθ}) + (λ/2)‖θ‖²`` and its gradient."""
        margins = self.labels * (self.rows @ theta)
        loss, slope = logistic_loss(margins)  # the objective's own kernel
        value = float(loss.mean()) + 0.5 * self.lam * float(theta @ theta)
        slope = -self.labels * slope / self.labels.size
        return value, self.rows.T @ slope + self.lam * theta


@dataclass
class LoopResult:
    """What the loop reference produced in ``T`` rounds (row ``k``: round ``k``, from ``θ^k``).

    Attributes
    ----------
    theta : ndarray, shape (d,)
        ``θ^T``.
    up_bits : ndarray of int64, shape (T, M)
        Uplink bits of worker ``m`` in round ``k`` (the engine's ledger row ``k + 1``).
    down_bits : ndarray of int64, shape (T,)
        Downlink bits each worker received in round ``k``.
    values, grad_norm_sq : ndarray, shape (T,)
        ``f(θ^k)`` and ``‖∇f(θ^k)‖²`` (the engine's trace row ``k``).
    error_norm_sq : ndarray, shape (T,)
        ``(1/M) Σ_m ‖e_m‖²`` after round ``k`` (the engine's trace row ``k + 1``).
    """

    theta: np.ndarray
    up_bits: np.ndarray
    down_bits: np.ndarray
    values: np.ndarray
    grad_norm_sq: np.ndarray
    error_norm_sq: np.ndarray

    @classmethod
    def empty(cls, d: int, rounds: int, workers: int) -> LoopResult:
        return cls(np.zeros(d), np.zeros((rounds, workers), dtype=np.int64),
                   np.zeros(rounds, dtype=np.int64), np.zeros(rounds), np.zeros(rounds),
                   np.zeros(rounds))

    def record(self, k: int, value: float, grad: np.ndarray, error_sq: float) -> None:
        """Server-side trace of round ``k`` from the workers' sums."""
        workers = self.up_bits.shape[1]
        mean_grad = grad / workers
        self.values[k] = value / workers
        self.grad_norm_sq[k] = mean_grad @ mean_grad
        self.error_norm_sq[k] = error_sq / workers


def loop_workers(problem: Problem, dataset: Dataset) -> list[LoopWorker]:
    """Each worker's own rows, cut from the dataset by the problem's split (not its shards)."""
    labels = dataset.binary_labels()
    return [
        LoopWorker(dataset.X[rows], labels[rows], problem.objective.lam)
        for rows in problem.split.shards
    ]


#: Message formats of the benchmark's algorithms by their specification (docs/algorithms.md),
#: uplink and downlink; the loop prices its messages with these, not with the algorithms' codecs.
SPEC_FORMATS: dict[str, tuple[str, str]] = {
    "gd-sec": ("sparse", "dense"),
    "ef": ("sparse", "sparse"),
}


def _message_bits(message: np.ndarray, form: str) -> int:
    """Bits of one message: a sparse message of its nonzeros, or ``d`` dense values."""
    if form == "dense":
        return VALUE_BITS * message.size
    return int(sparse_bits(np.count_nonzero(message), message.size, VALUE_BITS))


def loop_run(workers: list[LoopWorker], algorithm: Algorithm, rounds: int) -> LoopResult:
    """The algorithm's halves one worker at a time, each worker on its own rows.

    Worker ``m`` holds its own state (one row) and its own copy of the model, evaluates
    ``f_m`` and ``∇f_m`` on its rows and runs the worker half; the server averages the ``M``
    messages in a loop and runs its half; every worker then receives the downlink. This is the
    straightforward implementation the vectorized engine is measured against.
    """
    d, count = workers[0].rows.shape[1], len(workers)
    up_form, down_form = SPEC_FORMATS[algorithm.name]
    out = LoopResult.empty(d, rounds, count)
    theta0 = np.zeros(d)
    algorithm.prepare(d)
    states = [algorithm.start_workers(theta0, 1, lambda: None)[0] for _ in workers]
    server = algorithm.start_server(theta0, count, None)
    models = [theta0.copy() for _ in workers]
    for k in range(rounds):
        total, grad, value, error_sq = np.zeros(d), np.zeros(d), 0.0, 0.0
        for m, worker in enumerate(workers):
            f_m, g_m = worker.value_and_gradient(models[m])
            sent = algorithm.worker(states[m], g_m[None], models[m], None)[0]
            total += sent
            out.up_bits[k, m] = _message_bits(sent, up_form)
            errors = states[m].errors[0]
            value, grad, error_sq = value + f_m, grad + g_m, error_sq + errors @ errors
        out.record(k, value, grad, error_sq)
        down = algorithm.server(server, total / count)
        out.down_bits[k] = _message_bits(down, down_form)
        for m in range(count):
            models[m] = algorithm.receive(states[m], models[m], down)
    out.theta = server.theta
    return out


# ---------------------------------------------------------------------------------------------
# Timing and agreement
# ---------------------------------------------------------------------------------------------

def best_time(fn: Callable[[], Any], repeats: int, number: int = 1) -> float:
    """Best over ``repeats`` of the mean wall time of ``number`` calls of ``fn``, in seconds."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def check_agreement(
    algorithm: Algorithm, problem: Problem, reference: LoopResult, rounds: int
) -> float:
    """Run the engine for ``rounds`` rounds and compare with the loop reference.

    Returns ``max_i |θ_engine − θ_loop|_i / ‖θ_loop‖∞``.

    Raises
    ------
    BenchmarkError
        Iterates not ``allclose`` (``rtol = 1e-7``, ``atol = 1e-9·‖θ_loop‖∞``); uplink bits
        of some worker and round, or downlink bits, not equal; trace columns ``value``,
        ``grad_norm_sq``, ``error_norm_sq`` not ``allclose`` (``rtol = 1e-7``).
    """
    engine = run(algorithm, problem, iterations=rounds)
    where = f"{algorithm.name} on M={problem.objective.n_workers}, d={problem.objective.dim}"
    scale = float(np.abs(reference.theta).max())
    deviation = float(np.abs(engine.theta - reference.theta).max()) / max(scale, 1e-300)
    if not np.allclose(engine.theta, reference.theta, rtol=1e-7, atol=1e-9 * scale):
        raise BenchmarkError(
            f"{where}: loop reference and engine iterates differ after {rounds} rounds "
            f"(max |Δθ|/‖θ‖∞ = {deviation:.3g}); the speed-up would compare different "
            "computations"
        )
    down = np.broadcast_to(reference.down_bits[:, None], engine.ledger.down[1:].shape)
    if not np.array_equal(engine.ledger.up[1:], reference.up_bits):
        raise BenchmarkError(f"{where}: loop reference and engine uplink bits differ")
    if not np.array_equal(engine.ledger.down[1:], down):
        raise BenchmarkError(f"{where}: loop reference and engine downlink bits differ")
    columns = engine.columns
    for name, ours, theirs in (
        ("value", reference.values, columns["value"][:rounds]),
        ("grad_norm_sq", reference.grad_norm_sq, columns["grad_norm_sq"][:rounds]),
        ("error_norm_sq", reference.error_norm_sq, columns["error_norm_sq"][1:]),
    ):
        if not np.allclose(ours, theirs, rtol=1e-7, atol=0.0):
            raise BenchmarkError(f"{where}: loop reference and engine trace {name!r} differ")
    return deviation


def _measure_case(
    case: Case, problem: Problem, workers: list[LoopWorker], *, rounds: int, repeats: int,
    loop_rounds: int, stored: int,
) -> list[dict[str, Any]]:
    """The table rows of one grid point: engine rounds, bare gradients, loop rounds, agreement.

    The measurements are interleaved (per repeat: for each algorithm an engine run of ``T``
    rounds and the loop reference, then ``T`` bare gradient evaluations at the last iterate)
    so that load from other processes hits them alike. Each figure is the best over the
    repeats of a mean over ``T`` rounds or calls (the loop: ``loop_rounds``); the bare
    gradient time is shared by the algorithms of the case.
    """
    objective = problem.objective
    algorithms = {
        name: make_algorithm(name, problem.constants, alpha="1/L", **params)
        for name, params in ALGORITHMS.items()
    }
    round_s = dict.fromkeys(algorithms, math.inf)
    loop_s = dict.fromkeys(algorithms, math.inf)
    grad_s = math.inf
    runs: dict[str, Any] = {}
    references: dict[str, LoopResult] = {}
    for _ in range(repeats):
        for name, algorithm in algorithms.items():
            start = time.perf_counter()
            runs[name] = run(algorithm, problem, iterations=rounds)
            round_s[name] = min(round_s[name], (time.perf_counter() - start) / rounds)
            start = time.perf_counter()
            references[name] = loop_run(workers, algorithm, loop_rounds)
            loop_s[name] = min(loop_s[name], (time.perf_counter() - start) / loop_rounds)
            theta = runs[name].theta
        grad_s = min(grad_s, best_time(partial(objective.worker_gradients, theta), 1, rounds))
    rows = []
    for name, algorithm in algorithms.items():
        deviation = check_agreement(algorithm, problem, references[name], loop_rounds)
        rows.append({
            "workers": case.workers,
            "dim": case.dim,
            "samples": case.samples,
            "layout": case.layout,
            "stored_entries": stored,
            "algorithm": name,
            "algorithm_params": algorithm.params(),
            "rounds": rounds,
            "repeats": repeats,
            "grad_s": grad_s,
            "round_s": round_s[name],
            "ratio": round_s[name] / grad_s,
            "loop_rounds": loop_rounds,
            "loop_round_s": loop_s[name],
            "speedup": loop_s[name] / round_s[name],
            "max_rel_diff": deviation,
            "final_suboptimality": float(runs[name].columns["suboptimality"][-1]),
        })
    return rows


def benchmark(
    grid: Sequence[Case] = FULL_GRID,
    rounds: int = FULL_SETTINGS["rounds"],
    repeats: int = FULL_SETTINGS["repeats"],
    seed: int = 0,
    *,
    loop_rounds: int = FULL_SETTINGS["loop_rounds"],
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure the engine/gradient ratio and the loop/engine speed-up on every grid point.

    Parameters
    ----------
    grid : sequence of Case
        :data:`FULL_GRID` (default, about 1.5 minutes on 2 cores) or :data:`QUICK_GRID`.
    rounds : int
        Rounds ``T`` of each timed engine run.
    repeats : int
        Every time is the best of this many repeats.
    seed : int
        Seeds the data and the split.
    loop_rounds : int
        Rounds of the loop reference (timed), and of the engine run it is checked against.
    progress : callable, optional
        Called with one line per measured row.

    Returns
    -------
    list of dict
        One row per grid point and algorithm (JSON-friendly); see :func:`format_table`.

    Raises
    ------
    BenchmarkError
        The loop reference disagrees with the engine (see :func:`check_agreement`).
    """
    rounds = check_int("rounds", rounds, 1)
    repeats = check_int("repeats", repeats, 1)
    loop_rounds = check_int("loop_rounds", loop_rounds, 1)
    seed = check_int("seed", seed, 0)
    if not grid or not all(isinstance(case, Case) for case in grid):
        raise InputError("grid", grid, "a nonempty sequence of convcheck.bench.Case")
    rows: list[dict[str, Any]] = []
    data_key, dataset = None, None
    for case in grid:
        key = (case.samples, case.dim, case.density)
        if key != data_key:
            data_key, dataset = None, None  # free the previous data before building the next
            dataset, data_key = synthetic_logistic(case, seed), key
        problem = benchmark_problem(case, dataset, seed)
        workers = loop_workers(problem, dataset)
        stored = int(dataset.X.nnz if sp.issparse(dataset.X) else dataset.X.size)
        for row in _measure_case(case, problem, workers, rounds=rounds, repeats=repeats,
                                 loop_rounds=loop_rounds, stored=stored):
            rows.append(row)
            if progress is not None:
                progress(_row_line(row))
        del problem, workers
    return rows


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

HEADER = (
    f"{'M':>4} {'d':>6} {'n':>7} {'data':>8} {'algorithm':>9} {'grad ms':>9} {'round ms':>9} "
    f"{'ratio':>6} {'loop ms':>9} {'speed-up':>8} {'rel dθ':>8}"
)


def _row_line(row: dict[str, Any]) -> str:
    return (
        f"{row['workers']:>4} {row['dim']:>6} {row['samples']:>7} {row['layout']:>8} "
        f"{row['algorithm']:>9} {1e3 * row['grad_s']:>9.3f} {1e3 * row['round_s']:>9.3f} "
        f"{row['ratio']:>6.2f} {1e3 * row['loop_round_s']:>9.3f} {row['speedup']:>7.1f}x "
        f"{row['max_rel_diff']:>8.1e}"
    )


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The benchmark table and how the issue's targets fare (met or missed, never hidden)."""
    lines = [
        "engine round = wall(run(algorithm, problem, T))/T; grad = objective.worker_gradients(θ);",
        "ratio = round/grad; loop = per-worker Python loop of the same round; speed-up = "
        "loop/round; best of repeats, all in one process;",
        "rel dθ = max |θ_engine − θ_loop| / ‖θ_loop‖∞ after the loop rounds (bits and trace "
        "also equal)",
        HEADER,
        *(_row_line(row) for row in rows),
    ]
    ratio_rows = [row for row in rows if row["dim"] == TARGET_RATIO_DIM]
    if ratio_rows:
        worst = max(row["ratio"] for row in ratio_rows)
        met = sum(row["ratio"] <= TARGET_RATIO for row in ratio_rows)
        lines.append(
            f"target ratio <= {TARGET_RATIO:g} at d = {TARGET_RATIO_DIM}: met in {met}/"
            f"{len(ratio_rows)} rows (worst {worst:.2f})"
        )
    speed_rows = [row for row in rows if row["workers"] == TARGET_SPEEDUP_WORKERS]
    if speed_rows:
        worst = min(row["speedup"] for row in speed_rows)
        met = sum(row["speedup"] >= TARGET_SPEEDUP for row in speed_rows)
        lines.append(
            f"target speed-up >= {TARGET_SPEEDUP:g}x at M = {TARGET_SPEEDUP_WORKERS}: met in "
            f"{met}/{len(speed_rows)} rows (worst {worst:.1f}x)"
        )
    small = [row for row in rows if (row["workers"], row["dim"]) == SMALL_CASE]
    if small:
        worst_ratio = max(row["ratio"] for row in small)
        worst_speedup = min(row["speedup"] for row in small)
        where = f"M = {SMALL_CASE[0]}, d = {SMALL_CASE[1]}"
        lines.append(
            f"target ratio <= {TARGET_SMALL_RATIO:g} at {where}: met in "
            f"{sum(row['ratio'] <= TARGET_SMALL_RATIO for row in small)}/{len(small)} rows "
            f"(worst {worst_ratio:.2f})")
        lines.append(
            f"target speed-up >= {TARGET_SMALL_SPEEDUP:g}x over the loop at {where}: met in "
            f"{sum(row['speedup'] >= TARGET_SMALL_SPEEDUP for row in small)}/{len(small)} rows "
            f"(worst {worst_speedup:.2f}x)")
    return "\n".join(lines)


def report(rows: Sequence[dict[str, Any]], batch: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """JSON document of a benchmark: its rows (and the batched figure), the software versions
    and the machine."""
    out = {"rows": list(rows), "versions": versions(), "machine": machine()}
    if batch is not None:
        out["batch"] = batch
    return out


# ---------------------------------------------------------------------------------------------
# Profile of one round
# ---------------------------------------------------------------------------------------------

def _cumulative(stats: dict, function: str, module: str = "") -> float:
    """Cumulative seconds of the calls of ``function`` (a Python name or a built-in's name),
    defined in a file whose path ends with ``module`` when given."""
    return sum(
        entry[3] for (path, _, name), entry in stats.items()
        if (name == function or name.endswith(f".{function}>")) and path.endswith(module)
    )


def profile_round(problem: Problem, name: str, rounds: int = 5) -> list[tuple[str, float]]:
    """Where the time of one engine round of ``name`` goes (seconds per round).

    Two parts: the engine run under :mod:`cProfile` (cumulative times of the engine's and the
    algorithm's functions; indented lines are parts of the line above), then the elementary
    passes over an ``(M, d)`` float64 array that the algorithm and the trace are made of, each
    timed alone at a state reached after two rounds.
    """
    algorithm = make_algorithm(name, problem.constants, alpha="1/L", **ALGORITHMS[name])
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(run, algorithm, problem, rounds)
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats
    oracle = _cumulative(stats, "worker_values_and_gradients")
    loss = _cumulative(stats, "_loss")
    step = _cumulative(stats, "sync_round")
    record = _cumulative(stats, "record", "sync.py") - oracle  # the engine's, not the recorder's
    entries = [
        ("engine round (under cProfile)", total),
        ("oracle: worker values and gradients", oracle),
        ("  loss: log(1 + e^-m) and its slope on the n margins", loss),
        ("  products X θ, Bᵀr (+ regularizer)", oracle - loss),
        ("the algorithm's halves (gradients cached)", step),
        ("  compressor rows (compress_rows)", _cumulative(stats, "compress_rows")),
        ("engine trace without the oracle", record),
        ("  pricing: bits and nonzeros (price_round)", _cumulative(stats, "price_round")),
        ("  algorithm.diagnostics", _cumulative(stats, "diagnostics")),
        ("nonzero counts (all calls: compressor, pricing)",
         _cumulative(stats, "count_nonzero") + _cumulative(stats, "row_counts")),
        ("rest (start, tables, summary)", total - oracle - step - record),
    ]
    per_round = [(label, seconds / rounds) for label, seconds in entries]
    return per_round + _pass_costs(problem, algorithm)


def _pass_costs(problem: Problem, algorithm: Algorithm) -> list[tuple[str, float]]:
    """Elementary ``(M, d)`` passes at a realistic state (after two rounds), best of 5."""
    objective = problem.objective
    oracle = Oracle(objective)
    theta0 = np.zeros(objective.dim)
    states, _ = start(algorithm, theta0, objective.n_workers, lambda: None)
    for _ in range(2):
        wire = sync_round(algorithm, states, oracle.worker_gradients(states.model), None)
    theta = states.server.theta
    grads = np.array(oracle.worker_gradients(theta))
    other, buffer, sent = np.array(states.workers.errors), np.empty_like(grads), np.array(wire.up)
    mask = sent != 0
    tau = np.abs(grads[0])
    kth = objective.dim - max(1, objective.dim // 100)
    shape = "x".join(map(str, grads.shape))
    passes: list[tuple[str, Callable[[], Any]]] = [
        ("bare worker_gradients", lambda: objective.worker_gradients(theta)),
        (f"one ({shape}) pass: a - b (new array)", lambda: grads - other),
        ("  subtract(a, b, out=buffer)", lambda: np.subtract(grads, other, out=buffer)),
        ("  abs(a) > tau (threshold mask, 2 passes)", lambda: np.abs(grads) > tau),
        ("  keep(a, mask) (sparsifier output, new array)", lambda: keep(grads, mask)),
        ("  count_nonzero(float a, axis=1)", lambda: np.count_nonzero(sent, axis=1)),
        ("  count_nonzero(bool mask, axis=1)", lambda: np.count_nonzero(mask, axis=1)),
        ("  a.mean(axis=0)", lambda: grads.mean(axis=0)),
        ("  mean_square_norm(a)", lambda: NUMPY.mean_square_norm(grads)),
        ("  partition(|a|, d - k, axis=1) (top-k)", lambda: np.partition(np.abs(grads), kth, 1)),
    ]
    return [(label, best_time(fn, 5)) for label, fn in passes]


def format_profile(title: str, entries: Sequence[tuple[str, float]]) -> str:
    """A profile as ``label  milliseconds`` lines."""
    width = max(len(label) for label, _ in entries)
    lines = [title] + [f"  {label:<{width}}  {1e3 * seconds:9.3f} ms" for label, seconds in entries]
    return "\n".join(lines)


#: The small problem of the per-round targets, profiled by ``convcheck bench --profile``.
PROFILE_CASE = Case(*SMALL_CASE, 400)


def profile_largest(grid: Sequence[Case] = FULL_GRID, seed: int = 0, rounds: int = 5) -> str:
    """:func:`profile_round` of both algorithms on :data:`PROFILE_CASE` (the small problem of
    the per-round targets, over more rounds) and on the largest case of ``grid``, formatted."""
    largest = max(grid, key=lambda c: (c.workers * c.dim, c.samples))
    out = []
    for case, count in ((PROFILE_CASE, max(rounds, 500)), (largest, rounds)):
        problem = benchmark_problem(case, synthetic_logistic(case, seed), seed)
        out.extend(
            format_profile(f"profile of one round: {name}, M={case.workers}, d={case.dim}, "
                           f"n={case.samples}, {case.layout} (ms per round, {count} rounds)",
                           profile_round(problem, name, count))
            for name in ALGORITHMS
        )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Batched runs
# ---------------------------------------------------------------------------------------------

#: The batched figure: GD-SEC (β = 1, error correction) on breast-cancer (logistic, λ = LAM,
#: iid over M = 4 workers) with ``steps`` step sizes α·L in :data:`BATCH_STEPS` × ``xis``
#: thresholds ξ in :data:`BATCH_XIS`, ``rounds`` rounds; ``sample`` of the runs are timed one
#: by one.
BATCH_SETTINGS = {"steps": 16, "xis": 16, "rounds": 2000, "sample": 16}
QUICK_BATCH_SETTINGS = {"steps": 4, "xis": 4, "rounds": 200, "sample": 4}
BATCH_STEPS = (0.1, 2.0)
BATCH_XIS = (0.0, 1.5)
BATCH_WORKERS = 4
TARGET_BATCH_SPEEDUP = 20.0


def batch_problem(seed: int = 0) -> Problem:
    """Logistic regression on breast-cancer (λ = :data:`LAM`), iid over
    :data:`BATCH_WORKERS` workers, its optimum certified."""
    return build_problem("logistic", "breast-cancer", workers=BATCH_WORKERS, split="iid",
                         lam=LAM, seed=seed, cross_check=False)


def _same_run(batched: Any, alone: Any) -> bool:
    """Trace, ledger, status and last iterate equal bit for bit."""
    return (batched.status == alone.status and batched.reason == alone.reason
            and all(np.array_equal(batched.columns[name], column, equal_nan=True)
                    for name, column in alone.columns.items())
            and np.array_equal(batched.ledger.up, alone.ledger.up)
            and np.array_equal(batched.ledger.down, alone.ledger.down)
            and np.array_equal(batched.theta, alone.theta))


def batch_figure(steps: int = BATCH_SETTINGS["steps"], xis: int = BATCH_SETTINGS["xis"],
                 rounds: int = BATCH_SETTINGS["rounds"], sample: int = BATCH_SETTINGS["sample"],
                 *, problem: Problem | None = None, seed: int = 0) -> dict[str, Any]:
    """Time ``steps × xis`` GD-SEC runs of ``rounds`` rounds in one batched call and one by one.

    The one-by-one time is measured on ``sample`` runs spread over the grid (run ``i`` has the
    step size ``⌊i·steps/sample⌋`` and the threshold ``⌊i·xis/sample⌋``), each timed before and
    after the batched call (the better of the two, so that load from other processes hits both
    sides alike), and extrapolated to all runs: ``mean time × runs``. Each timed run alone must
    equal its run in the batch bit for bit (trace, ledger, status, last iterate), else
    :class:`BenchmarkError`.

    Returns
    -------
    dict
        ``runs``, ``rounds``, the grid, ``batch_s``, ``alone_timed``, ``alone_s_per_run``,
        ``alone_s`` (extrapolated), ``speedup`` = ``alone_s / batch_s``, ``run_round_us``
        (batched, per run and round) and the runs' statuses.
    """
    steps, xis = check_int("steps", steps, 1), check_int("xis", xis, 1)
    rounds = check_int("rounds", rounds, 1)
    sample = check_int("sample", sample, 1, steps * xis)
    problem = batch_problem(seed) if problem is None else problem
    L = problem.constants.L
    grid = [(float(a), float(x)) for a in np.linspace(*BATCH_STEPS, steps)
            for x in np.linspace(*BATCH_XIS, xis)]
    algorithms = [make_algorithm("gd-sec", problem.constants, alpha=a / L, xi=x)
                  for a, x in grid]
    timed = sorted({(i * steps // sample) * xis + i * xis // sample for i in range(sample)})

    def one_by_one() -> tuple[list[float], list[Any]]:
        seconds, results = [], []
        for index in timed:
            start = time.perf_counter()
            results.append(run(algorithms[index], problem, rounds))
            seconds.append(time.perf_counter() - start)
        return seconds, results

    before, alone = one_by_one()
    start = time.perf_counter()
    batch = run_batch(algorithms, problem, rounds)
    batch_s = time.perf_counter() - start
    after, _ = one_by_one()
    for index, result in zip(timed, alone, strict=True):
        if not _same_run(batch[index], result):
            raise BenchmarkError(f"run {index} of the batch (alpha·L = {grid[index][0]:g}, "
                                 f"xi = {grid[index][1]:g}) differs from the same run alone")
    per_run = sum(map(min, before, after)) / len(timed)
    statuses: dict[str, int] = {}
    for result in batch:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    objective = problem.objective
    return {
        "algorithm": "gd-sec", "problem": objective.name, "workers": objective.n_workers,
        "dim": objective.dim, "samples": int(objective.shards.sizes.sum()),
        "steps": steps, "xis": xis, "alpha_L": list(BATCH_STEPS), "xi": list(BATCH_XIS),
        "runs": len(grid), "rounds": rounds, "batch_s": batch_s, "alone_timed": len(timed),
        "alone_s_per_run": per_run, "alone_s": per_run * len(grid),
        "speedup": per_run * len(grid) / batch_s,
        "run_round_us": 1e6 * batch_s / (len(grid) * rounds), "statuses": statuses,
    }


def format_batch(row: dict[str, Any]) -> str:
    """The batched figure in words, with the issue's target (met or missed)."""
    met = "met" if row["speedup"] >= TARGET_BATCH_SPEEDUP else "missed"
    return "\n".join([
        f"batched: {row['runs']} {row['algorithm']} runs ({row['steps']} step sizes alpha·L in "
        f"{row['alpha_L']} x {row['xis']} xi in {row['xi']}) on {row['problem']}, "
        f"M = {row['workers']}, d = {row['dim']}, {row['rounds']} rounds",
        f"  one batched call: {row['batch_s']:.2f} s ({row['run_round_us']:.1f} us per run "
        f"and round); statuses {row['statuses']}",
        f"  one by one: {row['alone_timed']} of the runs timed, {row['alone_s_per_run']:.3f} s "
        f"per run, extrapolated to all: {row['alone_s']:.1f} s",
        f"  speed-up {row['speedup']:.1f}x (target >= {TARGET_BATCH_SPEEDUP:g}x: {met}); the "
        "timed runs equal their runs in the batch bit for bit",
    ])
