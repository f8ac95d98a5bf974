"""The array operations the algorithms are written with, for numpy arrays and torch tensors.

An algorithm's worker and server halves (:mod:`convcheck.algorithms`) use Python's arithmetic
operators and the few functions of a *namespace*: :func:`namespace` returns :data:`NUMPY` for
numpy arrays (float64, the reference that verification checks) and the torch namespace of
:mod:`convcheck.torch.arrays` for tensors (any device and dtype; torch is imported only when a
tensor is passed). So the same update rule runs on both, and the numpy path pays no dispatch
beyond one type test per half.

A namespace offers:

* ``mean_rows(X)``: ``(1/M) Σ_m x_m`` of an ``(M, d)`` array;
* ``zeros_like(x)``, ``zeros(shape, like)``, ``copy(x)``, ``abs(x)``, ``where(mask, a, b)``,
  ``asarray(values, like)`` (numpy values on ``like``'s backend, device and dtype),
  ``repeat_rows(x, M)`` (``M`` copies of ``x`` as rows);
* ``compress(compressor, X, rng)``: a :class:`~convcheck.compressors.Compressor` applied to the
  rows of ``X`` with that backend's kernel; ``threshold(X, tau)``: keep ``|x_i| > τ_i``;
* ``layer_sums(X, starts)``: the sums of the contiguous column blocks that start at ``starts``,
  ``(M, L)`` (no Python loop over layers);
* ``bits(codec, X)``: the exact bit length of each row's encoding, int64 ``(M,)`` of the
  namespace's own kind (a torch tensor on ``X``'s device: pricing does not wait for it);
* scalars for traces: ``mean_square_norm(X)`` = ``(1/M) Σ_m ‖x_m‖²``, ``square_norm(x)``,
  ``all_finite(x)`` (these read a value back, so they stay out of the algorithms' steps);
* ``to_numpy(x)``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from convcheck.compressors import Compressor, keep


class Namespace(Protocol):
    """What :func:`namespace` returns (see the module notes)."""

    name: str

    def mean_rows(self, X: Any) -> Any: ...
    def zeros_like(self, x: Any) -> Any: ...
    def zeros(self, shape: tuple[int, ...], like: Any) -> Any: ...
    def copy(self, x: Any) -> Any: ...
    def asarray(self, values: Any, like: Any) -> Any: ...
    def repeat_rows(self, x: Any, rows: int) -> Any: ...
    def abs(self, x: Any) -> Any: ...
    def where(self, mask: Any, a: Any, b: Any) -> Any: ...
    def compress(self, compressor: Compressor, X: Any, rng: Any) -> Any: ...
    def threshold(self, X: Any, tau: Any) -> Any: ...
    def layer_sums(self, X: Any, starts: np.ndarray) -> Any: ...
    def bits(self, codec: Compressor, X: Any) -> Any: ...
    def mean_square_norm(self, X: Any) -> float: ...
    def square_norm(self, x: Any) -> float: ...
    def all_finite(self, x: Any) -> bool: ...
    def to_numpy(self, x: Any) -> np.ndarray: ...


class NumpyNamespace:
    """numpy arrays: the reference backend (float64 arithmetic)."""

    name = "numpy"

    @staticmethod
    def mean_rows(X: np.ndarray) -> np.ndarray:
        """``X.mean(axis=0)`` bit for bit, without ``ndarray.mean``'s Python wrapper (it costs
        as much as the sum on small arrays)."""
        return np.add.reduce(X, axis=0) / X.shape[0]

    @staticmethod
    def zeros_like(x: np.ndarray) -> np.ndarray:
        return np.zeros_like(x)

    @staticmethod
    def zeros(shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
        return np.zeros(shape, dtype=like.dtype)

    @staticmethod
    def copy(x: np.ndarray) -> np.ndarray:
        return x.copy()

    @staticmethod
    def asarray(values: Any, like: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=like.dtype)

    @staticmethod
    def repeat_rows(x: np.ndarray, rows: int) -> np.ndarray:
        return np.tile(x, (rows, 1))

    abs = staticmethod(np.abs)
    where = staticmethod(np.where)

    @staticmethod
    def compress(compressor: Compressor, X: np.ndarray, rng: Any) -> np.ndarray:
        return compressor.compress(X, rng)

    @staticmethod
    def threshold(X: np.ndarray, tau: np.ndarray | float) -> np.ndarray:
        return keep(X, np.abs(X) > tau)

    @staticmethod
    def layer_sums(X: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return np.add.reduceat(X, starts, axis=1)

    @staticmethod
    def bits(codec: Compressor, X: np.ndarray) -> np.ndarray:
        return codec.bits_rows(X.reshape(-1, X.shape[-1]))

    @staticmethod
    def mean_square_norm(X: np.ndarray) -> float:
        """One single-threaded pass (``einsum``: a multithreaded BLAS dot on one large vector
        is up to 50× slower when another process holds a core)."""
        return float(np.einsum("ij,ij->", X, X)) / X.shape[0]

    @staticmethod
    def square_norm(x: np.ndarray) -> float:
        return float(np.einsum("i,i->", x, x))

    @staticmethod
    def all_finite(x: np.ndarray) -> bool:
        return bool(np.isfinite(x).all())

    @staticmethod
    def to_numpy(x: np.ndarray) -> np.ndarray:
        return x


#: The numpy namespace.
NUMPY = NumpyNamespace()


def namespace(x: Any) -> Namespace:
    """The namespace of ``x``: :data:`NUMPY` for numpy arrays, the torch namespace for tensors."""
    if isinstance(x, np.ndarray):
        return NUMPY
    if type(x).__module__.startswith("torch"):
        from convcheck.torch.arrays import TORCH

        return TORCH
    raise TypeError(f"not an array of a supported backend (numpy, torch): {type(x).__name__}")
