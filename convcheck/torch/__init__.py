"""PyTorch backend: convcheck's compressors and algorithms on tensors, on any device.

Importing this package imports torch (``import convcheck`` does not). Modules:

* :mod:`~convcheck.torch.compressors` — top-k, rand-k, threshold, layer-wise top-k, scaled sign
  on tensors, with the numpy compressors' semantics and bit counts;
* :mod:`~convcheck.torch.layout` — a model's parameters as one flat vector (per-parameter
  slices);
* :mod:`~convcheck.torch.ledger` — the per-worker bit ledger;
* :mod:`~convcheck.torch.arrays` — the tensor namespace the algorithms of
  :mod:`convcheck.algorithms` run with (the same modules as on numpy), registered on import;
* :mod:`~convcheck.torch.oracle` — torch gradients of a numpy objective (differential tests);
* :mod:`~convcheck.torch.models`, :mod:`~convcheck.torch.datasets`,
  :mod:`~convcheck.torch.simulation` — networks, data on tensors, ``M`` simulated workers
  on one device (``torch.func.vmap`` over workers);
* :mod:`~convcheck.torch.runner`, :mod:`~convcheck.torch.checkpoint` — the training loop with
  exact checkpoint and resume;
* :mod:`~convcheck.torch.train` — ``python -m convcheck.torch.train CONFIG.toml``;
* :mod:`~convcheck.torch.distributed`, :mod:`~convcheck.torch.launch` — multi-process runs
  (``torchrun --nproc-per-node N -m convcheck.torch.launch CONFIG.toml``): synchronous and
  asynchronous parameter servers, all-gather, DDP communication hooks, LAGS overlapping
  backprop — transports that call the algorithms' halves;
* :mod:`~convcheck.torch.bench` — ``python -m convcheck.torch.bench`` (timings).
"""

from __future__ import annotations

from convcheck.torch.arrays import TORCH
from convcheck.torch.compressors import TorchCompressor, make_compressor, to_torch
from convcheck.torch.layout import Layout
from convcheck.torch.ledger import BitLedger
from convcheck.torch.runner import Runner

__all__ = [
    "BitLedger",
    "Layout",
    "Runner",
    "TORCH",
    "TorchCompressor",
    "make_compressor",
    "to_torch",
]
