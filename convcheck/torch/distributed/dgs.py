"""DGS [DGS] asynchronously: rank 0 applies the workers' messages in the order they arrive.

Workers (ranks ``1..N−1``, worker ``k`` = rank ``k + 1``) never wait for each other. Worker
``k`` loops: gradient at its model ``θ_k = θ_sync + A_k`` (it keeps its copies of ``θ_sync`` and
``A_k`` and adds them as the simulation does, ``θ_sync + A_k``); ``DGS.worker``
(momentum, layer-wise top-``ρ_up``, SAMomentum); send the sparse ``u⊙mask`` to rank 0; wait for
the reply; apply it. Rank 0 loops: receive a header from *any* worker (gloo's any-source
receive; with NCCL one posted ``irecv`` per worker, polled), receive that worker's payload,
``DGS.receive`` (``θ ← θ − P``, version + 1, ``S_k`` = layer-wise top-``ρ_down`` of
``(θ − θ_sync) − A_k``, ``A_k ← A_k + S_k``, or the full resync every ``R`` versions), and reply.

Why point to point and not ``torch.distributed.rpc``: the server's loop is a plain
receive-apply-reply in arrival order; p2p messages on the run's own process group carry it
with the real sparse payloads, the same timeouts and failure reporting as the synchronous
modes, and no second runtime (RPC agents, their threads and their own timeouts).

Resync. When ``R`` versions have passed the server sets ``θ_sync ← θ`` and ``A_j ← 0`` for
every ``j``, and owes every worker the new ``θ_sync`` (dense). The worker whose message
triggered it receives it in that reply; every other worker ``j`` receives it (flag
``RESYNC``, then ``θ_sync`` densely) in front of its next reply, before the reply's ``S_j``;
at the end of the run the server delivers what is still owed (flag ``FINAL``). So after
every reply, and at the end, worker ``j``'s ``(θ_sync, A_j)`` equal the server's — the
invariant ``θ_j = θ_sync + A_j`` holds bit for bit, which the tests check.

Bits: each event (one message applied) is one ledger row: the uplink ``u⊙mask`` priced with
the layer-wise top-``ρ_up`` codec for its sender, the reply ``S_k`` with the top-``ρ_down`` codec,
and a delivered resync ``32·D`` for its receiver — the simulation's prices. Every worker also
counts the bits of what it sent and received; the two counts must agree.

Staleness: the server records, per event, how many versions were applied between the moment
the sender's model was last updated (its previous reply) and this message — ``τ`` of
THEORY.md §3. ``worker_delays`` (seconds per worker) slow chosen workers down to make the
asynchrony visible.

An epoch is ``steps`` local iterations of every worker, i.e. ``M·steps`` server events; at its
end all ranks meet (statistics, evaluation, checkpoint), at which point no message is in
flight, so the checkpoint is a consistent cut (the resyncs still owed are part of the server's
state).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from convcheck.errors import InputError, check_real
from convcheck.torch.algorithms import DGS
from convcheck.torch.compressors import DENSE
from convcheck.torch.distributed.base import DistributedRun
from convcheck.torch.distributed.wire import (
    FLAG_FINAL,
    FLAG_RESYNC,
    Channel,
    pack,
    unpack,
)
from convcheck.torch.ledger import BitLedger, Messages, Part
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor

TAG_UP, TAG_REPLY = 20, 30


class AsyncDGS(DistributedRun):
    """Asynchronous DGS: rank 0 serves ``M = N − 1`` workers in arrival order."""

    mode = "async-ps"
    server = True

    def __init__(
        self,
        label: str,
        algorithm: Any,
        channel: Channel,
        oracle: Simulation,
        theta0: Tensor,
        *,
        worker_delays: Sequence[float] | None = None,
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0)
        if not isinstance(algorithm, DGS):
            raise InputError(
                "algorithm.distributed.mode", f"'async-ps' for {algorithm.name}",
                "'async-ps' only for dgs",
            )
        if channel.size < 2:
            raise InputError("world_size", channel.size, "at least 2 (a server and a worker)")
        self.up, self.down = algorithm.codecs(self.dim)
        delays = list(worker_delays or [0.0] * self.workers)
        if len(delays) != self.workers:
            raise InputError("worker_delays", delays, f"{self.workers} delays, one per worker")
        self.delays = [check_real("worker_delays", d, 0.0) for d in delays]
        zeros = theta0.new_zeros((1, self.dim))
        if channel.rank == 0:
            self.state = algorithm.State(
                theta=theta0.clone(), theta_sync=theta0.clone(),
                accumulated=theta0.new_zeros((self.workers, self.dim)),
                momentum=theta0.new_zeros((0, self.dim)),  # momentum lives on the workers
                version=0, computing_at=theta0.expand(self.workers, -1).clone(),
            )
            self.owed = torch.zeros(self.workers, dtype=torch.bool)
            self.last_update = torch.zeros(self.workers, dtype=torch.int64)
            self.staleness: list[int] = []
            self.arrivals: list[int] = []
            self.ledger = BitLedger(self.workers)
            self.ledger.record(None)
        else:
            self.theta_sync = theta0.clone()
            self.accumulated = zeros.clone()
            self.momentum = zeros.clone()
            self.bits = torch.zeros(2, dtype=torch.int64)  # (sent, received) by this worker

    def model(self) -> Tensor:
        if self.channel.rank == 0:
            return self.state.theta
        return self.theta_sync + self.accumulated[0]

    def tensors(self) -> dict[str, Tensor]:
        if self.channel.rank == 0:
            s = self.state
            return {"theta": s.theta, "theta_sync": s.theta_sync, "accumulated": s.accumulated,
                    "version": torch.tensor(s.version), "computing_at": s.computing_at,
                    "owed": self.owed, "last_update": self.last_update}
        return {"theta_sync": self.theta_sync, "accumulated": self.accumulated,
                "momentum": self.momentum, "bits": self.bits}

    def load_tensors(self, values: dict[str, Tensor]) -> None:
        if self.channel.rank == 0:
            self.state = self.algorithm.State(
                theta=values["theta"], theta_sync=values["theta_sync"],
                accumulated=values["accumulated"],
                momentum=values["theta"].new_zeros((0, self.dim)),
                version=int(values["version"]), computing_at=values["computing_at"],
            )
            self.owed = values["owed"].cpu()
            self.last_update = values["last_update"].cpu()
        else:
            self.theta_sync, self.accumulated = values["theta_sync"], values["accumulated"]
            self.momentum, self.bits = values["momentum"], values["bits"].cpu()

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
            if not bool(torch.isfinite(self.state.theta).all()):
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
        point = self.theta_sync + self.accumulated  # (1, D): the server's computing_at[k]
        gradient = self.oracle.worker_gradient(point[0], self.worker)
        finite = self.note_loss()
        if self.delays[self.worker]:
            time.sleep(self.delays[self.worker])
        sent, self.momentum = self.algorithm.worker(self.momentum, gradient[None], self.up)
        self.channel.send(pack(sent[0]), 0, TAG_UP)
        self.bits[0] += int(self.up.bits(sent[0]))
        self._receive()
        return finite

    def _receive(self) -> None:
        _, length, flags = self.channel.recv_header(0, TAG_REPLY)
        if flags & FLAG_RESYNC:
            self.theta_sync = self.channel.recv_payload(self.dim, 0, TAG_REPLY, self.dtype,
                                                        extra=True)
            self.accumulated.zero_()
            self.bits[1] += int(DENSE.bits(self.theta_sync))
        reply = unpack(self.channel.recv_payload(length, 0, TAG_REPLY, self.dtype), self.dim)
        self.accumulated += reply
        self.bits[1] += int(self.down.bits(reply))

    # ------------------------------------------------------------ server
    def _serve(self, events: int) -> None:
        for _ in range(events):
            self.channel.context = f"{self.label}, server version {self.state.version + 1}"
            rank, length, _ = self.channel.recv_header(None, TAG_UP)
            k = rank - 1
            message = unpack(self.channel.recv_payload(length, rank, TAG_UP, self.dtype),
                             self.dim)
            self.staleness.append(int(self.state.version - self.last_update[k]))
            self.arrivals.append(k)
            reply = self.algorithm.receive(self.state, k, message, self.down)
            if reply is None:  # a resync: every worker is owed the new θ_sync
                self.owed[:] = True
                reply = torch.zeros_like(message)
            down = self._reply(k, reply, 0)
            self.last_update[k] = self.state.version
            self.ledger.record(Messages((Part(message[None], self.up, (k,)),), down))

    def _reply(self, k: int, reply: Tensor, flags: int) -> tuple[Part, ...]:
        """Send worker ``k`` its reply (preceded by an owed resync); the parts it costs."""
        parts = [Part(reply[None], self.down, (k,))]
        rank = k + 1
        owed = bool(self.owed[k])
        if owed:
            flags |= FLAG_RESYNC
            parts.append(Part(self.state.theta_sync, DENSE, (k,)))
        self.channel.send(pack(reply), rank, TAG_REPLY, flags,
                          extra=self.state.theta_sync if owed else None)
        self.owed[k] = False
        # worker k's model from now on (where its next gradient is taken), as the worker adds it
        self.state.computing_at[k] = self.state.theta_sync + self.state.accumulated[k]
        return tuple(parts)

    def finish(self) -> None:
        """Deliver the resyncs still owed, so that every worker ends with the server's
        ``(θ_sync, A_k)`` (flag ``FINAL``, an empty reply)."""
        if self.status != "running":
            return
        self.channel.context = f"{self.label}, final deliveries"
        if self.channel.rank == 0:
            parts: list[Part] = []
            for k in range(self.workers):
                parts.extend(self._reply(k, torch.zeros_like(self.state.theta), FLAG_FINAL))
            self.ledger.record(Messages((), tuple(parts)))
        else:
            self._receive()

    def report(self) -> dict[str, Any]:
        if self.channel.rank != 0:
            return {}
        staleness = np.asarray(self.staleness, dtype=np.int64)
        return {
            "events": len(self.staleness),
            "version": self.state.version,
            "staleness": {
                "mean": float(staleness.mean()) if staleness.size else None,
                "max": int(staleness.max()) if staleness.size else None,
                "histogram": np.bincount(staleness).tolist() if staleness.size else [],
            },
            "messages_per_worker": np.bincount(
                np.asarray(self.arrivals, dtype=np.int64), minlength=self.workers
            ).tolist(),
            "worker_delays_s": self.delays,
        }

    def statistics(self) -> dict[str, tuple[float, float]]:
        out = super().statistics()
        gap = 0.0
        if self.channel.rank == 0:  # the workers' actual models (owed resyncs not applied)
            models = self.state.computing_at
            gap = float((models - self.state.theta).double().square().sum())
        out["model_gap_sq"] = (gap, float(self.workers) if self.channel.rank == 0 else 0.0)
        return out
