"""Runner: resume equals uninterrupted, bit for bit on CPU; divergence; refused checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from convcheck.data import split_dataset
from convcheck.errors import DataFileError, InputError
from convcheck.torch.algorithms import make_algorithm
from convcheck.torch.datasets import load_train_test
from convcheck.torch.layout import Layout
from convcheck.torch.models import make_model
from convcheck.torch.runner import Runner
from convcheck.torch.simulation import Simulation, WorkerShards, evaluate

ALGORITHMS = [
    ("gd", {"alpha": 0.2}),
    ("ef", {"alpha": 0.2, "ratio": 0.05}),
    ("ef", {"alpha": 0.2, "compressor": "rand-k", "ratio": 0.05, "scaled": False}),
    ("ef21", {"alpha": 0.2, "ratio": 0.05}),
    ("gd-sec", {"alpha": 0.2, "xi": 0.1, "beta": 0.5}),
    ("bidir-topk", {"alpha": 0.2, "ratio_up": 0.05, "ratio_down": 0.1}),
    ("lags", {"alpha": 0.2, "ratio": 0.05}),
    ("dgs", {"alpha": 0.1, "momentum": 0.7, "order": "random", "resync_every": 5}),
]


@pytest.fixture(scope="module")
def setup():
    dataset, train, test = load_train_test("digits", scaling="maxabs", train_size=600)
    model = make_model("mlp", input_dim=64, classes=10, hidden=[16])
    return model, train, test, split_dataset(dataset, 3, "dirichlet", dirichlet_alpha=0.5)


def build(setup, name, params) -> Runner:
    model, train, _, split = setup
    params = dict(params)
    if name in ("lags", "dgs"):
        params["layer_sizes"] = Layout.of(model).sizes
    oracle = Simulation(model, WorkerShards(train, split), 8, seed=11, weight_decay=1e-4)
    return Runner(make_algorithm(name, **params), oracle, Layout.of(model).flatten_module(model),
                  seed=5)


def assert_same_run(a: Runner, b: Runner) -> None:
    for field in dataclasses.fields(a.state):
        x, y = getattr(a.state, field.name), getattr(b.state, field.name)
        assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, field.name
    assert np.array_equal(a.ledger.to_ledger().up, b.ledger.to_ledger().up)
    assert np.array_equal(a.ledger.to_ledger().down, b.ledger.to_ledger().down)
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    assert torch.equal(a.oracle.generator.get_state(), b.oracle.generator.get_state())
    assert a.steps == b.steps and a.oracle.calls == b.oracle.calls
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in a.history]
    # repr: the first record's training loss is NaN (no step yet), and NaN != NaN
    assert repr(strip) == repr([{k: v for k, v in r.items() if k != "wall_s"} for r in b.history])


@pytest.mark.parametrize(("name", "params"), ALGORITHMS, ids=[a[0] + str(i) for i, a in
                                                              enumerate(ALGORITHMS)])
def test_resume_equals_uninterrupted(setup, tmp_path, name, params) -> None:
    _, _, test, _ = setup
    model = setup[0]

    def score(theta):
        return evaluate(model, theta, test)

    straight = build(setup, name, params)
    straight.train(2, 7, score)
    straight.run(5)
    first = build(setup, name, params)
    first.train(1, 7, score, checkpoint=tmp_path / "epoch.pt")  # saved at the epoch's end
    middle = build(setup, name, params)
    middle.resume(tmp_path / "epoch.pt")
    middle.train(2, 7, score)
    middle.run(2)
    middle.save(tmp_path / "middle.pt")  # in the middle of an epoch
    resumed = build(setup, name, params)
    resumed.resume(tmp_path / "middle.pt")
    resumed.run(3)
    assert_same_run(straight, resumed)
    assert straight.history[-1]["test_accuracy"] > 0.15  # it learned something


def test_divergence_ends_cleanly(setup) -> None:
    runner = build(setup, "gd", {"alpha": 1e30})
    history = runner.train(3, 5, lambda theta: {"accuracy": 0.0})
    assert runner.status == "diverged" and runner.steps < 15
    assert history[-1]["status"] == "diverged" and "test_accuracy" not in history[-1]


def test_refused_checkpoints(setup, tmp_path) -> None:
    runner = build(setup, "ef", {"alpha": 0.2, "ratio": 0.05})
    runner.save(tmp_path / "ef.pt")
    other = build(setup, "ef", {"alpha": 0.3, "ratio": 0.05})
    with pytest.raises(InputError, match="'checkpoint'"):
        other.resume(tmp_path / "ef.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataFileError, match="cannot read checkpoint"):
        other.resume(tmp_path / "bad.pt")
    with pytest.raises(DataFileError, match="not found"):
        other.resume(tmp_path / "missing.pt")
