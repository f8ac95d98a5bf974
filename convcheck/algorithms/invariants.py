"""Identities an algorithm satisfies at every round, in exact arithmetic, checked on real runs.

Each algorithm module declares its invariants (``invariants`` on the class). An invariant reads
one synchronous round — the states before and after, the gradients the workers used and the
messages — and returns ``(error, scale)``: it holds when ``error ≤ rtol·scale`` (identities that
hold only up to round-off), or ``error == 0`` (``exact``: comparisons and copies). Verification
checks every invariant on every round of every run (:class:`InvariantMonitor`), so a bug that
breaks a line of an update rule is caught even where no bound can see it.

The invariants use only the states, the gradients the transport computed and the messages on the
wire: a mutant (:mod:`convcheck.algorithms.mutation`) that changes what the halves compute cannot
change what they are checked against.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convcheck.compressors import Compressor, LayerTopK, PartitionTopK, TopK

#: Relative tolerance of the round-off invariants (float64: a few hundred ulps of the largest
#: quantity involved).
RTOL = 1e-11


@dataclass(frozen=True)
class Round:
    """What one synchronous round did.

    Attributes
    ----------
    before, after : States
        Snapshots of the transport's states (server, workers, model) around the round.
    gradients : ndarray, shape (M, d)
        The gradients the workers' halves received.
    up : ndarray, shape (M, d)
        The uplink rows.
    down : ndarray
        The broadcast.
    """

    before: Any
    after: Any
    gradients: np.ndarray
    up: np.ndarray
    down: np.ndarray


@dataclass(frozen=True)
class Invariant:
    """One identity of an algorithm.

    Attributes
    ----------
    name : str
    statement : str
        The identity, in symbols.
    check : callable
        ``check(algorithm, round) -> (error, scale)``.
    exact : bool
        Holds bit for bit (``error == 0``), else to ``RTOL·scale``.
    """

    name: str
    statement: str
    check: Callable[[Any, Round], tuple[float, float]]
    exact: bool = False

    def holds(self, error: float, scale: float, rtol: float = RTOL) -> bool:
        return error == 0.0 if self.exact else error <= rtol * scale


def norm(x: np.ndarray | float) -> float:
    """The Euclidean norm of all entries."""
    flat = np.ravel(x)
    return float(np.sqrt(flat @ flat))


def difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(‖a − b‖, ‖a‖ + ‖b‖)``: ``a = b`` to round-off."""
    return norm(a - b), norm(a) + norm(b)


def magnitude(rows: np.ndarray) -> float:
    """``(1/M) Σ_m ‖x_m‖``: the size of the terms of a mean over rows (a mean of large rows
    that nearly cancel carries their round-off, not its own size)."""
    return float(np.mean(np.sqrt(np.einsum("ij,ij->i", rows, rows))))


