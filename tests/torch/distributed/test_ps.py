"""The multi-process parameter server equals the single-process simulation: iterates and bits.

Rank 0 serves 2 workers; the reference is :class:`~convcheck.torch.runner.Runner` with the
algorithm's ``step`` on 2 simulated workers (per-worker loop), same seed. Both run the same
float64 operations, so the models, the worker memories and the ledgers must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.torch.distributed.conftest import WORLD, rank_states
from tests.torch.distributed.helpers import simulate

CASES = [  # label, index in the config, folder slug, worker tensors compared with the state
    ("bidir", 0, "bidir", {"errors": "errors"}),
    ("gd-sec", 1, "gd-sec", {"errors": "errors", "h": "h_workers"}),
    ("dense", 2, "dense", {}),
]


@pytest.mark.parametrize(("label", "index", "slug", "worker_fields"), CASES,
                         ids=[c[0] for c in CASES])
def test_parameter_server_equals_the_simulation(scenario, label, index, slug,
                                                worker_fields) -> None:
    run = next(r for r in scenario["results"]["runs"] if r["label"] == label)
    assert run["mode"] == "ps" and run["workers"] == WORLD - 1 and run["status"] == "completed"
    states = rank_states(scenario["checkpoints"], index, slug)
    steps = states[0]["steps"]
    assert steps == 2 * run["steps_per_epoch"] == 30
    reference = simulate(scenario["config"], label, WORLD - 1, steps)
    server = states[0]["tensors"]
    assert torch.equal(server["theta"], reference.state.theta)
    for m, state in enumerate(states[1:]):
        assert torch.equal(state["tensors"]["theta"], reference.state.theta)  # worker's copy
        for mine, theirs in worker_fields.items():
            assert torch.equal(state["tensors"][mine][0], getattr(reference.state, theirs)[m])
    if label == "bidir":
        assert torch.equal(server["server_error"], reference.state.server_error)
    if label == "gd-sec":
        assert torch.equal(server["h_server"], reference.state.h_server)
    ledger = reference.ledger.to_ledger()
    assert np.array_equal(states[0]["ledger"]["up"].numpy(), ledger.up)
    assert np.array_equal(states[0]["ledger"]["down"].numpy(), ledger.down)
    assert run["totals"] == reference.ledger.totals()
    assert run["replica_max_abs_difference"] == 0.0
    assert run["history"][-1]["test_accuracy"] > 0.3  # it learned something


def test_sparse_messages_travel_as_index_value_pairs(scenario) -> None:
    """bidir's uplink is ``k_up`` (index, value) pairs per worker and step (float64 values,
    int64 indices: 16 bytes a pair) after a 16-byte header; the downlink at most ``k_down``
    pairs to each worker: the wire bytes the ranks report lie between the two counts."""
    run = next(r for r in scenario["results"]["runs"] if r["label"] == "bidir")
    record = run["history"][-1]
    d = scenario["results"]["model"]["D"]
    k_up = max(1, int(0.05 * d))
    steps, workers = record["steps"], run["workers"]
    uplink = steps * workers * (16 + 2 * 8 * k_up)  # header + indices and values, float64
    assert record["wire_bytes_sent"] > uplink  # plus the downlink broadcasts
    assert record["wire_bytes_sent"] < uplink + steps * workers * (16 + 2 * 8 * 2 * k_up)
