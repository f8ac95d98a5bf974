"""All-gather top-k EF on 3 ranks equals the simulation's EF on 3 workers (iterates, bits)."""

from __future__ import annotations

import numpy as np
import torch

from tests.torch.distributed.conftest import WORLD, rank_states
from tests.torch.distributed.helpers import simulate


def received(up: np.ndarray) -> np.ndarray:
    """What each rank receives in an all-gather: the others' messages (rows: rounds)."""
    return up.sum(axis=1, keepdims=True) - up


def test_allgather_ef_equals_the_simulation(scenario) -> None:
    run = next(r for r in scenario["results"]["runs"] if r["label"] == "ef allgather")
    assert run["mode"] == "allgather" and run["workers"] == WORLD
    states = rank_states(scenario["checkpoints"], 3, "ef-allgather")
    steps = states[0]["steps"]
    assert steps == 20
    reference = simulate(scenario["config"], "ef allgather", WORLD, steps)
    for m, state in enumerate(states):
        assert torch.equal(state["tensors"]["theta"], reference.state.theta)
        assert torch.equal(state["tensors"]["errors"][0], reference.state.errors[m])
        ledger = state["ledger"]  # every rank prices every round
        expected = reference.ledger.to_ledger()
        assert np.array_equal(ledger["up"].numpy(), expected.up)
        assert np.array_equal(ledger["down"].numpy(), received(expected.up))
    assert run["replica_max_abs_difference"] == 0.0
