"""Objectives: gradients against finite differences, constants against brute-force Hessians."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from convcheck import objectives
from convcheck.data import Dataset, Split
from convcheck.errors import InputError
from convcheck.objectives import make_objective
from convcheck.shards import BlockShards, PaddedShards
from tests.helpers import finite_difference_gradient, finite_difference_jacobian, small_problem

FAMILIES = [
    ("ridge", 0.0, 0.0),
    ("ridge", 0.3, 0.0),
    ("logistic", 0.0, 0.0),
    ("logistic", 0.05, 0.0),
    ("nonconvex-logistic", 0.0, 0.2),
    ("nonconvex-logistic", 0.01, 0.2),
]


@pytest.mark.parametrize(("family", "lam", "lam_nc"), FAMILIES)
@pytest.mark.parametrize("sparse", [False, True])
def test_gradient_matches_finite_differences(family, lam, lam_nc, sparse):
    objective = small_problem(family, lam, lam_nc, sparse=sparse)
    theta = np.random.default_rng(1).normal(size=objective.dim)
    expected = finite_difference_gradient(objective.value, theta)
    np.testing.assert_allclose(objective.gradient(theta), expected, rtol=1e-6, atol=1e-8)
    # per worker: each row is the finite-difference gradient of f_m
    per_worker = finite_difference_jacobian(objective.worker_values, theta)
    np.testing.assert_allclose(objective.worker_gradients(theta), per_worker, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("family", "lam", "lam_nc"), FAMILIES)
def test_worker_gradients_average_to_global_and_match_single_worker_objectives(family, lam, lam_nc):
    objective = small_problem(family, lam, lam_nc)
    rng = np.random.default_rng(2)
    thetas = rng.normal(size=(objective.n_workers, objective.dim))
    grads = objective.worker_gradients(thetas)
    # an independent computation: one single-worker objective per shard
    for m in range(objective.n_workers):
        rows = objective.shards.worker_rows(m)
        labels = objective.shards.labels[m, : rows.shape[0]]
        single = make_objective(
            "ridge" if family == "ridge" else "logistic",
            Dataset("w", rows, labels, "classification", "test"),
            Split((np.arange(rows.shape[0]),), "single"),
            lam=lam,
        )
        expected = single.gradient(thetas[m])
        if lam_nc:
            expected = expected + lam_nc * 2 * thetas[m] / (1 + thetas[m] ** 2) ** 2
        np.testing.assert_allclose(grads[m], expected, rtol=1e-12, atol=1e-14)
    shared = rng.normal(size=objective.dim)
    np.testing.assert_allclose(
        objective.worker_gradients(shared).mean(axis=0), objective.gradient(shared), rtol=1e-14
    )
    np.testing.assert_allclose(
        objective.worker_gradients(np.tile(shared, (objective.n_workers, 1))),
        objective.worker_gradients(shared),
        rtol=1e-13,
        atol=1e-15,
    )


@pytest.mark.parametrize(("family", "lam", "lam_nc"), FAMILIES)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("runs", [1, 5, 400])
def test_values_and_gradients_at_the_runs_of_a_batch(family, lam, lam_nc, sparse, runs):
    """At R points (in blocks of runs when R is large): each run's values and gradients are
    its own ``worker_values_and_gradients`` bit for bit."""
    objective = small_problem(family, lam, lam_nc, sparse=sparse)
    thetas = np.random.default_rng(runs).normal(size=(runs, objective.dim))
    if runs == 400:
        assert runs * objective.shards.weights.size > objectives.RUN_BLOCK_ENTRIES
    values, gradients = objective.runs_values_and_gradients(thetas)
    assert values.shape == (runs, objective.n_workers)
    assert gradients.shape == (runs, objective.n_workers, objective.dim)
    for k in range(0, runs, 37):
        own_values, own_gradients = objective.worker_values_and_gradients(thetas[k])
        np.testing.assert_array_equal(values[k], own_values)
        np.testing.assert_array_equal(gradients[k], own_gradients)


@pytest.mark.parametrize(
    ("sizes", "dense_layout"), [((30, 30, 30), PaddedShards), ((80, 3, 2), BlockShards)]
)
def test_layouts_agree(sizes, dense_layout):
    """Dense data (padded, or block when shards are very unequal) and the same data stored
    sparse (block layout) give the same values, gradients and constants."""
    dense = small_problem("logistic", 0.1, 0.0, sizes=sizes, zeros=True)
    sparse = small_problem("logistic", 0.1, 0.0, sizes=sizes, zeros=True, sparse=True)
    assert isinstance(dense.shards, dense_layout) and isinstance(sparse.shards, BlockShards)
    theta = np.random.default_rng(3).normal(size=(dense.n_workers, dense.dim))
    np.testing.assert_allclose(
        sparse.worker_gradients(theta), dense.worker_gradients(theta), rtol=1e-12
    )
    np.testing.assert_allclose(sparse.worker_values(theta), dense.worker_values(theta), rtol=1e-12)
    np.testing.assert_allclose(sparse.hessian(theta[0]), dense.hessian(theta[0]), rtol=1e-12)
    np.testing.assert_allclose(sparse.constants.L_workers, dense.constants.L_workers, rtol=1e-10)
    assert sparse.constants.L == pytest.approx(dense.constants.L, rel=1e-10)


def _contiguous_shards(sizes):
    edges = np.concatenate(([0], np.cumsum(sizes)))
    return tuple(np.arange(edges[m], edges[m + 1]) for m in range(len(sizes)))


@pytest.mark.parametrize(("family", "lam", "lam_nc"), FAMILIES)
def test_hessian_matches_finite_differences_and_hvp(family, lam, lam_nc):
    objective = small_problem(family, lam, lam_nc)
    theta = np.random.default_rng(4).normal(size=objective.dim)
    fd = finite_difference_jacobian(objective.gradient, theta)
    np.testing.assert_allclose(objective.hessian(theta), fd, rtol=1e-5, atol=1e-7)
    v = np.random.default_rng(5).normal(size=objective.dim)
    np.testing.assert_allclose(
        objective.hessian_vector(theta, v), objective.hessian(theta) @ v, rtol=1e-12
    )


@pytest.mark.parametrize(("family", "lam", "lam_nc"), FAMILIES)
@pytest.mark.parametrize("sparse", [False, True])
def test_constants_equal_extreme_eigenvalues_of_finite_difference_hessian(
    family, lam, lam_nc, sparse
):
    """At θ = 0 the logistic curvature is exactly 1/4 and r'' = 2λ_nc, so L and every L_m are
    attained there; for ridge L and μ are attained everywhere. Elsewhere the FD Hessian's
    spectrum lies inside [curvature_lower, L]."""
    objective = small_problem(family, lam, lam_nc, sparse=sparse)
    constants = objective.constants
    zero = np.zeros(objective.dim)
    global_fd = finite_difference_jacobian(objective.gradient, zero)
    eigenvalues = np.linalg.eigvalsh((global_fd + global_fd.T) / 2)
    assert eigenvalues[-1] == pytest.approx(constants.L, rel=1e-6)
    if family == "ridge":
        assert eigenvalues[0] == pytest.approx(constants.mu, rel=1e-6)
    worker_fd = finite_difference_jacobian(objective.worker_gradients, zero)  # (M, d, d)
    worker_max = np.linalg.eigvalsh((worker_fd + worker_fd.transpose(0, 2, 1)) / 2)[:, -1]
    np.testing.assert_allclose(worker_max, constants.L_workers, rtol=1e-6)
    assert constants.L_tilde == pytest.approx(np.sqrt(np.mean(worker_max**2)), rel=1e-6)
    assert constants.L_max == pytest.approx(worker_max.max(), rel=1e-6)
    rng = np.random.default_rng(6)
    for _ in range(5):
        theta = rng.normal(scale=2.0, size=objective.dim)
        fd = finite_difference_jacobian(objective.gradient, theta)
        spectrum = np.linalg.eigvalsh((fd + fd.T) / 2)
        assert spectrum[-1] <= constants.L * (1 + 1e-6)
        assert spectrum[0] >= constants.curvature_lower - 1e-6 * constants.L


def test_nonconvex_lower_curvature_is_attained():
    """With zero features, ∇²f = diag(r''), and r''(±1) = λ − λ_nc/2 = curvature_lower."""
    dataset = Dataset("zeros", np.zeros((4, 3)), np.array([1, -1, 1, -1]), "classification", "t")
    objective = make_objective(
        "nonconvex-logistic", dataset, Split((np.arange(4),), "t"), lam=0.01, lam_nc=0.4
    )
    hessian = objective.hessian(np.array([1.0, -1.0, 1.0]))
    np.testing.assert_allclose(np.diag(hessian), objective.constants.curvature_lower, rtol=1e-14)
    assert objective.constants.problem_class == "nonconvex"


def test_classes():
    assert small_problem("ridge", 0.0, 0.0).constants.problem_class == "strongly convex"
    assert small_problem("logistic", 0.0, 0.0).constants.problem_class == "convex"
    assert small_problem("logistic", 0.1, 0.0).constants.problem_class == "strongly convex"
    # fewer samples than features: H is singular, least squares is only convex
    wide = small_problem("ridge", 0.0, 0.0, sizes=(3, 2), d=10)
    assert wide.constants.mu == 0.0 and wide.constants.problem_class == "convex"
    # λ > λ_nc/2 makes the nonconvex family strongly convex, and the constants say so
    convexified = small_problem("nonconvex-logistic", 0.2, 0.2)
    assert convexified.constants.mu == pytest.approx(0.1)


def test_stochastic_gradients_are_unbiased_seeded_and_local():
    objective = small_problem("logistic", 0.05, 0.0)
    theta = np.random.default_rng(7).normal(size=objective.dim)
    rng = np.random.default_rng(8)
    draws = np.stack([objective.stochastic_worker_gradients(theta, 4, rng) for _ in range(4000)])
    mean, sd = draws.mean(axis=0), draws.std(axis=0, ddof=1)
    z = np.abs(mean - objective.worker_gradients(theta)) / (sd / np.sqrt(len(draws)))
    assert z.max() < 5.0  # Bonferroni over 18 coordinates at confidence 1 − 1e-5
    a = objective.stochastic_worker_gradients(theta, 4, np.random.default_rng(9))
    b = objective.stochastic_worker_gradients(theta, 4, np.random.default_rng(9))
    c = objective.stochastic_worker_gradients(theta, 4, np.random.default_rng(10))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("sparse", [False, True])
def test_stochastic_gradients_use_only_the_workers_own_rows(sparse):
    """Worker m's rows live on coordinate m only, so its minibatch gradient does too."""
    M, rows_per_worker = 3, 5
    X = np.zeros((M * rows_per_worker, M))
    X[np.arange(M * rows_per_worker), np.repeat(np.arange(M), rows_per_worker)] = 1.0 + np.arange(
        M * rows_per_worker
    )
    X = sp.csr_matrix(X) if sparse else X
    y = np.tile([1.0, -1.0, 1.0, 1.0, -1.0], M)
    objective = make_objective(
        "logistic",
        Dataset("diag", X, y, "classification", "t"),
        Split(_contiguous_shards([rows_per_worker] * M), "t"),
    )
    grads = objective.stochastic_worker_gradients(np.ones(M), 7, np.random.default_rng(0))
    off_diagonal = grads[~np.eye(M, dtype=bool)]
    assert np.all(off_diagonal == 0.0) and np.all(np.diag(grads) != 0.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"family": "logistic", "lam": -1.0}, "lam"),
        ({"family": "huber"}, "problem"),
        ({"family": "ridge", "lam_nc": 0.1}, "lam_nc"),
        ({"family": "nonconvex-logistic", "lam_nc": 0.0}, "lam_nc"),
    ],
)
def test_bad_parameters_name_the_field(kwargs, field):
    dataset = Dataset("toy", np.eye(3), np.array([1, -1, 1]), "classification", "t")
    family = kwargs.pop("family")
    with pytest.raises(InputError) as error:
        make_objective(family, dataset, Split((np.arange(3),), "t"), **kwargs)
    assert error.value.field == field and "allowed" in str(error.value)


