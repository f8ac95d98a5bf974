"""The synchronous engine: bit ledger against real encodings, trace columns, stopping, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import EF21, GD, GDSEC, BidirectionalTopK, ErrorFeedback
from convcheck.algorithms.base import DENSE, SPARSE
from convcheck.compressors import RandK, TopK
from convcheck.engine import BASE_COLUMNS, run
from convcheck.errors import InputError
from convcheck.problem import build_problem
from tests.helpers import engine_problem


def _algorithms(problem):
    """Algorithms with the codecs their specification prices their messages with (up, down),
    written here independently of the algorithms' own declarations."""
    alpha = 1.0 / problem.constants.L
    return [
        (GD(alpha), DENSE, DENSE),
        (GDSEC(alpha, xi=0.2), SPARSE, DENSE),
        (ErrorFeedback(alpha, TopK(k=2)), SPARSE, SPARSE),
        (ErrorFeedback(alpha, RandK(k=3, scaled=False), batch_size=5), SPARSE, SPARSE),
        (EF21(alpha, TopK(k=2)), SPARSE, DENSE),
        (BidirectionalTopK(alpha, k_up=2, k_down=3), SPARSE, SPARSE),
    ]


@pytest.mark.parametrize("index", range(6))
def test_ledger_equals_real_encodings(index):
    """Each recorded bit count is the length of a real message, encoded with the codec of the
    algorithm's specification (not the one it declares) and decoded back to what was sent."""
    problem = engine_problem(split="sorted")
    algorithm, up_codec, down_codec = _algorithms(problem)[index]
    rounds = []
    result = run(algorithm, problem, 8, seed=5,
                 observer=lambda k, states, wire, grads: rounds.append(wire))
    workers = problem.objective.n_workers
    initial_up = result.ledger.up[0]
    if isinstance(algorithm, EF21):  # g_m = ∇f_m(θ⁰) sent densely before the first round
        assert np.all(initial_up == 32 * problem.objective.dim)
    else:
        assert not initial_up.any()
    assert not result.ledger.down[0].any()
    assert len(rounds) == 8
    for k, wire in enumerate(rounds, start=1):
        up = [up_codec.encode(row).nbits for row in wire.up]
        np.testing.assert_array_equal(result.ledger.up[k], up)
        for row in wire.up:
            decoded = up_codec.decode(up_codec.encode(row))
            np.testing.assert_array_equal(decoded, row.astype(np.float32))
        ((down, _, receivers),) = wire.down
        assert receivers is None  # a broadcast, counted once per worker
        np.testing.assert_array_equal(result.ledger.down[k],
                                      [down_codec.encode(down).nbits] * workers)
    np.testing.assert_array_equal(result.columns["bits_up"], result.ledger.up.sum(axis=1))
    np.testing.assert_array_equal(
        result.columns["bits_up_total"], np.cumsum(result.ledger.up.sum(axis=1))
    )


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
    for algorithm, _, _ in _algorithms(problem):
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
