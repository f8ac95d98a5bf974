"""Pricing a round: the combined and the per-run prices equal the plain ones."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import make_algorithm
from convcheck.algorithms.base import DENSE, SPARSE
from convcheck.compressors import TopK
from convcheck.engine.rounds import (
    Wire,
    nonzeros,
    price,
    price_round,
    price_runs,
    start,
    sync_round,
)
from tests.helpers import engine_problem

CASES = [
    ("gd-sec", {"xi": 0.5}),
    ("ef", {"compressor": "top-k", "k": 2}),
    ("ef21", {"compressor": "top-k", "k": 2}),
    ("bidir-topk", {"k_up": 2, "k_down": 3}),
    ("lags", {"layers": "3,5", "k": [1, 2]}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_price_round_and_price_runs_equal_price_and_nonzeros(name, params):
    """Rounds of a batch of 3 runs: ``price_runs`` of the batch's wire is, run by run,
    ``price``/``nonzeros`` of that run's messages, and ``price_round`` is both at once."""
    problem = engine_problem("logistic", "sorted")
    objective = problem.objective
    algorithm = make_algorithm(name, problem.constants, alpha="1/L", **params)
    thetas = np.random.default_rng(0).normal(size=(3, objective.dim))
    states, initial = start(algorithm, thetas, objective.n_workers,
                            lambda: objective.runs_values_and_gradients(thetas)[1])
    wires = [initial]
    for _ in range(3):
        gradients = objective.runs_values_and_gradients(states.model)[1]
        wires.append(sync_round(algorithm, states, gradients, None))
    workers = objective.n_workers
    for wire in wires:
        up, down, (nnz_up, nnz_down) = price_runs(wire, 3, workers)
        for r in range(3):
            alone = Wire(None if wire.up is None else wire.up[r], wire.up_codec,
                         tuple((v[r], c, to) for v, c, to in wire.down))
            expected_up, expected_down = price(alone, workers)
            np.testing.assert_array_equal(up[r], expected_up)
            np.testing.assert_array_equal(down[r], expected_down)
            assert (nnz_up[r], nnz_down[r]) == nonzeros(alone, workers)
            combined = price_round(alone, workers)
            np.testing.assert_array_equal(combined[0], expected_up)
            np.testing.assert_array_equal(combined[1], expected_down)
            assert combined[2] == nonzeros(alone, workers)


def test_price_round_of_messages_to_one_worker():
    """A reply to one worker counts for that worker only; a broadcast for each."""
    sent = np.array([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    wire = Wire(sent, SPARSE, ((np.ones(4), DENSE, 1), (np.array([0.0, 3.0, 0, 0]), TopK(k=1),
                                                        None)))
    up, down, nnz = price_round(wire, 2)
    np.testing.assert_array_equal(up, [SPARSE.bits(sent[0]), 0])
    one_hot = TopK(k=1).bits(np.array([0.0, 3.0, 0, 0]))
    np.testing.assert_array_equal(down, [one_hot, 128 + one_hot])
    assert nnz == (2, 4 + 2)
    assert nnz == nonzeros(wire, 2)
    np.testing.assert_array_equal(price(wire, 2)[1], down)
