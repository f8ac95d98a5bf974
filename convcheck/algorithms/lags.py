"""LAGS-SGD [LAGS]: layer-wise top-k with per-layer error memories and adaptive per-layer k.

Per layer ``l`` and worker ``m``: ``a_l = ε_l + α g_l``; ``s_l = TopK(a_l, k_l)``;
``ε_l ← a_l − s_l``; the model moves by ``(1/M) Σ_m s_l`` as soon as layer ``l``'s message is
aggregated, overlapping with the backward pass of the lower layers. The update rule is error
feedback's (:class:`~convcheck.algorithms.ef.ErrorFeedback`) with the layer-wise top-k
compressor; the overlap changes the time of an iteration, not its result, so every transport
(numpy rounds, the torch simulator, the distributed per-layer hooks) computes the same iterates.
Uplink: each worker's layer messages; downlink: each layer's aggregate as its own sparse message.

The adaptive counts come from :func:`select_layer_counts` (a model of communication time
``α_c + β_c·bits`` against the remaining backward time); :func:`pipeline_times` gives the
modelled iteration time with and without overlap. Both are pure functions of numbers, for the
simulation (a given model) and for the distributed backend (a measured one).

The paper's assumption as reconstructed, ``δ_l := ‖a_l − TopK_l(a_l)‖² / E‖a_l − RandK_l(a_l)‖²
≤ 1`` with ``E‖x − RandK_l(x)‖² = (1 − k_l/d_l)‖x‖²``, is measured every round on the vectors
actually compressed (the largest over workers and layers is the diagnostic ``delta_max``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck import encoding
from convcheck.algorithms.base import Param, batch_param, step_param
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.algorithms.invariants import Reduction
from convcheck.arrays import namespace
from convcheck.compressors import Compressor, LayerTopK, TopK
from convcheck.errors import InputError, check_int, check_real


def check_layer_sizes(layer_sizes: Any, d: int | None = None) -> tuple[int, ...]:
    """Layer sizes: positive integers (``"10,20"`` accepted), summing to ``d`` when given."""
    allowed = "layer sizes: integers >= 1" + (f" summing to d={d}" if d is not None else "")
    if isinstance(layer_sizes, str):
        try:
            layer_sizes = [int(part) for part in layer_sizes.split(",")]
        except ValueError:
            raise InputError("layers", layer_sizes, allowed) from None
    try:
        sizes = tuple(check_int("layers", s, 1) for s in layer_sizes)
    except TypeError:
        raise InputError("layers", layer_sizes, allowed) from None
    if not sizes or (d is not None and sum(sizes) != d):
        raise InputError("layers", layer_sizes, allowed)
    return sizes


def select_layer_counts(
    layer_sizes: Sequence[int],
    backward_times: Sequence[float],
    alpha_c: float,
    beta_c: float,
    *,
    floor_ratio: float,
    value_bits: int = 32,
) -> tuple[int, ...]:
    """Adaptive per-layer ``k_l``: the largest whose message fits under the remaining backward.

    Layers are numbered in forward order ``0..L−1``; backprop computes layer ``L−1`` first, so
    when layer ``l``'s gradient is ready the backward time left is ``T_l = Σ_{j<l} t_j``.
    ``k_l`` is the largest ``k ∈ [1, d_l]`` with ``α_c + β_c·bits(k, d_l) ≤ T_l`` where
    ``bits`` is :func:`convcheck.encoding.sparse_bits` (nondecreasing in ``k``: it is
    ``min(k·b, d) + k·v``), and at least the floor ``max(1, ⌊floor_ratio·d_l⌋)``.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``d_l``, forward order.
    backward_times : sequence of float
        ``t_l ≥ 0``, the backward computation time of each layer (seconds), forward order.
    alpha_c, beta_c : float
        Latency (s) and time per bit (s/bit) of one layer message, ``≥ 0``.
    floor_ratio : float in (0, 1]
        Minimum density.
    value_bits : {32, 64}
    """
    sizes = check_layer_sizes(layer_sizes)
    times = [check_real("backward_times", t, 0.0) for t in backward_times]
    if len(times) != len(sizes):
        raise InputError("backward_times", backward_times, f"{len(sizes)} values, one per layer")
    alpha_c = check_real("alpha_c", alpha_c, 0.0)
    beta_c = check_real("beta_c", beta_c, 0.0)
    floor = TopK(ratio=floor_ratio)
    value_bits = encoding.check_value_bits(value_bits)
    counts, remaining = [], 0.0
    for size, time in zip(sizes, times, strict=True):
        fitting = _largest_fitting(size, remaining, alpha_c, beta_c, value_bits)
        counts.append(max(fitting, floor.k_for(size)))
        remaining += time
    return tuple(counts)


def _largest_fitting(d: int, budget: float, alpha_c: float, beta_c: float, value_bits: int) -> int:
    """Largest ``k ∈ [0, d]`` with ``α_c + β_c·sparse_bits(k, d) ≤ budget`` (0 if none), by
    bisection (the cost is nondecreasing in ``k``)."""
    low, high = 0, d
    while low < high:
        middle = (low + high + 1) // 2
        if alpha_c + beta_c * encoding.sparse_bits(middle, d, value_bits) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def pipeline_times(
    layer_sizes: Sequence[int],
    counts: Sequence[int],
    backward_times: Sequence[float],
    alpha_c: float,
    beta_c: float,
    *,
    value_bits: int = 32,
) -> dict[str, float]:
    """Modelled backward + communication time of one iteration, with and without overlap.

    Layer ``l``'s message (``k_l`` values, ``bits = sparse_bits(k_l, d_l)``) takes
    ``c_l = α_c + β_c·bits``; it can start when its gradient is ready, at
    ``r_l = Σ_{j ≥ l} t_j``, and when the link is free (messages go one at a time, in backward
    order): ``start_l = max(r_l, end_{l+1})``, ``end_l = start_l + c_l``.

    Returns
    -------
    dict
        ``"overlapped"`` = ``max(Σ t, end_0)``; ``"sequential"`` = ``Σ t + Σ c_l`` (all messages
        after backprop); ``"backward"`` = ``Σ t``; ``"communication"`` = ``Σ c_l``.
    """
    sizes = check_layer_sizes(layer_sizes)
    if len(counts) != len(sizes) or len(backward_times) != len(sizes):
        raise InputError("counts", counts, f"{len(sizes)} counts and backward times")
    comm = [
        alpha_c + beta_c * encoding.sparse_bits(k, d, value_bits)
        for k, d in zip(counts, sizes, strict=True)
    ]
    ready, link_free = 0.0, 0.0
    for time, cost in zip(reversed(backward_times), reversed(comm), strict=True):
        ready += time
        link_free = max(ready, link_free) + cost
    backward = float(sum(backward_times))
    elapsed = max(backward, link_free)
    return {
        "overlapped": elapsed,
        "sequential": backward + float(sum(comm)),
        "backward": backward,
        "communication": float(sum(comm)),
    }




def layer_delta(sent: Any, errors: Any, starts: np.ndarray, kept: np.ndarray) -> Any:
    """``δ_l = ‖ε_l‖² / ((1 − k_l/d_l)‖a_l‖²)`` per row and layer, ``(M, L)``.

    ``sent`` is the compressed ``s = TopK_l(a)`` and ``errors`` the new memory ``ε = a − s``;
    their supports are disjoint, so ``‖a_l‖² = ‖s_l‖² + ‖ε_l‖²``. ``kept`` holds ``k_l/d_l``;
    ``starts`` the first column of each layer. ``0/0`` (``k_l = d_l`` or ``a_l = 0``: nothing is
    lost) is reported as 0.
    """
    xp = namespace(sent)
    lost = xp.layer_sums(errors * errors, starts)
    expected = xp.asarray(1.0 - kept, like=lost) * (xp.layer_sums(sent * sent, starts) + lost)
    positive = expected > 0
    return xp.where(positive, lost / xp.where(positive, expected, 1.0), 0.0 * lost)


@dataclass
class LAGSWorkers:
    """Per-layer error memories ``ε`` (columns of ``(M, d)``) and the last ``δ_l``, ``(M, L)``."""

    errors: Any
    delta: Any


def _check_counts(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    counts = [value] if isinstance(value, (int, np.integer)) else list(value)
    return tuple(check_int("k", k, 1) for k in counts)


class LAGS(ErrorFeedback):
    """LAGS-SGD: error feedback with a layer-wise top-k, and the layer-wise δ measured."""

    name = "lags"
    summary = ("LAGS-SGD: layer-wise top-k with error feedback (per-layer counts fixed or chosen "
               "to fit the backward pass), δ_l measured")
    parameters = (
        step_param(),
        Param("layers", "layer sizes d_l in forward order, e.g. '20,10' (none: one layer)",
              "integers >= 1 summing to d, or none",
              lambda v: None if v is None else check_layer_sizes(v), None),
        Param("k", "entries kept per layer, one count per layer", "integers >= 1, or none",
              _check_counts, None),
        Param("ratio", "or one density for every layer: k_l = max(1, ⌊ratio·d_l⌋)",
              "a real number in (0, 1], or none",
              lambda v: None if v is None else check_real("ratio", v, 0.0, 1.0, low_open=True),
              None),
        batch_param(),
    )
    diagnostic_names = ("error_norm_sq", "delta_max")
    wire_format = ("compressor", "compressor")
    reductions = (
        Reduction("dense-layers-is-gd", "k_l = d_l in every layer: nothing is held back, LAGS is "
                  "GD", lambda alg, d: ({"k": None, "ratio": 1.0}, "gd", {"alpha": alg.alpha})),
        Reduction("is-ef-with-layer-top-k", "LAGS is error feedback whose compressor is the "
                  "layer-wise top-k of its layers and counts",
                  lambda alg, d: ({}, "ef", {"alpha": alg.alpha, "compressor": alg.compressor})),
    )

    def validate(self) -> None:
        if (self.k is None) == (self.ratio is None):
            raise InputError("k", self.k, "exactly one of k (one count per layer) or ratio")
        self.error_memory = True

    def prepare(self, d: int) -> None:
        sizes = (d,) if self.layers is None else check_layer_sizes(self.layers, d)
        self.set_counts(sizes, self.k)

    def set_counts(self, layer_sizes: Sequence[int], k: Sequence[int] | None = None) -> None:
        """Use these layers and counts (``k=None``: from ``ratio``); the adaptive schedule calls
        it between rounds."""
        self.compressor = (LayerTopK(layer_sizes, ratio=self.ratio) if k is None
                           else LayerTopK(layer_sizes, k))
        self.starts = np.concatenate([[0], np.cumsum(self.compressor.layer_sizes)[:-1]])
        self.kept = np.asarray(self.compressor.k) / np.asarray(self.compressor.layer_sizes)

    def compressors(self) -> tuple[Compressor, ...]:
        return (self.compressor,) if hasattr(self, "compressor") else ()

    @property
    def down_codec(self) -> Compressor:
        """Each layer's aggregate is its own sparse message."""
        return self.compressor

    def start_workers(self, theta0: Any, workers: int, initial_gradients: Any) -> tuple:
        xp = namespace(theta0)
        layers = len(self.compressor.layer_sizes)
        errors = xp.rows_like(theta0, workers)
        return LAGSWorkers(errors=errors, delta=xp.rows_like(theta0, workers, layers)), None

    def worker(self, w: LAGSWorkers, gradients: Any, model: Any, rng: Any) -> Any:
        """Error feedback's worker half, then ``δ_l = ‖ε_l‖² / ((1 − k_l/d_l)‖a_l‖²)`` with
        ``‖a_l‖² = ‖s_l‖² + ‖ε_l‖²`` (disjoint supports); ``0/0`` (nothing lost) is 0."""
        sent = super().worker(w, gradients, model, rng)
        w.delta = layer_delta(sent, w.errors, self.starts, self.kept)
        return sent

    def diagnostics(self, s: Any, w: LAGSWorkers, gradients: Any) -> tuple[float, ...]:
        """``(1/M) Σ ‖ε_m‖²`` and ``max_{m,l} δ_l`` of the last round."""
        xp = namespace(w.errors)
        return xp.mean_square_norm(w.errors), xp.max_entry(w.delta)

    def params(self) -> dict[str, Any]:
        out = super().params()
        out["layers"] = None if self.layers is None else list(self.layers)
        out["k"] = None if self.k is None else list(self.k)
        return out
