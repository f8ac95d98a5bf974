"""Exact top-k selection on float bits against numpy's ``_top_k_mask``, block by block."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convcheck.compressors import _top_k_mask
from convcheck.errors import InputError
from convcheck.torch import select
from tests.torch.host_sync import host_syncs

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None)

DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}
SMALLEST_SUBNORMAL = {
    torch.float16: 2.0**-24,
    torch.bfloat16: 2.0**-133,
    torch.float32: 2.0**-149,
    torch.float64: 5e-324,
}

# special values, small integers (ties) and reals; cast to the dtype (overflow gives ±inf)
special = st.sampled_from(["0", "-0", "inf", "-inf", "sub", "-sub", "max"])
entries = st.one_of(special, st.integers(-3, 3), st.floats(-1e6, 1e6, allow_nan=False))


def build(values: list, dtype: torch.dtype) -> torch.Tensor:
    """A tensor of ``dtype`` from drawn entries (special names resolved for the dtype)."""
    named = {
        "0": 0.0, "-0": -0.0, "inf": np.inf, "-inf": -np.inf,
        "sub": SMALLEST_SUBNORMAL[dtype], "-sub": -SMALLEST_SUBNORMAL[dtype],
        "max": float(torch.finfo(dtype).max),
    }
    return torch.tensor([named.get(v, v) if isinstance(v, str) else float(v) for v in values],
                        dtype=torch.float64).to(dtype)


def reference_mask(x: torch.Tensor, sizes: list[int], counts: list[int]) -> np.ndarray:
    """numpy's ``_top_k_mask`` of ``|x|`` on each block in turn (the loop version);
    bfloat16 goes through float32, which holds it exactly."""
    a = np.abs((x.float() if x.dtype == torch.bfloat16 else x).numpy())
    parts, start = [], 0
    for size, k in zip(sizes, counts, strict=True):
        parts.append(_top_k_mask(a[:, start : start + size], min(k, size)))
        start += size
    return np.concatenate(parts, axis=1)


@st.composite
def problems(draw, max_rows: int = 3, max_dim: int = 40):
    """``(x, sizes, counts)``: rows of drawn entries, blocks and ``k_l`` (incl. 1 and d_l)."""
    dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
    rows, dim = draw(st.integers(1, max_rows)), draw(st.integers(1, max_dim))
    kind = draw(st.sampled_from(["mixed", "equal", "mixed"]))
    if kind == "equal":  # every entry of a row alike
        values = [v for v in draw(st.lists(entries, min_size=rows, max_size=rows))
                  for _ in range(dim)]
    else:
        values = draw(st.lists(entries, min_size=rows * dim, max_size=rows * dim))
    x = build(values, dtype).reshape(rows, dim)
    cuts = sorted(draw(st.sets(st.integers(1, dim - 1), max_size=4)) if dim > 1 else [])
    sizes = np.diff([0, *cuts, dim]).tolist()
    counts = [draw(st.sampled_from([1, s, draw(st.integers(1, s + 2))])) for s in sizes]
    return x, sizes, counts


@FAST
@given(problems(), st.sampled_from(select.STRATEGIES))
def test_mask_equals_numpy_block_by_block(problem, strategy: str) -> None:
    x, sizes, counts = problem
    mask = select.top_k_mask_keys(select.magnitude_keys(x), sizes, counts, strategy)
    assert mask.dtype == torch.bool and mask.shape == x.shape
    np.testing.assert_array_equal(mask.numpy(), reference_mask(x, sizes, counts))


@FAST
@given(st.integers(1, 3), st.integers(2, 300), st.integers(0, 2**32 - 1),
       st.sampled_from([torch.float32, torch.float64]), st.sampled_from(select.STRATEGIES))
def test_near_ties_in_the_low_bits(rows: int, dim: int, seed: int, dtype, strategy) -> None:
    """Magnitudes a few ulps apart (equal high digits, decided in the last pass), with exact
    ties among them."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.5, 2.0)
    ulps = rng.integers(0, 6, (rows, dim))
    key_dtype = select.KEY_DTYPES[dtype]
    start = torch.tensor(base, dtype=dtype).view(key_dtype)
    x = (start + torch.from_numpy(ulps).to(key_dtype)).view(dtype)
    x = x * torch.from_numpy(rng.choice([-1.0, 1.0], (rows, dim))).to(dtype)
    k = int(rng.integers(1, dim + 1))
    mask = select.top_k_mask_keys(select.magnitude_keys(x), [dim], [k], strategy)
    np.testing.assert_array_equal(mask.numpy(), reference_mask(x, [dim], [k]))


