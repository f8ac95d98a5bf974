"""The asynchronous engine: synchronous special cases, staleness, τ_max, bits, time, seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convcheck.algorithms import (
    GD,
    AsyncSGD,
    AsyncSparseSGD,
    BidirectionalTopK,
    ErrorFeedback,
)
from convcheck.algorithms.dgs import DGS, PartitionTopK, partition
from convcheck.compressors import Identity, RandK, TopK
from convcheck.encoding import sparse_bits
from convcheck.engine import ASYNC_COLUMNS, BASE_COLUMNS, run, run_async, write_run
from convcheck.engine.timing import Constant, Exponential, Link, LogNormal, Pareto
from convcheck.errors import InputError
from tests.helpers import engine_problem


def _alpha(problem, c=0.5):
    return c / problem.constants.L


# ---------------------------------------------------------------- synchronous special cases
@pytest.mark.parametrize("latency", [0.0, 0.3])
def test_one_worker_full_gradient_is_gd_bit_for_bit(latency):
    """One worker: every update has staleness 0, so async SGD is GD (same float operations);
    latency only moves the clock."""
    problem = engine_problem(workers=1)
    alpha = _alpha(problem)
    sync = run(GD(alpha), problem, 150)
    link = Link(latency_up=latency, latency_down=latency)
    result = run_async(AsyncSGD(alpha), problem, 150, compute=Exponential(1.0), link=link)
    for name in ("value", "grad_norm_sq", "suboptimality", "dist_sq", "step_norm"):
        np.testing.assert_array_equal(result.columns[name], sync.columns[name])
    np.testing.assert_array_equal(result.theta, sync.theta)
    assert result.summary["staleness"]["max"] == 0
    np.testing.assert_array_equal(result.columns["bits_up"][1:], 32 * problem.objective.dim)


@pytest.mark.parametrize(
    ("sync_algorithm", "async_algorithm"),
    [
        (lambda a: ErrorFeedback(a, Identity(), batch_size=7), lambda a: AsyncSGD(a, batch_size=7)),
        (
            lambda a: ErrorFeedback(a, TopK(k=3), batch_size=5),
            lambda a: AsyncSparseSGD(a, TopK(k=3), batch_size=5),
        ),
        (
            lambda a: ErrorFeedback(a, RandK(k=2)),
            lambda a: AsyncSparseSGD(a, RandK(k=2)),
        ),
    ],
    ids=["sgd", "topk-ef-sgd", "randk-ef"],
)
def test_one_worker_is_synchronous_sgd_bit_for_bit(sync_algorithm, async_algorithm):
    """Same seed: the async engine's algorithm generator is the synchronous engine's, consumed in
    the same order (minibatch, then compressor), so the trajectories agree exactly."""
    problem = engine_problem(workers=1)
    alpha = _alpha(problem)
    sync = run(sync_algorithm(alpha), problem, 120, seed=3)
    result = run_async(async_algorithm(alpha), problem, 120, seed=3)
    np.testing.assert_array_equal(result.theta, sync.theta)
    np.testing.assert_array_equal(result.columns["grad_norm_sq"], sync.columns["grad_norm_sq"])
    # worker-side state is read after the worker's next computation (it is simulated as soon as
    # its model is fixed), so the async row t shows the synchronous round t + 1
    np.testing.assert_array_equal(
        result.columns["error_norm_sq"][:-1], sync.columns["error_norm_sq"][1:]
    )
    np.testing.assert_array_equal(result.ledger.up, sync.ledger.up)


def test_tau_max_zero_serializes_shared_data_workers_into_gd():
    """τ_max = 0: one worker computes at a time, on the current model; with every worker holding
    the whole dataset and full gradients, that is GD, exactly, whatever the speeds."""
    problem = engine_problem(workers=1)
    alpha = _alpha(problem)
    sync = run(GD(alpha), problem, 100)
    result = run_async(
        AsyncSGD(alpha), problem, 100, workers=5, tau_max=0, compute=Pareto(1.0, spread=10.0)
    )
    np.testing.assert_array_equal(result.theta, sync.theta)
    stats = result.summary["staleness"]
    assert stats["max"] == 0 and len(set(result.columns["worker"][1:6])) == 5


def test_sync_engine_refuses_async_algorithms_and_vice_versa():
    problem = engine_problem()
    with pytest.raises(InputError) as error:
        run(AsyncSGD(0.1), problem, 5)
    assert error.value.field == "algorithm"
    with pytest.raises(InputError) as error:
        run_async(BidirectionalTopK(0.1, k_up=1, k_down=1), problem, 5)
    assert error.value.field == "algorithm"


# ---------------------------------------------------------------- staleness
@pytest.mark.parametrize("workers", [2, 5])
def test_equal_constant_speeds_give_staleness_w_minus_1_in_worker_order(workers):
    """Ties (all arrivals at the same instants) are broken by worker index: after the first
    round every update has τ = W − 1, and senders cycle 0, 1, …, W − 1."""
    problem = engine_problem(workers=workers, split="iid")
    result = run_async(AsyncSGD(_alpha(problem)), problem, 10 * workers, compute=Constant(2.0))
    tau = result.columns["staleness"][1:]
    np.testing.assert_array_equal(tau[:workers], np.arange(workers))
    assert np.all(tau[workers:] == workers - 1)
    np.testing.assert_array_equal(result.columns["worker"][1:], np.tile(np.arange(workers), 10))
    np.testing.assert_array_equal(
        result.columns["time"][1:], np.repeat(2.0 * np.arange(1, 11), workers)
    )


def test_equal_random_speeds_mean_staleness_is_w_minus_1():
    """Exponential (Poisson) workers of equal speed: each of the other W − 1 workers updates
    once per compute time on average, so E τ = W − 1 in steady state."""
    problem = engine_problem(workers=1)
    means = []
    for seed in range(4):
        result = run_async(
            AsyncSGD(_alpha(problem)), problem, 3000, workers=8, seed=seed, trace_every=3000
        )
        means.append(result.summary["staleness"]["mean"])
    assert abs(np.mean(means) - 7.0) < 0.25, means


def test_heterogeneous_speeds_skew_the_histogram():
    problem = engine_problem(workers=1)
    result = run_async(
        AsyncSGD(_alpha(problem)),
        problem,
        4000,
        workers=8,
        compute=LogNormal(1.0, sigma=0.5, spread=16.0),
        trace_every=4000,
    )
    stats = result.summary["staleness"]
    per_worker = np.array(stats["per_worker_mean"])
    assert np.all(np.diff(per_worker) > 0)  # slower workers see staler models
    counts = np.array(stats["updates_per_worker"])
    assert counts[0] > 5 * counts[-1]  # fast workers dominate the updates
    hist = np.array(stats["histogram"])
    tau = np.repeat(np.arange(hist.size), hist)
    assert tau.mean() > np.median(tau) and stats["max"] > 3 * stats["mean"]  # right-skewed
    assert abs(stats["mean"] - 7.0) < 1.0  # still ≈ W − 1 on average over all updates


def _bounded_run(tau_max, observer=None):
    problem = engine_problem(workers=8, split="iid")
    return run_async(
        AsyncSparseSGD(_alpha(problem), TopK(k=2)),
        problem,
        800,
        compute=Exponential(1.0, spread=20.0),
        tau_max=tau_max,
        observer=observer,
        trace_every=800,
        seed=2,
    )


@pytest.mark.parametrize("tau_max", [0, 1, 3, 7, 12])
def test_tau_max_is_respected(tau_max):
    seen = []
    result = _bounded_run(tau_max, lambda t, state, event: seen.append(event["staleness"]))
    stats = result.summary["staleness"]
    assert result.status == "completed" and len(seen) == 800
    assert max(seen) <= tau_max and stats["max"] <= tau_max
    if tau_max < 7:  # at most τ_max + 1 of the 8 workers compute at once
        assert stats["waited_reads"] > 0
    else:  # all compute; fast workers' messages are held until the slow ones are applied
        assert stats["held_updates"] > 0 and stats["waited_reads"] == 0


def test_without_tau_max_the_same_schedule_is_staler():
    assert _bounded_run(None).summary["staleness"]["max"] > 12


# ---------------------------------------------------------------- bits and time
class _Recording:
    """Wraps an async algorithm and keeps every message it produced, per update."""

    def __init__(self, inner):
        self.inner, self.up, self.down = inner, {}, []

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_ledger_equals_real_encodings():
    """Replay: every update's uplink bits are the real encoding of the sender's message, and the
    downlink bits those of the replies and resync broadcasts sent during it — encoded with the
    codecs of DGS's specification (a sparse message per layer; the resync densely), built here
    independently of the algorithm's own."""
    problem = engine_problem(workers=4, split="iid")
    d = problem.objective.dim
    layers = partition(3, d)
    up_codec, down_codec = PartitionTopK(layers, 0.3), PartitionTopK(layers, 0.2)
    sent = {"up": {}, "down": []}

    class Recording(DGS):
        def server_event(self, s, worker, up):
            broadcast = super().server_event(s, worker, up)
            sent["current"] = (worker, sent["up"][worker])
            sent["down"].append([] if broadcast is None else
                                [(j, Identity().encode(broadcast[0]).nbits) for j in range(4)])
            return broadcast

        def reply(self, s, worker):
            vector, codec = super().reply(s, worker)
            sent["down"][-1].append((worker, down_codec.encode(vector).nbits))
            return vector, codec

    algorithm = Recording(_alpha(problem, 0.2), rho_up=0.3, rho_down=0.2, layers=3, resync=5)
    expected_up = []

    def on_compute(worker, gradient, message, cluster):
        sent["up"][worker] = message

    def observe(t, cluster, event):
        worker, message = sent["current"]
        expected_up.append((worker, up_codec.encode(message).nbits))

    result = run_async(algorithm, problem, 40, observer=observe, on_compute=on_compute, seed=1)
    assert len(expected_up) == 40
    for t, (worker, bits) in enumerate(expected_up, start=1):
        row = np.zeros(4, dtype=np.int64)
        row[worker] = bits
        np.testing.assert_array_equal(result.ledger.up[t], row)
        down = np.zeros(4, dtype=np.int64)
        for j, nbits in sent["down"][t - 1]:
            down[j] += nbits
        np.testing.assert_array_equal(result.ledger.down[t], down)
    resync_rows = np.flatnonzero(result.columns["iteration"] % 5 == 0)[1:]
    assert np.all(result.ledger.down[resync_rows].min(axis=1) >= 32 * d)
    assert not result.ledger.up[0].any() and not result.ledger.down[0].any()


