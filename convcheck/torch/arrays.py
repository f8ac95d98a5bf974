"""The torch namespace of :mod:`convcheck.arrays`: the algorithms' operations on tensors.

Importing this module (which ``import convcheck.torch`` does) registers :data:`TORCH` as the
namespace of torch tensors. Compressors run with their torch kernels
(:func:`convcheck.torch.compressors.to_torch`), on the tensors' device and dtype; randomized ones
draw from a :class:`torch.Generator`.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import torch

from convcheck.arrays import broadcast_threshold, register_namespace
from convcheck.compressors import Compressor
from convcheck.torch.compressors import TorchCompressor, threshold, to_torch

Tensor = torch.Tensor

_KERNELS: WeakKeyDictionary[Compressor, TorchCompressor] = WeakKeyDictionary()


def kernel(compressor: Compressor | TorchCompressor) -> TorchCompressor:
    """The torch kernel of a compressor (built once per compressor object)."""
    if isinstance(compressor, TorchCompressor):
        return compressor
    found = _KERNELS.get(compressor)
    if found is None:
        found = _KERNELS[compressor] = to_torch(compressor)
    return found


class TorchNamespace:
    """torch tensors on any device and dtype."""

    name = "torch"

    @staticmethod
    def mean_rows(X: Tensor) -> Tensor:
        return X.mean(dim=-2)

    @staticmethod
    def rows_like(theta: Tensor, rows: int, columns: int | None = None) -> Tensor:
        return theta.new_zeros(theta.shape[:-1] + (rows, theta.shape[-1] if columns is None
                                                    else columns))

    @staticmethod
    def zeros_like(x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    @staticmethod
    def zeros(shape: tuple[int, ...], like: Tensor) -> Tensor:
        return like.new_zeros(shape)

    @staticmethod
    def copy(x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def asarray(values: Any, like: Tensor) -> Tensor:
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)

    @staticmethod
    def repeat_rows(x: Tensor, rows: int) -> Tensor:
        return x.expand(rows, -1).clone()

    abs = staticmethod(torch.abs)
    where = staticmethod(torch.where)

    @staticmethod
    def compress(compressor: Compressor, X: Tensor, rng: Any) -> Tensor:
        if X.ndim > 2:
            return kernel(compressor).compress(X.reshape(-1, X.shape[-1]), rng).reshape(X.shape)
        return kernel(compressor).compress(X, rng)

    @staticmethod
    def threshold(X: Tensor, tau: Any) -> Tensor:
        if isinstance(tau, np.ndarray):
            tau = torch.as_tensor(tau, device=X.device)
        return threshold(X, broadcast_threshold(X, tau))

    @staticmethod
    def layer_sums(X: Tensor, starts: np.ndarray) -> Tensor:
        """One contiguous reduction per layer (a scatter-add over all columns is 30× slower
        on CPU, and needs atomics on a GPU)."""
        ends = [*starts[1:], X.shape[-1]]
        return torch.stack([X[..., a:b].sum(-1) for a, b in zip(starts, ends, strict=True)],
                           dim=-1)

    @staticmethod
    def bits(codec: Compressor, X: Tensor) -> Tensor:
        """Bits per row, an int64 tensor on ``X``'s device (nothing is read back)."""
        return kernel(codec).bits_tensor(X.reshape(-1, X.shape[-1]))

    @staticmethod
    def mean_square_norm(X: Tensor) -> float | np.ndarray:
        if X.ndim == 2:
            return float(X.double().square().sum() / X.shape[0])
        return (X.double().square().sum(dim=(-2, -1)) / X.shape[-2]).cpu().numpy()

    @staticmethod
    def square_norm(x: Tensor) -> float | np.ndarray:
        if x.ndim == 1:
            return float(x.double().square().sum())
        return x.double().square().sum(dim=-1).cpu().numpy()

    @staticmethod
    def norm(x: Tensor) -> float | np.ndarray:
        if x.ndim == 1:
            return float(x.double().square().sum().sqrt())
        return x.double().square().sum(dim=-1).sqrt().cpu().numpy()

    @staticmethod
    def max_entry(X: Tensor) -> float | np.ndarray:
        if X.ndim == 2:
            return float(X.max())
        return X.amax(dim=(-2, -1)).double().cpu().numpy()

    @staticmethod
    def all_finite(x: Tensor) -> bool:
        return bool(torch.isfinite(x).all())

    @staticmethod
    def to_numpy(x: Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()


#: The torch namespace.
TORCH = TorchNamespace()
register_namespace("torch", TORCH)