def mean_of_rows(value: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
    """``value = (1/M) Σ_m x_m`` to round-off: the error and the terms' size."""
    return norm(value - rows.mean(axis=0)), norm(value) + magnitude(rows)


def step_of_gd(alpha_of: Callable[[Any], float], memory: Callable[[Any], np.ndarray],
               name: str, statement: str) -> Invariant:
    """The virtual iterate ``x̃ = θ − memory`` moves like gradient descent on the gradients the
    workers used: ``x̃⁺ = x̃ − α (1/M) Σ_m g_m``."""

    def check(alg: Any, r: Round) -> tuple[float, float]:
        before = r.before.server.theta - memory(r.before)
        after = r.after.server.theta - memory(r.after)
        expected = before - alpha_of(alg) * r.gradients.mean(axis=0)
        return norm(after - expected), norm(before) + norm(after) + norm(expected)

    return Invariant(name, statement, check)


def compression_error(compressor: Compressor, sent: np.ndarray,
                      dropped: np.ndarray) -> tuple[float, float]:
    """How far ``sent`` (kept) and ``dropped`` (the rest of the compressor's input) are from
    the compressor's rule, row by row: for top-k (per layer for the layer-wise ones), exactly
    ``min(k, nnz)`` entries kept and none dropped larger than a kept one; for other contractive
    compressors, ``‖dropped‖² ≤ (1 − δ)‖sent + dropped‖²``. Returns ``(violation, scale)``."""
    if isinstance(compressor, (TopK, LayerTopK, PartitionTopK)):
        if isinstance(compressor, TopK):
            blocks = [(np.arange(sent.shape[1]), compressor.k_for(sent.shape[1]))]
        else:
            layers = compressor if isinstance(compressor, LayerTopK) else compressor.layers
            order = (np.arange(sent.shape[1]) if isinstance(compressor, LayerTopK)
                     else compressor.order)
            bounds = np.cumsum([0, *layers.layer_sizes])
            blocks = [(order[a:b], k) for a, b, k in zip(bounds[:-1], bounds[1:], layers.k,
                                                          strict=True)]
        violation = 0.0
        for columns, k in blocks:
            kept, lost = sent[:, columns], dropped[:, columns]
            nnz_in = np.count_nonzero((kept != 0) | (lost != 0), axis=1)
            count = np.count_nonzero(kept, axis=1)
            violation += float(np.abs(count - np.minimum(k, nnz_in)).sum())
            smallest = np.where(kept != 0, np.abs(kept), np.inf).min(axis=1)
            largest = np.abs(lost).max(axis=1)
            violation += float(np.maximum(largest - smallest, 0.0).sum())
        return violation, 0.0
    if compressor.guarantee == "contractive" and not compressor.randomized:
        d = sent.shape[1]
        whole = np.einsum("ij,ij->i", sent + dropped, sent + dropped)
        lost = np.einsum("ij,ij->i", dropped, dropped)
        excess = np.maximum(lost - (1 - compressor.delta(d)) * whole, 0.0)
        return float(excess.sum()), float(whole.sum())
    return 0.0, 1.0


def compression_rule(name: str, compressor_of: Callable[[Any], Compressor],
                     kept: Callable[[Any, Round], np.ndarray],
                     dropped: Callable[[Any, Round], np.ndarray]) -> Invariant:
    """The compressor's rule on what a half kept and dropped (see :func:`compression_error`)."""

    def check(alg: Any, r: Round) -> tuple[float, float]:
        return compression_error(compressor_of(alg), kept(alg, r), dropped(alg, r))

    return Invariant(name, "what is sent is what the compressor's rule keeps (top-k: exactly "
                     "min(k, nnz) entries, none dropped larger than a kept one; else "
                     "‖C(x) − x‖² ≤ (1 − δ)‖x‖²)", check)


#: Every synchronous algorithm: the workers compute at the server's model (they apply the
#: broadcast exactly as the server applied its step).
SAME_MODEL = Invariant(
    "workers-hold-the-server-model", "the model the workers compute at next equals θ⁺",
    lambda alg, r: (norm(np.asarray(r.after.model) - r.after.server.theta), 0.0), exact=True)


@dataclass
class InvariantMonitor:
    """An engine observer (``run(..., observer=monitor)``) checking every invariant of the
    algorithm on every round.

    Attributes
    ----------
    algorithm : Algorithm
    rtol : float
        Relative tolerance of the round-off invariants (default :data:`RTOL`).
    worst : dict
        Per invariant, the largest ``error/scale`` (or the error, for exact ones) and its round.
    failures : dict
        Per invariant, the first round where it did not hold, with the error and the scale.
    history : list of float
        Per round, the largest ``error/scale`` over the round-off invariants (for plots).
    rounds : int
        Rounds checked.
    nonfinite : int or None
        The first round whose model is not finite (rounds from there on are not checked: an
        identity between infinities or NaNs says nothing).
    """

    algorithm: Any
    rtol: float = RTOL
    worst: dict[str, tuple[float, int]] = field(default_factory=dict)
    failures: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    rounds: int = 0
    nonfinite: int | None = None
    bits: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _before: Any = None

    def start(self, states: Any) -> None:
        """Snapshot the states at ``θ⁰`` (before the first round)."""
        self._before = _snapshot(states)

    def __call__(self, k: int, states: Any, wire: Any, gradients: np.ndarray) -> None:
        if self.nonfinite is not None:
            return
        if not np.all(np.isfinite(states.server.theta)):
            self.nonfinite = k
            return
        after = _snapshot(states)
        down = wire.down[0][0] if wire.down else None
        record = Round(self._before, after, gradients, wire.up, down)
        self.bits.append(wire_bits(self.algorithm, wire.up, down, gradients.shape[0]))
        largest = 0.0
        for invariant in self.invariants():
            error, scale = invariant.check(self.algorithm, record)
            relative = error if invariant.exact else error / scale if scale > 0 else error
            if not invariant.exact:
                largest = max(largest, relative)
            if relative > self.worst.get(invariant.name, (-1.0, 0))[0]:
                self.worst[invariant.name] = (relative, k)
            if not invariant.holds(error, scale, self.rtol) and invariant.name not in self.failures:
                self.failures[invariant.name] = (k, error, scale)
        self.history.append(largest)
        self.rounds += 1
        self._before = after

    def invariants(self) -> tuple[Invariant, ...]:
        """The algorithm's declared invariants and :data:`SAME_MODEL`."""
        return (*self.algorithm.invariants, SAME_MODEL)

    def ledger_mismatch(self, ledger: Any) -> tuple[int, str] | None:
        """The first round whose ledger row differs from the messages encoded with the
        specification's codecs (see :func:`wire_bits`), or None."""
        for k, (up, down) in enumerate(self.bits, start=1):
            if k >= len(ledger.up):
                break
            for side, mine, theirs in (("uplink", up, ledger.up[k]),
                                       ("downlink", down, ledger.down[k])):
                if not np.array_equal(mine, theirs):
                    return k, (f"{side} bits of round {k}: ledger {theirs.tolist()}, real "
                               f"encodings {mine.tolist()}")
        return None


def _snapshot(states: Any) -> Any:
    """A copy of the states that the next round cannot change (the halves rebind fields)."""
    return type(states)(copy.copy(states.server), copy.copy(states.workers), states.model,
                        states.held)


def codec_named(algorithm: Any, form: str) -> Compressor:
    """The codec a wire format names: ``"dense"``, ``"sparse"``, or the name of one of the
    algorithm's compressor parameters (``"compressor"``, ``"up"``, ``"down"``)."""
    from convcheck.algorithms.base import DENSE, SPARSE

    return {"dense": DENSE, "sparse": SPARSE}.get(form) or getattr(algorithm, form)


def wire_bits(algorithm: Any, up: np.ndarray | None, down: np.ndarray | None,
              workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-worker bits of one round's messages, each ENCODED (a real bit string) with the codec
    of the algorithm's specification (``wire_format``), independently of the codecs the
    transport priced them with."""
    up_form, down_form = algorithm.wire_format
    bits_up = np.zeros(workers, dtype=np.int64)
    bits_down = np.zeros(workers, dtype=np.int64)
    if up is not None:
        codec = codec_named(algorithm, up_form)
        bits_up[:] = [codec.encode(row).nbits for row in up]
    if down is not None:
        bits_down[:] = codec_named(algorithm, down_form).encode(down).nbits
    return bits_up, bits_down


@dataclass(frozen=True)
class Reduction:
    """A special case of an algorithm that is another algorithm exactly (in exact arithmetic):
    run beside a case, the two must agree iterate by iterate (to round-off).

    Attributes
    ----------
    name : str
    statement : str
    special : callable
        ``special(algorithm, d) -> (overrides, reference, reference_params)``: parameters that
        make the special case, and the algorithm (registry name and parameters, ``alpha``
        included) it then equals.
    """

    name: str
    statement: str
    special: Callable[[Any, int], tuple[dict[str, Any], str, dict[str, Any]]]


# ---------------------------------------------------------------------------------------------
# Asynchronous runs (the event engine)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Computation:
    """One worker computation of the event engine.

    Attributes
    ----------
    worker : int
    gradient : ndarray, shape (d,)
        The gradient the worker's half received.
    model : ndarray, shape (d,)
        The model it was computed at.
    message : ndarray, shape (d,)
        What the worker sent.
    before, after : worker state
        The worker's rows (one row) before and after the computation.
    """

    worker: int
    gradient: np.ndarray
    model: np.ndarray
    message: np.ndarray
    before: Any
    after: Any


@dataclass(frozen=True)
class Update:
    """One server update of the event engine.

    Attributes
    ----------
    t : int
    worker : int
        The sender of the applied message.
    message : ndarray
        The applied message.
    before, after : server state
        The server's state around the update (replies and broadcasts included).
    models : ndarray, shape (W, d)
        The workers' models after the update.
    dispatched : ndarray of int
        The workers that read this version (they received a reply at this update).
    """

    t: int
    worker: int
    message: np.ndarray
    before: Any
    after: Any
    models: np.ndarray
    dispatched: np.ndarray


@dataclass(frozen=True)
class EventInvariant:
    """An identity of an asynchronous algorithm: of every worker computation
    (``on = "compute"``, ``check(algorithm, Computation)``) or of every server update
    (``on = "update"``, ``check(algorithm, Update)``); returns ``(error, scale)`` as
    :class:`Invariant` does."""

    name: str
    statement: str
    check: Callable[[Any, Any], tuple[float, float]]
    on: str = "update"
    exact: bool = False

    def holds(self, error: float, scale: float, rtol: float = RTOL) -> bool:
        return error == 0.0 if self.exact else error <= rtol * scale


@dataclass
class EventMonitor:
    """The event engine's observers (``run_async(..., observer=monitor.updated,
    on_compute=monitor.computed)``) checking an asynchronous algorithm's identities
    (``event_invariants``) at every computation and update, and pricing every message with the
    codecs of its specification (``wire_format``; the replies and broadcasts the algorithm's
    ``event_replies`` says it sends). Same reporting attributes as :class:`InvariantMonitor`.
    """

    algorithm: Any
    rtol: float = RTOL
    worst: dict[str, tuple[float, int]] = field(default_factory=dict)
    failures: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    rounds: int = 0
    nonfinite: int | None = None
    _rows: dict[int, Any] = field(default_factory=dict)
    _pending: dict[int, list[np.ndarray]] = field(default_factory=dict)
    _server: Any = None
    _up: np.ndarray | None = None
    _down: np.ndarray | None = None
    _largest: float = 0.0

    def invariants(self) -> tuple[EventInvariant, ...]:
        return tuple(self.algorithm.event_invariants)

    def _start(self, cluster: Any) -> None:
        from convcheck.engine.rounds import start

        states, _ = start(self.algorithm, np.array(cluster.server.theta), cluster.workers,
                          lambda: None)
        self._rows = {k: _row(states.workers, k) for k in range(cluster.workers)}
        self._server = _copied(cluster.server)
        self._up = np.zeros(cluster.workers, dtype=np.int64)
        self._down = np.zeros(cluster.workers, dtype=np.int64)

    def computed(self, k: int, gradient: np.ndarray, message: np.ndarray, cluster: Any) -> None:
        """``on_compute``: worker ``k`` computed ``message``."""
        if self._server is None:
            self._start(cluster)
        if self.nonfinite is not None:
            return
        after = _row(cluster.workers_state, k)
        record = Computation(k, np.array(gradient), np.array(cluster.models[k]),
                             np.array(message), self._rows[k], after)
        self._check("compute", record, self.rounds + 1)
        self._rows[k] = after
        self._pending.setdefault(k, []).append(record.message)

    def updated(self, t: int, cluster: Any, event: dict) -> None:
        """``observer``: the server applied the message of ``event["worker"]``."""
        if self.nonfinite is not None:
            return
        if not np.all(np.isfinite(cluster.server.theta)):
            self.nonfinite = t
            return
        k = event["worker"]
        message = self._pending[k].pop(0)  # the worker has already computed its next one
        self._up[k] += codec_named(self.algorithm, self.algorithm.wire_format[0]).encode(
            message).nbits
        dispatched = np.flatnonzero(cluster.read == cluster.version)
        after = _copied(cluster.server)
        record = Update(t, k, message, self._server, after, np.array(cluster.models),
                        dispatched)
        self._check("update", record, t)
        replies = self.algorithm.event_replies(record)
        if replies is None:  # the algorithm does not say what it sends down
            self._down = None
        for receiver, vector, form in replies or ():
            bits = codec_named(self.algorithm, form).encode(np.asarray(vector)).nbits
            if self._down is not None and receiver is None:
                self._down += bits
            elif self._down is not None:
                self._down[receiver] += bits
        self.history.append(self._largest)
        self._largest = 0.0
        self.rounds += 1
        self._server = after

    def _check(self, on: str, record: Any, k: int) -> None:
        for invariant in self.invariants():
            if invariant.on != on:
                continue
            error, scale = invariant.check(self.algorithm, record)
            relative = error if invariant.exact else error / scale if scale > 0 else error
            if not invariant.exact:
                self._largest = max(self._largest, relative)
            if relative > self.worst.get(invariant.name, (-1.0, 0))[0]:
                self.worst[invariant.name] = (relative, k)
            if not invariant.holds(error, scale, self.rtol) and invariant.name not in self.failures:
                self.failures[invariant.name] = (k, error, scale)

    def ledger_mismatch(self, ledger: Any) -> tuple[int, str] | None:
        """Whether the ledger's bits per worker over the run (rows after the first) differ from
        the messages encoded with the specification's codecs (None: they agree)."""
        if self._up is None or self.nonfinite is not None:
            return None
        for side, mine, rows in (("uplink", self._up, ledger.up), ("downlink", self._down,
                                                                   ledger.down)):
            if mine is None:
                continue
            theirs = np.asarray(rows[1:]).sum(axis=0)
            if not np.array_equal(mine, theirs):
                return self.rounds, (f"{side} bits over the run: ledger {theirs.tolist()}, "
                                     f"real encodings {mine.tolist()}")
        return None


def _copied(state: Any) -> Any:
    """A copy of a state dataclass whose arrays are copies (halves may write into them)."""
    return type(state)(**{f: np.array(v) if isinstance(v, np.ndarray) else v
                          for f, v in vars(state).items()})


def _row(state: Any, k: int) -> Any:
    """A copy of worker ``k``'s rows of ``state`` (one row each)."""
    from convcheck.algorithms.base import take_rows

    part = take_rows(state, slice(k, k + 1))
    return type(part)(**{f: np.array(getattr(part, f)) for f in part.__dataclass_fields__})


def monitor_for(algorithm: Any, rtol: float = RTOL) -> InvariantMonitor | EventMonitor:
    """The monitor of ``algorithm``'s identities on its engine: synchronous rounds, or the
    event engine's computations and updates."""
    if "async" in algorithm.transports:
        return EventMonitor(algorithm, rtol)
    return InvariantMonitor(algorithm, rtol)