def test_simulated_time_follows_the_link_model():
    """One worker, constant compute c: each update takes c + bits_up/B_up + ℓ_up + bits_down/B_down
    + ℓ_down after the previous one (the first has no downlink: the worker starts with θ⁰)."""
    problem = engine_problem(workers=1)
    d, k = problem.objective.dim, 2
    link = Link(latency_up=0.1, latency_down=0.2, bandwidth_up=1000.0, bandwidth_down=500.0)
    result = run_async(
        AsyncSparseSGD(_alpha(problem), TopK(k=k)), problem, 6, compute=Constant(1.0), link=link
    )
    up, down = sparse_bits(np.array([k]), d, 32)[0], 32 * d
    first = 1.0 + up / 1000.0 + 0.1
    step = down / 500.0 + 0.2 + first
    np.testing.assert_allclose(
        result.columns["time"], [0.0, first] + [first + i * step for i in range(1, 6)]
    )


def test_bandwidth_makes_sparse_messages_faster():
    problem = engine_problem(workers=4, split="iid")
    link = Link(bandwidth_up=100.0, bandwidth_down=100.0)
    args = dict(compute=Constant(1.0), link=link, seed=0)
    dense = run_async(AsyncSGD(_alpha(problem)), problem, 100, **args)
    sparse = run_async(DGS(_alpha(problem, 0.1), rho_up=0.2, rho_down=0.2), problem, 100, **args)
    assert sparse.summary["time"] < dense.summary["time"] / 2


