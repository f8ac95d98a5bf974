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
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import numpy as np

from convcheck.compressors import Compressor, LayerTopK, PartitionTopK, RandK, Threshold, TopK
from convcheck.errors import InputError

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


def expected_count(ratio: float | None, k: int | None, d: int) -> int:
    """The count a top-k or rand-k keeps out of ``d`` by its specification, computed here
    from the decimal value of ``ratio`` (``max(1, ⌊ratio·d⌋)``) or ``min(k, d)``, apart from
    the compressor's own ``k_for``."""
    if ratio is None:
        return min(int(k), d)
    return max(1, int((Decimal(repr(float(ratio))) * d).to_integral_value(ROUND_FLOOR)))


def _top_k_blocks(compressor: Compressor, d: int) -> list[tuple[np.ndarray, int, bool]]:
    """``(columns, k, ties by index)`` of each block a top-k selects in (one for top-k; a
    layer or a group for the layer-wise ones); ``k`` from the specification, not from the
    compressor (:func:`expected_count`)."""
    if isinstance(compressor, TopK):
        return [(np.arange(d), expected_count(compressor.ratio, compressor.k, d), True)]
    layers = compressor if isinstance(compressor, LayerTopK) else compressor.layers
    order = np.arange(d) if isinstance(compressor, LayerTopK) else compressor.order
    bounds = np.cumsum([0, *layers.layer_sizes])
    return [(order[a:b], expected_count(layers.ratio, k, b - a), isinstance(compressor, LayerTopK))
            for a, b, k in zip(bounds[:-1], bounds[1:], layers.k, strict=True)]


def _tie_violations(kept: np.ndarray, lost: np.ndarray, smallest: np.ndarray) -> int:
    """Rows where an entry dropped at the cutoff magnitude has a lower index than one kept at
    it (the rule keeps the lowest indices among ties)."""
    position = np.arange(kept.shape[1])
    kept_tie = (kept != 0) & (np.abs(kept) == smallest[:, None])
    lost_tie = (lost != 0) & (np.abs(lost) == smallest[:, None])
    last_kept = np.where(kept_tie, position, -1).max(axis=1)
    first_lost = np.where(lost_tie, position, kept.shape[1]).min(axis=1)
    return int(np.count_nonzero(first_lost < last_kept))


def compression_error(compressor: Compressor, sent: np.ndarray,
                      dropped: np.ndarray) -> tuple[float, float]:
    """How far ``sent`` (kept) and ``dropped`` (the rest of the compressor's input) are from
    the compressor's rule, row by row. Top-k (per layer or group for the layer-wise ones):
    exactly ``min(k, nnz)`` entries kept with ``k`` from the specification
    (:func:`expected_count`), none dropped larger than a kept one, and among entries tied at
    the cutoff the lowest indices kept. Unscaled rand-k: what it keeps is kept whole (nothing
    dropped there), ``k`` entries of an input without zeros, never more; scaled rand-k: the
    count alone. Other deterministic contractive compressors: ``‖dropped‖² ≤ (1 − δ)‖sent +
    dropped‖²``. Returns ``(violation, scale)``."""
    d = sent.shape[1]
    if isinstance(compressor, (TopK, LayerTopK, PartitionTopK)):
        violation = 0.0
        for columns, k, by_index in _top_k_blocks(compressor, d):
            kept, lost = sent[:, columns], dropped[:, columns]
            nnz_in = np.count_nonzero((kept != 0) | (lost != 0), axis=1)
            count = np.count_nonzero(kept, axis=1)
            violation += float(np.abs(count - np.minimum(k, nnz_in)).sum())
            smallest = np.where(kept != 0, np.abs(kept), np.inf).min(axis=1)
            largest = np.abs(lost).max(axis=1)
            violation += float(np.maximum(largest - smallest, 0.0).sum())
            if by_index:
                violation += _tie_violations(kept, lost, smallest)
        return violation, 0.0
    if isinstance(compressor, RandK):
        k = expected_count(compressor.ratio, compressor.k, d)
        count = np.count_nonzero(sent, axis=1)
        dense_input = np.count_nonzero(sent + dropped, axis=1) == d
        violation = float(np.count_nonzero((count > k) | (dense_input & (count != k))))
        if not compressor.scaled:
            violation += float(np.count_nonzero((sent != 0) & (dropped != 0)))
        return violation, 0.0
    if compressor.guarantee == "contractive" and not compressor.randomized:
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
                     "min(k, nnz) entries, none dropped larger than a kept one, ties to the "
                     "lowest index; else ‖C(x) − x‖² ≤ (1 − δ)‖x‖²)", check)


