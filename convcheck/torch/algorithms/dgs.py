"""DGS [DGS] on tensors: dual-way sparsification with SAMomentum, in synchronous rounds.

Rules read from the authors' public code (THEORY.md §3). Worker ``k``, each iteration: ``g`` at
its local model ``θ_k`` (weight decay belongs to the oracle); ``u ← m·u + α g``;
``mask`` = layer-wise top-``ρ_up`` of ``u``; send ``u⊙mask``; SAMomentum:
``u ← u⊙mask + (u⊙(1 − mask))/m`` (the unsent entries stop decaying, ``m > 0``).
Server, on a message ``P`` from worker ``k``: ``θ ← θ − P``; ``D_k = (θ − θ_sync) − A_k``;
``S_k`` = layer-wise top-``ρ_down`` of ``D_k``; reply ``S_k``; ``A_k ← A_k + S_k``. The worker's
model is ``θ_k = θ_sync + A_k`` (it adds ``S_k`` to its model), so the downlink is per-worker
error feedback on model differences. Every ``R`` server versions (messages applied) a full
resync: ``θ_sync ← θ``, ``A_k ← 0`` for every ``k``, ``θ`` sent densely to every worker.

Scheduling (our choice for one process; the asynchronous engine simulates real arrival times):
a round lets every worker compute one gradient, then the server handles the ``M`` messages one
at a time in the round's arrival order — ``"cyclic"`` (``0..M−1``) or ``"random"`` (a
permutation drawn from the algorithm's generator each round). Worker ``k``'s next gradient is
taken at its model right after its reply, so a message is up to ``M − 1`` server versions
stale, and a resync later in the same round reaches worker ``k``'s computation after next: it
had already started computing. This is the event engine's schedule with equal constant compute
times (``convcheck.engine.run_async`` with ``Constant``, cyclic order), and the two agree (tests).
Layers: the blocks of ``layer_sizes`` (a model's parameter tensors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from convcheck.compressors import LayerTopK as LayerTopKSpec
from convcheck.errors import check_choice, check_int, check_real
from convcheck.torch.algorithms.base import Oracle, TorchAlgorithm, check_layers
from convcheck.torch.compressors import DENSE, LayerTopK
from convcheck.torch.ledger import Messages, Part

Tensor = torch.Tensor

ORDERS = ("cyclic", "random")


@dataclass
class DGSState:
    """Server ``θ``, ``θ_sync`` and version; per worker ``A_k``, momentum ``u`` and the model
    its next gradient is taken at (``θ_sync + A_k`` right after its last reply), ``(M, D)``."""

    theta: Tensor
    theta_sync: Tensor
    accumulated: Tensor
    momentum: Tensor
    version: int
    computing_at: Tensor


class DGS(TorchAlgorithm):
    """DGS with SAMomentum and per-worker model-difference downlink.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    momentum : float
        ``m ∈ (0, 1)``.
    ratio_up, ratio_down : float
        Densities ``ρ ∈ (0, 1]`` of the layer-wise top-k: ``k_l = max(1, ⌊ρ·d_l⌋)``.
    layer_sizes : sequence of int, optional
        ``d_l``; default one layer of size ``D``.
    resync_every : int, optional
        ``R ≥ 1``: full resync every ``R`` server versions; ``None``: never.
    order : {"cyclic", "random"}
        Arrival order of the messages within a round.
    """

    name = "dgs"
    State = DGSState

    def __init__(
        self,
        alpha: float,
        momentum: float = 0.9,
        *,
        ratio_up: float = 0.01,
        ratio_down: float = 0.01,
        layer_sizes: Sequence[int] | None = None,
        resync_every: int | None = None,
        order: str = "cyclic",
    ) -> None:
        self.alpha = check_real("alpha", alpha, 0.0, low_open=True)
        self.momentum = check_real("momentum", momentum, 0.0, 1.0, low_open=True, high_open=True)
        self.ratio_up = check_real("ratio_up", ratio_up, 0.0, 1.0, low_open=True)
        self.ratio_down = check_real("ratio_down", ratio_down, 0.0, 1.0, low_open=True)
        self.layer_sizes = check_layers(layer_sizes)
        self.resync_every = (
            None if resync_every is None else check_int("resync_every", resync_every, 1)
        )
        self.order = check_choice("order", order, ORDERS)

    @property
    def randomized(self) -> bool:
        return self.order == "random"

    def codecs(self, d: int) -> tuple[LayerTopK, LayerTopK]:
        """The layer-wise top-k of the uplink and of the downlink for dimension ``D = d``."""
        sizes = self.layer_sizes or (d,)
        check_layers(sizes, d)
        return (
            LayerTopK(LayerTopKSpec(sizes, ratio=self.ratio_up)),
            LayerTopK(LayerTopKSpec(sizes, ratio=self.ratio_down)),
        )

    def start(self, theta0: Tensor, oracle: Oracle, generator: torch.Generator) -> tuple:
        self.codecs(theta0.shape[0])
        zeros = theta0.new_zeros((oracle.workers, theta0.shape[0]))
        models = theta0.expand_as(zeros).clone()
        return DGSState(theta0.clone(), theta0.clone(), zeros, zeros.clone(), 0, models), None

    def worker_models(self, state: DGSState) -> Tensor:
        """``θ_k = θ_sync + A_k``, ``(M, D)``."""
        return state.theta_sync + state.accumulated

    def worker(self, momentum: Tensor, gradients: Tensor, up: LayerTopK) -> tuple[Tensor, Tensor]:
        """Rows ``(u⊙mask, u')`` from rows ``(u, g)``: momentum, sparsification, SAMomentum.

        ``sent != 0`` stands for the mask: it differs from it only where ``u_i = 0``, where
        ``u_i`` and ``u_i/m`` are both 0.
        """
        u = self.momentum * momentum + self.alpha * gradients
        sent = up.compress(u)
        return sent, torch.where(sent != 0, u, u / self.momentum)

    def receive(self, state: DGSState, k: int, message: Tensor, down: LayerTopK) -> Tensor | None:
        """Apply worker ``k``'s message; its reply ``S_k``, or ``None`` after a full resync."""
        state.theta = state.theta - message
        state.version += 1
        if self.resync_every is not None and state.version % self.resync_every == 0:
            state.theta_sync = state.theta.clone()
            state.accumulated.zero_()
            return None
        difference = (state.theta - state.theta_sync) - state.accumulated[k]
        reply = down.compress(difference)
        state.accumulated[k] += reply
        return reply

    def step(self, state: DGSState, oracle: Oracle, generator: torch.Generator) -> Messages:
        workers = state.accumulated.shape[0]
        up, down_codec = self.codecs(state.theta.shape[0])
        gradients = oracle(state.computing_at)
        sent, state.momentum = self.worker(state.momentum, gradients, up)
        if self.order == "random":
            order = torch.randperm(workers, generator=generator, device=generator.device).tolist()
        else:
            order = range(workers)
        down = []
        for k in order:
            reply = self.receive(state, k, sent[k], down_codec)
            state.computing_at[k] = state.theta_sync + state.accumulated[k]
            if reply is None:
                down.append(Part(state.theta.clone(), DENSE))
            else:
                down.append(Part(reply[None], down_codec, (k,)))
        return Messages((Part(sent, up),), tuple(down))

    def diagnostics(self, state: DGSState) -> dict[str, float]:
        """``(1/M) Σ_k ‖θ_k − θ‖²``: how far the workers' models lag the server's."""
        gap = self.worker_models(state) - state.theta
        return {"model_gap_sq": float(gap.double().square().sum() / gap.shape[0])}

    def params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "momentum": self.momentum,
            "ratio_up": self.ratio_up,
            "ratio_down": self.ratio_down,
            "layer_sizes": None if self.layer_sizes is None else list(self.layer_sizes),
            "resync_every": self.resync_every,
            "order": self.order,
        }
