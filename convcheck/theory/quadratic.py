"""Rates on a quadratic instance: GD's exact rate and a lower envelope along the slowest
eigen-direction (docs/theory.md §8).

For least squares (``family = "ridge"``) ``f(θ) = ½(θ − θ*)ᵀH(θ − θ*) + f*`` with
``H = (1/M)Σ_m H_m + λI``, so ``∇f(θ) = H(θ − θ*)``. Here ``H`` is built from gradient
differences, ``H e_j = ∇f(e_j) − ∇f(0)`` — independently of the objective's own Hessian and
constants — and its eigen-decomposition ``H = V diag(λ) Vᵀ`` gives:

* :func:`gd_distances` — GD's exact trajectory ``‖θ^k − θ̂‖² = Σ_i c_i² (1 − αλ_i)^{2k}``,
  ``c = Vᵀ(θ⁰ − θ̂)``; its rate tends to ``max_i (1 − αλ_i)²`` over the directions present in
  ``θ⁰ − θ̂`` (``max_i |1 − αλ_i|`` per iteration on ``‖θ^k − θ̂‖``);
* :func:`slowest_direction_envelope` — for an algorithm whose virtual iterate
  ``x̃^k = θ^k − z^k`` moves exactly like GD, ``x̃^{k+1} = x̃^k − α∇f(θ^k)`` (GD: ``z = 0``;
  GD-SEC: ``z = (α/M)Σ_m e_m``; EF: ``z = (1/M)Σ_m e_m``; bidirectional top-k:
  ``z = (1/M)Σ_m e_m + δ``), or whose gradient error ``d^k = g^k − ∇f(θ^k)`` is traced (EF21),
  a lower bound ``‖θ^k − θ*‖ ≥ B_k − Z_k`` with ``B_0 = ‖P(θ⁰ − θ*)‖``,
  ``B_{k+1} = q B_k − s Z_k`` (EF21: ``B_{k+1} = q B_k − α D_k``, no ``−Z_k``), where ``P``
  projects on the eigenvectors of the bottom eigenvalue cluster, ``q = min |1 − αλ|`` and
  ``s = max αλ`` over it, and ``Z_k ≥ ‖z^k‖`` (``D_k ≥ ‖d^k‖``) is read from the trace. Without
  memories the envelope is ``q^k B_0``: no algorithm of this form converges faster than
  ``1 − αμ`` along the slowest direction, up to what its memories carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convcheck.algorithms.base import Algorithm
from convcheck.algorithms.bidirectional import BidirectionalTopK
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.algorithms.ef21 import EF21
from convcheck.algorithms.gd import GD
from convcheck.algorithms.gdsec import GDSEC
from convcheck.engine.trace import Run
from convcheck.problem import Problem
from convcheck.theory import quantities as q
from convcheck.theory.base import NotEvaluable

#: Relative asymmetry of the difference Hessian above which ``f`` is not taken as quadratic.
SYMMETRY_TOL = 1e-8
#: Eigenvalues within this fraction of ``λ_max`` of the smallest one form the slowest cluster.
CLUSTER_TOL = 1e-9


@dataclass(frozen=True)
class Spectrum:
    """The Hessian of a quadratic objective and its eigen-decomposition.

    Attributes
    ----------
    hessian : ndarray (d, d)
        ``H`` from gradient differences, symmetrized.
    eigenvalues : ndarray (d,)
        Ascending.
    eigenvectors : ndarray (d, d)
        Columns, orthonormal.
    asymmetry : float
        ``‖H − Hᵀ‖_F / ‖H‖_F`` before symmetrizing (round-off for a quadratic).
    """

    hessian: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    asymmetry: float

    @property
    def bottom(self) -> np.ndarray:
        """Indices of the slowest cluster: ``λ_i ≤ λ_min + CLUSTER_TOL·λ_max``."""
        values = self.eigenvalues
        return np.flatnonzero(values <= values[0] + CLUSTER_TOL * abs(values[-1]))

    def gd_rate(self, alpha: float) -> float:
        """``max_i |1 − αλ_i|``: GD's rate per iteration on ``‖θ^k − θ*‖``."""
        return float(np.max(np.abs(1.0 - alpha * self.eigenvalues)))