# ---------------------------------------------------------------- trace, target, seeds
def test_trace_columns_and_export(tmp_path):
    problem = engine_problem(workers=3, split="iid")
    result = run_async(AsyncSparseSGD(_alpha(problem), TopK(k=2)), problem, 30, seed=4)
    assert list(result.columns) == list(BASE_COLUMNS + ASYNC_COLUMNS) + ["error_norm_sq"]
    assert result.columns["worker"][0] == -1 and result.columns["staleness"][0] == -1
    assert np.all(np.diff(result.columns["time"]) >= 0)
    gradient = problem.objective.gradient(result.theta)
    assert result.columns["grad_norm_sq"][-1] == pytest.approx(gradient @ gradient, rel=1e-12)
    assert result.summary["ergodic_grad_norm_sq"] == pytest.approx(
        result.columns["grad_norm_sq"][:-1].mean(), rel=1e-15
    )
    written = json.loads(open(write_run(result, tmp_path / "a.json")).read())
    assert written["summary"]["staleness"]["histogram"] == result.summary["staleness"]["histogram"]
    assert written["meta"]["engine"] == "async"
    header = open(write_run(result, tmp_path / "a.csv")).readline().strip().split(",")
    assert header[len(BASE_COLUMNS) : len(BASE_COLUMNS) + 4] == list(ASYNC_COLUMNS)


