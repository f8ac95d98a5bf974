"""Datasets and their split over workers.

A :class:`Dataset` is a design matrix ``X`` (dense ``ndarray`` or ``scipy.sparse.csr_matrix``,
float64, finite) with labels ``y``; a :class:`Split` assigns its rows to ``M`` workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


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
    """

    name: str
    X: np.ndarray | sp.csr_matrix
    y: np.ndarray
    task: str
    source: str
    groups: np.ndarray | None = field(default=None, repr=False)

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
        from convcheck.errors import InputError

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
