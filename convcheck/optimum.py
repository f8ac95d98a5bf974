"""Certified reference optimum (docs/algorithms.md §1).

Newton's method with backtracking drives ``‖∇f(θ̂)‖ ≤ rtol · max(1, ‖∇f(θ⁰)‖)`` (``θ⁰ = 0``,
``rtol = 1e-10``). For μ-strongly convex ``f`` the gap is then certified,
``0 ≤ f(θ̂) − f* ≤ ‖∇f(θ̂)‖² / (2μ)``, so ``f_low = f(θ̂) − ‖∇f(θ̂)‖²/(2μ) ≤ f*``: measuring
``f(θ) − f_low`` never under-states the true gap. For nonconvex objectives ``f*`` is unknown and
the certified lower bound ``f_low = 0`` is used (every loss and the regularizers are ≥ 0).
A cvxpy (Clarabel) solve is an independent cross-check; its disagreement is reported.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, cg

from convcheck.errors import OptimumError
from convcheck.objectives import Objective

#: Relative gradient-norm target of the certificate.
GRADIENT_RTOL = 1e-10
#: Newton solves the ``d × d`` system densely up to this dimension, else by conjugate gradients.
DENSE_NEWTON_LIMIT = 3000
#: Cross-checks run by default only when the problem has at most this many stored entries.
CROSS_CHECK_LIMIT = 5_000_000


@dataclass(frozen=True)
class CrossCheck:
    """An independent cvxpy solve compared with the certified optimum.

    Attributes
    ----------
    solver, status : str
        cvxpy solver and its status.
    value : float
        ``f(θ_cvx)`` evaluated by convcheck (not the solver's own objective value).
    value_difference : float
        ``f(θ_cvx) − f(θ̂)``; negative beyond ``gap_bound`` would contradict the certificate.
    distance : float
        ``‖θ_cvx − θ̂‖``.
    agrees : bool
        ``|value_difference| ≤ tolerance`` and, for μ-strongly convex objectives, both points
        consistent with one minimizer: ``f(θ_cvx) ≥ f_low`` and ``distance ≤ distance_bound``.
    tolerance : float
    seconds : float
    distance_bound : float or None
        Strong convexity places ``θ̂`` within ``‖∇f(θ̂)‖/μ`` of ``θ*`` and ``θ_cvx`` within
        ``sqrt(2(f(θ_cvx) − f_low)/μ)``; their sum (None without μ > 0).
    """

    solver: str
    status: str
    value: float
    value_difference: float
    distance: float
    agrees: bool
    tolerance: float
    seconds: float
    distance_bound: float | None = None


@dataclass(frozen=True)
class Optimum:
    """Reference optimum of an objective and its certificate.

    Attributes
    ----------
    theta : ndarray or None
        ``θ̂`` (None for nonconvex objectives).
    value : float or None
        ``f(θ̂)``.
    grad_norm : float or None
        ``‖∇f(θ̂)‖``.
    tolerance : float or None
        The gradient-norm target that was met.
    gap_bound : float or None
        ``‖∇f(θ̂)‖²/(2μ)`` (strongly convex), else None (no certificate).
    f_low : float
        Certified lower bound on ``f*`` used by every bound.
    certificate : str
        How ``f_low`` is certified, in words.
    iterations : int
        Newton iterations.
    cross_check : CrossCheck or None
    """

    theta: np.ndarray | None
    value: float | None
    grad_norm: float | None
    tolerance: float | None
    gap_bound: float | None
    f_low: float
    certificate: str
    iterations: int
    cross_check: CrossCheck | None

    def as_dict(self) -> dict:
        """Plain-data form for reports (θ̂ left out)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("theta", "cross_check")}
        out["cross_check"] = asdict(self.cross_check) if self.cross_check else None
        return out


