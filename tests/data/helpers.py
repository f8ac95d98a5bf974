"""Helpers of the data tests: exact references (Gram matrices, LP separability), IDX writers."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from convcheck.data import DATASETS, Dataset, Split


def group_grams(ds: Dataset) -> list[np.ndarray]:
    """H_g = A_gᵀA_g / n_g computed directly from the rows of each group."""
    return [
        ds.X[ds.groups == g].T @ ds.X[ds.groups == g] / np.sum(ds.groups == g)
        for g in np.unique(ds.groups)
    ]


def assert_partition(split: Split, n: int, workers: int) -> None:
    """Shards: int64, strictly increasing, disjoint, covering range(n)."""
    assert split.n_workers == workers
    for shard in split.shards:
        assert shard.dtype == np.int64
        assert np.all(np.diff(shard) > 0)
    everything = np.concatenate(split.shards)
    assert everything.size == n
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))


def label_skew(ds: Dataset, split: Split) -> float:
    """Mean total-variation distance between each shard's label mix and the global one."""
    classes, codes = np.unique(ds.y, return_inverse=True)
    overall = np.bincount(codes, minlength=classes.size) / codes.size
    distances = [
        0.5 * np.abs(np.bincount(codes[s], minlength=classes.size) / s.size - overall).sum()
        for s in split.shards
    ]
    return float(np.mean(distances))


def write_idx(path: Path, array: np.ndarray, *, magic: int | None = None,
              compress: bool = True, drop: int = 0) -> Path:
    """Write a uint8 array as an IDX file (optionally with a wrong magic or missing bytes)."""
    magic = magic if magic is not None else {3: 2051, 1: 2049}[array.ndim]
    raw = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    raw = raw[: len(raw) - drop]
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_idx_set(directory: Path, prefix: str, images: np.ndarray, labels: np.ndarray,
                  compress: bool = True) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)


def recession_gain(X: np.ndarray | sp.spmatrix, y: np.ndarray) -> float:
    """max Σ_i y_i a_iᵀw over y_i a_iᵀw >= 0 ∀i, |w_j| <= 1 (LP, labels mapped to ±1).

    Positive iff some direction w lowers no margin and raises one (quasi-complete
    separation), i.e. iff the unregularized logistic loss has no minimizer.
    """
    signs = np.where(y == np.max(y), 1.0, -1.0)
    B = sp.diags(signs) @ sp.csr_matrix(X)
    result = linprog(-np.asarray(B.sum(axis=0)).ravel(), A_ub=-B, b_ub=np.zeros(X.shape[0]),
                     bounds=[(-1.0, 1.0)] * X.shape[1], method="highs")
    assert result.status == 0, result.message
    return -result.fun


def is_separable(X: np.ndarray | sp.spmatrix, y: np.ndarray) -> bool:
    """LP feasibility of y_i (a_iᵀw + b) >= 1 for all i (HiGHS)."""
    signs = np.where(y == np.max(y), 1.0, -1.0)
    A = sp.hstack([sp.csr_matrix(X), np.ones((X.shape[0], 1))], format="csr")
    result = linprog(np.zeros(A.shape[1]), A_ub=-(sp.diags(signs) @ A), b_ub=-np.ones(A.shape[0]),
                     bounds=[(None, None)] * A.shape[1], method="highs")
    assert result.status in (0, 2), result.message  # 0: feasible, 2: infeasible
    return result.status == 0


def counts(y: np.ndarray) -> dict[float, int]:
    values, numbers = np.unique(y, return_counts=True)
    return dict(zip(values.tolist(), numbers.tolist(), strict=True))


def separability_claim(name: str) -> str | None:
    description = DATASETS[name].description
    for claim in ("quasi-separable", "linearly separable"):
        if claim in description:
            return claim
    return None


def check_separability_claim(ds: Dataset) -> None:
    """The registry's claim, checked by LP on the ±1 labels (both claims: no minimizer)."""
    y = ds.binary_labels()
    claim = separability_claim(ds.name)
    assert claim is not None, f"{ds.name}: the registry says nothing about separability"
    assert is_separable(ds.X, y) == (claim == "linearly separable")
    assert recession_gain(ds.X, y) > 1e-3

