"""Messages on the wire: exact round trips, dense or sparse by length, padding."""

from __future__ import annotations

import pytest
import torch

from convcheck.errors import InputError
from convcheck.torch.distributed.wire import (
    FLAG_NONE,
    FLAG_SPARSE,
    decode,
    encode,
    gather_payload,
    gathered_rows,
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


def test_messages_travel_the_shorter_way_and_come_back_exactly() -> None:
    """``2·nnz < d``: packed pairs; else dense; ``None``: an empty payload."""
    one = torch.tensor([0.0, 0.0, -2.5, 0.0, 0.0])  # 1 pair: 2 entries < d = 5
    two = torch.tensor([1.0, 0.0, -2.5, 0.0, 0.0])  # 2 pairs: 4 entries < 5
    three = torch.tensor([1.0, 3.0, -2.5, 0.0, 0.0])  # 3 pairs: 6 entries ≥ 5, dense
    for x, flags in ((one, FLAG_SPARSE), (two, FLAG_SPARSE), (three, 0)):
        payload, how = encode(x)
        assert how == flags and payload.numel() == (2 * int((x != 0).sum()) if flags else 5)
        assert torch.equal(decode(payload, how, 5), x)
    payload, how = encode(None)
    assert how == FLAG_NONE and payload.numel() == 0 and decode(payload, how, 5) is None


def test_gathered_messages_are_padded_or_dense_for_every_rank() -> None:
    a = torch.tensor([0.0, 2.0, 0.0, 0.0, 0.0, 0.0])
    b = torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0, -1.0])
    c = torch.tensor([3.0, 1.0, 4.0, 0.0, 0.0, -1.0])
    for rows in ([a, b], [a, c]):
        lengths = [2 * int((x != 0).sum()) for x in rows]
        payloads = torch.stack([gather_payload(x, lengths) for x in rows])
        assert payloads.shape[1] == (max(lengths) if max(lengths) < 6 else 6)
        assert torch.equal(gathered_rows(payloads, lengths, 6), torch.stack(rows))
