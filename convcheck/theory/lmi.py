"""Certified linear rates by a linear matrix inequality ([LRP], docs/theory.md §4).

An algorithm's round, written in deviations from its fixed point, is a linear system driven by
the outputs of its nonlinearities (gradients, compressor errors),

    s⁺ = N v,   v = [s; w],   F⁺ = N_F φ,   φ = [F; F_w],

with ``s`` the state (``θ − θ*``, memories, past iterates, ...), ``w`` the nonlinear outputs and,
optionally, scalar **function values** ``F`` (state) and ``F_w`` (new ones). What is known about
the nonlinearities is a list of constraints ``q_j(v, φ) ≥ 0`` (or ``= 0``),
``q_j = Σ_ab (Q_j)_ab ⟨v_a, v_b⟩ + f_jᵀφ``. Every entry ``v_a`` is a vector of ``ℝ^d`` and every
form is a sum over coordinates, so the analysis holds in any dimension (``⊗ I_d``).

A certificate at rate ``ρ`` is ``V(s, F) = Σ P_ab ⟨s_a, s_b⟩ + pᵀF`` (``p ≥ 0``) and
multipliers ``λ_j`` (``≥ 0`` for inequalities, free for equalities), per mode, with

    P + Σ_i p_i (m_i/2) X_iX_iᵀ ⪰ θθᵀ                 (V ≥ ‖θ − θ*‖², using F_i ≥ (m_i/2)‖x_i‖²)
    Nᵀ P N − ρ² Sᵀ P S + Σ_j λ_j Q_j ⪯ 0              (quadratic part of V⁺ − ρ²V)
    N_Fᵀ p − ρ² S_Fᵀ p + Σ_j λ_j f_j = 0              (linear part)

for every mode. Then ``V⁺ − ρ²V ≤ −Σ_j λ_j q_j ≤ 0`` along every trajectory whose inputs satisfy
the constraints, and ``‖θ^k − θ*‖² ≤ V^k ≤ ρ^{2k}V⁰``.

**Blocks (symmetry reduction).** Workers with equal constants are interchangeable; averaging a
certificate over their permutations gives a certificate, so ``P`` and ``λ`` may be taken
invariant. The quadratic forms then split into the *main* block (shared entries and the class
means) and, per class of ``n_c ≥ 2`` workers, one *deviation* block (the entries of one worker
minus its class mean, shared entries zero), with no cross terms (docs/theory.md §4.3). A model is
a list of blocks: the main one carries ``θ``, the function values and every constraint; a
deviation block carries the per-worker constraints of its class, with the **same** multipliers
(matched by name) and its own ``P``. The SDP's size depends on the number of classes, not on
``M``.

:func:`certify_model` finds the least ``ρ`` by bisection. Each candidate solves, with cvxpy
(Clarabel, SCS where Clarabel fails), the max-margin problem ``max t`` s.t. ``Σ trace(P) + Σ p =
1``, every ``P`` (with its function-value part) ``⪰ tI`` and every LMI ``⪯ −tI``, rescales to
``V ≥ ‖θ − θ*‖²``, and is then **re-checked with numpy**: inequality multipliers and ``p``
clipped at 0, every LMI matrix rebuilt, the residual ``c`` of the linear part absorbed with
``(m_i/2)‖x_i‖² ≤ F_i ≤ (L_i/2)‖x_i‖²`` (``c_iF_i ≤ c_i·(L_i or m_i)/2·‖x_i‖²``), the largest
eigenvalue must be ``≤ −τ`` and the positivity matrices' smallest ``≥ τ``, with
``τ = 8·n·ε_mach·‖·‖_F`` (a bound on the rounding of a symmetric eigensolver). A solver status
is never taken as a proof; a candidate that fails the re-check counts as infeasible (that can
only make ``ρ`` larger, never wrong).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from convcheck.errors import InputError, check_real

#: Default bisection tolerance on ``ρ``.
RHO_TOL = 1e-7
#: Solvers tried in order for one candidate ``ρ``.
SOLVERS = ("CLARABEL", "SCS")
#: Solver settings: tighter than the defaults, since the margin shrinks to 0 at the least ρ.
SOLVER_OPTIONS = {
    "CLARABEL": {"tol_feas": 1e-10, "tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10},
    "SCS": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000},
}
#: Kinds of quadratic constraints.
KINDS = ("inequality", "equality")
#: Largest estimated memory of one SDP (bytes) before :func:`check_size` refuses it.
MEMORY_LIMIT = 2 * 1024**3
#: Largest estimated time of one certificate (seconds, about 20 SDPs) before it is refused.
TIME_LIMIT = 900.0
#: Seconds per ``(cone entries)³`` of one SDP (Clarabel's dense cone blocks), measured on the
#: project's 2-core machine (a delayed-GD model with τ = 40: 3.9 s per SDP).
SECONDS_PER_CUBE = 2.9e-9
#: SDPs of one certificate, for the time estimate.
SOLVES_ESTIMATE = 20


class Signal:
    """A linear combination of named model variables (state or input), each a vector of ℝ^d
    (or, for function values, a number).

    ``Signal({"x": 1.0, "u_0": -1.0})`` is ``x − u_0``. Signals add, subtract and scale by
    numbers, so model code reads like the algorithm.
    """

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[str, float] | None = None) -> None:
        self.terms = {k: float(v) for k, v in (terms or {}).items() if v != 0}

    @classmethod
    def var(cls, name: str) -> Signal:
        return cls({name: 1.0})

    def __add__(self, other: Signal) -> Signal:
        terms = dict(self.terms)
        for key, value in other.terms.items():
            terms[key] = terms.get(key, 0.0) + value
        return Signal(terms)

    def __neg__(self) -> Signal:
        return Signal({k: -v for k, v in self.terms.items()})

    def __sub__(self, other: Signal) -> Signal:
        return self + (-other)

    def __mul__(self, scalar: float) -> Signal:
        return Signal({k: scalar * v for k, v in self.terms.items()})

    __rmul__ = __mul__

    def __truediv__(self, scalar: float) -> Signal:
        return self * (1.0 / scalar)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signal) and self.terms == other.terms

    __hash__ = None  # type: ignore[assignment]

    def substitute(self, mapping: Mapping[str, Signal]) -> Signal:
        """Replace each variable by a signal (variables not in ``mapping`` stay)."""
        out = Signal()
        for key, value in self.terms.items():
            out = out + value * mapping.get(key, Signal.var(key))
        return out

    def vector(self, index: Mapping[str, int], size: int) -> np.ndarray:
        """Coefficients over the ordered variables ``index`` (name → position)."""
        out = np.zeros(size)
        for key, value in self.terms.items():
            out[index[key]] += value
        return out

    def __repr__(self) -> str:
        return " + ".join(f"{v:g}·{k}" for k, v in self.terms.items()) or "0"


def total(signals: Iterable[Signal]) -> Signal:
    """``Σ`` of signals."""
    out = Signal()
    for item in signals:
        out = out + item
    return out


@dataclass(frozen=True)
class QuadraticConstraint:
    """``q = Σ_t c_t ⟨a_t, b_t⟩ + values ≥ 0`` (``kind="inequality"``) or ``= 0``
    (``"equality"``); ``values`` is a signal over the scalar function values (may be empty)."""

    name: str
    kind: str
    terms: tuple[tuple[float, Signal, Signal], ...]
    values: Signal = field(default_factory=Signal)

    def matrix(self, index: Mapping[str, int], size: int) -> np.ndarray:
        """Symmetric ``Q`` with ``q = Σ_ab Q_ab ⟨v_a, v_b⟩ + (linear part)``."""
        Q = np.zeros((size, size))
        for coefficient, a, b in self.terms:
            outer = np.outer(a.vector(index, size), b.vector(index, size))
            Q += 0.5 * coefficient * (outer + outer.T)
        return Q

    def is_zero(self) -> bool:
        """True when every term vanishes identically (e.g. a shared entry in a deviation
        block)."""
        return not self.values and all(c == 0 or not a or not b for c, a, b in self.terms)


def sector(u: Signal, x: Signal, low: float, high: float, name: str) -> QuadraticConstraint:
    """``⟨u − low·x, high·x − u⟩ ≥ 0``.

    For ``f`` ``μ``-strongly convex and ``L``-smooth, ``u = ∇f(a) − ∇f(b)`` and ``x = a − b``
    satisfy it with ``(low, high) = (μ, L)``; it is equivalent to the co-coercivity inequality
    ``⟨u, x⟩ ≥ μL/(μ+L)‖x‖² + ‖u‖²/(μ+L)`` (Nesterov 2004, Thm 2.1.12).
    """
    return QuadraticConstraint(name, "inequality", ((1.0, u - low * x, high * x - u),))


def interpolation(
    i: tuple[Signal, Signal, Signal],
    j: tuple[Signal, Signal, Signal],
    low: float,
    high: float,
    name: str,
) -> QuadraticConstraint:
    """The ``S(low, high)`` interpolation inequality between points ``i`` and ``j``, each
    ``(x, u, F)`` (point, gradient, value):

        F_i ≥ F_j + ⟨u_j, x_i − x_j⟩ + 1/(2(1 − low/high)) (‖u_i − u_j‖²/high
              + low‖x_i − x_j‖² − 2(low/high)⟨u_i − u_j, x_i − x_j⟩)

    [Taylor, Hendrickx, Glineur 2017, Thm 4]: a set of triples is interpolated by a function of
    ``S(low, high)`` iff it holds for every ordered pair. ``low = high`` (a quadratic
    ``(high/2)‖x‖²``) is refused: use the sector.
    """
    if not high > low:
        raise ValueError("interpolation needs low < high")
    (xi, ui, Fi), (xj, uj, Fj) = i, j
    dx, du = xi - xj, ui - uj
    c = 1.0 / (2.0 * (1.0 - low / high))
    terms = (
        (-1.0, uj, dx),
        (-c / high, du, du),
        (-c * low, dx, dx),
        (2.0 * c * low / high, du, dx),
    )
    return QuadraticConstraint(name, "inequality", terms, Fi - Fj)


def norm_bound(e: Signal, v: Signal, factor: float, name: str) -> QuadraticConstraint:
    """``‖e‖² ≤ factor·‖v‖²``."""
    return QuadraticConstraint(name, "inequality", ((factor, v, v), (-1.0, e, e)))


def orthogonal(e: Signal, v: Signal, name: str) -> QuadraticConstraint:
    """``⟨e, v − e⟩ = 0`` (a sparsifier's error and output have disjoint supports)."""
    return QuadraticConstraint(name, "equality", ((1.0, e, v - e),))


@dataclass(frozen=True)
class Mode:
    """One linear round ``s⁺ = N v`` (and ``F⁺ = N_F φ``) and the constraints its inputs
    satisfy."""

    name: str
    next_state: Mapping[str, Signal]
    constraints: tuple[QuadraticConstraint, ...]
    next_values: Mapping[str, Signal] = field(default_factory=dict)


@dataclass(frozen=True)
class Block:
    """One diagonal block of the LMI (see the module doc).

    Attributes
    ----------
    name : str
        ``"main"`` or ``"deviation <class>"``.
    states, inputs : tuple of str
        Vector entries of ``s`` and ``w``, in order.
    modes : tuple of Mode
        Aligned with the other blocks' modes (same count, same order).
    values, value_inputs : tuple of str
        Scalar function values in the state and new ones (main block only).
    value_points : dict
        Function value name → ``(x, m, L)``: ``(m/2)‖x‖² ≤ F ≤ (L/2)‖x‖²`` with ``x`` a signal
        over ``states + inputs`` (a function of ``S(m, L)`` vanishing with its gradient at 0).
    theta : tuple of Signal
        Over ``states``: ``θ − θ*`` (main block; one signal, or one per coordinate when the
        entries are scalars), so that ``V ≥ Σ_j ‖θ_j‖²``; empty for deviation blocks.
    deviation_of : int or None
        The class of a deviation block.
    """

    name: str
    states: tuple[str, ...]
    inputs: tuple[str, ...]
    modes: tuple[Mode, ...]
    values: tuple[str, ...] = ()
    value_inputs: tuple[str, ...] = ()
    value_points: Mapping[str, tuple[Signal, float, float]] = field(default_factory=dict)
    theta: tuple[Signal, ...] = ()
    deviation_of: int | None = None

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.states + self.inputs)}

    @property
    def size(self) -> int:
        return len(self.states) + len(self.inputs)

    def matrices(self, mode: Mode) -> tuple[np.ndarray, list[tuple[str, str, np.ndarray]]]:
        """``N`` (n_s × n) and ``(name, kind, Q)`` for every constraint of ``mode``."""
        index, size = self.index, self.size
        missing = [name for name in self.states if name not in mode.next_state]
        if missing:
            raise ValueError(f"mode {mode.name!r} has no update for state {missing[0]!r}")
        N = np.array([mode.next_state[name].vector(index, size) for name in self.states])
        N = N.reshape(len(self.states), size)
        return N, [(c.name, c.kind, c.matrix(index, size)) for c in mode.constraints]

    def value_matrices(self, mode: Mode) -> tuple[np.ndarray, list[np.ndarray]]:
        """``N_F`` (n_F × (n_F + n_Fw)) and each constraint's linear coefficients ``f_j``."""
        index = {name: i for i, name in enumerate(self.values + self.value_inputs)}
        size = len(index)
        NF = np.array([mode.next_values[name].vector(index, size) for name in self.values])
        NF = NF.reshape(len(self.values), size)
        return NF, [c.values.vector(index, size) for c in mode.constraints]

    def point_matrices(self) -> dict[str, tuple[np.ndarray, float, float]]:
        """Function value name → ``(x xᵀ over states + inputs, m, L)``."""
        index, size = self.index, self.size
        out = {}
        for name, (x, low, high) in self.value_points.items():
            vector = x.vector(index, size)
            out[name] = (np.outer(vector, vector), low, high)
        return out

    def theta_matrix(self) -> np.ndarray:
        """``Θ`` (n_s × k), one column per signal of ``theta``: ``V ≥ ‖Θᵀs‖²``."""
        index = {n: i for i, n in enumerate(self.states)}
        columns = [t.vector(index, len(self.states)) for t in self.theta]
        return np.array(columns).T.reshape(len(self.states), len(columns))


