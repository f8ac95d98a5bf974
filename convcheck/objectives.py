"""Objective families with batched per-worker gradients and exact smoothness constants.

``f(θ) = (1/M) Σ_m f_m(θ)`` with ``f_m(θ) = (1/n_m) Σ_{i∈S_m} ℓ(a_iᵀθ, b_i) + (λ/2)‖θ‖² + r(θ)``
(docs/algorithms.md §1):

============================  =====================================  ==========================
family                        loss ℓ(z, b) or regularizer r          curvature of the term
============================  =====================================  ==========================
``"ridge"``                   ½ (z − b)²  (λ = 0: least squares)      ℓ'' = 1
``"logistic"``                log(1 + e^{−bz}),  b ∈ {±1}            ℓ'' ∈ (0, 1/4]
``"nonconvex-logistic"``      logistic + λ_nc Σ_j θ_j² / (1 + θ_j²)  r'' ∈ [−λ_nc/2, 2λ_nc]
============================  =====================================  ==========================

With ``H_m = A_mᵀA_m / n_m`` and ``H = (1/M) Σ_m H_m``: ``L_m = c·λmax(H_m) + λ (+ 2λ_nc)``,
``L = c·λmax(H) + λ (+ 2λ_nc)`` with ``c = 1`` (ridge) or ``1/4`` (logistic), and the lower
curvature bound is ``λmin(H) + λ`` (ridge), ``λ`` (logistic), ``λ − λ_nc/2`` (nonconvex).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from convcheck.data import Dataset, Split
from convcheck.errors import InputError, check_choice, check_int, check_real
from convcheck.shards import PaddedShards, Shards, build_shards
from convcheck.spectrum import Spectrum, extreme_eigenvalues

FAMILIES = ("ridge", "logistic", "nonconvex-logistic")
#: Data-row entries (runs × stored rows) evaluated at a time by
#: :meth:`Objective.runs_values_and_gradients`: the loss's temporaries stay in cache.
RUN_BLOCK_ENTRIES = 1 << 14


def logistic_loss(margin: np.ndarray, value: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """``log(1 + e^{−m})`` (None unless ``value``) and ``σ(−m) = 1/(1 + e^{m})`` on an array
    of margins ``m = b·z``, from one exponential.

    With ``e = e^{−|m|} ∈ (0, 1]``: ``log(1 + e^{−m}) = max(−m, 0) + log1p(e)`` and
    ``σ(−m) = e/(1 + e)`` for ``m ≥ 0``, ``1/(1 + e)`` for ``m < 0``; both forms are accurate to
    a few ulps for every margin (no overflow, no cancellation), and they take one exp and one
    log1p per entry (one exp for the slope alone) where ``logaddexp`` and ``expit`` take three
    transcendental calls.
    """
    e = np.exp(-np.abs(margin))
    slope = np.where(margin >= 0.0, e, 1.0)
    slope /= 1.0 + e
    if not value:
        return None, slope
    loss = np.log1p(e)
    loss += np.maximum(-margin, 0.0)
    return loss, slope


@dataclass(frozen=True)
class Constants:
    """Smoothness and curvature constants of an objective (docs/algorithms.md §1).

    Attributes
    ----------
    L_workers : ndarray, shape (M,)
        ``L_m``, smoothness of each ``f_m``.
    L : float
        Smoothness of ``f``.
    L_tilde : float
        ``sqrt((1/M) Σ L_m²)``.
    L_max : float
        ``max_m L_m``.
    curvature_lower : float
        Certified lower bound on the eigenvalues of ``∇²f`` everywhere (may be negative).
    mu : float
        Strong convexity ``max(curvature_lower, 0)``.
    problem_class : {"strongly convex", "convex", "nonconvex"}
        What the constants certify: ``curvature_lower > 0``, ``= 0`` or ``< 0``.
    eigen_method : str
        How the extreme eigenvalues were computed (``"eigh"`` exact, or ``"lanczos"``).
    safety_factor : float
        Relative margin applied to Lanczos estimates (1.0 for ``eigh``).
    mu_workers : ndarray, shape (M,), or None
        ``μ_m = max(lower curvature of f_m, 0)``: ``λmin(H_m) + λ`` (ridge), ``λ`` (logistic),
        ``max(λ − λ_nc/2, 0)`` (nonconvex), computed like ``μ`` (used by the per-worker
        sector constraints of the certificates, docs/theory.md §4.2).
    """

    L_workers: np.ndarray
    L: float
    L_tilde: float
    L_max: float
    curvature_lower: float
    mu: float
    problem_class: str
    eigen_method: str
    safety_factor: float
    mu_workers: np.ndarray | None = None

    def as_dict(self) -> dict:
        """Plain-data form for reports."""
        return {
            "L_workers": self.L_workers.tolist(),
            "L": self.L,
            "L_tilde": self.L_tilde,
            "L_max": self.L_max,
            "curvature_lower": self.curvature_lower,
            "mu": self.mu,
            "class": self.problem_class,
            "eigen_method": self.eigen_method,
            "safety_factor": self.safety_factor,
            "mu_workers": None if self.mu_workers is None else self.mu_workers.tolist(),
        }


@dataclass(frozen=True, eq=False)
class Objective:
    """``f = (1/M) Σ_m f_m`` over the shards of a split dataset.

    Evaluate at a shared point ``θ ∈ R^d`` or at per-worker points ``Θ ∈ R^{M×d}`` (row ``m``
    for worker ``m``); every method is vectorized over workers.

    Attributes
    ----------
    family : str
        One of :data:`FAMILIES`.
    shards : Shards
        Each worker's rows and labels (``b ∈ {±1}`` for logistic families).
    lam : float
        L2 regularization ``λ ≥ 0``.
    lam_nc : float
        Weight ``λ_nc`` of the nonconvex regularizer (0 unless ``family == "nonconvex-logistic"``).
    name : str
        Description for reports (dataset, split).
    """

    family: str
    shards: Shards
    lam: float
    lam_nc: float
    name: str = ""

    @property
    def n_workers(self) -> int:
        return self.shards.n_workers

    @property
    def dim(self) -> int:
        return self.shards.dim

    # -- loss and regularizer, elementwise -------------------------------------------------
    def _loss(self, z: np.ndarray, b: np.ndarray, value: bool = True
              ) -> tuple[np.ndarray | None, np.ndarray]:
        """``ℓ(z, b)`` (None unless ``value``) and ``∂ℓ/∂z`` on row arrays."""
        if self.family == "ridge":
            residual = z - b
            return (0.5 * residual**2 if value else None), residual
        loss, slope = logistic_loss(b * z, value)
        return loss, -b * slope

    def _loss_curvature(self, z: np.ndarray) -> np.ndarray:
        """``∂²ℓ/∂z²`` on a row array."""
        if self.family == "ridge":
            return np.ones_like(z)
        return expit(z) * expit(-z)

    def _regularizer(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(λ/2)‖θ‖² + λ_nc Σ θ_j²/(1+θ_j²)`` (per row of ``theta``) and its gradient."""
        squares = theta**2
        value = 0.5 * self.lam * squares.sum(axis=-1)
        grad = self.lam * theta
        if self.lam_nc:
            value = value + self.lam_nc * (squares / (1.0 + squares)).sum(axis=-1)
            grad = grad + self.lam_nc * 2.0 * theta / (1.0 + squares) ** 2
        return value, grad

    # -- values and gradients --------------------------------------------------------------
    def worker_values(self, theta: np.ndarray) -> np.ndarray:
        """``(f_1(θ_1), …, f_M(θ_M))``; ``theta`` shared ``(d,)`` or per worker ``(M, d)``."""
        shards = self.shards
        loss, _ = self._loss(shards.forward(theta), shards.labels)
        reg, _ = self._regularizer(theta)
        return shards.worker_sum(shards.weights * loss) + reg

    def worker_values_and_gradients(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f_m(θ_m))_m`` ``(M,)`` and ``(∇f_m(θ_m))_m`` ``(M, d)`` from one forward pass."""
        shards = self.shards
        loss, slope = self._loss(shards.forward(theta), shards.labels)
        reg, reg_grad = self._regularizer(theta)
        values = shards.worker_sum(shards.weights * loss) + reg
        return values, shards.backward(shards.weights * slope) + reg_grad

    def runs_values_and_gradients(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f_m(θ_r))_{r,m}`` ``(R, M)`` and ``(∇f_m(θ_r))_{r,m}`` ``(R, M, d)`` at ``R``
        shared points ``thetas`` ``(R, d)`` (the runs of a batch); run ``r``'s entries equal
        ``worker_values_and_gradients(thetas[r])`` bit for bit.

        A stacked forward and backward product per block of runs (about
        :data:`RUN_BLOCK_ENTRIES` data-row entries, so that the loss's temporaries stay in
        cache).
        """
        shards = self.shards
        runs = thetas.shape[0]
        step = max(1, RUN_BLOCK_ENTRIES // shards.weights.size)
        if runs <= step:
            return self._runs_block(thetas)
        values = np.empty((runs, self.n_workers))
        gradients = np.empty((runs, self.n_workers, self.dim))
        for first in range(0, runs, step):
            block = slice(first, first + step)
            values[block], gradients[block] = self._runs_block(thetas[block])
        return values, gradients

    def _runs_block(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shards = self.shards
        loss, slope = self._loss(shards.forward_runs(thetas), shards.labels)
        reg, reg_grad = self._regularizer(thetas)
        values = shards.worker_sum(shards.weights * loss) + reg[:, None]
        return values, shards.backward_runs(shards.weights * slope) + reg_grad[:, None, :]

    def worker_gradients(self, theta: np.ndarray) -> np.ndarray:
        """``(M, d)`` array of ``∇f_m(θ_m)``; ``theta`` shared ``(d,)`` or per worker ``(M, d)``."""
        return self._gradients_on(self.shards, theta)

    def _gradients_on(self, shards: Shards, theta: np.ndarray) -> np.ndarray:
        """``Σ_i w_i ∇_θ ℓ(a_iᵀθ_m, b_i) + ∇r(θ_m)`` per worker, over the rows of ``shards``."""
        _, slope = self._loss(shards.forward(theta), shards.labels, value=False)
        _, reg_grad = self._regularizer(theta)
        return shards.backward(shards.weights * slope) + reg_grad

    def value(self, theta: np.ndarray) -> float:
        """``f(θ)``."""
        return float(self.worker_values(theta).mean())

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """``∇f(θ) = (1/M) Σ_m ∇f_m(θ)``."""
        return self.worker_gradients(theta).mean(axis=0)

    def stochastic_worker_gradients(
        self, theta: np.ndarray, batch_size: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Minibatch gradients, one ``(M, d)`` row per worker.

        Worker ``m`` draws ``batch_size`` rows of its shard uniformly with replacement and
        returns ``(1/B) Σ_j ∇_θ ℓ(a_{i_j}ᵀθ_m, b_{i_j}) + ∇(reg)(θ_m)``, an unbiased estimate of
        ``∇f_m(θ_m)``. Randomness: one ``rng.random((M, B))`` draw.
        """
        batch_size = check_int("batch_size", batch_size, 1)
        local_rows = np.floor(rng.random((self.n_workers, batch_size)) * self.shards.sizes[:, None])
        features, labels = self.shards.gather(local_rows.astype(np.int64))
        sizes = np.full(self.n_workers, batch_size)
        batch = PaddedShards(features, labels, np.full(labels.shape, 1.0 / batch_size), sizes)
        return self._gradients_on(batch, theta)

    # -- one worker at a time (asynchronous engine) ----------------------------------------
    def restrict(self, m: int) -> Objective:
        """``f_m`` alone, as a one-worker :class:`Objective` over shard ``m`` (cached).

        Its ``worker_gradients(θ)[0]`` is ``∇f_m(θ)`` and its ``stochastic_worker_gradients``
        draws worker ``m``'s minibatch exactly as the batched method does for one worker, so the
        asynchronous engine evaluates one worker per event without touching the other shards.
        """
        m = check_int("worker", m, 0, self.n_workers - 1)
        cache = self._restrictions
        if m not in cache:
            name = f"{self.name} / worker {m}" if self.name else f"worker {m}"
            cache[m] = Objective(self.family, self.shards.select(m), self.lam, self.lam_nc, name)
        return cache[m]

    @cached_property
    def _restrictions(self) -> dict[int, Objective]:
        return {}

    # -- second order ----------------------------------------------------------------------
    def _regularizer_curvature(self, theta: np.ndarray) -> np.ndarray:
        """Diagonal of the regularizer's Hessian at ``θ``."""
        curvature = np.full_like(theta, self.lam)
        if self.lam_nc:
            squares = theta**2
            curvature += self.lam_nc * (2.0 - 6.0 * squares) / (1.0 + squares) ** 3
        return curvature

    def _row_curvature(self, theta: np.ndarray) -> np.ndarray:
        """Weights ``c_i = w_i ℓ''(a_iᵀθ) / M`` of ``∇²f(θ) = Σ_i c_i a_i a_iᵀ + diag(r'')``."""
        z = self.shards.forward(theta)
        return (self.shards.weights * self._loss_curvature(z)).ravel() / self.n_workers

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Dense ``∇²f(θ)``, shape ``(d, d)``."""
        rows = self.shards.stacked()
        c = self._row_curvature(theta)
        weighted = rows.multiply(c[:, None]).tocsr() if sp.issparse(rows) else rows * c[:, None]
        gram = rows.T @ weighted
        gram = gram.toarray() if sp.issparse(gram) else gram
        return gram + np.diag(self._regularizer_curvature(theta))

    def hessian_vector(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``∇²f(θ) v`` without forming the Hessian."""
        rows = self.shards.stacked()
        c = self._row_curvature(theta)
        return rows.T @ (c * (rows @ v)) + self._regularizer_curvature(theta) * v

    # -- constants -------------------------------------------------------------------------
    @cached_property
    def spectrum(self) -> Spectrum:
        """Extreme eigenvalues of the ``H_m`` and of ``H`` (computed once)."""
        return extreme_eigenvalues(self.shards, need_min=self.family == "ridge")

    @property
    def data_curvature(self) -> float:
        """``L_data = c·λmax(H)``: the smoothness of the data term alone (``c`` = 1 for ridge,
        1/4 for the logistic families)."""
        return (1.0 if self.family == "ridge" else 0.25) * float(self.spectrum.global_max)

    @cached_property
    def constants(self) -> Constants:
        """``L_m``, ``L``, ``L̃``, ``L_max``, ``μ`` and the class (table above)."""
        spectrum = self.spectrum
        scale = 1.0 if self.family == "ridge" else 0.25
        shift = self.lam + 2.0 * self.lam_nc
        L_workers = scale * spectrum.worker_max + shift
        if self.family == "ridge":
            lower = spectrum.global_min + self.lam
            worker_lower = spectrum.worker_min + self.lam
        else:
            lower = self.lam - 0.5 * self.lam_nc
            worker_lower = np.full(self.n_workers, lower)
        if lower > 0:
            problem_class = "strongly convex"
        elif lower == 0:
            problem_class = "convex"
        else:
            problem_class = "nonconvex"
        return Constants(
            L_workers=L_workers,
            L=float(scale * spectrum.global_max + shift),
            L_tilde=float(np.sqrt(np.mean(L_workers**2))),
            L_max=float(L_workers.max()),
            curvature_lower=float(lower),
            mu=float(max(lower, 0.0)),
            problem_class=problem_class,
            eigen_method=spectrum.method,
            safety_factor=spectrum.safety_factor,
            mu_workers=np.maximum(worker_lower, 0.0),
        )

    def describe(self) -> dict:
        """Plain-data description for reports."""
        return {
            "family": self.family,
            "name": self.name,
            "workers": self.n_workers,
            "dim": self.dim,
            "samples_per_worker": self.shards.sizes.tolist(),
            "lam": self.lam,
            "lam_nc": self.lam_nc,
        }


def make_objective(
    family: str, dataset: Dataset, split: Split, *, lam: float = 0.0, lam_nc: float = 0.0
) -> Objective:
    """Build the objective ``family`` on ``dataset`` split over workers by ``split``.

    Logistic families use the dataset's binary labels in {±1}; ridge uses the regression
    targets, or the binary labels ±1 for classification data (a least-squares classifier).
    """
    check_choice("problem", family, FAMILIES)
    lam = check_real("lam", lam, 0.0, context=family)
    if family == "nonconvex-logistic":
        lam_nc = check_real("lam_nc", lam_nc, 0.0, low_open=True, context=family)
    elif lam_nc != 0.0:
        raise InputError("lam_nc", lam_nc, "0 (only 'nonconvex-logistic' has λ_nc)", family)
    if family != "ridge" and dataset.task != "classification":
        raise InputError("dataset", dataset.name, "a classification dataset for " + family)
    labels = (
        dataset.y.astype(np.float64) if dataset.task == "regression" else dataset.binary_labels()
    )
    covered = np.sort(np.concatenate(split.shards))
    if covered.size != dataset.n_samples or np.any(covered != np.arange(dataset.n_samples)):
        raise InputError(
            "split", split.method, f"shards covering rows 0..{dataset.n_samples - 1} once"
        )
    shards = build_shards(dataset.X, labels, split.shards)
    name = f"{dataset.name} / {split.method} split over {split.n_workers} workers"
    objective = Objective(family, shards, lam, float(lam_nc), name)
    check_regularization(objective)
    return objective


#: A nonzero regularization weight lies within this factor of the data curvature ``L_data``.
REGULARIZATION_RANGE = 1e12


def check_regularization(objective: Objective) -> None:
    """``λ`` and ``λ_nc`` are 0 or in ``[L_data/R, R·L_data]`` with ``R`` =
    :data:`REGULARIZATION_RANGE`.

    Below, ``μ = λ`` is lost in rounding: the condition number ``L/μ`` exceeds ``R``, so double
    precision (``ε ≈ 2.2e-16``) can neither find the optimum to the certificate's accuracy nor
    make the bound ``f(θ̂) − f* ≤ ‖∇f(θ̂)‖²/(2μ)`` mean anything (``inspect --lam 1e-300``
    certified ``f_low = −5e279``). Above, the data term is a ``1/R`` perturbation of the
    regularizer and the constants overflow (``L̃ = inf`` at ``λ = 1e300``).
    """
    scale = objective.data_curvature
    if not np.isfinite(scale) or scale <= 0:
        return
    low, high = scale / REGULARIZATION_RANGE, scale * REGULARIZATION_RANGE
    for field, value in (("lam", objective.lam), ("lam_nc", objective.lam_nc)):
        if value != 0 and not low <= value <= high:
            raise InputError(
                field, value,
                f"0 or a value in [{low:.3g}, {high:.3g}], i.e. within a factor "
                f"{REGULARIZATION_RANGE:g} of this data's curvature L_data = {scale:.3g}; "
                "smaller is lost in double-precision rounding (the optimum cannot be certified), "
                "larger drowns the data and overflows the constants",
                objective.family,
            )
