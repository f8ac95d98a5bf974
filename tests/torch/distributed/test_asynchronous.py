"""The asynchronous parameter server equals a replay of its arrival order in one process.

The server records the order in which it applied the workers' messages. Replaying that order
with the algorithm's asynchronous rule — worker ``k`` computes at the model it holds after its
last reply, the server applies its message, every broadcast reaches each worker in front of its
next reply, and what is still owed at the end is delivered — with one minibatch stream per
worker (the single-process simulation's) must give every rank's final state bit for bit, and
the server's ledger exactly. The replay is written out here from the rule's definition.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from convcheck.torch.arrays import TORCH
from tests.torch.distributed.conftest import WORLD, rank_states
from tests.torch.distributed.helpers import make_reference_algorithm, reference_setup


def bits(codec, vector) -> int:
    return 0 if vector is None else int(TORCH.bits(codec, vector[None])[0])


def replay(config_path, label: str, arrivals: list[int]):
    """The server state, the workers' states and models, and the ledger rows after applying
    the messages in the order ``arrivals`` (then the final deliveries)."""
    workers = WORLD - 1
    entry, layout, theta0, make_oracle = reference_setup(config_path, label, workers)
    algorithm = make_reference_algorithm(entry, layout)
    algorithm.prepare(theta0.numel())
    oracles = [make_oracle() for _ in range(workers)]  # each worker's own stream
    server = algorithm.start_server(theta0, workers, None)
    states = [algorithm.start_workers(theta0, 1, None)[0] for _ in range(workers)]
    models = [theta0.clone() for _ in range(workers)]
    owed: list[list[torch.Tensor]] = [[] for _ in range(workers)]
    rows = [(np.zeros(workers, np.int64), np.zeros(workers, np.int64))]

    def deliver(k: int) -> None:
        for vector in owed[k]:
            models[k] = algorithm.receive_broadcast(states[k], models[k], vector)
        owed[k] = []

    for k in arrivals:
        gradient = oracles[k].worker_gradient(models[k], k)
        message = algorithm.worker(states[k], gradient[None], models[k][None], None)[0]
        up, down = np.zeros(workers, np.int64), np.zeros(workers, np.int64)
        up[k] = bits(algorithm.up_codec, message)
        broadcast = algorithm.server_event(server, k, message)
        if broadcast is not None:
            for j in range(workers):
                owed[j].append(broadcast[0])
            down += bits(broadcast[1], broadcast[0])
        reply, codec = algorithm.reply(server, k)
        down[k] += bits(codec, reply)
        deliver(k)
        models[k] = algorithm.receive_reply(states[k], models[k], reply)
        rows.append((up, down))
    for k in range(workers):
        deliver(k)
    return server, states, models, rows


@pytest.mark.parametrize(("label", "index", "slug"), [("dgs", 8, "dgs"),
                                                      ("async top-k", 11, "async-top-k")])
def test_asynchronous_server_equals_the_replay_of_its_arrivals(scenario, label, index,
                                                               slug) -> None:
    run = next(r for r in scenario["results"]["runs"] if r["label"] == label)
    assert run["mode"] == "async-ps" and run["status"] == "completed"
    workers = WORLD - 1
    states = rank_states(scenario["checkpoints"], index, slug)
    report = run["report"]
    steps = states[0]["steps"]
    arrivals = report["arrival_order"]
    assert report["events"] == workers * steps == len(arrivals) == states[0]["tensors"]["events"]
    assert report["messages_per_worker"] == [steps] * workers
    assert sum(report["staleness"]["histogram"]) == report["events"]
    server, worker_states, models, rows = replay(scenario["config"], label, arrivals)
    tensors = states[0]["tensors"]
    assert tensors["broadcasts"].shape[0] == 0  # everything owed was delivered at the end
    for field in dataclasses.fields(server):
        value = getattr(server, field.name)
        saved = tensors[f"server.{field.name}"]
        assert torch.equal(saved, value) if isinstance(value, torch.Tensor) else saved == value
    for k, state in enumerate(states[1:]):
        mine = state["tensors"]
        assert torch.equal(mine["theta"], models[k])
        for field in dataclasses.fields(worker_states[k]):
            assert torch.equal(mine[f"workers.{field.name}"],
                               getattr(worker_states[k], field.name))
    ledger = states[0]["ledger"]
    assert np.array_equal(ledger["up"].numpy(), np.stack([up for up, _ in rows]))
    assert np.array_equal(ledger["down"].numpy(), np.stack([down for _, down in rows]))
    assert np.isfinite(run["history"][-1]["test_loss"])


def test_dgs_resyncs_reach_every_worker(scenario) -> None:
    """With ``resync = 7`` and 60 events the server broadcast its model densely (``32·D``
    bits to every worker) several times; the uplinks are layer-wise top-ρ messages."""
    from convcheck import encoding

    run = next(r for r in scenario["results"]["runs"] if r["label"] == "dgs")
    states = rank_states(scenario["checkpoints"], 8, "dgs")
    assert int(states[0]["tensors"]["server.versions"]) == run["report"]["events"] == 60
    d = scenario["results"]["model"]["D"]
    down = states[0]["ledger"]["down"].numpy()
    resyncs = (down.min(axis=1) >= 32 * d).sum()
    assert resyncs == 60 // 7
    sizes = list(scenario["results"]["model"]["layers"].values())
    per_message = sum(encoding.sparse_bits(max(1, int(0.05 * n)), n, 32) for n in sizes)
    events = states[0]["ledger"]["up"].numpy()[1:].sum(axis=1)
    assert (events <= per_message).all() and (events > 0).all()
