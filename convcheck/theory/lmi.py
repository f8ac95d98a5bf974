"""Certified linear rates by a linear matrix inequality (THEORY.md §5.2, [LRP]).

An algorithm's round, written in deviations from its fixed point, is a linear system driven by
the outputs of its nonlinearities (gradients, compressor errors),

    s⁺ = N v,   v = [s; w],

with ``s`` the state (``θ − θ*``, memories, past iterates, ...) and ``w`` the nonlinear outputs.
What is known about the nonlinearities is a list of quadratic constraints ``q_j(v) ≥ 0`` (or
``= 0``), ``q_j(v) = Σ_{ab} (Q_j)_{ab} ⟨v_a, v_b⟩``. Every entry ``v_a`` is a vector of ``ℝ^d`` and
every form is a sum over coordinates, so the analysis holds in any dimension (``⊗ I_d``).

A certificate at rate ``ρ`` is a symmetric ``P`` and multipliers ``λ_j`` (``≥ 0`` for
inequalities, free for equalities), one set per mode of the model, with

    P ⪰ e_θ e_θᵀ,                                            (V bounds ‖θ − θ*‖²)
    M = Nᵀ P N − ρ² Sᵀ P S + Σ_j λ_j Q_j ⪯ 0   for every mode,  (V decreases by ρ²)

where ``S = [I 0]`` picks ``s`` out of ``v`` and ``e_θ`` picks ``θ − θ*`` out of ``s``. For any
``v`` with Gram matrix ``G = [⟨v_a, v_b⟩] ⪰ 0`` satisfying the constraints,
``V(s⁺) − ρ² V(s) = trace(M G) − Σ_j λ_j q_j(v) ≤ 0``, with ``V(s) = Σ P_ab ⟨s_a, s_b⟩``,
hence ``‖θ^k − θ*‖² ≤ V(s^k) ≤ ρ^{2k} V(s⁰)``. Several modes sharing one ``P`` certify a
switching system (e.g. any delay sequence with delays ``≤ τ``).

:func:`certify_model` finds the least such ``ρ`` by bisection. Each candidate solves, with
cvxpy (Clarabel, SCS where Clarabel fails), the max-margin problem ``max t`` s.t.
``trace(P) = 1``, ``P ⪰ tI``, ``M ⪯ −tI`` (a strict certificate exists iff ``t* > 0``), rescales
``P`` to ``P ⪰ e_θe_θᵀ``, and is then **re-checked with numpy**: the multipliers of
inequalities are clipped at 0, every LMI matrix is rebuilt from ``P`` and ``λ``, its largest
eigenvalue must be ``≤ −τ_M`` and ``λmin(P − e_θe_θᵀ) ≥ τ_P``, where ``τ = 8·n·ε_mach·‖·‖_F``
bounds the rounding of a symmetric eigenvalue solver. A solver status is never taken as a
proof: a candidate that fails the re-check counts as infeasible (this can only make ``ρ``
larger, never wrong). A model with no verified certificate at ``ρ = 1`` gets "no linear rate
certified".
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


class Signal:
    """A linear combination of named model variables (state or input), each a vector of ℝ^d.

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
    """``q(v) = Σ_t c_t ⟨a_t, b_t⟩ ≥ 0`` (``kind="inequality"``) or ``= 0`` (``"equality"``)."""

    name: str
    kind: str
    terms: tuple[tuple[float, Signal, Signal], ...]

    def matrix(self, index: Mapping[str, int], size: int) -> np.ndarray:
        """Symmetric ``Q`` with ``q(v) = Σ_ab Q_ab ⟨v_a, v_b⟩``."""
        Q = np.zeros((size, size))
        for coefficient, a, b in self.terms:
            outer = np.outer(a.vector(index, size), b.vector(index, size))
            Q += 0.5 * coefficient * (outer + outer.T)
        return Q


def sector(u: Signal, x: Signal, low: float, high: float, name: str) -> QuadraticConstraint:
    """``⟨u − low·x, high·x − u⟩ ≥ 0``.

    For ``f`` ``μ``-strongly convex and ``L``-smooth, ``u = ∇f(a) − ∇f(b)`` and ``x = a − b``
    satisfy it with ``(low, high) = (μ, L)``; it is equivalent to the co-coercivity inequality
    ``⟨u, x⟩ ≥ μL/(μ+L)‖x‖² + ‖u‖²/(μ+L)`` (Nesterov 2004, Thm 2.1.12).
    """
    return QuadraticConstraint(name, "inequality", ((1.0, u - low * x, high * x - u),))


def norm_bound(e: Signal, v: Signal, factor: float, name: str) -> QuadraticConstraint:
    """``‖e‖² ≤ factor·‖v‖²``."""
    return QuadraticConstraint(name, "inequality", ((factor, v, v), (-1.0, e, e)))


