"""Synchronous parameter server: rank 0 is the server, ranks ``1..N−1`` are workers ``0..M−1``.

One protocol for every synchronous algorithm; the arithmetic is the algorithm's halves
(:mod:`convcheck.algorithms.base`). A worker rank holds its worker state ``W`` with one row
(``start_workers(θ⁰, 1, …)``) and its copy of the model; rank 0 holds the server state ``S``.

* Start: every worker sends its initial uplink (EF21's dense gradients with ``init = "full"``;
  an empty message for the algorithms without one); rank 0 starts ``S`` from their mean.
* Each round: every worker computes its minibatch gradient at its model
  (:meth:`~convcheck.torch.simulation.Simulation.worker_gradient`), runs ``worker`` on its row
  and sends the message to rank 0 point to point (its nonzeros as (index, value) pairs when that
  is shorter, else densely: :func:`~convcheck.torch.distributed.wire.encode`); rank 0 stacks the
  ``M`` messages as the rows of an ``(M, D)`` tensor, runs ``server`` on their mean
  (``rows.mean(dim=0)``, the simulator's operation) and broadcasts the downlink (encoded the same
  way); every worker runs ``receive``.

Rank 0 prices every round with :func:`convcheck.engine.rounds.price` — the simulator's pricing
— so the ledgers agree exactly, and because every rank runs the same operations on the same
inputs as the simulator's rounds do for one row, the iterates agree bit for bit on CPU with the
simulation's per-worker loop (``vectorize=False``).

The headers carry a flag: when a worker's loss (uplink) or the server's model is not finite,
every rank stops with status ``"diverged"``.
"""

from __future__ import annotations

from typing import Any

import torch

from convcheck.algorithms.base import Algorithm
from convcheck.engine.rounds import Wire, price
from convcheck.errors import InputError
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

TAG_UP = 10


class ParameterServer(DistributedRun):
    """A synchronous parameter-server run of any synchronous algorithm (rank 0 serves
    ``M = N − 1`` workers)."""

    mode = "ps"
    server = True

    def __init__(
        self, label: str, algorithm: Algorithm, channel: Channel, oracle: Simulation,
        theta0: Tensor, *, seed: int = 0,
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0, seed=seed)
        if "sync" not in algorithm.transports:
            raise InputError("algorithm.distributed.mode", f"'ps' for {algorithm.name}",
                             "'ps' for synchronous algorithms ('async-ps' for asynchronous ones)")
        if channel.size < 2:
            raise InputError("world_size", channel.size, "at least 2 (a server and a worker)")
        algorithm.prepare(self.dim)
        channel.context = f"{label}, initial uplink"
        self.workers_state: Any = None
        self.server_state: Any = None
        if channel.rank == 0:
            rows, _ = self._receive_rows()
            self.server_state = algorithm.start_server(
                theta0, self.workers, None if rows is None else rows.mean(dim=0))
            self.ledger = BitLedger(self.workers)
            self.ledger.record_bits(*price(Wire(rows, algorithm.initial_codec), self.workers))
        else:
            worker = self.worker
            self.workers_state, up0 = algorithm.start_workers(
                theta0, 1, lambda: oracle.worker_gradient(theta0, worker)[None])
            self.theta = theta0.clone()
            channel.send_message(None if up0 is None else up0[0], 0, TAG_UP)

    def model(self) -> Tensor:
        return self.server_state.theta if self.channel.rank == 0 else self.theta

    def tensors(self) -> dict[str, Any]:
        if self.channel.rank == 0:
            return prefixed("server", self.server_state)
        return {**prefixed("workers", self.workers_state), "theta": self.theta}

    def load_tensors(self, values: dict[str, Any]) -> None:
        device = self.channel.group.device
        if self.channel.rank == 0:
            self.server_state = restored_state(self.server_state, unprefixed("server", values),
                                               device, "server state")
        else:
            self.workers_state = restored_state(
                self.workers_state, unprefixed("workers", values), device, "worker state")
            self.theta = values["theta"]

    def step(self) -> None:
        if self.channel.rank == 0:
            self._serve()
        else:
            self._work()

    def _work(self) -> None:
        algorithm = self.algorithm
        gradient = self.oracle.worker_gradient(self.theta, self.worker)
        finite = self.note_loss()
        up = algorithm.worker(self.workers_state, gradient[None], self.theta, self.generator)
        self.channel.send_message(up[0], 0, TAG_UP, 0 if finite else FLAG_DIVERGED)
        down, flags = self.channel.broadcast_message(None, self.dim, self.dtype)
        self.theta = algorithm.receive(self.workers_state, self.theta, down)
        if flags & FLAG_DIVERGED:
            self.status = "diverged"

    def _receive_rows(self) -> tuple[Tensor | None, int]:
        """The ``M`` workers' messages as rows ``(M, D)`` (``None`` if none sent one) and the
        union of their flags."""
        rows, flags = [], 0
        for rank in range(1, self.channel.size):
            _, message, flag = self.channel.recv_message(rank, TAG_UP, self.dim, self.dtype)
            rows.append(message)
            flags |= flag
        if all(row is None for row in rows):
            return None, flags
        if any(row is None for row in rows):
            raise InputError("uplink", "messages from some workers only", "one per worker")
        return torch.stack(rows), flags

    def _serve(self) -> None:
        algorithm, s = self.algorithm, self.server_state
        up, flags = self._receive_rows()
        down = algorithm.server(s, up.mean(dim=0))
        if not bool(torch.isfinite(s.theta).all()):
            flags |= FLAG_DIVERGED
        self.channel.broadcast_message(down, self.dim, self.dtype, flags & FLAG_DIVERGED)
        wire = Wire(up, algorithm.up_codec, ((down, algorithm.down_codec, None),))
        self.ledger.record_bits(*price(wire, self.workers))
        if flags & FLAG_DIVERGED:
            self.status = "diverged"

    def statistics(self) -> dict[str, tuple[float, float]]:
        """Adds ``error_norm_sq`` = ``(1/M) Σ_m ‖e_m‖²`` (NaN without error memories)."""
        out = super().statistics()
        out["error_norm_sq"] = error_statistic(self.workers_state)
        return out
