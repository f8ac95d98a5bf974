"""Datasets as tensors for training: train and test parts, scaling, labels, image shapes.

The data come from :func:`convcheck.data.load_dataset` (never downloaded at run time): MNIST
from the data folders (``--data-dir``, ``CONVCHECK_DATA``, the user cache), Fashion-MNIST from
``<data folder>/fashion-mnist`` or any folder as ``idx:DIRECTORY`` (same IDX layout),
scikit-learn digits and the other built-ins. Sets with a test part (MNIST-layout IDX files:
``t10k``) use it; the others hold out a seeded fraction of their rows. Scaling statistics are
computed on the training rows only and applied to both parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from convcheck.data import Dataset, load_dataset, make_dataset
from convcheck.errors import InputError, check_choice, check_int, check_real

#: Scalings, computed on the training part.
SCALINGS = ("none", "maxabs", "standard")


@dataclass(frozen=True)
class TensorData:
    """Features ``X`` ``(n, p)`` and integer class labels ``y`` ``(n,)`` on a device.

    Attributes
    ----------
    classes : int
        Number of classes (labels are ``0..classes−1``).
    image_shape : (C, H, W) or None
        ``(1, s, s)`` when ``p = s²`` (grey images), else ``None``.
    """

    X: torch.Tensor
    y: torch.Tensor
    classes: int
    image_shape: tuple[int, int, int] | None

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]


def has_test_part(name: str) -> bool:
    """MNIST-layout sets ship a test part (``t10k`` files)."""
    return name in ("mnist", "fashion-mnist") or name.startswith("idx:")


def load_train_test(
    name: str,
    *,
    data_dir: str | None = None,
    dataset_params: dict | None = None,
    scaling: str = "none",
    train_size: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[Dataset, TensorData, TensorData]:
    """Load a classification set as ``(train Dataset, train tensors, test tensors)``.

    Parameters
    ----------
    name : str
        Dataset name or form (see :func:`convcheck.data.load_dataset`).
    dataset_params : dict, optional
        Loader parameters (e.g. ``kind="fashion-mnist"`` for ``idx:``); ``part`` is set here.
    scaling : {"none", "maxabs", "standard"}
        Feature scaling with training statistics.
    train_size : int, optional
        Keep a seeded random subset of this many training rows (all if ``None``).
    test_fraction : float
        Fraction held out for testing when the set has no test part.
    seed : int
        Seeds the subset and the held-out rows.

    Returns
    -------
    (Dataset, TensorData, TensorData)
        The numpy training :class:`~convcheck.data.Dataset` (for
        :func:`convcheck.data.split_dataset`; rows in the order of the training tensors) and
        the training and test tensors.
    """
    scaling = check_choice("scaling", scaling, SCALINGS)
    params = dict(dataset_params or {})
    if "part" in params:
        raise InputError("part", params["part"], "not given: train and test parts are chosen here")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    if has_test_part(name):
        train = load_dataset(name, data_dir=data_dir, part="train", **params)
        test = load_dataset(name, data_dir=data_dir, part="test", **params)
        X_train, y_train, X_test, y_test = train.X, train.y, test.X, test.y
        source = f"{train.source}; test: {test.source}"
    else:
        full = load_dataset(name, data_dir=data_dir, **params)
        if full.task != "classification" or not isinstance(full.X, np.ndarray):
            raise InputError("dataset", name, "a dense classification dataset")
        fraction = check_real(
            "test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True
        )
        order = rng.permutation(full.n_samples)
        n_test = max(1, int(round(fraction * full.n_samples)))
        test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
        X_train, y_train = full.X[train_rows], full.y[train_rows]
        X_test, y_test = full.X[test_rows], full.y[test_rows]
        source = f"{full.source}; seeded hold-out of {n_test} rows for testing (seed {seed})"
    if train_size is not None:
        train_size = check_int("train_size", train_size, 1, X_train.shape[0])
        keep = np.sort(rng.permutation(X_train.shape[0])[:train_size])
        X_train, y_train = X_train[keep], y_train[keep]
        source += f"; seeded subset of {train_size} training rows"
    X_train, X_test = _scale(X_train, X_test, scaling)
    classes, codes = np.unique(np.concatenate([y_train, y_test]), return_inverse=True)
    codes_train, codes_test = codes[: y_train.size], codes[y_train.size :]
    side = math.isqrt(X_train.shape[1])
    image_shape = (1, side, side) if side * side == X_train.shape[1] else None
    dataset = make_dataset(
        name, X_train, codes_train.astype(np.float64), task="classification",
        source=source + f"; scaling {scaling} (training statistics)",
    )

    def tensors(X: np.ndarray, y: np.ndarray) -> TensorData:
        return TensorData(
            torch.as_tensor(X, dtype=dtype, device=device),
            torch.as_tensor(y, dtype=torch.int64, device=device),
            int(classes.size),
            image_shape,
        )

    return dataset, tensors(X_train, codes_train), tensors(X_test, codes_test)


def _scale(X_train: np.ndarray, X_test: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """Scale both parts with statistics of the training part."""
    if scaling == "none":
        return X_train, X_test
    if scaling == "maxabs":
        scale = np.abs(X_train).max(axis=0)
        scale[scale == 0] = 1.0
        return X_train / scale, X_test / scale
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std