@pytest.mark.parametrize("strategy", select.STRATEGIES)
def test_long_rows_with_many_ties_keep_the_lowest_indices(strategy: str) -> None:
    x = torch.ones(3, 5000)
    x[1, 4000:] = 2.0  # 1000 larger entries, then 700 of the ties from the front
    mask = select.top_k_mask_keys(select.magnitude_keys(x), [5000], [1700], strategy)
    assert mask.sum(dim=1).tolist() == [1700] * 3
    assert bool(mask[0, :1700].all()) and not bool(mask[0, 1700:].any())
    assert bool(mask[1, :700].all()) and bool(mask[1, 4000:].all())
    assert not bool(mask[1, 700:4000].any())


@pytest.mark.parametrize("strategy", select.STRATEGIES)
def test_many_segments_of_one_large_row(strategy: str) -> None:
    """A model-like layout (big and tiny layers) against the loop version."""
    generator = torch.Generator().manual_seed(3)
    sizes = [3000, 10, 700, 1, 2500, 64]
    x = torch.randn(4, sum(sizes), generator=generator).round(decimals=1)  # many ties
    counts = [30, 1, 7, 1, 25, 64]
    mask = select.top_k_mask_keys(select.magnitude_keys(x), sizes, counts, strategy)
    np.testing.assert_array_equal(mask.numpy(), reference_mask(x, sizes, counts))


def test_magnitude_keys_order_like_magnitudes() -> None:
    for dtype in DTYPES.values():
        values = build(["-inf", "-0", "sub", "max", 1, -1, 2.5, 0.1, "0", "-sub"], dtype)
        keys = select.magnitude_keys(values).to(torch.int64)
        a = values.abs().double()
        assert torch.equal(keys[:, None] < keys[None, :], a[:, None] < a[None, :])
        assert torch.equal(keys[:, None] == keys[None, :], a[:, None] == a[None, :])


def test_digit_widths_cover_the_key_in_few_passes() -> None:
    for bits in select.KEY_BITS.values():
        for size in (1, 10, 1000, 10**5, 10**7):
            widths = select.digit_widths(bits, size)
            assert sum(widths) == bits and max(widths) - min(widths) <= 1
            assert max(widths) <= select.MAX_DIGIT_BITS
            assert 2 ** max(widths) <= max(16, size // 2) or max(widths) <= 4
    assert select.digit_widths(31, 10**6) == (16, 15)


def test_device_tables_are_built_right() -> None:
    device = torch.device("cpu")
    assert select.device_integers((5, 0, 7), device).tolist() == [5, 0, 7]
    assert select.segment_of_columns((2, 1, 3), device).tolist() == [0, 0, 1, 2, 2, 2]
    values = torch.arange(12, dtype=torch.int32).reshape(2, 6)
    assert select.segment_sums(values, (2, 1, 3)).tolist() == [[1, 2, 12], [13, 8, 30]]
    assert select.segment_sums(values, (6,)).tolist() == [[15], [51]]
    assert select.segment_sums(values > 4, (1, 4, 1)).tolist() == [[0, 0, 1], [1, 4, 1]]


def test_bad_segments_are_refused() -> None:
    keys = torch.zeros((1, 5), dtype=torch.int32)
    with pytest.raises(InputError, match="layer_sizes"):
        select.top_k_mask_keys(keys, [2, 2], [1, 1])
    with pytest.raises(InputError, match="k"):
        select.top_k_mask_keys(keys, [2, 3], [1, 0])
    with pytest.raises(InputError, match="strategy"):
        select.top_k_mask_keys(keys, [5], [1], "heap")
    with pytest.raises(InputError, match="dtype"):
        select.magnitude_keys(torch.zeros(3, dtype=torch.int32))


def test_no_host_synchronization_in_the_source() -> None:
    assert host_syncs([select]) == []
