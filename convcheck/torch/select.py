"""Exact top-k masks without host synchronization, on integer keys of ``|x|``.

The default, ``"keyed"``, makes every key distinct (``key·2³² + 2³² − 1 − column``: a larger
magnitude wins, then the lower column) so that ``torch.topk``'s indices are the exact mask, ties
included, with no further pass. The ``"radix"`` and ``"sort"`` strategies (and int64 keys, which
cannot be made distinct in 64 bits) find the ``k``-th largest key and compact, as follows.

Non-negative IEEE floats order like their bit patterns read as integers of the same width
(``+0 < subnormals < normals < +inf``), so the ``k``-th largest ``|x_i|`` of a row is the
``k``-th largest *key* ``bits(x_i) & 0x7f…f`` (the sign bit cleared, which also maps ``-0.0``
to ``+0.0``). The key has ``B`` = 15 (float16, bfloat16), 31 (float32) or 63 (float64)
significant bits; :func:`top_k_mask_keys` finds the ``k``-th largest key of every row and
segment in ``P = ⌈B / w⌉`` histogram passes over ``w``-bit digits, most significant first:

* pass ``p`` counts, per (row, segment), the digit ``p`` of the keys whose higher digits equal
  the prefix chosen so far (one ``index_add_`` into a fixed-size histogram);
* the digit of the ``k``-th largest key is the largest ``b`` with ``#{digit ≥ b} ≥ k_rem``;
  ``k_rem`` drops by the count of the higher digits (those keys are kept for sure).

After the last pass the prefix *is* the ``k``-th largest key ``t`` and ``k_rem`` is the number
of keys equal to ``t`` to keep. The mask is then one compaction pass: keep ``key > t``, and the
first ``k_rem`` keys equal to ``t`` in index order (a cumulative count of the ties), which is
the lowest-index tie-breaking of ``convcheck.compressors._top_k_mask``.

Every shape (passes, digit widths, histogram sizes) depends on the input's shape and dtype
only, never on its values: nothing is read back to the host, so a call queues its kernels and
returns (no ``.item()``, no data-dependent branch). The per-segment constants (segment of each
column, ``k_l``, segment starts) are built on the device with fills, without a host-to-device
copy, and cached per (sizes, counts, device).

A *segment* is a contiguous block of columns with its own ``k_l`` (a layer of a flat parameter
vector): the radix strategy selects all segments of all rows together, one histogram per
(row, segment), so layer-wise top-k has no Python loop over layers on the device. On CPU the
default is the ``"sort"`` strategy instead: ``torch.topk`` finds ``t`` (its partial sort is
faster there than several passes over memory) and the same compaction follows, one segment at
a time (``torch.topk`` takes one ``k`` per call). Keys must not be NaN (a NaN's key is above
``+inf``'s, where numpy's comparisons would drop it).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import torch

from convcheck.errors import InputError

Tensor = torch.Tensor

#: Integer dtype of the same width as each float dtype, and the key's significant bits.
KEY_DTYPES = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
}
KEY_BITS = {torch.int16: 15, torch.int32: 31, torch.int64: 63}

#: Widest digit of one pass (``2^16`` bins per row and segment).
MAX_DIGIT_BITS = 16


def magnitude_keys(x: Tensor) -> Tensor:
    """Keys ``bits(x_i) & 0x7f…f`` of ``x``'s width: ``|x_i| < |x_j| ⟺ key_i < key_j``."""
    key_dtype = KEY_DTYPES.get(x.dtype)
    if key_dtype is None:
        raise InputError("x", f"dtype {x.dtype}", "float16, bfloat16, float32 or float64")
    return x.view(key_dtype) & torch.iinfo(key_dtype).max


