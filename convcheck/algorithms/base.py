"""What every algorithm is: validated parameters, a worker half, a server half, and their states.

An algorithm is written once, over the array namespace of :mod:`convcheck.arrays`, and run by
every transport: the synchronous rounds of :mod:`convcheck.engine.sync` (numpy) and of the torch
simulator, the per-worker reference loop of the benchmark, the event engine
(:mod:`convcheck.engine.events`) for algorithms with an asynchronous rule, and the
torch.distributed backends. A transport owns the workers' copies of the model, computes the
gradients, moves and prices the messages; the algorithm owns the arithmetic:

* ``start_workers(θ⁰, M, initial_gradients)`` → ``(W, up⁰)``: the workers' state (rows: one per
  worker) and an optional initial uplink (EF21's dense gradients);
* ``start_server(θ⁰, M, mean(up⁰))`` → ``S``: the server's state, with the model ``S.theta``;
* ``worker(W, G, model, rng)`` → the uplink rows, from the gradients ``G`` ``(M, d)`` at the
  workers' model;
* ``server(S, mean(up))`` → the downlink (a broadcast; the server steps ``S.theta``);
* ``receive(W, model, down)`` → the workers' new model.

One synchronous round is ``up = worker(…)``, ``down = server(S, mean_rows(up))``,
``model = receive(W, model, down)`` (:func:`convcheck.engine.rounds.sync_round`). The halves
rebind the fields of their states to new arrays and never write into an array they were given,
so a transport may share one array between the server and the workers.

Algorithms that can also run asynchronously (``"async" in transports``) have only per-worker
fields in their worker state and an asynchronous rule: :meth:`Algorithm.server_event` applies one
worker's message at once, :meth:`Algorithm.reply` is what the server sends that worker so it can
compute again (by default its model, densely) and :meth:`Algorithm.receive_reply` what the
worker does with it.
"""

from __future__ import annotations

import abc
import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from convcheck.compressors import Compressor, Identity, Threshold, TopK
from convcheck.described import Described
from convcheck.errors import InputError, check_choice, check_int, check_real

#: Dense float message (a model or a full gradient): ``d·32`` bits.
DENSE = Identity()
#: Sparse message of whatever is nonzero: index list or bitmap plus 32-bit values
#: (:func:`convcheck.encoding.sparse_bits`).
SPARSE = Threshold(0.0)

