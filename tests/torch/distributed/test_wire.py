"""Sparse payloads: exact round trips, padding, and what a payload costs."""

from __future__ import annotations

import pytest
import torch

from convcheck.errors import InputError
from convcheck.torch.distributed.wire import (
    pack,
    pack_at,
    pad_payload,
    split_payload,
    unpack,
    unpack_rows,
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pack_round_trip_is_exact(dtype) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1000, generator=generator, dtype=dtype)
    x[torch.rand(1000, generator=generator) < 0.97] = 0
    x[5] = float("nan")  # bits travel unchanged, whatever they are
    x[7] = torch.finfo(dtype).tiny / 4  # a subnormal
    payload = pack(x)
    assert payload.dtype == dtype and payload.numel() == 2 * int((x != 0).sum())
    indices, values = split_payload(payload)
    assert torch.equal(indices, (x != 0).nonzero().view(-1))  # ascending
    back = unpack(payload, 1000)
    assert torch.equal(back.isnan(), x.isnan())
    assert torch.equal(torch.nan_to_num(back), torch.nan_to_num(x))
    assert unpack(pack(torch.zeros(9, dtype=dtype)), 9).count_nonzero() == 0


def test_indices_above_float_precision_survive() -> None:
    """Indices are reinterpreted, not converted: 2**24 + 1 is not a float32 but survives."""
    d = 2**24 + 3
    x = torch.zeros(d, dtype=torch.float32)
    x[2**24 + 1] = 1.5
    indices, values = split_payload(pack(x))
    assert indices.tolist() == [2**24 + 1] and values.tolist() == [1.5]


def test_padded_rows_decode_with_one_scatter() -> None:
    a = torch.tensor([0.0, 2.0, 0.0, -1.0, 0.0])
    b = torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0])
    payloads = torch.stack([pad_payload(pack(a), 3, 5), pad_payload(pack(b), 3, 5)])
    assert payloads.shape == (2, 6)
    assert torch.equal(unpack_rows(payloads, 5), torch.stack([a, b]))
    # fixed-count payloads (LAGS): chosen positions may hold zeros
    fixed = pack_at(a, torch.tensor([3, 0, 1]))
    assert torch.equal(unpack(fixed, 5), a)


def test_only_float32_and_float64_travel() -> None:
    with pytest.raises(InputError, match="'dtype'"):
        pack(torch.ones(3, dtype=torch.float16))
