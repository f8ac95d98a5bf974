"""One round of an algorithm, described once and turned into the blocks of an LMI.

An algorithm's model (:mod:`convcheck.theory.models`) is written as a function of a
:class:`View` and returns a :class:`Round`: the state update, the **oracle calls** of the round
(point, gradient and value of each function) and the **compressor errors** (each with its
input and class). From one description this module derives

* the constraints (docs/theory.md §4.2), in one of two **forms**:
  ``"sector"`` — co-coercivity between every pair of known points and the optimum, no function
  values; ``"interpolation"`` — the full ``S(μ, L)`` interpolation inequalities of every ordered
  pair, with function values (tight for a set of points [THG17]);
* a **history window**: :func:`window` keeps the last ``t`` rounds in the state (the state of
  ``t`` rounds ago and every input since), so that the constraints of all these rounds and the
  interpolation inequalities between all their points enter the LMI;
* the **symmetry reduction**: the same model function evaluated on the main view (shared
  entries and one entry per class of workers with equal constants, standing for the class mean)
  and on one deviation view per class with ``n_c ≥ 2`` (one worker's entries minus the class
  mean; shared entries and averages are zero there). See :mod:`convcheck.theory.lmi`.

Everything is in the θ-units of :mod:`convcheck.theory.models`: gradients and function values of
the shifted functions ``φ_m(x) = f_m(θ* + x) − f_m(θ*) − ⟨∇f_m(θ*), x⟩`` (in ``S(μ_m, L_m)``,
zero with their gradient at ``x = 0``) times the step ``α``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations, permutations

import numpy as np

from convcheck.errors import InputError, check_int
from convcheck.theory.lmi import (
    Block,
    LinearModel,
    Mode,
    QuadraticConstraint,
    Signal,
    WorkerLayout,
    interpolation,
    norm_bound,
    orthogonal,
    sector,
    total,
)

#: Forms of the function constraints.
FORMS = ("sector", "interpolation")


@dataclass(frozen=True)
class WorkerClasses:
    """Workers grouped into classes of equal (or rounded) constants.

    Attributes
    ----------
    L, mu : ndarray, shape (C,)
        The constants every worker of a class is certified with.
    members : tuple of tuple of int
        The workers of each class, in increasing order; classes ordered by their first worker.
    rounded : bool
        Some worker's constants were rounded (``L_m`` up, ``μ_m`` down) to fit ``C`` classes.
    """

    L: np.ndarray
    mu: np.ndarray
    members: tuple[tuple[int, ...], ...]
    rounded: bool = False

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(m) for m in self.members], dtype=float)

    @property
    def workers(self) -> int:
        return int(sum(len(m) for m in self.members))

    @classmethod
    def of(
        cls, L_workers: np.ndarray, mu_workers: np.ndarray, max_classes: int | None = None
    ) -> WorkerClasses:
        """Group equal ``(L_m, μ_m)``; with ``max_classes``, round into at most that many.

        Rounding is sound: ``S(μ_m, L_m) ⊂ S(μ_c, L_c)`` when ``μ_c ≤ μ_m`` and ``L_c ≥ L_m``,
        so a certificate for the rounded classes holds for the workers. Workers are sorted by
        ``(L_m, μ_m)`` and cut into contiguous groups by dynamic programming so that the largest
        ``log(L_c/μ_c) − log(L_m/μ_m)`` (the loss of condition number) over workers is least;
        each class gets ``(max L_m, min μ_m)`` of its group.
        """
        L_workers = np.asarray(L_workers, dtype=float)
        mu_workers = np.asarray(mu_workers, dtype=float)
        workers = L_workers.shape[0]
        pairs: dict[tuple[float, float], list[int]] = {}
        for m in range(workers):
            pairs.setdefault((float(L_workers[m]), float(mu_workers[m])), []).append(m)
        if max_classes is not None:
            max_classes = check_int("classes", max_classes, 1, workers)
        if max_classes is None or len(pairs) <= max_classes:
            groups = sorted(pairs.values(), key=lambda g: g[0])
            return cls(
                np.array([L_workers[g[0]] for g in groups]),
                np.array([mu_workers[g[0]] for g in groups]),
                tuple(tuple(g) for g in groups),
            )
        keys = sorted(pairs)
        cuts = _best_cuts(keys, max_classes)
        groups = []
        for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
            members = sorted(m for key in keys[start:stop] for m in pairs[key])
            groups.append(members)
        groups.sort(key=lambda g: g[0])
        return cls(
            np.array([L_workers[g].max() for g in groups]),
            np.array([mu_workers[g].min() for g in groups]),
            tuple(tuple(g) for g in groups),
            rounded=True,
        )

    def describe(self) -> str:
        sizes = ", ".join(
            f"{len(m)}×(L={L:.6g}, μ={mu:.6g})"
            for m, L, mu in zip(self.members, self.L, self.mu, strict=True)
        )
        how = "rounded: L_m up, μ_m down" if self.rounded else "equal constants"
        return f"{self.count} class(es) of workers ({how}): {sizes}"


def _best_cuts(keys: list[tuple[float, float]], classes: int) -> list[int]:
    """Cut the sorted distinct ``(L, μ)`` into at most ``classes`` contiguous groups so that the
    largest condition-number loss ``log(max L/min μ) − log(L_m/μ_m)`` over members is least
    (merging ``μ_m = 0`` with ``μ_m > 0`` costs ``10⁶``). The loss of a group only grows when
    it is extended, so for a threshold the greedy cut is optimal; the least threshold is found
    by bisection."""
    L = [k[0] for k in keys]
    mu = [k[1] for k in keys]
    log_L = [math.log(v) for v in L]
    own = [math.log(L[j] / mu[j]) if mu[j] > 0 else -math.inf for j in range(len(keys))]

    def greedy(threshold: float) -> list[int]:
        cuts, start = [0], 0
        top = bottom = ratio = smallest = None
        positive = False
        for j in range(len(keys)):
            new_top = L[j] if top is None else max(top, L[j])
            new_bottom = mu[j] if bottom is None else min(bottom, mu[j])
            new_ratio = own[j] if ratio is None else min(ratio, own[j])
            new_smallest = log_L[j] if smallest is None else min(smallest, log_L[j])
            new_positive = positive or mu[j] > 0
            if new_bottom > 0:
                loss = math.log(new_top / new_bottom) - new_ratio
            else:
                loss = math.log(new_top) - new_smallest + (1e6 if new_positive else 0.0)
            if j > start and loss > threshold:
                cuts.append(j)
                start = j
                top, bottom, ratio, smallest = L[j], mu[j], own[j], log_L[j]
                positive = mu[j] > 0
            else:
                top, bottom, ratio, smallest = new_top, new_bottom, new_ratio, new_smallest
                positive = new_positive
        return cuts + [len(keys)]

    low, high = 0.0, 1e7
    for _ in range(60):
        middle = 0.5 * (low + high)
        if len(greedy(middle)) - 1 <= classes:
            high = middle
        else:
            low = middle
    return greedy(high)


@dataclass(frozen=True)
class Call:
    """One oracle call: the point ``x`` and, per function (``"f_c"`` for class ``c``, ``"f"``
    for the average), the gradient and the value (empty signals when values are not tracked)."""

    label: str
    x: Signal
    gradients: Mapping[str, Signal]
    values: Mapping[str, Signal]


@dataclass(frozen=True)
class Compression:
    """``error`` is the error ``r = v − C(v)`` of a δ-contractive compressor on ``source``:
    ``‖r‖² ≤ (1 − δ)‖v‖²`` and, for a sparsifier, ``⟨r, v − r⟩ = 0``."""

    error: str
    source: Signal
    delta: float
    sparsifier: bool
    label: str


@dataclass(frozen=True)
class Threshold:
    """GD-SEC's dropped part ``r`` of ``source``: ``‖r‖² ≤ ξ²‖reference‖²`` and
    ``⟨r, source − r⟩ = 0`` (kept and dropped entries are disjoint)."""

    error: str
    source: Signal
    reference: Signal
    xi: float
    label: str


@dataclass(frozen=True)
class Round:
    """One round of an algorithm in one view (see the module doc).

    Attributes
    ----------
    name : str
    states, inputs : tuple of str
    update : dict
        State name → next value (signal over ``states + inputs``).
    calls : tuple of Call
        Every oracle call whose data the round knows (new calls and those kept in the state).
    errors : tuple of Compression or Threshold
    functions : dict
        Function key → ``(αμ, αL)``.
    theta : Signal
        ``θ − θ*`` over ``states``.
    values, value_inputs : tuple of str
        Function values in the state and new ones; ``value_update`` as ``update``.
    shared, prefixes : tuple of str
        The engine layout (shared entries and per-worker prefixes) in the main view; empty in
        deviation views and after :func:`window`.
    sensitivity : dict
        State name → ``c_a`` (see :class:`~convcheck.theory.lmi.LinearModel`).
    deviation_of : int or None
    """

    name: str
    states: tuple[str, ...]
    inputs: tuple[str, ...]
    update: Mapping[str, Signal]
    calls: tuple[Call, ...]
    errors: tuple[Compression | Threshold, ...]
    functions: Mapping[str, tuple[float, float]]
    theta: Signal
    values: tuple[str, ...] = ()
    value_inputs: tuple[str, ...] = ()
    value_update: Mapping[str, Signal] = field(default_factory=dict)
    shared: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    sensitivity: Mapping[str, float] = field(default_factory=dict)
    deviation_of: int | None = None


class View:
    """The variables a model function sees: the main view or one class's deviation view.

    Parameters
    ----------
    classes : WorkerClasses
    L, mu : float
        Constants of the average ``f``.
    alpha : float
        The step (θ-units).
    deviation : int, optional
        The class of a deviation view (``None``: the main view).
    values : bool
        Track function values (the ``"interpolation"`` form).
    """

    def __init__(
        self,
        classes: WorkerClasses,
        L: float,
        mu: float,
        alpha: float,
        deviation: int | None = None,
        values: bool = False,
    ) -> None:
        self.classes = classes
        self.L, self.mu, self.alpha = L, mu, alpha
        self.deviation = deviation
        self.with_values = values
        self.weights = classes.sizes / classes.workers
        self.keys = list(range(classes.count)) if deviation is None else [deviation]
        self._shared: list[str] = []
        self._prefixes: list[str] = []

    @property
    def main(self) -> bool:
        return self.deviation is None

    def shared(self, name: str) -> Signal:
        """A shared entry (zero in a deviation view)."""
        return Signal.var(name) if self.main else Signal()

    def worker(self, prefix: str) -> list[Signal]:
        """One signal per class: ``f"{prefix}_{c}"`` where the view has class ``c``, else 0."""
        return [
            Signal.var(f"{prefix}_{c}") if c in self.keys else Signal()
            for c in range(self.classes.count)
        ]

    def value(self, prefix: str) -> list[Signal]:
        """Per class, a function value (zero without values and in deviation views)."""
        if not (self.with_values and self.main):
            return [Signal() for _ in range(self.classes.count)]
        return self.worker(prefix)

    def mean(self, signals: Sequence[Signal]) -> Signal:
        """``(1/M) Σ_m`` of a per-worker quantity: ``Σ_c (n_c/M) s_c``; zero in a deviation
        view (deviations from the class mean sum to zero)."""
        if not self.main:
            return Signal()
        return total(w * s for w, s in zip(self.weights, signals, strict=True))

    def offsets(self, prefix: str = "a") -> tuple[list[str], list[Signal]]:
        """Constant per-worker states ``a_m = α∇f_m(θ*)`` with ``Σ_m a_m = 0``: in the main view
        the last class mean is ``−Σ_{c<C−1} (n_c/n_{C−1}) a_c`` (none with one class)."""
        C = self.classes.count
        if not self.main:
            return [f"{prefix}_{self.deviation}"], self.worker(prefix)
        if prefix not in self._prefixes:
            self._prefixes.append(prefix)
        names = [f"{prefix}_{c}" for c in range(C - 1)]
        free = [Signal.var(name) for name in names]
        sizes = self.classes.sizes
        last = -total(s * (sizes[c] / sizes[C - 1]) for c, s in enumerate(free))
        return names, free + [last]

    def names(self, shared: Sequence[str] = (), workers: Sequence[str] = ()) -> tuple[str, ...]:
        """State or input names of this view: ``shared`` (main view only) and
        ``f"{prefix}_{c}"`` for each prefix and class of the view."""
        out = list(shared) if self.main else []
        out += [f"{p}_{c}" for p in workers for c in self.keys]
        return tuple(out)

    def states(self, shared: Sequence[str] = (), workers: Sequence[str] = ()) -> tuple[str, ...]:
        """:meth:`names`, recorded as the engine layout of the state."""
        for name in shared:
            if name not in self._shared:
                self._shared.append(name)
        for prefix in workers:
            if prefix not in self._prefixes:
                self._prefixes.append(prefix)
        return self.names(shared, workers)

    def layout(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return (tuple(self._shared), tuple(self._prefixes)) if self.main else ((), ())

    def functions(self) -> dict[str, tuple[float, float]]:
        """``"f_c"`` → ``(αμ_c, αL_c)`` for the classes of the view, and ``"f"`` (main view)."""
        a, cls = self.alpha, self.classes
        out = {f"f_{c}": (a * cls.mu[c], a * cls.L[c]) for c in self.keys}
        if self.main:
            out["f"] = (a * self.mu, a * self.L)
        return out

    def call(self, label: str, x: Signal, gradients: Sequence[Signal],
             values: Sequence[Signal] | None = None) -> Call:
        """An oracle call at ``x`` with one gradient (and value) per class."""
        values = values if values is not None else [Signal()] * self.classes.count
        grads = {f"f_{c}": gradients[c] for c in self.keys}
        vals = {f"f_{c}": values[c] for c in self.keys}
        if self.main:
            grads["f"] = self.mean(gradients)
            vals["f"] = self.mean(values)
        return Call(label, x, grads, vals)

    def per_worker(self, prefix: str, value: object) -> dict[str, float]:
        """``{f"{prefix}_{c}": value(c)}`` for the view's classes (``value`` a number or a
        function of the class)."""
        return {
            f"{prefix}_{c}": float(value(c) if callable(value) else value)  # type: ignore[operator]
            for c in self.keys
        }


# -- constraints -------------------------------------------------------------------------------
_STAR = "*"


def error_constraints(errors: Sequence[Compression | Threshold]) -> list[QuadraticConstraint]:
    """The constraints of each compressor error (see :class:`Compression`, :class:`Threshold`)."""
    out = []
    for item in errors:
        r = Signal.var(item.error)
        if isinstance(item, Threshold):
            out.append(norm_bound(r, item.reference, item.xi**2, f"threshold error {item.label}"))
            out.append(orthogonal(r, item.source, f"disjoint supports {item.label}"))
        else:
            out.append(norm_bound(r, item.source, 1.0 - item.delta, f"contraction {item.label}"))
            if item.sparsifier:
                out.append(orthogonal(r, item.source, f"disjoint supports {item.label}"))
    return out


def function_constraints(
    calls: Sequence[Call], functions: Mapping[str, tuple[float, float]], form: str
) -> list[QuadraticConstraint]:
    """Constraints of each function between its known points and the optimum ``(0, 0, 0)``:
    the sector of every unordered pair (``"sector"``), or the interpolation inequality of every
    ordered pair (``"interpolation"``). Pairs of identical points are skipped."""
    out = []
    for key, (low, high) in functions.items():
        points = [(call.label, call.x, call.gradients[key], call.values[key]) for call in calls]
        points = _distinct(points) + [(_STAR, Signal(), Signal(), Signal())]
        if form == "sector" or not high > low:
            for (li, xi, ui, _), (lj, xj, uj, _) in combinations(points, 2):
                out.append(sector(ui - uj, xi - xj, low, high, f"sector ({li}, {lj}) {key}"))
        else:
            for (li, xi, ui, Fi), (lj, xj, uj, Fj) in permutations(points, 2):
                name = f"interpolation ({li}, {lj}) {key}"
                out.append(interpolation((xi, ui, Fi), (xj, uj, Fj), low, high, name))
    return [c for c in out if not c.is_zero()]


def _distinct(points: list) -> list:
    """Drop repeated points (same point and gradient)."""
    out: list = []
    for point in points:
        if not any(point[1] == q[1] and point[2] == q[2] for q in out):
            out.append(point)
    return out


def mode_of(rnd: Round, form: str) -> Mode:
    constraints = error_constraints(rnd.errors)
    constraints += function_constraints(rnd.calls, rnd.functions, form)
    constraints = [c for c in constraints if not c.is_zero()]
    update = {name: rnd.update[name] for name in rnd.states}
    values = {name: rnd.value_update[name] for name in rnd.values}
    return Mode(rnd.name, update, tuple(constraints), values)


def value_points(rnd: Round) -> dict[str, tuple[Signal, float, float]]:
    """Function value name → ``(x, αμ, αL)`` of its function, for every tracked value."""
    out = {}
    for call in rnd.calls:
        for key, value in call.values.items():
            if value and len(value.terms) == 1:
                (name,) = value.terms
                low, high = rnd.functions[key]
                out[name] = (call.x, low, high)
    return out


def block_of(rounds: Sequence[Round], form: str) -> Block:
    """The block of one view: one mode per round (all rounds share the states)."""
    first = rounds[0]
    if form not in FORMS:
        raise InputError("form", form, "one of " + ", ".join(map(repr, FORMS)))
    points = value_points(first) if first.values or first.value_inputs else {}
    name = "main" if first.deviation_of is None else f"deviation {first.deviation_of}"
    return Block(
        name=name,
        states=first.states,
        inputs=first.inputs,
        modes=tuple(mode_of(r, form) for r in rounds),
        values=first.values,
        value_inputs=first.value_inputs,
        value_points=points,
        theta=(first.theta,) if first.deviation_of is None else (),
        deviation_of=first.deviation_of,
    )


# -- history window ----------------------------------------------------------------------------
def window(rnd: Round, steps: int) -> Round:
    """Keep the last ``steps`` rounds in the state (``steps = 0``: ``rnd`` itself).

    The lifted state is the state of ``steps`` rounds ago and every input since,
    ``(s_{k−t}, w_{k−t}, …, w_{k−1})`` (names ``f"{name}@{j}"``); the current state is a linear
    function of it, so no entry is redundant. The lifted round carries the compressor errors and
    the oracle calls of all ``steps + 1`` rounds (the function constraints then relate every pair
    of their points), and ``θ^k − θ*`` as its ``theta``.
    """
    steps = check_int("window", steps, 0)
    if steps == 0:
        return rnd
    def lag(name: str, j: int) -> str:
        return f"{name}@{j}"

    state = {j: {} for j in range(steps + 1)}
    value_state = {j: {} for j in range(steps + 1)}
    state[steps] = {s: Signal.var(lag(s, steps)) for s in rnd.states}
    value_state[steps] = {F: Signal.var(lag(F, steps)) for F in rnd.values}
    substitutions = {}
    for j in range(steps, -1, -1):
        mapping = dict(state[j])
        mapping.update(value_state[j])
        for w in rnd.inputs + rnd.value_inputs:
            mapping[w] = Signal.var(lag(w, j)) if j > 0 else Signal.var(w)
        substitutions[j] = mapping
        if j > 0:
            state[j - 1] = {s: rnd.update[s].substitute(mapping) for s in rnd.states}
            value_state[j - 1] = {F: rnd.value_update[F].substitute(mapping) for F in rnd.values}
    calls, errors = [], []
    for j in range(steps, -1, -1):
        mapping = substitutions[j]
        suffix = "" if j == 0 else f"@{j}"
        for call in rnd.calls:
            calls.append(Call(
                call.label + suffix,
                call.x.substitute(mapping),
                {k: g.substitute(mapping) for k, g in call.gradients.items()},
                {k: v.substitute(mapping) for k, v in call.values.items()},
            ))
        for item in rnd.errors:
            renamed = mapping[item.error].terms
            (error,) = renamed
            changes = {"error": error, "source": item.source.substitute(mapping),
                       "label": item.label + suffix}
            if isinstance(item, Threshold):
                changes["reference"] = item.reference.substitute(mapping)
            errors.append(replace(item, **changes))
    states = tuple(lag(s, steps) for s in rnd.states) + tuple(
        lag(w, j) for j in range(steps, 0, -1) for w in rnd.inputs
    )
    values = tuple(lag(F, steps) for F in rnd.values) + tuple(
        lag(w, j) for j in range(steps, 0, -1) for w in rnd.value_inputs
    )
    update = {lag(s, steps): state[steps - 1][s] for s in rnd.states}
    value_update = {lag(F, steps): value_state[steps - 1][F] for F in rnd.values}
    for j in range(steps, 0, -1):
        for w in rnd.inputs:
            update[lag(w, j)] = Signal.var(lag(w, j - 1) if j > 1 else w)
        for w in rnd.value_inputs:
            value_update[lag(w, j)] = Signal.var(lag(w, j - 1) if j > 1 else w)
    return Round(
        name=rnd.name,
        states=states,
        inputs=rnd.inputs,
        update=update,
        calls=tuple(calls),
        errors=tuple(errors),
        functions=rnd.functions,
        theta=rnd.theta.substitute(substitutions[0]),
        values=values,
        value_inputs=rnd.value_inputs,
        value_update=value_update,
        deviation_of=rnd.deviation_of,
    )


def assemble(
    algorithm: str,
    params: dict,
    rounds: Sequence[Sequence[Round]],
    form: str,
    description: Mapping[str, str],
    workers: int,
    members: tuple[tuple[int, ...], ...],
) -> LinearModel:
    """A :class:`LinearModel` from the rounds of each view (``rounds[0]``: main view, one round
    per mode; then one list per deviation view)."""
    blocks = tuple(block_of(r, form) for r in rounds)
    main = rounds[0][0]
    if main.shared or main.prefixes:
        layout = WorkerLayout(main.shared, main.prefixes, members)
        states = layout.explicit_states()
        owner = {m: c for c, group in enumerate(members) for m in group}
        sensitivity = {name: main.sensitivity.get(name, 0.0) for name in main.shared}
        for prefix in main.prefixes:
            for m in range(workers):
                key = f"{prefix}_{owner[m]}"
                sensitivity[f"{prefix}_{m}"] = main.sensitivity.get(key, 0.0)
    else:
        layout, states, sensitivity = None, main.states, {}
    return LinearModel(
        algorithm=algorithm,
        params=params,
        blocks=blocks,
        states=tuple(states),
        layout=layout,
        sensitivity=sensitivity,
        description=dict(description),
    )