def orthogonal(e: Signal, v: Signal, name: str) -> QuadraticConstraint:
    """``⟨e, v − e⟩ = 0`` (a sparsifier's error and output have disjoint supports)."""
    return QuadraticConstraint(name, "equality", ((1.0, e, v - e),))


@dataclass(frozen=True)
class Mode:
    """One linear round ``s⁺ = N v`` and the constraints its nonlinear inputs satisfy."""

    name: str
    next_state: Mapping[str, Signal]
    constraints: tuple[QuadraticConstraint, ...]


@dataclass(frozen=True)
class LinearModel:
    """An algorithm as a (switched) linear system with quadratic constraints.

    Attributes
    ----------
    algorithm : str
    params : dict
        The parameters the model was built with (step, δ, ξ, constants, ...).
    states, inputs : tuple of str
        Names of the state entries ``s`` and the nonlinear outputs ``w``, in order.
    modes : tuple of Mode
        One for a time-invariant algorithm; several share one ``P``.
    theta : str
        The state entry holding ``θ − θ*``.
    sensitivity : dict of str to float
        ``c_a`` with ``‖δs_a‖ ≤ c_a ‖θ̂ − θ*‖`` when the state is computed from an approximate
        optimum ``θ̂`` (see :func:`convcheck.theory.certified.initial_state`).
    """

    algorithm: str
    params: dict
    states: tuple[str, ...]
    inputs: tuple[str, ...]
    modes: tuple[Mode, ...]
    theta: str = "x"
    sensitivity: Mapping[str, float] = field(default_factory=dict)

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.states + self.inputs)}

    def matrices(self, mode: Mode) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """``N`` (n_s × n), the inequality matrices and the equality matrices of ``mode``."""
        index, size = self.index, len(self.states) + len(self.inputs)
        missing = [name for name in self.states if name not in mode.next_state]
        if missing:
            raise ValueError(f"mode {mode.name!r} has no update for state {missing[0]!r}")
        N = np.array([mode.next_state[name].vector(index, size) for name in self.states])
        ineq = [c.matrix(index, size) for c in mode.constraints if c.kind == "inequality"]
        eq = [c.matrix(index, size) for c in mode.constraints if c.kind == "equality"]
        return N, ineq, eq

    def theta_vector(self) -> np.ndarray:
        e = np.zeros(len(self.states))
        e[self.states.index(self.theta)] = 1.0
        return e


@dataclass(frozen=True)
class Verification:
    """numpy re-check of one candidate certificate.

    Attributes
    ----------
    lmi_max_eigenvalue : list of float
        ``λmax`` of each mode's LMI matrix (must be ``≤ −lmi_tolerance``).
    lmi_tolerance : list of float
        ``8·n·ε_mach·‖M‖_F`` per mode.
    p_min_eigenvalue : float
        ``λmin(P − e_θe_θᵀ)`` (must be ``≥ p_tolerance``).
    p_tolerance : float
    passed : bool
    """

    lmi_max_eigenvalue: list[float]
    lmi_tolerance: list[float]
    p_min_eigenvalue: float
    p_tolerance: float
    passed: bool


