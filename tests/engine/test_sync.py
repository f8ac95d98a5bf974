"""The synchronous engine: bit ledger against real encodings, trace columns, stopping, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import EF21, GD, GDSEC, BidirectionalTopK, ErrorFeedback
from convcheck.algorithms.base import DENSE, SPARSE
from convcheck.compressors import RandK, TopK
from convcheck.engine import BASE_COLUMNS, Oracle, run
from convcheck.errors import InputError
from convcheck.problem import build_problem
from tests.helpers import engine_problem


def _algorithms(problem):
    alpha = 1.0 / problem.constants.L
    return [
        GD(alpha),
        GDSEC(alpha, xi=0.2),
        ErrorFeedback(alpha, TopK(k=2)),
        ErrorFeedback(alpha, RandK(k=3, scaled=False), batch_size=5),
        EF21(alpha, TopK(k=2)),
        BidirectionalTopK(alpha, k_up=2, k_down=3),
    ]


@pytest.mark.parametrize("index", range(6))
def test_ledger_equals_real_encodings(index):
    """Replay the run step by step: each recorded bit count is the length of a real message."""
    problem = engine_problem(split="sorted")
    algorithm = _algorithms(problem)[index]
    result = run(algorithm, problem, 8, seed=5)
    oracle = Oracle(problem.objective)
    rng = np.random.default_rng(np.random.SeedSequence(5))
    state, initial = algorithm.start(np.zeros(problem.objective.dim), oracle, rng)
    rounds = [initial] + [algorithm.step(state, oracle, rng) for _ in range(8)]
    workers = problem.objective.n_workers
    for k, messages in enumerate(rounds):
        if messages is None:
            assert not result.ledger.up[k].any() and not result.ledger.down[k].any()
            continue
        up = [messages.up_codec.encode(row).nbits for row in messages.up]
        np.testing.assert_array_equal(result.ledger.up[k], up)
        for row, bits in zip(messages.up, up, strict=True):
            decoded = messages.up_codec.decode(messages.up_codec.encode(row))
            np.testing.assert_array_equal(decoded, row.astype(np.float32))
            assert bits > 0 or not row.any()
        rows = [messages.down] * workers if messages.down.ndim == 1 else list(messages.down)
        down = [messages.down_codec.encode(row).nbits for row in rows]
        np.testing.assert_array_equal(result.ledger.down[k], down)
    np.testing.assert_array_equal(result.columns["bits_up"], result.ledger.up.sum(axis=1))
    np.testing.assert_array_equal(
        result.columns["bits_up_total"], np.cumsum(result.ledger.up.sum(axis=1))
    )
    np.testing.assert_array_equal(result.theta, state.theta)


def test_codecs_price_dense_and_sparse_messages():
    d = 100
    x = np.zeros(d)
    x[[3, 50]] = 1.0
    assert DENSE.bits(x) == 32 * d
    assert SPARSE.bits(x) == 2 * (32 + 7)  # index list: ⌈log₂ 100⌉ = 7 bits per index


def test_trace_columns():
    problem = engine_problem()
    result = run(GDSEC(1.0 / problem.constants.L, xi=0.1), problem, 50)
    assert list(result.columns) == list(BASE_COLUMNS) + ["error_norm_sq", "w_norm"]
    assert all(len(values) == 51 for values in result.columns.values())
    objective, optimum = problem.objective, problem.optimum
    np.testing.assert_allclose(
        result.columns["suboptimality"][-1],
        objective.value(result.theta) - optimum.value,
        rtol=1e-12,
    )
    gradient = objective.gradient(result.theta)
    assert result.columns["grad_norm_sq"][-1] == pytest.approx(gradient @ gradient, rel=1e-12)
    gap = result.theta - optimum.theta
    assert result.columns["dist_sq"][-1] == pytest.approx(gap @ gap, rel=1e-12)
    assert result.columns["step_norm"][0] == 0.0
    assert result.meta["oracle"]["full_evaluations"] == 51  # one evaluation per iterate


def test_nonconvex_trace_has_no_distance_and_uses_f_low():
    problem = engine_problem("nonconvex-logistic")
    result = run(GD(1.0 / problem.constants.L), problem, 20)
    assert np.all(np.isnan(result.columns["dist_sq"]))
    np.testing.assert_array_equal(result.columns["suboptimality"], result.columns["value"])
    assert result.summary["target_metric"] == "grad_norm_sq"


def test_target_stops_and_records_bits():
    problem = engine_problem()
    algorithm = GDSEC(1.0 / problem.constants.L, xi=0.2)
    full = run(algorithm, problem, 3000)
    target = 1e-6
    hit = int(np.argmax(full.columns["suboptimality"] <= target))
    assert full.columns["suboptimality"][hit] <= target < full.columns["suboptimality"][hit - 1]
    stopped = run(algorithm, problem, 3000, target=target)
    assert stopped.status == "target reached" and stopped.iterations == hit
    assert stopped.summary["target_iteration"] == hit
    assert stopped.summary["bits_up_to_target"] == full.columns["bits_up_total"][hit]
    kept = run(algorithm, problem, 3000, target=target, stop_at_target=False)
    assert kept.status == "completed" and kept.iterations == 3000
    assert kept.summary["target_iteration"] == hit


def test_unreached_target_is_reported():
    problem = engine_problem()
    result = run(GD(1.0 / problem.constants.L), problem, 5, target=1e-12)
    assert result.status == "completed" and result.summary["target_iteration"] is None


@pytest.mark.parametrize("alpha_times_L", [3.0, 1e6])
def test_divergence_ends_cleanly(alpha_times_L):
    problem = engine_problem("ridge")
    result = run(GD(alpha_times_L / problem.constants.L), problem, 10_000)
    assert result.status == "diverged"
    assert result.iterations < 10_000
    assert "iteration" in result.reason


def test_same_seed_same_trace_bit_for_bit():
    problem = engine_problem(split="iid")
    for algorithm in _algorithms(problem):
        first, second = run(algorithm, problem, 40, seed=11), run(algorithm, problem, 40, seed=11)
        for name in first.columns:
            np.testing.assert_array_equal(first.columns[name], second.columns[name])
        np.testing.assert_array_equal(first.ledger.up, second.ledger.up)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"iterations": 0}, "iterations"),
        ({"iterations": 5, "seed": -1}, "seed"),
        ({"iterations": 5, "target": 0.0}, "target"),
        ({"iterations": 5, "target_metric": "loss"}, "target_metric"),
        ({"iterations": 5, "theta0": np.zeros(3)}, "theta0"),
        ({"iterations": 5, "blowup": 0.5}, "blowup"),
    ],
)
def test_bad_input(kwargs, field):
    with pytest.raises(InputError) as raised:
        run(GD(1.0), engine_problem(), **kwargs)
    assert raised.value.field == field


def test_zero_workers_is_refused():
    with pytest.raises(InputError) as raised:
        build_problem("ridge", "diabetes", workers=0)
    assert raised.value.field == "workers"
