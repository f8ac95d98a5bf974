"""Bidirectional top-k [BIDIR] (rules read from the authors' public code).

Worker: ``a_m = e_m + α g_m^k``; ``u_m = TopK_up(a_m)``; ``e_m ← a_m − u_m``; send ``u_m``.
Server: ``w = δ + (1/M) Σ_m u_m``; ``p = TopK_down(w)``; ``δ ← w − p``; ``θ^{k+1} = θ^k − p``;
broadcast ``p``. Both error memories start at 0. The uplink-only variant is
:class:`~convcheck.algorithms.ef.ErrorFeedback` with top-k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convcheck.algorithms.base import (
    DENSE,
    Algorithm,
    batch_param,
    check_fits,
    optional_int_param,
    ratio_param,
    step_param,
    top_k_from,
)
from convcheck.algorithms.invariants import (
    Invariant,
    Reduction,
    Round,
    compression_rule,
    difference,
    magnitude,
    norm,
    step_of_gd,
)
from convcheck.algorithms.mutation import (
    Mutant,
    common,
    frozen,
    frozen_server,
    mispriced,
    off_by_one,
)
from convcheck.arrays import namespace
from convcheck.compressors import Compressor


@dataclass
class BidirectionalWorkers:
    """The workers' error memories ``e_m``, ``(M, d)``."""

    errors: Any


@dataclass
class BidirectionalServer:
    """``θ^k`` and the server's error memory ``δ``."""

    theta: Any
    server_error: Any


def _memories(states: Any) -> Any:
    """``(1/M) Σ_m e_m + δ``: what both error memories hold back."""
    return states.workers.errors.mean(axis=0) + states.server.server_error


def _recursions(alg: Any, r: Round) -> tuple[float, float]:
    """Each memory's recursion: ``u_m + e_m⁺ = e_m + α g_m`` for each worker, and
    ``p + δ⁺ = δ + (1/M) Σ_m u_m`` on the server."""
    workers = difference(r.up + r.after.workers.errors,
                         r.before.workers.errors + alg.alpha * r.gradients)
    server = difference(r.down + r.after.server.server_error,
                        r.before.server.server_error + r.up.mean(axis=0))
    return workers[0] + server[0], workers[1] + server[1] + magnitude(r.up)


def _server_step(alg: Any, r: Round) -> tuple[float, float]:
    """``θ⁺ = θ − p`` with ``p`` the broadcast."""
    return norm(r.after.server.theta - (r.before.server.theta - r.down)), 0.0


