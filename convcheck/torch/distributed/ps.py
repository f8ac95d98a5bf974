"""Synchronous parameter server: rank 0 is the server, ranks ``1..N−1`` are workers ``0..M−1``.

Each round: every worker computes its minibatch gradient at its copy of the model, runs the
algorithm's worker half and sends its message to rank 0 (point to point: the real sparse
payload, indices and values; dense for GD); rank 0 receives the ``M`` messages, stacks them as
the rows of an ``(M, D)`` tensor, runs the server half on their mean, and broadcasts the
downlink (sparse for bidirectional top-k, the dense model for GD and GD-SEC, as the
single-process algorithms price it). Rank 0 prices the round with
``Messages.of(rows, up codec, downlink, down codec)`` — the simulation's own pricing — so the
ledgers agree exactly, and because every rank runs the same operations on the same inputs as
``Algorithm.step`` does for one row, the iterates agree bit for bit on CPU with the
simulation's per-worker loop (``vectorize=False``).

The downlink header carries a flag: when the server's model or a worker's loss (flagged in
its uplink header) is not finite, every rank stops with status ``"diverged"``.

Protocols (the per-algorithm glue; the arithmetic is the algorithms' pure halves):

* ``gd``: uplink dense gradient; server ``GD.server``; downlink dense ``θ``;
* ``bidir-topk``: worker ``BidirectionalTopK.worker`` on its row ``(e_m, g_m)``; server
  ``BidirectionalTopK.server``; downlink the sparse ``p``; every rank sets ``θ ← θ − p``;
* ``gd-sec``: worker ``GDSEC.worker`` with ``τ = GDSEC.thresholds(θ^k, θ^{k−1})`` from its
  copies of the last two models; server ``GDSEC.server``; downlink the dense ``θ^{k+1}``.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch

from convcheck.errors import InputError
from convcheck.torch.algorithms import GD, GDSEC, BidirectionalTopK
from convcheck.torch.compressors import DENSE, SPARSE, TorchCompressor
from convcheck.torch.distributed.base import DistributedRun
from convcheck.torch.distributed.wire import FLAG_DIVERGED, Channel, pack, unpack
from convcheck.torch.ledger import BitLedger, Messages
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor

TAG_UP = 10


class Protocol(abc.ABC):
    """One synchronous algorithm split between a worker rank and the server rank.

    Worker and server states are dicts of tensors (checkpointed as they are); worker rows are
    ``(1, D)`` so the algorithms' halves see the shape they see in one process.
    """

    name: ClassVar[str]
    sparse_up: ClassVar[bool] = True
    sparse_down: ClassVar[bool] = True

    def __init__(self, algorithm: Any) -> None:
        self.algorithm = algorithm

    @property
    @abc.abstractmethod
    def up_codec(self) -> TorchCompressor: ...

    @property
    @abc.abstractmethod
    def down_codec(self) -> TorchCompressor: ...

    @abc.abstractmethod
    def worker_start(self, theta0: Tensor) -> dict[str, Tensor]: ...

    @abc.abstractmethod
    def worker_send(self, state: dict[str, Tensor], gradient: Tensor) -> Tensor:
        """The uplink ``(D,)`` from the gradient ``(D,)``; updates the worker state."""

    @abc.abstractmethod
    def worker_receive(self, state: dict[str, Tensor], down: Tensor) -> None:
        """Apply the downlink ``(D,)``."""

    @abc.abstractmethod
    def server_start(self, theta0: Tensor) -> dict[str, Tensor]: ...

    @abc.abstractmethod
    def server_round(self, state: dict[str, Tensor], rows: Tensor) -> Tensor:
        """The downlink ``(D,)`` from the uplinks ``(M, D)``; updates the server state."""


class DenseGD(Protocol):
    name = "gd"
    sparse_up = sparse_down = False
    up_codec = down_codec = DENSE

    def worker_start(self, theta0: Tensor) -> dict[str, Tensor]:
        return {"theta": theta0.clone()}

    def worker_send(self, state: dict[str, Tensor], gradient: Tensor) -> Tensor:
        return gradient

    def worker_receive(self, state: dict[str, Tensor], down: Tensor) -> None:
        state["theta"] = down

    def server_start(self, theta0: Tensor) -> dict[str, Tensor]:
        return {"theta": theta0.clone()}

    def server_round(self, state: dict[str, Tensor], rows: Tensor) -> Tensor:
        state["theta"] = self.algorithm.server(state["theta"], rows.mean(dim=0))
        return state["theta"]


class Bidirectional(Protocol):
    name = "bidir-topk"

    @property
    def up_codec(self) -> TorchCompressor:
        return self.algorithm.up

    @property
    def down_codec(self) -> TorchCompressor:
        return self.algorithm.down

    def worker_start(self, theta0: Tensor) -> dict[str, Tensor]:
        return {"theta": theta0.clone(), "errors": theta0.new_zeros((1, theta0.shape[0]))}

    def worker_send(self, state: dict[str, Tensor], gradient: Tensor) -> Tensor:
        sent, state["errors"] = self.algorithm.worker(state["errors"], gradient[None])
        return sent[0]

    def worker_receive(self, state: dict[str, Tensor], down: Tensor) -> None:
        state["theta"] = state["theta"] - down

    def server_start(self, theta0: Tensor) -> dict[str, Tensor]:
        return {"theta": theta0.clone(), "server_error": torch.zeros_like(theta0)}

    def server_round(self, state: dict[str, Tensor], rows: Tensor) -> Tensor:
        broadcast, state["server_error"] = self.algorithm.server(
            state["server_error"], rows.mean(dim=0)
        )
        state["theta"] = state["theta"] - broadcast
        return broadcast


class GDSECProtocol(Protocol):
    name = "gd-sec"
    sparse_down = False
    up_codec, down_codec = SPARSE, DENSE

    def worker_start(self, theta0: Tensor) -> dict[str, Tensor]:
        zeros = theta0.new_zeros((1, theta0.shape[0]))
        return {"theta": theta0.clone(), "theta_prev": theta0.clone(), "h": zeros,
                "errors": zeros.clone()}

    def worker_send(self, state: dict[str, Tensor], gradient: Tensor) -> Tensor:
        tau = self.algorithm.thresholds(state["theta"], state["theta_prev"])
        sent, state["h"], state["errors"] = self.algorithm.worker(
            state["h"], state["errors"], gradient[None], tau
        )
        return sent[0]

    def worker_receive(self, state: dict[str, Tensor], down: Tensor) -> None:
        state["theta_prev"], state["theta"] = state["theta"], down

    def server_start(self, theta0: Tensor) -> dict[str, Tensor]:
        return {"theta": theta0.clone(), "theta_prev": theta0.clone(),
                "h_server": torch.zeros_like(theta0), "g_hat": torch.zeros_like(theta0)}

    def server_round(self, state: dict[str, Tensor], rows: Tensor) -> Tensor:
        state["g_hat"], state["h_server"] = self.algorithm.server(
            state["h_server"], rows.mean(dim=0)
        )
        state["theta_prev"] = state["theta"]
        state["theta"] = state["theta"] - self.algorithm.alpha * state["g_hat"]
        return state["theta"]


PROTOCOLS: dict[type, type[Protocol]] = {
    GD: DenseGD, BidirectionalTopK: Bidirectional, GDSEC: GDSECProtocol,
}


def protocol_for(algorithm: Any) -> Protocol:
    """The parameter-server protocol of ``algorithm`` (GD, bidirectional top-k, GD-SEC)."""
    cls = PROTOCOLS.get(type(algorithm))
    if cls is None:
        raise InputError(
            "algorithm.distributed.mode", f"'ps' for {algorithm.name}",
            "'ps' only for gd, bidir-topk and gd-sec (dgs: 'async-ps')",
        )
    return cls(algorithm)


class ParameterServer(DistributedRun):
    """A synchronous parameter-server run (rank 0 serves ``M = N − 1`` workers)."""

    mode = "ps"
    server = True

    def __init__(
        self, label: str, algorithm: Any, channel: Channel, oracle: Simulation, theta0: Tensor
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0)
        if channel.size < 2:
            raise InputError("world_size", channel.size, "at least 2 (a server and a worker)")
        self.protocol = protocol_for(algorithm)
        if channel.rank == 0:
            self.state = self.protocol.server_start(theta0)
            self.ledger = BitLedger(self.workers)
            self.ledger.record(None)
        else:
            self.state = self.protocol.worker_start(theta0)

    def model(self) -> Tensor:
        return self.state["theta"]

    def tensors(self) -> dict[str, Tensor]:
        return dict(self.state)

    def load_tensors(self, values: dict[str, Tensor]) -> None:
        if set(values) != set(self.state):
            raise InputError("checkpoint", sorted(values), f"tensors {sorted(self.state)}")
        self.state = dict(values)

    def step(self) -> None:
        if self.channel.rank == 0:
            self._serve()
        else:
            self._work()

    def _send(self, message: Tensor, flags: int) -> None:
        self.channel.send(pack(message) if self.protocol.sparse_up else message, 0, TAG_UP, flags)

    def _work(self) -> None:
        gradient = self.oracle.worker_gradient(self.state["theta"], self.worker)
        finite = self.note_loss()
        message = self.protocol.worker_send(self.state, gradient)
        self._send(message, 0 if finite else FLAG_DIVERGED)
        down, flags = self._receive_down()
        self.protocol.worker_receive(self.state, down)
        if flags & FLAG_DIVERGED:
            self.status = "diverged"

    def _serve(self) -> None:
        rows, flags = [], 0
        for rank in range(1, self.channel.size):
            _, length, flag = self.channel.recv_header(rank, TAG_UP)
            payload = self.channel.recv_payload(length, rank, TAG_UP, self.dtype)
            rows.append(unpack(payload, self.dim) if self.protocol.sparse_up else payload)
            flags |= flag
        rows = torch.stack(rows)
        down = self.protocol.server_round(self.state, rows)
        if not bool(torch.isfinite(self.state["theta"]).all()):
            flags |= FLAG_DIVERGED
        self._send_down(down, flags)
        self.ledger.record(
            Messages.of(rows, self.protocol.up_codec, down, self.protocol.down_codec)
        )
        if flags & FLAG_DIVERGED:
            self.status = "diverged"

    def _receive_down(self) -> tuple[Tensor, int]:
        if self.protocol.sparse_down:
            return self.channel.broadcast_sparse(None, self.dim, self.dtype)
        header = self.channel.broadcast(torch.zeros(1, dtype=torch.int64,
                                                    device=self.channel.group.device))
        down = torch.empty(self.dim, dtype=self.dtype, device=self.channel.group.device)
        return self.channel.broadcast(down), int(header[0])

    def _send_down(self, down: Tensor, flags: int) -> None:
        if self.protocol.sparse_down:
            self.channel.broadcast_sparse(down, self.dim, self.dtype, flags)
        else:
            self.channel.broadcast(torch.tensor([flags], device=self.channel.group.device))
            self.channel.broadcast(down)

    def statistics(self) -> dict[str, tuple[float, float]]:
        """Adds ``(1/M) Σ_m ‖e_m‖²`` for the algorithms with worker error memories."""
        out = super().statistics()
        if self.protocol.name != "gd":
            errors = self.state.get("errors")
            value = 0.0 if errors is None else float(errors.double().square().sum())
            out["error_norm_sq"] = (value, 0.0 if errors is None else 1.0)
        return out
