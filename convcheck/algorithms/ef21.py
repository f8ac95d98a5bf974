"""EF21 [EF21] (Richtárik, Sokolov, Fatkhullin 2021).

The paper's recursion: ``θ^{k+1} = θ^k − α g^k``; ``c_m = C(∇f_m(θ^{k+1}) − g_m^k)``;
``g_m^{k+1} = g_m^k + c_m``; ``g^{k+1} = (1/M) Σ_m g_m^{k+1}``. As worker and server halves, round
``k`` (workers hold ``θ^k``):

* worker: ``c_m = C(∇f_m(θ^k) − g_m)``; ``g_m ← g_m + c_m``; send ``c_m``;
* server: ``g ← g + (1/M) Σ_m c_m``; ``θ^{k+1} = θ^k − α g``; broadcast ``θ^{k+1}`` densely.

Initialization ``init = "full"``: ``g_m = ∇f_m(θ⁰)``, sent densely before the first round, so the
first round's corrections are ``C(0) = 0``; ``init = "compressed"``: ``g_m = 0``, so the first round
sends ``C(∇f_m(θ⁰))``. Both give the paper's iterates with ``g_m^0 = ∇f_m(θ⁰)`` or
``C(∇f_m(θ⁰))``. The ledger charges the corrections computed at ``θ^k`` to ``θ^{k+1}``, the iterate
they produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convcheck.algorithms.base import (
    Algorithm,
    batch_param,
    check_fits,
    choice_param,
    compressed_model,
    compressor_param,
    step_param,
)
from convcheck.algorithms.invariants import (
    Invariant,
    Reduction,
    Round,
    compression_rule,
    mean_of_rows,
    norm,
)
from convcheck.algorithms.mutation import Mutant, common, frozen, off_by_one
from convcheck.arrays import namespace
from convcheck.compressors import Compressor, Identity

INITS = ("full", "compressed")


@dataclass
class EF21Workers:
    """The workers' estimates ``g_m``, ``(M, d)``."""

    estimates: Any


@dataclass
class EF21Server:
    """``θ^k`` and the server's estimate ``g`` (the running mean of the corrections)."""

    theta: Any
    estimate: Any


def _server_estimate(alg: Any, r: Round) -> tuple[float, float]:
    """``g = (1/M) Σ_m g_m``: the server's running sum tracks the workers' mean."""
    return mean_of_rows(r.after.server.estimate, r.after.workers.estimates)


def _step(alg: Any, r: Round) -> tuple[float, float]:
    """``θ⁺ = θ − α g`` (the updated estimate), and ``θ⁺`` is broadcast."""
    expected = r.before.server.theta - alg.alpha * r.after.server.estimate
    return norm(r.after.server.theta - expected) + norm(r.down - r.after.server.theta), 0.0


def _not_accumulated(alg: Any, real: Any, s: Any, up_mean: Any) -> Any:
    s.estimate = 0.0 * s.estimate
    return real(s, up_mean)


def _estimates(alg: Any, r: Round) -> tuple[float, float]:
    """Each worker's estimate moves by its own correction: ``g_m⁺ = g_m + c_m``."""
    expected = r.before.workers.estimates + r.up
    return norm(r.after.workers.estimates - expected), 0.0


#: EF21's uplink identities (shared by EF21-BC).
UPLINK = (
    Invariant("estimate-recursion", "g_m⁺ = g_m + c_m, for each worker m", _estimates,
              exact=True),
    Invariant("server-estimate", "g = (1/M) Σ_m g_m", _server_estimate),
    compression_rule("compressor-rule", lambda alg: alg.compressor, lambda alg, r: r.up,
                     lambda alg, r: r.gradients - r.after.workers.estimates),
)