class BidirectionalTopK(Algorithm):
    """Top-k on the uplink and on the downlink, each with its error memory."""

    name = "bidir-topk"
    summary = ("bidirectional top-k: top-k with error feedback on the uplink, and on the "
               "server's broadcast of the update")
    parameters = (
        step_param(),
        optional_int_param("k_up", "entries kept per worker message", 1),
        ratio_param("ratio_up", "up"),
        optional_int_param("k_down", "entries kept in the server's broadcast", 1),
        ratio_param("ratio_down", "down"),
        batch_param(),
    )
    diagnostic_names = ("error_norm_sq", "server_error_norm_sq")
    wire_format = ("up", "down")
    batch_axis = True
    reductions = (
        Reduction("dense-both-ways-is-gd", "k_up = k_down = d: bidirectional top-k is GD",
                  lambda alg, d: ({"k_up": d, "ratio_up": None, "k_down": d,
                                   "ratio_down": None}, "gd", {"alpha": alg.alpha})),
        Reduction("dense-downlink-is-ef", "k_down = d: the uplink-only top-k (error feedback)",
                  lambda alg, d: ({"k_down": d, "ratio_down": None}, "ef",
                                  {"alpha": alg.alpha, "compressor": alg.up})),
    )
    invariants = (
        step_of_gd(lambda alg: alg.alpha, _memories, "virtual-iterate",
                   "θ − (1/M)Σ e_m − δ moves like GD: x̃⁺ = x̃ − α (1/M) Σ_m g_m"),
        Invariant("memory-recursions", "u_m + e_m⁺ = e_m + α g_m; p + δ⁺ = δ + (1/M)Σ u_m",
                  _recursions),
        Invariant("server-step", "θ⁺ = θ − p", _server_step, exact=True),
        compression_rule("uplink-rule", lambda alg: alg.up, lambda alg, r: r.up,
                         lambda alg, r: r.after.workers.errors),
        compression_rule("downlink-rule", lambda alg: alg.down, lambda alg, r: r.down[None],
                         lambda alg, r: r.after.server.server_error[None]),
    )
    mutants = (
        *common("worker", sparse_uplink=True),
        frozen("errors", "the workers' error memories e_m are never updated",
               "frozen-error-memory"),
        frozen_server("server_error", "the server's error memory δ is never updated",
                      "frozen-server-error"),
        off_by_one("up", 1, "k-up-plus-one"),
        off_by_one("down", -1, "k-down-minus-one", halves=("server",)),
        Mutant("broadcast-applied-twice", "the workers apply the broadcast twice",
               receive=lambda alg, real, w, model, down: real(w, real(w, model, down), down)),
        mispriced("down", DENSE, "downlink-priced-dense",
                  "the sparse broadcast is priced as a dense vector"),
    )

    def validate(self) -> None:
        self.up = top_k_from(self.k_up, self.ratio_up, "up")
        self.down = top_k_from(self.k_down, self.ratio_down, "down")

    def compressors(self) -> tuple[Compressor, ...]:
        return (self.up, self.down)

    @property
    def up_codec(self) -> Compressor:
        return self.up

    @property
    def down_codec(self) -> Compressor:
        return self.down

    def prepare(self, d: int) -> None:
        check_fits(self.up, d, "k_up")
        check_fits(self.down, d, "k_down")

    def start_workers(self, theta0: Any, workers: int, initial_gradients: Any) -> tuple:
        xp = namespace(theta0)
        return BidirectionalWorkers(xp.rows_like(theta0, workers)), None

    def start_server(self, theta0: Any, workers: int, initial_mean: Any) -> BidirectionalServer:
        xp = namespace(theta0)
        return BidirectionalServer(theta=xp.copy(theta0), server_error=xp.zeros_like(theta0))

    def worker(self, w: BidirectionalWorkers, gradients: Any, model: Any, rng: Any) -> Any:
        accumulated = w.errors + self.alpha * gradients
        sent = namespace(gradients).compress(self.up, accumulated, rng)
        w.errors = accumulated - sent
        return sent

    def server(self, s: BidirectionalServer, up_mean: Any) -> Any:
        aggregate = s.server_error + up_mean
        broadcast = namespace(aggregate).compress(self.down, aggregate, None)
        s.server_error = aggregate - broadcast
        s.theta = s.theta - broadcast
        return broadcast

    def receive(self, w: BidirectionalWorkers, model: Any, down: Any) -> Any:
        return model - down

    def lmi_model(self, d: int) -> tuple[str | None, dict[str, Any]]:
        if self.batch_size is not None:
            return None, {"reason": "minibatch gradients (no sure bound)"}
        return "bidir-topk", {"alpha": self.alpha, "delta_up": self.up.delta(d),
                              "delta_down": self.down.delta(d)}

    def lmi_state(self, s: BidirectionalServer, w: BidirectionalWorkers, gradients: Any,
                  optimum: Any, optimum_gradients: Any) -> dict:
        """``e_m`` and the server's ``δ`` (``D``), in model units."""
        return {"e": w.errors, "D": s.server_error}

    def diagnostics(self, s: BidirectionalServer, w: BidirectionalWorkers,
                    gradients: Any) -> tuple[float, ...]:
        """``(1/M) Σ_m ‖e_m‖²`` and ``‖δ‖²``."""
        xp = namespace(w.errors)
        return xp.mean_square_norm(w.errors), xp.square_norm(s.server_error)
