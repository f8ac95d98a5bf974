"""DGS on the torch simulator: heavy-ball SGD as its special case (against torch.optim.SGD), a
loop-by-loop transcription of the rules with a random arrival order, SAMomentum, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convcheck import encoding
from convcheck.algorithms import DGS
from convcheck.algorithms.dgs import DGSWorkers
from convcheck.data import split_dataset
from convcheck.errors import InputError
from convcheck.torch.datasets import load_train_test
from convcheck.torch.layout import Layout
from convcheck.torch.models import make_model
from convcheck.torch.oracle import ObjectiveOracle
from convcheck.torch.runner import Runner
from convcheck.torch.simulation import Simulation, WorkerShards
from tests.helpers import engine_problem


def test_one_dense_worker_is_heavy_ball_sgd() -> None:
    """ρ_up = ρ_down = 1, M = 1: DGS is torch.optim.SGD(momentum=m, weight_decay=λ) on the same
    minibatches (u = α·buf, θ ← θ − u)."""
    dataset, train, _ = load_train_test("digits", scaling="maxabs", dtype=torch.float64)
    split = split_dataset(dataset, 1)
    model = make_model("mlp", input_dim=64, classes=10, hidden=[16], dtype=torch.float64)
    layout = Layout.of(model)
    alpha, momentum, decay, steps = 0.05, 0.9, 1e-3, 25
    oracle = Simulation(model, WorkerShards(train, split), 8, seed=5, weight_decay=decay)
    runner = Runner(
        DGS(alpha, momentum=momentum, rho_up=1.0, rho_down=1.0, layers=layout.sizes),
        oracle, layout.flatten_module(model),
    )
    runner.run(steps)

    reference = make_model("mlp", input_dim=64, classes=10, hidden=[16], dtype=torch.float64)
    optimizer = torch.optim.SGD(
        reference.parameters(), lr=alpha, momentum=momentum, weight_decay=decay
    )
    batches = WorkerShards(train, split)
    generator = torch.Generator().manual_seed(5)
    for _ in range(steps):
        x, y = batches.sample(8, generator)
        optimizer.zero_grad()
        F.cross_entropy(reference(x[0]), y[0]).backward()
        optimizer.step()
    expected = layout.flatten_module(reference)
    assert float((runner.theta - expected).abs().max()) < 1e-10 * float(expected.abs().max())
    assert not torch.allclose(expected, layout.flatten_module(model))  # it trained


def layer_top(x: np.ndarray, sizes, ratio: float) -> np.ndarray:
    """Layer-wise top-k by a stable sort per layer (ties to the lowest index)."""
    out = np.zeros_like(x)
    start = 0
    for size in sizes:
        k = max(1, int(np.floor(ratio * size + 1e-12)))
        block = x[start : start + size]
        keep = np.argsort(-np.abs(block), kind="stable")[:k]
        out[start + keep] = block[keep]
        start += size
    return out


def layer_bits(x: np.ndarray, sizes) -> int:
    bounds = np.cumsum([0, *sizes])
    return sum(
        encoding.sparse_bits(int(np.count_nonzero(x[a:b])), b - a, 32)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    )


def test_matches_a_loop_by_loop_transcription_of_the_rules() -> None:
    problem = engine_problem("ridge", "sorted", workers=3, n_features=8)
    sizes, alpha, m, up, down, resync, steps = (3, 5), 0.05, 0.8, 0.4, 0.3, 5, 13
    algorithm = DGS(alpha, momentum=m, rho_up=up, rho_down=down, layers=sizes, resync=resync)
    runner = Runner(algorithm, ObjectiveOracle(problem.objective),
                    torch.zeros(8, dtype=torch.float64), seed=7, order="random")
    runner.run(steps)

    # the transcription: plain numpy, one worker and one message at a time
    M, D = 3, 8
    theta, theta_sync = np.zeros(D), np.zeros(D)
    A, u = np.zeros((M, D)), np.zeros((M, D))
    version, bits_up, bits_down = 0, [], []
    generator = torch.Generator().manual_seed(7)  # the arrival orders: the same draws
    models = [np.zeros(D) for _ in range(M)]  # a worker computes at its model after its reply
    for _ in range(steps):
        grads = [problem.objective.worker_gradients(np.stack(models))[k] for k in range(M)]
        messages = []
        for k in range(M):
            u[k] = m * u[k] + alpha * grads[k]
            sent = layer_top(u[k], sizes, up)
            for i in range(D):
                if sent[i] == 0:
                    u[k, i] = u[k, i] / m
            messages.append(sent)
        bits_up.append([layer_bits(s, sizes) for s in messages])
        received = np.zeros(M, dtype=np.int64)
        for k in torch.randperm(M, generator=generator).tolist():
            theta = theta - messages[k]
            version += 1
            if version % resync == 0:
                theta_sync, A = theta.copy(), np.zeros((M, D))
                received += 32 * D
            else:
                reply = layer_top((theta - theta_sync) - A[k], sizes, down)
                A[k] = A[k] + reply
                received[k] += layer_bits(reply, sizes)
            models[k] = theta_sync + A[k]
        bits_down.append(received)

    state = runner.states.server
    np.testing.assert_allclose(state.theta.numpy(), theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.theta_sync.numpy(), theta_sync, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.accumulated.numpy(), A, rtol=0, atol=1e-12)
    np.testing.assert_allclose(runner.states.workers.momentum.numpy(), u, rtol=0, atol=1e-12)
    assert state.versions == version == steps * M
    ledger = runner.ledger.to_ledger()
    np.testing.assert_array_equal(ledger.up[1:], np.array(bits_up))
    np.testing.assert_array_equal(ledger.down[1:], np.array(bits_down))


def test_unsent_momentum_stops_decaying() -> None:
    """One coordinate never sent: its u grows by α g each step instead of decaying."""
    algorithm = DGS(0.5, momentum=0.5, rho_up=0.5, rho_down=1.0)
    algorithm.prepare(2)
    workers = DGSWorkers(torch.zeros(1, 2, dtype=torch.float64))
    for _ in range(4):
        sent = algorithm.worker(workers, torch.tensor([[4.0, 1.0]], dtype=torch.float64),
                                torch.zeros(2, dtype=torch.float64), None)
        assert sent[0, 1] == 0.0
    # sent coordinate: u = m u + α·4 → 2, 3, 3.5, 3.75; unsent: (m u + α)/m = u + 1
    assert workers.momentum[0, 0] == 3.75 and workers.momentum[0, 1] == 4.0


def test_bad_parameters() -> None:
    with pytest.raises(InputError, match="'momentum'"):
        DGS(0.1, momentum=0.0)
    with pytest.raises(InputError, match="'rho_up'"):
        DGS(0.1, rho_up=0.0)
    with pytest.raises(InputError, match="'resync'"):
        DGS(0.1, resync=0)
    problem = engine_problem("ridge")
    with pytest.raises(InputError, match="'order'"):
        Runner(DGS(0.1), ObjectiveOracle(problem.objective), torch.zeros(8, dtype=torch.float64),
               order="fifo")
    with pytest.raises(InputError, match="'layers'"):
        Runner(DGS(0.1, layers=[3, 4]), ObjectiveOracle(problem.objective),
               torch.zeros(8, dtype=torch.float64))
