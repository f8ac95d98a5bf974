"""What a dataset is: a design matrix with labels, validated; and its split over workers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from convcheck.errors import InputError, check_choice


@dataclass(frozen=True)
class Dataset:
    """A design matrix with labels.

    Attributes
    ----------
    name : str
        Registry name (``"a9a"``, ``"digits"``, ``"synthetic-regression"``, ...).
    X : ndarray or scipy.sparse.csr_matrix, shape (n, d)
        Features, float64, all finite.
    y : ndarray, shape (n,)
        Real targets (``task == "regression"``) or class labels (``task == "classification"``).
    task : {"regression", "classification"}
    source : str
        Provenance: file path, scikit-learn loader or generator with its parameters.
    groups : ndarray of int, shape (n,), optional
        Natural worker of each row (synthetic heterogeneous data); used by the ``"natural"`` split.
    meta : dict
        Known facts about the data, for checks: the synthetic generators store the ground
        truth ``theta_star`` / ``theta_groups`` and the exact Gram spectrum (see
        :func:`make_synthetic_regression`). Empty for files and built-ins.
    """

    name: str
    X: np.ndarray | sp.csr_matrix
    y: np.ndarray
    task: str
    source: str
    groups: np.ndarray | None = field(default=None, repr=False)
    meta: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def classes(self) -> np.ndarray:
        """Sorted distinct labels (classification only)."""
        return np.unique(self.y)

    def binary_labels(self) -> np.ndarray:
        """Labels in {−1, +1} for binary losses.

        Two classes map to −1 (smaller label) and +1 (larger label). With more classes, the
        upper half of the sorted classes, ``c >= classes[K // 2]``, is +1 (digits, MNIST: 5–9
        against 0–4).
        """
        if self.task != "classification":
            raise InputError("task", self.task, "'classification' for a binary loss", self.name)
        classes = self.classes
        if classes.size < 2:
            raise InputError("y", f"{classes.size} class", "at least 2 classes", self.name)
        return np.where(self.y >= classes[classes.size // 2], 1.0, -1.0)


@dataclass(frozen=True)
class Split:
    """Assignment of dataset rows to ``M`` workers.

    Attributes
    ----------
    shards : tuple of ndarray of int
        ``shards[m]`` holds the row indices of worker ``m`` (disjoint, covering every row).
    method : str
        ``"iid"``, ``"sorted"``, ``"dirichlet"`` or ``"natural"``.
    params : dict
        What produced it (seed, Dirichlet α, ...), for reports.
    """

    shards: tuple[np.ndarray, ...]
    method: str
    params: dict = field(default_factory=dict)

    @property
    def n_workers(self) -> int:
        return len(self.shards)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([s.size for s in self.shards], dtype=np.int64)


TASKS = ("regression", "classification")


def _first_bad_row(values: np.ndarray | sp.csr_matrix) -> tuple[int, float] | None:
    """Return ``(row, value)`` of the first non-finite entry (row-major order), or ``None``."""
    if sp.issparse(values):
        bad = np.flatnonzero(~np.isfinite(values.data))
        if bad.size == 0:
            return None
        # CSR stores the entries row by row, so the first bad entry is in the first bad row
        return int(np.searchsorted(values.indptr, bad[0], side="right") - 1), float(
            values.data[bad[0]])
    table = values.reshape(values.shape[0], -1)
    bad_rows = np.flatnonzero(~np.isfinite(table).all(axis=1))
    if bad_rows.size == 0:
        return None
    row = table[bad_rows[0]]
    return int(bad_rows[0]), float(row[~np.isfinite(row)][0])


def make_dataset(
    name: str,
    X: np.ndarray | sp.spmatrix,
    y: np.ndarray,
    *,
    task: str,
    source: str,
    groups: np.ndarray | None = None,
    meta: dict | None = None,
) -> Dataset:
    """Build a validated :class:`Dataset` from arrays.

    ``X`` becomes float64 (dense C-contiguous ``ndarray``, or canonical ``csr_matrix`` when
    sparse), ``y`` float64 of shape ``(n,)``, ``groups`` int64 of shape ``(n,)``.

    Raises
    ------
    InputError
        Unknown ``task``; ``X`` not 2-D or empty; ``y`` or ``groups`` of the wrong shape;
        a NaN or inf anywhere in ``X`` or ``y`` (the message names the dataset, the field and
        the first bad row, 0-based).
    """
    check_choice("task", task, TASKS, name)
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        X.sum_duplicates()
        X.sort_indices()
    else:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise InputError("X", f"array of shape {X.shape}", "a 2-D array (n, d)", name)
    n, d = X.shape
    if n == 0 or d == 0:
        raise InputError("X", f"shape {(n, d)}", "at least one row and one column", name)
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("y", type(y).__name__, "real numbers, one per row of X", name) from None
    if y.shape != (n,):
        raise InputError("y", f"shape {y.shape}", f"shape ({n},), one target per row of X", name)
    for field_name, values in (("X", X), ("y", y)):
        bad = _first_bad_row(values)
        if bad is not None:
            row, value = bad
            raise InputError(
                field_name, f"{value} in row {row} (0-based)", "finite numbers only", name
            )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer):
            raise InputError(
                "groups", f"{groups.dtype} array of shape {groups.shape}",
                f"integers of shape ({n},)", name,
            )
        groups = groups.astype(np.int64)
    return Dataset(name, X, y, task, source, groups, dict(meta or {}))
