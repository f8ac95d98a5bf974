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

from convcheck.algorithms.base import DENSE, SPARSE, batch_param, step_param
from convcheck.algorithms.ef import ErrorFeedback, error_added_twice
from convcheck.algorithms.invariants import (
    Computation,
    EventInvariant,
    Update,
    compression_error,
    difference,
    norm,
)
from convcheck.algorithms.mutation import (
    Mutant,
    frozen,
    mispriced,
    off_by_one,
    scaled,
    sign_flipped,
)
from convcheck.compressors import Identity


def _remember(alg: Any, real: Any, s: Any, worker: int, up: Any) -> Any:
    alg.previous_model = s.theta
    return real(s, worker, up)


def _memory_recursion(alg: Any, c: Computation) -> tuple[float, float]:
    """``c + e⁺ = α g + e`` (with memory; without: ``c + (αg − c) = αg``, nothing held)."""
    p = alg.alpha * c.gradient + (c.before.errors[0] if alg.error_memory else 0.0)
    return difference(c.message + _dropped(alg, c, p), p)


def _dropped(alg: Any, c: Computation, p: Any) -> Any:
    """What the compressor held back: the new error memory, or ``αg − c`` without one."""
    return c.after.errors[0] if alg.error_memory else p - c.message


def _compression(alg: Any, c: Computation) -> tuple[float, float]:
    p = alg.alpha * c.gradient + (c.before.errors[0] if alg.error_memory else 0.0)
    return compression_error(alg.compressor, c.message[None], _dropped(alg, c, p)[None])


#: Identities of every computation and update (the event engine).
EVENT_INVARIANTS = (
    EventInvariant("memory-recursion", "c + e_k⁺ = α g_k(θ_k) + e_k at every computation",
                   _memory_recursion, on="compute"),
    EventInvariant("compression-rule", "c = C(p): top-k keeps exactly min(k, nnz) entries, "
                   "none dropped larger than a kept one (else ‖p − c‖² ≤ (1 − δ)‖p‖²)",
                   _compression, on="compute", exact=True),
    EventInvariant("server-rule", "θ^(t+1) = θ^t − c_t for the applied message",
                   lambda alg, u: (norm(u.after.theta - (u.before.theta - u.message)), 0.0),
                   exact=True),
    EventInvariant("replies-are-the-model", "every worker served at update t holds θ^(t+1)",
                   lambda alg, u: (sum(norm(u.models[j] - u.after.theta)
                                       for j in u.dispatched), 0.0), exact=True),
)


#: Bugs of the worker half and of the asynchronous rule.
RULE_MUTANTS = (
    scaled("alpha", 0.5, "worker", "step-x0.5", "the step size is halved in the worker's message"),
    scaled("alpha", 1.3, "worker", "step-x1.3", "the step size is 1.3× in the worker's message"),
    sign_flipped(),
    Mutant("update-applied-twice", "the server applies each message twice",
           server_event=lambda alg, real, s, k, up: real(s, k, 2.0 * up)),
    Mutant("stale-reply", "the server replies with its model from before the update",
           server_event=_remember, reply=lambda alg, real, s, k: (alg.previous_model, DENSE)),
    Mutant("reply-ignored", "the worker ignores the server's reply and keeps its old model",
           receive_reply=lambda alg, real, w, model, down: model),
)


class AsyncSparseSGD(ErrorFeedback):
    """Asynchronous sparsified SGD: error feedback's worker half, applied on arrival."""

    name = "async-sparse-sgd"
    summary = ("asynchronous sparsified SGD: each message C(α·gradient + error) is applied "
               "on arrival; the server replies with its model")
    transports = frozenset({"async"})
    event_invariants = EVENT_INVARIANTS
    mutants = (
        *RULE_MUTANTS,
        mispriced("up", DENSE, "uplink-priced-dense", "the sparse uplink is priced as dense"),
        frozen("errors", "the error memory e_k is never updated", "frozen-error-memory"),
        Mutant("error-added-twice", "p = α g + 2 e_k", worker=error_added_twice),
        off_by_one("compressor", 1, "k-plus-one"),
        off_by_one("compressor", -1, "k-minus-one"),
    )

    def event_replies(self, update: Update) -> list[tuple[int | None, Any, str]]:
        """The model ``θ^(t+1)``, densely, to every worker served at the update."""
        return [(int(j), update.after.theta, "dense") for j in update.dispatched]


class AsyncSGD(AsyncSparseSGD):
    """Dense asynchronous SGD: ``θ^{t+1} = θ^t − α g_k(θ^{t−τ_t})``, dense both ways."""

    name = "async-sgd"
    summary = "asynchronous SGD: each dense gradient is applied on arrival"
    parameters = (step_param(), batch_param())
    mutants = (
        *RULE_MUTANTS,
        mispriced("up", SPARSE, "uplink-priced-sparse", "the dense uplink is priced as a sparse "
                  "message of its nonzeros"),
        scaled("alpha", -1.0, "worker", "gradient-ascent", "the step's sign is wrong: θ + α g"),
    )

    def __init__(self, *args: Any, **values: Any) -> None:
        super().__init__(*args, **values)
        self.compressor, self.error_memory = Identity(), False
