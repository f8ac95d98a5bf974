"""The wire checks of the identity monitors: every message decodes back, every price equals
the length of the real encoding at every count of nonzeros."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import invariants
from convcheck.compressors import LayerTopK, RandK, Threshold, TopK


class _Shifted(TopK):
    """A top-k whose decoder puts every value one index further."""

    def decode(self, message):
        return np.roll(super().decode(message), 1)


class _OffAtSeven(TopK):
    """A top-k whose row prices are one bit off for messages of 7 nonzeros."""

    def price_rows(self, C):
        bits, counts = super().price_rows(C)
        return bits + (counts == 7), counts


def test_encoded_bits_decodes_every_message():
    row = np.array([0.0, 0.1, 0.0, -3.0, 1e-60])
    assert invariants.encoded_bits(TopK(k=3), row) == (TopK(k=3).encode(row).nbits, "")
    assert invariants.encoded_bits(TopK(k=3, value_bits=64), row)[1] == ""
    _, problem = invariants.encoded_bits(_Shifted(k=3), row)
    assert "decodes to" in problem and "index 1" in problem


@pytest.mark.parametrize("d", [1, 5, 64, 300, 5000])
def test_prices_agree_with_encodings_at_every_count(d):
    for codec in (TopK(k=1), Threshold(0.0), LayerTopK([d // 2, d - d // 2], ratio=0.5)
                  if d > 1 else Threshold(0.0)):
        assert invariants.pricing_mismatch(codec, d) == ""


def test_a_price_off_at_one_count_is_found():
    problem = invariants.pricing_mismatch(_OffAtSeven(k=1), 40)
    assert "7 nonzeros out of 40" in problem
    assert invariants.pricing_mismatch(_OffAtSeven(k=1), 6) == ""  # no message has 7


def test_top_k_ties_go_to_the_lowest_index():
    lowest = invariants.compression_error(TopK(k=1), np.array([[2.0, 0, 0]]),
                                          np.array([[0, -2.0, 1.0]]))
    highest = invariants.compression_error(TopK(k=1), np.array([[0, -2.0, 0]]),
                                           np.array([[2.0, 0, 1.0]]))
    assert lowest == (0.0, 0.0) and highest[0] == 1.0
    layer = LayerTopK([2, 2], k=[1, 1])
    assert invariants.compression_error(layer, np.array([[0, 1.0, 0, 3.0]]),
                                        np.array([[1.0, 0, 0, 0]]))[0] == 1.0


@pytest.mark.parametrize(("ratio", "d", "k"), [(0.3, 13, 3), (0.29, 100, 29), (0.01, 50, 1),
                                                (1.0, 7, 7), (0.999, 1000, 999)])
def test_counts_from_a_ratio_are_recomputed_from_its_decimal_value(ratio, d, k):
    assert invariants.expected_count(ratio, None, d) == k == TopK(ratio=ratio).k_for(d)


class _RoundedTopK(TopK):
    """A top-k that rounds ratio·d instead of flooring it."""

    def k_for(self, d):
        return max(1, round(self.ratio * d))


def test_a_count_off_the_specification_is_a_violation():
    x = np.arange(1.0, 14.0)[None, :]  # ratio 0.3 of 13: 3 by the rule, 4 rounded
    codec = _RoundedTopK(ratio=0.3)
    sent = codec.compress_rows(x, None)
    assert np.count_nonzero(sent) == 4
    assert invariants.compression_error(codec, sent, x - sent)[0] == 1.0
    assert invariants.compression_error(TopK(ratio=0.3), TopK(ratio=0.3).compress_rows(x, None),
                                        x - TopK(ratio=0.3).compress_rows(x, None)) == (0.0, 0.0)


def test_rand_k_keeps_exactly_k_entries_whole():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 10))
    for scaled in (False, True):
        codec = RandK(k=4, scaled=scaled)
        sent = codec.compress_rows(x, np.random.default_rng(1))
        assert invariants.compression_error(codec, sent, x - sent) == (0.0, 0.0)
    short = RandK(k=5).compress_rows(x, np.random.default_rng(1))  # 5 kept, the rule says 4
    assert invariants.compression_error(RandK(k=4), short, x - short)[0] == 3.0
    partial = RandK(k=4).compress_rows(x, np.random.default_rng(1))
    assert invariants.compression_error(RandK(k=4), partial, x - 0.5 * partial)[0] == 12.0
