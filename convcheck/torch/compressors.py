"""Compressors on tensors: the same operators and bit counts as :mod:`convcheck.compressors`.

Each torch compressor wraps the numpy compressor of the same name (its *spec*): parameters are
validated there, and the constants (``δ``, ``ω``, ``τ``), ``params`` and ``describe`` come from
it, so the two backends cannot disagree on what a compressor is. Only the kernel (``compress``)
is written again on tensors, and bits are counted with the formulas of :mod:`convcheck.encoding`
(``sparse_bits``, ``dense_bits``) from the nonzero counts of the output.

Rows of an ``(M, d)`` tensor are compressed independently; a vector ``(d,)`` is one row; any
other tensor (a parameter) is compressed flattened by :meth:`TorchCompressor.compress_flat`.

The kernels are also offered as pure functions (:func:`top_k_mask`, :func:`top_k`,
:func:`layer_top_k_mask`, :func:`layer_top_k`, :func:`rand_k_mask`, :func:`apply_mask`,
:func:`threshold`, :func:`scaled_sign`, :func:`sparse_bits_rows`,
:func:`layer_sparse_bits_rows`) for code that handles one layer or one rank at a time (the
distributed backend, DDP communication hooks) or all layers of a flat vector at once (the
layer-wise functions: one segmented computation, no loop over layers on the device).

No kernel reads a value back to the host: no ``.item()``, no branch on a tensor's value, no
output whose size depends on the data. Bits are counted on the device
(:meth:`TorchCompressor.bits_tensor`, int64 tensors); :meth:`TorchCompressor.bits` is the one
place that reads them back (numpy integers, as the ledger wants them), so code that prices
every step should add up ``bits_tensor`` on the device and read the total once per round or
epoch.

Semantics shared with numpy, exactly:

* top-k keeps the ``k`` largest ``|x_i|``, ties broken by lowest index (``torch.topk`` does not
  promise that, so the mask is built from the exact ``k``-th largest value and a cumulative
  count of the ties, like ``convcheck.compressors._top_k_mask``; the value is selected on the
  float bits by :mod:`convcheck.torch.select`), for float16, bfloat16, float32 and float64,
  ``±0``, subnormals and ``±inf`` included (not NaN);
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
from convcheck.torch.select import (
    KEY_DTYPES,
    device_integers,
    magnitude_keys,
    segment_sums,
    top_k_mask_keys,
    top_k_words,
)

Tensor = torch.Tensor

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# ------------------------------------------------------------------------------- kernels


def top_k_mask(magnitude: Tensor, k: int) -> Tensor:
    """Mask of the ``k`` largest entries of each row of ``magnitude`` (ties: lowest index).

    The ``k``-th largest value ``t`` of each row is selected exactly on the float bits
    (:func:`convcheck.torch.select.top_k_mask_keys`); the mask keeps every entry ``> t``, then
    the first ``k − #{a > t}`` entries equal to ``t`` in index order, as
    ``convcheck.compressors._top_k_mask`` does. Nothing is read back to the host.

    Parameters
    ----------
    magnitude : Tensor, shape (M, d)
        Usually ``|x|``; not NaN (``±0`` both count as 0).
    k : int
        ``1 ≤ k``; ``k ≥ d`` keeps everything.
    """
    return top_k_mask_keys(magnitude_keys(magnitude), (magnitude.shape[1],), (k,))


def layer_top_k_mask(
    magnitude: Tensor, layer_sizes: Sequence[int], counts: Sequence[int]
) -> Tensor:
    """Mask of the top-``k_l`` inside each contiguous block ``l`` of the rows of ``magnitude``
    ``(M, Σ d_l)``; all blocks are selected together (no loop over layers on the device)."""
    return top_k_mask_keys(magnitude_keys(magnitude), layer_sizes, counts)


def apply_mask(x: Tensor, mask: Tensor, scale: float | None = None) -> Tensor:
    """``x_i`` (times ``scale`` in ``x``'s dtype, if given) where ``mask``, else ``+0``.

    The bits of each entry are ANDed with all ones or all zeros, like numpy's
    ``convcheck.compressors.keep`` (kept entries bit-identical, dropped ones ``+0.0``). The
    scale is a CPU scalar operand, so no host-to-device copy.
    """
    values = x if scale is None else x * torch.tensor(scale, dtype=x.dtype)
    word = KEY_DTYPES[x.dtype]
    return (values.view(word) & mask.to(word).neg_()).view(x.dtype)


def top_k(x: Tensor, k: int) -> Tensor:
    """Top-``k`` of each row of ``x`` ``(M, d)`` by magnitude (ties: lowest index)."""
    return layer_top_k(x, (x.shape[1],), (k,))


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

    ``tau`` is a float64 scalar (a number stays a scalar operand, no copy to the device) or a
    ``(d,)`` vector, moved to ``x``'s device if it is elsewhere (``+inf`` drops the coordinate).
    """
    tau64 = torch.as_tensor(tau, dtype=torch.float64)
    if tau64.ndim:
        tau64 = tau64.to(x.device)
    bound = tau64 if x.dtype == torch.float64 else round_down_to(tau64, x.dtype)
    return apply_mask(x, x.abs() > bound)


def layer_top_k(x: Tensor, layer_sizes: Sequence[int], counts: Sequence[int]) -> Tensor:
    """Top-``k_l`` inside each contiguous block ``l`` of the rows of ``x`` ``(M, Σ d_l)``;
    dropped entries are ``+0`` and kept ones bit-identical (as :func:`apply_mask`)."""
    keys = magnitude_keys(x)
    return (x.view(keys.dtype) & top_k_words(keys, layer_sizes, counts)).view(x.dtype)


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


def sparse_bits_of_counts(
    nnz: Tensor, d: int | Tensor, index_bits: int | Tensor, value_bits: int
) -> Tensor:
    """:func:`convcheck.encoding.sparse_bits` on tensors: ``nnz·(b + v)`` if ``nnz·b < d``
    (index list of ``b``-bit indices), else ``d + nnz·v`` (bitmap); int64.

    ``d`` and ``b = index_bits(d)`` are ints, or int64 tensors broadcasting against ``nnz``
    (one per layer).
    """
    nnz = nnz.to(torch.int64)
    return torch.where(nnz * index_bits < d, nnz * (index_bits + value_bits),
                       d + nnz * value_bits)


def sparse_bits_rows(c: Tensor, value_bits: int = 32) -> Tensor:
    """Bits of each row of ``c`` ``(M, d)`` as a sparse message; int64 ``(M,)`` on ``c``'s
    device (nothing read back)."""
    d = c.shape[1]
    return sparse_bits_of_counts(torch.count_nonzero(c, dim=1), d, encoding.index_bits(d),
                                 value_bits)


def layer_sparse_bits_rows(
    c: Tensor, layer_sizes: Sequence[int], value_bits: int = 32
) -> Tensor:
    """``Σ_l`` sparse bits of block ``l`` (its own dimension ``d_l``), per row of ``c``; int64
    ``(M,)`` on ``c``'s device, all blocks counted together (no loop over layers)."""
    sizes = tuple(int(s) for s in layer_sizes)
    nnz = segment_sums(c != 0, sizes)
    d = device_integers(sizes, c.device)
    b = device_integers(tuple(encoding.index_bits(s) for s in sizes), c.device)
    return sparse_bits_of_counts(nnz, d, b, value_bits).sum(1)


def _to_host(bits: Tensor) -> int | np.ndarray:
    """Bits read back to the host: ``int`` from a 0-d tensor, int64 array otherwise (the one
    place where the compressors synchronize)."""
    values = bits.cpu().numpy().astype(np.int64)
    return int(values) if values.ndim == 0 else values


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
        """Exact bits of the encoding of compressed rows (as ``spec.bits``), on the host.

        ``int`` for one row ``(d,)``, int64 array ``(M,)`` for ``(M, d)``. This reads the
        count back from the device (one synchronization): code that prices every step should
        keep :meth:`bits_tensor` on the device and read the sum once per round or epoch.
        """
        return _to_host(self.bits_tensor(c))

    def bits_tensor(self, c: Tensor) -> Tensor:
        """:meth:`bits` as an int64 tensor on ``c``'s device: 0-d for one row ``(d,)``,
        ``(M,)`` for ``(M, d)``; nothing is read back."""
        rows, was_vector = as_rows(c, "c")
        out = self.bits_rows(rows)
        return out[0] if was_vector else out

    def bits_rows(self, C: Tensor) -> Tensor:
        """Sparse message of the nonzeros (index list or bitmap), per row (device int64)."""
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

    def bits_rows(self, C: Tensor) -> Tensor:
        dense = encoding.dense_bits(C.shape[1], self.value_bits)
        return torch.full((C.shape[0],), dense, dtype=torch.int64, device=C.device)


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
    """Keep ``|x_i| > τ_i``; ``τ`` as in the spec (scalar or ``(d,)``).

    A scalar ``τ`` is a scalar operand; a vector travels to each device once (cached).
    """

    def __init__(self, spec: reference.Compressor) -> None:
        super().__init__(spec)
        self._tau_on: dict[tuple[int, torch.device], Tensor] = {}

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        return threshold(X, self._tau(X.shape[1], X.device))

    def _tau(self, d: int, device: torch.device) -> Tensor | float:
        tau = self.spec.params()["tau"]
        if isinstance(tau, float):
            return tau
        key = (d, device)
        if key not in self._tau_on:
            self._tau_on[key] = torch.as_tensor(self.spec.tau(d), device=device)
        return self._tau_on[key]


class LayerTopK(TorchCompressor):
    """Top-``k_l`` inside each contiguous layer block; bits summed over layers."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        return layer_top_k(X, self.spec.layer_sizes, self.spec.k)

    def bits_rows(self, C: Tensor) -> Tensor:
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

    def bits_rows(self, C: Tensor) -> Tensor:
        rows = C.detach().cpu().numpy()
        if rows.dtype not in (np.float32, np.float64):
            rows = rows.astype(np.float32)
        bits = np.asarray(self.spec.bits_rows(rows), dtype=np.int64)
        return torch.as_tensor(bits, device=C.device)


class ScaledSign(TorchCompressor):
    """``(‖x‖₁/d)·sign(x)``; ``d`` sign bits plus the scale (``d + v`` bits)."""

    def compress_rows(self, X: Tensor, generator: torch.Generator | None) -> Tensor:
        return scaled_sign(X)

    def bits_rows(self, C: Tensor) -> Tensor:
        bits = C.shape[1] + self.value_bits
        return torch.full((C.shape[0],), bits, dtype=torch.int64, device=C.device)


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

