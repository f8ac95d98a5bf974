"""Multi-process runs with ``torch.distributed`` (``torchrun … -m convcheck.torch.launch``).

Every mode is a transport: it holds the algorithm's states where they live in a real deployment
and calls the algorithm's worker and server halves (:mod:`convcheck.algorithms.base`, the same
definitions the numpy engine and the torch simulator run), so the multi-process runs cannot
drift from the simulated ones. Modes, each in its module:

* :mod:`~convcheck.torch.distributed.ps` — synchronous parameter server on rank 0, for every
  synchronous algorithm (point-to-point uplinks, broadcast downlink);
* :mod:`~convcheck.torch.distributed.asynchronous` — asynchronous algorithms (DGS, asynchronous
  SGD): rank 0 applies the workers' messages in arrival order and replies to each;
* :mod:`~convcheck.torch.distributed.allgather` — no server: every rank all-gathers the
  messages and runs a replica of the server half (every synchronous algorithm);
* :mod:`~convcheck.torch.distributed.hooks` — DDP communication hooks (error feedback, GD-SEC)
  that return the averaged compressed gradient, for any torch optimizer;
* :mod:`~convcheck.torch.distributed.lags` — LAGS-SGD whose per-layer all-gathers start from
  post-accumulate-grad hooks during backprop, with counts from a measured cost model.

Shared pieces: :mod:`~convcheck.torch.distributed.group` (process group, backend, timeouts,
:class:`DistributedFailure`), :mod:`~convcheck.torch.distributed.wire` (message encoding and the
transport), :mod:`~convcheck.torch.distributed.base` (the run interface and the epoch loop with
checkpoints).
"""

from __future__ import annotations

from convcheck.torch.distributed.allgather import AllGather
from convcheck.torch.distributed.asynchronous import AsyncParameterServer
from convcheck.torch.distributed.base import DistributedRun, run_epochs
from convcheck.torch.distributed.group import (
    BACKENDS,
    DistributedFailure,
    Group,
    choose_backend,
    start_group,
    stop_group,
)
from convcheck.torch.distributed.hooks import (
    CompressionHookState,
    DDPRun,
    ErrorFeedbackHookState,
    GDSECHookState,
    error_feedback_hook,
    gdsec_hook,
)
from convcheck.torch.distributed.lags import OverlappedLAGS
from convcheck.torch.distributed.ps import ParameterServer
from convcheck.torch.distributed.wire import Channel

__all__ = [
    "BACKENDS",
    "AllGather",
    "AsyncParameterServer",
    "Channel",
    "CompressionHookState",
    "DDPRun",
    "DistributedFailure",
    "DistributedRun",
    "ErrorFeedbackHookState",
    "GDSECHookState",
    "Group",
    "OverlappedLAGS",
    "ParameterServer",
    "choose_backend",
    "error_feedback_hook",
    "gdsec_hook",
    "run_epochs",
    "start_group",
    "stop_group",
]