#: Every synchronous algorithm: the workers compute at the server's model (they apply the
#: broadcast exactly as the server applied its step).
SAME_MODEL = Invariant(
    "workers-hold-the-server-model", "the model the workers compute at next equals θ⁺",
    lambda alg, r: (norm(np.asarray(r.after.model) - r.after.server.theta), 0.0), exact=True)


def _mean_square_rows(rows: np.ndarray) -> float:
    return float(np.mean([row @ row for row in np.asarray(rows)]))


def _square(vector: np.ndarray) -> float:
    flat = np.ravel(vector)
    return float(flat @ flat)


#: Trace columns that bounds read (EF21's ``G``, the error memories), each defined here from
#: the states of the round that follows the row: row ``k`` from round ``k + 1``, whose
#: ``before`` holds the states at ``θ^k`` and whose gradients are taken at ``θ^k``
#: (deterministic runs). The algorithms compute them in their own ``diagnostics``; the monitor
#: recomputes them from the states alone.
TRACE_QUANTITIES: dict[str, Callable[[Round], float]] = {
    "error_norm_sq": lambda r: _mean_square_rows(r.before.workers.errors),
    "server_error_norm_sq": lambda r: _square(r.before.server.server_error),
    # EF21's G^k = (1/M) Σ_m ‖g_m^k − ∇f_m(θ^k)‖², g_m^k formed in round k + 1
    "ef21_G": lambda r: _mean_square_rows(r.after.workers.estimates - r.gradients),
    "downlink_error_sq": lambda r: _square(r.before.server.b - r.before.server.estimate),
}


class _Tally:
    """What both monitors record: per identity the worst ``error/scale`` and the first
    failure, and the first wire problem (a message that does not decode, a mispriced count)."""

    worst: dict[str, tuple[float, int]]
    failures: dict[str, tuple[int, float, float]]
    rtol: float
    wire_problem: tuple[int, str] | None

    def _tally(self, invariant: Invariant | EventInvariant, error: float, scale: float,
               k: int) -> float:
        """Record one evaluation at round (update) ``k``; its ``error/scale`` for a round-off
        identity (0 for an exact one)."""
        relative = error if invariant.exact else error / scale if scale > 0 else error
        if relative > self.worst.get(invariant.name, (-1.0, 0))[0]:
            self.worst[invariant.name] = (relative, k)
        if not invariant.holds(error, scale, self.rtol) and invariant.name not in self.failures:
            self.failures[invariant.name] = (k, error, scale)
        return 0.0 if invariant.exact else relative

    def _wire(self, k: int, problem: str, where: str = "") -> None:
        """Keep the first wire problem (``""``: none)."""
        if problem and self.wire_problem is None:
            self.wire_problem = (k, f"{where}: {problem}" if where else problem)

    def _sweep(self, algorithm: Any, theta: Any) -> None:
        """:func:`wire_pricing` at the run's dimension, once at the start (round 0)."""
        self._wire(0, wire_pricing(algorithm, np.shape(theta)[-1]))


