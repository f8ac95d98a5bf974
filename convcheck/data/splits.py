"""Splits of a dataset's rows over workers: iid, sorted by label, Dirichlet, natural groups."""

from __future__ import annotations

import math

import numpy as np

from convcheck.data.dataset import Dataset, Split
from convcheck.errors import InputError, check_choice, check_int, check_real

SPLITS = ("iid", "sorted", "dirichlet", "natural")
DIRICHLET_TRIES = 100
QUANTILE_CLASSES = 10


def _class_codes(dataset: Dataset) -> np.ndarray:
    """Class index per row; regression targets binned into equal-count quantile classes."""
    if dataset.task == "classification":
        return np.unique(dataset.y, return_inverse=True)[1]
    n = dataset.n_samples
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(dataset.y, kind="stable")] = np.arange(n)
    return ranks * min(QUANTILE_CLASSES, n) // n


def _contiguous_owner(order: np.ndarray, workers: int) -> np.ndarray:
    """Worker of each row when ``order`` is cut into ``workers`` near-equal contiguous chunks."""
    sizes = np.array([c.size for c in np.array_split(order, workers)])
    owner = np.empty(order.size, dtype=np.int64)
    owner[order] = np.repeat(np.arange(workers), sizes)
    return owner


def _dirichlet_owner(codes: np.ndarray, workers: int, concentration: float,
                     rng: np.random.Generator) -> np.ndarray:
    """One Dirichlet draw: class c's rows go to the workers in proportions p_c ~ Dir(α·1_M)."""
    owner = np.empty(codes.size, dtype=np.int64)
    for c in range(codes.max() + 1):  # loop over classes (few), not workers
        members = rng.permutation(np.flatnonzero(codes == c))
        proportions = rng.dirichlet(np.full(workers, concentration))
        cuts = np.round(np.cumsum(proportions)[:-1] * members.size).astype(np.int64)
        counts = np.diff(np.concatenate([[0], np.clip(cuts, 0, members.size), [members.size]]))
        owner[members] = np.repeat(np.arange(workers), counts)
    return owner


def split_dataset(
    dataset: Dataset,
    workers: int,
    method: str = "iid",
    *,
    dirichlet_alpha: float | None = None,
    seed: int = 0,
    min_shard_size: int = 1,
) -> Split:
    """Assign the rows of ``dataset`` to ``workers`` workers.

    Parameters
    ----------
    dataset : Dataset
    workers : int
        M, in [1, n_samples].
    method : {"iid", "sorted", "dirichlet", "natural"}
        ``"iid"``: a seeded random permutation cut into near-equal parts
        (``np.array_split``: sizes differ by at most one).
        ``"sorted"``: rows stably sorted by label (by target value for regression) and cut
        into contiguous near-equal parts, so each worker sees few labels (heterogeneous
        workers); deterministic.
        ``"dirichlet"``: for each class c, proportions
        :math:`p_c \\sim \\mathrm{Dir}(\\alpha \\mathbf 1_M)`; the class's rows, shuffled, are cut
        at :math:`\\mathrm{round}(n_c \\sum_{m' \\le m} p_{c,m'})`. Small α gives skewed label
        mixes, large α nearly iid ones. Regression targets are first binned into
        ``QUANTILE_CLASSES`` (10) equal-count quantile classes by rank. The draw is repeated
        (same seeded stream, so still deterministic) until every shard has at least
        ``min_shard_size`` rows, at most ``DIRICHLET_TRIES`` (100) times.
        ``"natural"``: one shard per value of ``dataset.groups`` (synthetic heterogeneous
        data), in increasing group order; ``workers`` must equal the number of groups.
    dirichlet_alpha : float, optional
        Dirichlet concentration α > 0; required for, and only for, ``"dirichlet"``.
    seed : int
        Seeds ``numpy.random.default_rng`` (iid and dirichlet); same seed, same split.
    min_shard_size : int
        Smallest shard accepted, in [1, n_samples // workers].

    Returns
    -------
    Split
        Shards are sorted int64 index arrays, disjoint and covering every row.

    Raises
    ------
    InputError
        Bad ``workers``, ``split``, ``dirichlet_alpha``, ``seed`` or ``min_shard_size``;
        ``"natural"`` without groups or with ``workers`` not the number of groups; no
        Dirichlet draw with every shard large enough (use a larger dirichlet_alpha or fewer
        workers).
    """
    n = dataset.n_samples
    context = f"split of dataset {dataset.name!r}"
    method = check_choice("split", method, SPLITS, context)
    workers = check_int("workers", workers, 1, n, context)
    seed = check_int("seed", seed, 0, context=context)
    min_shard_size = check_int("min_shard_size", min_shard_size, 1, n // workers, context)
    if method != "dirichlet" and dirichlet_alpha is not None:
        raise InputError("dirichlet_alpha", dirichlet_alpha, "None unless split = 'dirichlet'",
                         context)
    rng = np.random.default_rng(seed)
    params: dict = {"seed": seed}
    if method == "iid":
        owner = _contiguous_owner(rng.permutation(n), workers)
    elif method == "sorted":
        owner = _contiguous_owner(np.argsort(dataset.y, kind="stable"), workers)
        params = {"key": "label" if dataset.task == "classification" else "target"}
    elif method == "dirichlet":
        if dirichlet_alpha is None:
            raise InputError("dirichlet_alpha", None,
                             "a Dirichlet concentration > 0 (required by split = 'dirichlet')",
                             context)
        alpha = check_real("dirichlet_alpha", dirichlet_alpha, 0.0, math.inf, low_open=True,
                           high_open=True, context=context)
        codes = _class_codes(dataset)
        tries = 0
        while tries < DIRICHLET_TRIES:
            tries += 1
            owner = _dirichlet_owner(codes, workers, alpha, rng)
            smallest = int(np.bincount(owner, minlength=workers).min())
            if smallest >= min_shard_size:
                break
        else:
            raise InputError(
                "dirichlet_alpha", alpha,
                f"a larger dirichlet_alpha or fewer workers: in {DIRICHLET_TRIES} Dirichlet "
                f"draws some of the {workers} shards kept fewer than min_shard_size = "
                f"{min_shard_size} rows (last draw's smallest: {smallest})", context,
            )
        params.update(dirichlet_alpha=alpha, min_shard_size=min_shard_size, tries=tries,
                      classes="labels" if dataset.task == "classification" else
                      f"{QUANTILE_CLASSES} quantile bins of the target")
    else:
        if dataset.groups is None:
            raise InputError(
                "split", method,
                "'iid', 'sorted' or 'dirichlet' for a dataset without groups ('natural' needs "
                "per-row groups, e.g. synthetic data with n_groups > 1)", context,
            )
        group_values, owner = np.unique(dataset.groups, return_inverse=True)
        if workers != group_values.size:
            raise InputError(
                "workers", workers,
                f"{group_values.size}, the number of groups, for split = 'natural'", context,
            )
        params = {"groups": group_values.tolist()}
    counts = np.bincount(owner, minlength=workers)
    if counts.min() < min_shard_size:
        raise InputError(
            "min_shard_size", min_shard_size,
            f"at most {counts.min()}, the smallest {method} shard", context,
        )
    order = np.argsort(owner, kind="stable").astype(np.int64)
    shards = tuple(np.split(order, np.cumsum(counts)[:-1]))
    return Split(shards, method, params)
