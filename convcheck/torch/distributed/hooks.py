"""DDP communication hooks: top-k with error feedback and GD-SEC on gradient buckets.

``DistributedDataParallel.register_comm_hook(state, hook)`` calls ``hook(state, bucket)`` once
per gradient bucket with the bucket's flat local gradient; the hook returns a future of the
tensor DDP writes back into the parameters' ``.grad``. Our hooks compress the bucket with the
algorithm's worker half, all-gather the nonzeros (indices and values; lengths first, payloads
asynchronously, so DDP keeps overlapping the later buckets with backprop), and finish in the
future's callback with the mean of the ``M`` messages (and the server half, for GD-SEC).

What the hooks return is the **model update**, the step size already applied, so the optimizer
must be ``torch.optim.SGD(params, lr=1.0)`` (momentum 0, no weight decay): ``θ ← θ − update`` is
then exactly the single-process algorithm's ``θ − (1/M) Σ_m c_m`` (EF, with ``α`` inside
``p_m = α g_m + e_m``) or ``θ − α ĝ`` (GD-SEC). An EF hook built with ``α = 1`` is error
feedback in gradient units instead, for use with any step size.

Memories. DDP rebuilds its buckets after the first iteration (the buckets of iteration 0 follow
the parameters' order, later ones the order gradients became ready), so memories kept per
bucket index would be scrambled. The memories therefore live per parameter — one flat ``(D,)``
tensor per memory in the model's :class:`~convcheck.torch.layout.Layout` — and a bucket reads
and writes the slices of its own parameters, in its own order. With one bucket holding the whole
model (``bucket_cap_mb`` large), the hooks compute what the single-process algorithm computes,
up to the order of the coordinates inside the bucket (which matters only for ties in top-k).

* :func:`topk_ef_hook` — ``p = α g + e``; ``c = C(p)``; ``e ← p − c`` (``ErrorFeedback.worker``);
  returns ``(1/M) Σ_m c_m``.
* :func:`gdsec_hook` — ``τ = ξ |θ^k − θ^{k−1}| / α`` on the bucket's parameters (their values
  at hook time are ``θ^k``; ``θ^{k−1}`` is remembered), ``GDSEC.worker`` for ``(Δ̂_m, h_m, e_m)``,
  all-gather of ``Δ̂_m``, then ``GDSEC.server`` on every rank (the server's ``h`` is replicated);
  returns ``α ĝ``. Scalar ``ξ`` only (a per-coordinate ``ξ`` would need the bucket's
  coordinates' positions in ``θ``).

Bits, per bucket: the uplink of rank ``m`` is priced with the compressor (EF) or as a sparse
message (GD-SEC) of the bucket's dimension, its downlink is the ``M − 1`` messages it receives.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from convcheck.encoding import dense_bits
from convcheck.errors import InputError
from convcheck.torch.algorithms import GD, GDSEC, ErrorFeedback
from convcheck.torch.compressors import DENSE, SPARSE
from convcheck.torch.distributed.allgather import gathered_messages
from convcheck.torch.distributed.base import DistributedRun
from convcheck.torch.distributed.wire import Channel, unpack_rows
from convcheck.torch.layout import Layout
from convcheck.torch.ledger import BitLedger, price
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor


class HookState:
    """Per-parameter memories of a comm hook, the algorithm, and the bits of the current step.

    Parameters
    ----------
    module : torch.nn.Module
        The model DDP wraps (its parameters identify the buckets' slices).
    algorithm : ErrorFeedback or GDSEC
    channel : Channel
    memories : sequence of str
        Names of the flat ``(D,)`` memories (zero at start).
    """

    def __init__(
        self, module: torch.nn.Module, algorithm: Any, channel: Channel, memories: tuple[str, ...]
    ) -> None:
        self.algorithm, self.channel = algorithm, channel
        self.layout = Layout.of(module)
        params = [p for p in module.parameters() if p.requires_grad]
        self.slices = {id(p): part for p, part in zip(params, self.layout.slices(), strict=True)}
        zeros = torch.zeros(self.layout.dim, dtype=params[0].dtype, device=params[0].device)
        self.memory = {name: zeros.clone() for name in memories}
        self.up = np.zeros(channel.size, dtype=np.int64)
        self.down = np.zeros(channel.size, dtype=np.int64)

    def read(self, name: str, params: list[Tensor]) -> Tensor:
        """The bucket's slice of memory ``name`` (its parameters' order)."""
        flat = self.memory[name]
        return torch.cat([flat[self.slices[id(p)]] for p in params])

    def write(self, name: str, params: list[Tensor], values: Tensor) -> None:
        """Store the bucket's slice of memory ``name``."""
        start = 0
        for p in params:
            part = self.slices[id(p)]
            size = part.stop - part.start
            self.memory[name][part] = values[start : start + size]
            start += size

    def account(self, rows: Tensor, codec: Any) -> None:
        """Add the bits of one bucket's all-gather (rows ``(M, d_b)``) to the step's bits."""
        messages = gathered_messages(rows, codec)
        self.up += price(messages.up, self.channel.size)
        self.down += price(messages.down, self.channel.size)

    def take_bits(self) -> tuple[np.ndarray, np.ndarray]:
        """The step's bits per rank (up, down), and reset."""
        out = (self.up.copy(), self.down.copy())
        self.up[:] = 0
        self.down[:] = 0
        return out


