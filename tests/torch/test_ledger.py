"""Pricing of messages: per worker, broadcasts once per receiver, as the numpy engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convcheck.errors import InputError
from convcheck.torch.compressors import DENSE, SPARSE, make_compressor
from convcheck.torch.ledger import BitLedger, Messages, Part, price


def test_parts_are_priced_per_worker() -> None:
    up = torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 3.0, 0], [0, 0, 0, 0]])
    # d = 4: index width 2; 1 nonzero: list 1·(2+32) = 34; 2 nonzeros: 2·2 ≥ 4 → bitmap 4 + 64
    assert price([Part(up, SPARSE)], 3).tolist() == [34, 68, 0]
    broadcast = torch.ones(4)
    assert price([Part(broadcast, DENSE)], 3).tolist() == [128, 128, 128]
    assert price([Part(broadcast, DENSE, (0, 2)), Part(up[:1], SPARSE, (2,))], 3).tolist() == [
        128, 0, 162,
    ]
    with pytest.raises(InputError, match="workers"):
        price([Part(up, SPARSE, (0,))], 3)


def test_ledger_rows_and_state() -> None:
    ledger = BitLedger(2)
    ledger.record(None)
    top = make_compressor("top-k", k=1)
    up = torch.tensor([[1.0, -5.0], [2.0, 0.0]])
    ledger.record(Messages.of(top.compress(up), top, torch.zeros(2), SPARSE))
    table = ledger.to_ledger()
    assert table.up.tolist() == [[0, 0], [33, 33]] and table.down.tolist() == [[0, 0], [0, 0]]
    copy = BitLedger(2)
    copy.load_state_dict(ledger.state_dict())
    assert np.array_equal(copy.to_ledger().up, table.up) and copy.totals() == ledger.totals()
    with pytest.raises(InputError, match="workers"):
        BitLedger(3).load_state_dict(ledger.state_dict())
