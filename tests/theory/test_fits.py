"""Rate fits against sequences whose rates are known exactly or by construction."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.errors import InputError
from convcheck.theory.fits import fit_linear_rate, fit_power_law


@pytest.mark.parametrize("method", ["theil-sen", "least-squares"])
def test_exact_geometric_sequence(method):
    k = np.arange(300)
    fit = fit_linear_rate(3.0 * 0.97**k, method=method)
    assert fit.kind == "linear" and fit.rate == pytest.approx(0.97, rel=1e-12)
    assert fit.low == pytest.approx(0.97, rel=1e-9) and fit.high == pytest.approx(0.97, rel=1e-9)
    assert fit.start == 30 and fit.stop == 299
    assert np.exp(fit.intercept) == pytest.approx(3.0, rel=1e-9)


def test_geometric_sequence_stops_at_the_floor_and_ignores_the_burn_in():
    k = np.arange(2000)
    values = np.maximum(0.9**k, 1e-30)  # a round-off plateau after k ≈ 655
    values[:50] = 1e3  # a transient
    fit = fit_linear_rate(values, burn_in=0.05, floor=1e-25)
    assert fit.rate == pytest.approx(0.9, rel=1e-12)
    assert fit.stop < 560


def test_noisy_geometric_sequence_interval_covers_the_rate():
    rng = np.random.default_rng(0)
    k = np.arange(1000)
    values = 0.99**k * np.exp(rng.normal(scale=0.3, size=k.size))
    fit = fit_linear_rate(values, burn_in=0.0)
    assert fit.low <= 0.99 <= fit.high
    assert fit.high - fit.low < 1e-3


@pytest.mark.parametrize("method", ["theil-sen", "least-squares"])
def test_exact_power_law(method):
    T = np.arange(5000, dtype=float)
    values = np.full(T.shape, np.nan)
    values[1:] = 4.0 / T[1:]
    fit = fit_power_law(values, method=method)
    assert fit.kind == "power" and fit.rate == pytest.approx(-1.0, abs=1e-10)
    assert fit.low <= -1.0 + 1e-9 and fit.high >= -1.0 - 1e-9
    assert fit.start >= 500


def test_power_law_on_a_running_mean_of_a_summable_sequence():
    k = np.arange(20000)
    sequence = 1.0 / (1.0 + k) ** 2
    mean = np.full(k.shape, np.nan)
    mean[1:] = np.cumsum(sequence)[:-1] / k[1:]
    fit = fit_power_law(mean, start=100)
    assert fit.rate == pytest.approx(-1.0, abs=0.01)


def test_too_few_points_and_bad_parameters_name_the_field():
    with pytest.raises(InputError, match="'values'"):
        fit_linear_rate(np.zeros(10))
    with pytest.raises(InputError, match="'values'"):
        fit_linear_rate(0.5 ** np.arange(10), floor=1.0)
    with pytest.raises(InputError, match="'method'"):
        fit_linear_rate(0.5 ** np.arange(10), method="ransac")
    with pytest.raises(InputError, match="'burn_in'"):
        fit_linear_rate(0.5 ** np.arange(10), burn_in=1.0)
    with pytest.raises(InputError, match="'iterations'"):
        fit_power_law(np.ones(10), np.arange(5))
    with pytest.raises(InputError, match="'values'"):
        fit_power_law(np.ones(10), start=8)