def test_logistic_needs_classification_and_split_must_cover_rows():
    regression = Dataset("reg", np.eye(3), np.array([0.1, 2.0, 3.0]), "regression", "t")
    with pytest.raises(InputError, match="'dataset'"):
        make_objective("logistic", regression, Split((np.arange(3),), "t"))
    with pytest.raises(InputError, match="'split'"):
        make_objective("ridge", regression, Split((np.arange(2),), "t"))
    objective = make_objective("ridge", regression, Split((np.arange(3),), "t"))
    with pytest.raises(InputError, match="'batch_size'"):
        objective.stochastic_worker_gradients(np.zeros(3), 0, np.random.default_rng(0))


@pytest.mark.parametrize(("family", "lam", "lam_nc"), FAMILIES[1::2])
@pytest.mark.parametrize("sparse", [False, True])
def test_restrict_gives_one_worker_gradients_and_minibatches(family, lam, lam_nc, sparse):
    """``restrict(m)`` is ``f_m`` alone: finite differences of ``f_m``, the batched gradient's
    row ``m``, and worker ``m``'s minibatch drawn as the batched method would for one worker."""
    objective = small_problem(family, lam, lam_nc, sparse=sparse)
    theta = np.random.default_rng(3).normal(size=objective.dim)
    full = objective.worker_gradients(theta)
    for m in range(objective.n_workers):
        single = objective.restrict(m)
        assert single.n_workers == 1 and objective.restrict(m) is single  # cached
        np.testing.assert_array_equal(single.worker_gradients(theta)[0], full[m])
        fd = finite_difference_gradient(lambda t, m=m: objective.worker_values(t)[m], theta)
        np.testing.assert_allclose(single.worker_gradients(theta)[0], fd, rtol=1e-6, atol=1e-7)
        # a minibatch of worker m only: its rows, drawn with one rng.random((1, B))
        rng = np.random.default_rng(5)
        batch = single.stochastic_worker_gradients(theta, 6, rng)[0]
        rows = np.floor(np.random.default_rng(5).random(6) * objective.shards.sizes[m])
        X = objective.shards.worker_rows(m)
        X = X.toarray() if sp.issparse(X) else X
        labels = single.shards.labels.reshape(-1)
        z = X[rows.astype(int)] @ theta
        _, slope = objective._loss(z, labels[rows.astype(int)])
        _, reg = objective._regularizer(theta)
        np.testing.assert_allclose(batch, slope @ X[rows.astype(int)] / 6 + reg, rtol=1e-12)
    with pytest.raises(InputError) as error:
        objective.restrict(objective.n_workers)
    assert error.value.field == "worker"


