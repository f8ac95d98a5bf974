"""The torch namespace: the shape-generic operations of a batch, and per-run values."""

from __future__ import annotations

import numpy as np
import torch

from convcheck.arrays import NUMPY, PerRun, namespace
from convcheck.compressors import TopK
from convcheck.torch.arrays import TORCH


def test_batched_operations_equal_numpy_run_by_run():
    X = np.random.default_rng(0).normal(size=(3, 4, 6))
    T = torch.as_tensor(X)
    tau = np.abs(X[:, 0, :])
    pairs = [
        (TORCH.mean_rows(T), NUMPY.mean_rows(X)),
        (TORCH.compress(TopK(k=2), T, None), NUMPY.compress(TopK(k=2), X, None)),
        (TORCH.threshold(T, torch.as_tensor(tau)), NUMPY.threshold(X, tau)),
        (TORCH.layer_sums(T, np.array([0, 2])), NUMPY.layer_sums(X, np.array([0, 2]))),
        (TORCH.rows_like(T[:, 0], 4, 2), NUMPY.rows_like(X[:, 0], 4, 2)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(TORCH.bits(TopK(k=2), TORCH.compress(TopK(k=2), T, None)),
                                  NUMPY.bits(TopK(k=2), NUMPY.compress(TopK(k=2), X, None)))
    for op in ("mean_square_norm", "max_entry"):
        np.testing.assert_allclose(getattr(TORCH, op)(T), getattr(NUMPY, op)(X), rtol=1e-14)
    for op in ("square_norm", "norm"):
        np.testing.assert_allclose(getattr(TORCH, op)(T[:, 0]), getattr(NUMPY, op)(X[:, 0]),
                                   rtol=1e-14)
        assert isinstance(getattr(TORCH, op)(T[0, 0]), float)
    assert isinstance(TORCH.mean_square_norm(T[0]), float)


def test_per_run_values_on_tensors():
    alpha = PerRun([0.5, 2.0, 3.0])
    T = torch.ones((3, 4, 2), dtype=torch.float64)
    for result, expected in ((alpha * T, [0.5, 2.0, 3.0]), (T / alpha, [2.0, 0.5, 1 / 3]),
                             (T * alpha, [0.5, 2.0, 3.0]), (1.0 - alpha * T, [0.5, -1.0, -2.0])):
        assert isinstance(result, torch.Tensor) and result.shape == T.shape
        np.testing.assert_allclose(result[:, 1, 0].numpy(), expected, rtol=1e-15)
    assert (alpha * T[:, 0]).shape == (3, 2)


def test_importing_the_backend_registers_the_torch_namespace():
    assert namespace(torch.zeros(2, dtype=torch.float64)) is TORCH
