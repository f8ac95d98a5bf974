"""Distributed gradient descent: ``θ^{k+1} = θ^k − α (1/M) Σ_m ∇f_m(θ^k)``.

Worker: send ``g_m = ∇f_m(θ^k)`` densely. Server: ``θ^{k+1} = θ^k − α (1/M) Σ_m g_m``;
broadcast ``θ^{k+1}`` densely. With a batch size, ``g_m`` is a minibatch gradient (SGD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convcheck.algorithms.base import DENSE, SPARSE, Algorithm, batch_param, step_param
from convcheck.algorithms.invariants import Invariant, norm, step_of_gd
from convcheck.algorithms.mutation import Mutant, common, mispriced
from convcheck.arrays import namespace
from convcheck.compressors import Compressor


@dataclass
class GDWorkers:
    """The workers keep nothing between rounds."""


@dataclass
class GDServer:
    theta: Any


class GD(Algorithm):
    """Distributed gradient descent (dense both ways)."""

    name = "gd"
    summary = "gradient descent: workers send full gradients, the server broadcasts the model"
    parameters = (step_param(), batch_param())
    wire_format = ("dense", "dense")
    batch_axis = True
    mutants = (
        *common("server", sparse_uplink=False, memories=False),
        Mutant("workers-miss-the-broadcast", "the workers ignore the broadcast and keep "
               "computing at θ⁰", receive=lambda alg, real, w, model, down: model),
        mispriced("down", SPARSE, "downlink-priced-sparse",
                  "the dense broadcast is priced as a sparse vector"),
    )
    invariants = (
        step_of_gd(lambda alg: alg.alpha, lambda states: 0.0, "gradient-step",
                   "θ⁺ = θ − α (1/M) Σ_m g_m"),
        Invariant("broadcast-is-the-model", "the broadcast is θ⁺",
                  lambda alg, r: (norm(r.down - r.after.server.theta), 0.0), exact=True),
    )

    @property
    def up_codec(self) -> Compressor:
        return DENSE

    def start_workers(self, theta0: Any, workers: int, initial_gradients: Any) -> tuple:
        return GDWorkers(), None

    def start_server(self, theta0: Any, workers: int, initial_mean: Any) -> GDServer:
        return GDServer(namespace(theta0).copy(theta0))

    def worker(self, w: GDWorkers, gradients: Any, model: Any, rng: Any) -> Any:
        return gradients

    def server(self, s: GDServer, up_mean: Any) -> Any:
        s.theta = s.theta - self.alpha * up_mean
        return s.theta

    def receive(self, w: GDWorkers, model: Any, down: Any) -> Any:
        return down

    def lmi_model(self, d: int) -> tuple[str | None, dict[str, Any]]:
        if self.batch_size is not None:
            return None, {"reason": "minibatch gradients (no sure bound)"}
        return "gd", {"alpha": self.alpha}
