"""Asynchronous DGS: it completes, every worker holds θ_k = θ_sync + A_k of the server, and
the bits are the ledger's prices."""

from __future__ import annotations

import numpy as np
import torch

from convcheck import encoding
from tests.torch.distributed.conftest import WORLD, rank_states


def test_async_dgs_keeps_the_invariant_and_the_prices(scenario) -> None:
    run = next(r for r in scenario["results"]["runs"] if r["label"] == "dgs")
    assert run["mode"] == "async-ps" and run["status"] == "completed"
    workers = WORLD - 1
    states = rank_states(scenario["checkpoints"], 8, "dgs")
    server = states[0]["tensors"]
    report = run["report"]
    steps = states[0]["steps"]
    assert report["events"] == workers * steps == int(server["version"])
    assert report["messages_per_worker"] == [steps] * workers
    assert sum(report["staleness"]["histogram"]) == report["events"]
    assert not server["owed"].any()  # everything owed was delivered at the end
    for k, state in enumerate(states[1:]):
        mine = state["tensors"]
        assert torch.equal(mine["theta_sync"], server["theta_sync"])
        assert torch.equal(mine["accumulated"][0], server["accumulated"][k])
        model = mine["theta_sync"] + mine["accumulated"][0]
        assert torch.equal(model, server["computing_at"][k])
    # bits: the server's ledger (one row per event) against what each worker counted
    up = states[0]["ledger"]["up"].numpy().sum(axis=0)
    down = states[0]["ledger"]["down"].numpy().sum(axis=0)
    for k, state in enumerate(states[1:]):
        sent, got = state["tensors"]["bits"].tolist()
        assert (sent, got) == (up[k], down[k])
    sizes = list(scenario["results"]["model"]["layers"].values())
    per_message = sum(encoding.sparse_bits(max(1, int(0.05 * d)), d, 32) for d in sizes)
    rows = states[0]["ledger"]["up"].numpy()
    assert rows.shape[0] == report["events"] + 2  # start, one per event, final deliveries
    events = rows[1:-1].sum(axis=1)
    assert (events <= per_message).all() and (events > 0).all()
    d = scenario["results"]["model"]["D"]
    assert report["events"] >= 7 and (down >= 32 * d).all()  # resyncs reached every worker
    assert np.isfinite(run["history"][-1]["test_loss"])