def _newton_direction(objective: Objective, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Solve ``∇²f(θ) p = −∇f(θ)`` (Cholesky, else least squares; CG in high dimension)."""
    if objective.dim <= DENSE_NEWTON_LIMIT:
        hessian = objective.hessian(theta)
        try:
            return sla.cho_solve(sla.cho_factor(hessian), -grad)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(hessian, -grad, rcond=None)[0]
    operator = LinearOperator(
        (objective.dim, objective.dim), matvec=lambda v: objective.hessian_vector(theta, v)
    )
    direction, _ = cg(operator, -grad, rtol=1e-12, maxiter=10 * objective.dim)
    return direction


def newton_minimize(
    objective: Objective, *, rtol: float = GRADIENT_RTOL, max_iter: int = 200
) -> tuple[np.ndarray, int, float]:
    """Minimize a convex objective from ``θ⁰ = 0`` by damped Newton.

    Returns ``(θ̂, iterations, tolerance)`` with ``‖∇f(θ̂)‖ ≤ tolerance``. Backtracking accepts
    ``f(θ + tp) ≤ f(θ) + 10⁻⁴ t ∇fᵀp + 10 ε |f(θ)|`` (the last term absorbs round-off near the
    optimum, where Newton converges quadratically).

    Raises
    ------
    OptimumError
        When the target is not met within ``max_iter`` iterations (e.g. separable data for
        logistic regression without L2: the infimum is not attained).
    """
    theta = np.zeros(objective.dim)
    grad = objective.gradient(theta)
    tolerance = rtol * max(1.0, float(np.linalg.norm(grad)))
    value = objective.value(theta)
    for iteration in range(max_iter):
        if np.linalg.norm(grad) <= tolerance:
            return theta, iteration, tolerance
        direction = _newton_direction(objective, theta, grad)
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction (singular Hessian): fall back to the gradient
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0
        while True:
            candidate = theta + step * direction
            candidate_value = objective.value(candidate)
            slack = 10 * np.finfo(float).eps * abs(value)
            if candidate_value <= value + 1e-4 * step * slope + slack or step < 1e-12:
                break
            step *= 0.5
        theta, value = candidate, candidate_value
        grad = objective.gradient(theta)
    raise OptimumError(
        f"{objective.family} on {objective.name}: Newton did not reach ‖∇f‖ ≤ {tolerance:.3g} in "
        f"{max_iter} iterations (‖∇f‖ = {np.linalg.norm(grad):.3g}, ‖θ‖ = "
        f"{np.linalg.norm(theta):.3g}, f = {value:.6g}). If ‖θ‖ is large the infimum is not "
        "attained (e.g. linearly separable data without L2): use lam > 0."
    )


def separating_direction(objective: Objective) -> np.ndarray | None:
    """A direction along which unregularized logistic loss decreases forever, or None.

    The infimum of ``Σ_i w_i log(1 + e^{−b_i a_iᵀθ})`` is attained iff no ``v`` has
    ``b_i a_iᵀv ≥ 0`` for every row with at least one strict inequality (the data are not
    (quasi-)separable). The linear program ``max Σ_i b_i a_iᵀv`` s.t. ``b_i a_iᵀv ≥ 0``,
    ``−1 ≤ v ≤ 1`` (HiGHS) has a positive value exactly when such a ``v`` exists.
    """
    from scipy.optimize import linprog

    keep = objective.shards.weights.ravel() > 0
    rows = objective.shards.stacked()[keep]
    signed = sp.diags(objective.shards.labels.ravel()[keep]) @ rows
    signed = sp.csr_matrix(signed) if sp.issparse(signed) else signed
    result = linprog(
        -np.asarray(signed.sum(axis=0)).ravel(),
        A_ub=-signed,
        b_ub=np.zeros(rows.shape[0]),
        bounds=(-1.0, 1.0),
        method="highs",
    )
    scale = max(1.0, float(abs(signed).max()))
    if result.status == 0 and -result.fun > 1e-9 * scale * rows.shape[0]:
        return result.x
    return None


def _cvxpy_problem(objective: Objective, cp):
    """The objective as a cvxpy problem over the rows that carry weight."""
    rows = objective.shards.stacked()
    weights = objective.shards.weights.ravel() / objective.n_workers
    keep = weights > 0
    rows, weights, labels = rows[keep], weights[keep], objective.shards.labels.ravel()[keep]
    if sp.issparse(rows):
        rows = sp.csr_matrix(rows)
    theta = cp.Variable(objective.dim)
    margins = rows @ theta
    if objective.family == "ridge":
        data_term = 0.5 * cp.sum_squares(cp.multiply(np.sqrt(weights), margins - labels))
    else:
        data_term = weights @ cp.logistic(-cp.multiply(labels, margins))
    return cp.Problem(cp.Minimize(data_term + 0.5 * objective.lam * cp.sum_squares(theta))), theta


#: Solvers tried in order by :func:`cross_check`: Clarabel, then SCS where Clarabel fails
#: (it stops with a numerical error on some rank-deficient least-squares problems).
CROSS_CHECK_SOLVERS = ("CLARABEL", "SCS")


def cross_check(
    objective: Objective, reference: np.ndarray, *, solvers: tuple[str, ...] = CROSS_CHECK_SOLVERS
) -> CrossCheck:
    """Solve the (convex) objective with cvxpy and compare with ``reference``.

    The solvers are tried in order until one reports ``optimal``; the status records every
    failure before it. The tolerance of agreement is ``1e-6 · max(1, |f(θ̂)|)``, the accuracy
    an interior-point solver reaches by default.
    """
    import cvxpy as cp

    problem, theta = _cvxpy_problem(objective, cp)
    start = time.perf_counter()
    failures: list[str] = []
    for solver in solvers:
        try:
            problem.solve(solver=solver)
            status = problem.status
        except cp.error.SolverError as error:
            status = f"solver error: {error}"
        if status == cp.OPTIMAL:
            break
        failures.append(f"{solver}: {status}")
    if failures:
        status = f"{status} (after {'; '.join(failures)})"
    seconds = time.perf_counter() - start
    reference_value = objective.value(reference)
    tolerance = 1e-6 * max(1.0, abs(reference_value))
    if theta.value is None or problem.status != cp.OPTIMAL:
        return CrossCheck(solver, status, np.nan, np.nan, np.nan, False, tolerance, seconds)
    solution = np.asarray(theta.value, dtype=np.float64)
    value = objective.value(solution)
    difference = value - reference_value
    distance = float(np.linalg.norm(solution - reference))
    agrees = bool(abs(difference) <= tolerance)
    bound = None
    mu = objective.constants.mu
    if mu > 0:
        grad_norm = float(np.linalg.norm(objective.gradient(reference)))
        above_low = difference + grad_norm**2 / (2 * mu)  # f(θ_cvx) − f_low ≥ f(θ_cvx) − f*
        rounding = 10 * np.finfo(float).eps * max(1.0, abs(reference_value))
        bound = grad_norm / mu + float(np.sqrt(2 * (max(above_low, 0.0) + rounding) / mu))
        agrees = agrees and above_low >= -rounding and distance <= bound
    return CrossCheck(
        solver=solver,
        status=status,
        value=value,
        value_difference=difference,
        distance=distance,
        agrees=agrees,
        tolerance=tolerance,
        seconds=seconds,
        distance_bound=bound,
    )


def check_attainable(objective: Objective) -> None:
    """Raise :class:`OptimumError` when a convex logistic objective without L2 has no minimizer
    (separable data, :func:`separating_direction`); other objectives pass."""
    if objective.family == "ridge" or objective.constants.problem_class != "convex":
        return
    direction = separating_direction(objective)
    if direction is not None:
        raise OptimumError(
            f"{objective.family} on {objective.name} with lam = 0 has no minimizer: the data "
            "are linearly (quasi-)separable, so f decreases forever along a direction v "
            f"with b_i a_iᵀv ≥ 0 (found one with ‖v‖∞ = {np.abs(direction).max():.3g}). "
            "Use lam > 0."
        )


def certify_optimum(objective: Objective, *, with_cross_check: bool | None = None) -> Optimum:
    """Reference optimum of ``objective`` with its certificate (see the module docstring).

    ``with_cross_check=None`` runs the cvxpy cross-check when the problem has at most
    :data:`CROSS_CHECK_LIMIT` stored entries.
    """
    constants = objective.constants
    if constants.problem_class == "nonconvex":
        return Optimum(
            theta=None,
            value=None,
            grad_norm=None,
            tolerance=None,
            gap_bound=None,
            f_low=0.0,
            certificate="f_low = 0: every loss term and the regularizers are nonnegative",
            iterations=0,
            cross_check=None,
        )
    check_attainable(objective)
    theta, iterations, tolerance = newton_minimize(objective)
    value = objective.value(theta)
    grad_norm = float(np.linalg.norm(objective.gradient(theta)))
    if constants.mu > 0:
        gap_bound = grad_norm**2 / (2 * constants.mu)
        f_low = value - gap_bound
        certificate = "f(θ̂) − f* ≤ ‖∇f(θ̂)‖²/(2μ) (strong convexity)"
    else:
        gap_bound, f_low = None, value
        certificate = "uncertified: convex without μ > 0; f_low = f(θ̂) with ‖∇f(θ̂)‖ ≤ tolerance"
    if with_cross_check is None:
        rows = objective.shards.stacked()
        entries = rows.nnz if sp.issparse(rows) else rows.size
        with_cross_check = entries <= CROSS_CHECK_LIMIT
    return Optimum(
        theta=theta,
        value=value,
        grad_norm=grad_norm,
        tolerance=tolerance,
        gap_bound=gap_bound,
        f_low=f_low,
        certificate=certificate,
        iterations=iterations,
        cross_check=cross_check(objective, theta) if with_cross_check else None,
    )
