"""Compressors as typed mathematical objects (docs/algorithms.md §4).

A compressor ``C : ℝ^d → ℝ^d`` declares the guarantee it satisfies,

* ``"contractive"``: ``‖C(x) − x‖² ≤ (1 − δ)‖x‖²`` (surely, or in expectation when
  ``in_expectation``), ``δ = delta(d) ∈ (0, 1]``;
* ``"unbiased"``: ``E C(x) = x`` and ``E‖C(x) − x‖² ≤ ω‖x‖²``, ``ω = omega(d)``;
* ``"absolute"``: ``|C(x)_i − x_i| ≤ τ_i`` and ``‖C(x) − x‖ ≤ ‖x‖``, ``τ = tau(d)``,

its structural properties (flags read by the contract suite
:func:`convcheck.contracts.check_compressor` and by the certificates), and the exact bit
length of a real encoding of its output (:mod:`convcheck.encoding`).

Rows of an ``(M, d)`` array are compressed independently, vectorized over rows; a
randomized compressor draws from an explicit :class:`numpy.random.Generator` so that
compressing a batch equals compressing its rows one after another with the same
Generator.

Writing your own: subclass :class:`Compressor`, set the class attributes, implement
:meth:`Compressor.compress_rows`, :meth:`Compressor.bits_rows`, :meth:`Compressor.encode`,
:meth:`Compressor.decode` and the constant of your guarantee, then run
``convcheck.contracts.check_compressor(YourCompressor(...))``.
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np

from convcheck import encoding
from convcheck.described import Described
from convcheck.encoding import Encoded
from convcheck.errors import InputError, check_int, check_real
from convcheck.registry import Registry

GUARANTEES = ("contractive", "unbiased", "absolute")

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_rows(x: Any, field: str = "x") -> tuple[np.ndarray, bool]:
    """Validate a vector or batch and view it as rows.

    Returns ``(rows, was_vector)`` with ``rows`` of shape ``(M, d)``; raises
    :class:`InputError` unless ``x`` is a float32/float64 array of shape ``(d,)`` or
    ``(M, d)`` with ``d ≥ 1``.
    """
    arr = np.asarray(x)
    if arr.dtype not in _FLOAT_DTYPES or arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise InputError(
            field,
            f"array of dtype {arr.dtype} and shape {arr.shape}",
            "a float32 or float64 array of shape (d,) or (M, d) with d >= 1",
        )
    return (arr.reshape(1, -1), True) if arr.ndim == 1 else (arr, False)


def _row(c: Any) -> np.ndarray:
    """Validate one compressed row ``(d,)`` for :meth:`Compressor.encode`."""
    rows, was_vector = as_rows(c, "c")
    if not was_vector:
        raise InputError("c", f"array of shape {rows.shape}", "one compressed row of shape (d,)")
    return rows[0]


@functools.lru_cache(maxsize=4096)
def _ratio_count(ratio: float, d: int) -> int:
    return max(1, math.floor(Fraction(repr(ratio)) * d))


def _resolve_count(k: Any, ratio: Any, d: int, field: str = "k") -> int:
    """``k`` itself (checked against ``d``) or ``max(1, ⌊ratio·d⌋)``.

    The ratio is read as the decimal it prints as (``Fraction(repr(ratio))``), so
    ``ratio=0.29, d=100`` gives 29 and not 28 from ``0.29·100 = 28.999…``.
    """
    if ratio is not None:
        return _ratio_count(float(ratio), int(d))
    if k > d:
        raise InputError(field, k, f"an integer in [1, d={d}]")
    return k


def _check_count_or_ratio(k: Any, ratio: Any) -> tuple[int | None, float | None]:
    """Exactly one of ``k`` (integer ≥ 1) or ``ratio`` (real in (0, 1])."""
    if (k is None) == (ratio is None):
        raise InputError(
            "k", k, "exactly one of k (an integer >= 1) or ratio (a real number in (0, 1])"
        )
    if k is not None:
        return check_int("k", k, 1), None
    return None, check_real("ratio", ratio, 0.0, 1.0, low_open=True)


def _top_k_mask(a: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` largest entries of each row of ``a ≥ 0`` (ties: lowest index).

    ``t`` = the k-th largest value of the row (``np.partition``, O(d)); keep every
    entry ``> t``, then the first ``k − #{a > t}`` entries equal to ``t`` in index
    order (a cumulative count of the ties, computed only for rows with surplus ties).
    numpy's selection slows down ~10× when the k-th position from the top sits next to a
    large block of equal values (the zeros of sparse vectors), so mostly-zero batches
    select the k-th smallest of ``−a`` instead: the same ``t``, found fast.
    """
    d = a.shape[1]
    if k >= d:
        return np.ones(a.shape, dtype=bool)
    if 2 * np.count_nonzero(a) < a.size:
        negated = -a
        negated.partition(k - 1, axis=1)
        t = -negated[:, k - 1 : k]
    else:
        ordered = a.copy()
        ordered.partition(d - k, axis=1)
        t = ordered[:, d - k : d - k + 1]
    mask = a >= t
    tied = a == t
    need = k - np.add.reduce(a > t, axis=1, keepdims=True, dtype=np.int64)
    # only rows with more ties at t than places left need the cumulative count
    over = np.flatnonzero(np.add.reduce(tied, axis=1, dtype=np.int64) > need[:, 0])
    if over.size:
        ties = tied[over]
        mask[over] &= ~ties | (np.cumsum(ties, axis=1) <= need[over])
    return mask