@pytest.mark.parametrize(("family", "lam", "lam_nc"), FAMILIES)
def test_worker_strong_convexity_against_finite_difference_worker_hessians(family, lam, lam_nc):
    """``μ_m`` is the smallest eigenvalue of ``∇²f_m`` for ridge (constant Hessian, attained),
    and a lower bound of it everywhere for logistic (``λ``); nonconvex workers get
    ``max(λ − λ_nc/2, 0)`` like ``μ`` (their curvature only stays above ``λ − λ_nc/2``)."""
    objective = small_problem(family, lam, lam_nc, sizes=(40, 4, 33))  # worker 1: n_m < d
    mu_workers = objective.constants.mu_workers
    lower = np.minimum(mu_workers, objective.constants.curvature_lower)
    assert mu_workers.shape == (objective.n_workers,)
    rng = np.random.default_rng(8)
    for theta in (np.zeros(objective.dim), rng.normal(scale=2.0, size=objective.dim)):
        fd = finite_difference_jacobian(objective.worker_gradients, theta)  # (M, d, d)
        lowest = np.linalg.eigvalsh((fd + fd.transpose(0, 2, 1)) / 2)[:, 0]
        assert np.all(lowest >= lower - 1e-6)
        if family == "ridge":
            np.testing.assert_allclose(lowest, mu_workers, rtol=1e-6, atol=1e-7)
    if family == "ridge":
        assert mu_workers[1] == pytest.approx(lam, abs=1e-12)  # 4 rows in d = 6: H_1 singular
    else:
        np.testing.assert_array_equal(mu_workers, max(lam - lam_nc / 2, 0.0))


def test_logistic_loss_is_accurate_at_every_margin():
    """One exponential gives ``log(1 + e^{−m})`` and ``σ(−m)`` to a few ulps of the
    extended-precision values, with no overflow at huge margins and NaN kept NaN."""
    mpmath = pytest.importorskip("mpmath")
    margins = np.array([-800.0, -40.0, -1.0, -1e-9, 0.0, 1e-12, 0.5, 3.0, 37.0, 745.0, 1e4])
    loss, slope = objectives.logistic_loss(margins)
    for m, value, s in zip(margins, loss, slope, strict=True):
        exact_loss = mpmath.log1p(mpmath.exp(-mpmath.mpf(m)))
        exact_slope = 1 / (1 + mpmath.exp(mpmath.mpf(m)))
        assert abs(value - float(exact_loss)) <= 4e-16 * float(exact_loss), m
        assert abs(s - float(exact_slope)) <= 4e-16 * float(exact_slope) or s == float(
            exact_slope), m
    loss, slope = objectives.logistic_loss(np.array([np.inf, -np.inf, np.nan]))
    assert loss[0] == 0.0 and slope[0] == 0.0
    assert loss[1] == np.inf and slope[1] == 1.0
    assert np.isnan(loss[2]) and np.isnan(slope[2])
