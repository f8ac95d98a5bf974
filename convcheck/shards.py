"""Worker shards in a layout for batched products (no Python loop over workers).

Two layouts hold the rows ``A_m`` of every worker ``m``:

* :class:`PaddedShards` — dense ``(M, n_max, d)`` array, shards zero-padded to the longest one.
  A product with per-worker parameters ``Θ ∈ R^{M×d}`` is one batched matmul.
* :class:`BlockShards` — rows sorted by worker in a CSR matrix ``X`` (``n × d``) and the
  block-diagonal CSR matrix ``B = diag(A_1, …, A_M)`` (``n × Md``), so that
  ``B vec(Θ)`` stacks the ``A_m θ_m`` and ``Bᵀ r`` stacks the ``A_mᵀ r_m``. Used for sparse
  data and for dense data whose shards are too unequal to pad cheaply.

Both expose the same operations on *row arrays*: arrays with one entry per stored row, shaped
``(M, n_max)`` (padded) or ``(n,)`` (block). Labels and weights are row arrays in the same
layout; padding rows have weight 0 and contribute nothing.

A batch of ``R`` runs evaluates at ``R`` shared points ``Θ ∈ R^{R×d}`` at once
(``forward_runs``, ``backward_runs``): row arrays then have a leading run axis, and each run's
entries are the same floating-point results as its own ``forward``/``backward`` (the same
matrix-vector kernel per run and worker, called from one stacked product).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Padding is used for dense data when ``M·n_max ≤ PAD_LIMIT · n``.
PAD_LIMIT = 2.0


@dataclass(frozen=True)
class PaddedShards:
    """Dense shards zero-padded to ``(M, n_max, d)``.

    Attributes
    ----------
    X : ndarray, shape (M, n_max, d)
    labels : ndarray, shape (M, n_max)
    weights : ndarray, shape (M, n_max)
        ``1/n_m`` on the rows of worker ``m``, 0 on padding.
    sizes : ndarray of int, shape (M,)
    """

    X: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    sizes: np.ndarray

    @property
    def n_workers(self) -> int:
        return self.X.shape[0]

    @property
    def dim(self) -> int:
        return self.X.shape[2]

    def forward(self, theta: np.ndarray) -> np.ndarray:
        """Row array ``z_i = a_iᵀ θ_{m(i)}``; ``theta`` shared ``(d,)`` or per worker ``(M, d)``."""
        if theta.ndim == 1:
            return self.X @ theta
        return np.matmul(self.X, theta[:, :, None])[:, :, 0]

    def backward(self, r: np.ndarray) -> np.ndarray:
        """``(M, d)`` array with rows ``Σ_{i∈S_m} r_i a_i``."""
        return np.matmul(r[:, None, :], self.X)[:, 0, :]

    def forward_runs(self, thetas: np.ndarray) -> np.ndarray:
        """Row arrays ``(R, M, n_max)`` of ``a_iᵀ θ_r`` at ``R`` shared points ``(R, d)``."""
        return np.matmul(self.X, thetas[:, None, :, None])[..., 0]

    def backward_runs(self, r: np.ndarray) -> np.ndarray:
        """``(R, M, d)``: :meth:`backward` of each run's row array ``r[k]`` ``(M, n_max)``."""
        return np.matmul(r[:, :, None, :], self.X)[:, :, 0, :]

    def worker_sum(self, v: np.ndarray) -> np.ndarray:
        """``(M,)`` sums of a row array over each worker's rows (``(R, M)`` for ``R`` runs)."""
        return v.sum(axis=-1)

    def stacked(self) -> np.ndarray:
        """All stored rows as one ``(M·n_max, d)`` matrix (row order of ``ravel`` of row arrays)."""
        return self.X.reshape(-1, self.dim)

    def worker_rows(self, m: int) -> np.ndarray:
        """The rows ``A_m`` of worker ``m`` (no padding)."""
        return self.X[m, : self.sizes[m]]

    def gather(self, local_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``local_rows[m, j]`` of each shard: ``(M, B, d)`` features, ``(M, B)`` labels."""
        workers = np.arange(self.n_workers)[:, None]
        return self.X[workers, local_rows], self.labels[workers, local_rows]

    def select(self, m: int) -> PaddedShards:
        """Worker ``m``'s shard alone, as one-worker shards (views, no padding)."""
        n = int(self.sizes[m])
        return PaddedShards(
            self.X[m : m + 1, :n],
            self.labels[m : m + 1, :n],
            self.weights[m : m + 1, :n],
            self.sizes[m : m + 1],
        )


@dataclass(frozen=True)
class BlockShards:
    """Rows sorted by worker, with the block-diagonal operator for per-worker products.

    Attributes
    ----------
    X : scipy.sparse.csr_matrix, shape (n, d)
        Rows of worker 0, then worker 1, ...
    blocks : scipy.sparse.csr_matrix, shape (n, M·d)
        ``diag(A_1, …, A_M)``.
    blocks_t : scipy.sparse.csr_matrix, shape (M·d, n)
        Its transpose, stored in CSR for a fast ``Bᵀ r``.
    labels, weights : ndarray, shape (n,)
    sizes : ndarray of int, shape (M,)
    """

    X: sp.csr_matrix
    blocks: sp.csr_matrix
    blocks_t: sp.csr_matrix
    labels: np.ndarray
    weights: np.ndarray
    sizes: np.ndarray

    @property
    def n_workers(self) -> int:
        return self.sizes.size

    @property
    def dim(self) -> int:
        return self.X.shape[1]

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.sizes)[:-1]))

    def forward(self, theta: np.ndarray) -> np.ndarray:
        if theta.ndim == 1:
            return self.X @ theta
        return self.blocks @ theta.ravel()

    def backward(self, r: np.ndarray) -> np.ndarray:
        return (self.blocks_t @ r).reshape(self.n_workers, self.dim)

    def forward_runs(self, thetas: np.ndarray) -> np.ndarray:
        """``(R, n)``: one sparse product with the ``R`` points as columns."""
        return (self.X @ thetas.T).T

    def backward_runs(self, r: np.ndarray) -> np.ndarray:
        """``(R, M, d)`` from ``R`` row arrays ``(R, n)``: one sparse product."""
        return np.ascontiguousarray((self.blocks_t @ r.T).T).reshape(
            r.shape[0], self.n_workers, self.dim)

    def worker_sum(self, v: np.ndarray) -> np.ndarray:
        return np.add.reduceat(v, self.starts, axis=-1)

    def stacked(self) -> sp.csr_matrix:
        return self.X

    def worker_rows(self, m: int) -> sp.csr_matrix:
        start = self.starts[m]
        return self.X[start : start + self.sizes[m]]

    def gather(self, local_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = (self.starts[:, None] + local_rows).ravel()
        features = self.X[rows].toarray().reshape(*local_rows.shape, self.dim)
        return features, self.labels[rows].reshape(local_rows.shape)

    def select(self, m: int) -> BlockShards:
        """Worker ``m``'s shard alone, as one-worker shards (its rows copied once)."""
        start, stop = int(self.starts[m]), int(self.starts[m] + self.sizes[m])
        rows = self.X[start:stop]
        return BlockShards(
            rows,
            rows,
            rows.T.tocsr(),
            self.labels[start:stop],
            self.weights[start:stop],
            self.sizes[m : m + 1],
        )


Shards = PaddedShards | BlockShards


def build_shards(
    X: np.ndarray | sp.spmatrix, labels: np.ndarray, shards: tuple[np.ndarray, ...]
) -> Shards:
    """Lay out the rows ``X[shards[m]]`` of each worker for batched products.

    Dense data is padded when that costs at most ``PAD_LIMIT`` times the data; sparse data, and
    dense data with very unequal shards, use the block-diagonal layout.
    """
    sizes = np.array([s.size for s in shards], dtype=np.int64)
    n_workers, n_max = sizes.size, int(sizes.max())
    order = np.concatenate(shards)
    row_weights = np.repeat(1.0 / sizes, sizes)
    if not sp.issparse(X) and n_workers * n_max <= PAD_LIMIT * sizes.sum():
        padded = np.zeros((n_workers, n_max, X.shape[1]))
        slot = np.arange(n_max)[None, :] < sizes[:, None]
        padded[slot] = X[order]
        padded_labels = np.zeros((n_workers, n_max))
        padded_labels[slot] = labels[order]
        weights = np.zeros((n_workers, n_max))
        weights[slot] = row_weights
        return PaddedShards(padded, padded_labels, weights, sizes)
    rows = sp.csr_matrix(X[order], dtype=np.float64)
    owner = np.repeat(np.arange(n_workers), sizes)
    coo = rows.tocoo()
    dim = X.shape[1]
    blocks = sp.csr_matrix(
        (coo.data, (coo.row, coo.col + dim * owner[coo.row])),
        shape=(rows.shape[0], n_workers * dim),
    )
    return BlockShards(rows, blocks, blocks.T.tocsr(), labels[order], row_weights, sizes)
