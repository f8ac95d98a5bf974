"""PyTorch backend: the compressors and algorithms of convcheck on tensors.

Importing this package imports torch (``import convcheck`` does not). Modules:

* :mod:`~convcheck.torch.compressors` — top-k, rand-k, threshold, layer-wise top-k, scaled sign
  on tensors, with the numpy compressors' semantics and bit counts;
* :mod:`~convcheck.torch.layout` — a model's parameters as one flat vector (per-parameter
  slices);
* :mod:`~convcheck.torch.ledger` — messages of a round and the per-worker bit ledger;
* :mod:`~convcheck.torch.algorithms` — GD, GD-SEC, EF, EF21, bidirectional top-k, DGS,
  LAGS-SGD (worker and server halves on tensors);
* :mod:`~convcheck.torch.oracle` — torch gradients of a numpy objective (differential tests);
* :mod:`~convcheck.torch.models`, :mod:`~convcheck.torch.datasets`,
  :mod:`~convcheck.torch.simulation` — networks, data on tensors, ``M`` simulated workers
  on one device (``torch.func.vmap`` over workers);
* :mod:`~convcheck.torch.runner`, :mod:`~convcheck.torch.checkpoint` — the training loop with
  exact checkpoint and resume;
* :mod:`~convcheck.torch.train` — ``python -m convcheck.torch.train CONFIG.toml``;
* :mod:`~convcheck.torch.bench` — ``python -m convcheck.torch.bench`` (timings).
"""

from __future__ import annotations

from convcheck.torch.algorithms import ALGORITHMS, TorchAlgorithm, make_algorithm
from convcheck.torch.compressors import TorchCompressor, make_compressor, to_torch
from convcheck.torch.layout import Layout
from convcheck.torch.ledger import BitLedger, Messages, Part

__all__ = [
    "ALGORITHMS",
    "BitLedger",
    "Layout",
    "Messages",
    "Part",
    "TorchAlgorithm",
    "TorchCompressor",
    "make_algorithm",
    "make_compressor",
    "to_torch",
]
