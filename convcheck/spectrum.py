"""Extreme eigenvalues of the per-worker and global Gram matrices.

``H_m = A_mᵀA_m / n_m`` and ``H = (1/M) Σ_m H_m = ÃᵀÃ`` where ``Ã`` stacks the rows ``a_i``
scaled by ``sqrt(1/(M n_m))``. The largest eigenvalue of ``AᵀA`` equals that of ``AAᵀ``, so the
smaller of the two Gram matrices is decomposed exactly with ``eigh`` when its side is at most
:data:`DENSE_LIMIT`; otherwise Lanczos (``scipy.sparse.linalg.eigsh``) is used and its estimate
is moved outward by the recorded relative :data:`LANCZOS_SAFETY` margin, so that the reported
``λmax`` stays an upper bound and ``λmin`` a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, eigsh

from convcheck.shards import Shards

#: Largest Gram side decomposed densely.
DENSE_LIMIT = 2000
#: Relative margin applied to Lanczos estimates.
LANCZOS_SAFETY = 1e-6


@dataclass(frozen=True)
class Spectrum:
    """Extreme eigenvalues used by the constants.

    Attributes
    ----------
    worker_max : ndarray, shape (M,)
        ``λmax(H_m)``.
    global_max : float
        ``λmax(H)``.
    global_min : float
        ``λmin(H)`` (0 when ``H`` is singular; ``nan`` when not requested).
    method : str
        ``"eigh"`` if every value is exact, else ``"lanczos"``.
    safety_factor : float
        ``1 + LANCZOS_SAFETY`` when Lanczos was used, else 1.
    worker_min : ndarray of shape (M,) or None
        ``λmin(H_m)`` (0 when ``H_m`` is singular); ``None`` when not requested.
    """

    worker_max: np.ndarray
    global_max: float
    global_min: float
    method: str
    safety_factor: float
    worker_min: np.ndarray | None = None


def _gram_extremes(rows: np.ndarray | sp.spmatrix, need_min: bool) -> tuple[float, float, bool]:
    """``(λmin, λmax, exact)`` of ``rowsᵀ rows``; λmin is ``nan`` unless ``need_min``."""
    n, d = rows.shape
    side = min(n, d)
    if side <= DENSE_LIMIT:
        gram = rows.T @ rows if d <= n else rows @ rows.T
        gram = gram.toarray() if sp.issparse(gram) else gram
        eigenvalues = np.linalg.eigvalsh(gram)
        top = float(eigenvalues[-1])
        if not need_min:
            return np.nan, top, True
        if n < d:
            return 0.0, top, True
        bottom = float(eigenvalues[0])
        # Below this the smallest eigenvalue is round-off of a singular matrix.
        if bottom <= 10 * d * np.finfo(float).eps * top:
            bottom = 0.0
        return bottom, top, True
    operator = LinearOperator((d, d), matvec=lambda v: rows.T @ (rows @ v), dtype=np.float64)
    top = float(eigsh(operator, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0])
    top *= 1.0 + LANCZOS_SAFETY
    if not need_min:
        return np.nan, top, False
    if n < d:
        return 0.0, top, False
    bottom = float(eigsh(operator, k=1, which="SA", tol=1e-10, return_eigenvectors=False)[0])
    return max(bottom * (1.0 - LANCZOS_SAFETY), 0.0), top, False


def extreme_eigenvalues(shards: Shards, *, need_min: bool) -> Spectrum:
    """``λmax(H_m)`` for every worker, ``λmax(H)`` and (if ``need_min``) ``λmin(H_m)``, ``λmin(H)``.

    One-time setup: a loop over workers here costs one eigen-solve each, which dominates.
    """
    worker_max = np.empty(shards.n_workers)
    worker_min = np.empty(shards.n_workers) if need_min else None
    exact = True
    for m in range(shards.n_workers):
        rows = shards.worker_rows(m)
        bottom, top, is_exact = _gram_extremes(rows, need_min=need_min)
        worker_max[m] = top / rows.shape[0]
        if worker_min is not None:
            worker_min[m] = bottom / rows.shape[0]
        exact &= is_exact
    scale = np.sqrt(shards.weights.ravel() / shards.n_workers)
    stacked = shards.stacked()
    scaled = (
        stacked.multiply(scale[:, None]).tocsr()
        if sp.issparse(stacked)
        else stacked * scale[:, None]
    )
    real_rows = scaled[shards.weights.ravel() > 0]
    bottom, top, is_exact = _gram_extremes(real_rows, need_min)
    exact &= is_exact
    return Spectrum(
        worker_max=worker_max,
        global_max=top,
        global_min=bottom,
        method="eigh" if exact else "lanczos",
        safety_factor=1.0 if exact else 1.0 + LANCZOS_SAFETY,
        worker_min=worker_min,
    )
