"""Data parallelism without a server: every rank all-gathers the messages and runs the server.

Every rank is a worker (``M = N``) and holds a replica of the server state. One protocol for every
synchronous algorithm (the server half is deterministic, so the replicas stay identical); the
arithmetic is the algorithm's halves (:mod:`convcheck.algorithms.base`). At start the initial
uplinks, if the algorithm has any, are all-gathered and every rank starts the server state from
their mean. Each step, rank ``m`` computes its minibatch gradient at its model, runs ``worker``
on its row, all-gathers the ``M`` messages (their nonzeros, lengths first and payloads padded to
the longest, or densely when some message is dense:
:meth:`~convcheck.torch.distributed.wire.Channel.all_gather_message`), runs ``server`` on their
mean (``rows.mean(dim=0)``, the simulation's operation) and ``receive`` on the downlink it just
computed. So every replica holds the simulation's server state and worker ``m``'s state is the
simulation's row ``m``.

Bits (:func:`gathered_bits`): the uplink of worker ``m`` is its message priced with the
algorithm's codec, as in the simulation; there is no downlink broadcast, rank ``m`` instead
*receives* the ``M − 1`` other messages, so its downlink is ``Σ_{j≠m} bits(c_j)`` (the simulation
prices the server's broadcast instead — the one pricing that differs, because the transport
differs). Every rank prices every round (it has all the messages), so every rank holds the whole
ledger.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from convcheck.algorithms.base import Algorithm
from convcheck.compressors import Compressor
from convcheck.errors import InputError
from convcheck.torch.arrays import TORCH
from convcheck.torch.checkpoint import restored_state
from convcheck.torch.distributed.base import (
    DistributedRun,
    error_statistic,
    prefixed,
    unprefixed,
)
from convcheck.torch.distributed.wire import FLAG_DIVERGED, Channel
from convcheck.torch.ledger import BitLedger
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor


def gathered_bits(rows: Tensor, codec: Compressor) -> tuple[np.ndarray, np.ndarray]:
    """``(up, down)`` bits per rank of an all-gather of the messages ``rows`` ``(M, d)``: each
    rank sends its own message and receives the ``M − 1`` others (read back to the host: the
    all-gather has waited for the messages anyway)."""
    up = TORCH.bits(codec, rows).cpu().numpy()
    return up, up.sum() - up


class AllGather(DistributedRun):
    """Any synchronous algorithm on ``N`` ranks with an all-gather of the messages and a
    replicated server."""

    mode = "allgather"

    def __init__(
        self, label: str, algorithm: Algorithm, channel: Channel, oracle: Simulation,
        theta0: Tensor, *, seed: int = 0,
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0, seed=seed)
        if "sync" not in algorithm.transports:
            raise InputError("algorithm.distributed.mode", f"'allgather' for {algorithm.name}",
                             "'allgather' for synchronous algorithms (a replicable server)")
        algorithm.prepare(self.dim)
        channel.context = f"{label}, initial uplink"
        worker = self.worker
        self.workers_state, up0 = algorithm.start_workers(
            theta0, 1, lambda: oracle.worker_gradient(theta0, worker)[None])
        self.ledger = BitLedger(self.workers)
        mean = None
        if up0 is None:
            self.ledger.record_empty()
        else:
            rows, _ = channel.all_gather_message(up0[0])
            mean = rows.mean(dim=0)
            self.ledger.record_bits(*gathered_bits(rows, algorithm.initial_codec))
        self.server_state = algorithm.start_server(theta0, self.workers, mean)
        self.theta = theta0.clone()

    def model(self) -> Tensor:
        """The server state's model (the replicas' and the simulation's)."""
        return self.server_state.theta

    def tensors(self) -> dict[str, Any]:
        return {**prefixed("server", self.server_state),
                **prefixed("workers", self.workers_state), "theta": self.theta}

    def load_tensors(self, values: dict[str, Any]) -> None:
        device = self.channel.group.device
        self.server_state = restored_state(self.server_state, unprefixed("server", values),
                                           device, "server state")
        self.workers_state = restored_state(self.workers_state, unprefixed("workers", values),
                                            device, "worker state")
        self.theta = values["theta"]

    def step(self) -> None:
        algorithm = self.algorithm
        gradient = self.oracle.worker_gradient(self.theta, self.worker)
        finite = self.note_loss()
        up = algorithm.worker(self.workers_state, gradient[None], self.theta, self.generator)
        rows, flags = self.channel.all_gather_message(up[0], 0 if finite else FLAG_DIVERGED)
        down = algorithm.server(self.server_state, rows.mean(dim=0))
        self.theta = algorithm.receive(self.workers_state, self.theta, down)
        self.ledger.record_bits(*gathered_bits(rows, algorithm.up_codec))
        if any(flag & FLAG_DIVERGED for flag in flags) or not bool(
            torch.isfinite(self.server_state.theta).all()
        ):
            self.status = "diverged"

    def statistics(self) -> dict[str, tuple[float, float]]:
        """Adds ``error_norm_sq`` = ``(1/M) Σ_m ‖e_m‖²`` (NaN without error memories)."""
        out = super().statistics()
        out["error_norm_sq"] = error_statistic(self.workers_state)
        return out