def _future(state: HookState, sent: Tensor, finish: Any) -> torch.futures.Future:
    pending = state.channel.all_gather_sparse_async(sent, "a gradient bucket")
    d = sent.numel()
    return pending.work.get_future().then(lambda _: finish(unpack_rows(pending.payloads(), d)))


def topk_ef_hook(state: HookState, bucket: dist.GradBucket) -> torch.futures.Future:
    """Error feedback with the algorithm's compressor on one bucket; returns the mean of the
    ``M`` compressed messages (the update)."""
    params = bucket.parameters()
    algorithm = state.algorithm
    sent, errors = algorithm.worker(state.read("errors", params)[None], bucket.buffer()[None])
    state.write("errors", params, errors[0])

    def finish(rows: Tensor) -> Tensor:
        state.account(rows, algorithm.compressor)
        return rows.mean(dim=0)

    return _future(state, sent[0], finish)


def gdsec_hook(state: HookState, bucket: dist.GradBucket) -> torch.futures.Future:
    """GD-SEC on one bucket; returns ``α ĝ`` (the update)."""
    params = bucket.parameters()
    algorithm = state.algorithm
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    tau = algorithm.thresholds(theta, state.read("theta_prev", params))
    state.write("theta_prev", params, theta)
    sent, h, errors = algorithm.worker(
        state.read("h", params)[None], state.read("errors", params)[None],
        bucket.buffer()[None], tau,
    )
    state.write("h", params, h[0])
    state.write("errors", params, errors[0])

    def finish(rows: Tensor) -> Tensor:
        state.account(rows, SPARSE)
        g_hat, h_server = algorithm.server(state.read("h_server", params), rows.mean(dim=0))
        state.write("h_server", params, h_server)
        return algorithm.alpha * g_hat

    return _future(state, sent[0], finish)


# DDP checks the hooks' annotations against the real objects (strings here, because of
# ``from __future__ import annotations``), so they are set explicitly.
for _hook in (topk_ef_hook, gdsec_hook):
    _hook.__annotations__ = {
        "state": HookState, "bucket": dist.GradBucket,
        "return": torch.futures.Future[torch.Tensor],
    }

#: Hook and memories of each algorithm with a DDP hook.
HOOKS = {
    ErrorFeedback: (topk_ef_hook, ("errors",)),
    GDSEC: (gdsec_hook, ("theta_prev", "h", "errors", "h_server")),
}


def minibatch_loss(
    model: torch.nn.Module, x: Tensor, y: Tensor, weight_decay: float
) -> tuple[Tensor, Tensor]:
    """``(objective, cross-entropy)``: the objective adds ``(λ/2)‖θ‖²``, whose gradient is the
    simulation's weight-decay term ``λθ``."""
    loss = F.cross_entropy(model(x), y)
    if not weight_decay:
        return loss, loss
    penalty = sum(p.square().sum() for p in model.parameters())
    return loss + 0.5 * weight_decay * penalty, loss