@dataclass(frozen=True)
class WorkerLayout:
    """How the engine's per-worker state maps to the blocks.

    The explicit state is ``shared`` then ``f"{prefix}_{m}"`` for each prefix and worker ``m``;
    the main block holds ``shared`` and the class means ``f"{prefix}_{c}"``, the deviation block of
    class ``c`` the entries of one worker minus its class mean.
    """

    shared: tuple[str, ...]
    prefixes: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]

    @property
    def workers(self) -> int:
        return sum(len(m) for m in self.members)

    def explicit_states(self) -> tuple[str, ...]:
        return self.shared + tuple(
            f"{p}_{m}" for p in self.prefixes for m in range(self.workers)
        )


@dataclass(frozen=True)
class LinearModel:
    """An algorithm as a (switched, symmetry-reduced) linear system with quadratic constraints.

    Attributes
    ----------
    algorithm : str
    params : dict
        The parameters the model was built with (step, δ, ξ, constants, ...).
    blocks : tuple of Block
        ``blocks[0]`` is the main block.
    states : tuple of str
        The explicit state, one entry per worker (what
        :func:`convcheck.theory.certified.state_rows` returns), or the main block's states when
        the model has no worker layout (e.g. a history window).
    layout : WorkerLayout or None
        How ``states`` maps to the blocks (``None``: ``states`` are the main block's).
    sensitivity : dict of str to float
        ``c_a`` with ``‖δs_a‖ ≤ c_a ‖θ̂ − θ*‖`` when the state is computed from an approximate
        optimum ``θ̂`` (see :func:`convcheck.theory.certified.initial_state`).
    description : dict of str to str
        The model in words: function class, compressor class, Lyapunov function, reduction.
    """

    algorithm: str
    params: dict
    blocks: tuple[Block, ...]
    states: tuple[str, ...]
    layout: WorkerLayout | None = None
    sensitivity: Mapping[str, float] = field(default_factory=dict)
    description: Mapping[str, str] = field(default_factory=dict)

    @property
    def main(self) -> Block:
        return self.blocks[0]

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.main.inputs

    @property
    def modes(self) -> tuple[Mode, ...]:
        return self.main.modes

    def block_rows(self, rows: np.ndarray) -> tuple[np.ndarray, dict[int, list[np.ndarray]]]:
        """Explicit state rows (``states`` order) → the main block's rows (shared entries and
        class means) and, per class with a deviation block, each worker's deviation rows (in
        that block's state order). Without a layout the rows are the main block's."""
        rows = np.asarray(rows, dtype=np.float64).reshape(len(self.states), -1)
        if self.layout is None:
            return rows, {}
        return _split_rows(self, rows)


