"""The array operations the algorithms are written with, for numpy arrays and torch tensors.

An algorithm's worker and server halves (:mod:`convcheck.algorithms`) use Python's arithmetic
operators and the few functions of a *namespace*: :func:`namespace` returns :data:`NUMPY` for
numpy arrays (float64, the reference that verification checks) and, for tensors, the torch
namespace that :mod:`convcheck.torch.arrays` registers (any device and dtype; this module never
imports torch). So the same update rule runs on both, and the numpy path pays no dispatch
beyond one type test per half.

Every operation is shape-generic: a *batch* of ``R`` runs of one algorithm
(:func:`convcheck.engine.batch.run_batch`) is one computation with a leading run axis, the model
and the server's vectors ``(R, d)`` and the workers' rows ``(R, M, d)``, and the halves stay as
they are. The runs' own scalar parameters (step sizes, GD-SEC's β and ξ) are then
:class:`PerRun` values, which broadcast over either shape in arithmetic.

A namespace offers:

* ``mean_rows(X)``: ``(1/M) Σ_m x_m`` over the worker axis (``-2``) of ``(M, d)`` or
  ``(R, M, d)``;
* ``zeros_like(x)``, ``zeros(shape, like)``, ``copy(x)``, ``abs(x)``, ``where(mask, a, b)``,
  ``asarray(values, like)`` (numpy values on ``like``'s backend, device and dtype),
  ``repeat_rows(x, M)`` (``M`` copies of ``x`` as rows);
* ``rows_like(theta, M, columns=None)``: zeros of shape ``theta.shape[:-1] + (M, columns or d)``
  (the workers' rows, with the run axis of ``θ`` when batched);
* ``compress(compressor, X, rng)``: a :class:`~convcheck.compressors.Compressor` applied to the
  rows of ``X`` (``(d,)``, ``(M, d)``, or ``(R, M, d)`` as ``R·M`` rows) with that backend's
  kernel; ``threshold(X, tau)``: keep ``|x_i| > τ_i`` (``τ`` ``(d,)``, or per run ``(R, d)``
  for ``(R, M, d)``, broadcast over the workers);
* ``layer_sums(X, starts)``: the sums of the contiguous column blocks that start at ``starts``,
  ``(M, L)`` (no Python loop over layers);
* ``bits(codec, X)``: the exact bit length of each row's encoding, int64, one per row
  (``(M,)``, or ``(R·M,)`` for ``(R, M, d)``), of the namespace's own kind (a torch tensor on
  ``X``'s device: pricing does not wait for it);
* scalars for traces: ``mean_square_norm(X)`` = ``(1/M) Σ_m ‖x_m‖²``, ``square_norm(x)``,
  ``norm(x)``, ``max_entry(X)`` = ``max_{m,j} x_{m,j}``, ``all_finite(x)`` (these read a
  value back, so they stay out of the algorithms' steps); one value per run (an ``(R,)`` numpy
  array) when batched;
* ``to_numpy(x)``.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Protocol

import numpy as np

from convcheck.compressors import Compressor, keep


class PerRun:
    """One real value per run of a batch, ``(R,)``, used where an algorithm uses a scalar.

    In arithmetic with an array (numpy or torch) of shape ``(R, …)`` the values are aligned with
    its leading run axis: ``alpha * G`` scales run ``r``'s rows ``G[r]`` (``(R, d)`` or
    ``(R, M, d)``) by ``alpha[r]``, which is the same floating-point product, run by run, as the
    scalar ``alpha`` of run ``r`` alone. With a number or another :class:`PerRun` the result is
    a :class:`PerRun`. numpy defers to these operators (``__array_ufunc__ = None``), so
    ``G / alpha`` works too.

    Attributes
    ----------
    values : ndarray of float64, shape (R,)
    """

    __slots__ = ("values", "_on")
    __array_ufunc__ = None
    #: A scalar per run (``np.ndim`` reads 0, as for the scalar it stands for).
    ndim = 0

    def __init__(self, values: Any) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        if self.values.ndim != 1:
            raise ValueError(f"PerRun takes one value per run (R,), not {self.values.shape}")
        self._on: dict[Any, Any] = {}

    def take(self, index: Any) -> PerRun:
        """The values of the runs ``index`` (a batch that lost runs)."""
        return PerRun(self.values[index])

    def _aligned(self, other: Any) -> Any:
        """The values as an array that broadcasts over ``other``'s trailing axes (on a tensor's
        device and dtype: copied there once)."""
        values = self.values.reshape(self.values.shape + (1,) * (other.ndim - 1))
        if isinstance(other, np.ndarray):
            return values
        key = (other.ndim, other.dtype, other.device)
        if key not in self._on:
            self._on[key] = namespace(other).asarray(values, like=other)
        return self._on[key]

    def _apply(self, other: Any, op: Any, reflected: bool) -> Any:
        if isinstance(other, PerRun):
            mine, theirs = self.values, other.values
        elif isinstance(other, (int, float, np.number)):
            mine, theirs = self.values, other
        elif getattr(other, "ndim", 0) >= 1:
            aligned = self._aligned(other)
            return op(other, aligned) if reflected else op(aligned, other)
        else:
            return NotImplemented
        return PerRun(op(theirs, mine) if reflected else op(mine, theirs))

    def __mul__(self, other: Any) -> Any:
        return self._apply(other, operator.mul, False)

    def __rmul__(self, other: Any) -> Any:
        return self._apply(other, operator.mul, True)

    def __truediv__(self, other: Any) -> Any:
        return self._apply(other, operator.truediv, False)

    def __rtruediv__(self, other: Any) -> Any:
        return self._apply(other, operator.truediv, True)

    def __add__(self, other: Any) -> Any:
        return self._apply(other, operator.add, False)

    def __radd__(self, other: Any) -> Any:
        return self._apply(other, operator.add, True)

    def __sub__(self, other: Any) -> Any:
        return self._apply(other, operator.sub, False)

    def __rsub__(self, other: Any) -> Any:
        return self._apply(other, operator.sub, True)

    def __pow__(self, other: Any) -> Any:
        return self._apply(other, operator.pow, False)

    def __neg__(self) -> PerRun:
        return PerRun(-self.values)

    def __repr__(self) -> str:
        return f"PerRun({self.values.tolist()!r})"


def broadcast_threshold(X: Any, tau: Any) -> Any:
    """``τ`` for ``|X| > τ``: a per-run ``(R, d)`` threshold gets the worker axis of
    ``(R, M, d)``."""
    if getattr(tau, "ndim", 0) == X.ndim - 1 and X.ndim > 2:
        return tau[..., None, :]
    return tau


class Namespace(Protocol):
    """What :func:`namespace` returns (see the module notes)."""

    name: str

    def mean_rows(self, X: Any) -> Any: ...
    def rows_like(self, theta: Any, rows: int, columns: int | None = None) -> Any: ...
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
    def mean_square_norm(self, X: Any) -> Any: ...
    def square_norm(self, x: Any) -> Any: ...
    def norm(self, x: Any) -> Any: ...
    def max_entry(self, X: Any) -> Any: ...
    def all_finite(self, x: Any) -> bool: ...
    def to_numpy(self, x: Any) -> np.ndarray: ...


class NumpyNamespace:
    """numpy arrays: the reference backend (float64 arithmetic)."""

    name = "numpy"

    @staticmethod
    def mean_rows(X: np.ndarray) -> np.ndarray:
        """``X.mean(axis=-2)`` bit for bit, without ``ndarray.mean``'s Python wrapper (it costs
        as much as the sum on small arrays)."""
        return np.add.reduce(X, axis=-2) / X.shape[-2]

    @staticmethod
    def rows_like(theta: np.ndarray, rows: int, columns: int | None = None) -> np.ndarray:
        shape = theta.shape[:-1] + (rows, theta.shape[-1] if columns is None else columns)
        return np.zeros(shape, dtype=theta.dtype)

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
        if X.ndim > 2:
            return compressor.compress(X.reshape(-1, X.shape[-1]), rng).reshape(X.shape)
        return compressor.compress(X, rng)

    @staticmethod
    def threshold(X: np.ndarray, tau: np.ndarray | float) -> np.ndarray:
        return keep(X, np.abs(X) > broadcast_threshold(X, tau))

    @staticmethod
    def layer_sums(X: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return np.add.reduceat(X, starts, axis=-1)

    @staticmethod
    def bits(codec: Compressor, X: np.ndarray) -> np.ndarray:
        return codec.bits_rows(X.reshape(-1, X.shape[-1]))

    @staticmethod
    def mean_square_norm(X: np.ndarray) -> float | np.ndarray:
        """One single-threaded pass (``einsum``: a multithreaded BLAS dot on one large vector
        is up to 50× slower when another process holds a core); per run for ``(R, M, d)``."""
        if X.ndim == 2:
            return float(np.einsum("ij,ij->", X, X)) / X.shape[0]
        return np.einsum("...ij,...ij->...", X, X) / X.shape[-2]

    @staticmethod
    def square_norm(x: np.ndarray) -> float | np.ndarray:
        if x.ndim == 1:
            return float(np.einsum("i,i->", x, x))
        return np.einsum("...i,...i->...", x, x)

    @staticmethod
    def norm(x: np.ndarray) -> float | np.ndarray:
        """``sqrt(square_norm(x))`` (a float, or per run)."""
        if x.ndim == 1:
            return math.sqrt(NumpyNamespace.square_norm(x))
        return np.sqrt(NumpyNamespace.square_norm(x))

    @staticmethod
    def max_entry(X: np.ndarray) -> float | np.ndarray:
        if X.ndim == 2:
            return float(X.max())
        return X.max(axis=(-2, -1))

    @staticmethod
    def all_finite(x: np.ndarray) -> bool:
        return bool(np.isfinite(x).all())

    @staticmethod
    def to_numpy(x: np.ndarray) -> np.ndarray:
        return x


#: The numpy namespace.
NUMPY = NumpyNamespace()
#: The namespaces of the other backends, by the top-level package of their array type. Each
#: backend registers its own (:func:`register_namespace`; importing ``convcheck.torch``
#: registers torch's), so this module depends on none of them.
_BACKENDS: dict[str, Namespace] = {}


def register_namespace(package: str, backend: Namespace) -> None:
    """Make ``backend`` the namespace of the arrays whose type is defined in ``package``."""
    _BACKENDS[package] = backend


def namespace(x: Any) -> Namespace:
    """The namespace of ``x``: :data:`NUMPY` for numpy arrays, else the registered namespace of
    the package that defines its type (torch's for tensors)."""
    if isinstance(x, np.ndarray):
        return NUMPY
    package = type(x).__module__.partition(".")[0]
    found = _BACKENDS.get(package)
    if found is None:
        hint = " (import convcheck.torch first: it registers it)" if package == "torch" else ""
        raise TypeError(f"no array namespace registered for {type(x).__name__} of package "
                        f"{package!r}{hint}; registered: numpy, {', '.join(_BACKENDS) or 'none'}")
    return found
