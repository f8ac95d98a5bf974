"""All-gather on 3 ranks equals the simulation on 3 workers (iterates, states, bits), for error
feedback and for GD-SEC (a server state replicated on every rank)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.torch.distributed.conftest import WORLD, rank_states
from tests.torch.distributed.helpers import simulate
from tests.torch.distributed.test_ps import check_states


def received(up: np.ndarray) -> np.ndarray:
    """What each rank receives in an all-gather: the others' messages (rows: rounds)."""
    return up.sum(axis=1, keepdims=True) - up


@pytest.mark.parametrize(("label", "index", "slug"), [("ef allgather", 3, "ef-allgather"),
                                                      ("gd-sec allgather", 10,
                                                       "gd-sec-allgather")])
def test_allgather_equals_the_simulation(scenario, label, index, slug) -> None:
    run = next(r for r in scenario["results"]["runs"] if r["label"] == label)
    assert run["mode"] == "allgather" and run["workers"] == WORLD
    states = rank_states(scenario["checkpoints"], index, slug)
    steps = states[0]["steps"]
    assert steps == 20
    reference = simulate(scenario["config"], label, WORLD, steps)
    for m, state in enumerate(states):
        tensors = state["tensors"]
        assert torch.equal(tensors["theta"], reference.states.model)
        check_states(tensors, {m: tensors}, reference)  # its replica of the server, its row
        ledger = state["ledger"]  # every rank prices every round
        expected = reference.ledger.to_ledger()
        assert np.array_equal(ledger["up"].numpy(), expected.up)
        assert np.array_equal(ledger["down"].numpy(), received(expected.up))
    assert run["replica_max_abs_difference"] == 0.0
