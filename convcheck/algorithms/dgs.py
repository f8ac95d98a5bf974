"""DGS: dual-way gradient sparsification with SAMomentum [DGS] (THEORY.md §3).

Rules read from the authors' public code, as THEORY.md states them. Worker ``k``, each
computation, on its local model ``θ_k``:

    g = ∇f_k(θ_k) (+ weight decay · θ_k);   u_k ← m·u_k + α g;
    mask = layer-wise top-ρ_up of |u_k|;     send P = u_k ⊙ mask;
    SAMomentum: u_k ← u_k ⊙ mask + (u_k ⊙ (1 − mask)) / m   (unsent entries stop decaying).

Per coordinate, the value sent is ``m·(previous value sent) + Σ α g`` over the computations since
that coordinate was last sent. Server, on a message ``P`` from worker ``k``:

    θ ← θ − P;   D_k = (θ − θ_sync) − A_k;   S_k = layer-wise top-ρ_down(D_k);
    send S_k;    A_k ← A_k + S_k;   the worker sets θ_k ← θ_k + S_k,

so ``θ_k = θ_sync + A_k`` always and the downlink is per-worker error feedback on model
differences. Every ``R`` server versions a full resync sets ``θ_sync ← θ``, ``A_k ← 0`` and
sends ``θ`` densely to every worker (``θ_k ← θ``).

Interpretations (ours, stated here and in the docs): the resync is a broadcast that reaches
each worker before any later message to it (links are FIFO), so a worker computing while it
happens uses its old model for that computation and ``θ_sync + A_k`` afterwards; the worker
whose message triggered the resync gets ``S_k = 0`` (an empty message). "Layers" are a
partition of the coordinates; top-ρ keeps ``max(1, ⌊ρ d_l⌋)`` entries of each layer ``l``
(ties: lowest index), priced as one sparse message per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.async_base import (
    AsyncAlgorithm,
    Message,
    WorkerGradient,
    model_drift,
)
from convcheck.algorithms.base import DENSE, check_step, mean_square_norm
from convcheck.compressors import Compressor, LayerTopK
from convcheck.encoding import Encoded
from convcheck.errors import InputError, check_int, check_real


class PartitionTopK(Compressor):
    """Top-``k_l`` inside each group ``l`` of a partition of the coordinates.

    :class:`~convcheck.compressors.LayerTopK` on the coordinates reordered group by group
    (groups need not be contiguous). ``‖C(x) − x‖² ≤ (1 − min_l k_l/d_l)‖x‖²``; each group is
    its own sparse message, indices relative to the group.

    Parameters
    ----------
    groups : sequence of int arrays
        A partition of ``{0, …, d−1}``; each group non-empty, in the order given.
    ratio : float
        ``k_l = max(1, ⌊ratio·d_l⌋)``, ``ratio ∈ (0, 1]``.
    value_bits : {32, 64}
    """

    name = "partition-top-k"
    guarantee = "contractive"
    sparsifier = True
    idempotent = True
    scale_equivariant = True
    constant_formula = "δ = min_l k_l/d_l"

    def __init__(self, groups: Sequence[np.ndarray], ratio: float, *, value_bits: int = 32) -> None:
        self.groups = tuple(np.asarray(g, dtype=np.int64) for g in groups)
        self.order = np.concatenate(self.groups)
        self.inverse = np.argsort(self.order, kind="stable")
        self.layers = LayerTopK([g.size for g in self.groups], ratio=ratio, value_bits=value_bits)
        self.value_bits = self.layers.value_bits
        self.contiguous = bool(np.array_equal(self.order, np.arange(self.order.size)))

    @property
    def d(self) -> int:
        return self.order.size

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if self.contiguous:
            return self.layers.compress_rows(X, None)
        return self.layers.compress_rows(X[:, self.order], None)[:, self.inverse]

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        return self.layers.bits_rows(C if self.contiguous else C[:, self.order])

    def encode(self, c: np.ndarray) -> Encoded:
        row = np.asarray(c)
        return self.layers.encode(row if self.contiguous or row.ndim != 1 else row[self.order])

    def decode(self, message: Encoded) -> np.ndarray:
        row = self.layers.decode(message)
        return row if self.contiguous else row[self.inverse]

    def delta(self, d: int) -> float:
        return self.layers.delta(d)

    def dim_range(self) -> tuple[int, int | None]:
        return self.d, self.d

    def params(self) -> dict[str, Any]:
        return {
            "layer_sizes": [g.size for g in self.groups],
            "contiguous": self.contiguous,
            "ratio": self.layers.ratio,
            "value_bits": self.value_bits,
        }


def partition(layers: int | str | Sequence, d: int) -> tuple[np.ndarray, ...]:
    """The coordinate groups (DGS "layers") a specification describes, for dimension ``d``.

    * an int ``n``: ``n`` contiguous layers of near-equal sizes (``1 ≤ n ≤ d``);
    * a sequence of ints, or a string ``"3,5,2"``: contiguous layers of those sizes (sum ``d``);
    * a sequence of index sequences: any partition of ``{0, …, d−1}``.
    """
    allowed = (
        f"an integer in [1, d={d}], layer sizes >= 1 summing to d={d} (e.g. '10,20'), "
        f"or index groups partitioning 0..{d - 1}"
    )
    spec: Any = layers
    if isinstance(spec, str):
        try:
            spec = [int(part) for part in spec.split(",")]
        except ValueError:
            raise InputError("layers", layers, allowed) from None
        if len(spec) == 1:
            spec = spec[0]
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        count = check_int("layers", int(spec), 1, d)
        return tuple(np.array_split(np.arange(d), count))
    try:
        items = list(spec)
    except TypeError:
        raise InputError("layers", layers, allowed) from None
    if items and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in items):
        sizes = np.asarray(items, dtype=np.int64)
        if np.any(sizes < 1) or sizes.sum() != d:
            raise InputError("layers", layers, allowed)
        return tuple(np.split(np.arange(d), np.cumsum(sizes)[:-1]))
    try:
        groups = tuple(np.asarray(g, dtype=np.int64).ravel() for g in items)
    except (TypeError, ValueError):
        raise InputError("layers", layers, allowed) from None
    joined = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
    if (
        not groups
        or any(g.size == 0 for g in groups)
        or joined.size != d
        or not np.array_equal(np.sort(joined), np.arange(d))
    ):
        raise InputError("layers", "index groups", allowed)
    return groups


@dataclass
class DGSState:
    theta: np.ndarray
    theta_sync: np.ndarray
    models: np.ndarray
    accumulated: np.ndarray
    momentum: np.ndarray
    versions: int
    up: PartitionTopK
    down: PartitionTopK


class DGS(AsyncAlgorithm):
    """Dual-way gradient sparsification with SAMomentum.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``.
    momentum : float
        ``m ∈ (0, 1]`` (SAMomentum divides by ``m``).
    rho_up, rho_down : float
        Kept fraction per layer, ``ρ ∈ (0, 1]``, worker→server and server→worker.
    layers : int, str or sequence
        The layer partition of the coordinates (see :func:`partition`); default one layer.
    resync : int, optional
        Full resync every ``R ≥ 1`` server versions; ``None`` never.
    weight_decay : float
        Added to the worker gradient (``g + wd·θ_k``), ``≥ 0``.
    batch_size : int, optional
        Minibatch size; ``None`` uses the worker's full gradient.
    """

    name = "dgs"
    diagnostic_names = ("momentum_norm_sq", "model_drift_sq", "accumulated_norm_sq")

    def __init__(
        self,
        alpha: float,
        *,
        momentum: float = 0.9,
        rho_up: float = 0.01,
        rho_down: float = 0.01,
        layers: int | str | Sequence = 1,
        resync: int | None = None,
        weight_decay: float = 0.0,
        batch_size: int | None = None,
    ) -> None:
        self.alpha = check_step(alpha)
        self.momentum = check_real("momentum", momentum, 0.0, 1.0, low_open=True)
        self.rho_up = check_real("rho_up", rho_up, 0.0, 1.0, low_open=True)
        self.rho_down = check_real("rho_down", rho_down, 0.0, 1.0, low_open=True)
        if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
            check_int("layers", int(layers), 1)
        self.layers = layers
        self.resync = None if resync is None else check_int("resync", resync, 1)
        self.weight_decay = check_real("weight_decay", weight_decay, 0.0)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, 1)

    @property
    def stochastic(self) -> bool:
        return self.batch_size is not None

    def start(self, theta0: np.ndarray, workers: int) -> DGSState:
        groups = partition(self.layers, theta0.shape[0])
        models = np.tile(theta0, (workers, 1))
        return DGSState(
            theta=theta0.copy(),
            theta_sync=theta0.copy(),
            models=models,
            accumulated=np.zeros_like(models),
            momentum=np.zeros_like(models),
            versions=0,
            up=PartitionTopK(groups, self.rho_up),
            down=PartitionTopK(groups, self.rho_down),
        )

    def worker_compute(
        self, state: DGSState, worker: int, gradients: WorkerGradient, rng: np.random.Generator
    ) -> Message:
        model = state.models[worker]
        gradient = gradients(worker, model, self.batch_size, rng)
        if self.weight_decay:
            gradient = gradient + self.weight_decay * model
        u = self.momentum * state.momentum[worker] + self.alpha * gradient
        sent = state.up.compress(u)
        state.momentum[worker] = np.where(sent != 0, u, u / self.momentum)
        return Message(sent, state.up)

    def server_apply(self, state: DGSState, worker: int, message: np.ndarray) -> Message | None:
        state.theta = state.theta - message
        state.versions += 1
        if self.resync is None or state.versions % self.resync:
            return None
        state.theta_sync = state.theta.copy()
        state.accumulated[:] = 0.0
        state.models[:] = state.theta
        return Message(state.theta, DENSE)

    def server_reply(self, state: DGSState, worker: int) -> Message:
        difference = (state.theta - state.theta_sync) - state.accumulated[worker]
        sent = state.down.compress(difference)
        state.accumulated[worker] += sent
        state.models[worker] += sent
        return Message(sent, state.down)

    def diagnostics(self, state: DGSState) -> tuple[float, ...]:
        """``(1/W)Σ‖u_k‖²``, ``(1/W)Σ‖θ − θ_k‖²`` and ``(1/W)Σ‖A_k‖²``."""
        return (
            mean_square_norm(state.momentum),
            model_drift(state),
            mean_square_norm(state.accumulated),
        )

    def params(self) -> dict[str, Any]:
        layers = self.layers
        if not isinstance(layers, (int, str)):
            layers = [np.asarray(g).tolist() if np.ndim(g) else int(g) for g in layers]
        return {
            "alpha": self.alpha,
            "momentum": self.momentum,
            "rho_up": self.rho_up,
            "rho_down": self.rho_down,
            "layers": layers,
            "resync": self.resync,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
        }