def row_counts(C: np.ndarray) -> np.ndarray:
    """Nonzeros of each row of ``(M, d)`` (int64 ``(M,)``): ``np.count_nonzero(C, axis=1)``
    without its Python wrapper."""
    return np.add.reduce(C != 0, axis=1, dtype=np.int64)


def keep(X: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``X`` where ``mask``, ``+0`` elsewhere (``np.where(mask, X, 0)``), without branches.

    The bits of each entry are ANDed with all ones (kept) or all zeros (dropped): one pass
    that costs the same for any mask, where ``np.where`` slows down about 4× on irregular
    masks. Kept entries are bit-identical, including ±inf and NaN.
    """
    word = np.dtype(f"u{X.dtype.itemsize}")
    return (X.view(word) & -mask.astype(word)).view(X.dtype)


class Compressor(Described, abc.ABC):
    """A compression operator with its guarantee, constant, flags and exact bit cost.

    Class attributes (a subclass may set the guarantee and flags per instance when a
    parameter changes them, as :class:`RandK` does with ``scaled``):

    Attributes
    ----------
    name : str
        Registry name (``"top-k"``).
    guarantee : {"contractive", "unbiased", "absolute"}
    in_expectation : bool
        The contractive bound holds only in expectation (unscaled rand-k).
    randomized : bool
        ``compress`` needs a :class:`numpy.random.Generator`.
    sparsifier : bool
        ``C(x)_i ∈ {0, x_i}`` for every ``i``; then ``⟨C(x), x − C(x)⟩ = 0`` exactly.
    idempotent : bool
        ``C(C(x)) = C(x)``.
    scale_equivariant : bool
        ``C(a x) = a C(x)`` for ``a > 0`` (exact for powers of two; randomized
        compressors with the same random draws).
    value_bits : int
        32 (float32 values on the wire, the default) or 64.
    """

    name: ClassVar[str]
    guarantee: str
    in_expectation: bool = False
    randomized: bool = False
    sparsifier: bool = False
    idempotent: bool = False
    scale_equivariant: bool = False
    value_bits: int = 32

    # ------------------------------------------------------------ compression
    def compress(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Compress a vector ``(d,)`` or each row of ``(M, d)``; same shape and dtype.

        Parameters
        ----------
        x : ndarray, float32 or float64, shape (d,) or (M, d)
        rng : numpy.random.Generator, optional
            Required by randomized compressors (ignored, not consumed, by the others).
            A batch consumes the Generator as its rows would, one after another.
        """
        rows, was_vector = as_rows(x)
        if self.randomized and not isinstance(rng, np.random.Generator):
            raise InputError("rng", rng, "a numpy.random.Generator")
        out = self.compress_rows(rows, rng if self.randomized else None)
        return out[0] if was_vector else out

    @abc.abstractmethod
    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Compress every row of a validated ``(M, d)`` float array (same dtype out)."""

    # ------------------------------------------------------------ bits and wire
    def bits(self, c: np.ndarray) -> int | np.ndarray:
        """Exact bit length of the encoding of compressed rows.

        ``int`` for one row ``(d,)``, int64 array ``(M,)`` for ``(M, d)``;
        ``bits(c) == encode(c).nbits`` for every row.
        """
        rows, was_vector = as_rows(c, "c")
        out = np.asarray(self.bits_rows(rows), dtype=np.int64)
        return int(out[0]) if was_vector else out

    @abc.abstractmethod
    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        """Bit length of each row of a validated ``(M, d)`` compressed array (int64 ``(M,)``)."""

    def price_rows(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`bits_rows` and the nonzeros of each row (int64 ``(M,)`` each), for a
        transport that records both (sparse codecs count once)."""
        return self.bits_rows(C), row_counts(C)

    def price(self, c: np.ndarray) -> tuple[int, int]:
        """:meth:`price_rows` of one validated compressed vector ``(d,)``, as integers."""
        return int(self.bits_rows(c.reshape(1, -1))[0]), int(np.count_nonzero(c))

    @abc.abstractmethod
    def encode(self, c: np.ndarray) -> Encoded:
        """The message of one compressed row ``(d,)``."""

    @abc.abstractmethod
    def decode(self, message: Encoded) -> np.ndarray:
        """The row ``(d,)`` (float64) of a message; exact at the wire precision."""

    # ------------------------------------------------------------ constants
    def dim_range(self) -> tuple[int, int | None]:
        """Dimensions ``d`` this compressor accepts: ``(d_min, d_max)``, ``None`` = unbounded."""
        return 1, None

    def delta(self, d: int) -> float:
        """Contraction constant ``δ``: ``‖C(x) − x‖² ≤ (1 − δ)‖x‖²`` (contractive class)."""
        raise self._no_constant("contractive")

    def omega(self, d: int) -> float:
        """Variance constant ``ω``: ``E‖C(x) − x‖² ≤ ω‖x‖²`` (unbiased class)."""
        raise self._no_constant("unbiased")

    def tau(self, d: int) -> np.ndarray:
        """Absolute bound ``τ ∈ ℝ^d``: ``|C(x)_i − x_i| ≤ τ_i`` (absolute class)."""
        raise self._no_constant("absolute")

    def _no_constant(self, guarantee: str) -> InputError:
        return InputError("compressor", self.name, f"a compressor whose guarantee is {guarantee!r}")

    # ------------------------------------------------------------ description
    constant_formula: str = ""

    def params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-friendly)."""
        return {"value_bits": self.value_bits}

    def describe(self) -> dict[str, Any]:
        """``{"name", "params", "guarantee", "constant_formula"}`` for reports and ``list``."""
        return {
            **super().describe(),
            "guarantee": self.guarantee,
            "constant_formula": self.constant_formula,
        }


class _SparseCoded(Compressor):
    """Compressors whose output is sent as a sparse message (index list or bitmap)."""

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        """``nnz·(b + v)`` if ``nnz·b < d`` else ``d + nnz·v``, per row (``b = ⌈log₂ d⌉``)."""
        return encoding.sparse_bits(row_counts(C), C.shape[1], self.value_bits)

    def price_rows(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = row_counts(C)
        return encoding.sparse_bits(counts, C.shape[1], self.value_bits), counts

    def price(self, c: np.ndarray) -> tuple[int, int]:
        count = int(np.count_nonzero(c))
        return encoding.sparse_bits(count, c.shape[0], self.value_bits), count

    def encode(self, c: np.ndarray) -> Encoded:
        return encoding.encode_sparse(_row(c), self.value_bits)

    def decode(self, message: Encoded) -> np.ndarray:
        return encoding.decode_sparse(message, self.value_bits)


class Identity(Compressor):
    """No compression: ``C(x) = x``; ``δ = 1``, ``ω = 0``; dense message of ``d·v`` bits."""

    name = "identity"
    guarantee = "contractive"
    sparsifier = True
    idempotent = True
    scale_equivariant = True
    constant_formula = "δ = 1 (ω = 0)"

    def __init__(self, *, value_bits: int = 32) -> None:
        self.value_bits = encoding.check_value_bits(value_bits)

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        return X.copy()

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        return np.full(C.shape[0], encoding.dense_bits(C.shape[1], self.value_bits))

    def price(self, c: np.ndarray) -> tuple[int, int]:
        return encoding.dense_bits(c.shape[0], self.value_bits), int(np.count_nonzero(c))

    def encode(self, c: np.ndarray) -> Encoded:
        return encoding.encode_dense(_row(c), self.value_bits)

    def decode(self, message: Encoded) -> np.ndarray:
        return encoding.decode_dense(message, self.value_bits)

    def delta(self, d: int) -> float:
        return 1.0

    def omega(self, d: int) -> float:
        return 0.0


class TopK(_SparseCoded):
    """Keep the ``k`` entries of largest ``|x_i|`` (ties: lowest index); ``δ = k/d``.

    Parameters
    ----------
    k : int, optional
        Entries kept, ``1 ≤ k ≤ d`` (checked against ``d`` at compress time).
    ratio : float, optional
        Instead of ``k``: ``k = max(1, ⌊ratio·d⌋)``, ``ratio ∈ (0, 1]``.
    value_bits : {32, 64}

    Notes
    -----
    ``‖C(x) − x‖² = Σ_{dropped} x_i² ≤ (1 − k/d)‖x‖²`` since the ``d − k`` dropped
    squares are the smallest.
    """

    name = "top-k"
    guarantee = "contractive"
    sparsifier = True
    idempotent = True
    scale_equivariant = True
    constant_formula = "δ = k/d"

    def __init__(
        self, k: int | None = None, *, ratio: float | None = None, value_bits: int = 32
    ) -> None:
        self.k, self.ratio = _check_count_or_ratio(k, ratio)
        self.value_bits = encoding.check_value_bits(value_bits)

    def k_for(self, d: int) -> int:
        """The number of kept entries for dimension ``d``."""
        return _resolve_count(self.k, self.ratio, d)

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        return keep(X, _top_k_mask(np.abs(X), self.k_for(X.shape[1])))

    def delta(self, d: int) -> float:
        return self.k_for(d) / d

    def dim_range(self) -> tuple[int, int | None]:
        return (self.k or 1), None

    def params(self) -> dict[str, Any]:
        count = {"k": self.k} if self.k is not None else {"ratio": self.ratio}
        return {**count, "value_bits": self.value_bits}


class RandK(_SparseCoded):
    """Keep ``k`` coordinates chosen uniformly without replacement, per row.

    Unscaled: ``E‖C(x) − x‖² = (1 − k/d)‖x‖²`` (contractive in expectation, ``δ = k/d``).
    Scaled by ``d/k``: ``E C(x) = x`` and ``E‖C(x) − x‖² = (d/k − 1)‖x‖²`` (``ω = d/k − 1``).

    Parameters
    ----------
    k, ratio : as in :class:`TopK`
    scaled : bool
        Multiply the kept entries by ``d/k`` (unbiased class).
    value_bits : {32, 64}

    Notes
    -----
    The ``k`` kept coordinates of a row are the ``k`` smallest of ``d`` uniforms
    ``rng.random(d)``; a batch draws ``rng.random((M, d))``, the same stream.
    """

    name = "rand-k"
    randomized = True
    scale_equivariant = True

    def __init__(
        self,
        k: int | None = None,
        *,
        ratio: float | None = None,
        scaled: bool = False,
        value_bits: int = 32,
    ) -> None:
        self.k, self.ratio = _check_count_or_ratio(k, ratio)
        if not isinstance(scaled, (bool, np.bool_)):
            raise InputError("scaled", scaled, "True or False")
        self.scaled = bool(scaled)
        self.value_bits = encoding.check_value_bits(value_bits)
        self.guarantee = "unbiased" if self.scaled else "contractive"
        self.in_expectation = not self.scaled
        self.sparsifier = not self.scaled
        self.constant_formula = "ω = d/k − 1" if self.scaled else "δ = k/d (in expectation)"

    def k_for(self, d: int) -> int:
        """The number of kept entries for dimension ``d``."""
        return _resolve_count(self.k, self.ratio, d)

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        M, d = X.shape
        k = self.k_for(d)
        chosen = np.argpartition(rng.random((M, d)), k - 1, axis=1)[:, :k]
        mask = np.zeros((M, d), dtype=bool)
        np.put_along_axis(mask, chosen, True, axis=1)
        values = X * X.dtype.type(d / k) if self.scaled else X
        return keep(values, mask)

    def delta(self, d: int) -> float:
        if self.scaled:
            return super().delta(d)
        return self.k_for(d) / d

    def omega(self, d: int) -> float:
        if not self.scaled:
            return super().omega(d)
        return d / self.k_for(d) - 1.0

    def dim_range(self) -> tuple[int, int | None]:
        return (self.k or 1), None

    def params(self) -> dict[str, Any]:
        count = {"k": self.k} if self.k is not None else {"ratio": self.ratio}
        return {**count, "scaled": self.scaled, "value_bits": self.value_bits}


class Threshold(_SparseCoded):
    """Keep ``x_i`` iff ``|x_i| > τ_i`` (strict): the GD-SEC sparsifier.

    Absolute class: ``|C(x)_i − x_i| ≤ τ_i`` (a dropped entry has ``|x_i| ≤ τ_i``) and
    ``‖C(x) − x‖ ≤ ‖x‖`` (the error is a sub-vector of ``x``).

    Parameters
    ----------
    tau : float or array of shape (d,)
        Thresholds, all ``≥ 0`` (``+inf`` drops the coordinate). Construction costs one
        pass over ``tau`` (GD-SEC builds a new one every round).
    value_bits : {32, 64}
    """

    name = "threshold"
    guarantee = "absolute"
    sparsifier = True
    idempotent = True
    constant_formula = "|C(x)_i − x_i| ≤ τ_i, ‖C(x) − x‖ ≤ ‖x‖"

    def __init__(self, tau: float | np.ndarray, *, value_bits: int = 32) -> None:
        allowed = "a real number >= 0 or a 1-D array of reals >= 0"
        try:
            values = np.asarray(tau, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError("tau", tau, allowed) from None
        if values.ndim > 1 or not np.all(values >= 0):
            shown = float(values) if values.ndim == 0 else f"array of shape {values.shape}"
            raise InputError("tau", shown, allowed)
        self._tau = values
        self.value_bits = encoding.check_value_bits(value_bits)

    def _tau_for(self, d: int) -> np.ndarray:
        if self._tau.ndim == 1 and self._tau.shape[0] != d:
            raise InputError(
                "tau",
                f"array of length {self._tau.shape[0]}",
                f"a real number >= 0 or an array of length d={d}",
            )
        return self._tau

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        return keep(X, np.abs(X) > self._tau_for(X.shape[1]))

    def tau(self, d: int) -> np.ndarray:
        return np.broadcast_to(self._tau_for(d), (d,)).copy()

    def dim_range(self) -> tuple[int, int | None]:
        if self._tau.ndim == 1:
            return self._tau.shape[0], self._tau.shape[0]
        return 1, None

    def params(self) -> dict[str, Any]:
        if self._tau.ndim == 0:
            shown: Any = float(self._tau)
        else:
            top = float(self._tau.max()) if self._tau.size else 0.0
            shown = f"array(d={self._tau.shape[0]}, max={top:g})"
        return {"tau": shown, "value_bits": self.value_bits}


class LayerTopK(Compressor):
    """Top-``k_l`` inside each contiguous block (layer) ``l`` (LAGS); ``δ = min_l k_l/d_l``.

    Parameters
    ----------
    layer_sizes : sequence of int
        Sizes ``d_l ≥ 1`` of the contiguous blocks; ``Σ_l d_l`` must equal ``d``.
    k : sequence of int, optional
        Entries kept per layer, ``1 ≤ k_l ≤ d_l``.
    ratio : float, optional
        Instead of ``k``: ``k_l = max(1, ⌊ratio·d_l⌋)`` for every layer, ``ratio ∈ (0, 1]``.
    value_bits : {32, 64}

    Notes
    -----
    ``‖C(x) − x‖² = Σ_l ‖x_l − TopK_l(x_l)‖² ≤ Σ_l (1 − k_l/d_l)‖x_l‖² ≤ (1 − min_l k_l/d_l)‖x‖²``.
    Each layer is its own sparse message with its own ``d_l``; the message of a row joins
    them and records each layer's bit length in :attr:`Encoded.parts`.
    """

    name = "layer-top-k"
    guarantee = "contractive"
    sparsifier = True
    idempotent = True
    scale_equivariant = True
    constant_formula = "δ = min_l k_l/d_l"

    def __init__(
        self,
        layer_sizes: Sequence[int],
        k: Sequence[int] | None = None,
        *,
        ratio: float | None = None,
        value_bits: int = 32,
    ) -> None:
        sizes_allowed = "a non-empty sequence of integers >= 1"
        try:
            sizes = tuple(layer_sizes)
        except TypeError:
            raise InputError("layer_sizes", layer_sizes, sizes_allowed) from None
        if not sizes:
            raise InputError("layer_sizes", layer_sizes, sizes_allowed)
        self.layer_sizes = tuple(check_int("layer_sizes", s, 1) for s in sizes)
        if (k is None) == (ratio is None):
            raise InputError(
                "k", k, "exactly one of k (one integer per layer) or ratio (a real in (0, 1])"
            )
        if ratio is not None:
            self.ratio: float | None = check_real("ratio", ratio, 0.0, 1.0, low_open=True)
            self.k = tuple(_resolve_count(None, self.ratio, s) for s in self.layer_sizes)
        else:
            self.ratio = None
            counts = tuple(np.atleast_1d(np.asarray(k, dtype=object)).tolist())
            if len(counts) != len(self.layer_sizes):
                raise InputError(
                    "k", k, f"one integer per layer ({len(self.layer_sizes)} layers)"
                )
            self.k = tuple(
                check_int("k", kl, 1, dl) for kl, dl in zip(counts, self.layer_sizes, strict=True)
            )
        self.value_bits = encoding.check_value_bits(value_bits)
        self._bounds = np.concatenate([[0], np.cumsum(self.layer_sizes)]).tolist()

    @property
    def d(self) -> int:
        """The dimension ``Σ_l d_l``."""
        return self._bounds[-1]

    def _check_d(self, d: int) -> None:
        if d != self.d:
            raise InputError(
                "layer_sizes", self.layer_sizes, f"positive integers summing to d={d}"
            )

    def _layers(self) -> zip:
        return zip(self._bounds[:-1], self._bounds[1:], self.k, strict=True)

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        self._check_d(X.shape[1])
        mask = np.empty(X.shape, dtype=bool)
        magnitude = np.abs(X)
        for start, stop, k in self._layers():
            mask[:, start:stop] = _top_k_mask(magnitude[:, start:stop], k)
        return keep(X, mask)

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        """``Σ_l`` sparse bits of layer ``l`` with its own dimension ``d_l``."""
        self._check_d(C.shape[1])
        total = np.zeros(C.shape[0], dtype=np.int64)
        for start, stop, _ in self._layers():
            nnz = np.count_nonzero(C[:, start:stop], axis=1)
            total += encoding.sparse_bits(nnz, stop - start, self.value_bits)
        return total

    def encode(self, c: np.ndarray) -> Encoded:
        row = _row(c)
        self._check_d(row.shape[0])
        return encoding.join(
            [
                encoding.encode_sparse(row[start:stop], self.value_bits)
                for start, stop, _ in self._layers()
            ]
        )

    def decode(self, message: Encoded) -> np.ndarray:
        parts = encoding.split(message, self.layer_sizes)
        return np.concatenate([encoding.decode_sparse(p, self.value_bits) for p in parts])

    def delta(self, d: int) -> float:
        self._check_d(d)
        return min(k / s for k, s in zip(self.k, self.layer_sizes, strict=True))

    def dim_range(self) -> tuple[int, int | None]:
        return self.d, self.d

    def params(self) -> dict[str, Any]:
        count = {"k": list(self.k)} if self.ratio is None else {"ratio": self.ratio}
        return {"layer_sizes": list(self.layer_sizes), **count, "value_bits": self.value_bits}


class PartitionTopK(Compressor):
    """Top-``k_l`` inside each group ``l`` of a partition of the coordinates.

    :class:`~convcheck.compressors.LayerTopK` on the coordinates reordered group by group
    (groups need not be contiguous). ``‖C(x) − x‖² ≤ (1 − min_l k_l/d_l)‖x‖²``; each group is
    its own sparse message, indices relative to the group.

    Parameters
    ----------
    groups : sequence of int arrays
        A partition of ``{0, …, d−1}``; each group non-empty, in the order given.
    ratio : float
        ``k_l = max(1, ⌊ratio·d_l⌋)``, ``ratio ∈ (0, 1]``.
    value_bits : {32, 64}
    """

    name = "partition-top-k"
    guarantee = "contractive"
    sparsifier = True
    idempotent = True
    scale_equivariant = True
    constant_formula = "δ = min_l k_l/d_l"

    def __init__(self, groups: Sequence[np.ndarray], ratio: float, *, value_bits: int = 32) -> None:
        self.groups = tuple(np.asarray(g, dtype=np.int64) for g in groups)
        self.order = np.concatenate(self.groups)
        self.inverse = np.argsort(self.order, kind="stable")
        self.layers = LayerTopK([g.size for g in self.groups], ratio=ratio, value_bits=value_bits)
        self.value_bits = self.layers.value_bits
        self.contiguous = bool(np.array_equal(self.order, np.arange(self.order.size)))

    @property
    def d(self) -> int:
        return self.order.size

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if self.contiguous:
            return self.layers.compress_rows(X, None)
        return self.layers.compress_rows(X[:, self.order], None)[:, self.inverse]

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        return self.layers.bits_rows(C if self.contiguous else C[:, self.order])

    def encode(self, c: np.ndarray) -> Encoded:
        row = np.asarray(c)
        return self.layers.encode(row if self.contiguous or row.ndim != 1 else row[self.order])

    def decode(self, message: Encoded) -> np.ndarray:
        row = self.layers.decode(message)
        return row if self.contiguous else row[self.inverse]

    def delta(self, d: int) -> float:
        return self.layers.delta(d)

    def dim_range(self) -> tuple[int, int | None]:
        return self.d, self.d

    def params(self) -> dict[str, Any]:
        return {
            "layer_sizes": [g.size for g in self.groups],
            "contiguous": self.contiguous,
            "ratio": self.layers.ratio,
            "value_bits": self.value_bits,
        }


class ScaledSign(Compressor):
    """Scaled sign: ``C(x) = (‖x‖₁/d)·sign(x)`` with ``sign(0) := +1``.

    Exact error identity (any choice of ``sign(0)``, since ``sign(x_i)x_i = |x_i|``):
    ``‖C(x) − x‖² = d·s² − 2s‖x‖₁ + ‖x‖² = ‖x‖² − ‖x‖₁²/d`` with ``s = ‖x‖₁/d``, so
    ``δ(x) = ‖x‖₁²/(d‖x‖²) ≥ 1/d`` (declared ``δ = 1/d``, the worst case).
    Message: ``d`` sign bits then the scale ``s`` (``d + v`` bits).

    Notes
    -----
    When all ``|x_i|`` are equal the scale is that value exactly (not a rounded sum),
    which makes ``C`` exactly idempotent.
    """

    name = "sign"
    guarantee = "contractive"
    idempotent = True
    scale_equivariant = True
    constant_formula = "δ = 1/d (worst case); δ(x) = ‖x‖₁²/(d‖x‖²)"

    def __init__(self, *, value_bits: int = 32) -> None:
        self.value_bits = encoding.check_value_bits(value_bits)

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        a = np.abs(X).astype(np.float64, copy=False)
        top = a.max(axis=1, keepdims=True)
        mean = a.sum(axis=1, keepdims=True) / X.shape[1]
        scale = np.where(top == a.min(axis=1, keepdims=True), top, mean)
        return np.where(X < 0, -scale, scale).astype(X.dtype)

    def delta_of(self, x: np.ndarray) -> float | np.ndarray:
        """``δ(x) = ‖x‖₁²/(d‖x‖²)`` per row (1 for a zero row, where any δ holds)."""
        rows, was_vector = as_rows(x)
        x64 = rows.astype(np.float64)
        sq = np.square(x64).sum(axis=1)
        l1 = np.abs(x64).sum(axis=1)
        out = np.where(sq > 0, np.square(l1) / (rows.shape[1] * np.where(sq > 0, sq, 1.0)), 1.0)
        return float(out[0]) if was_vector else out

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        return np.full(C.shape[0], C.shape[1] + self.value_bits, dtype=np.int64)

    def encode(self, c: np.ndarray) -> Encoded:
        row = _row(c).astype(np.float64)
        scale = abs(row[0])
        if not np.all(np.abs(row) == scale):
            raise InputError("c", "entries of different magnitudes", "an output of sign.compress")
        signs = (row < 0).astype(np.uint8)
        return encoding.pack(
            np.concatenate([signs, encoding.float_to_bits(np.array([scale]), self.value_bits)]),
            row.shape[0],
        )

    def decode(self, message: Encoded) -> np.ndarray:
        d = message.d
        if message.nbits != d + self.value_bits:
            raise InputError("nbits", message.nbits, f"d + value_bits = {d + self.value_bits}")
        bits = encoding.unpack(message)
        scale = encoding.bits_to_float(bits[d:], self.value_bits)[0]
        return np.where(bits[:d] == 1, -scale, scale)

    def delta(self, d: int) -> float:
        return 1.0 / check_int("d", d, 1)


class QSGD(Compressor):
    """QSGD stochastic rounding to ``s`` levels (unbiased, ``ω = min(d/s², √d/s)``).

    For ``x ≠ 0`` with step ``q ≥ ‖x‖/s``: ``r_i = |x_i|/q ∈ [0, s]``, level
    ``ℓ_i = ⌊r_i⌋ + [u_i < r_i − ⌊r_i⌋]`` with ``u_i`` uniform (so ``E ℓ_i = r_i``), and
    ``C(x)_i = sign(x_i)·ℓ_i·q``, hence ``E C(x) = x``; ``C(0) = 0``.

    Parameters
    ----------
    s : int
        Number of levels, ``1 ≤ s ≤ 65535``.
    value_bits : {32, 64}

    Notes
    -----
    The step is the least number ``q ≥ ‖x‖/s`` with ``P = p − L`` significant bits, where
    ``L = ⌈log₂(s+1)⌉`` and ``p`` is the precision of the narrower of the wire format and
    the array (24 for float32, 53 for float64). Then every ``ℓ_i·q`` is exact at that
    precision, the output is exactly decodable from (step, levels), and unbiasedness is
    exact. Rounding up inflates ``q`` by a factor ``1 + ε ≤ 1 + 2^{1−P}``; the variance
    ``(q²)Σ_i p_i(1 − p_i) ≤ min((1+ε)² d/(4s²), (1+ε)√d/s − ‖x‖₁²/(d‖x‖²))·‖x‖²`` stays
    below ``ω‖x‖²`` whenever ``ε√d ≤ s`` (e.g. any ``d ≤ 10^13`` for ``s = 1``).

    Fixed-length code (not the Elias code of the QSGD paper): the step ``q`` in
    ``value_bits``, then per coordinate a sign bit and the level in ``L`` bits:
    ``v + d·(1 + ⌈log₂(s+1)⌉)`` bits for every row, including the zero row.
    """

    name = "qsgd"
    guarantee = "unbiased"
    randomized = True
    scale_equivariant = True
    constant_formula = "ω = min(d/s², √d/s)"

    def __init__(self, s: int, *, value_bits: int = 32) -> None:
        self.s = check_int("s", s, 1, 65535)
        self.value_bits = encoding.check_value_bits(value_bits)
        self.level_bits = self.s.bit_length()

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        x64 = X.astype(np.float64, copy=False)
        a = np.abs(x64)
        top = a.max(axis=1, keepdims=True)
        safe = np.where(top > 0, top, 1.0)
        norm = top * np.sqrt(np.square(a / safe).sum(axis=1, keepdims=True))  # ≥ max|x_i|
        precision = min(24 if self.value_bits == 32 else 53, 24 if X.dtype == np.float32 else 53)
        bits = precision - self.level_bits
        step = _round_up(norm / self.s, bits)
        # step·s is exact when step = fl(norm/s) already had <= bits significant bits: then a
        # step below norm/s is detected exactly and moved one grid point up (step·s >= norm).
        step = np.where(step * self.s < norm, _round_up(np.nextafter(step, np.inf), bits), step)
        step = np.where(norm > 0, step, 0.0)
        r = a / np.where(step > 0, step, 1.0)
        floor = np.floor(r)
        level = floor + (rng.random(X.shape) < r - floor)
        return np.copysign(level * step, x64).astype(X.dtype)

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        return np.full(
            C.shape[0], self.value_bits + C.shape[1] * (1 + self.level_bits), dtype=np.int64
        )

    def _step_and_levels(self, a: np.ndarray) -> tuple[float, np.ndarray]:
        """Write ``a = ℓ·q`` exactly with integer ``0 ≤ ℓ ≤ s``.

        With ``|c_i| = O_i·2^{f_i}`` (``O_i`` odd), ``q' = gcd_i(O_i)·2^{min f_i}`` equals
        ``q·gcd_i(ℓ_i)`` for a compressor output ``|c_i| = ℓ_i q``, so ``ℓ'_i = ℓ_i/gcd ≤ s``.
        """
        levels = np.zeros(a.shape, dtype=np.int64)
        nz = np.flatnonzero(a)
        if nz.size == 0:
            return 0.0, levels
        mantissa, exponent = np.frexp(a[nz])
        ints = np.ldexp(mantissa, 53).astype(np.int64)
        trailing = np.frexp((ints & -ints).astype(np.float64))[1] - 1
        odd = ints >> trailing
        expo = exponent - 53 + trailing
        gcd = int(np.gcd.reduce(odd))
        shift = expo - expo.min()
        invalid = InputError("c", "values not of the form ±ℓ·q", f"an output of qsgd(s={self.s})")
        if shift.max() > self.level_bits:
            raise invalid
        levels[nz] = (odd // gcd) << shift
        step = float(np.ldexp(float(gcd), int(expo.min())))
        if levels.max() > self.s or not np.array_equal(levels[nz] * step, a[nz]):
            raise invalid
        if self.value_bits == 32 and float(np.float32(step)) != step:
            raise invalid
        return step, levels

    def encode(self, c: np.ndarray) -> Encoded:
        row = _row(c).astype(np.float64)
        step, levels = self._step_and_levels(np.abs(row))
        words = ((row < 0).astype(np.int64) << self.level_bits) | levels
        return encoding.pack(
            np.concatenate(
                [
                    encoding.float_to_bits(np.array([step]), self.value_bits),
                    encoding.uint_to_bits(words, 1 + self.level_bits),
                ]
            ),
            row.shape[0],
        )

    def decode(self, message: Encoded) -> np.ndarray:
        d, v, width = message.d, self.value_bits, 1 + self.level_bits
        if message.nbits != v + d * width:
            raise InputError("nbits", message.nbits, f"value_bits + d·{width} = {v + d * width}")
        bits = encoding.unpack(message)
        step = encoding.bits_to_float(bits[:v], v)[0]
        words = encoding.bits_to_uint(bits[v:], width).astype(np.int64)
        levels = (words & ((1 << self.level_bits) - 1)).astype(np.float64)
        return np.where(words >> self.level_bits == 1, -1.0, 1.0) * levels * step

    def omega(self, d: int) -> float:
        d = check_int("d", d, 1)
        return min(d / self.s**2, math.sqrt(d) / self.s)

    def params(self) -> dict[str, Any]:
        return {"s": self.s, "value_bits": self.value_bits}


def _round_up(t: np.ndarray, precision: int) -> np.ndarray:
    """Round positive ``t`` up to ``precision`` significant bits (exactly)."""
    mantissa, exponent = np.frexp(t)
    return np.ldexp(np.ceil(np.ldexp(mantissa, precision)), exponent - precision)


COMPRESSORS: Registry[type[Compressor]] = Registry(
    "convcheck.compressors",
    {cls.name: cls
     for cls in (Identity, TopK, RandK, Threshold, LayerTopK, PartitionTopK, ScaledSign, QSGD)},
    lambda obj: "" if isinstance(obj, type) and issubclass(obj, Compressor) and not getattr(
        obj, "__abstractmethods__", None) else "not a concrete Compressor subclass",
    "a concrete subclass of convcheck.compressors.Compressor",
)


def make_compressor(name: str, **params: Any) -> Compressor:
    """Build a registered compressor from its name and parameters.

    Raises
    ------
    InputError
        Naming ``'compressor'`` and listing the names when ``name`` is unknown; naming the
        parameter when it is unknown, missing or out of range.
    """
    if name not in COMPRESSORS:
        raise InputError("compressor", name, "one of " + ", ".join(map(repr, COMPRESSORS))
                         + " (a plug-in's name needs its package installed)")
    cls = COMPRESSORS[name]
    signature = inspect.signature(cls.__init__)
    accepted = [p for p in signature.parameters.values() if p.name != "self"]
    names = ", ".join(p.name for p in accepted)
    for key, value in params.items():
        if key not in signature.parameters or key == "self":
            raise InputError(key, value, f"a parameter of compressor {name!r}: one of {names}")
    for p in accepted:
        if p.default is inspect.Parameter.empty and p.name not in params:
            raise InputError(p.name, None, f"a value (required by compressor {name!r})")
    return cls(**params)
