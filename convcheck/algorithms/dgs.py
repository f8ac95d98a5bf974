"""DGS: dual-way gradient sparsification with SAMomentum [DGS] (asynchronous).

Rules read from the authors' public code. Worker ``k``, each computation, on its local model
``θ_k``:

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

Interpretations (ours, stated in docs/algorithms.md): the resync is a broadcast that reaches
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

from convcheck.algorithms.base import (
    DENSE,
    Algorithm,
    Param,
    batch_param,
    optional_int_param,
    real_param,
    step_param,
)
from convcheck.algorithms.invariants import (
    Computation,
    EventInvariant,
    Update,
    compression_error,
    difference,
    norm,
)
from convcheck.algorithms.mutation import Mutant, frozen, mispriced, scaled, sign_flipped
from convcheck.arrays import NUMPY, namespace
from convcheck.compressors import Compressor, PartitionTopK
from convcheck.errors import InputError, check_int


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
class DGSWorkers:
    """The workers' momenta ``u_k``, ``(W, d)``."""

    momentum: Any


@dataclass
class DGSServer:
    """``θ``, ``θ_sync``, the per-worker accumulated downlinks ``A_k`` ``(W, d)`` and the number
    of server versions."""

    theta: Any
    theta_sync: Any
    accumulated: Any
    versions: int


def _check_layers(value: Any) -> Any:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        check_int("layers", int(value), 1)
        return int(value)
    if isinstance(value, (str, Sequence)) and not isinstance(value, bool):
        return value
    raise InputError("layers", value, "a layer count, sizes such as '10,20', or index groups")


def _samomentum_times_m(alg: Algorithm, real: Any, w: DGSWorkers, *args: Any) -> Any:
    """Unsent entries multiplied by ``m`` instead of divided by it."""
    sent = real(w, *args)
    xp = namespace(sent)
    w.momentum = xp.where(sent != 0, w.momentum, w.momentum * alg.momentum**2)
    return sent


def _accumulator_frozen(alg: Algorithm, real: Any, s: DGSServer, worker: int) -> Any:
    """The server forgets to add ``S_k`` to ``A_k``."""
    kept = namespace(s.accumulated).copy(s.accumulated)
    out = real(s, worker)
    s.accumulated = kept
    return out


def _resync_keeps_accumulators(alg: Algorithm, real: Any, s: DGSServer, worker: int,
                               up: Any) -> Any:
    """A resync sets ``θ_sync ← θ`` but leaves the ``A_k``."""
    kept = s.accumulated
    out = real(s, worker, up)
    s.accumulated = kept
    return out


def _momentum_input(alg: Any, c: Computation) -> Any:
    """``u = m u_k + α(g + wd·θ_k)``, the SAMomentum before sparsification."""
    gradient = c.gradient + alg.weight_decay * c.model if alg.weight_decay else c.gradient
    return alg.momentum * c.before.momentum[0] + alg.alpha * gradient


def _samomentum(alg: Any, c: Computation) -> tuple[float, float]:
    """Sent entries of ``u`` are kept as they are, unsent ones divided by ``m``."""
    u = _momentum_input(alg, c)
    after = c.after.momentum[0]
    rebuilt = np.where(c.message == 0, alg.momentum * after, after)
    return difference(rebuilt, u)


def _declared(alg: Any, link: str) -> PartitionTopK:
    """The layer-wise top-ρ of a link (``"up"``, ``"down"``) built here from the declared
    ``rho_<link>`` and the layers, apart from the compressor the algorithm built."""
    return PartitionTopK(getattr(alg, f"sparsify_{link}").groups, getattr(alg, f"rho_{link}"))


def _sent_is_top_rho(alg: Any, c: Computation) -> tuple[float, float]:
    u = _momentum_input(alg, c)
    return compression_error(_declared(alg, "up"), c.message[None], (u - c.message)[None])


def _resynced(alg: Any, u: Update) -> bool:
    return alg.resync is not None and u.after.versions % alg.resync == 0