@dataclass
class InvariantMonitor(_Tally):
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
    wire_problem: tuple[int, str] | None = None
    traced: dict[str, list[float]] = field(default_factory=dict)
    _before: Any = None

    def start(self, states: Any) -> None:
        """Snapshot the states at ``θ⁰`` (before the first round) and sweep the prices of the
        specification's codecs (:func:`wire_pricing`)."""
        self._before = _snapshot(states)
        self._sweep(self.algorithm, states.server.theta)

    def __call__(self, k: int, states: Any, wire: Any, gradients: np.ndarray) -> None:
        if self.nonfinite is not None:
            return
        if not np.all(np.isfinite(states.server.theta)):
            self.nonfinite = k
            return
        after = _snapshot(states)
        down = wire.down[0][0] if wire.down else None
        record = Round(self._before, after, gradients, wire.up, down)
        *bits, problem = wire_bits(self.algorithm, wire.up, down, gradients.shape[0],
                                   decoded_at(k))
        self.bits.append(tuple(bits))
        self._wire(k, problem, f"round {k}")
        largest = 0.0
        for invariant in self.invariants():
            error, scale = invariant.check(self.algorithm, record)
            largest = max(largest, self._tally(invariant, error, scale, k))
        self.history.append(largest)
        self.rounds += 1
        self._before = after
        if getattr(self.algorithm, "batch_size", None) is None:
            for name in self.algorithm.diagnostic_names:
                if name in TRACE_QUANTITIES:
                    self.traced.setdefault(name, []).append(TRACE_QUANTITIES[name](record))

    def trace_mismatch(self, run: Any, rtol: float = 1e-9) -> str | None:
        """The first trace row whose diagnostic columns of :data:`TRACE_QUANTITIES` differ
        from the values recomputed from the states (relative ``rtol``), or None."""
        for name, values in self.traced.items():
            recorded = np.asarray(run.columns[name][:len(values)], dtype=float)
            mine = np.asarray(values[:recorded.size])
            off = np.abs(recorded - mine) > rtol * np.maximum(np.abs(recorded), np.abs(mine))
            off &= np.isfinite(mine)
            if off.any():
                k = int(np.argmax(off))
                return (f"trace column {name} at row {k}: recorded {recorded[k]!r}, from the "
                        f"states {mine[k]!r}")
        return None

    def invariants(self) -> tuple[Invariant, ...]:
        """The algorithm's declared invariants and :data:`SAME_MODEL`."""
        return (*self.algorithm.invariants, SAME_MODEL)

    def ledger_mismatch(self, ledger: Any) -> tuple[int, str] | None:
        """The first round whose ledger row differs from the messages encoded with the
        specification's codecs (see :func:`wire_bits`), or whose messages do not decode back,
        or a codec whose prices disagree with its encodings (round 0); None when all agree."""
        if self.wire_problem is not None:
            return self.wire_problem
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


#: The monitors decode every message of the first rounds (updates), then those of every
#: :data:`DECODE_EVERY`-th: decoding costs as much as encoding, which every message gets.
DECODE_FIRST = 64
DECODE_EVERY = 8


def decoded_at(k: int) -> bool:
    """Whether the monitors decode the messages of round (update) ``k``."""
    return k <= DECODE_FIRST or k % DECODE_EVERY == 0


def encoded_bits(codec: Compressor, row: np.ndarray, decode: bool = True) -> tuple[int, str]:
    """The length of the message that encodes ``row`` with ``codec`` (a real bit string), and
    (``decode``) what differs when it does not decode back to ``row`` at the wire precision
    (``""``: it does). At 32 bits the values may move by float32 rounding, nothing else: an
    entry decoded at another index, a lost or invented entry, a wrong value all count."""
    message = codec.encode(row)
    if not decode:
        return message.nbits, ""
    try:
        back = codec.decode(message)
    except InputError as error:
        return message.nbits, (f"a {type(codec).__name__} message of {row.shape[0]} entries "
                               f"does not decode: {error}")
    if codec.value_bits == 32:
        expected, tolerance = row.astype(np.float32).astype(np.float64), 2.0**-21
    else:
        expected, tolerance = row, 2.0**-48
    wrong = np.flatnonzero(np.abs(back - expected) > tolerance * np.abs(expected))
    if wrong.size == 0:
        return message.nbits, ""
    i = int(wrong[0])
    return message.nbits, (f"a {type(codec).__name__} message of {row.shape[0]} entries decodes "
                           f"to {back[i]!r} at index {i} instead of {expected[i]!r} "
                           f"({wrong.size} entries differ)")