if TYPE_CHECKING:
    from convcheck.objectives import Constants

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One parameter of an algorithm.

    Attributes
    ----------
    name : str
    description : str
        What it means, in one line (``convcheck run --help``, docs).
    allowed : str
        The allowed values, in words (``"a real number in (0, 1]"``).
    check : callable
        ``check(value) -> value``: the validated (normalized) value; raises
        :class:`~convcheck.errors.InputError` naming the parameter.
    default : Any
        The default; absent for a required parameter.
    batchable : bool
        A real scalar that runs of one batch may differ in
        (:func:`convcheck.engine.batch.run_batch`): the halves use it only in arithmetic, so a
        :class:`~convcheck.arrays.PerRun` of the runs' values can stand for it.
    """

    name: str
    description: str
    allowed: str
    check: Callable[[Any], Any]
    default: Any = _REQUIRED
    batchable: bool = False

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def as_dict(self) -> dict[str, Any]:
        """Name, default, allowed values and description, as plain data."""
        default = None if self.required else self.default
        return {"name": self.name, "default": default, "required": self.required,
                "allowed": self.allowed, "description": self.description}


def step_param(description: str = "step size α > 0 (a number, or 'c/L' with the problem's "
               "L, L_tilde, L_max or mu)") -> Param:
    return Param("alpha", description, "a real number > 0, or 'c/NAME' resolved before",
                 lambda v: check_real("alpha", v, 0.0, low_open=True), batchable=True)


def real_param(name: str, description: str, low: float, high: float, default: Any = _REQUIRED,
               *, low_open: bool = False, high_open: bool = False,
               batchable: bool = False) -> Param:
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    return Param(name, description, f"a real number in {left}{low:g}, {high:g}{right}",
                 lambda v: check_real(name, v, low, high, low_open=low_open,
                                      high_open=high_open), default, batchable)


def flag_param(name: str, description: str, default: bool) -> Param:
    def check(value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(name, value, "true or false")
        return bool(value)

    return Param(name, description, "true or false", check, default)


def choice_param(name: str, description: str, choices: Sequence[str], default: str) -> Param:
    return Param(name, description, "one of " + ", ".join(choices),
                 lambda v: check_choice(name, v, choices), default)


def optional_int_param(name: str, description: str, low: int) -> Param:
    return Param(name, description, f"an integer >= {low}, or none",
                 lambda v: None if v is None else check_int(name, v, low), None)


def ratio_param(name: str, side: str) -> Param:
    """``ratio_<side>``: the kept fraction of a top-k, instead of ``k_<side>``."""
    return Param(name, f"or the kept fraction k/d on the {side}link",
                 "a real number in (0, 1], or none",
                 lambda v: None if v is None else check_real(name, v, 0.0, 1.0, low_open=True),
                 None)


def top_k_from(k: int | None, ratio: float | None, side: str) -> TopK:
    """The top-k of one direction from ``k_<side>`` or ``ratio_<side>`` (exactly one)."""
    if (k is None) == (ratio is None):
        raise InputError(f"k_{side}", k,
                         f"exactly one of k_{side} (int >= 1) or ratio_{side} in (0, 1]")
    return TopK(k=k) if k is not None else TopK(ratio=ratio)


def compressor_param(description: str = "compressor (a name from convcheck list, with its "
                     "own parameters such as k or ratio, or an instance)") -> Param:
    def check(value: Any) -> Compressor:
        if not isinstance(value, Compressor):
            raise InputError("compressor", value, "a convcheck.compressors.Compressor instance")
        return value

    return Param("compressor", description, "a compressor", check, "top-k")


def batch_param() -> Param:
    return optional_int_param(
        "batch_size", "rows per worker per gradient (minibatch); none: full local gradients", 1)


def shared(default: Any = None) -> Any:
    """A worker-state field that is one array for all workers (no worker axis)."""
    return dataclasses.field(default=default, metadata={"shared": True})


def row_fields(state: Any) -> list[str]:
    """The per-worker fields of a worker state (leading axis: workers)."""
    return [f.name for f in dataclasses.fields(state) if not f.metadata.get("shared")]


def take_rows(state: Any, rows: slice) -> Any:
    """A worker state holding the workers ``rows`` of ``state`` (views of its per-worker fields).

    Used with :func:`put_rows` by transports that run one worker at a time.
    """
    values = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    for name in row_fields(state):
        values[name] = values[name][rows]
    return type(state)(**values)


def put_rows(state: Any, rows: slice, part: Any) -> None:
    """Write the per-worker fields of ``part`` (from :func:`take_rows`) back into ``state``."""
    for name in row_fields(state):
        getattr(state, name)[rows] = getattr(part, name)


class Algorithm(Described, abc.ABC):
    """A distributed algorithm: parameters, a worker half and a server half.

    Subclasses declare :attr:`parameters` (validated by ``__init__`` and set as attributes of
    the same names), their state dataclasses and the halves (module notes).

    Attributes
    ----------
    name : str
        Registry name.
    summary : str
        One line for ``convcheck list``.
    parameters : tuple of Param
    transports : frozenset of str
        ``"sync"`` (rounds) and/or ``"async"`` (the event engine).
    diagnostic_names : tuple of str
        The per-iteration quantities :meth:`diagnostics` returns.
    mutants : tuple of Mutant
        Its injected bugs (:mod:`convcheck.algorithms.mutation`).
    invariants : tuple of Invariant
        Identities of every synchronous round (:mod:`convcheck.algorithms.invariants`).
    event_invariants : tuple of EventInvariant
        Identities of every worker computation and server update on the event engine.
    reductions : tuple of Reduction
        Special cases that equal another algorithm exactly.
    wire_format : (str, str)
        How the specification encodes the uplink rows and the broadcast: ``"dense"``,
        ``"sparse"``, or the name of a compressor parameter (``"compressor"``); verification
        encodes every message with these and compares with the transport's ledger.
    batch_axis : bool
        The halves, ``start_workers``, ``start_server`` and :meth:`diagnostics` are
        shape-generic: given a leading run axis (``θ⁰`` ``(R, d)``, gradients ``(R, M, d)``)
        and :class:`~convcheck.arrays.PerRun` values of the ``batchable`` parameters, they run
        ``R`` runs at once (:func:`convcheck.engine.batch.run_batch`; the diagnostics then
        return one value per run). False runs every run alone.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    parameters: ClassVar[tuple[Param, ...]]
    transports: ClassVar[frozenset[str]] = frozenset({"sync"})
    diagnostic_names: ClassVar[tuple[str, ...]] = ()
    mutants: ClassVar[tuple[Any, ...]] = ()
    invariants: ClassVar[tuple[Any, ...]] = ()
    event_invariants: ClassVar[tuple[Any, ...]] = ()
    reductions: ClassVar[tuple[Any, ...]] = ()
    wire_format: ClassVar[tuple[str, str]] = ("sparse", "dense")
    batch_axis: ClassVar[bool] = False

    def __init__(self, *args: Any, **values: Any) -> None:
        """Parameters by name, or by position in the order of :attr:`parameters`."""
        known = {p.name: p for p in self.parameters}
        if len(args) > len(self.parameters):
            raise InputError("parameters", args, f"at most {len(self.parameters)} positional "
                             f"values for {self.name}: " + ", ".join(known))
        for param, value in zip(self.parameters, args, strict=False):
            if param.name in values:
                raise InputError(param.name, value, "one value (given by position and by name)")
            values[param.name] = value
        for key, value in values.items():
            if key not in known:
                allowed = f"a parameter of {self.name}: " + ", ".join(known)
                raise InputError(key, value, allowed)
        for param in self.parameters:
            if param.name in values:
                value = param.check(values[param.name])
            elif param.required:
                raise InputError(param.name, None, param.allowed + " (required)")
            else:
                value = param.default
            setattr(self, param.name, value)
        self.validate()

    def validate(self) -> None:
        """Checks that involve several parameters (after each is validated alone)."""

    # ------------------------------------------------------------------ description
    def compressors(self) -> tuple[Compressor, ...]:
        """The compressors the halves apply."""
        return ()

    @property
    def randomized(self) -> bool:
        """Whether a run consumes randomness (minibatches or a randomized compressor)."""
        return getattr(self, "batch_size", None) is not None or any(
            c.randomized for c in self.compressors()
        )

    def params(self) -> dict[str, Any]:
        """The parameters as plain data (compressors described)."""
        out = {}
        for param in self.parameters:
            value = getattr(self, param.name)
            if isinstance(value, Compressor):
                value = value.describe()
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            out[param.name] = value
        return out

    # ------------------------------------------------------------------ messages
    @property
    def up_codec(self) -> Compressor:
        """Prices each uplink row (its bits: the length of a real encoding)."""
        return SPARSE

    @property
    def down_codec(self) -> Compressor:
        """Prices the downlink, once per receiving worker."""
        return DENSE

    #: Prices the initial uplink of :meth:`start_workers`, if any.
    initial_codec: ClassVar[Compressor] = DENSE

    # ------------------------------------------------------------------ the halves
    def prepare(self, d: int) -> None:
        """Check the parameters that depend on the dimension ``d`` (e.g. ``k ≤ d``) and build
        what depends on it; a transport calls it before :meth:`start_workers`."""

    @abc.abstractmethod
    def start_workers(self, theta0: Any, workers: int,
                      initial_gradients: Callable[[], Any]) -> tuple[Any, Any]:
        """``(W, up⁰)``: the workers' state at ``θ⁰`` and the initial uplink rows (or None).

        ``initial_gradients()`` returns the ``(M, d)`` gradients at ``θ⁰``; call it only if the
        initialization needs them.
        """

    @abc.abstractmethod
    def start_server(self, theta0: Any, workers: int, initial_mean: Any) -> Any:
        """The server's state at ``θ⁰`` for ``workers`` workers (``initial_mean``: the mean of
        ``up⁰``, or None)."""

    @abc.abstractmethod
    def worker(self, w: Any, gradients: Any, model: Any, rng: Any) -> Any:
        """The uplink rows ``(M, d)`` from the gradients at the workers' ``model``."""

    @abc.abstractmethod
    def server(self, s: Any, up_mean: Any) -> Any:
        """The downlink from the mean of the uplink; steps ``s.theta``."""

    @abc.abstractmethod
    def receive(self, w: Any, model: Any, down: Any) -> Any:
        """The workers' model after the downlink ``down``."""

    def diagnostics(self, s: Any, w: Any, gradients: Any) -> tuple[float, ...]:
        """Values of :attr:`diagnostic_names` (``gradients``: the exact ``(M, d)`` worker
        gradients at ``s.theta`` where the transport has them, else None)."""
        return ()

    # ------------------------------------------------------------------ certificates
    def event_replies(self, update: Any) -> list[tuple[int | None, Any, str]] | None:
        """What the server sent down at an event-engine ``update``
        (:class:`~convcheck.algorithms.invariants.Update`), recomputed from the states:
        ``(receiver or None for everyone, vector, wire format)`` triples; ``None``: not
        declared (the downlink's bits are then not re-encoded)."""
        return None

    def lmi_model(self, d: int) -> tuple[str | None, dict[str, Any]]:
        """The linear model that certifies this algorithm's rate (a name of
        :data:`convcheck.theory.models.MODELS` and its parameters besides the problem's
        constants), or ``(None, {"reason": …})``."""
        return None, {"reason": f"no LMI model for {self.name}"}

    def lmi_state(self, s: Any, w: Any, gradients: Any, optimum: Any,
                  optimum_gradients: Any) -> dict[str, Any]:
        """This algorithm's entries of its model's state at ``(s, w)``, in the model's units and
        in deviations from the fixed point: vectors ``(d,)`` or per-worker rows ``(M, d)``, by
        the names of :mod:`convcheck.theory.models` (``x``, ``a`` and ``v`` are common).
        ``gradients``: the exact ``(M, d)`` worker gradients at ``s.theta``; ``optimum``: ``θ*``;
        ``optimum_gradients``: the worker gradients there."""
        return {}

    # ------------------------------------------------------------------ asynchronous rule
    def server_event(self, s: Any, worker: int, up: Any) -> tuple[Any, Compressor] | None:
        """Apply worker ``worker``'s message ``up`` ``(d,)`` at once; a broadcast to every
        worker with its codec, or None."""
        self.server(s, up)
        return None

    def reply(self, s: Any, worker: int) -> tuple[Any, Compressor]:
        """The downlink that lets ``worker`` compute again, and its codec: the server's model,
        densely."""
        return s.theta, DENSE

    def receive_reply(self, w: Any, model: Any, down: Any) -> Any:
        """The worker's new model after :meth:`reply` (``w``: its rows)."""
        return down

    def receive_broadcast(self, w: Any, model: Any, down: Any) -> Any:
        """The worker's new model after a broadcast of :meth:`server_event`."""
        return down