@dataclass(frozen=True)
class SDPSize:
    """What an SDP of :func:`certify_model` costs, estimated before it is built.

    Attributes
    ----------
    blocks : list of (states, inputs)
    modes : int
    constraints : int
        Constraints per mode (multipliers).
    lmi_rows : int
        Largest LMI side.
    variables : int
        ``P`` entries, multipliers and function-value weights.
    memory_bytes : float
        Estimated peak memory of building and solving one SDP: the dense coefficients of the
        LMIs (``Σ n²·(entries of P + multipliers)`` at 8 bytes) and the solver's dense cone
        blocks (``Σ (n(n+1)/2)²`` at 8 bytes), times 3 for copies and factorization (measured:
        110 MB for a 42-row LMI, estimated 105 MB).
    seconds : float
        Estimated time of a certificate: :data:`SOLVES_ESTIMATE` SDPs of
        ``SECONDS_PER_CUBE·Σ (cone entries)³`` each.
    """

    blocks: list[tuple[int, int]]
    modes: int
    constraints: int
    lmi_rows: int
    variables: int
    memory_bytes: float
    seconds: float = 0.0

    def describe(self) -> str:
        return (
            f"{len(self.blocks)} block(s), largest LMI {self.lmi_rows}×{self.lmi_rows}, "
            f"{self.modes} mode(s), {self.variables} variables, "
            f"~{_human(self.memory_bytes)} and ~{_duration(self.seconds)} estimated"
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.2g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.3g} {unit}"
        size /= 1024
    return f"{size:.3g} TB"  # pragma: no cover


