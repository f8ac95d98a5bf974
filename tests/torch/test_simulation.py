"""Simulated workers: vmap equals the loop, gradients equal plain autograd, sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convcheck.data import split_dataset
from convcheck.errors import InputError
from convcheck.torch.datasets import load_train_test
from convcheck.torch.models import make_model
from convcheck.torch.simulation import Simulation, WorkerShards, evaluate


@pytest.fixture(scope="module")
def digits():
    dataset, train, test = load_train_test("digits", scaling="maxabs", dtype=torch.float64)
    return dataset, train, test, split_dataset(dataset, 3, "sorted")


def simulation(digits, name: str, *, vectorize=True, decay=0.0, seed=1) -> Simulation:
    _, train, _, split = digits
    model = make_model(name, input_dim=64, classes=10, image_shape=(1, 8, 8),
                       dtype=torch.float64, **({"hidden": [12]} if name == "mlp" else {}))
    return Simulation(model, WorkerShards(train, split), 5, seed=seed, weight_decay=decay,
                      vectorize=vectorize)


@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet8"])
def test_vmap_equals_the_loop_over_workers(digits, name) -> None:
    fast, slow = simulation(digits, name), simulation(digits, name, vectorize=False)
    theta = fast.layout.flatten_module(fast.model)
    torch.testing.assert_close(fast(theta), slow(theta), rtol=0, atol=1e-12)
    points = theta + 0.01 * torch.randn(3, theta.numel(), dtype=torch.float64,
                                        generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fast(points), slow(points), rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.last_losses, slow.last_losses, rtol=0, atol=1e-12)


def test_gradients_equal_autograd_on_the_module(digits) -> None:
    """Worker m's row is ∇ of the mean cross-entropy of its minibatch, by loss.backward()."""
    sim = simulation(digits, "mlp", decay=0.01)
    theta = sim.layout.flatten_module(sim.model) + 0.1
    points = torch.stack([theta, theta * 0.5, theta - 0.2])
    copy = torch.Generator()
    copy.set_state(sim.generator.get_state())
    features, labels = sim.shards.sample(5, copy)
    grads = sim(points)
    for m in range(3):
        module = make_model("mlp", input_dim=64, classes=10, hidden=[12], dtype=torch.float64)
        for p, value in zip(module.parameters(), sim.layout.unflatten(points[m]).values(),
                            strict=True):
            p.data.copy_(value)
        loss = F.cross_entropy(module(features[m]), labels[m])
        loss.backward()
        expected = torch.cat([p.grad.reshape(-1) for p in module.parameters()]) + 0.01 * points[m]
        torch.testing.assert_close(grads[m], expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(sim.last_losses[m], loss.detach(), rtol=0, atol=1e-12)


def test_rows_come_from_each_workers_shard(digits) -> None:
    _, train, _, split = digits
    shards = WorkerShards(train, split)
    rows = shards.rows(4000, torch.Generator().manual_seed(0))
    for m, shard in enumerate(split.shards):
        drawn = rows[m].unique()
        assert bool(torch.isin(drawn, torch.as_tensor(shard)).all())
        assert drawn.numel() > 0.95 * shard.size  # 4000 draws cover a ~600-row shard


def test_evaluate_counts_correct_predictions(digits) -> None:
    _, _, test, _ = digits
    sim = simulation(digits, "mlp")
    theta = sim.layout.flatten_module(sim.model)
    result = evaluate(sim.model, theta, test, batch_size=50)
    with torch.no_grad():
        logits = sim.model(test.X)
    assert result["accuracy"] == float((logits.argmax(1) == test.y).double().mean())
    assert abs(result["loss"] - float(F.cross_entropy(logits, test.y))) < 1e-12


def test_bad_input(digits) -> None:
    _, train, _, split = digits
    with pytest.raises(InputError, match="'split'"):
        WorkerShards(train, split_dataset(load_train_test("iris")[0], 2))
    with pytest.raises(InputError, match="'batch_size'"):
        Simulation(simulation(digits, "mlp").model, WorkerShards(train, split), 0)