@dataclass(frozen=True)
class Certificate:
    """The result of :func:`certify_model`.

    Attributes
    ----------
    model : LinearModel
    certified : bool
        A linear rate ``ρ < 1`` was found and verified.
    rho : float or None
        Least verified rate: ``‖θ^k − θ*‖² ≤ ρ^{2k} s⁰ᵀPs⁰`` (``ρ`` contracts the distance).
    rho_infeasible : float
        Largest ``ρ`` tried without a verified certificate (``ρ*`` lies in
        ``(rho_infeasible, rho]`` up to the margin); ``1.0`` when nothing below 1 was found.
    P : ndarray or None
        ``(n_s, n_s)``, rows and columns in ``model.states`` order.
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

    def lyapunov(self, state: np.ndarray) -> float:
        """``V(s) = Σ_ab P_ab ⟨s_a, s_b⟩`` of a state given as rows ``(n_s, d)``."""
        if self.P is None:
            raise InputError("certificate", "uncertified", "a certified rate (P exists)")
        rows = np.asarray(state, dtype=np.float64).reshape(len(self.model.states), -1)
        return float(np.sum(self.P * (rows @ rows.T)))

    def as_dict(self) -> dict[str, Any]:
        """Plain data for reports and ``convcheck certify --json``."""
        return {
            "algorithm": self.model.algorithm,
            "params": self.model.params,
            "certified": self.certified,
            "rho": self.rho,
            "rho_squared": None if self.rho is None else self.rho**2,
            "rho_infeasible": self.rho_infeasible,
            "reason": self.reason,
            "states": list(self.model.states),
            "inputs": list(self.model.inputs),
            "modes": [mode.name for mode in self.model.modes],
            "P": None if self.P is None else self.P.tolist(),
            "multipliers": self.multipliers,
            "verification": None if self.verification is None else vars(self.verification),
            "solves": self.solves,
            "seconds": self.seconds,
            "solver": self.solver,
            "tolerance": self.tolerance,
        }


class _SDP:
    """The SDP of a model at a parametrized ``ρ²`` (compiled once by cvxpy).

    Maximize the margin ``t`` subject to ``trace(P) = 1``, ``P ⪰ tI`` and, for every mode,
    ``Nᵀ P N − ρ² Sᵀ P S + Σ_j λ_j Q_j ⪯ −tI``. By homogeneity a strict certificate exists iff
    ``t* > 0``; maximizing the margin keeps the solution away from the boundary, so that the
    solver's round-off does not spoil the numpy re-check. ``P`` is then rescaled to
    ``P ⪰ e_θe_θᵀ`` (see :meth:`normalize`).
    """

    def __init__(self, model: LinearModel) -> None:
        import cvxpy as cp

        self.cp = cp
        self.model = model
        n_s = len(model.states)
        n = n_s + len(model.inputs)
        self.P = cp.Variable((n_s, n_s), symmetric=True)
        self.t = cp.Variable()
        self.rho2 = cp.Parameter(nonneg=True)
        select = np.hstack([np.eye(n_s), np.zeros((n_s, n - n_s))])
        constraints = [cp.trace(self.P) == 1.0, self.P >> self.t * np.eye(n_s)]
        self.blocks = []
        for mode in model.modes:
            N, ineq, eq = model.matrices(mode)
            lam_ineq = cp.Variable(len(ineq), nonneg=True) if ineq else None
            lam_eq = cp.Variable(len(eq)) if eq else None
            lmi = N.T @ self.P @ N - self.rho2 * (select.T @ self.P @ select)
            for stack, lam in ((ineq, lam_ineq), (eq, lam_eq)):
                if stack:
                    flat = np.stack([Q.ravel() for Q in stack], axis=1)
                    lmi = lmi + cp.reshape(flat @ lam, (n, n), order="C")
            constraints.append(0.5 * (lmi + lmi.T) << -self.t * np.eye(n))
            self.blocks.append((mode, N, ineq, eq, lam_ineq, lam_eq))
        self.problem = cp.Problem(cp.Maximize(self.t), constraints)
        self.select = select

    def solve(self, rho: float) -> tuple[np.ndarray, list, str] | None:
        """``(P, [(λ_ineq, λ_eq) per mode], solver)`` normalized to ``P ⪰ e_θe_θᵀ``, or None
        when no solver finds a positive margin."""
        cp = self.cp
        self.rho2.value = rho**2
        for solver in SOLVERS:
            try:
                with warnings.catch_warnings():  # "inaccurate" solutions are re-checked anyway
                    warnings.simplefilter("ignore", UserWarning)
                    self.problem.solve(solver=solver, **SOLVER_OPTIONS.get(solver, {}))
            except cp.error.SolverError:
                continue
            if self.P.value is None or self.t.value is None:
                continue
            if not self.t.value > 0:
                return None
            lams = [
                (
                    np.zeros(0) if li is None else np.maximum(np.asarray(li.value), 0.0),
                    np.zeros(0) if le is None else np.asarray(le.value),
                )
                for (_, _, _, _, li, le) in self.blocks
            ]
            return self.normalize(np.asarray(self.P.value), lams) + (solver,)
        return None

    def normalize(self, P: np.ndarray, lams: list) -> tuple[np.ndarray, list]:
        """Scale ``(P, λ)`` by ``(1 + η)·e_θᵀP⁻¹e_θ``.

        ``1/(e_θᵀP⁻¹e_θ)`` is the largest ``c`` with ``P ⪰ c·e_θe_θᵀ`` (Schur complement), so the
        scaled ``P`` satisfies ``P ⪰ e_θe_θᵀ`` with the smallest ``V``; the relative slack
        ``η = 100·τ_P/λmin(P)`` (clipped to ``[10⁻¹², 10⁻³]``) lifts the one tight direction of
        ``P − e_θe_θᵀ`` to about ``η·λmin(P)``, above the rounding tolerance ``τ_P`` of the
        re-check.
        """
        P = 0.5 * (P + P.T)
        e = self.model.theta_vector()
        lowest = float(np.linalg.eigvalsh(P)[0])
        if not lowest > 0:
            return P, lams
        rounding = 8 * P.shape[0] * np.finfo(float).eps * float(np.linalg.norm(P))
        slack = float(np.clip(100 * rounding / lowest, 1e-12, 1e-3))
        scale = float(e @ np.linalg.solve(P, e)) * (1.0 + slack)
        return scale * P, [(scale * a, scale * b) for a, b in lams]

    def verify(self, rho: float, P: np.ndarray, lams: list) -> Verification:
        """Rebuild every LMI matrix in numpy and bound its eigenvalues (see the module doc)."""
        eps = np.finfo(float).eps
        P = 0.5 * (P + P.T)
        maxima, tolerances = [], []
        for (_, N, ineq, eq, _, _), (lam_ineq, lam_eq) in zip(self.blocks, lams, strict=True):
            M = N.T @ P @ N - rho**2 * (self.select.T @ P @ self.select)
            for stack, lam in ((ineq, lam_ineq), (eq, lam_eq)):
                for Q, value in zip(stack, lam, strict=True):
                    M = M + value * Q
            M = 0.5 * (M + M.T)
            maxima.append(float(np.linalg.eigvalsh(M)[-1]))
            tolerances.append(float(8 * M.shape[0] * eps * np.linalg.norm(M)))
        e = self.model.theta_vector()
        p_min = float(np.linalg.eigvalsh(P - np.outer(e, e))[0])
        p_tol = float(8 * P.shape[0] * eps * np.linalg.norm(P))
        passed = all(m <= -t for m, t in zip(maxima, tolerances, strict=True)) and p_min >= p_tol
        return Verification(maxima, tolerances, p_min, p_tol, passed)


def certify_model(
    model: LinearModel, *, tol: float = RHO_TOL, hint: float | None = None
) -> Certificate:
    """Least verified linear rate of ``model`` by bisection on ``ρ ∈ [0, 1]``.

    Parameters
    ----------
    model : LinearModel
    tol : float
        Stop when the bracket ``(rho_infeasible, rho]`` is at most ``tol`` wide.
    hint : float, optional
        A guess of a lower bound on the least ``ρ`` (e.g. the rate of plain GD); it is tried
        first and only narrows the bracket (a wrong hint costs one solve, never a wrong ``ρ``).

    Returns
    -------
    Certificate
        ``certified=False`` with "no linear rate certified" when no verified certificate
        exists at ``ρ = 1`` or at any tested ``ρ < 1``.
    """
    tol = check_real("tol", tol, 1e-12, 0.1)
    started = time.perf_counter()
    sdp = _SDP(model)
    solves = 0

    def attempt(rho: float):
        nonlocal solves
        solves += 1
        solution = sdp.solve(rho)
        if solution is None:
            return None
        P, lams, solver = solution
        verification = sdp.verify(rho, P, lams)
        return (P, lams, solver, verification) if verification.passed else None

    best = attempt(1.0)
    if best is None:
        return _uncertified(
            model,
            "no linear rate certified: the LMI has no verified solution even at ρ = 1",
            solves,
            started,
            tol,
        )
    low, high = 0.0, 1.0
    if hint is not None and 0.0 < hint < 1.0 - tol:
        found = attempt(hint)
        if found is None:
            low = hint
        else:
            high, best = hint, found
    while high - low > tol:
        middle = 0.5 * (low + high)
        found = attempt(middle)
        if found is None:
            low = middle
        else:
            high, best = middle, found
    if high >= 1.0:
        return _uncertified(
            model,
            "no linear rate certified: a certificate exists at ρ = 1 (no growth) but at no ρ < 1",
            solves,
            started,
            tol,
        )
    P, lams, solver, verification = best
    multipliers = []
    for mode, (lam_ineq, lam_eq) in zip(model.modes, lams, strict=True):
        names_ineq = [c.name for c in mode.constraints if c.kind == "inequality"]
        names_eq = [c.name for c in mode.constraints if c.kind == "equality"]
        values = dict(zip(names_ineq, map(float, lam_ineq), strict=True))
        values.update(zip(names_eq, map(float, lam_eq), strict=True))
        multipliers.append(values)
    return Certificate(
        model=model,
        certified=True,
        rho=high,
        rho_infeasible=low,
        P=0.5 * (P + P.T),
        multipliers=multipliers,
        verification=verification,
        reason=f"certified ρ = {high:.9g} (‖θ^k − θ*‖² ≤ ρ^(2k)·V(s⁰)); none verified at {low:.9g}",
        solves=solves,
        seconds=time.perf_counter() - started,
        solver=solver,
        tolerance=tol,
    )


def _uncertified(
    model: LinearModel, reason: str, solves: int, started: float, tol: float
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
    )
