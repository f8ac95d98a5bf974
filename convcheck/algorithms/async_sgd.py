"""Asynchronous SGD, dense or sparsified, with or without worker error memory [STALE].

The update rule is error feedback's (:mod:`convcheck.algorithms.ef`), applied by the event engine:
the server applies each arriving message at once, ``θ^{t+1} = θ^t − c_t``, where worker ``k``
computed ``c_t`` on the model it read ``τ_t`` server updates earlier —

* with memory: ``p = e_k + α g_k(θ^{t−τ_t})``; ``c_t = C(p)``; ``e_k ← p − C(p)``;
* without memory: ``c_t = C(α g_k(θ^{t−τ_t}))``;

and replies with its model, densely (``32·d`` bits): "async top-k with a dense downlink". Dense
asynchronous SGD is ``C = identity`` without memory (``θ^{t+1} = θ^t − α g(θ^{t−τ_t})``).
"""

from __future__ import annotations

from typing import Any

from convcheck.algorithms.base import batch_param, step_param
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.compressors import Identity


class AsyncSparseSGD(ErrorFeedback):
    """Asynchronous sparsified SGD: error feedback's worker half, applied on arrival."""

    name = "async-sparse-sgd"
    summary = ("asynchronous sparsified SGD: each message C(α·gradient + error) is applied "
               "on arrival; the server replies with its model")
    transports = frozenset({"async"})


class AsyncSGD(AsyncSparseSGD):
    """Dense asynchronous SGD: ``θ^{t+1} = θ^t − α g_k(θ^{t−τ_t})``, dense both ways."""

    name = "async-sgd"
    summary = "asynchronous SGD: each dense gradient is applied on arrival"
    parameters = (step_param(), batch_param())

    def __init__(self, *args: Any, **values: Any) -> None:
        super().__init__(*args, **values)
        self.compressor, self.error_memory = Identity(), False
