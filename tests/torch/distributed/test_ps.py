"""The multi-process parameter server equals the single-process simulation: iterates and bits.

Rank 0 serves 2 workers; the reference is :class:`~convcheck.torch.runner.Runner` (the
simulator's rounds of the same halves) on 2 simulated workers (per-worker loop), same seed.
Both run the same float64 operations, so every field of the server state and of each worker's
row, the workers' models and the ledgers must agree exactly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from convcheck.algorithms.base import row_fields
from tests.torch.distributed.conftest import WORLD, rank_states
from tests.torch.distributed.helpers import simulate

CASES = [  # label, index in the config, folder slug
    ("bidir", 0, "bidir"),
    ("gd-sec", 1, "gd-sec"),
    ("dense", 2, "dense"),
    ("ef21", 9, "ef21"),  # with an initial uplink (init = "full")
    ("lags ps", 12, "lags-ps"),  # layer-wise codecs both ways, a per-layer state field
    ("ef ps", 13, "ef-ps"),
    ("ef21-bc", 14, "ef21-bc"),  # a compressed downlink with a server state the workers copy
]


def check_states(server: dict, workers: dict[int, dict], reference) -> None:
    """Every field of the server state and of each worker ``m``'s row (``workers``: worker
    index → its checkpointed tensors), exactly."""
    states = reference.states
    for field in dataclasses.fields(states.server):
        assert torch.equal(server[f"server.{field.name}"], getattr(states.server, field.name)), \
            field.name
    rows = row_fields(states.workers)
    for m, tensors in workers.items():
        for field in dataclasses.fields(states.workers):
            expected = getattr(states.workers, field.name)
            expected = expected[m : m + 1] if field.name in rows else expected
            assert torch.equal(tensors[f"workers.{field.name}"], expected), field.name


@pytest.mark.parametrize(("label", "index", "slug"), CASES, ids=[c[0] for c in CASES])
def test_parameter_server_equals_the_simulation(scenario, label, index, slug) -> None:
    run = next(r for r in scenario["results"]["runs"] if r["label"] == label)
    assert run["mode"] == "ps" and run["workers"] == WORLD - 1 and run["status"] == "completed"
    states = rank_states(scenario["checkpoints"], index, slug)
    steps = states[0]["steps"]
    assert steps == 2 * run["steps_per_epoch"] == 30
    reference = simulate(scenario["config"], label, WORLD - 1, steps)
    assert torch.equal(states[0]["tensors"]["server.theta"], reference.theta)
    for state in states[1:]:
        assert torch.equal(state["tensors"]["theta"], reference.states.model)  # worker's copy
    check_states(states[0]["tensors"], {m: s["tensors"] for m, s in enumerate(states[1:])},
                 reference)
    ledger = reference.ledger.to_ledger()
    assert np.array_equal(states[0]["ledger"]["up"].numpy(), ledger.up)
    assert np.array_equal(states[0]["ledger"]["down"].numpy(), ledger.down)
    assert run["totals"] == reference.ledger.totals()
    if label in ("ef21", "ef21-bc"):
        assert ledger.up[0].min() == 32 * reference.theta.numel()  # the dense initial uplink
    assert run["replica_max_abs_difference"] == 0.0
    assert run["history"][-1]["test_accuracy"] > 0.2  # it learned: chance is 0.1


def test_sparse_messages_travel_as_index_value_pairs(scenario) -> None:
    """bidir's uplink is ``k_up`` (index, value) pairs per worker and step (float64 values,
    int64 indices: 16 bytes a pair) after a 16-byte header; the downlink at most ``k_down``
    pairs to each worker: the wire bytes the ranks report lie between the two counts (plus
    the empty initial messages' headers)."""
    run = next(r for r in scenario["results"]["runs"] if r["label"] == "bidir")
    record = run["history"][-1]
    d = scenario["results"]["model"]["D"]
    k_up, k_down = max(1, int(0.05 * d)), max(1, int(0.1 * d))
    steps, workers = record["steps"], run["workers"]
    uplink = workers * 16 + steps * workers * (16 + 2 * 8 * k_up)  # header + pairs, float64
    assert record["wire_bytes_sent"] > uplink  # plus the downlink broadcasts
    assert record["wire_bytes_sent"] <= uplink + steps * workers * (16 + 2 * 8 * k_down)
