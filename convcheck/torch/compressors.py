"""Compressors on tensors: the same operators and bit counts as :mod:`convcheck.compressors`.

Each torch compressor wraps the numpy compressor of the same name (its *spec*): parameters are
validated there, and the constants (``δ``, ``ω``, ``τ``), ``params`` and ``describe`` come from
it, so the two backends cannot disagree on what a compressor is. Only the kernel (``compress``)
is written again on tensors, and bits are counted with the formulas of :mod:`convcheck.encoding`
(``sparse_bits``, ``dense_bits``) from the nonzero counts of the output.

Rows of an ``(M, d)`` tensor are compressed independently; a vector ``(d,)`` is one row; any
other tensor (a parameter) is compressed flattened by :meth:`TorchCompressor.compress_flat`.

The kernels are also offered as pure functions (:func:`top_k_mask`, :func:`top_k`,
:func:`rand_k_mask`, :func:`apply_mask`, :func:`threshold`, :func:`layer_top_k`,
:func:`scaled_sign`, :func:`sparse_bits_rows`, :func:`layer_sparse_bits_rows`) for code
that handles one layer or one rank at a time (the distributed backend, DDP communication
hooks).

Semantics shared with numpy, exactly:

* top-k keeps the ``k`` largest ``|x_i|``, ties broken by lowest index (``torch.topk`` does not
  promise that, so the mask is built from the ``k``-th largest value and a cumulative count of
  the ties, like ``convcheck.compressors._top_k_mask``);
* threshold keeps ``|x_i| > τ_i`` compared as real numbers (``τ`` is rounded down to the
  tensor's precision, which leaves the comparison exact, see :func:`threshold`);
* rand-k keeps the ``k`` smallest of ``d`` uniforms per row; the draws come from a
  :class:`torch.Generator`, whose stream differs from numpy's, so the two backends agree given
  the same mask (:meth:`RandK.apply`), not given the same seed;
* scaled sign is computed in float64 like numpy's; its scale ``‖x‖₁/d`` may differ from
  numpy's in the last bits because the two libraries sum in different orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from convcheck import compressors as reference
from convcheck import encoding
from convcheck.errors import InputError

Tensor = torch.Tensor

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# ------------------------------------------------------------------------------- kernels


def top_k_mask(magnitude: Tensor, k: int) -> Tensor:
    """Mask of the ``k`` largest entries of each row of ``magnitude`` (ties: lowest index).

    ``t`` = the ``k``-th largest value of the row (``torch.topk``). When every row has exactly
    ``k`` entries ``≥ t``, those are the ``k`` entries ``torch.topk`` returned (the common
    case, one extra comparison pass). Otherwise: keep every entry ``> t``, then the first
    ``k − #{a > t}`` entries equal to ``t`` in index order (a cumulative count of the ties), as
    ``convcheck.compressors._top_k_mask`` does.

    Parameters
    ----------
    magnitude : Tensor, shape (M, d)
        Usually ``|x|``; finite.
    k : int
        ``1 ≤ k``; ``k ≥ d`` keeps everything.
    """
    d = magnitude.shape[1]
    if k >= d:
        return torch.ones_like(magnitude, dtype=torch.bool)
    values, indices = torch.topk(magnitude, k, dim=1, sorted=False)
    t = values.amin(dim=1, keepdim=True)
    at_least = magnitude >= t
    if bool((at_least.sum(dim=1) == k).all()):
        return torch.zeros_like(at_least).scatter_(1, indices, True)
    keep = magnitude > t
    tied = at_least & ~keep
    need = k - keep.sum(dim=1, keepdim=True)
    return keep | (tied & (torch.cumsum(tied, dim=1) <= need))


def apply_mask(x: Tensor, mask: Tensor, scale: float | None = None) -> Tensor:
    """``x_i`` (times ``scale`` in ``x``'s dtype, if given) where ``mask``, else 0."""
    values = x if scale is None else x * torch.tensor(scale, dtype=x.dtype, device=x.device)
    return torch.where(mask, values, torch.zeros((), dtype=x.dtype, device=x.device))


def top_k(x: Tensor, k: int) -> Tensor:
    """Top-``k`` of each row of ``x`` ``(M, d)`` by magnitude (ties: lowest index)."""
    return apply_mask(x, top_k_mask(x.abs(), k))


def rand_k_mask(
    rows: int, d: int, k: int, generator: torch.Generator, device: torch.device | str = "cpu"
) -> Tensor:
    """``k`` coordinates per row chosen uniformly without replacement.

    The ``k`` smallest of ``d`` float64 uniforms per row (one ``torch.rand((rows, d))`` draw,
    so a batch consumes the generator as its rows would one after another). The generator
    must live on ``device``.
    """
    uniforms = torch.rand((rows, d), generator=generator, dtype=torch.float64, device=device)
    mask = torch.zeros((rows, d), dtype=torch.bool, device=device)
    if k >= d:
        return mask.fill_(True)
    chosen = torch.topk(uniforms, k, dim=1, largest=False, sorted=False).indices
    return mask.scatter_(1, chosen, True)


def round_down_to(tau: Tensor, dtype: torch.dtype) -> Tensor:
    """The largest value of ``dtype`` that is ``≤ tau`` (float64 ``tau``), elementwise.

    For ``x`` of that dtype, ``|x| > tau ⟺ |x| > round_down_to(tau)``: if ``tau`` is not
    representable, the next value of the dtype above ``round_down_to(tau)`` is already
    ``> tau``.
    """
    rounded = tau.to(dtype)
    too_big = rounded.to(torch.float64) > tau
    below = torch.nextafter(rounded, torch.full_like(rounded, -np.inf))
    return torch.where(too_big, below, rounded)


def threshold(x: Tensor, tau: Tensor | float) -> Tensor:
    """Keep ``x_i`` iff ``|x_i| > τ_i`` (exact comparison as real numbers).

    ``tau`` is a float64 scalar or a ``(d,)`` tensor (``+inf`` drops the coordinate).
    """
    tau64 = torch.as_tensor(tau, dtype=torch.float64, device=x.device)
    bound = tau64 if x.dtype == torch.float64 else round_down_to(tau64, x.dtype)
    return apply_mask(x, x.abs() > bound)


def layer_top_k(x: Tensor, layer_sizes: Sequence[int], counts: Sequence[int]) -> Tensor:
    """Top-``k_l`` inside each contiguous block ``l`` of the rows of ``x`` ``(M, Σ d_l)``."""
    mask = torch.empty(x.shape, dtype=torch.bool, device=x.device)
    magnitude = x.abs()
    start = 0
    for size, k in zip(layer_sizes, counts, strict=True):
        mask[:, start : start + size] = top_k_mask(magnitude[:, start : start + size], k)
        start += size
    return apply_mask(x, mask)


def scaled_sign(x: Tensor) -> Tensor:
    """``(‖x‖₁/d)·sign(x)`` per row with ``sign(0) = +1``; the scale is computed in float64.

    When all ``|x_i|`` of a row are equal the scale is that value exactly (as in numpy), which
    makes the operator idempotent.
    """
    a = x.abs().to(torch.float64)
    top = a.amax(dim=1, keepdim=True)
    mean = a.sum(dim=1, keepdim=True) / x.shape[1]
    scale = torch.where(top == a.amin(dim=1, keepdim=True), top, mean)
    return torch.where(x < 0, -scale, scale).to(x.dtype)


def sparse_bits_rows(c: Tensor, value_bits: int = 32) -> np.ndarray:
    """Bits of each row of ``c`` ``(M, d)`` as a sparse message (``encoding.sparse_bits``)."""
    nnz = torch.count_nonzero(c, dim=1).cpu().numpy()
    return np.asarray(encoding.sparse_bits(nnz, c.shape[1], value_bits), dtype=np.int64)


def layer_sparse_bits_rows(
    c: Tensor, layer_sizes: Sequence[int], value_bits: int = 32
) -> np.ndarray:
    """``Σ_l`` sparse bits of block ``l`` (its own dimension ``d_l``), per row of ``c``."""
    total = np.zeros(c.shape[0], dtype=np.int64)
    start = 0
    for size in layer_sizes:
        total += sparse_bits_rows(c[:, start : start + size], value_bits)
        start += size
    return total


# ------------------------------------------------------------------------------- objects


def as_rows(x: Any, field: str = "x") -> tuple[Tensor, bool]:
    """Validate a float tensor of shape ``(d,)`` or ``(M, d)``; ``(rows, was_vector)``."""
    if (
        not isinstance(x, torch.Tensor)
        or x.dtype not in _FLOAT_DTYPES
        or x.ndim not in (1, 2)
        or x.shape[-1] == 0
    ):
        shown = (
            f"tensor of dtype {x.dtype} and shape {tuple(x.shape)}"
            if isinstance(x, torch.Tensor)
            else type(x).__name__
        )
        raise InputError(field, shown, "a float tensor of shape (d,) or (M, d) with d >= 1")
    return (x.reshape(1, -1), True) if x.ndim == 1 else (x, False)


class TorchCompressor:
    """A compressor on tensors with the semantics, constants and bits of its numpy ``spec``.

    Attributes
    ----------
    spec : convcheck.compressors.Compressor
        The numpy compressor this one implements.
    """

    spec: reference.Compressor

    def __init__(self, spec: reference.Compressor) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def randomized(self) -> bool:
        return self.spec.randomized

    @property
    def value_bits(self) -> int:
        return self.spec.value_bits

    def compress(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Compress a vector ``(d,)`` or each row of ``(M, d)``; same shape and dtype.

        Randomized compressors need ``generator`` (a batch consumes it as its rows would,
        one after another); the others ignore it.
        """
        rows, was_vector = as_rows(x)
        if self.randomized and not isinstance(generator, torch.Generator):
            raise InputError("generator", generator, "a torch.Generator")
        low, high = self.spec.dim_range()
        d = rows.shape[1]
        if d < low or (high is not None and d > high):
            raise InputError("x", f"dimension d={d}", f"d in [{low}, {high}] for {self.spec!r}")
        out = self.compress_rows(rows, generator if self.randomized else None)
        return out[0] if was_vector else out

    def compress_flat(self, p: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Compress a tensor of any shape (a parameter) as one flattened row."""
        return self.compress(p.reshape(-1), generator).reshape(p.shape)

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    def bits(self, c: Tensor) -> int | np.ndarray:
        """Exact bits of the encoding of compressed rows (as ``spec.bits``).

        ``int`` for one row ``(d,)``, int64 array ``(M,)`` for ``(M, d)``.
        """
        rows, was_vector = as_rows(c, "c")
        out = self.bits_rows(rows)
        return int(out[0]) if was_vector else out

    def bits_rows(self, C: Tensor) -> np.ndarray:
        """Sparse message of the nonzeros (index list or bitmap), per row."""
        return sparse_bits_rows(C, self.value_bits)

    def delta(self, d: int) -> float:
        return self.spec.delta(d)

    def omega(self, d: int) -> float:
        return self.spec.omega(d)

    def params(self) -> dict[str, Any]:
        return self.spec.params()

    def describe(self) -> dict[str, Any]:
        return {**self.spec.describe(), "backend": "torch"}

    def __repr__(self) -> str:
        return f"torch:{self.spec!r}"


class Identity(TorchCompressor):
    """``C(x) = x``; a dense message of ``d·v`` bits."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        return X.clone()

    def bits_rows(self, C: Tensor) -> np.ndarray:
        return np.full(C.shape[0], encoding.dense_bits(C.shape[1], self.value_bits), np.int64)


class TopK(TorchCompressor):
    """Top-``k`` by magnitude, ties broken by lowest index."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        return top_k(X, self.spec.k_for(X.shape[1]))


class RandK(TorchCompressor):
    """Rand-``k`` (scaled by ``d/k`` when ``spec.scaled``)."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        M, d = X.shape
        k = self.spec.k_for(d)
        return self.apply(X, rand_k_mask(M, d, k, generator, X.device))

    def apply(self, X: Tensor, mask: Tensor) -> Tensor:
        """The output for given kept coordinates ``mask`` (``k`` per row)."""
        d = X.shape[1]
        scale = d / self.spec.k_for(d) if self.spec.scaled else None
        return apply_mask(X, mask, scale)


class Threshold(TorchCompressor):
    """Keep ``|x_i| > τ_i``; ``τ`` as in the spec (scalar or ``(d,)``)."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        return threshold(X, torch.as_tensor(self.spec.tau(X.shape[1]), device=X.device))


class LayerTopK(TorchCompressor):
    """Top-``k_l`` inside each contiguous layer block; bits summed over layers."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        return layer_top_k(X, self.spec.layer_sizes, self.spec.k)

    def bits_rows(self, C: Tensor) -> np.ndarray:
        return layer_sparse_bits_rows(C, self.spec.layer_sizes, self.value_bits)


class PartitionTopK(TorchCompressor):
    """Top-``k_l`` inside each group of a partition of the coordinates (DGS's layers)."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        layers = self.spec.layers
        if self.spec.contiguous:
            return layer_top_k(X, layers.layer_sizes, layers.k)
        order = torch.as_tensor(self.spec.order, device=X.device)
        inverse = torch.as_tensor(self.spec.inverse, device=X.device)
        return layer_top_k(X[:, order], layers.layer_sizes, layers.k)[:, inverse]

    def bits_rows(self, C: Tensor) -> np.ndarray:
        rows = C if self.spec.contiguous else C[:, torch.as_tensor(self.spec.order,
                                                                   device=C.device)]
        return layer_sparse_bits_rows(rows, self.spec.layers.layer_sizes, self.value_bits)


class NumpyKernel(TorchCompressor):
    """Any compressor without a torch kernel (e.g. a plug-in's): its numpy kernel on a CPU copy
    of the rows, the result moved back (exact, but a round trip to the host per call).
    Randomized ones draw their numpy generator from the torch generator (one 63-bit draw)."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        rng = None
        if generator is not None:
            seed = torch.randint(0, 2**63 - 1, (1,), generator=generator,
                                 device=generator.device)
            rng = np.random.default_rng(int(seed))
        rows = X.detach().cpu().numpy()
        if rows.dtype not in (np.float32, np.float64):
            rows = rows.astype(np.float32)
        out = self.spec.compress_rows(rows, rng)
        return torch.as_tensor(out, device=X.device).to(X.dtype)

    def bits_rows(self, C: Tensor) -> np.ndarray:
        rows = C.detach().cpu().numpy()
        if rows.dtype not in (np.float32, np.float64):
            rows = rows.astype(np.float32)
        return np.asarray(self.spec.bits_rows(rows), dtype=np.int64)


class ScaledSign(TorchCompressor):
    """``(‖x‖₁/d)·sign(x)``; ``d`` sign bits plus the scale (``d + v`` bits)."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        return scaled_sign(X)

    def bits_rows(self, C: Tensor) -> np.ndarray:
        return np.full(C.shape[0], C.shape[1] + self.value_bits, dtype=np.int64)


_KERNELS: dict[type[reference.Compressor], type[TorchCompressor]] = {
    reference.Identity: Identity,
    reference.TopK: TopK,
    reference.RandK: RandK,
    reference.Threshold: Threshold,
    reference.LayerTopK: LayerTopK,
    reference.PartitionTopK: PartitionTopK,
    reference.ScaledSign: ScaledSign,
}

#: Names of the compressors with a native torch kernel (the others run :class:`NumpyKernel`).
TORCH_COMPRESSORS = tuple(cls.name for cls in _KERNELS)


def to_torch(spec: reference.Compressor | TorchCompressor) -> TorchCompressor:
    """The torch compressor implementing the numpy compressor ``spec`` (unchanged if torch).

    A subclass of a built-in compressor that keeps its kernel (``compress_rows`` and
    ``bits_rows`` not overridden) gets the built-in torch kernel; any other compressor, e.g. a
    plug-in's, runs its numpy kernel on the host (:class:`NumpyKernel`).
    """
    if isinstance(spec, TorchCompressor):
        return spec
    if not isinstance(spec, reference.Compressor):
        raise InputError("compressor", repr(spec), "a convcheck.compressors.Compressor")
    for cls in type(spec).__mro__:
        kernel = _KERNELS.get(cls)
        if kernel is not None:
            same = all(getattr(type(spec), name) is getattr(cls, name)
                       for name in ("compress_rows", "bits_rows"))
            return kernel(spec) if same else NumpyKernel(spec)
    return NumpyKernel(spec)


def make_compressor(name: str, **params: Any) -> TorchCompressor:
    """Build a torch compressor by registry name, with the numpy constructor's parameters."""
    return to_torch(reference.make_compressor(name, **params))

