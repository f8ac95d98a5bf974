"""DDP communication hooks: error feedback and GD-SEC on gradient buckets, for any optimizer.

They drop in like PyTorch's own hooks::

    state = ErrorFeedbackHookState(process_group, make_algorithm("ef", alpha=0.1, ratio=0.01),
                                   model=module)
    ddp = DistributedDataParallel(module)
    ddp.register_comm_hook(state, error_feedback_hook)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)   # or Adam, momentum, ...

``DistributedDataParallel`` calls ``hook(state, bucket)`` once per gradient bucket with the
bucket's flat local gradient; the hook returns a future of the tensor DDP writes into the
parameters' ``.grad``: here the **averaged compressed gradient**, so the optimizer does the step.
Each hook runs the algorithm's halves (:mod:`convcheck.algorithms.base`) on the bucket's
coordinates: the worker half on this rank's gradient, an all-gather of the ``M`` messages over the
process group (their nonzeros, lengths first and the payloads asynchronously, so DDP keeps
overlapping the later buckets with backprop; densely when some message is dense), and, in the
future's callback, the server half on their mean — replicated on every rank.

* :func:`error_feedback_hook` (:class:`ErrorFeedbackHookState`, algorithm ``ef``): error
  feedback in gradient units — the algorithm's halves with ``α = 1``: ``p = g + e``,
  ``c = C(p)``, ``e ← p − c``; returns the server's downlink ``(1/M) Σ_m c_m``. With
  ``SGD(lr=α)`` this is the single-process error feedback with step ``α`` (whose memory is ``α e``)
  for every compressor that commutes with scaling (top-k, rand-k, layer-wise top-k, scaled
  sign), up to rounding; with another optimizer, that optimizer on the error-feedback direction.
* :func:`gdsec_hook` (:class:`GDSECHookState`, algorithm ``gd-sec``): GD-SEC's worker half with
  the threshold ``τ = ξ |θ^k − θ^{k−1}| / α`` — ``θ^k`` is the bucket's parameters at hook time,
  ``θ^{k−1}`` their values at the previous step (remembered) and ``α`` **the algorithm's step
  size, from the state** (give it the optimizer's learning rate); then GD-SEC's server half
  (its memory ``h`` replicated) and the hook returns the server's direction ``ĝ``. With
  ``SGD(lr=α)`` this is single-process GD-SEC, up to rounding. Scalar ``ξ`` only (a
  per-coordinate ``ξ`` would have to follow the coordinates into the buckets).

Memories. DDP rebuilds its buckets after the first iteration (the buckets of iteration 0 follow
the parameters' order, later ones the order gradients became ready), so memories kept per
bucket index would be scrambled. The memories therefore live per parameter — one flat ``(D,)``
tensor per field of the algorithm's states in the model's :class:`~convcheck.torch.layout.Layout`
— and a bucket reads and writes the slices of its own parameters, in its own order. With one
bucket holding the whole model (``bucket_cap_mb`` large) the hooks compute what the
single-process algorithm computes, up to the order of the coordinates inside the bucket (which
matters only for ties in top-k).

Bits, per bucket (:func:`~convcheck.torch.distributed.allgather.gathered_bits`): the uplink of
rank ``m`` is its message priced with the algorithm's uplink codec for the bucket's dimension,
its downlink the ``M − 1`` messages it receives; :meth:`CompressionHookState.take_bits` returns a
step's sum. :class:`DDPRun` is the launcher's mode ``ddp``: these hooks with ``SGD(lr=α)``, and
plain DDP (its all-reduce) for ``gd``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from convcheck.algorithms.base import DENSE, Algorithm, row_fields
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.algorithms.gd import GD
from convcheck.algorithms.gdsec import GDSEC
from convcheck.encoding import dense_bits
from convcheck.errors import InputError
from convcheck.torch.distributed.allgather import gathered_bits
from convcheck.torch.distributed.base import DistributedRun
from convcheck.torch.distributed.wire import Channel, gather_payload, gathered_rows
from convcheck.torch.layout import Layout
from convcheck.torch.ledger import BitLedger
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor
Future = torch.futures.Future


def in_gradient_units(algorithm: Algorithm) -> Algorithm:
    """The same algorithm with step size ``α = 1``."""
    values = {param.name: getattr(algorithm, param.name) for param in algorithm.parameters}
    values["alpha"] = 1.0
    return type(algorithm)(**values)


class CompressionHookState:
    """What a compression hook keeps: the process group, the algorithm, per-parameter memories
    of its states, and the bits and bytes of the current step.

    Parameters
    ----------
    process_group : ProcessGroup or None
        The group DDP communicates in (``None``: the default group).
    algorithm : Algorithm
    model : torch.nn.Module
        The module DDP wraps (its parameters identify the buckets' slices; their values now are
        ``θ⁰``).
    generator : torch.Generator, optional
        For randomized compressors (default: one seeded with 0 on the parameters' device).

    Attributes
    ----------
    memory : dict of str to Tensor
        Flat ``(D,)`` memories: ``"workers.<field>"`` and ``"server.<field>"``.
    bytes_sent, bytes_received : int
        Logical payload bytes of the all-gathers so far (headers included).
    """

    #: The algorithm class the state accepts (exactly: subclasses may change the halves).
    accepts: ClassVar[type[Algorithm]]

    def __init__(self, process_group: Any, algorithm: Algorithm, *, model: torch.nn.Module,
                 generator: torch.Generator | None = None) -> None:
        if type(algorithm) is not self.accepts:
            raise InputError("algorithm", algorithm.name, f"{self.accepts.name} for this hook")
        if getattr(algorithm, "batch_size", None) is not None:
            raise InputError("batch_size", algorithm.batch_size, "none (DDP's minibatch)")
        self.process_group = process_group
        self.world_size = dist.get_world_size(process_group)
        self.algorithm = algorithm
        self.layout = Layout.of(model)
        params = [p for p in model.parameters() if p.requires_grad]
        self.slices = {id(p): part for p, part in zip(params, self.layout.slices(), strict=True)}
        self.theta0 = self.layout.flatten_module(model)
        self.generator = (generator if generator is not None
                          else torch.Generator(self.theta0.device).manual_seed(0))
        self.memory: dict[str, Tensor] = {}
        self.up = np.zeros(self.world_size, dtype=np.int64)
        self.down = np.zeros(self.world_size, dtype=np.int64)
        self.bytes_sent = self.bytes_received = 0

    # ------------------------------------------------------------ memories
    @staticmethod
    def _rows(prefix: str, state: Any) -> list[str]:
        """The fields of ``state`` with a worker axis (one row): a worker state's
        per-worker fields; none of a server state's."""
        return row_fields(state) if prefix == "workers" else []

    def remember(self, prefix: str, state: Any, skip: tuple[str, ...] = ()) -> None:
        """Keep the fields of an algorithm state (``prefix``: ``"workers"``, one row, or
        ``"server"``) as flat ``(D,)`` memories."""
        rows = self._rows(prefix, state)
        for f in dataclasses.fields(state):
            if f.name not in skip:
                value = getattr(state, f.name)
                self.memory[f"{prefix}.{f.name}"] = (value[0] if f.name in rows else value).clone()

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

    def bucket_state(self, template: Any, prefix: str, params: list[Tensor],
                     **given: Any) -> Any:
        """An algorithm state of ``template``'s type on the bucket's coordinates: the fields
        ``given``, the others read from the memories."""
        rows = self._rows(prefix, template)
        values = dict(given)
        for f in dataclasses.fields(template):
            if f.name not in given:
                flat = self.read(f"{prefix}.{f.name}", params)
                values[f.name] = flat[None] if f.name in rows else flat
        return type(template)(**values)

    def store(self, state: Any, prefix: str, params: list[Tensor],
              skip: tuple[str, ...] = ()) -> None:
        """Write a :meth:`bucket_state` back into the memories."""
        rows = self._rows(prefix, state)
        for f in dataclasses.fields(state):
            if f.name not in skip:
                value = getattr(state, f.name)
                self.write(f"{prefix}.{f.name}", params, value[0] if f.name in rows else value)

    # ------------------------------------------------------------ messages
    def all_gather(self, message: Tensor) -> Future:
        """Start an all-gather of every rank's message ``(d,)``; a future of the rows
        ``(M, d)``. The packed lengths are exchanged first (blocking, 8 bytes), the payloads
        asynchronously."""
        group, world = self.process_group, self.world_size
        header = torch.tensor([2 * int(torch.count_nonzero(message))], device=message.device)
        headers = [torch.empty_like(header) for _ in range(world)]
        dist.all_gather(headers, header, group=group)
        lengths = torch.cat(headers).tolist()
        payload = gather_payload(message, lengths)
        outputs = [torch.empty_like(payload) for _ in range(world)]
        work = dist.all_gather(outputs, payload, group=group, async_op=True)
        nbytes = (world - 1) * (header.element_size() + payload.numel() * payload.element_size())
        self.bytes_sent += nbytes
        self.bytes_received += nbytes
        d = message.numel()
        return work.get_future().then(
            lambda _: gathered_rows(torch.stack(outputs), lengths, d))

    def account(self, rows: Tensor) -> None:
        """Add the bits of one bucket's all-gather (rows ``(M, d_b)``) to the step's bits."""
        up, down = gathered_bits(rows, self.algorithm.up_codec)
        self.up += up
        self.down += down

    def take_bits(self) -> tuple[np.ndarray, np.ndarray]:
        """The step's bits per rank (up, down), and reset."""
        out = (self.up.copy(), self.down.copy())
        self.up[:] = 0
        self.down[:] = 0
        return out

    def error_norm_sq(self) -> float:
        """``‖e‖²`` of this rank's error memory, in the single-process algorithm's units."""
        errors = self.memory["workers.errors"].double()
        return float(errors.square().sum())


class ErrorFeedbackHookState(CompressionHookState):
    """State of :func:`error_feedback_hook` for an ``ef`` algorithm (its halves run with
    ``α = 1``; the memory ``workers.errors`` is in gradient units)."""

    accepts = ErrorFeedback

    def __init__(self, process_group: Any, algorithm: Algorithm, *, model: torch.nn.Module,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(process_group, algorithm, model=model, generator=generator)
        self.unit = in_gradient_units(algorithm)
        self.unit.prepare(self.layout.dim)
        self.workers, _ = self.unit.start_workers(self.theta0, 1, None)
        self.server = self.unit.start_server(self.theta0, self.world_size, None)
        self.remember("workers", self.workers)

    def error_norm_sq(self) -> float:
        """``‖α e‖²``: the memory in the units of the single-process error feedback."""
        return super().error_norm_sq() * self.algorithm.alpha ** 2


def error_feedback_hook(state: ErrorFeedbackHookState, bucket: dist.GradBucket) -> Future:
    """Error feedback on one bucket (halves with ``α = 1``); a future of the averaged
    compressed gradient ``(1/M) Σ_m c_m``."""
    params = bucket.parameters()
    unit = state.unit
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    workers = state.bucket_state(state.workers, "workers", params)
    up = unit.worker(workers, bucket.buffer()[None], theta, state.generator)
    state.store(workers, "workers", params)

    def finish(future: Future) -> Tensor:
        rows = future.value()
        state.account(rows)
        server = dataclasses.replace(state.server, theta=theta)
        return unit.server(server, rows.mean(dim=0))

    return state.all_gather(up[0]).then(finish)


class GDSECHookState(CompressionHookState):
    """State of :func:`gdsec_hook` for a ``gd-sec`` algorithm; ``algorithm.alpha`` is the step
    size of the threshold (the optimizer's learning rate)."""

    accepts = GDSEC

    def __init__(self, process_group: Any, algorithm: Algorithm, *, model: torch.nn.Module,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(process_group, algorithm, model=model, generator=generator)
        if np.ndim(algorithm.xi):
            raise InputError("xi", "a list", "a scalar xi with the DDP hook")
        algorithm.prepare(self.layout.dim)
        self.workers, _ = algorithm.start_workers(self.theta0, 1, None)
        self.server = algorithm.start_server(self.theta0, self.world_size, None)
        self.remember("workers", self.workers, skip=("last_step",))
        self.remember("server", self.server, skip=("theta",))
        self.memory["theta_prev"] = self.theta0.clone()


def gdsec_hook(state: GDSECHookState, bucket: dist.GradBucket) -> Future:
    """GD-SEC on one bucket; a future of the server's direction ``ĝ``."""
    params = bucket.parameters()
    algorithm = state.algorithm
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    last_step = theta - state.read("theta_prev", params)
    state.write("theta_prev", params, theta)
    workers = state.bucket_state(state.workers, "workers", params, last_step=last_step)
    up = algorithm.worker(workers, bucket.buffer()[None], theta, state.generator)
    state.store(workers, "workers", params, skip=("last_step",))

    def finish(future: Future) -> Tensor:
        rows = future.value()
        state.account(rows)
        server = state.bucket_state(state.server, "server", params, theta=theta)
        algorithm.server(server, rows.mean(dim=0))
        state.store(server, "server", params, skip=("theta",))
        return server.g_hat

    return state.all_gather(up[0]).then(finish)


# DDP checks the hooks' annotations against the real objects (strings here, because of
# ``from __future__ import annotations``), so they are set explicitly.
for _state, _hook in ((ErrorFeedbackHookState, error_feedback_hook),
                      (GDSECHookState, gdsec_hook)):
    _hook.__annotations__ = {"state": _state, "bucket": dist.GradBucket,
                             "return": torch.futures.Future[torch.Tensor]}

#: The hook state and hook of each algorithm (by class) with a DDP hook.
HOOKS: dict[type[Algorithm], tuple[type[CompressionHookState], Any]] = {
    ErrorFeedback: (ErrorFeedbackHookState, error_feedback_hook),
    GDSEC: (GDSECHookState, gdsec_hook),
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

    ``ef`` and ``gd-sec`` run through their comm hooks, ``gd`` is plain DDP (its all-reduce of
    the gradients), priced as the simulation prices GD (``32·D`` bits up and down per worker
    and round); the optimizer is ``SGD(lr=α)``.

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
        algorithm: Algorithm,
        channel: Channel,
        oracle: Simulation,
        theta0: Tensor,
        *,
        template: torch.nn.Module,
        bucket_cap_mb: float = 25.0,
        weight_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0, seed=seed)
        if type(algorithm) not in (*HOOKS, GD):
            raise InputError(
                "algorithm.distributed.mode", f"'ddp' for {algorithm.name}",
                "'ddp' for " + ", ".join(ddp_algorithms()),
            )
        self.weight_decay = weight_decay
        self.layout = Layout.of(template)
        self.module = replica(template, theta0)
        device = channel.group.device
        self.ddp = DistributedDataParallel(
            self.module, device_ids=[device] if device.type == "cuda" else None,
            bucket_cap_mb=bucket_cap_mb,
        )
        self.hook_state: CompressionHookState | None = None
        if type(algorithm) in HOOKS:
            state_class, hook = HOOKS[type(algorithm)]
            self.hook_state = state_class(None, algorithm, model=self.module,
                                          generator=self.generator)
            self.ddp.register_comm_hook(self.hook_state, hook)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=algorithm.alpha)
        self.ledger = BitLedger(self.workers)
        self.ledger.record_empty()

    def model(self) -> Tensor:
        return self.layout.flatten_module(self.module)

    def tensors(self) -> dict[str, Any]:
        out: dict[str, Any] = {"theta": self.model()}
        if self.hook_state is not None:
            out.update({f"memory.{k}": v for k, v in self.hook_state.memory.items()})
        return out

    def load_tensors(self, values: dict[str, Any]) -> None:
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
            bits = np.full(self.workers, dense_bits(self.dim, DENSE.value_bits), np.int64)
            self.ledger.record_bits(bits, bits)
        else:
            self.ledger.record_bits(*self.hook_state.take_bits())
            self.channel.bytes_sent += self.hook_state.bytes_sent
            self.channel.bytes_received += self.hook_state.bytes_received
            self.hook_state.bytes_sent = self.hook_state.bytes_received = 0
        if not all(bool(torch.isfinite(p).all()) for p in self.module.parameters()):
            self.status = "diverged"

    def statistics(self) -> dict[str, tuple[float, float]]:
        """Adds ``error_norm_sq`` = ``(1/M) Σ_m ‖e_m‖²`` (NaN for plain DDP)."""
        out = super().statistics()
        if self.hook_state is None:
            out["error_norm_sq"] = (0.0, 0.0)
        else:
            out["error_norm_sq"] = (self.hook_state.error_norm_sq(), 1.0)
        return out


def ddp_algorithms() -> list[str]:
    """Names of the algorithms of mode ``ddp``: plain DDP (``gd``) and the hooks'."""
    return [GD.name, *(cls.name for cls in HOOKS)]
