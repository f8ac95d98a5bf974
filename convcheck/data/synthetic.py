"""Synthetic datasets with exact spectra, and quadratics with known optima."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from convcheck.data.dataset import Dataset, make_dataset
from convcheck.errors import InputError, check_int, check_real


def _make_synthetic(
    task: str,
    n_samples: int,
    n_features: int,
    *,
    condition_number: float,
    n_groups: int,
    heterogeneity: float,
    scale_spread: float,
    noise: float,
    seed: int,
) -> Dataset:
    """The construction documented in :func:`make_synthetic_regression`, for either task."""
    context = f"make_synthetic_{task}"
    n_samples = check_int("n_samples", n_samples, 1, context=context)
    n_features = check_int("n_features", n_features, 1, context=context)
    n_groups = check_int("n_groups", n_groups, 1, context=context)
    kappa = check_real("condition_number", condition_number, 1.0, context=context)
    heterogeneity = check_real("heterogeneity", heterogeneity, 0.0, context=context)
    spread = check_real("scale_spread", scale_spread, 0.0, context=context)
    noise = check_real("noise", noise, 0.0, 0.5 if task == "classification" else math.inf,
                       context=context)
    seed = check_int("seed", seed, 0, context=context)
    if n_features == 1 and kappa != 1.0:
        raise InputError("condition_number", kappa, "1 when n_features = 1", context)
    sizes = np.array([c.size for c in np.array_split(np.arange(n_samples), n_groups)])
    if sizes.min() < n_features:
        raise InputError(
            "n_samples", n_samples,
            f"at least n_groups * n_features = {n_groups * n_features}: each group's rows "
            f"U_g diag(σ) Vᵀ need n_g >= n_features = {n_features} orthonormal columns",
            context,
        )
    basis_ss, rows_ss, theta_ss, hetero_ss, target_ss = np.random.SeedSequence(seed).spawn(5)

    # λ_j = κ^(−j/(d−1)): geometric from λ_max = 1 down to λ_min = 1/κ.
    gram_eigenvalues = kappa ** (-np.arange(n_features) / max(n_features - 1, 1))
    group_scales = (1.0 + spread) ** (np.linspace(-1.0, 1.0, n_groups) if n_groups > 1 else 0.0)
    group_scales = np.atleast_1d(group_scales)
    sigma = np.sqrt(n_samples * gram_eigenvalues / np.sum(group_scales**2))
    V, _ = np.linalg.qr(np.random.default_rng(basis_ss).standard_normal((n_features,) * 2))
    rows_rng = np.random.default_rng(rows_ss)
    blocks = []
    for size, scale in zip(sizes, group_scales, strict=True):  # one thin QR per group
        U, _ = np.linalg.qr(rows_rng.standard_normal((size, n_features)))
        blocks.append((scale * U * sigma) @ V.T)
    X = np.concatenate(blocks)
    groups = np.repeat(np.arange(n_groups, dtype=np.int64), sizes)

    theta_star = np.random.default_rng(theta_ss).standard_normal(n_features)
    theta_star /= np.linalg.norm(theta_star)
    zeta = np.random.default_rng(hetero_ss).standard_normal((n_groups, n_features))
    zeta /= np.linalg.norm(zeta, axis=1, keepdims=True)
    theta_groups = theta_star + heterogeneity * zeta
    margins = np.einsum("ij,ij->i", X, theta_groups[groups])

    target_rng = np.random.default_rng(target_ss)
    if task == "regression":
        y = margins + noise * target_rng.standard_normal(n_samples)
    else:
        uniforms = target_rng.random((2, n_samples))
        y = np.where(uniforms[0] < 1.0 / (1.0 + np.exp(-margins)), 1.0, -1.0)
        y = np.where(uniforms[1] < noise, -y, y)
    meta = {
        "theta_star": theta_star,
        "theta_groups": theta_groups,
        "gram_eigenvalues": gram_eigenvalues,
        "eigenvectors": V,
        "group_scales": group_scales,
        "group_sizes": sizes,
        "group_gram_factors": group_scales**2 * n_samples / (sizes * np.sum(group_scales**2)),
    }
    source = (
        f"make_synthetic_{task}(n_samples={n_samples}, n_features={n_features}, "
        f"condition_number={kappa:g}, n_groups={n_groups}, heterogeneity={heterogeneity:g}, "
        f"scale_spread={spread:g}, noise={noise:g}, seed={seed})"
    )
    return make_dataset(f"synthetic-{task}", X, y, task=task, source=source, groups=groups,
                        meta=meta)


def make_synthetic_regression(
    n_samples: int,
    n_features: int,
    *,
    condition_number: float = 10.0,
    n_groups: int = 1,
    heterogeneity: float = 0.0,
    scale_spread: float = 0.0,
    noise: float = 0.1,
    seed: int = 0,
) -> Dataset:
    r"""Seeded least-squares data with an exact Gram spectrum and optional worker groups.

    Targets: :math:`y_i = a_i^\top \theta_{g(i)} + \text{noise}\cdot\varepsilon_i`,
    :math:`\varepsilon_i \sim N(0, 1)`.

    Construction (shared with :func:`make_synthetic_classification`; same seed, same X).
    The rows are split into ``n_groups`` contiguous groups of sizes :math:`n_g`
    (``np.array_split``; :math:`n_g \ge d` is required). With one orthogonal :math:`V`
    (QR of a Gaussian d×d matrix) shared by all groups, group g's rows are

    .. math:: A_g = c_g\, U_g\, \mathrm{diag}(\sigma)\, V^\top,

    where :math:`U_g` (:math:`n_g \times d`) has orthonormal columns (thin QR of a Gaussian)
    and the scales :math:`c_g = (1+s)^{t_g}`, :math:`t_g` evenly spaced in [−1, 1]
    (:math:`c = 1` for one group), lie in [1/(1+s), 1+s] with ``s = scale_spread``. Then
    :math:`A_g^\top A_g = c_g^2\, V \mathrm{diag}(\sigma^2) V^\top`, and choosing
    :math:`\sigma_j^2 = n \lambda_j / \sum_g c_g^2` gives

    .. math:: X^\top X / n = V\, \mathrm{diag}(\lambda)\, V^\top, \qquad
              \lambda_j = \kappa^{-j/(d-1)},\ j = 0, \dots, d-1,

    so :math:`\lambda_{\max} = 1`, :math:`\lambda_{\min} = 1/\kappa` and the condition number
    is exactly κ = ``condition_number`` whatever the scales. Each per-group Hessian is a
    multiple of that matrix,

    .. math:: H_g = A_g^\top A_g / n_g = f_g\, V \mathrm{diag}(\lambda) V^\top, \qquad
              f_g = c_g^2\, n / (n_g \textstyle\sum_h c_h^2),

    so the :math:`H_g`, their average and :math:`X^\top X/n` share eigenvectors and have
    condition number κ; ``scale_spread`` only spreads the per-group :math:`L_m \propto f_g`.
    Ground truth: θ* is a unit-norm Gaussian direction and
    :math:`\theta_g = \theta^* + h\,\zeta_g` with ``h = heterogeneity`` and unit-norm Gaussian
    :math:`\zeta_g` (all :math:`\theta_g = \theta^*` when h = 0).
    ``numpy.random.SeedSequence(seed)`` spawns independent streams for V, the :math:`U_g`,
    θ*, the :math:`\zeta_g` and the targets.

    Returns
    -------
    Dataset
        Dense X; ``groups`` holds each row's group id (for the ``"natural"`` split); ``meta``
        holds ``theta_star``, ``theta_groups`` (G, d), ``gram_eigenvalues`` λ,
        ``eigenvectors`` V, ``group_scales`` :math:`c_g`, ``group_sizes`` :math:`n_g` and
        ``group_gram_factors`` :math:`f_g`.
    """
    return _make_synthetic(
        "regression", n_samples, n_features, condition_number=condition_number,
        n_groups=n_groups, heterogeneity=heterogeneity, scale_spread=scale_spread,
        noise=noise, seed=seed,
    )


def make_synthetic_classification(
    n_samples: int,
    n_features: int,
    *,
    condition_number: float = 10.0,
    n_groups: int = 1,
    heterogeneity: float = 0.0,
    scale_spread: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> Dataset:
    r"""Seeded logistic data: labels ±1 with :math:`P(y_i = +1) = \mathrm{sigmoid}(a_i^\top
    \theta_{g(i)})`, on the design of :func:`make_synthetic_regression` (same seed, same X,
    same spectrum, groups and ``meta``).

    Labels drawn this way make the data non-separable with high probability once
    ``n_samples`` is well above ``n_features`` (for n close to d any labelling may be
    separable). ``noise`` ∈ [0, 0.5] is the probability of then flipping each label.
    """
    return _make_synthetic(
        "classification", n_samples, n_features, condition_number=condition_number,
        n_groups=n_groups, heterogeneity=heterogeneity, scale_spread=scale_spread,
        noise=noise, seed=seed,
    )


def make_quadratics(centers: Sequence[Sequence[float]] = ((10.0, 0.0), (-10.0, 0.0))) -> Dataset:
    """``F(x) = (1/G) Σ_g ½‖x − c_g‖²`` as least squares over ``G`` groups (one per center).

    Group ``g`` has the rows ``√d·I`` with targets ``√d·c_g``, so that its ridge objective
    ``(1/d) Σ_i ½(√d x_i − √d c_g,i)²`` equals ``½‖x − c_g‖²`` exactly. Use it with
    ``split="natural"``, ``scaling="none"``, one worker per center, ``lam=0``; then
    ``x* = mean_g c_g`` and ``F* = (1/G) Σ_g ½‖c_g − x*‖²``.

    The default centers ``(±10, 0)`` are a counterexample for top-1 sparsification without
    error feedback (constructed here): at any ``x = (0, x_2)`` with ``|x_2| < 10`` both workers
    send only their first coordinate, ``∓10``, whose mean is 0, so the iterate stalls at
    ``F − F* = x_2²/2``; error feedback accumulates the unsent ``x_2`` and converges.
    """
    values = np.asarray(centers, dtype=np.float64)
    if values.ndim != 2 or values.size < 1 or not np.all(np.isfinite(values)):
        raise InputError("centers", centers, "a non-empty list of equal-length lists of reals")
    groups_count, dim = values.shape
    root = np.sqrt(dim)
    X = np.tile(root * np.eye(dim), (groups_count, 1))
    y = root * values.ravel()
    groups = np.repeat(np.arange(groups_count), dim)
    f_star = 0.5 * float(np.mean(np.sum((values - values.mean(axis=0)) ** 2, axis=1)))
    source = f"quadratics ½‖x − c_g‖², d={dim}, centers={values.tolist()}"
    return make_dataset(
        "quadratics", X, y, task="regression", source=source, groups=groups,
        meta={"f_star": f_star},
    )


def make_bidir_toy(dim: int = 100, centers: tuple[float, ...] = (1.0, 5.0, 10.0)) -> Dataset:
    """The [BIDIR] toy: :func:`make_quadratics` with centers ``c_g·1`` in dimension ``d``.

    ``F(x) = (1/G) Σ_g ½‖x − c_g·1‖²``; with the defaults ``F* = 6100/9``.
    """
    dim = check_int("dim", dim, 1)
    values = np.asarray(centers, dtype=np.float64)
    if values.ndim != 1 or values.size < 1 or not np.all(np.isfinite(values)):
        raise InputError("centers", centers, "a non-empty list of finite reals")
    toy = make_quadratics(np.outer(values, np.ones(dim)))
    source = f"[BIDIR] toy, d={dim}, centers={values.tolist()}"
    return make_dataset("bidir-toy", toy.X, toy.y, task="regression", source=source,
                        groups=toy.groups, meta=toy.meta)