class EF21(Algorithm):
    """EF21 with any compressor."""

    name = "ef21"
    summary = ("EF21: workers send compressed corrections C(∇f_m − g_m) of their gradient "
               "estimates; the server steps with their mean")
    parameters = (
        step_param(),
        compressor_param(),
        choice_param("init", "g_m at the start: full gradients (sent densely) or zero",
                     INITS, "full"),
        batch_param(),
    )
    diagnostic_names = ("ef21_G",)
    wire_format = ("compressor", "dense")
    batch_axis = True
    invariants = (*UPLINK, Invariant("step", "θ⁺ = θ − α g, broadcast", _step, exact=True))
    reductions = (
        Reduction("identity-is-gd", "C = identity: g_m = ∇f_m(θ^k), EF21 is GD",
                  lambda alg, d: ({"compressor": Identity()}, "gd", {"alpha": alg.alpha})),
    )
    mutants = (
        *common("server", sparse_uplink=True),
        frozen("estimates", "the workers' estimates g_m are never updated by their "
               "corrections", "frozen-estimates"),
        Mutant("server-estimate-not-accumulated", "g = (1/M) Σ c_m instead of g + (1/M) Σ c_m",
               server=_not_accumulated),
        off_by_one("compressor", 1, "k-plus-one"),
        off_by_one("compressor", -1, "k-minus-one"),
    )

    def compressors(self) -> tuple[Compressor, ...]:
        return (self.compressor,)

    @property
    def up_codec(self) -> Compressor:
        return self.compressor

    def prepare(self, d: int) -> None:
        check_fits(self.compressor, d)

    def start_workers(self, theta0: Any, workers: int, initial_gradients: Any) -> tuple:
        xp = namespace(theta0)
        if self.init == "full":
            estimates = xp.copy(initial_gradients())
            return EF21Workers(estimates), estimates
        return EF21Workers(xp.rows_like(theta0, workers)), None

    def start_server(self, theta0: Any, workers: int, initial_mean: Any) -> EF21Server:
        xp = namespace(theta0)
        estimate = xp.zeros_like(theta0) if initial_mean is None else xp.copy(initial_mean)
        return EF21Server(theta=xp.copy(theta0), estimate=estimate)

    def worker(self, w: EF21Workers, gradients: Any, model: Any, rng: Any) -> Any:
        sent = namespace(gradients).compress(self.compressor, gradients - w.estimates, rng)
        w.estimates = w.estimates + sent
        return sent

    def server(self, s: EF21Server, up_mean: Any) -> Any:
        s.estimate = s.estimate + up_mean
        s.theta = s.theta - self.alpha * s.estimate
        return s.theta

    def receive(self, w: EF21Workers, model: Any, down: Any) -> Any:
        return down

    def lmi_model(self, d: int) -> tuple[str | None, dict[str, Any]]:
        return compressed_model("ef21", self, self.compressor, d)

    def lmi_state(self, s: EF21Server, w: EF21Workers, gradients: Any, optimum: Any,
                  optimum_gradients: Any) -> dict:
        """``g_m = α(g_m^k − ∇f_m(θ*))`` with the estimates ``g_m^k`` at ``θ^k`` (formed by the
        next round, see :meth:`next_estimates`)."""
        return {"g": self.alpha * (self.next_estimates(w, gradients) - optimum_gradients)}

    def next_estimates(self, w: EF21Workers, gradients: Any) -> Any:
        """``g_m^k = g_m^{k−1} + C(∇f_m(θ^k) − g_m^{k−1})``: the estimates the next round forms
        at the current model, computed without advancing the run (deterministic compressors)."""
        return w.estimates + namespace(gradients).compress(
            self.compressor, gradients - w.estimates, None)

    def diagnostics(self, s: EF21Server, w: EF21Workers, gradients: Any) -> tuple[float, ...]:
        """``G^{k+1} = (1/M) Σ_m ‖g_m^{k+1} − ∇f_m(θ^{k+1})‖²`` at the server's ``θ^{k+1}``.

        The estimates ``g_m^{k+1}`` are formed in the next round; since
        ``g_m^{k+1} − ∇f_m = C(v_m) − v_m`` with ``v_m = ∇f_m(θ^{k+1}) − g_m^k``, ``G^{k+1}`` is
        computed from the exact gradients without advancing the run. NaN when the transport has
        no exact gradients or the compressor is randomized (its next draw is not known yet).
        """
        if gradients is None or self.compressor.randomized:
            return (float("nan"),)
        gap = gradients - w.estimates
        xp = namespace(gap)
        return (xp.mean_square_norm(xp.compress(self.compressor, gap, None) - gap),)
