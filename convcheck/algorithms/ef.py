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
from convcheck.algorithms.mutation import frozen
from convcheck.arrays import namespace
from convcheck.compressors import Compressor


@dataclass
class EFWorkers:
    """The error memories ``e_m``, ``(M, d)``."""

    errors: Any


@dataclass
class EFServer:
    theta: Any


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
    mutants = (frozen("errors", "the error memory e_m is never updated (top-k without error "
                      "feedback)", "frozen-error-memory"),)

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
        return EFWorkers(errors=xp.zeros((workers, theta0.shape[0]), like=theta0)), None

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
