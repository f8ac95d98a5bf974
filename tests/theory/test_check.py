"""The ratio and tolerance rule of a bound check."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.theory.check import ratios


def test_ratios_follow_the_rule():
    measured = np.array([np.nan, 1.0, 2.0, 0.5, np.inf, 1.0, 0.0, np.nan])
    bound = np.array([np.nan, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
    out = ratios(measured, bound, atol=0.0)
    assert np.isnan(out[0])  # bound undefined: left out
    assert out[1] == 1.0 and out[2] == 2.0 and out[3] == 0.5
    assert out[4] == np.inf  # a diverged run violates
    assert out[5] == np.inf  # a negative bound (evaluated outside its range) is violated
    assert out[6] == 0.0
    assert out[7] == np.inf  # nan measurement where the bound is defined: divergence


def test_floor_absorbs_round_off_only():
    measured = np.array([1e-20, 2.0])
    out = ratios(measured, np.array([0.0, 1.0]), atol=1e-16)
    assert out[0] == pytest.approx(1e-4, rel=1e-15)
    assert out[1] == 2.0 / (1.0 + 1e-16)
