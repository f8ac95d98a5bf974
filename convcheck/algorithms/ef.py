"""Classic error feedback [EF] (Stich, Cordonnier, Jaggi 2018; Karimireddy et al. 2019).

Worker: ``p_m = α g_m^k + e_m``; ``c_m = C(p_m)``; ``e_m ← p_m − c_m``; send ``c_m``.
Server: ``θ^{k+1} = θ^k − (1/M) Σ_m c_m``; broadcast the update ``(1/M) Σ_m c_m`` (a sparse message
of its nonzeros: the union of the workers' supports).

``g_m^k`` is ``∇f_m(θ^k)`` or, with a batch size, a minibatch estimate. Without the error memory
(``error_memory = false``) the worker sends ``C(α g_m^k)``: compressed GD, which may stall
(problems/counterexample). With top-k this is also the uplink-only top-k of [BIDIR] (their
``a_m = e_m + α g_m``, ``u_m = TopK(a_m)``, ``e_m ← a_m − u_m`` is the same recursion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import (
    SPARSE,
    Algorithm,
    batch_param,
    check_fits,
    compressed_model,
    compressor_param,
    flag_param,
    step_param,
)
from convcheck.algorithms.invariants import (
    Invariant,
    Reduction,
    Round,
    compression_rule,
    difference,
    norm,
    step_of_gd,
)
from convcheck.algorithms.mutation import Mutant, common, frozen, off_by_one
from convcheck.arrays import namespace
from convcheck.compressors import Compressor, Identity


@dataclass
class EFWorkers:
    """The error memories ``e_m``, ``(M, d)``."""

    errors: Any


@dataclass
class EFServer:
    theta: Any


def _memory(states: Any) -> Any:
    """``(1/M) Σ_m e_m``."""
    return states.workers.errors.mean(axis=0)


def _dropped(alg: Any, r: Round) -> Any:
    """What the compressor dropped: ``e_m`` with memory, else ``α g_m − c_m``."""
    return r.after.workers.errors if alg.error_memory else alg.alpha * r.gradients - r.up


def error_added_twice(alg: Any, real: Any, w: EFWorkers, *args: Any) -> Any:
    """``p_m = α g_m + 2 e_m``: the memory is added twice."""
    errors = w.errors
    w.errors = 2.0 * errors
    return real(w, *args)


def _virtual_iterate(alg: Any, r: Round) -> tuple[float, float]:
    if not alg.error_memory:
        return float(np.count_nonzero(r.after.workers.errors)), 0.0  # nothing is remembered
    return VIRTUAL.check(alg, r)


def _server_step(alg: Any, r: Round) -> tuple[float, float]:
    """``θ⁺ = θ − (1/M) Σ_m c_m`` and the broadcast is that update."""
    update = r.up.mean(axis=0)
    return norm(r.after.server.theta - (r.before.server.theta - update)) + norm(
        r.down - update), 0.0


def _memory_recursion(alg: Any, r: Round) -> tuple[float, float]:
    """Each worker's memory: ``c_m + e_m^new = α g_m + e_m^old``."""
    if not alg.error_memory:
        return 0.0, 1.0
    before = alg.alpha * r.gradients + r.before.workers.errors
    return difference(r.up + r.after.workers.errors, before)


VIRTUAL = step_of_gd(lambda alg: alg.alpha, _memory, "virtual-iterate",
                     "θ − (1/M)Σ e_m moves like GD: x̃⁺ = x̃ − α (1/M) Σ_m g_m")
#: Error feedback's identities (shared by LAGS, which is error feedback).
INVARIANTS = (
    Invariant(VIRTUAL.name, VIRTUAL.statement, _virtual_iterate),
    Invariant("memory-recursion", "c_m + e_m⁺ = α g_m + e_m, for each worker m",
              _memory_recursion),
    Invariant("server-step", "θ⁺ = θ − (1/M) Σ_m c_m, and that update is broadcast",
              _server_step, exact=True),
    compression_rule("compressor-rule", lambda alg: alg.compressor, lambda alg, r: r.up,
                     _dropped),
)


class ErrorFeedback(Algorithm):
    """Classic error feedback with any compressor."""

    name = "ef"
    summary = ("classic error feedback: workers compress α·gradient plus their error memory; "
               "the server averages the messages")
    parameters = (
        step_param(),
        compressor_param(),
        flag_param("error_memory", "keep what the compressor dropped and add it next round",
                   True),
        batch_param(),
    )
    diagnostic_names = ("error_norm_sq",)
    wire_format = ("compressor", "sparse")
    batch_axis = True
    invariants = INVARIANTS
    reductions = (
        Reduction("identity-is-gd", "C = identity: nothing is held back, error feedback is GD",
                  lambda alg, d: ({"compressor": Identity()}, "gd", {"alpha": alg.alpha})),
    )
    mutants = (
        *common("worker", sparse_uplink=True),
        frozen("errors", "the error memory e_m is never updated (top-k without error "
               "feedback)", "frozen-error-memory"),
        Mutant("error-added-twice", "p_m = α g_m + 2 e_m", worker=error_added_twice),
        off_by_one("compressor", 1, "k-plus-one"),
        off_by_one("compressor", -1, "k-minus-one"),
    )

    def compressors(self) -> tuple[Compressor, ...]:
        return (self.compressor,)

    @property
    def up_codec(self) -> Compressor:
        return self.compressor

    @property
    def down_codec(self) -> Compressor:
        return SPARSE

    def prepare(self, d: int) -> None:
        check_fits(self.compressor, d)

    def start_workers(self, theta0: Any, workers: int, initial_gradients: Any) -> tuple:
        xp = namespace(theta0)
        return EFWorkers(errors=xp.rows_like(theta0, workers)), None

    def start_server(self, theta0: Any, workers: int, initial_mean: Any) -> EFServer:
        return EFServer(namespace(theta0).copy(theta0))

    def worker(self, w: EFWorkers, gradients: Any, model: Any, rng: Any) -> Any:
        corrected = self.alpha * gradients
        if self.error_memory:
            corrected = corrected + w.errors
        sent = namespace(gradients).compress(self.compressor, corrected, rng)
        if self.error_memory:
            w.errors = corrected - sent
        return sent

    def server(self, s: EFServer, up_mean: Any) -> Any:
        s.theta = s.theta - up_mean
        return up_mean

    def receive(self, w: EFWorkers, model: Any, down: Any) -> Any:
        return model - down

    def lmi_model(self, d: int) -> tuple[str | None, dict[str, Any]]:
        name = "ef" if self.error_memory else "compressed-gd"
        return compressed_model(name, self, self.compressor, d)

    def lmi_state(self, s: EFServer, w: EFWorkers, gradients: Any, optimum: Any,
                  optimum_gradients: Any) -> dict:
        """``e_m``, already in model units (``α`` is inside ``p_m``)."""
        return {"e": w.errors} if self.error_memory else {}

    def diagnostics(self, s: EFServer, w: EFWorkers, gradients: Any) -> tuple[float, ...]:
        """``(1/M) Σ_m ‖e_m‖²``."""
        return (namespace(w.errors).mean_square_norm(w.errors),)
