"""Asynchronous (sparsified) SGD: the error-feedback identity at every event, routing, errors."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import AsyncSGD, AsyncSparseSGD, make_algorithm
from convcheck.compressors import Identity, RandK, TopK
from convcheck.engine import run_async
from convcheck.engine.events import ComputationLog
from convcheck.engine.timing import LogNormal
from convcheck.errors import InputError
from tests.helpers import engine_problem


@pytest.mark.parametrize("compressor", [TopK(k=2), RandK(k=3)], ids=["top-k", "rand-k"])
def test_virtual_iterate_is_sgd_on_stale_gradients_at_every_event(compressor):
    """With ē_k = the memory after worker k's last *applied* computation,
    y^t = θ^t − Σ_k ē_k^t equals θ⁰ − α Σ_{s<t} g_s (the uncompressed SGD on the stale
    gradients), and θ^t = θ⁰ − Σ_{s<t} c_s."""
    problem = engine_problem(workers=4, split="sorted")
    alpha = 0.3 / problem.constants.L
    algorithm = AsyncSparseSGD(alpha, compressor, batch_size=6)
    log = ComputationLog(lambda cluster, k: cluster.workers_state.errors[k].copy())
    theta0 = np.linspace(-1.0, 1.0, problem.objective.dim)
    applied = np.zeros(4, dtype=int)
    sums = {"g": np.zeros_like(theta0), "c": np.zeros_like(theta0)}
    worst = []

    def observe(t, cluster, event):
        state = cluster.server
        k = event["worker"]
        g, c, _ = log.entries[k][applied[k]]
        applied[k] += 1
        sums["g"] += g
        sums["c"] += c
        memories = [
            log.entries[j][applied[j] - 1][2] if applied[j] else np.zeros_like(theta0)
            for j in range(4)
        ]
        virtual = state.theta - np.sum(memories, axis=0)
        worst.append(np.abs(virtual - (theta0 - alpha * sums["g"])).max())
        np.testing.assert_allclose(state.theta, theta0 - sums["c"], rtol=1e-12, atol=1e-12)

    result = run_async(
        algorithm, problem, 300, theta0=theta0, compute=LogNormal(1.0, spread=5.0),
        observer=observe, on_compute=log,
    )
    assert result.summary["staleness"]["max"] > 3  # genuinely stale
    assert max(worst) < 1e-12
    assert result.columns["error_norm_sq"][-1] > 0


def test_without_memory_nothing_is_remembered():
    problem = engine_problem(workers=3, split="iid")
    alpha = 0.3 / problem.constants.L
    algorithm = AsyncSparseSGD(alpha, TopK(k=1), error_memory=False)
    log = ComputationLog()
    result = run_async(algorithm, problem, 60, on_compute=log)
    assert np.all(result.columns["error_norm_sq"] == 0.0)
    for entries in log.entries.values():
        for g, c, _ in entries:
            np.testing.assert_array_equal(c, TopK(k=1).compress(alpha * g))


def test_dense_async_sgd_is_the_identity_compressor_without_memory():
    algorithm = AsyncSGD(0.1, batch_size=3)
    assert isinstance(algorithm.compressor, Identity) and not algorithm.error_memory
    assert algorithm.params()["batch_size"] == 3 and algorithm.randomized


def test_make_algorithm_routes_compressor_parameters():
    constants = engine_problem().constants
    algorithm = make_algorithm("async-sparse-sgd", constants, k=3, error_memory=False)
    assert algorithm.compressor.k == 3 and not algorithm.error_memory
    algorithm = make_algorithm("async-sparse-sgd", alpha=0.1, compressor="rand-k", ratio=0.5)
    assert algorithm.compressor.randomized and algorithm.randomized
    assert make_algorithm("async-sgd", constants).alpha == pytest.approx(1 / constants.L)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: AsyncSparseSGD(0.0, TopK(k=1)), "alpha"),
        (lambda: AsyncSparseSGD(0.1, "top-k"), "compressor"),
        (lambda: AsyncSparseSGD(0.1, TopK(k=1), error_memory="yes"), "error_memory"),
        (lambda: AsyncSparseSGD(0.1, TopK(k=1), batch_size=0), "batch_size"),
        (lambda: AsyncSGD(0.1, batch_size=1.5), "batch_size"),
        (lambda: make_algorithm("async-sgd", alpha=0.1, compressor="top-k"), "compressor"),
        (lambda: make_algorithm("async-sparse-sgd", alpha=0.1), "k"),
        (lambda: AsyncSparseSGD(0.1, TopK(k=50)).prepare(8), "compressor"),
    ],
)
def test_bad_input_names_the_field(build, field):
    with pytest.raises(InputError) as error:
        build()
    assert error.value.field == field
