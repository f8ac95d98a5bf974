"""EF21-BC [EF21-BW] (Fatkhullin, Sokolov, Gorbunov, Li, Richtárik 2021): EF21 with
bidirectional compression.

The uplink is EF21's (:mod:`convcheck.algorithms.ef21`): workers keep estimates ``g_m`` and send
compressed corrections. The server keeps their mean ``g`` and ``b``, the estimate every node
steps with, which it makes known through a second EF21 mechanism on the downlink. Round ``k``
(every node holds ``θ^k`` and ``b``):

* worker: ``c_m = C_w(∇f_m(θ^k) − g_m)``; ``g_m ← g_m + c_m``; send ``c_m``;
* server: ``g ← g + (1/M) Σ_m c_m``; ``p = C_s(g − b)``; ``b ← b + p``; ``θ^{k+1} = θ^k − α b``;
  broadcast ``p``;
* every worker: ``b ← b + p``; ``θ^{k+1} = θ^k − α b`` (the model moves without being sent).

Initialization as EF21's (``g_m = ∇f_m(θ⁰)`` sent densely, or ``g_m = 0``), and ``b = 0``, so
the first broadcast is ``C_s(g⁰)``. With ``C_s`` the identity, ``b = g`` and this is EF21.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convcheck.algorithms.base import (
    DENSE,
    check_fits,
    optional_int_param,
    ratio_param,
    shared,
    top_k_from,
)
from convcheck.algorithms.ef21 import EF21, UPLINK, EF21Server, EF21Workers
from convcheck.algorithms.invariants import (
    Invariant,
    Reduction,
    Round,
    compression_rule,
    norm,
)
from convcheck.algorithms.mutation import Mutant, frozen_server, mispriced, off_by_one
from convcheck.arrays import namespace
from convcheck.compressors import Compressor


@dataclass
class EF21BCWorkers(EF21Workers):
    """EF21's estimates ``g_m`` ``(M, d)`` and the downlink estimate ``b`` the workers track."""

    b: Any = shared()


@dataclass
class EF21BCServer(EF21Server):
    """``θ^k``, the mean ``g`` of the workers' estimates and the downlink estimate ``b``."""

    b: Any = None


def _shared_b(alg: Any, r: Round) -> tuple[float, float]:
    """Every node holds the same ``b`` and the same model (the same additions, bit for bit)."""
    after = r.after
    return norm(after.workers.b - after.server.b) + norm(after.model - after.server.theta), 0.0


def _step(alg: Any, r: Round) -> tuple[float, float]:
    """``θ⁺ = θ − α b⁺``."""
    expected = r.before.server.theta - alg.alpha * r.after.server.b
    return norm(r.after.server.theta - expected), 0.0


def _stale_b(alg: Any, real: Any, w: EF21BCWorkers, model: Any, down: Any) -> Any:
    b = w.b
    model = real(w, model, down)
    w.b = b
    return model


class EF21BC(EF21):
    """EF21-BC: EF21 on the uplink and on the downlink (top-k ``C_s``)."""

    name = "ef21-bc"
    summary = ("EF21-BC: EF21's compressed corrections up, and the server's top-k corrections "
               "of the estimate every node steps with down")
    parameters = (
        *EF21.parameters[:-1],
        optional_int_param("k_down", "entries kept by the downlink top-k C_s", 1),
        ratio_param("ratio_down", "down"),
        EF21.parameters[-1],
    )
    diagnostic_names = ("ef21_G", "downlink_error_sq")
    wire_format = ("compressor", "down")
    reductions = (
        Reduction("dense-downlink-is-ef21", "C_s = identity (k_down = d): b = g, EF21-BC is EF21",
                  lambda alg, d: ({"k_down": d, "ratio_down": None}, "ef21",
                                  {"alpha": alg.alpha, "compressor": alg.compressor,
                                   "init": alg.init})),
    )
    invariants = (
        *UPLINK,
        Invariant("shared-b", "the workers' b and model equal the server's", _shared_b,
                  exact=True),
        Invariant("step", "θ⁺ = θ − α b⁺", _step, exact=True),
        compression_rule("downlink-rule", lambda alg: alg.down, lambda alg, r: r.down[None],
                         lambda alg, r: (r.after.server.estimate - r.after.server.b)[None]),
    )
    mutants = (
        *EF21.mutants,
        frozen_server("b", "the server's copy of b stays b⁰ = 0: it steps with C_s(g), the "
                      "downlink without error feedback, while the workers add up the broadcasts "
                      "(their model drifts from the server's)", "stale-server-estimate"),
        Mutant("stale-worker-estimate", "the workers never update their copy of b (their "
               "model drifts from the server's)", receive=_stale_b),
        off_by_one("down", -1, "k-down-minus-one", halves=("server",)),
        mispriced("down", DENSE, "downlink-priced-dense",
                  "the sparse broadcast is priced as a dense vector"),
    )

    def validate(self) -> None:
        self.down = top_k_from(self.k_down, self.ratio_down, "down")

    def compressors(self) -> tuple[Compressor, ...]:
        return (self.compressor, self.down)

    @property
    def down_codec(self) -> Compressor:
        return self.down

    def prepare(self, d: int) -> None:
        super().prepare(d)
        check_fits(self.down, d, "k_down")

    def start_workers(self, theta0: Any, workers: int, initial_gradients: Any) -> tuple:
        w, up0 = super().start_workers(theta0, workers, initial_gradients)
        return EF21BCWorkers(w.estimates, namespace(theta0).zeros_like(theta0)), up0

    def start_server(self, theta0: Any, workers: int, initial_mean: Any) -> EF21BCServer:
        s = super().start_server(theta0, workers, initial_mean)
        return EF21BCServer(s.theta, s.estimate, namespace(theta0).zeros_like(theta0))

    def server(self, s: EF21BCServer, up_mean: Any) -> Any:
        s.estimate = s.estimate + up_mean
        gap = s.estimate - s.b
        broadcast = namespace(gap).compress(self.down, gap, None)
        s.b = s.b + broadcast
        s.theta = s.theta - self.alpha * s.b
        return broadcast

    def receive(self, w: EF21BCWorkers, model: Any, down: Any) -> Any:
        w.b = w.b + down
        return model - self.alpha * w.b

    def lmi_model(self, d: int) -> tuple[str | None, dict[str, Any]]:
        return None, {"reason": "no LMI model for EF21-BC"}

    def lmi_state(self, s: Any, w: Any, gradients: Any, optimum: Any,
                  optimum_gradients: Any) -> dict:
        return {}

    def diagnostics(self, s: EF21BCServer, w: EF21BCWorkers, gradients: Any) -> tuple[float, ...]:
        """EF21's ``G`` and ``‖b − g‖²``, the downlink's estimation error."""
        xp = namespace(s.theta)
        return (*super().diagnostics(s, w, gradients), xp.square_norm(s.b - s.estimate))
