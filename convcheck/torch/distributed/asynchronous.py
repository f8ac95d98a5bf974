"""Asynchronous parameter server: rank 0 applies the workers' messages in the order they arrive.

For every asynchronous algorithm (``"async"`` in its transports: DGS, asynchronous SGD dense or
sparsified); the arithmetic is the algorithm's asynchronous rule
(:mod:`convcheck.algorithms.base`). Workers (ranks ``1..N−1``, worker ``k`` = rank ``k + 1``)
never wait for each other. Worker ``k`` holds its worker state ``W_k`` (one row) and its model,
and loops: gradient at its model; ``worker`` on its row; send the message to rank 0; receive what
rank 0 sends back — first the broadcasts it is owed, each applied with ``receive_broadcast``, then
the reply, applied with ``receive_reply``. Rank 0 holds the server state ``S`` and loops: receive a
header from *any* worker (gloo's any-source receive; with NCCL through a gloo side group),
receive that worker's payload, ``server_event(S, k, message)`` — which may return a broadcast to
every worker (DGS's resync every ``R`` versions) — then ``reply(S, k)``, sent to worker ``k``
behind the broadcasts it is owed. Messages travel densely or as their nonzeros, whichever is
shorter (:func:`~convcheck.torch.distributed.wire.encode`).

Broadcasts reach a worker in front of its next reply (links are FIFO), so a worker computing
while one is made uses its old model for that computation and receives the broadcast before
the reply to that message — the rule of the simulator's asynchronous rounds
(:func:`convcheck.engine.rounds.async_round`) and of the event engine. The server keeps the
broadcasts some worker has not received yet; at the end of the run it delivers what is still
owed (flag ``FINAL`` after them), so every worker ends with the model the rule gives it.

Why point to point and not ``torch.distributed.rpc``: the server's loop is a plain
receive-apply-reply in arrival order; point-to-point messages on the run's own process group
carry it with the real sparse payloads, the same timeouts and failure reporting as the
synchronous modes, and no second runtime (RPC agents, their threads and their own timeouts).

Bits: each event (one message applied) is one ledger row: the uplink priced with the algorithm's
uplink codec for its sender, the reply with the codec :meth:`~convcheck.algorithms.base.
Algorithm.reply` gives for its receiver, and a broadcast with its codec once per worker when it is
made — the pricing of :func:`~convcheck.engine.rounds.async_round`.

Staleness: the server records, per event, how many messages it applied between its previous
reply to the sender (when the sender's model was last updated) and this message. The server
also records the order of arrivals (``report()["arrival_order"]``): replaying the events in that
order in one process with the same halves gives the same states, which the tests check.
``worker_delays`` (seconds per worker) slow chosen workers down to make the asynchrony visible.

An epoch is ``steps`` local iterations of every worker, i.e. ``M·steps`` server events; at its
end all ranks meet (statistics, evaluation, checkpoint), at which point no message is in
flight, so the checkpoint is a consistent cut (the broadcasts still owed are part of the
server's state).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from convcheck.algorithms.base import Algorithm
from convcheck.compressors import Compressor
from convcheck.errors import InputError, check_real
from convcheck.torch.arrays import TORCH
from convcheck.torch.checkpoint import restored_state
from convcheck.torch.distributed.base import DistributedRun, prefixed, unprefixed
from convcheck.torch.distributed.wire import FLAG_BROADCAST, FLAG_FINAL, Channel
from convcheck.torch.ledger import BitLedger
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor

TAG_UP, TAG_REPLY = 20, 30


def _no_initial_gradients() -> Any:
    raise InputError("algorithm", "an initial uplink",
                     "an asynchronous algorithm without one (mode 'async-ps')")


def _bits(codec: Compressor, vector: Tensor | None) -> int:
    return 0 if vector is None else int(TORCH.bits(codec, vector[None])[0])


class AsyncParameterServer(DistributedRun):
    """An asynchronous algorithm: rank 0 serves ``M = N − 1`` workers in arrival order."""

    mode = "async-ps"
    server = True

    def __init__(
        self,
        label: str,
        algorithm: Algorithm,
        channel: Channel,
        oracle: Simulation,
        theta0: Tensor,
        *,
        worker_delays: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0, seed=seed)
        if "async" not in algorithm.transports:
            raise InputError(
                "algorithm.distributed.mode", f"'async-ps' for {algorithm.name}",
                "'async-ps' for asynchronous algorithms ('ps' for synchronous ones)",
            )
        if channel.size < 2:
            raise InputError("world_size", channel.size, "at least 2 (a server and a worker)")
        delays = list(worker_delays or [0.0] * self.workers)
        if len(delays) != self.workers:
            raise InputError("worker_delays", delays, f"{self.workers} delays, one per worker")
        self.delays = [check_real("worker_delays", d, 0.0) for d in delays]
        algorithm.prepare(self.dim)
        workers, _ = algorithm.start_workers(theta0, 1, _no_initial_gradients)
        if channel.rank == 0:
            self.server_state = algorithm.start_server(theta0, self.workers, None)
            self.broadcasts: list[Tensor] = []  # not yet received by every worker
            self.received = torch.zeros(self.workers, dtype=torch.int64)  # of those
            self.events = 0
            self.last_update = torch.zeros(self.workers, dtype=torch.int64)
            self.staleness: list[int] = []
            self.arrivals: list[int] = []
            self.ledger = BitLedger(self.workers)
            self.ledger.record_empty()
        else:
            self.workers_state = workers
            self.theta = theta0.clone()

    def model(self) -> Tensor:
        return self.server_state.theta if self.channel.rank == 0 else self.theta

    def tensors(self) -> dict[str, Any]:
        if self.channel.rank != 0:
            return {**prefixed("workers", self.workers_state), "theta": self.theta}
        owed = (torch.stack(self.broadcasts) if self.broadcasts
                else self.server_state.theta.new_zeros((0, self.dim)))
        return {**prefixed("server", self.server_state), "broadcasts": owed,
                "received": self.received, "events": self.events,
                "last_update": self.last_update}

    def load_tensors(self, values: dict[str, Any]) -> None:
        device = self.channel.group.device
        if self.channel.rank != 0:
            self.workers_state = restored_state(
                self.workers_state, unprefixed("workers", values), device, "worker state")
            self.theta = values["theta"]
            return
        self.server_state = restored_state(self.server_state, unprefixed("server", values),
                                           device, "server state")
        self.broadcasts = list(values["broadcasts"])
        self.received = values["received"].cpu()
        self.events = int(values["events"])
        self.last_update = values["last_update"].cpu()

    def run(self, steps: int) -> None:
        """``steps`` local iterations of every worker; the server handles ``M·steps`` events.

        Divergence (a non-finite loss on a worker, a non-finite model on the server) does not
        stop the epoch early — the peers would be left waiting for messages — it is flagged
        and ends the run at the epoch's end, where all ranks agree on it
        (:func:`~convcheck.torch.distributed.base.run_epochs`).
        """
        if self.status != "running":
            return
        if self.channel.rank == 0:
            self._serve(self.workers * steps)
            if not bool(torch.isfinite(self.server_state.theta).all()):
                self.status = "diverged"
            self.steps += steps
            return
        flagged = False
        for _ in range(steps):
            self.channel.context = f"{self.label}, local step {self.steps + 1}"
            flagged |= not self._iterate()
            self.steps += 1
        if flagged:
            self.status = "diverged"

    def step(self) -> None:
        """One local iteration of this worker (the server serves whole epochs in :meth:`run`)."""
        if not self._iterate():
            self.status = "diverged"

    # ------------------------------------------------------------ worker
    def _iterate(self) -> bool:
        """One local iteration; whether the loss was finite."""
        gradient = self.oracle.worker_gradient(self.theta, self.worker)
        finite = self.note_loss()
        if self.delays[self.worker]:
            time.sleep(self.delays[self.worker])
        up = self.algorithm.worker(self.workers_state, gradient[None], self.theta[None],
                                   self.generator)
        self.channel.send_message(up[0], 0, TAG_UP)
        self._receive()
        return finite

    def _receive(self) -> None:
        """Apply the broadcasts owed, then the reply (or stop at the final delivery)."""
        algorithm = self.algorithm
        while True:
            _, down, flags = self.channel.recv_message(0, TAG_REPLY, self.dim, self.dtype)
            if flags & FLAG_BROADCAST:
                self.theta = algorithm.receive_broadcast(self.workers_state, self.theta, down)
                continue
            if not flags & FLAG_FINAL:
                self.theta = algorithm.receive_reply(self.workers_state, self.theta, down)
            return

    # ------------------------------------------------------------ server
    def _serve(self, events: int) -> None:
        algorithm, s = self.algorithm, self.server_state
        for _ in range(events):
            self.channel.context = f"{self.label}, server event {self.events + 1}"
            rank, message, _ = self.channel.recv_message(None, TAG_UP, self.dim, self.dtype)
            k = rank - 1
            self.staleness.append(int(self.events - self.last_update[k]))
            self.arrivals.append(k)
            up = np.zeros(self.workers, dtype=np.int64)
            down = np.zeros(self.workers, dtype=np.int64)
            up[k] = _bits(algorithm.up_codec, message)
            broadcast = algorithm.server_event(s, k, message)
            if broadcast is not None:
                vector, codec = broadcast
                self.broadcasts.append(vector)
                down += _bits(codec, vector)
            reply, codec = algorithm.reply(s, k)
            down[k] += _bits(codec, reply)
            self._deliver(k, reply, 0)
            self.events += 1
            self.last_update[k] = self.events
            self.ledger.record_bits(up, down)

    def _deliver(self, k: int, reply: Tensor | None, flags: int) -> None:
        """Send worker ``k`` the broadcasts it is owed, then ``reply`` with ``flags``."""
        rank = k + 1
        for vector in self.broadcasts[int(self.received[k]):]:
            self.channel.send_message(vector, rank, TAG_REPLY, FLAG_BROADCAST)
        self.received[k] = len(self.broadcasts)
        self.channel.send_message(reply, rank, TAG_REPLY, flags)
        done = int(self.received.min())  # received by every worker: forget them
        if done:
            del self.broadcasts[:done]
            self.received -= done

    def finish(self) -> None:
        """Deliver the broadcasts still owed, so that every worker ends with the model the rule
        gives it (flag ``FINAL``, no reply)."""
        if self.status != "running":
            return
        self.channel.context = f"{self.label}, final deliveries"
        if self.channel.rank == 0:
            for k in range(self.workers):
                self._deliver(k, None, FLAG_FINAL)
        else:
            self._receive()

    def report(self) -> dict[str, Any]:
        if self.channel.rank != 0:
            return {}
        staleness = np.asarray(self.staleness, dtype=np.int64)
        return {
            "events": len(self.staleness),
            "staleness": {
                "mean": float(staleness.mean()) if staleness.size else None,
                "max": int(staleness.max()) if staleness.size else None,
                "histogram": np.bincount(staleness).tolist() if staleness.size else [],
            },
            "messages_per_worker": np.bincount(
                np.asarray(self.arrivals, dtype=np.int64), minlength=self.workers
            ).tolist(),
            "arrival_order": list(self.arrivals),
            "worker_delays_s": self.delays,
        }

    def statistics(self) -> dict[str, tuple[float, float]]:
        """Adds ``model_gap_sq`` = ``(1/M) Σ_k ‖θ_k − θ‖²``: how far the workers' models are
        from the server's (broadcasts still owed not applied). The server's model is broadcast
        for it; statistics are not counted as the algorithm's traffic."""
        out = super().statistics()
        theta = self.server_state.theta.clone() if self.channel.rank == 0 else torch.empty(
            self.dim, dtype=self.dtype, device=self.channel.group.device)
        self.channel.broadcast(theta, count=False)
        if self.channel.rank == 0:
            out["model_gap_sq"] = (0.0, 0.0)
        else:
            out["model_gap_sq"] = (float((self.theta - theta).double().square().sum()), 1.0)
        return out
