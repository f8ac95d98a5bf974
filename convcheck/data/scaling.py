"""Feature scaling and the intercept column."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from convcheck.data.dataset import Dataset, make_dataset
from convcheck.errors import InputError, check_choice

SCALINGS = ("none", "standard", "maxabs", "unit-rows")


def _with_features(dataset: Dataset, X: np.ndarray | sp.spmatrix, tag: str,
                   what: str) -> Dataset:
    """``dataset`` with new features; name and source record the step, ``meta`` is dropped."""
    return make_dataset(
        f"{dataset.name}+{tag}", X, dataset.y, task=dataset.task,
        source=f"{dataset.source}; then {what}", groups=dataset.groups,
    )


def scale_features(dataset: Dataset, method: str) -> Dataset:
    """Rescale the features.

    Parameters
    ----------
    dataset : Dataset
    method : {"none", "standard", "maxabs", "unit-rows"}
        ``"none"``: the dataset unchanged.
        ``"standard"``: :math:`x_{ij} \\leftarrow (x_{ij} - \\bar x_j) / s_j` (column mean and
        population standard deviation; constant columns are only centred). Dense X only:
        centring would make a sparse X dense.
        ``"maxabs"``: :math:`x_{ij} \\leftarrow x_{ij} / \\max_i |x_{ij}|` (all-zero columns
        unchanged); keeps sparsity.
        ``"unit-rows"``: :math:`a_i \\leftarrow a_i / \\|a_i\\|_2` (zero rows stay zero);
        keeps sparsity.

    Returns
    -------
    Dataset
        Name with ``+method`` appended; the source says what was done. ``meta`` (facts about
        the unscaled data, such as a synthetic spectrum) is dropped.

    Raises
    ------
    InputError
        Unknown method, or ``"standard"`` on sparse X.
    """
    check_choice("scaling", method, SCALINGS, dataset.name)
    X = dataset.X
    sparse = sp.issparse(X)
    if method == "none":
        return dataset
    if method == "standard":
        if sparse:
            raise InputError(
                "scaling", method,
                "'maxabs' or 'unit-rows' for sparse X ('standard' centres the columns, which "
                "would make X dense; 'maxabs' keeps it sparse)", dataset.name,
            )
        mean, std = X.mean(axis=0), X.std(axis=0)
        std[std == 0] = 1.0
        return _with_features(dataset, (X - mean) / std, method,
                              "standard scaling (columns to zero mean, unit variance)")
    if method == "maxabs":
        scale = np.asarray(abs(X).max(axis=0).todense() if sparse else np.abs(X).max(axis=0))
        scale = scale.ravel()
        scale[scale == 0] = 1.0
        scaled = X @ sp.diags(1.0 / scale) if sparse else X / scale
        return _with_features(dataset, scaled, method,
                              "max-abs scaling (each column divided by its max |x|)")
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()) if sparse else (
        np.linalg.norm(X, axis=1))
    norms[norms == 0] = 1.0
    scaled = sp.diags(1.0 / norms) @ X if sparse else X / norms[:, None]
    return _with_features(dataset, scaled, method, "rows scaled to unit l2 norm")


def add_intercept(dataset: Dataset) -> Dataset:
    """Append a constant-1 column (sparse X stays sparse); name gets ``+intercept``."""
    ones = np.ones((dataset.n_samples, 1))
    X = sp.hstack([dataset.X, ones], format="csr") if sp.issparse(dataset.X) else np.hstack(
        [dataset.X, ones])
    return _with_features(dataset, X, "intercept", "a constant-1 intercept column appended")
