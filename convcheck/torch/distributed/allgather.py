"""Sparse data parallelism without a server: error feedback with an all-gather of the messages.

Every rank is a worker (``M = N``). Each step, rank ``m`` computes its minibatch gradient at its
replica of the model, runs ``ErrorFeedback.worker`` on its row (``p_m = α g_m + e_m``,
``c_m = C(p_m)``, ``e_m ← p_m − c_m``), and all-gathers the nonzeros of ``c_m`` (indices and
values; lengths first, payloads padded to the longest). Every rank then holds the same ``(M, D)``
rows and applies the same update ``θ ← θ − (1/M) Σ_m c_m`` (``rows.mean(dim=0)``, the
simulation's operation), so the replicas stay identical and equal the simulation's ``θ``.

Bits: the uplink of worker ``m`` is priced with the compressor, as in the simulation; there is
no downlink broadcast, rank ``m`` instead *receives* the ``M − 1`` other messages, so its
downlink is ``Σ_{j≠m} bits(c_j)`` (the simulation prices a sparse broadcast of the aggregate
instead — the one pricing that differs, because the transport differs). Every rank prices
every round (it has all the messages), so every rank holds the whole ledger.

Randomized compressors are refused: the simulation draws one ``(M, D)`` batch of randomness per
round, which a rank would have to reproduce in full; top-k, threshold, layer-wise top-k are
deterministic.
"""

from __future__ import annotations

from typing import Any

import torch

from convcheck.errors import InputError
from convcheck.torch.algorithms import ErrorFeedback
from convcheck.torch.distributed.base import DistributedRun
from convcheck.torch.distributed.wire import FLAG_DIVERGED, Channel
from convcheck.torch.ledger import BitLedger, Messages, Part
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor


def gathered_messages(rows: Tensor, codec: Any) -> Messages:
    """Uplink rows ``(M, D)`` priced with ``codec``; each row also counts as received by the
    ``M − 1`` other ranks (the downlink of an all-gather)."""
    workers = rows.shape[0]
    down = tuple(
        Part(rows[j], codec, [i for i in range(workers) if i != j]) for j in range(workers)
    )
    return Messages((Part(rows, codec),), down)


class AllGatherEF(DistributedRun):
    """Classic error feedback on ``N`` ranks with an all-gather of the sparse messages."""

    mode = "allgather"

    def __init__(
        self, label: str, algorithm: Any, channel: Channel, oracle: Simulation, theta0: Tensor
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0)
        if not isinstance(algorithm, ErrorFeedback):
            raise InputError(
                "algorithm.distributed.mode", f"'allgather' for {algorithm.name}",
                "'allgather' only for ef",
            )
        if algorithm.randomized:
            raise InputError(
                "compressor", algorithm.compressor.name, "a deterministic compressor (top-k, "
                "threshold, layer-top-k) for the all-gather mode",
            )
        self.theta = theta0.clone()
        self.errors = theta0.new_zeros((1, theta0.shape[0]))
        self.ledger = BitLedger(self.workers)
        self.ledger.record(None)

    def model(self) -> Tensor:
        return self.theta

    def tensors(self) -> dict[str, Tensor]:
        return {"theta": self.theta, "errors": self.errors}

    def load_tensors(self, values: dict[str, Tensor]) -> None:
        self.theta, self.errors = values["theta"], values["errors"]

    def step(self) -> None:
        gradient = self.oracle.worker_gradient(self.theta, self.worker)
        finite = self.note_loss()
        sent, self.errors = self.algorithm.worker(self.errors, gradient[None])
        rows, flags = self.channel.all_gather_sparse(sent[0], 0 if finite else FLAG_DIVERGED)
        self.theta = self.theta - rows.mean(dim=0)
        self.ledger.record(gathered_messages(rows, self.algorithm.compressor))
        if any(flag & FLAG_DIVERGED for flag in flags) or not bool(
            torch.isfinite(self.theta).all()
        ):
            self.status = "diverged"

    def statistics(self) -> dict[str, tuple[float, float]]:
        out = super().statistics()
        out["error_norm_sq"] = (float(self.errors.double().square().sum()), 1.0)
        return out