def sdp_size(model: LinearModel) -> SDPSize:
    """Estimate the size of ``model``'s SDP from its dimensions alone (no matrix is built)."""
    modes = len(model.main.modes)
    constraints = max((len(m.constraints) for m in model.main.modes), default=0)
    dims = [(len(b.states), len(b.inputs)) for b in model.blocks]
    p_entries = sum(s * (s + 1) // 2 for s, _ in dims)
    variables = p_entries + modes * constraints + len(model.main.values) + 1
    dense = 0.0
    cones = 0.0
    cubes = 0.0
    for s, w in dims:
        n = s + w
        per_block = min(constraints, 4 * n + 8)
        dense += modes * n * n * (s * (s + 1) / 2 + per_block) + n * n * s * (s + 1) / 2
        cones += modes * (n * (n + 1) / 2) ** 2 + (s * (s + 1) / 2) ** 2
        cubes += modes * (n * (n + 1) / 2) ** 3 + (s * (s + 1) / 2) ** 3
    memory = 3.0 * 8.0 * (dense + cones)
    seconds = SOLVES_ESTIMATE * SECONDS_PER_CUBE * cubes
    rows = max((s + w for s, w in dims), default=0)
    return SDPSize(dims, modes, constraints, rows, variables, memory, seconds)


def check_size(
    model: LinearModel, limit: float = MEMORY_LIMIT, seconds: float = TIME_LIMIT
) -> SDPSize:
    """:func:`sdp_size`, or :class:`SizeError` when it exceeds ``limit`` bytes or ``seconds``."""
    size = sdp_size(model)
    if size.memory_bytes > limit or size.seconds > seconds:
        raise SizeError(size, limit, seconds)
    return size


class SizeError(Exception):
    """An SDP would exceed the memory or time limit (the caller names the parameter)."""

    def __init__(self, size: SDPSize, limit: float, seconds: float) -> None:
        self.size = size
        self.limit = limit
        self.seconds = seconds
        super().__init__(f"SDP {size.describe()} exceeds the limits of {_human(limit)} and "
                         f"{_duration(seconds)}")

    def limits(self) -> str:
        return f"{_human(self.limit)} and {_duration(self.seconds)}"


@dataclass(frozen=True)
class Verification:
    """numpy re-check of one candidate certificate.

    Attributes
    ----------
    lmi_max_eigenvalue : list of float
        ``λmax`` of each LMI matrix (per mode and block; must be ``≤ −lmi_tolerance``).
    lmi_tolerance : list of float
        ``8·n·ε_mach·‖M‖_F`` per LMI.
    p_min_eigenvalue : float
        Smallest eigenvalue over the positivity matrices (``P + ... − θθᵀ`` for the main block,
        ``P`` for deviation blocks; must be ``≥ p_tolerance``).
    p_tolerance : float
    value_residual : float
        Largest ``|c_i|`` of the linear part absorbed by the function-value bounds (0 without
        function values).
    passed : bool
    """

    lmi_max_eigenvalue: list[float]
    lmi_tolerance: list[float]
    p_min_eigenvalue: float
    p_tolerance: float
    passed: bool
    value_residual: float = 0.0


@dataclass(frozen=True)
class Certificate:
    """The result of :func:`certify_model`, and the lower bound beside it.

    Attributes
    ----------
    model : LinearModel
    certified : bool
        A linear rate ``ρ < 1`` was found and verified.
    rho : float or None
        Least verified rate: ``‖θ^k − θ*‖² ≤ ρ^{2k} V⁰`` (``ρ`` contracts the distance).
    rho_infeasible : float
        Largest ``ρ`` known to have no certificate (``ρ*`` lies in ``(rho_infeasible, rho]``
        up to the margin): tried without a verified certificate, or below a lower bound.
    P : ndarray or None
        The main block's ``P`` (``(n_s, n_s)``, rows and columns in the main block's order).
    blocks_P : list of ndarray
        ``P`` of every block (``blocks_P[0] is P``).
    value_weights : ndarray or None
        ``p``, the weights of the function values in ``V``.
    multipliers : list of dict
        Per mode, constraint name → ``λ``.
    verification : Verification or None
    reason : str
        In words: the rate, or why none was certified.
    solves : int
        Number of SDPs solved.
    seconds : float
    solver : str
        The solver that produced the final certificate.
    tolerance : float
        Bisection tolerance on ``ρ``.
    size : SDPSize or None
    rho_low : float or None
        A lower bound on the worst-case rate over the model's assumptions (an explicit instance
        whose ``‖θ^k − θ*‖`` decays no faster than ``rho_low^k``); ``None`` when none is known.
    gap : float or None
        ``rho − rho_low`` (``None`` unless both exist).
    lower_bound_method : str
        How ``rho_low`` was obtained, in words.
    assumptions : str
        The class of functions and compressors the certificate (and ``rho_low``) is about.
    """

    model: LinearModel
    certified: bool
    rho: float | None
    rho_infeasible: float
    P: np.ndarray | None
    multipliers: list[dict[str, float]]
    verification: Verification | None
    reason: str
    solves: int
    seconds: float
    solver: str
    tolerance: float
    blocks_P: list[np.ndarray] = field(default_factory=list)
    value_weights: np.ndarray | None = None
    size: SDPSize | None = None
    rho_low: float | None = None
    gap: float | None = None
    lower_bound_method: str = ""
    assumptions: str = ""
    lower_bound_instance: Mapping[str, Any] = field(default_factory=dict)

    def with_lower_bound(
        self, rho_low: float | None, method: str, instance: Mapping[str, Any] | None = None
    ) -> Certificate:
        """This certificate with ``rho_low`` (and the gap) set."""
        gap = None
        if rho_low is not None and self.rho is not None:
            gap = self.rho - rho_low
        return replace(
            self, rho_low=rho_low, gap=gap, lower_bound_method=method,
            lower_bound_instance=dict(instance or {}),
        )

    def lyapunov(self, state: np.ndarray, values: np.ndarray | None = None) -> float:
        """``V`` of a state given as rows ``(len(model.states), d)`` in ``model.states`` order
        (and the function values of the main block, when it has some)."""
        if self.P is None:
            raise InputError("certificate", "uncertified", "a certified rate (P exists)")
        model = self.model
        rows = np.asarray(state, dtype=np.float64).reshape(len(model.states), -1)
        if model.main.values:
            if values is None:
                raise InputError("values", None, "the function values of the Lyapunov function")
            weights = np.asarray(values, dtype=np.float64)
            extra = float(self.value_weights @ weights)
        else:
            extra = 0.0
        if model.layout is None:
            return float(np.sum(self.P * (rows @ rows.T))) + extra
        main_rows, deviations = model.block_rows(rows)
        value = float(np.sum(self.P * (main_rows @ main_rows.T))) + extra
        for block, P in zip(model.blocks[1:], self.blocks_P[1:], strict=True):
            members = deviations[block.deviation_of]
            for worker in members:
                value += float(np.sum(P * (worker @ worker.T))) / len(members)
        return value

    def max_eigenvalue(self) -> float:
        """``λmax`` of the full ``P`` in explicit coordinates (see :func:`_split_rows`): the
        main block with the class-mean rows scaled by ``1/√n_c``, and ``P_c/n_c`` of each
        deviation block."""
        if self.P is None:
            raise InputError("certificate", "uncertified", "a certified rate (P exists)")
        model = self.model
        if model.layout is None:
            return float(np.linalg.eigvalsh(self.P)[-1])
        scale = np.ones(len(model.main.states))
        counts = [len(m) for m in model.layout.members]
        for i, name in enumerate(model.main.states):
            if name not in model.layout.shared:
                scale[i] = 1.0 / math.sqrt(counts[int(name.rpartition("_")[2])])
        top = float(np.linalg.eigvalsh(scale[:, None] * self.P * scale[None, :])[-1])
        for block, P in zip(model.blocks[1:], self.blocks_P[1:], strict=True):
            top = max(top, float(np.linalg.eigvalsh(P)[-1]) / counts[block.deviation_of])
        return top

    def as_dict(self) -> dict[str, Any]:
        """Plain data for reports and ``convcheck certify --json``."""
        return {
            "algorithm": self.model.algorithm,
            "params": self.model.params,
            "model": dict(self.model.description),
            "assumptions": self.assumptions,
            "certified": self.certified,
            "rho": self.rho,
            "rho_squared": None if self.rho is None else self.rho**2,
            "rho_infeasible": self.rho_infeasible,
            "rho_low": self.rho_low,
            "gap": self.gap,
            "lower_bound_method": self.lower_bound_method,
            "lower_bound_instance": dict(self.lower_bound_instance),
            "reason": self.reason,
            "states": list(self.model.main.states),
            "inputs": list(self.model.main.inputs),
            "blocks": [
                {"name": b.name, "states": len(b.states), "inputs": len(b.inputs)}
                for b in self.model.blocks
            ],
            "modes": [mode.name for mode in self.model.main.modes],
            "P": None if self.P is None else self.P.tolist(),
            "deviation_P": [P.tolist() for P in self.blocks_P[1:]],
            "value_weights": None
            if self.value_weights is None
            else self.value_weights.tolist(),
            "multipliers": self.multipliers,
            "verification": None if self.verification is None else vars(self.verification),
            "size": None if self.size is None else vars(self.size),
            "solves": self.solves,
            "seconds": self.seconds,
            "solver": self.solver,
            "tolerance": self.tolerance,
        }


def _split_rows(model: LinearModel, rows: np.ndarray) -> tuple[np.ndarray, dict]:
    """Explicit rows → the main block's rows (shared entries, class means) and, per class,
    the per-worker deviation rows of each deviation block (in that block's state order)."""
    layout = model.layout
    index = {name: i for i, name in enumerate(model.states)}

    def mean(prefix: str, c: int) -> np.ndarray:
        return np.mean([rows[index[f"{prefix}_{m}"]] for m in layout.members[c]], axis=0)

    main = []
    for name in model.main.states:
        if name in layout.shared:
            main.append(rows[index[name]])
        else:
            prefix, _, c = name.rpartition("_")
            main.append(mean(prefix, int(c)))
    deviations: dict[int, list[np.ndarray]] = {}
    for block in model.blocks[1:]:
        c = block.deviation_of
        centers = {name: mean(name.rpartition("_")[0], c) for name in block.states}
        deviations[c] = [
            np.array(
                [rows[index[f"{name.rpartition('_')[0]}_{m}"]] - centers[name]
                 for name in block.states]
            )
            for m in layout.members[c]
        ]
    return np.array(main).reshape(len(model.main.states), rows.shape[1]), deviations


class _SDP:
    """The SDP of a model at a parametrized ``ρ²`` (compiled once by cvxpy).

    Maximize the margin ``t`` subject to ``Σ trace(P_b) + Σ p = 1``, positivity ``⪰ tI`` and,
    for every mode and block, ``N_bᵀ P_b N_b − ρ² S_bᵀ P_b S_b + Σ_j λ_j Q_bj ⪯ −tI``, with the
    linear part of the main block equal to 0. By homogeneity a strict certificate exists iff
    ``t* > 0``; maximizing the margin keeps the solution away from the boundary, so that the
    solver's round-off does not spoil the numpy re-check.
    """

    def __init__(self, model: LinearModel) -> None:
        import cvxpy as cp

        self.cp = cp
        self.model = model
        main = model.main
        self.P = [
            cp.Variable((len(b.states), len(b.states)), symmetric=True) if b.states else None
            for b in model.blocks
        ]
        self.p = cp.Variable(len(main.values), nonneg=True) if main.values else None
        self.t = cp.Variable()
        self.rho2 = cp.Parameter(nonneg=True)
        normalization = sum(cp.trace(P) for P in self.P if P is not None)
        if self.p is not None:
            normalization = normalization + cp.sum(self.p)
        constraints = [normalization == 1.0]
        self.points = main.point_matrices()
        self.positivity_terms = self._positivity_terms()
        for b, (block, P) in enumerate(zip(model.blocks, self.P, strict=True)):
            if P is None:
                continue
            n_s = len(block.states)
            positive = P
            if b == 0 and self.p is not None:
                for i, term in self.positivity_terms:
                    positive = positive + self.p[i] * term
            constraints.append(0.5 * (positive + positive.T) >> self.t * np.eye(n_s))
        self.multipliers = []  # per mode: (names, kinds, variable)
        self.blocks = []  # per mode: per block (N, S, [(position, Q)])
        for k, mode in enumerate(main.modes):
            names = [c.name for c in mode.constraints]
            if len(set(names)) != len(names):
                raise ValueError(f"mode {mode.name!r} has two constraints with one name")
            kinds = [c.kind for c in mode.constraints]
            lam = cp.Variable(len(names)) if names else None
            if lam is not None:
                nonneg = [i for i, kind in enumerate(kinds) if kind == "inequality"]
                if nonneg:
                    constraints.append(lam[nonneg] >= 0)
            self.multipliers.append((names, kinds, lam))
            position = {name: i for i, name in enumerate(names)}
            per_block = []
            for block, P in zip(model.blocks, self.P, strict=True):
                bmode = block.modes[k]
                N, stack = block.matrices(bmode)
                unknown = [name for name, _, _ in stack if name not in position]
                if unknown:
                    raise ValueError(f"block {block.name!r}: constraint {unknown[0]!r} "
                                     "is not in the main block")
                n, n_s = block.size, len(block.states)
                S = np.hstack([np.eye(n_s), np.zeros((n_s, n - n_s))])
                used = [(position[name], Q) for name, _, Q in stack]
                if P is None and not used:
                    per_block.append((N, S, used))
                    continue
                lmi = cp.Constant(np.zeros((n, n))) if P is None else (
                    N.T @ P @ N - self.rho2 * (S.T @ P @ S)
                )
                if used:
                    flat = np.stack([Q.ravel() for _, Q in used], axis=1)
                    picks = [i for i, _ in used]
                    lmi = lmi + cp.reshape(flat @ lam[picks], (n, n), order="C")
                constraints.append(0.5 * (lmi + lmi.T) << -self.t * np.eye(n))
                per_block.append((N, S, used))
            if main.values or main.value_inputs:
                NF, linear = main.value_matrices(mode)
                nF = len(main.values)
                SF = np.hstack([np.eye(nF), np.zeros((nF, NF.shape[1] - nF))])
                expression = cp.Constant(np.zeros(NF.shape[1]))
                if self.p is not None:
                    expression = NF.T @ self.p - self.rho2 * (SF.T @ self.p)
                if names:
                    expression = expression + np.stack(linear, axis=1) @ lam
                constraints.append(expression == 0)
            self.blocks.append(per_block)
        self.problem = cp.Problem(cp.Maximize(self.t), constraints)

    def _positivity_terms(self) -> list[tuple[int, np.ndarray]]:
        """``(i, (m_i/2) X_iX_iᵀ)`` over the main block's states for each value state ``F_i``
        (``F_i ≥ (m_i/2)‖x_i‖²``)."""
        main = self.model.main
        n_s = len(main.states)
        out = []
        for i, name in enumerate(main.values):
            outer, low, _ = self.points[name]
            if np.any(outer[n_s:, :]) or np.any(outer[:, n_s:]):
                raise ValueError(f"the point of value state {name!r} depends on inputs")
            if low > 0:
                out.append((i, 0.5 * low * outer[:n_s, :n_s]))
        return out

    def solve(self, rho: float) -> tuple[float | None, tuple | None]:
        """``(t*, solution)``: the optimal margin (``None`` if no solver answered) and, when it
        is positive, ``(Ps, p, [λ per mode], solver)`` normalized to ``V ≥ ‖θ − θ*‖²``."""
        cp = self.cp
        self.rho2.value = rho**2
        margin = None
        for solver in SOLVERS:
            try:
                with warnings.catch_warnings():  # "inaccurate" solutions are re-checked anyway
                    warnings.simplefilter("ignore", UserWarning)
                    self.problem.solve(solver=solver, **SOLVER_OPTIONS.get(solver, {}))
            except cp.error.SolverError:
                continue
            if self.t.value is None or any(P is not None and P.value is None for P in self.P):
                continue
            margin = float(self.t.value)
            if not margin > 0:
                return margin, None
            lams = []
            for _, kinds, lam in self.multipliers:
                values = np.zeros(0) if lam is None else np.asarray(lam.value, dtype=float)
                clipped = [max(v, 0.0) if kind == "inequality" else v
                           for v, kind in zip(values, kinds, strict=True)]
                lams.append(np.array(clipped, dtype=float))
            p = None if self.p is None else np.maximum(np.asarray(self.p.value, dtype=float), 0)
            Ps = [
                np.zeros((0, 0)) if P is None else 0.5 * (np.asarray(P.value) + P.value.T)
                for P in self.P
            ]
            return margin, self.normalize(Ps, p, lams) + (solver,)
        return margin, None

    def positivity(self, Ps: list[np.ndarray], p: np.ndarray | None) -> np.ndarray:
        """``P₀ + Σ_i p_i (m_i/2) X_iX_iᵀ`` (main block)."""
        out = Ps[0].copy()
        for i, term in self.positivity_terms:
            out = out + p[i] * term
        return out

    def normalize(self, Ps: list, p: np.ndarray | None, lams: list) -> tuple:
        """Scale ``(P, p, λ)`` by ``(1 + η)·λmax(ΘᵀP̃⁻¹Θ)`` (``P̃`` the positivity matrix).

        ``1/λmax(ΘᵀP̃⁻¹Θ)`` is the largest ``c`` with ``P̃ ⪰ c·ΘΘᵀ`` (Schur complement), so the scaled
        ``V`` satisfies ``V ≥ ‖θ − θ*‖²`` with the smallest ``V``; the relative slack
        ``η = 100·τ_P/λmin(P̃)`` (clipped to ``[10⁻¹², 10⁻³]``) lifts the one tight direction
        above the rounding tolerance ``τ_P`` of the re-check.
        """
        P = self.positivity(Ps, p)
        theta = self.model.main.theta_matrix()
        lowest = float(np.linalg.eigvalsh(P)[0])
        if not lowest > 0:
            return Ps, p, lams
        rounding = 8 * P.shape[0] * np.finfo(float).eps * float(np.linalg.norm(P))
        slack = float(np.clip(100 * rounding / lowest, 1e-12, 1e-3))
        inner = theta.T @ np.linalg.solve(P, theta)
        scale = float(np.linalg.eigvalsh(0.5 * (inner + inner.T))[-1]) * (1.0 + slack)
        return (
            [scale * X for X in Ps],
            None if p is None else scale * p,
            [scale * lam for lam in lams],
        )

    def verify(self, rho: float, Ps: list, p: np.ndarray | None, lams: list) -> Verification:
        """Rebuild every LMI matrix in numpy and bound its eigenvalues (see the module doc)."""
        eps = np.finfo(float).eps
        main = self.model.main
        maxima, tolerances, residual = [], [], 0.0
        for k, (per_block, lam) in enumerate(zip(self.blocks, lams, strict=True)):
            for b, ((N, S, used), P) in enumerate(zip(per_block, Ps, strict=True)):
                M = N.T @ P @ N - rho**2 * (S.T @ P @ S)
                for i, Q in used:
                    M = M + lam[i] * Q
                if b == 0 and (main.values or main.value_inputs):
                    M, size = self._absorb(M, k, p, lam, rho)
                    residual = max(residual, size)
                M = 0.5 * (M + M.T)
                maxima.append(float(np.linalg.eigvalsh(M)[-1]))
                tolerances.append(float(8 * M.shape[0] * eps * np.linalg.norm(M)))
        theta = main.theta_matrix()
        checks = [self.positivity(Ps, p) - theta @ theta.T] + [P for P in Ps[1:] if P.size]
        p_min = min(float(np.linalg.eigvalsh(X)[0]) for X in checks)
        p_tol = max(float(8 * X.shape[0] * eps * np.linalg.norm(X)) for X in checks)
        passed = all(m <= -t for m, t in zip(maxima, tolerances, strict=True))
        passed = passed and p_min >= p_tol
        return Verification(maxima, tolerances, p_min, p_tol, passed, residual)

    def _absorb(
        self, M: np.ndarray, k: int, p: np.ndarray, lam: np.ndarray, rho: float
    ) -> tuple[np.ndarray, float]:
        """Add ``c_i·(L_i or m_i)/2·X_iX_iᵀ`` for the residual ``c`` of the linear part."""
        main = self.model.main
        NF, linear = main.value_matrices(main.modes[k])
        nF = len(main.values)
        SF = np.hstack([np.eye(nF), np.zeros((nF, NF.shape[1] - nF))])
        c = np.zeros(NF.shape[1]) if p is None else NF.T @ p - rho**2 * (SF.T @ p)
        for f, value in zip(linear, lam, strict=True):
            c = c + value * f
        for name, coefficient in zip(main.values + main.value_inputs, c, strict=True):
            if coefficient == 0.0:
                continue
            outer, low, high = self.points[name]
            M = M + coefficient * 0.5 * (high if coefficient > 0 else low) * outer
        return M, float(np.max(np.abs(c))) if c.size else 0.0


def certify_model(
    model: LinearModel,
    *,
    tol: float = RHO_TOL,
    hint: float | None = None,
    lower: float | None = None,
) -> Certificate:
    """Least verified linear rate of ``model`` by bisection on ``ρ ∈ [0, 1]``.

    Parameters
    ----------
    model : LinearModel
    tol : float
        Stop when the bracket ``(rho_infeasible, rho]`` is at most ``tol`` wide.
    hint : float, optional
        A guess of the least ``ρ``; it is tried first and only narrows the bracket (a wrong hint
        costs one solve, never a wrong ``ρ``).
    lower : float, optional
        The rate of an explicit instance of the model's assumptions: no certificate can have a
        smaller ``ρ``, so the bisection starts there (``lower + tol`` is tried first). A value
        ``≥ 1`` means no rate exists: nothing is solved.

    Returns
    -------
    Certificate
        ``certified=False`` with "no linear rate certified" when no verified certificate
        exists at ``ρ = 1`` or at any tested ``ρ < 1``.
    """
    tol = check_real("tol", tol, 1e-12, 0.1)
    started = time.perf_counter()
    size = sdp_size(model)
    if lower is not None and lower >= 1.0:
        return _uncertified(
            model,
            f"no linear rate certified: an instance of the model's assumptions has rate "
            f"{lower:.9g} ≥ 1 (no certificate can exist)",
            0, started, tol, size,
        )
    sdp = _SDP(model)
    solves = 0

    rejected = 0  # solver solutions the numpy re-check refused: the numerical resolution

    def attempt(rho: float) -> tuple[float | None, tuple | None]:
        """``(margin, verified certificate or None)``; a margin is kept for interpolation only
        when its sign agrees with the verdict."""
        nonlocal solves, rejected
        solves += 1
        margin, solution = sdp.solve(rho)
        if solution is None:
            return margin, None
        Ps, p, lams, solver = solution
        verification = sdp.verify(rho, Ps, p, lams)
        if not verification.passed:
            rejected += 1
            return None, None
        return margin, (Ps, p, lams, solver, verification)

    low = 0.0
    if lower is not None and lower > 0:
        low = lower * (1.0 - 1e-12)
    high, t_high, best = 1.0, None, None
    # First tries: above a lower bound by tol, 10·tol, 100·tol, ... (the least ρ is usually
    # close to it), else the hint; then ρ = 1.
    if lower is not None:
        guesses = [lower + tol * 10.0**j for j in range(8)]
    else:
        guesses = [] if hint is None else [hint]
    for guess in [g for g in guesses if low < g < 1.0 - tol] + [1.0]:
        if best is not None:
            break
        margin, found = attempt(guess)
        if found is None:
            low = guess
        else:
            high, t_high, best = guess, margin, found
    if best is None:
        return _uncertified(
            model,
            "no linear rate certified: the LMI has no verified solution even at ρ = 1",
            solves, started, tol, size,
        )
    # Safeguarded secant on the margin t(ρ), from the certified side only (below the least ρ
    # the margin stays near 0 and tells nothing): the chord of the two lowest certified points
    # meets 0 near the least ρ; its root, moved up by 5% of the last step, is tried (it is then
    # usually certified, and the next chord is far more accurate); a root within the tolerance
    # of ``high`` is confirmed by one try just below ``high``. Otherwise: bisection.
    feasible = [(high, t_high)]
    # Twice the solver found a certificate the re-check refused: the margin is at the rounding
    # level, and no smaller ρ can be verified; the bracket stays honest (rho_infeasible).
    while high - low > tol * (1 + 1e-6) and rejected < 2:
        middle = 0.5 * (low + high)
        points = sorted(point for point in feasible if point[1] is not None)[:2]
        if len(points) == 2 and points[1][1] > points[0][1] > 0:
            (r0, t0), (r1, t1) = points
            root = r0 - t0 * (r1 - r0) / (t1 - t0)
            guess = root + 0.05 * (r0 - root)
            if high - root <= tol:
                middle = max(high - tol, 0.5 * (low + high))
            elif low < guess < high:
                middle = guess
        margin, found = attempt(middle)
        if found is None:
            low = middle
        else:
            high, best = middle, found
            feasible.append((middle, margin))
    if high >= 1.0:
        return _uncertified(
            model,
            "no linear rate certified: a certificate exists at ρ = 1 (no growth) but at no ρ < 1",
            solves, started, tol, size,
        )
    Ps, p, lams, solver, verification = best
    multipliers = []
    for (names, _, _), lam in zip(sdp.multipliers, lams, strict=True):
        multipliers.append(dict(zip(names, map(float, lam), strict=True)))
    return Certificate(
        model=model,
        certified=True,
        rho=high,
        rho_infeasible=low,
        P=Ps[0],
        blocks_P=Ps,
        value_weights=p,
        multipliers=multipliers,
        verification=verification,
        reason=(f"certified ρ = {high:.9g} (‖θ^k − θ*‖² ≤ ρ^(2k)·V⁰); none verified or possible "
                f"below {low:.9g}" + (" (numerical resolution reached)" if rejected >= 2 else "")),
        solves=solves,
        seconds=time.perf_counter() - started,
        solver=solver,
        tolerance=tol,
        size=size,
    )


def _uncertified(
    model: LinearModel, reason: str, solves: int, started: float, tol: float, size: SDPSize
) -> Certificate:
    return Certificate(
        model=model,
        certified=False,
        rho=None,
        rho_infeasible=1.0,
        P=None,
        multipliers=[],
        verification=None,
        reason=reason,
        solves=solves,
        seconds=time.perf_counter() - started,
        solver="",
        tolerance=tol,
        size=size,
    )
