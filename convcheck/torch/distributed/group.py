"""Process groups: backend choice, timeouts, and clear errors when a rank dies or hangs.

A run is one ``torch.distributed`` process group. :func:`start_group` joins it — from the
environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``; multi-node rendezvous included) or from explicit arguments (tests) — with
a *finite* timeout on every collective and point-to-point operation. Backends: ``"gloo"``
(CPU tensors, or CUDA tensors with ``device="cuda"``: the ranks of a node then share its
GPUs, ``cuda:(LOCAL_RANK mod #GPUs)``, the fallback when a node has fewer GPUs than ranks),
``"nccl"`` (one CUDA device per rank, ``cuda:LOCAL_RANK``), ``"auto"`` (NCCL when CUDA and
NCCL are available, else gloo). Asking NCCL for more ranks on a node than it has visible GPUs
is refused before any CUDA call, with both numbers and the options that fix it.

Failure model. Every communication call of the backend goes through
:meth:`convcheck.torch.distributed.wire.Channel.guard`, which turns the backend's error into a
:class:`DistributedFailure` naming this rank, the operation, the step and the timeout. With
gloo a rank that dies is noticed at once (the peers' sockets close: "Connection reset by
peer"), a rank that hangs after ``timeout_s`` ("Timed out waiting … for recv"); nothing waits
forever. With NCCL the same timeout is enforced by the NCCL watchdog (set
``TORCH_NCCL_ASYNC_ERROR_HANDLING=1``, the default in recent torch, so that a timed-out
collective aborts the communicator instead of blocking).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from convcheck.errors import ConvcheckError, InputError, check_choice, check_int, check_real

#: Accepted values of ``distributed.backend``.
BACKENDS = ("auto", "gloo", "nccl")


class DistributedFailure(ConvcheckError, RuntimeError):
    """Communication with the other ranks failed: one died, hung past the timeout, or the
    network failed. The message names the rank, the operation and the step."""


def choose_backend(requested: str = "auto") -> str:
    """``"gloo"`` or ``"nccl"`` for a requested backend (``"auto"``: NCCL iff CUDA and NCCL
    are available)."""
    requested = check_choice("distributed.backend", requested, BACKENDS)
    nccl = torch.cuda.is_available() and dist.is_nccl_available()
    if requested == "auto":
        return "nccl" if nccl else "gloo"
    if requested == "nccl" and not nccl:
        raise InputError("distributed.backend", "nccl", "gloo (CUDA or NCCL is not available)")
    if requested == "gloo" and not dist.is_gloo_available():
        raise InputError("distributed.backend", "gloo", "nccl (this torch has no gloo)")
    return requested


@dataclass(frozen=True)
class Group:
    """This process's place in the process group.

    Attributes
    ----------
    rank, world_size : int
    backend : {"gloo", "nccl"}
    device : torch.device
        Where this rank's tensors live (``cuda:LOCAL_RANK`` with NCCL).
    timeout_s : float
        Timeout of every communication operation.
    p2p : ProcessGroup or None
        The group of point-to-point messages and monitored barriers: ``None`` (the default
        group) with gloo on CPU; with NCCL a gloo group over the same ranks (CPU tensors),
        because NCCL has no any-source receive (the asynchronous server needs one) and runs
        its point-to-point operations in order on one stream; with gloo on CUDA tensors the
        same CPU side group (gloo's send and receive take CPU tensors only).
    """

    rank: int
    world_size: int
    backend: str
    device: torch.device
    timeout_s: float
    p2p: Any = None

    def describe(self) -> dict[str, Any]:
        return {
            "world_size": self.world_size,
            "backend": self.backend,
            "device": str(self.device),
            "timeout_s": self.timeout_s,
        }


def check_visible_gpus(local_world_size: int, local_rank: int, visible: int) -> None:
    """NCCL needs one CUDA device per rank of a node: refuse ``local_world_size`` ranks (this
    one ``local_rank``) on ``visible`` devices, naming both numbers and the options."""
    if local_world_size <= visible and local_rank < visible:
        return
    raise InputError(
        "--nproc-per-node",
        f"{local_world_size} NCCL ranks on this node, which has {visible} visible CUDA "
        "device(s) (CUDA_VISIBLE_DEVICES)",
        f"at most {visible} ranks per node with distributed.backend = 'nccl' (torchrun "
        f"--nproc-per-node {visible}), or distributed.backend = 'gloo' (--backend gloo) "
        "with run.device = 'cuda' so that the ranks share the GPU(s)"
        if visible else "distributed.backend = 'gloo' (--backend gloo): no CUDA device is "
        "visible here",
    )


def _rank_device(backend: str, device: str | None, rank: int, world_size: int) -> torch.device:
    """This rank's device, checked against the visible GPUs before any CUDA call.

    NCCL: ``cuda:LOCAL_RANK``. gloo: ``device`` (default CPU); a bare ``"cuda"`` becomes
    ``cuda:(LOCAL_RANK mod #GPUs)``, spreading a node's ranks over its GPUs. Without torchrun
    (``LOCAL_WORLD_SIZE``, ``LOCAL_RANK`` unset) all ranks are taken to be on this node.
    """
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if backend == "nccl":
        check_visible_gpus(local_world_size, local_rank, torch.cuda.device_count())
        return torch.device("cuda", local_rank)
    where = torch.device(device or "cpu")
    if where.type != "cuda":
        return where
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == 0 or (where.index is not None and where.index >= visible):
        raise InputError("run.device", str(where), f"cpu, or cuda with {visible} visible "
                         "CUDA device(s) here")
    return where if where.index is not None else torch.device("cuda", local_rank % visible)


def _from_env(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise InputError(
            name, None, "set by torchrun (run `torchrun --nproc-per-node N -m "
            "convcheck.torch.launch CONFIG`) or passed explicitly",
        )
    return check_int(name, int(value), 0)


def start_group(
    backend: str = "auto",
    *,
    timeout_s: float = 300.0,
    device: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    init_method: str | None = None,
) -> Group:
    """Join the process group (``init_process_group``) and return this rank's :class:`Group`.

    Parameters
    ----------
    backend : {"auto", "gloo", "nccl"}
    timeout_s : float
        Timeout (s) of every collective and point-to-point operation, ``> 0``.
    device : str, optional
        Device of the tensors with gloo (default ``"cpu"``; ``"cuda"``: the ranks share the
        node's GPUs); NCCL always uses ``cuda:LOCAL_RANK``.
    rank, world_size, init_method
        Default: from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``env://``).
    """
    if not dist.is_available():
        raise InputError("torch.distributed", "unavailable", "a torch built with distributed")
    backend = choose_backend(backend)
    timeout_s = check_real("distributed.timeout_s", timeout_s, 0.0, low_open=True)
    rank = _from_env("RANK") if rank is None else check_int("rank", rank, 0)
    world_size = (
        _from_env("WORLD_SIZE") if world_size is None else check_int("world_size", world_size, 1)
    )
    where = _rank_device(backend, device, rank, world_size)
    if where.type == "cuda":
        torch.cuda.set_device(where)
    try:
        dist.init_process_group(
            backend, init_method=init_method or "env://", rank=rank, world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
        )
    except (RuntimeError, ValueError) as exc:  # rendezvous or connection failures
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DistributedFailure(
            f"rank {rank} of {world_size}: joining the {backend} process group failed within "
            f"the {timeout_s:g} s timeout ({first})"
        ) from exc
    p2p = None
    if backend != "gloo" or where.type == "cuda":  # point to point: gloo on CPU tensors
        p2p = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_s))
    return Group(rank, world_size, backend, where, timeout_s, p2p)


def stop_group() -> None:
    """Leave the process group (after a successful run; a broken group is left by exiting)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