def spectrum(problem: Problem) -> Spectrum:
    """The Hessian of a least-squares problem from gradient differences, and its eigenpairs.

    Raises
    ------
    NotEvaluable
        The problem is not least squares, or the difference Hessian is not symmetric (then
        ``f`` is not quadratic).
    """
    objective = problem.objective
    if objective.family != "ridge":
        raise NotEvaluable(f"the objective is {objective.family}, not a quadratic (ridge)")
    d = objective.dim
    origin = objective.gradient(np.zeros(d))
    columns = [objective.gradient(unit) - origin for unit in np.eye(d)]
    hessian = np.stack(columns, axis=1)
    scale = float(np.linalg.norm(hessian))
    asymmetry = float(np.linalg.norm(hessian - hessian.T)) / scale if scale else 0.0
    if asymmetry > SYMMETRY_TOL:
        raise NotEvaluable(f"the difference Hessian is not symmetric ({asymmetry:.3g})")
    hessian = 0.5 * (hessian + hessian.T)
    values, vectors = np.linalg.eigh(hessian)
    return Spectrum(hessian, values, vectors, asymmetry)


def gd_distances(spec: Spectrum, theta0: np.ndarray, theta_hat: np.ndarray, alpha: float,
                 iterations: np.ndarray) -> np.ndarray:
    """``‖θ^k − θ̂‖²`` of exact GD from ``θ⁰`` on ``f`` with minimizer ``θ̂``, at ``iterations``."""
    weights = (spec.eigenvectors.T @ (theta0 - theta_hat)) ** 2
    factors = (1.0 - alpha * spec.eigenvalues) ** 2
    with np.errstate(over="ignore", under="ignore"):
        return np.power.outer(factors, iterations.astype(np.float64)).T @ weights


#: Trace columns whose values bound ``‖z^k‖`` for the virtual-iterate algorithms:
#: ``(column, is_squared)`` pairs, ``Z_k`` = the sum of the (square roots of the) columns.
#: ``(1/M)Σ_m‖e_m‖² ≥ ‖(1/M)Σ_m e_m‖²`` (Jensen); ``w_norm`` is ``‖(α/M)Σ_m e_m‖`` itself.
MEMORY_COLUMNS: tuple[tuple[type, tuple[tuple[str, bool], ...]], ...] = (
    (GDSEC, (("w_norm", False),)),
    (BidirectionalTopK, (("error_norm_sq", True), ("server_error_norm_sq", True))),
    (ErrorFeedback, (("error_norm_sq", True),)),
    (GD, ()),
)
#: EF21's ``G^k = (1/M)Σ_m‖g_m^k − ∇f_m(θ^k)‖² ≥ ‖g^k − ∇f(θ^k)‖²`` (trace column ``ef21_G``).
GRADIENT_ERROR_COLUMN = "ef21_G"


def _memory(algorithm: Algorithm) -> tuple[tuple[str, bool], ...] | None:
    """The memory columns of ``algorithm`` (a subclass, e.g. a mutant, counts as its parent)."""
    return next((columns for cls, columns in MEMORY_COLUMNS if isinstance(algorithm, cls)), None)


@dataclass(frozen=True)
class Envelope:
    """A lower envelope of ``‖θ^k − θ*‖`` on a run.

    Attributes
    ----------
    iterations : ndarray
    lower : ndarray
        ``B_k − Z_k`` (EF21: ``B_k``), a lower bound of ``‖θ^k − θ*‖`` computed with lower
        estimates (``B_0 = ‖P(θ⁰ − θ̂)‖ − r``).
    distance : ndarray
        ``‖θ^k − θ̂‖ + r ≥ ‖θ^k − θ*‖``, the run's upper estimate.
    floor : float
        Rounding and reference accuracy on the distance.
    rate : float
        ``q = min |1 − αλ|`` over the slowest cluster: the envelope's own rate per iteration
        without memories (``q²`` on squared distances).
    constants : dict
    """

    iterations: np.ndarray
    lower: np.ndarray
    distance: np.ndarray
    floor: float
    rate: float
    constants: dict


