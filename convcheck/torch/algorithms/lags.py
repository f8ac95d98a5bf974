"""LAGS-SGD [LAGS]: layer-wise top-k with per-layer error memories and adaptive per-layer k.

Per layer ``l`` and worker ``m`` (THEORY.md §3): ``a_l = ε_l + α g_l``; ``s_l = TopK(a_l, k_l)``;
``ε_l ← a_l − s_l``; the model moves by ``(1/M) Σ_m s_l``. In one process the layers are
updated together; the update is the same as when each layer's aggregate is applied as soon as
it arrives (the gradients of the lower layers were computed at the same forward point), so the
overlap with backprop changes the time of an iteration, not its result.

The adaptive counts come from :func:`select_layer_counts` (a model of communication time
``α_c + β_c·bits`` against the remaining backward time); :func:`pipeline_times` gives the
modelled iteration time with and without overlap. Both are pure functions of numbers, for the
simulation (a given model) and for the distributed backend (a measured one).

The paper's assumption as reconstructed, ``δ_l := ‖a_l − TopK_l(a_l)‖² / E‖a_l − RandK_l(a_l)‖²
≤ 1`` with ``E‖x − RandK_l(x)‖² = (1 − k_l/d_l)‖x‖²``, is measured every step on the vectors
actually compressed (:func:`layer_delta`; the state keeps the last values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from convcheck import encoding
from convcheck.compressors import LayerTopK as LayerTopKSpec
from convcheck.compressors import TopK as TopKSpec
from convcheck.errors import InputError, check_real
from convcheck.torch.algorithms.base import (
    Oracle,
    TorchAlgorithm,
    check_layers,
    mean_square_norm,
)
from convcheck.torch.compressors import LayerTopK, layer_top_k
from convcheck.torch.ledger import Messages

Tensor = torch.Tensor


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
    sizes = check_layers(layer_sizes)
    times = [check_real("backward_times", t, 0.0) for t in backward_times]
    if len(times) != len(sizes):
        raise InputError("backward_times", backward_times, f"{len(sizes)} values, one per layer")
    alpha_c = check_real("alpha_c", alpha_c, 0.0)
    beta_c = check_real("beta_c", beta_c, 0.0)
    floor = TopKSpec(ratio=floor_ratio)
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
    sizes = check_layers(layer_sizes)
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


def layer_delta(
    a: Tensor, error: Tensor, layer_sizes: Sequence[int], counts: Sequence[int]
) -> Tensor:
    """``δ_l = ‖a_l − s_l‖² / ((1 − k_l/d_l)‖a_l‖²)`` per row and layer, shape ``(M, L)``.

    ``error`` is ``a − s`` (the new error memory); sums are accumulated in float64. ``0/0``
    (``k_l = d_l`` or ``a_l = 0``: nothing is lost) is reported as 0.
    """
    out = []
    start = 0
    for size, k in zip(layer_sizes, counts, strict=True):
        part = slice(start, start + size)
        lost = error[:, part].square().sum(dim=1, dtype=torch.float64)
        expected = (1.0 - k / size) * a[:, part].square().sum(dim=1, dtype=torch.float64)
        out.append(torch.where(expected > 0, lost / expected.clamp_min(1e-300), 0.0))
        start += size
    return torch.stack(out, dim=1)


@dataclass
class LAGSState:
    """``θ``, the per-layer error memories ``ε`` (columns of ``(M, D)``) and the last ``δ_l``."""

    theta: Tensor
    errors: Tensor
    delta: Tensor


class LAGS(TorchAlgorithm):
    """LAGS-SGD with fixed or adaptive per-layer counts.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    layer_sizes : sequence of int, optional
        ``d_l`` in forward order (a :class:`~convcheck.torch.layout.Layout`'s ``sizes``);
        default one layer of size ``D``.
    k : sequence of int, optional
        ``k_l`` per layer (e.g. from :func:`select_layer_counts`).
    ratio : float, optional
        Or one density for every layer: ``k_l = max(1, ⌊ratio·d_l⌋)``.

    Uplink: each worker's layer messages (``Σ_l sparse_bits(nnz_l, d_l)``); downlink: each
    layer's aggregate ``(1/M) Σ_m s_l`` as its own sparse message, to every worker.
    """

    name = "lags"
    State = LAGSState

    def __init__(
        self,
        alpha: float,
        layer_sizes: Sequence[int] | None = None,
        *,
        k: Sequence[int] | None = None,
        ratio: float | None = None,
    ) -> None:
        self.alpha = check_real("alpha", alpha, 0.0, low_open=True)
        self.layer_sizes = check_layers(layer_sizes)
        if (k is None) == (ratio is None):
            raise InputError("k", k, "exactly one of k (one count per layer) or ratio in (0, 1]")
        self.k, self.ratio = (None if k is None else tuple(k)), ratio
        self.codec: LayerTopK | None = None
        if self.layer_sizes is not None:
            self.set_layers(self.layer_sizes, self.k)

    def set_layers(self, layer_sizes: Sequence[int], k: Sequence[int] | None = None) -> None:
        """Set the layers and counts (``k=None``: from ``ratio``); the adaptive schedule may
        call this between steps."""
        spec = (
            LayerTopKSpec(layer_sizes, ratio=self.ratio)
            if k is None
            else LayerTopKSpec(layer_sizes, k)
        )
        self.layer_sizes, self.k = spec.layer_sizes, spec.k
        self.codec = LayerTopK(spec)

    def _check_dim(self, d: int) -> None:
        """Default one layer of size ``D``; the layers must cover ``D``."""
        if self.codec is None:
            self.set_layers((d,), self.k)
        check_layers(self.layer_sizes, d)

    def start(self, theta0: Tensor, oracle: Oracle, generator: torch.Generator) -> tuple:
        d = theta0.shape[0]
        self._check_dim(d)
        errors = theta0.new_zeros((oracle.workers, d))
        delta = torch.zeros((oracle.workers, len(self.layer_sizes)), dtype=torch.float64)
        return LAGSState(theta0.clone(), errors, delta), None

    def worker(self, errors: Tensor, gradients: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rows ``(s_m, ε_m', δ_m)`` from rows ``(ε_m, g_m)`` (all layers)."""
        accumulated = errors + self.alpha * gradients
        sent = layer_top_k(accumulated, self.layer_sizes, self.k)
        errors = accumulated - sent
        return sent, errors, layer_delta(accumulated, errors, self.layer_sizes, self.k)

    def step(self, state: LAGSState, oracle: Oracle, generator: torch.Generator) -> Messages:
        self._check_dim(state.theta.shape[0])
        gradients = oracle(state.theta)
        sent, state.errors, state.delta = self.worker(state.errors, gradients)
        update = sent.mean(dim=0)
        state.theta = state.theta - update
        return Messages.of(sent, self.codec, update, self.codec)

    def diagnostics(self, state: LAGSState) -> dict[str, float]:
        """``(1/M) Σ ‖ε_m‖²`` and ``max_{m,l} δ_l`` of the last step."""
        return {
            "error_norm_sq": mean_square_norm(state.errors),
            "delta_max": float(state.delta.max()),
        }

    def params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "layer_sizes": None if self.layer_sizes is None else list(self.layer_sizes),
            "k": None if self.k is None else list(self.k),
            "ratio": self.ratio,
        }