def compressed_model(name: str, algorithm: Algorithm, compressor: Compressor,
                     d: int) -> tuple[str | None, dict[str, Any]]:
    """The LMI model ``name`` of an algorithm with a contractive, deterministic compressor
    (``delta``: its constant for dimension ``d``), or why there is none."""
    if getattr(algorithm, "batch_size", None) is not None or compressor.randomized or (
            compressor.in_expectation):
        return None, {"reason": "stochastic gradients or a randomized compressor (no sure bound)"}
    if compressor.guarantee != "contractive":
        return None, {"reason": f"compressor {compressor.name!r} is not contractive"}
    return name, {"alpha": algorithm.alpha, "delta": compressor.delta(d),
                  "sparsifier": compressor.sparsifier}


def worker_rows(state: Any) -> int:
    """The number of workers a worker state holds."""
    return getattr(state, row_fields(state)[0]).shape[0]


#: Constants a step size may be expressed in (``"1/L"``, ``"0.5/L_tilde"``).
STEP_CONSTANTS = ("L", "L_tilde", "L_max", "mu")
_STEP_FORM = re.compile(r"^\s*(?:(?P<c>[0-9.eE+-]+)\s*/\s*)?(?P<name>[A-Za-z_]+)\s*$")


def resolve_step(value: float | str, constants: Constants, field: str = "alpha") -> float:
    """A step size given as a number or as ``"c/NAME"`` with NAME in :data:`STEP_CONSTANTS`.

    ``"1/L"`` → ``1/L``; ``"0.5/L_tilde"`` → ``0.5/L̃``; ``"L"`` alone is refused (a step is an
    inverse curvature).
    """
    allowed = "a number > 0 or 'c/NAME' with c > 0 and NAME in " + ", ".join(STEP_CONSTANTS)
    if not isinstance(value, str):
        return check_real(field, value, 0.0, low_open=True)
    match = _STEP_FORM.match(value)
    if match is None or match["c"] is None or match["name"] not in STEP_CONSTANTS:
        raise InputError(field, value, allowed)
    try:
        numerator = float(match["c"])
    except ValueError:
        raise InputError(field, value, allowed) from None
    denominator = float(getattr(constants, match["name"]))
    if not numerator > 0 or not denominator > 0:
        raise InputError(field, value, allowed + f" (here {match['name']}={denominator:g})")
    return numerator / denominator


def check_fits(compressor: Compressor, d: int, field: str = "compressor") -> None:
    """The compressor accepts dimension ``d`` (e.g. top-k needs ``k ≤ d``)."""
    low, high = compressor.dim_range()
    if d < low or (high is not None and d > high):
        allowed = f"a compressor for dimension d={d} (this one accepts d in [{low}, {high}])"
        raise InputError(field, repr(compressor), allowed)