def digit_widths(key_bits: int, segment_size: int) -> tuple[int, ...]:
    """Digit widths of the passes, most significant first, summing to ``key_bits``.

    The widest digit has ``w = clamp(⌊log₂ s⌋ − 1, 4, 16)`` bits for an average segment of
    ``s`` entries (a histogram of ``2^w ≤ s/2`` bins per segment, so counting bins never costs
    more than the pass over the keys), and the ``⌈B / w⌉`` passes share the bits evenly.
    """
    widest = min(MAX_DIGIT_BITS, max(4, int(math.log2(max(segment_size, 1))) - 1))
    passes = -(-key_bits // widest)
    small, extra = divmod(key_bits, passes)
    return tuple(small + (1 if p < extra else 0) for p in range(passes))


@functools.lru_cache(maxsize=256)
def device_integers(values: tuple[int, ...], device: torch.device) -> Tensor:
    """``values`` as an int64 tensor on ``device``, built with fills (no host-to-device copy,
    so even a first call queues its kernels without waiting), cached."""
    out = torch.empty(len(values), dtype=torch.int64, device=device)
    for i, value in enumerate(values):
        out[i : i + 1].fill_(value)
    return out


@functools.lru_cache(maxsize=64)
def segment_of_columns(sizes: tuple[int, ...], device: torch.device) -> Tensor:
    """Segment ``l`` of each column ``(D,)``, int64, cached (built without a host copy)."""
    boundaries = torch.zeros(sum(sizes), dtype=torch.int64, device=device)
    for start in itertools.accumulate(sizes[:-1]):
        boundaries[start : start + 1].fill_(1)
    return boundaries.cumsum_(0)


def check_segments(
    dim: int, sizes: Sequence[int], counts: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sizes ``d_l ≥ 1`` summing to ``dim`` and counts ``k_l ≥ 1`` (clamped to ``d_l``)."""
    sizes, counts = tuple(int(s) for s in sizes), tuple(int(k) for k in counts)
    if not sizes or min(sizes) < 1 or sum(sizes) != dim:
        raise InputError("layer_sizes", list(sizes), f"sizes >= 1 summing to {dim}")
    if len(counts) != len(sizes) or min(counts) < 1:
        raise InputError("k", list(counts), f"{len(sizes)} counts >= 1, one per layer")
    return sizes, tuple(min(k, s) for k, s in zip(counts, sizes, strict=True))


STRATEGIES = ("keyed", "radix", "sort")


def default_strategy(device: torch.device) -> str:
    """``"keyed"`` on accelerators (one ``torch.topk`` on 64-bit keys, no compaction pass),
    ``"sort"`` on CPU (there ``torch.topk`` on 32-bit keys and a compaction in cache are as
    fast or faster); see :func:`top_k_mask_keys`."""
    return "sort" if device.type == "cpu" else "keyed"


def top_k_mask_keys(
    keys: Tensor, sizes: Sequence[int], counts: Sequence[int], strategy: str | None = None
) -> Tensor:
    """Mask of the ``k_l`` largest keys of each segment ``l`` of each row (ties: lowest index).

    Parameters
    ----------
    keys : Tensor, shape (M, D), int16, int32 or int64, ≥ 0
        Usually :func:`magnitude_keys` of the values.
    sizes : sequence of int
        Segment sizes ``d_l`` (contiguous column blocks), ``Σ d_l = D``.
    counts : sequence of int
        ``k_l ≥ 1`` per segment; ``k_l ≥ d_l`` keeps the whole segment.
    strategy : {"keyed", "radix", "sort"}, optional
        How the kept entries are found. ``"keyed"``: ``torch.topk`` of one segment at a time on
        distinct int64 keys ``key·2³² + (2³² − 1 − column)`` (a larger magnitude wins, then the
        lower column), whose indices are the mask: no ties, so no compaction pass (keys of at
        most 31 bits: float16, bfloat16, float32; int64 keys fall back to ``"sort"`` on CPU and
        ``"radix"`` elsewhere). ``"radix"``: the histogram passes (all segments at once), then
        the compaction. ``"sort"``: ``torch.topk`` finds ``t`` and the compaction follows, one
        segment at a time. Default :func:`default_strategy`. All give the same mask.

    Returns
    -------
    Tensor, shape (M, D), bool
        Exactly ``min(k_l, d_l)`` entries per row and segment.
    """
    score = _kept_score(keys, sizes, counts, strategy)
    kept = torch.empty(keys.shape, dtype=torch.uint8, device=keys.device)
    return torch.lt(score, 0, out=kept).view(torch.bool)


def top_k_words(
    keys: Tensor, sizes: Sequence[int], counts: Sequence[int], strategy: str | None = None
) -> Tensor:
    """:func:`top_k_mask_keys` as words of the keys' dtype: all ones (``-1``) where kept, 0
    elsewhere, so that ``bits(x) & words`` applies the mask (one pass fewer than a bool mask).
    """
    score = _kept_score(keys, sizes, counts, strategy)
    return score.bitwise_right_shift_(KEY_BITS[score.dtype]).to(keys.dtype)


def _kept_score(
    keys: Tensor, sizes: Sequence[int], counts: Sequence[int], strategy: str | None
) -> Tensor:
    """Integers ``< 0`` exactly at the kept entries (see :func:`_compact`)."""
    rows, dim = keys.shape
    sizes, counts = check_segments(dim, sizes, counts)
    strategy = default_strategy(keys.device) if strategy is None else strategy
    if strategy not in STRATEGIES:
        raise InputError("strategy", strategy, ", ".join(STRATEGIES))
    if strategy == "keyed":
        if KEY_BITS[keys.dtype] <= 32:
            return _keyed_mask(keys, sizes, counts).to(torch.int32).neg_()
        strategy = "sort" if keys.device.type == "cpu" else "radix"
    if strategy == "radix":  # all segments together
        segments = _Segments(rows, sizes, counts, keys.device)
        return _compact(keys, segments, *_radix_select(keys, counts, segments))
    parts, start = [], 0  # "sort": torch.topk takes one k, so one segment at a time
    for size, k in zip(sizes, counts, strict=True):
        part = keys[:, start : start + size]
        segment = _Segments(rows, (size,), (k,), keys.device)
        parts.append(_compact(part, segment, *_sort_select(part, k)))
        start += size
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class _Segments:
    """Rows and segments of one call, with their device constants."""

    def __init__(
        self, rows: int, sizes: tuple[int, ...], counts: tuple[int, ...], device: torch.device
    ) -> None:
        self.rows, self.sizes, self.count = rows, sizes, len(sizes)
        self.k = device_integers(counts, device)
        if self.count > 1:
            self.column_segment = segment_of_columns(sizes, device)
            self.starts = device_integers((0, *itertools.accumulate(sizes[:-1])), device)

    def per_column(self, values: Tensor) -> Tensor:
        """``(M, L)`` per-segment values broadcast to the columns: ``(M, 1)`` or ``(M, D)``."""
        if self.count == 1:
            return values
        # gather with an expanded index: several times faster than index_select on CPU
        return values.gather(1, self.column_segment.expand(self.rows, -1))


def segment_sums(values: Tensor, sizes: Sequence[int]) -> Tensor:
    """``(M, L)`` int64 sums of integer (or bool) ``values`` ``(M, D)`` over the columns of
    each contiguous segment of ``sizes``: one running count along the rows (int32, exact),
    read at the segments' ends and differenced — no loop over segments, no atomics."""
    sizes = tuple(int(size) for size in sizes)
    if len(sizes) == 1:
        return values.sum(1, keepdim=True, dtype=torch.int32).to(torch.int64)
    ends = device_integers(tuple(end - 1 for end in itertools.accumulate(sizes)), values.device)
    totals = values.cumsum(1, dtype=torch.int32).index_select(1, ends).to(torch.int64)
    return torch.diff(totals, dim=1, prepend=totals.new_zeros((values.shape[0], 1)))


@functools.lru_cache(maxsize=32)
def _reversed_columns(dim: int, device: torch.device) -> Tensor:
    """``2³² − 1 − j`` for the columns ``j < dim`` (int64): the lower column, the larger."""
    return torch.arange(2**32 - 1, 2**32 - 1 - dim, -1, dtype=torch.int64, device=device)


def _keyed_mask(keys: Tensor, sizes: tuple[int, ...], counts: tuple[int, ...]) -> Tensor:
    """The top-k mask from ``torch.topk`` on distinct keys (``"keyed"``; keys < 2³¹)."""
    rows, dim = keys.shape
    distinct = keys.to(torch.int64).bitwise_left_shift_(32).bitwise_or_(
        _reversed_columns(dim, keys.device))
    mask = torch.zeros((rows, dim), dtype=torch.bool, device=keys.device)
    start = 0
    for size, k in zip(sizes, counts, strict=True):
        block = mask[:, start : start + size]
        if k >= size:
            block.fill_(True)
        else:
            chosen = torch.topk(distinct[:, start : start + size], k, dim=1, sorted=False)
            block.scatter_(1, chosen.indices, True)
        start += size
    return mask


def _sort_select(keys: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``(t, k_rem)`` per row ``(M, 1)`` of one segment from ``torch.topk``: ``t`` is the
    smallest of the ``k`` largest keys, and every key ``> t`` is among them, so
    ``k_rem = k − #{top-k values > t}``."""
    top = torch.topk(keys, k, dim=1, sorted=False).values
    t = top.amin(1, keepdim=True)
    return t.to(torch.int64), k - (top > t).sum(1, keepdim=True)


def _radix_select(
    keys: Tensor, counts: tuple[int, ...], segments: _Segments
) -> tuple[Tensor, Tensor]:
    """``(t, k_rem)`` per (row, segment) from histogram passes over digits of the keys."""
    rows, dim = keys.shape
    layers, device = segments.count, keys.device
    widths = digit_widths(KEY_BITS[keys.dtype], dim // layers)
    bins = 1 << max(widths)
    wide = rows * layers * bins >= 2**31 or keys.dtype == torch.int64
    index_dtype = torch.int64 if wide else torch.int32
    # bin offset of each entry's (row, segment) histogram: (M, 1), or (M, D) with segments
    base = torch.arange(rows, dtype=index_dtype, device=device)[:, None] * (layers * bins)
    if layers > 1:
        base = base + (segments.column_segment * bins).to(index_dtype)
    # work buffers, reused by every pass (fresh allocations cost more than the passes on CPU)
    high = (torch.empty_like(keys), torch.empty_like(keys))  # key >> shift, this pass and last
    index = torch.empty((rows, dim), dtype=index_dtype, device=device)
    weight = torch.ones((), dtype=torch.int32, device=device).expand(rows, dim)
    histogram = torch.empty(rows * layers * bins, dtype=torch.int32, device=device)
    prefix = torch.zeros((rows, layers), dtype=torch.int64, device=device)
    remaining = segments.k.expand(rows, layers).clone()
    shift = KEY_BITS[keys.dtype]
    for p, width in enumerate(widths):
        shift -= width
        current, previous = high[p % 2], high[1 - p % 2]
        torch.bitwise_right_shift(keys, shift, out=current)
        if p == 0:  # the top digit: no prefix to match, no bits above to clear
            torch.add(current, base, out=index)
        else:  # count only the keys whose higher digits are the prefix chosen so far
            if p == 1:
                weight = torch.empty((rows, dim), dtype=torch.int32, device=device)
            torch.eq(previous, segments.per_column(prefix).to(keys.dtype), out=weight)
            torch.bitwise_and(current, (1 << width) - 1, out=index)
            index.add_(base)
        histogram.zero_().index_add_(0, index.view(-1), weight.reshape(-1))
        count = histogram.view(rows, layers, bins)[..., : 1 << width]
        cumulative = count.cumsum(-1, dtype=torch.int64)
        total = cumulative[..., -1:]
        at_least = total - cumulative + count  # #{digit ≥ b}
        chosen = (at_least >= remaining[..., None]).sum(-1, keepdim=True) - 1
        remaining = remaining - (total - cumulative.gather(-1, chosen))[..., 0]
        prefix = (prefix << width) | chosen[..., 0]
    return prefix, remaining


def _compact(keys: Tensor, segments: _Segments, threshold: Tensor, remaining: Tensor) -> Tensor:
    """Score of the compaction: keep ``key > t``, and the first ``k_rem`` keys equal to ``t``
    in index order (``k_rem = k − #{key > t}`` per row and segment).

    Returns ``s = [key = t]·(#{ties up to here} − k_rem − 1) − [key > t]``, int32 (int64 for
    int64 keys): kept ``⟺ s < 0``. Integer outputs throughout (comparisons into bool tensors
    are several times slower on CPU).
    """
    index_dtype = torch.int64 if keys.dtype == torch.int64 else torch.int32
    per_column = segments.per_column(threshold.to(keys.dtype))
    above = torch.gt(keys, per_column, out=torch.empty_like(keys))
    tied = torch.eq(keys, per_column, out=torch.empty_like(keys))
    rank = torch.cumsum(tied, 1, dtype=index_dtype)
    limit = remaining + 1
    if segments.count > 1:  # ties before the segment's start belong to earlier segments
        limit = limit + rank.index_select(1, segments.starts) - tied.index_select(
            1, segments.starts)
    score = rank.sub_(segments.per_column(limit.to(index_dtype)))
    return score.mul_(tied).sub_(above)