def slowest_direction_envelope(run: Run, problem: Problem, algorithm: Algorithm,
                               theta0: np.ndarray) -> Envelope:
    """The envelope of the module doc on ``run`` of ``algorithm`` (GD, GD-SEC, EF, EF21 or
    bidirectional top-k with full gradients, started at ``theta0``), with the algorithm's
    step ``α``.

    Raises
    ------
    NotEvaluable
        Not a quadratic, no reference optimum, an algorithm without a virtual iterate, or an
        envelope that is never above the floor after the start (nothing to check).
    """
    spec = spectrum(problem)
    ref = q.Reference.of(problem)
    if ref.theta_hat is None or not ref.radius_certified:
        raise NotEvaluable("no certified reference optimum θ̂")
    columns = _memory(algorithm)
    if columns is None and not isinstance(algorithm, EF21):
        raise NotEvaluable(f"no virtual iterate known for {algorithm.name} (known: gd, gd-sec, "
                           "ef, ef21, bidir-topk)")
    if algorithm.randomized:
        raise NotEvaluable(f"{algorithm.name} uses stochastic gradients or a randomized "
                           "compressor (the envelope is about deterministic runs)")
    alpha = float(algorithm.alpha)
    bottom = spec.bottom
    lam = spec.eigenvalues[bottom]
    rate = float(np.min(np.abs(1.0 - alpha * lam)))
    gain = float(alpha * np.max(lam))
    projector = spec.eigenvectors[:, bottom]
    start = max(float(np.linalg.norm(projector.T @ (theta0 - ref.theta_hat))) - ref.radius, 0.0)
    iterations = q.column(run, "iteration").astype(np.int64)
    if not np.all(np.diff(iterations) == 1):
        raise NotEvaluable("the trace skips iterations (the envelope needs every row)")
    if columns is None:  # EF21
        columns = ((GRADIENT_ERROR_COLUMN, True),)
        drive = alpha * np.sqrt(np.maximum(q.column(run, GRADIENT_ERROR_COLUMN), 0.0))
        memory = np.zeros_like(drive)
    else:
        memory = np.zeros(iterations.size)
        for name, squared in columns:
            values = q.column(run, name)
            memory = memory + (np.sqrt(np.maximum(values, 0.0)) if squared else values)
        drive = gain * memory
    lower = np.empty(iterations.size)
    current = start
    for k in range(iterations.size):
        lower[k] = current - memory[k]
        current = rate * current - drive[k]
    distance = np.sqrt(q.column(run, "dist_sq")) + ref.radius
    mu = float(spec.eigenvalues[0])
    floor = float(np.sqrt(q.distance_sq_floor(ref, alpha, mu))) if mu > 0 else 0.0
    resolved = np.flatnonzero(lower[1:] > floor) + 1
    if resolved.size == 0:
        raise NotEvaluable(
            "the lower envelope is below the floor from iteration 1 on (the start has no "
            "component along the slowest direction, or the memories are too large)"
        )
    constants = {
        "alpha": alpha,
        "lambda_min": mu,
        "lambda_max": float(spec.eigenvalues[-1]),
        "cluster_size": int(bottom.size),
        "lower_rate": rate,
        "gain": gain,
        "start_projection": start,
        "radius": ref.radius,
        "hessian_asymmetry": spec.asymmetry,
        "resolved_until": int(iterations[resolved[-1]]),
        "memory_columns": [name for name, _ in columns],
    }
    return Envelope(iterations, lower, distance, floor, rate, constants)