def _reply(alg: Any, u: Update, j: int) -> tuple[Any, Any]:
    """``(A_k before the reply, S_k)`` of a worker served at update ``u``, recomputed."""
    base = (np.zeros_like(u.after.accumulated[j]) if _resynced(alg, u)
            else u.before.accumulated[j])
    sent = NUMPY.compress(_declared(alg, "down"), (u.after.theta - u.after.theta_sync) - base,
                          None)
    return base, sent


def _replies_accumulated(alg: Any, u: Update) -> tuple[float, float]:
    """``A_k ← A_k + S_k`` with ``S_k`` the top-ρ_down of ``(θ − θ_sync) − A_k``."""
    error = 0.0
    for j in u.dispatched:
        base, sent = _reply(alg, u, j)
        error += norm(u.after.accumulated[j] - (base + sent))
    return error, 0.0


def _models(alg: Any, u: Update) -> tuple[float, float]:
    """``θ_k = θ_sync + A_k`` for every worker."""
    expected = u.after.theta_sync + u.after.accumulated
    return norm(u.models - expected), norm(u.models) + norm(expected)


class DGS(Algorithm):
    """Dual-way gradient sparsification with SAMomentum (asynchronous)."""

    name = "dgs"
    summary = ("DGS: asynchronous; workers send layer-wise top-ρ of their SAMomentum, the server "
               "replies with layer-wise top-ρ of each worker's missing model change")
    parameters = (
        step_param(),
        real_param("momentum", "SAMomentum m (unsent entries are divided by m)", 0.0, 1.0, 0.9,
                   low_open=True),
        real_param("rho_up", "kept fraction per layer, worker to server", 0.0, 1.0, 0.01,
                   low_open=True),
        real_param("rho_down", "kept fraction per layer, server to worker", 0.0, 1.0, 0.01,
                   low_open=True),
        Param("layers", "the layer partition: a count of contiguous layers, sizes '10,20', or "
              "index groups", "an integer >= 1, sizes summing to d, or index groups",
              _check_layers, 1),
        optional_int_param("resync", "full resync every R server versions (none: never)", 1),
        real_param("weight_decay", "added to the gradient: g + wd·θ_k", 0.0, np.inf, 0.0),
        batch_param(),
    )
    transports = frozenset({"async"})
    wire_format = ("sparsify_up", "sparsify_down")
    diagnostic_names = ("momentum_norm_sq", "accumulated_norm_sq")
    event_invariants = (
        EventInvariant("samomentum", "u = m u_k + α(g + wd·θ_k); sent entries of u kept, unsent "
                       "ones divided by m", _samomentum, on="compute"),
        EventInvariant("sent-is-top-rho", "the message is the layer-wise top-ρ_up of u",
                       _sent_is_top_rho, on="compute", exact=True),
        EventInvariant("server-rule", "θ^(t+1) = θ^t − P for the applied message P",
                       lambda alg, u: (norm(u.after.theta - (u.before.theta - u.message)), 0.0),
                       exact=True),
        EventInvariant("replies-accumulated", "A_k ← A_k + S_k, S_k = top-ρ_down of "
                       "(θ − θ_sync) − A_k (after a resync: θ_sync = θ, A = 0)",
                       _replies_accumulated, exact=True),
        EventInvariant("model-is-sync-plus-accumulated", "θ_k = θ_sync + A_k for every worker",
                       _models),
    )
    mutants = (
        scaled("alpha", 0.5, "worker", "step-x0.5", "the step size is halved in u"),
        scaled("alpha", 1.3, "worker", "step-x1.3", "the step size is 1.3× in u"),
        sign_flipped(),
        Mutant("samomentum-times-m", "unsent entries are multiplied by m, not divided by it",
               worker=_samomentum_times_m),
        frozen("momentum", "the momentum u_k is never updated (plain sparsified SGD)",
               "frozen-momentum"),
        Mutant("accumulator-not-updated", "the server never adds S_k to A_k",
               reply=_accumulator_frozen),
        Mutant("resync-keeps-accumulators", "a resync leaves A_k as they were",
               server_event=_resync_keeps_accumulators),
        Mutant("downlink-priced-dense", "the sparse reply is priced as a dense vector",
               reply=lambda alg, real, s, k: (real(s, k)[0], DENSE)),
        mispriced("up", DENSE, "uplink-priced-dense", "the sparse uplink is priced as dense"),
    )

    def event_replies(self, update: Update) -> list[tuple[int | None, Any, str]]:
        """A resync's dense broadcast of ``θ``, and ``S_k`` to every worker served."""
        out: list[tuple[int | None, Any, str]] = []
        if _resynced(self, update):
            out.append((None, update.after.theta, "dense"))
        out += [(int(j), _reply(self, update, j)[1], "sparsify_down")
                for j in update.dispatched]
        return out

    def prepare(self, d: int) -> None:
        """Build the uplink and downlink layer-wise sparsifiers for dimension ``d``."""
        groups = partition(self.layers, d)
        self.sparsify_up = PartitionTopK(groups, self.rho_up)
        self.sparsify_down = PartitionTopK(groups, self.rho_down)

    @property
    def up_codec(self) -> Compressor:
        return self.sparsify_up

    def start_workers(self, theta0: Any, workers: int, initial_gradients: Any) -> tuple:
        xp = namespace(theta0)
        return DGSWorkers(xp.zeros((workers, theta0.shape[0]), like=theta0)), None

    def start_server(self, theta0: Any, workers: int, initial_mean: Any) -> DGSServer:
        xp = namespace(theta0)
        return DGSServer(theta=xp.copy(theta0), theta_sync=xp.copy(theta0),
                         accumulated=xp.zeros((workers, theta0.shape[0]), like=theta0),
                         versions=0)

    def worker(self, w: DGSWorkers, gradients: Any, model: Any, rng: Any) -> Any:
        xp = namespace(gradients)
        if self.weight_decay:
            gradients = gradients + self.weight_decay * model
        u = self.momentum * w.momentum + self.alpha * gradients
        sent = xp.compress(self.sparsify_up, u, None)
        w.momentum = xp.where(sent != 0, u, u / self.momentum)
        return sent

    def server(self, s: DGSServer, up_mean: Any) -> Any:
        s.theta = s.theta - up_mean
        s.versions += 1
        return None

    def receive(self, w: DGSWorkers, model: Any, down: Any) -> Any:
        return model + down

    def server_event(self, s: DGSServer, worker: int, up: Any) -> tuple | None:
        """``θ ← θ − P``; every ``R`` versions a resync: ``θ_sync ← θ``, ``A ← 0``, and the
        broadcast of ``θ``, densely."""
        self.server(s, up)
        if self.resync is None or s.versions % self.resync:
            return None
        xp = namespace(s.theta)
        s.theta_sync = xp.copy(s.theta)
        s.accumulated = xp.zeros_like(s.accumulated)
        return s.theta, DENSE

    def reply(self, s: DGSServer, worker: int) -> tuple[Any, Compressor]:
        """``S_k`` = layer-wise top-ρ_down of ``(θ − θ_sync) − A_k``; ``A_k ← A_k + S_k``."""
        xp = namespace(s.theta)
        difference = (s.theta - s.theta_sync) - s.accumulated[worker]
        sent = xp.compress(self.sparsify_down, difference, None)
        s.accumulated[worker] = s.accumulated[worker] + sent
        return sent, self.sparsify_down

    def receive_reply(self, w: DGSWorkers, model: Any, down: Any) -> Any:
        return model + down

    def diagnostics(self, s: DGSServer, w: DGSWorkers, gradients: Any) -> tuple[float, ...]:
        """``(1/W)Σ‖u_k‖²`` and ``(1/W)Σ‖A_k‖²``."""
        xp = namespace(w.momentum)
        return xp.mean_square_norm(w.momentum), xp.mean_square_norm(s.accumulated)
