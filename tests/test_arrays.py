"""The array namespace: per-run values and the shape-generic operations of a batch."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.arrays import NUMPY, PerRun, namespace
from convcheck.compressors import LayerTopK, TopK

RUNS, WORKERS, DIM = 3, 4, 6


def _rows(seed=0):
    return np.random.default_rng(seed).normal(size=(RUNS, WORKERS, DIM))


def test_per_run_values_scale_each_runs_rows_like_its_scalar():
    """``alpha * X`` (and the other operators) on ``(R, d)`` and ``(R, M, d)``: run ``r`` is
    the same floating-point operation as with its scalar ``alpha_r``, bit for bit."""
    values = np.array([0.3, 1.7, 2.9])
    alpha = PerRun(values)
    for X in (_rows(), _rows(1)[:, 0, :]):
        results = {
            "alpha * X": (alpha * X, lambda a, x: a * x),
            "X * alpha": (X * alpha, lambda a, x: x * a),
            "X / alpha": (X / alpha, lambda a, x: x / a),
            "alpha / X": (alpha / X, lambda a, x: a / x),
            "X - alpha": (X - alpha, lambda a, x: x - a),
            "alpha + X": (alpha + X, lambda a, x: a + x),
            "alpha * 0.1 * X": (alpha * 0.1 * X, lambda a, x: a * 0.1 * x),
            "X * alpha**2": (X * alpha**2, lambda a, x: x * a**2),
            "-alpha * X": (-alpha * X, lambda a, x: -a * x),
            "(1 - alpha) * X": ((1.0 - alpha) * X, lambda a, x: (1.0 - a) * x),
            "alpha * alpha * X": (alpha * alpha * X, lambda a, x: a * a * x),
        }
        for label, (batched, scalar) in results.items():
            assert isinstance(batched, np.ndarray) and batched.shape == X.shape, label
            for r, a in enumerate(values.tolist()):
                np.testing.assert_array_equal(batched[r], scalar(a, X[r]), err_msg=label)


def test_per_run_values_with_numbers_stay_per_run():
    alpha = PerRun([1.0, 2.0])
    for value in (alpha * 2, 2.0 * alpha, np.float64(2.0) * alpha, alpha / 4, -alpha,
                  alpha**2, alpha * alpha):
        assert isinstance(value, PerRun)
    np.testing.assert_array_equal((np.float64(3.0) * alpha).values, [3.0, 6.0])
    np.testing.assert_array_equal(alpha.take([1]).values, [2.0])
    assert np.ndim(alpha) == 0
    with pytest.raises(ValueError):
        PerRun(np.ones((2, 2)))
    with pytest.raises(TypeError):
        alpha * "x"


def test_mean_rows_compress_threshold_and_bits_run_by_run():
    X = _rows()
    X[0, 1, :] = 0.0
    for xp_result, per_run in (
        (NUMPY.mean_rows(X), NUMPY.mean_rows),
        (NUMPY.compress(TopK(k=2), X, None), lambda x: NUMPY.compress(TopK(k=2), x, None)),
        (NUMPY.compress(LayerTopK((2, 4), (1, 2)), X, None),
         lambda x: NUMPY.compress(LayerTopK((2, 4), (1, 2)), x, None)),
    ):
        for r in range(RUNS):
            np.testing.assert_array_equal(xp_result[r], per_run(X[r]))
    tau = np.abs(np.random.default_rng(2).normal(size=(RUNS, DIM)))
    kept = NUMPY.threshold(X, tau)
    for r in range(RUNS):
        np.testing.assert_array_equal(kept[r], NUMPY.threshold(X[r], tau[r]))
        np.testing.assert_array_equal(kept[r], np.where(np.abs(X[r]) > tau[r], X[r], 0.0))
    bits = NUMPY.bits(TopK(k=2), kept).reshape(RUNS, WORKERS)
    for r in range(RUNS):
        np.testing.assert_array_equal(bits[r], TopK(k=2).bits(kept[r]))
    starts = np.array([0, 2, 5])
    sums = NUMPY.layer_sums(X, starts)
    assert sums.shape == (RUNS, WORKERS, 3)
    np.testing.assert_allclose(sums[..., 1], X[..., 2:5].sum(axis=-1), rtol=1e-15)


def test_trace_scalars_are_per_run_when_batched():
    X = _rows()
    msn, sq, top = NUMPY.mean_square_norm(X), NUMPY.square_norm(X[:, 0]), NUMPY.max_entry(X)
    assert msn.shape == sq.shape == top.shape == (RUNS,)
    for r in range(RUNS):
        single = NUMPY.mean_square_norm(X[r])
        assert isinstance(single, float) and msn[r] == single
        assert sq[r] == NUMPY.square_norm(X[r, 0])
        assert top[r] == NUMPY.max_entry(X[r]) == X[r].max()
        single_norm = NUMPY.norm(X[r, 0])
        assert type(single_norm) is float and single_norm == np.sqrt(sq[r])
        assert NUMPY.norm(X[:, 0])[r] == single_norm
    assert NUMPY.mean_square_norm(X[0]) == pytest.approx((X[0] ** 2).sum() / WORKERS, rel=1e-14)


def test_rows_like_has_the_run_axis_of_its_model():
    theta = np.ones(DIM)
    assert NUMPY.rows_like(theta, WORKERS).shape == (WORKERS, DIM)
    assert NUMPY.rows_like(np.ones((RUNS, DIM)), WORKERS).shape == (RUNS, WORKERS, DIM)
    assert NUMPY.rows_like(theta, WORKERS, 2).shape == (WORKERS, 2)
    assert not NUMPY.rows_like(np.ones((RUNS, DIM)), WORKERS).any()
    assert namespace(theta) is NUMPY


def test_backends_register_their_namespace(monkeypatch):
    """An array of a package without a registered namespace is refused, naming the package;
    once registered, the package's arrays get its namespace (no import of the backend here)."""
    from convcheck import arrays

    monkeypatch.setattr(arrays, "_BACKENDS", {})
    fake = type("FakeArray", (), {"__module__": "fakearrays.core"})()
    with pytest.raises(TypeError, match="FakeArray of package 'fakearrays'; registered: numpy"):
        namespace(fake)
    arrays.register_namespace("fakearrays", NUMPY)
    assert namespace(fake) is NUMPY
    assert namespace(np.zeros(2)) is NUMPY
