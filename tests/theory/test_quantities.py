"""Measured quantities are upper estimates, start values lower estimates."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck import make_algorithm, run
from convcheck.errors import InputError
from convcheck.theory import quantities as q
from tests.helpers import engine_problem


def test_reference_and_conservative_estimates():
    problem = engine_problem("logistic", "sorted", workers=4, n_samples=200, n_features=6, lam=0.05)
    ref = q.Reference.of(problem)
    assert ref.radius == pytest.approx(problem.optimum.grad_norm / problem.constants.mu)
    assert ref.radius_certified and ref.f_low <= ref.f_hat
    trace = run(make_algorithm("gd", problem.constants), problem, 30)
    np.testing.assert_array_equal(q.gap_upper(trace, ref), trace.columns["value"] - ref.f_low)
    assert np.all(q.distance_sq_upper(trace, ref) >= trace.columns["dist_sq"])
    assert q.start_distance_sq_lower(trace, ref) <= trace.columns["dist_sq"][0]
    assert q.start_gap_lower(trace, ref) <= q.start_gap_upper(trace, ref)
    assert q.value_floor(trace, ref) >= ref.f_hat - ref.f_low
    assert q.distance_sq_floor(ref, 1.0, problem.constants.mu) >= (2 * ref.radius) ** 2
    with pytest.raises(InputError, match="'run'"):
        q.column(trace, "ef21_G")


def test_running_mean():
    out = q.running_mean(np.array([1.0, 3.0, 5.0]))
    assert np.isnan(out[0])
    np.testing.assert_array_equal(out[1:], [1.0, 2.0])


def test_nonconvex_reference_uses_f_low_zero():
    problem = engine_problem("nonconvex-logistic", "sorted", workers=4, n_samples=200, n_features=6)
    ref = q.Reference.of(problem)
    assert ref.f_low == 0.0 and ref.f_hat is None and not ref.radius_certified
