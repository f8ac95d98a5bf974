"""Multi-process runs with ``torch.distributed`` (``torchrun … -m convcheck.torch.launch``).

Modes (each in its module; the arithmetic is always the single-process algorithms' pure worker
and server halves, so the multi-process runs cannot drift from the simulated ones):

* :mod:`~convcheck.torch.distributed.ps` — synchronous parameter server on rank 0: GD,
  bidirectional top-k, GD-SEC (point-to-point sparse uplinks, broadcast downlink);
* :mod:`~convcheck.torch.distributed.dgs` — DGS asynchronously: rank 0 applies the workers'
  messages in arrival order;
* :mod:`~convcheck.torch.distributed.allgather` — top-k error feedback without a server: each
  rank all-gathers the (index, value) pairs and applies the same averaged sparse update;
* :mod:`~convcheck.torch.distributed.hooks` — top-k EF and GD-SEC as DDP communication hooks;
* :mod:`~convcheck.torch.distributed.lags` — LAGS-SGD whose per-layer all-gathers start from
  post-accumulate-grad hooks during backprop, with counts from a measured cost model.

Shared pieces: :mod:`~convcheck.torch.distributed.group` (process group, backend, timeouts,
:class:`DistributedFailure`), :mod:`~convcheck.torch.distributed.wire` (sparse payloads and the
transport), :mod:`~convcheck.torch.distributed.base` (the run interface and the epoch loop with
checkpoints).
"""

from __future__ import annotations

from convcheck.torch.distributed.allgather import AllGatherEF
from convcheck.torch.distributed.base import DistributedRun, run_epochs
from convcheck.torch.distributed.dgs import AsyncDGS
from convcheck.torch.distributed.group import (
    BACKENDS,
    DistributedFailure,
    Group,
    choose_backend,
    start_group,
    stop_group,
)
from convcheck.torch.distributed.hooks import DDPRun, HookState, gdsec_hook, topk_ef_hook
from convcheck.torch.distributed.lags import OverlappedLAGS
from convcheck.torch.distributed.ps import ParameterServer
from convcheck.torch.distributed.wire import Channel

__all__ = [
    "BACKENDS",
    "AllGatherEF",
    "AsyncDGS",
    "Channel",
    "DDPRun",
    "DistributedFailure",
    "DistributedRun",
    "Group",
    "HookState",
    "OverlappedLAGS",
    "ParameterServer",
    "choose_backend",
    "gdsec_hook",
    "run_epochs",
    "start_group",
    "stop_group",
    "topk_ef_hook",
]