def test_trace_every_thins_rows_not_the_bookkeeping():
    problem = engine_problem(workers=4, split="iid")
    alpha = _alpha(problem)
    full = run_async(AsyncSparseSGD(alpha, TopK(k=2)), problem, 103, seed=5)
    thin = run_async(AsyncSparseSGD(alpha, TopK(k=2)), problem, 103, seed=5, trace_every=10)
    np.testing.assert_array_equal(thin.columns["iteration"], list(range(0, 101, 10)) + [103])
    rows = thin.columns["iteration"]
    for name in ("grad_norm_sq", "time", "bits_up_total", "bits_down_total", "staleness"):
        np.testing.assert_array_equal(thin.columns[name], full.columns[name][rows])
    assert thin.ledger.totals() == full.ledger.totals()
    assert thin.summary["staleness"] == full.summary["staleness"]
    assert full.summary["ergodic_exact"] and not thin.summary["ergodic_exact"]
    assert thin.meta["oracle"]["full_evaluations"] == len(rows)


def test_target_records_time_and_bits():
    problem = engine_problem(workers=4, split="iid")
    alpha = _alpha(problem)
    full = run_async(AsyncSGD(alpha), problem, 2000, seed=1)
    target = 1e-3
    hit = int(np.argmax(full.columns["suboptimality"] <= target))
    assert hit > 0
    stopped = run_async(AsyncSGD(alpha), problem, 2000, seed=1, target=target)
    assert stopped.status == "target reached" and stopped.summary["target_iteration"] == hit
    assert stopped.summary["target_time"] == full.columns["time"][hit]
    assert stopped.summary["bits_up_to_target"] == full.columns["bits_up_total"][hit]
    assert stopped.summary["bits_down_to_target"] == full.columns["bits_down_total"][hit]


def test_divergence_ends_cleanly():
    problem = engine_problem("ridge", workers=4, split="iid")
    result = run_async(AsyncSGD(_alpha(problem, 5.0)), problem, 50_000, trace_every=50)
    assert result.status == "diverged" and result.summary["iterations"] < 50_000
    assert not result.summary["ergodic_exact"]


@pytest.mark.parametrize(
    "make",
    [
        lambda a: AsyncSparseSGD(a, RandK(k=2), batch_size=4),
        lambda a: DGS(a, rho_up=0.3, rho_down=0.3, batch_size=4, resync=9),
    ],
)
def test_same_seed_same_trace_bit_for_bit(make):
    problem = engine_problem(workers=4, split="iid")
    alpha = _alpha(problem, 0.2)
    kwargs = dict(compute=LogNormal(1.0, spread=3.0), link=Link(bandwidth_up=1e4), tau_max=4)
    first = run_async(make(alpha), problem, 200, seed=9, **kwargs)
    second = run_async(make(alpha), problem, 200, seed=9, **kwargs)
    other = run_async(make(alpha), problem, 200, seed=10, **kwargs)
    for name in first.columns:
        np.testing.assert_array_equal(first.columns[name], second.columns[name])
    np.testing.assert_array_equal(first.ledger.down, second.ledger.down)
    assert not np.array_equal(first.columns["time"], other.columns["time"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"iterations": 0}, "iterations"),
        ({"iterations": 5, "tau_max": -1}, "tau_max"),
        ({"iterations": 5, "trace_every": 0}, "trace_every"),
        ({"iterations": 5, "workers": 3}, "workers"),
        ({"iterations": 5, "seed": -2}, "seed"),
        ({"iterations": 5, "compute": "exponential"}, "compute"),
        ({"iterations": 5, "compute": Exponential([1.0, 2.0])}, "mean"),
        ({"iterations": 5, "link": {"latency_up": 1}}, "link"),
        ({"iterations": 5, "theta0": np.zeros(2)}, "theta0"),
        ({"iterations": 5, "target": -1.0}, "target"),
    ],
)
def test_bad_input(kwargs, field):
    problem = engine_problem(workers=4, split="iid")
    with pytest.raises(InputError) as error:
        run_async(AsyncSGD(0.1), problem, **kwargs)
    assert error.value.field == field


def test_staleness_summary_by_hand():
    """Senders 0,1,0,0,1 (updates 0..4): worker 0 at 0, 2, 3 (gaps 2, 1, then 1 to the end),
    worker 1 at 1, 4 (gap 3): H = 3; an idle worker has no mean."""
    from convcheck.engine.events import _staleness_summary

    stats = _staleness_summary(np.array([0, 1, 1, 0, 2]), np.array([0, 1, 0, 0, 1]), 3)
    assert stats["max_update_gap"] == 3 and stats["max"] == 2
    assert stats["histogram"] == [2, 2, 1] and stats["updates_per_worker"] == [3, 2, 0]
    assert stats["per_worker_mean"] == [pytest.approx(1 / 3), 1.5, None]
    assert _staleness_summary(np.array([0, 0]), np.array([1, 1]), 2)["max_update_gap"] == 1
