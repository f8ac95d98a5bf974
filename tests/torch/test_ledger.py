"""The bit ledger of torch runs: rows priced as in the numpy engine, state round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convcheck.algorithms.base import DENSE, SPARSE
from convcheck.compressors import TopK
from convcheck.engine.rounds import Wire, price
from convcheck.errors import InputError
from convcheck.torch.ledger import BitLedger


def test_tensor_messages_are_priced_per_worker() -> None:
    """The engine's pricing on tensors: a row counts for its sender, a broadcast once per
    receiving worker."""
    up = torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 3.0, 0], [0, 0, 0, 0]])
    # d = 4: index width 2; 1 nonzero: list 1·(2+32) = 34; 2 nonzeros: 2·2 ≥ 4 → bitmap 4 + 64
    bits_up, bits_down = price(Wire(up, SPARSE, ((torch.ones(4), DENSE, None),)), 3)
    assert bits_up.tolist() == [34, 68, 0] and bits_down.tolist() == [128, 128, 128]
    _, to_one = price(Wire(None, None, ((torch.ones(4), DENSE, 2), (up[0], SPARSE, 2))), 3)
    assert to_one.tolist() == [0, 0, 162]


def test_ledger_rows_and_state() -> None:
    ledger = BitLedger(2)
    ledger.record_empty()
    top = TopK(k=1)
    sent = torch.tensor([[0.0, -5.0], [2.0, 0.0]])
    ledger.record_bits(*price(Wire(sent, top, ((torch.zeros(2), SPARSE, None),)), 2))
    table = ledger.to_ledger()
    assert table.up.tolist() == [[0, 0], [33, 33]] and table.down.tolist() == [[0, 0], [0, 0]]
    copy = BitLedger(2)
    copy.load_state_dict(ledger.state_dict())
    assert np.array_equal(copy.to_ledger().up, table.up) and copy.totals() == ledger.totals()
    with pytest.raises(InputError, match="workers"):
        BitLedger(3).load_state_dict(ledger.state_dict())


def test_rows_priced_elsewhere_are_appended_as_they_are() -> None:
    ledger = BitLedger(2)
    ledger.record_empty()
    ledger.record_bits(np.array([3, 4]), np.array([5, 6]))
    assert ledger.to_ledger().up.tolist() == [[0, 0], [3, 4]]
    assert ledger.totals() == {"bits_up": 7, "bits_down": 11}
    with pytest.raises(InputError, match="'up'"):
        ledger.record_bits(np.array([1, 2, 3]), np.array([1, 2]))