def load_flat(module: torch.nn.Module, theta: Tensor) -> None:
    """Copy the flat vector ``θ`` into the module's parameters (``vector_to_parameters`` would
    make them views of ``θ``, so that training would write into ``θ``)."""
    with torch.no_grad():
        for param, value in zip(module.parameters(), Layout.of(module).unflatten(theta).values(),
                                strict=True):
            param.copy_(value)


def replica(template: torch.nn.Module, theta0: Tensor) -> torch.nn.Module:
    """A copy of ``template`` holding the flat parameters ``θ⁰`` (copied)."""
    model = copy.deepcopy(template)
    load_flat(model, theta0)
    return model


class DDPRun(DistributedRun):
    """Data-parallel training with ``DistributedDataParallel`` on ``N`` ranks (``M = N``).

    ``ef`` and ``gd-sec`` run through their comm hooks (optimizer ``SGD(lr=1)``); ``gd`` is
    plain DDP (its all-reduce of the gradients, ``SGD(lr=α)``), priced as the simulation prices
    GD (``32·D`` bits up and down per worker and round).

    Parameters
    ----------
    template : torch.nn.Module
        The network (copied; the copy holds ``θ⁰``).
    bucket_cap_mb : float
        DDP's bucket size.
    weight_decay : float
        Added to the loss as ``(λ/2)‖θ‖²``.
    """

    mode = "ddp"

    def __init__(
        self,
        label: str,
        algorithm: Any,
        channel: Channel,
        oracle: Simulation,
        theta0: Tensor,
        *,
        template: torch.nn.Module,
        bucket_cap_mb: float = 25.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0)
        if type(algorithm) not in (*HOOKS, GD):
            raise InputError(
                "algorithm.distributed.mode", f"'ddp' for {algorithm.name}",
                "'ddp' only for ef, gd-sec (comm hooks) and gd (plain DDP)",
            )
        if isinstance(algorithm, GDSEC) and algorithm.reference.xi.ndim:
            raise InputError("xi", "an array", "a scalar xi with the DDP hook")
        self.weight_decay = weight_decay
        self.layout = Layout.of(template)
        self.module = replica(template, theta0)
        device = channel.group.device
        self.ddp = DistributedDataParallel(
            self.module, device_ids=[device] if device.type == "cuda" else None,
            bucket_cap_mb=bucket_cap_mb,
        )
        self.hook_state = None
        if isinstance(algorithm, GD):
            lr = algorithm.alpha
        else:
            hook, memories = HOOKS[type(algorithm)]
            self.hook_state = HookState(self.module, algorithm, channel, memories)
            if "theta_prev" in memories:
                self.hook_state.memory["theta_prev"] = theta0.clone()
            self.ddp.register_comm_hook(self.hook_state, hook)
            lr = 1.0
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=lr)
        self.ledger = BitLedger(self.workers)
        self.ledger.record(None)

    def model(self) -> Tensor:
        return self.layout.flatten_module(self.module)

    def tensors(self) -> dict[str, Tensor]:
        out = {"theta": self.model()}
        if self.hook_state is not None:
            out.update({f"memory.{k}": v for k, v in self.hook_state.memory.items()})
        return out

    def load_tensors(self, values: dict[str, Tensor]) -> None:
        load_flat(self.module, values["theta"])
        if self.hook_state is not None:
            for name in self.hook_state.memory:
                self.hook_state.memory[name] = values[f"memory.{name}"]

    def step(self) -> None:
        x, y = self.oracle.worker_batch(self.worker)
        self.optimizer.zero_grad(set_to_none=True)
        objective, loss = minibatch_loss(self.ddp, x, y, self.weight_decay)
        self.note_loss(loss)
        with self.channel.guard("backward with DDP communication"):
            objective.backward()
        self.optimizer.step()
        if self.hook_state is None:
            dense = np.full(self.workers, dense_bits(self.dim, DENSE.value_bits), np.int64)
            self.ledger.record_bits(dense, dense)
        else:
            self.ledger.record_bits(*self.hook_state.take_bits())
        if not all(bool(torch.isfinite(p).all()) for p in self.module.parameters()):
            self.status = "diverged"

    def statistics(self) -> dict[str, tuple[float, float]]:
        out = super().statistics()
        if self.hook_state is not None:
            errors = self.hook_state.memory["errors"]
            out["error_norm_sq"] = (float(errors.double().square().sum()), 1.0)
        return out
