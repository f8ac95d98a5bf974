"""DGS: heavy-ball special case, θ_k = θ_sync + A_k at every event, SAMomentum's identity."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import make_algorithm
from convcheck.algorithms.dgs import DGS, PartitionTopK, partition
from convcheck.compressors import LayerTopK
from convcheck.contracts import check_compressor
from convcheck.engine import run_async
from convcheck.engine.events import ComputationLog
from convcheck.engine.timing import Exponential, LogNormal
from convcheck.errors import InputError
from tests.helpers import engine_problem


def _heavy_ball(objective, theta0, alpha, m, steps, weight_decay=0.0):
    """θ^{t+1} = θ^t − u^{t+1}, u^{t+1} = m u^t + α (∇f(θ^t) + wd θ^t), written independently."""
    theta, u = theta0.copy(), np.zeros_like(theta0)
    for _ in range(steps):
        u = m * u + alpha * (objective.gradient(theta) + weight_decay * theta)
        theta = theta - u
    return theta


def test_one_worker_full_density_with_resync_every_version_is_heavy_ball_bit_for_bit():
    problem = engine_problem(workers=1)
    alpha, m = 0.3 / problem.constants.L, 0.8
    algorithm = DGS(alpha, momentum=m, rho_up=1.0, rho_down=1.0, resync=1)
    result = run_async(algorithm, problem, 200)
    reference = _heavy_ball(problem.objective, np.zeros(problem.objective.dim), alpha, m, 200)
    np.testing.assert_array_equal(result.theta, reference)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_one_worker_full_density_is_heavy_ball_to_round_off(weight_decay):
    """Without resync the worker's model is θ_sync + A_k = θ up to round-off (a sum of model
    differences), so the trajectories agree to round-off, not bit for bit."""
    problem = engine_problem(workers=1)
    alpha, m = 0.3 / problem.constants.L, 0.8
    theta0 = np.linspace(-2.0, 3.0, problem.objective.dim)
    algorithm = DGS(alpha, momentum=m, rho_up=1.0, rho_down=1.0, weight_decay=weight_decay)
    result = run_async(algorithm, problem, 200, theta0=theta0)
    reference = _heavy_ball(problem.objective, theta0, alpha, m, 200, weight_decay)
    np.testing.assert_allclose(result.theta, reference, rtol=1e-12, atol=1e-12)
    # and it is not plain GD: momentum matters
    assert np.abs(reference - _heavy_ball(problem.objective, theta0, alpha, 0.0, 200)).max() > 1e-6


def test_worker_models_are_theta_sync_plus_accumulators_at_every_event():
    problem = engine_problem(workers=4, split="sorted")
    algorithm = DGS(
        0.2 / problem.constants.L, rho_up=0.3, rho_down=0.2, layers=[3, 5], resync=7, batch_size=5
    )
    checked = {"events": 0, "resyncs": 0, "worst": 0.0}

    def observe(t, cluster, event):
        state = cluster.server
        scale = 1.0 + np.abs(state.theta_sync).max() + np.abs(state.accumulated).max()
        gap = np.abs(cluster.models - (state.theta_sync + state.accumulated)).max() / scale
        checked["worst"] = max(checked["worst"], gap)
        checked["events"] += 1
        if t % 7 == 0:  # a resync just happened: θ_sync = θ, and only replies since then in A
            np.testing.assert_array_equal(state.theta_sync, state.theta)
            assert not state.accumulated.any()
            checked["resyncs"] += 1

    result = run_async(
        algorithm, problem, 210, compute=LogNormal(1.0, spread=4.0), observer=observe, seed=3
    )
    assert checked["events"] == 210 and checked["resyncs"] == 30
    assert checked["worst"] < 1e-13
    assert result.columns["model_drift_sq"].max() > 0  # the downlink really is lossy


def test_samomentum_per_coordinate_identity():
    """At each send of coordinate i: value sent = m·(previous value sent) + α Σ g_i over the
    computations since the previous send (previous value 0 before the first send)."""
    problem = engine_problem(workers=3, split="iid")
    alpha, m = 0.2 / problem.constants.L, 0.7
    algorithm = DGS(alpha, momentum=m, rho_up=0.25, rho_down=0.5, layers=2)
    log = ComputationLog()
    run_async(algorithm, problem, 150, compute=Exponential(1.0), seed=1, on_compute=log)
    d = problem.objective.dim
    sends = 0
    for entries in log.entries.values():
        previous, accumulated = np.zeros(d), np.zeros(d)
        for g, sent, _ in entries:
            accumulated += alpha * g
            mask = sent != 0
            np.testing.assert_allclose(
                sent[mask], m * previous[mask] + accumulated[mask], rtol=1e-12, atol=1e-15
            )
            previous[mask] = sent[mask]
            accumulated[mask] = 0.0
            sends += mask.sum()
            assert [np.count_nonzero(sent[:4]), np.count_nonzero(sent[4:])] == [1, 1]
    assert sends > 100


def test_partition_specifications():
    assert [g.tolist() for g in partition(3, 7)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [g.tolist() for g in partition("2,5", 7)] == [[0, 1], [2, 3, 4, 5, 6]]
    assert [g.tolist() for g in partition([[4, 0], [1, 2, 3]], 5)] == [[4, 0], [1, 2, 3]]
    assert [g.size for g in partition("1", 4)] == [4]


@pytest.mark.parametrize(
    "spec", [0, 8, "2,x", [3, 3], [0, 7], [[0, 1], [1, 2, 3, 4, 5, 6]], [[0, 1], []], 2.5]
)
def test_bad_partitions(spec):
    with pytest.raises(InputError) as error:
        partition(spec, 7)
    assert error.value.field == "layers"


def test_partition_top_k_is_layer_top_k_on_reordered_coordinates():
    rng = np.random.default_rng(0)
    groups = [np.array([5, 0, 3]), np.array([1, 2, 4, 6, 7])]
    compressor = PartitionTopK(groups, 0.4)
    x = rng.normal(size=(3, 8))
    order = np.concatenate(groups)
    reference = LayerTopK([3, 5], ratio=0.4).compress(x[:, order])
    out = compressor.compress(x)
    np.testing.assert_array_equal(out[:, order], reference)
    np.testing.assert_array_equal(
        compressor.bits(out), LayerTopK([3, 5], ratio=0.4).bits(reference)
    )
    check_compressor(compressor, max_examples=10)
    contiguous = PartitionTopK(partition(2, 8), 0.4)
    assert contiguous.contiguous
    np.testing.assert_array_equal(contiguous.compress(x), LayerTopK([4, 4], ratio=0.4).compress(x))


def test_make_algorithm_builds_dgs():
    algorithm = make_algorithm(
        "dgs", alpha=0.1, rho_up=0.05, rho_down=0.1, layers="3,5", resync=10, momentum=0.5
    )
    assert algorithm.params()["layers"] == "3,5" and algorithm.resync == 10


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"rho_up": 0.0}, "rho_up"),
        ({"rho_up": 1.5}, "rho_up"),
        ({"rho_down": -0.1}, "rho_down"),
        ({"rho_down": 2}, "rho_down"),
        ({"momentum": 0.0}, "momentum"),
        ({"momentum": -0.5}, "momentum"),
        ({"momentum": 1.5}, "momentum"),
        ({"resync": 0}, "resync"),
        ({"layers": 0}, "layers"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"batch_size": 0}, "batch_size"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_parameters_name_the_field(params, field):
    with pytest.raises(InputError) as error:
        make_algorithm("dgs", alpha=0.1, **params)
    assert error.value.field == field


def test_layers_must_fit_the_dimension():
    problem = engine_problem()
    with pytest.raises(InputError) as error:
        run_async(DGS(0.1, layers=[2, 2]), problem, 5)
    assert error.value.field == "layers"