#: Codecs whose price depends on the message's support (swept by :func:`pricing_mismatch`).
SPARSE_CODECS = (TopK, RandK, Threshold, LayerTopK, PartitionTopK)
#: :func:`pricing_mismatch` prices every count up to this dimension, else a sample of counts.
SWEEP_ALL_UP_TO = 1024


def pricing_mismatch(codec: Compressor, d: int) -> str:
    """Whether ``codec``'s prices (the vectorized ``price_rows`` a transport uses for the
    uplink, the scalar ``price`` for a broadcast) equal the length of the real message, for
    messages of dimension ``d`` with every number of nonzeros (all counts up to
    :data:`SWEEP_ALL_UP_TO`, else 257 counts over ``0..d`` and those around the switch from
    an index list to a bitmap). ``""`` when they agree; sparse codecs only."""
    if not isinstance(codec, SPARSE_CODECS) or d > 1 << 16:
        return ""
    if d <= SWEEP_ALL_UP_TO:
        counts = np.arange(d + 1)
    else:
        switch = -(-d // max(1, (d - 1).bit_length()))
        counts = np.unique(np.clip(np.r_[np.linspace(0, d, 257).astype(int),
                                          np.arange(switch - 3, switch + 4)], 0, d))
    rows = (np.arange(d)[None, :] < counts[:, None]).astype(np.float64)
    vectorized, nonzeros = codec.price_rows(rows)
    for count, row, bits, nnz in zip(counts, rows, vectorized, nonzeros, strict=True):
        length, _ = encoded_bits(codec, row)
        scalar = codec.price(row)
        if not (bits == length == scalar[0] and nnz == count == scalar[1]):
            return (f"{codec.describe()['name']} prices a message of {count} nonzeros out of "
                    f"{d} at {int(bits)} bits (rows) and {scalar[0]} (one vector), its real "
                    f"encoding has {length}")
    return ""


def wire_bits(algorithm: Any, up: np.ndarray | None, down: np.ndarray | None,
              workers: int, decode: bool = True) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-worker bits of one round's messages, each ENCODED (a real bit string) with the codec
    of the algorithm's specification (``wire_format``), independently of the codecs the
    transport priced them with, and (``decode``) what differs when a message does not decode
    back to what was sent (``""``: every one does; see :func:`encoded_bits`)."""
    up_form, down_form = algorithm.wire_format
    bits_up = np.zeros(workers, dtype=np.int64)
    bits_down = np.zeros(workers, dtype=np.int64)
    problems = []
    if up is not None:
        codec = codec_named(algorithm, up_form)
        for m, row in enumerate(up):
            bits_up[m], problem = encoded_bits(codec, row, decode)
            problems.append(problem)
    if down is not None:
        bits_down[:], problem = encoded_bits(codec_named(algorithm, down_form), down, decode)
        problems.append(problem)
    return bits_up, bits_down, next((p for p in problems if p), "")


def wire_pricing(algorithm: Any, d: int) -> str:
    """:func:`pricing_mismatch` of the codecs the algorithm's specification names."""
    for form in algorithm.wire_format:
        problem = pricing_mismatch(codec_named(algorithm, form), d)
        if problem:
            return problem
    return ""


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
    expected_gradient : ndarray, shape (d,), optional
        ``∇f`` of the worker's shard at ``model``, computed by the monitor (full gradients).
    """

    worker: int
    gradient: np.ndarray
    model: np.ndarray
    message: np.ndarray
    before: Any
    after: Any
    expected_gradient: np.ndarray | None = None


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


def _own_model_gradient(alg: Any, c: Computation) -> tuple[float, float]:
    if c.expected_gradient is None:  # minibatches, or no objective given: nothing to compare
        return 0.0, 0.0
    return difference(c.gradient, c.expected_gradient)


#: Every asynchronous algorithm with full gradients: a worker's gradient is its shard's, at the
#: model it holds (not the server's current one).
OWN_MODEL_GRADIENT = EventInvariant(
    "gradient-at-own-model", "a full-gradient worker computes ∇f_k at the model it holds",
    _own_model_gradient, on="compute")


@dataclass
class EventMonitor(_Tally):
    """The event engine's observers (``run_async(..., observer=monitor.updated,
    on_compute=monitor.computed)``) checking an asynchronous algorithm's identities
    (``event_invariants``) at every computation and update, and pricing every message with the
    codecs of its specification (``wire_format``; the replies and broadcasts the algorithm's
    ``event_replies`` says it sends). Same reporting attributes as :class:`InvariantMonitor`.
    """

    algorithm: Any
    rtol: float = RTOL
    objective: Any = None
    worst: dict[str, tuple[float, int]] = field(default_factory=dict)
    failures: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    rounds: int = 0
    nonfinite: int | None = None
    wire_problem: tuple[int, str] | None = None
    _rows: dict[int, Any] = field(default_factory=dict)
    _pending: dict[int, list[np.ndarray]] = field(default_factory=dict)
    _server: Any = None
    _up: np.ndarray | None = None
    _down: np.ndarray | None = None
    _largest: float = 0.0

    def invariants(self) -> tuple[EventInvariant, ...]:
        """The algorithm's declared identities and :data:`OWN_MODEL_GRADIENT`."""
        return (*self.algorithm.event_invariants, OWN_MODEL_GRADIENT)

    def _start(self, cluster: Any) -> None:
        from convcheck.engine.rounds import start

        states, _ = start(self.algorithm, np.array(cluster.server.theta), cluster.workers,
                          lambda: None)
        self._rows = {k: _row(states.workers, k) for k in range(cluster.workers)}
        self._server = _copied(cluster.server)
        self._up = np.zeros(cluster.workers, dtype=np.int64)
        self._down = np.zeros(cluster.workers, dtype=np.int64)
        self._sweep(self.algorithm, cluster.server.theta)

    def computed(self, k: int, gradient: np.ndarray, message: np.ndarray, cluster: Any) -> None:
        """``on_compute``: worker ``k`` computed ``message``."""
        if self._server is None:
            self._start(cluster)
        if self.nonfinite is not None:
            return
        after = _row(cluster.workers_state, k)
        model = np.array(cluster.models[k])
        expected = None
        if self.objective is not None and getattr(self.algorithm, "batch_size", None) is None:
            shard = int(cluster.gradients.shard_of[k])
            expected = self.objective.restrict(shard).worker_gradients(model)[0]
        record = Computation(k, np.array(gradient), model, np.array(message), self._rows[k],
                             after, expected)
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
        bits, problem = encoded_bits(codec_named(self.algorithm, self.algorithm.wire_format[0]),
                                     message, decoded_at(t))
        self._up[k] += bits
        self._wire(t, problem, f"update {t}")
        dispatched = np.flatnonzero(cluster.read == cluster.version)
        after = _copied(cluster.server)
        record = Update(t, k, message, self._server, after, np.array(cluster.models),
                        dispatched)
        self._check("update", record, t)
        replies = self.algorithm.event_replies(record)
        if replies is None:  # the algorithm does not say what it sends down
            self._down = None
        for receiver, vector, form in replies or ():
            bits, problem = encoded_bits(codec_named(self.algorithm, form), np.asarray(vector),
                                         decoded_at(t))
            self._wire(t, problem, f"update {t}")
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
            self._largest = max(self._largest, self._tally(invariant, error, scale, k))

    def ledger_mismatch(self, ledger: Any) -> tuple[int, str] | None:
        """Whether the ledger's bits per worker over the run (rows after the first) differ from
        the messages encoded with the specification's codecs, a message does not decode back,
        or a codec's prices disagree with its encodings (None: all agree)."""
        if self.wire_problem is not None:
            return self.wire_problem
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


def monitor_for(algorithm: Any, rtol: float = RTOL,
                objective: Any = None) -> InvariantMonitor | EventMonitor:
    """The monitor of ``algorithm``'s identities on its engine: synchronous rounds, or the
    event engine's computations and updates (given the ``objective``, it also recomputes every
    full gradient at the model the worker holds)."""
    if "async" in algorithm.transports:
        return EventMonitor(algorithm, rtol, objective)
    return InvariantMonitor(algorithm, rtol)
