"""Shard layouts: the batched products equal per-worker dense products."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from convcheck.shards import BlockShards, PaddedShards, build_shards


def worker_part(laid_out, row_array, m):
    """Worker m's entries of a row array, in the order of its shard."""
    size = laid_out.sizes[m]
    if isinstance(laid_out, PaddedShards):
        return row_array[m, :size]
    start = laid_out.starts[m]
    return row_array[start : start + size]


@pytest.mark.parametrize(
    ("sizes", "sparse", "layout"),
    [
        ((5, 5, 5), False, PaddedShards),
        ((6, 5, 4), False, PaddedShards),
        ((20, 1, 1), False, BlockShards),
        ((6, 5, 4), True, BlockShards),
    ],
)
def test_products_match_per_worker_reference(sizes, sparse, layout):
    rng = np.random.default_rng(0)
    n, d = sum(sizes), 4
    X = rng.normal(size=(n, d))
    labels = rng.normal(size=n)
    shards = tuple(np.sort(s) for s in np.split(rng.permutation(n), np.cumsum(sizes)[:-1]))
    laid_out = build_shards(sp.csr_matrix(X) if sparse else X, labels, shards)
    assert isinstance(laid_out, layout)
    theta = rng.normal(size=(len(sizes), d))
    z, z_shared = laid_out.forward(theta), laid_out.forward(theta[0])
    r = rng.normal(size=z.shape) * (laid_out.weights > 0)
    backward, sums = laid_out.backward(r), laid_out.worker_sum(r)
    for m, rows in enumerate(shards):
        own = X[rows]
        worker_rows = laid_out.worker_rows(m)
        dense_rows = worker_rows.toarray() if sp.issparse(worker_rows) else worker_rows
        np.testing.assert_array_equal(dense_rows, own)
        np.testing.assert_array_equal(worker_part(laid_out, laid_out.labels, m), labels[rows])
        np.testing.assert_allclose(worker_part(laid_out, laid_out.weights, m), 1.0 / sizes[m])
        np.testing.assert_allclose(worker_part(laid_out, z, m), own @ theta[m], rtol=1e-13)
        np.testing.assert_allclose(worker_part(laid_out, z_shared, m), own @ theta[0], rtol=1e-13)
        np.testing.assert_allclose(backward[m], worker_part(laid_out, r, m) @ own, rtol=1e-12)
        assert sums[m] == pytest.approx(worker_part(laid_out, r, m).sum(), rel=1e-13)
    assert laid_out.weights.sum() == pytest.approx(len(sizes))


def test_gather_returns_each_workers_own_rows():
    rng = np.random.default_rng(1)
    X = np.arange(24, dtype=float).reshape(12, 2)
    shards = (np.array([0, 5, 7]), np.array([1, 2, 3, 4]), np.array([6, 8, 9, 10, 11]))
    local = np.array([[2, 0], [3, 1], [4, 4]])
    for data in (X, sp.csr_matrix(X)):
        laid_out = build_shards(data, rng.normal(size=12), shards)
        features, _ = laid_out.gather(local)
        for m, rows in enumerate(shards):
            np.testing.assert_array_equal(features[m], X[rows[local[m]]])


@pytest.mark.parametrize(
    ("sizes", "sparse"), [((6, 5, 4), False), ((20, 1, 1), False), ((6, 5, 4), True)]
)
def test_select_is_one_workers_shard(sizes, sparse):
    rng = np.random.default_rng(1)
    n, d = sum(sizes), 4
    X = rng.normal(size=(n, d))
    X = sp.csr_matrix(X) if sparse else X
    labels = rng.normal(size=n)
    bounds = np.cumsum((0,) + sizes)
    shards = tuple(np.arange(bounds[m], bounds[m + 1]) for m in range(len(sizes)))
    laid_out = build_shards(X, labels, shards)
    theta = rng.normal(size=d)
    for m, rows in enumerate(shards):
        one = laid_out.select(m)
        assert one.n_workers == 1 and one.sizes.tolist() == [sizes[m]]
        dense = X[rows].toarray() if sparse else X[rows]
        np.testing.assert_allclose(np.ravel(one.forward(theta)), dense @ theta, rtol=1e-13)
        np.testing.assert_allclose(np.ravel(one.labels), labels[rows])
        r = rng.normal(size=sizes[m])
        np.testing.assert_allclose(
            one.backward(r.reshape(one.labels.shape))[0], r @ dense, rtol=1e-12
        )


@pytest.mark.parametrize(
    ("sizes", "sparse", "layout"),
    [((6, 5, 4), False, PaddedShards), ((20, 1, 1), False, BlockShards),
     ((6, 5, 4), True, BlockShards)],
)
def test_products_of_runs_equal_each_runs_own_products(sizes, sparse, layout):
    """``forward_runs``/``backward_runs`` at R points: each run's entries are its own
    ``forward``/``backward`` bit for bit, and ``worker_sum`` keeps the run axis."""
    rng = np.random.default_rng(1)
    n, d, runs = sum(sizes), 5, 4
    X = rng.normal(size=(n, d))
    shards = tuple(np.sort(s) for s in np.split(rng.permutation(n), np.cumsum(sizes)[:-1]))
    laid_out = build_shards(sp.csr_matrix(X) if sparse else X, rng.normal(size=n), shards)
    assert isinstance(laid_out, layout)
    thetas = rng.normal(size=(runs, d))
    z = laid_out.forward_runs(thetas)
    r = rng.normal(size=z.shape) * (laid_out.weights > 0)
    backward, sums = laid_out.backward_runs(r), laid_out.worker_sum(r)
    assert backward.shape == (runs, len(sizes), d) and sums.shape == (runs, len(sizes))
    for k in range(runs):
        np.testing.assert_array_equal(z[k], laid_out.forward(thetas[k]))
        np.testing.assert_array_equal(backward[k], laid_out.backward(r[k]))
        np.testing.assert_array_equal(sums[k], laid_out.worker_sum(r[k]))
