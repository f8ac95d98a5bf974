"""Built-in compressors against brute-force references, exact identities and hand-computed bits."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcheck.compressors import (
    COMPRESSORS,
    QSGD,
    Identity,
    LayerTopK,
    RandK,
    ScaledSign,
    Threshold,
    TopK,
    keep,
    make_compressor,
)
from convcheck.errors import InputError

FAST = settings(max_examples=80, deadline=None, derandomize=True, database=None)

# small integers make ties (equal magnitudes, opposite signs) and zeros common
tied_rows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(1, 12)),
    elements=st.integers(-3, 3).map(float),
)


def top_k_reference(x: np.ndarray, k: int) -> np.ndarray:
    """Stable argsort of −|x|: the first k indices are the k largest, ties to the lowest index."""
    keep = np.argsort(-np.abs(x), kind="stable")[:k]
    out = np.zeros_like(x)
    out[keep] = x[keep]
    return out


# ---------------------------------------------------------------- top-k


@FAST
@given(tied_rows, st.integers(1, 12))
def test_top_k_matches_stable_argsort(X: np.ndarray, k: int) -> None:
    k = min(k, X.shape[1])
    out = TopK(k).compress(X)
    assert np.array_equal(out, np.stack([top_k_reference(row, k) for row in X]))
    assert np.array_equal(TopK(k).compress(X[0].astype(np.float32)),
                          top_k_reference(X[0], k).astype(np.float32))


@pytest.mark.parametrize("zero_fraction", [0.0, 0.3, 0.7, 0.99])
def test_top_k_on_mostly_zero_and_dense_batches(zero_fraction: float) -> None:
    """Both selection paths (dense batches; mostly-zero batches) agree with the reference."""
    rng = np.random.default_rng(7)
    X = rng.integers(-3, 4, size=(6, 300)).astype(np.float64)
    X[rng.random(X.shape) < zero_fraction] = 0.0
    for k in (1, 5, 150, 299):
        expected = np.stack([top_k_reference(row, k) for row in X])
        assert np.array_equal(TopK(k).compress(X), expected)


def test_top_k_ties_go_to_lowest_index() -> None:
    x = np.array([1.0, -2.0, 2.0, -1.0, 2.0, -2.0])
    assert TopK(2).compress(x).tolist() == [0, -2.0, 2.0, 0, 0, 0]
    assert TopK(4).compress(x).tolist() == [0, -2.0, 2.0, 0, 2.0, -2.0]
    assert TopK(5).compress(x).tolist() == [1.0, -2.0, 2.0, 0, 2.0, -2.0]
    ones = np.ones(10)
    assert np.flatnonzero(TopK(3).compress(ones)).tolist() == [0, 1, 2]


def test_top_k_contraction_is_tight_on_equal_entries() -> None:
    x = np.full(8, -3.0)
    c = TopK(3)
    err = np.sum((c.compress(x) - x) ** 2)
    assert err == (1 - c.delta(8)) * np.sum(x**2)


def test_top_k_ratio_is_resolved_against_d() -> None:
    c = TopK(ratio=0.29)
    assert c.k_for(100) == 29  # not 28 from 0.29·100 = 28.999…
    assert c.k_for(3) == 1  # floor(0.87) -> at least 1
    assert np.count_nonzero(c.compress(np.arange(1.0, 101.0))) == 29
    assert c.delta(100) == 0.29


# ---------------------------------------------------------------- rand-k


@pytest.mark.parametrize(("d", "k"), [(3, 1), (4, 2), (5, 2), (6, 3), (6, 6)])
def test_rand_k_exact_expectation_by_enumerating_subsets(d: int, k: int) -> None:
    """E‖C(x) − x‖² over all C(d, k) subsets is (1 − k/d)‖x‖² = (1 − δ)‖x‖²; the draws
    of the compressor hit every subset with the uniform frequency (chi-square)."""
    x = np.arange(1.0, d + 1.0) * np.array([1, -1] * 3)[:d]
    subsets = list(itertools.combinations(range(d), k))
    exact = sum(
        Fraction(sum(int(x[i]) ** 2 for i in range(d) if i not in S)) for S in subsets
    ) / len(subsets)
    c = RandK(k)
    assert exact == Fraction(1) * (1 - Fraction(k, d)) * int(np.sum(x**2))
    assert c.delta(d) == k / d
    draws = 20_000
    out = c.compress(np.tile(x, (draws, 1)), np.random.default_rng(7))
    kept = out != 0
    assert np.all(kept.sum(axis=1) == k) and np.all((out == 0) | (out == x))
    index = {S: i for i, S in enumerate(subsets)}
    counts = np.bincount([index[tuple(np.flatnonzero(r))] for r in kept], minlength=len(subsets))
    if len(subsets) > 1:
        expected = draws / len(subsets)
        chi2 = float(np.sum((counts - expected) ** 2 / expected))
        dof = len(subsets) - 1
        assert chi2 < dof + 6 * math.sqrt(2 * dof)  # far in the tail only if not uniform
    mean_err = np.mean(np.sum((out - x) ** 2, axis=1))
    se = np.std(np.sum((out - x) ** 2, axis=1)) / math.sqrt(draws)
    assert abs(mean_err - float(exact)) <= 6 * se + 1e-12


def test_rand_k_uses_the_k_smallest_uniforms_row_by_row() -> None:
    """Independent reference: the kept set of a row is argsort(rng.random(d))[:k]."""
    X = np.random.default_rng(0).standard_normal((5, 9))
    out = RandK(4, scaled=True).compress(X, np.random.default_rng(3))
    ref_rng = np.random.default_rng(3)
    for row, got in zip(X, out, strict=True):
        keep = np.sort(np.argsort(ref_rng.random(9))[:4])
        assert np.flatnonzero(got).tolist() == keep.tolist()
        assert np.array_equal(got[keep], row[keep] * (9 / 4))


def test_rand_k_scaled_is_unbiased_with_omega() -> None:
    d, k = 5, 2
    x = np.array([1.0, -2.0, 0.5, 4.0, -1.0])
    c = RandK(k, scaled=True)
    assert (c.guarantee, c.sparsifier, c.in_expectation) == ("unbiased", False, False)
    assert c.omega(d) == d / k - 1
    # exact: each coordinate kept with probability k/d and scaled by d/k
    subsets = list(itertools.combinations(range(d), k))
    mean = sum(np.where(np.isin(np.arange(d), S), x * d / k, 0) for S in subsets) / len(subsets)
    assert np.allclose(mean, x, rtol=1e-15)
    err = sum(np.sum((np.where(np.isin(np.arange(d), S), x * d / k, 0) - x) ** 2)
              for S in subsets) / len(subsets)
    assert math.isclose(err, c.omega(d) * np.sum(x**2), rel_tol=1e-14)
    with pytest.raises(InputError, match="'contractive'"):
        c.delta(d)
    with pytest.raises(InputError, match="'unbiased'"):
        RandK(k).omega(d)


# ---------------------------------------------------------------- threshold


def test_threshold_is_strict() -> None:
    x = np.array([1.0, -1.0, 0.5, 2.0, -3.0, 0.0])
    assert Threshold(1.0).compress(x).tolist() == [0, 0, 0, 2.0, -3.0, 0]
    tau = np.array([0.9, 1.0, 0.5, 2.0, 0.0, 0.0])
    assert Threshold(tau).compress(x).tolist() == [1.0, 0, 0, 0, -3.0, 0]
    assert Threshold(0.0).compress(x).tolist() == x.tolist()
    assert not Threshold(np.inf).compress(x).any()
    X = np.stack([x, -x, 2 * x])
    out = Threshold(tau).compress(X)
    assert np.array_equal(out, np.where(np.abs(X) > tau, X, 0))
    assert np.all(np.abs(out - X) <= tau)
    assert np.array_equal(Threshold(tau).tau(6), tau)
    assert Threshold(0.25).tau(3).tolist() == [0.25] * 3


# ---------------------------------------------------------------- layer-wise top-k


def test_layer_top_k_is_top_k_per_block() -> None:
    rng = np.random.default_rng(2)
    X = rng.integers(-3, 4, size=(6, 12)).astype(float)
    c = LayerTopK([3, 4, 5], [1, 2, 2])
    out = c.compress(X)
    blocks = [(0, 3, 1), (3, 7, 2), (7, 12, 2)]
    for row, got in zip(X, out, strict=True):
        ref = np.concatenate([top_k_reference(row[a:b], k) for a, b, k in blocks])
        assert np.array_equal(got, ref)
    assert c.delta(12) == min(1 / 3, 2 / 4, 2 / 5)
    by_ratio = LayerTopK([10, 3, 40], ratio=0.25)
    assert by_ratio.k == (2, 1, 10)
    for row in out:
        message = c.encode(row)
        assert message.parts is not None and len(message.parts) == 3
        assert message.nbits == c.bits(row)
        assert np.array_equal(c.decode(message), row.astype(np.float32))


# ---------------------------------------------------------------- scaled sign


@FAST
@given(hnp.arrays(np.float64, st.integers(1, 8).map(lambda n: 2**n),
                  elements=st.integers(-50, 50).map(float)))
def test_scaled_sign_exact_error_identity(x: np.ndarray) -> None:
    """With integer x and d a power of two every quantity is exact:
    ‖C(x) − x‖² = ‖x‖² − ‖x‖₁²/d, checked in rational arithmetic."""
    d = x.size
    out = ScaledSign().compress(x)
    l1 = sum(abs(int(v)) for v in x)
    scale = Fraction(l1, d)
    signed = [-scale if v < 0 else scale for v in x]
    assert [Fraction(float(o)) for o in out] == signed
    lhs = sum((Fraction(float(o)) - int(v)) ** 2 for o, v in zip(out, x, strict=True))
    norm2 = sum(int(v) ** 2 for v in x)
    assert lhs == norm2 - Fraction(l1**2, d)
    if norm2:
        assert ScaledSign().delta_of(x) == pytest.approx(l1**2 / (d * norm2), rel=1e-15)
        assert lhs <= (1 - Fraction(1, d)) * norm2  # the declared worst case δ = 1/d


def test_scaled_sign_zero_has_plus_sign_and_bits() -> None:
    c = ScaledSign()
    assert c.compress(np.array([0.0, -1.0, 3.0, 0.0])).tolist() == [1.0, -1.0, 1.0, 1.0]
    assert c.compress(np.zeros(3)).tolist() == [0.0, 0.0, 0.0]
    assert c.bits(np.zeros(5)) == 5 + 32 and ScaledSign(value_bits=64).bits(np.ones(5)) == 69
    assert c.delta(10) == 0.1
    assert c.delta_of(np.zeros(3)) == 1.0
    assert np.allclose(c.delta_of(np.array([[1.0, 0, 0], [1, 1, 1]])), [1 / 3, 1.0])
    with pytest.raises(InputError, match="'c'"):
        c.encode(np.array([1.0, 2.0]))


# ---------------------------------------------------------------- QSGD


def least_step(norm: Fraction, s: int, precision: int) -> Fraction:
    """Independent reference for QSGD's step: the least number with ``precision``
    significant bits that is ≥ norm/s, by exact rational arithmetic."""
    target = norm / s
    exponent = math.floor(math.log2(target)) - precision + 1
    unit = Fraction(2) ** exponent
    return math.ceil(target / unit) * unit


def qsgd_reference(row: np.ndarray, draws: np.ndarray, step: Fraction, s: int) -> np.ndarray:
    """Levels ⌊r⌋ + [u < r − ⌊r⌋] with r = |x_i|/step, in rational arithmetic."""
    r = [Fraction(abs(float(t))) / step for t in row]
    level = [math.floor(ri) + (Fraction(float(ui)) < ri - math.floor(ri))
             for ri, ui in zip(r, draws, strict=True)]
    assert max(level) <= s
    return np.sign(row) * np.array([float(li * step) for li in level])


@pytest.mark.parametrize(("s", "v"), [(1, 32), (4, 32), (7, 64)])
def test_qsgd_matches_reference_rounding(s: int, v: int) -> None:
    """The output is the reference rounding with the step computed from ‖x‖ (math.hypot);
    the compressor's own norm may differ from it by a few ulps, which can move the step by
    one grid point at 64-bit precision, so both neighbours are accepted."""
    rng = np.random.default_rng(s)
    X = rng.standard_normal((50, 6)) * 10.0 ** rng.integers(-3, 4, size=(50, 1))
    out = QSGD(s, value_bits=v).compress(X, np.random.default_rng(11))
    u = np.random.default_rng(11).random(X.shape)
    precision = (24 if v == 32 else 53) - s.bit_length()
    for row, got, draws in zip(X, out, u, strict=True):
        norm = Fraction(math.hypot(*row.tolist()))
        steps = {least_step(norm * (1 + e * Fraction(1, 2**50)), s, precision) for e in (-1, 0, 1)}
        assert any(np.array_equal(got, qsgd_reference(row, draws, q, s)) for q in steps)


def test_qsgd_exact_expectation_and_variance_by_enumeration() -> None:
    """With step q the two outcomes of coordinate i are ⌊r_i⌋q and ⌈r_i⌉q with
    P(up) = r_i − ⌊r_i⌋: E C(x) = x exactly and E‖C(x) − x‖² = q² Σ p_i(1 − p_i) ≤ ω‖x‖²."""
    x = np.array([0.3, -1.7, 2.2, 0.0, 5.0])
    for s in (1, 2, 3, 8):
        c = QSGD(s)
        q = least_step(Fraction(math.hypot(*x.tolist())), s, 24 - s.bit_length())
        r = [Fraction(abs(float(t))) / q for t in x]
        p = [ri - math.floor(ri) for ri in r]
        mean = [(math.floor(ri) + pi) * q for ri, pi in zip(r, p, strict=True)]
        assert [float(m) for m in mean] == np.abs(x).tolist()
        variance = q**2 * sum(pi * (1 - pi) for pi in p)
        assert float(variance) <= c.omega(5) * np.sum(x**2)
        # the compressor's draws: outcomes and a Monte Carlo mean within 6 standard errors
        out = c.compress(np.tile(x, (100_000, 1)), np.random.default_rng(s))
        for i in range(5):
            outcomes = {float(math.floor(r[i]) * q), float(math.ceil(r[i]) * q)}
            assert set(np.unique(np.abs(out[:, i])).tolist()) <= outcomes
        se = out.std(axis=0) / math.sqrt(out.shape[0])
        assert np.all(np.abs(out.mean(axis=0) - x) <= 6 * se + 1e-15)


def test_qsgd_constants_bits_and_zero() -> None:
    assert QSGD(4).omega(64) == min(64 / 16, 8 / 4)
    assert QSGD(1).omega(9) == min(9.0, 3.0)
    assert QSGD(4).bits(np.zeros(10)) == 32 + 10 * (1 + 3)
    assert QSGD(3, value_bits=64).bits(np.zeros((2, 5))).tolist() == [64 + 15, 64 + 15]
    assert not QSGD(2).compress(np.zeros((3, 4)), np.random.default_rng(0)).any()
    c = QSGD(4)
    out = c.compress(np.array([3.0, -4.0, 0.0]), np.random.default_rng(0))
    assert np.array_equal(c.decode(c.encode(out)), out)
    with pytest.raises(InputError, match="qsgd"):
        c.encode(np.array([1.0, 1.0 + 2**-20]))


# ---------------------------------------------------------------- bits


def test_bit_formulas_hand_computed() -> None:
    d = 1000
    x = np.arange(1.0, d + 1.0)
    c = TopK(10)
    assert c.bits(c.compress(x)) == 10 * (10 + 32) == 420
    assert TopK(10, value_bits=64).bits(c.compress(x)) == 10 * (10 + 64)
    y = np.arange(1.0, 17.0)
    assert TopK(8).bits(TopK(8).compress(y)) == 16 + 8 * 32
    assert TopK(3).bits(TopK(3).compress(y)) == 3 * (4 + 32)
    assert TopK(3).bits(np.zeros(16)) == 0
    assert Identity().bits(np.zeros(16)) == 16 * 32
    assert Threshold(0.5).bits(np.array([[0.0, 1.0], [0.0, 0.0]])).tolist() == [1 + 32, 0]
    layers = LayerTopK([1000, 16], [10, 8])
    row = layers.compress(np.concatenate([x, y]))
    assert layers.bits(row) == 420 + 16 + 8 * 32
    assert RandK(10).bits(c.compress(x)) == 420


def test_bits_of_a_batch_are_an_int64_array() -> None:
    X = np.array([[0.0, 1.0, 2.0, 0.0], [0.0] * 4, [1.0] * 4])
    bits = TopK(4).bits(X)
    assert bits.dtype == np.int64 and bits.tolist() == [2 * (2 + 32), 0, 4 + 4 * 32]
    assert isinstance(TopK(4).bits(X[0]), int)


# ---------------------------------------------------------------- bad input

def assert_input_error(exc_info: pytest.ExceptionInfo, field: str, *allowed: str) -> None:
    err = exc_info.value
    assert isinstance(err, InputError) and err.field == field
    assert f"'{field}'" in str(err)
    for text in allowed:
        assert text in str(err), (text, str(err))


@pytest.mark.parametrize("k", [0, -3, 2.5, "3", True])
def test_k_must_be_a_positive_integer(k: object) -> None:
    with pytest.raises(InputError) as info:
        TopK(k)
    assert_input_error(info, "k", "an integer >= 1")
    with pytest.raises(InputError) as info:
        RandK(k)
    assert_input_error(info, "k", "an integer >= 1")


def test_k_larger_than_d() -> None:
    with pytest.raises(InputError) as info:
        TopK(5).compress(np.ones(4))
    assert_input_error(info, "k", "5", "an integer in [1, d=4]")
    with pytest.raises(InputError) as info:
        RandK(7).compress(np.ones((2, 3)), np.random.default_rng(0))
    assert_input_error(info, "k", "an integer in [1, d=3]")


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, float("nan"), "half"])
def test_ratio_outside_unit_interval(ratio: object) -> None:
    for cls in (TopK, RandK):
        with pytest.raises(InputError) as info:
            cls(ratio=ratio)
        assert_input_error(info, "ratio", "(0, 1]")


def test_exactly_one_of_k_or_ratio() -> None:
    for args in ({}, {"k": 2, "ratio": 0.5}):
        with pytest.raises(InputError) as info:
            TopK(**args)
        assert_input_error(info, "k", "exactly one of k", "ratio")


@pytest.mark.parametrize("tau", [-1.0, [0.5, -0.1], float("nan"), [[1.0]], "big"])
def test_tau_must_be_nonnegative(tau: object) -> None:
    with pytest.raises(InputError) as info:
        Threshold(tau)
    assert_input_error(info, "tau", ">= 0")


def test_tau_of_the_wrong_length() -> None:
    with pytest.raises(InputError) as info:
        Threshold(np.ones(3)).compress(np.ones(4))
    assert_input_error(info, "tau", "length 3", "an array of length d=4")


def test_layer_sizes_must_sum_to_d() -> None:
    c = LayerTopK([2, 3], [1, 1])
    with pytest.raises(InputError) as info:
        c.compress(np.ones(6))
    assert_input_error(info, "layer_sizes", "(2, 3)", "summing to d=6")
    with pytest.raises(InputError) as info:
        c.bits(np.ones(4))
    assert_input_error(info, "layer_sizes", "summing to d=4")
    for sizes in ([], [2, 0], [2, -1], 5):
        with pytest.raises(InputError) as info:
            LayerTopK(sizes, ratio=0.5)
        assert_input_error(info, "layer_sizes", ">= 1")
    with pytest.raises(InputError) as info:
        LayerTopK([2, 3], [1, 4])
    assert_input_error(info, "k", "an integer in [1, 3]")
    with pytest.raises(InputError) as info:
        LayerTopK([2, 3], [1])
    assert_input_error(info, "k", "one integer per layer (2 layers)")


@pytest.mark.parametrize("s", [0, -2, 1.5, 70_000])
def test_qsgd_levels(s: object) -> None:
    with pytest.raises(InputError) as info:
        QSGD(s)
    assert_input_error(info, "s", "an integer in [1, 65535]")


def test_unknown_compressor_and_parameters() -> None:
    with pytest.raises(InputError) as info:
        make_compressor("top-q", k=3)
    assert_input_error(info, "compressor", "top-q", *(repr(n) for n in COMPRESSORS))
    with pytest.raises(InputError) as info:
        make_compressor("top-k", kk=3)
    assert_input_error(info, "kk", "'top-k'", "k, ratio, value_bits")
    with pytest.raises(InputError) as info:
        make_compressor("threshold")
    assert_input_error(info, "tau", "required")
    with pytest.raises(InputError) as info:
        make_compressor("qsgd", s=0)
    assert_input_error(info, "s", "[1, 65535]")
    with pytest.raises(InputError) as info:
        make_compressor("sign", value_bits=16)
    assert_input_error(info, "value_bits", "32", "64")


@pytest.mark.parametrize("cls", [RandK, QSGD])
def test_randomized_needs_a_generator(cls: type) -> None:
    c = cls(2)
    for rng in (None, 42, np.random.RandomState(0)):
        with pytest.raises(InputError) as info:
            c.compress(np.ones(4), rng)
        assert_input_error(info, "rng", "a numpy.random.Generator")


@pytest.mark.parametrize("x", [np.ones(3, dtype=int), np.ones((2, 2, 2)), np.ones(0), "abc"])
def test_bad_vectors(x: object) -> None:
    with pytest.raises(InputError) as info:
        TopK(1).compress(x)
    assert_input_error(info, "x", "float32 or float64", "(d,) or (M, d)")


# ---------------------------------------------------------------- registry


def test_registry_and_describe() -> None:
    assert set(COMPRESSORS) == {"identity", "top-k", "rand-k", "threshold", "layer-top-k",
                                "partition-top-k", "sign", "qsgd"}
    built = {
        "identity": {},
        "top-k": {"k": 3},
        "rand-k": {"ratio": 0.5, "scaled": True},
        "threshold": {"tau": np.array([0.5, 1.0])},
        "layer-top-k": {"layer_sizes": [2, 2], "k": [1, 1]},
        "partition-top-k": {"groups": [[0, 2], [1, 3]], "ratio": 0.5},
        "sign": {"value_bits": 64},
        "qsgd": {"s": 4},
    }
    for name, params in built.items():
        c = make_compressor(name, **params)
        assert type(c) is COMPRESSORS[name]
        info = c.describe()
        assert set(info) == {"name", "params", "guarantee", "constant_formula"}
        assert info["name"] == name and info["guarantee"] in ("contractive", "unbiased", "absolute")
        assert info["constant_formula"]
    assert make_compressor("rand-k", k=2).describe()["guarantee"] == "contractive"
    assert make_compressor("rand-k", k=2, scaled=True).describe()["guarantee"] == "unbiased"
    assert Identity().delta(5) == 1.0 and Identity().omega(5) == 0.0
    assert repr(TopK(3)) == "TopK(k=3, value_bits=32)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_equals_where_bit_for_bit(dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 50)).astype(dtype)
    X[0, :3] = [np.inf, -np.inf, np.nan]
    X[1, :2] = [-0.0, -1.0]
    mask = rng.random(X.shape) < 0.5
    mask[0, :3] = True
    mask[1, :2] = False
    out = keep(X, mask)
    assert out.dtype == X.dtype and out.shape == X.shape
    expected = np.where(mask, X, dtype(0))
    assert out.tobytes() == expected.tobytes()  # kept bits identical, dropped entries are +0
    assert not np.signbit(out[~mask]).any()


@pytest.mark.parametrize(("name", "params"), [
    ("identity", {}), ("top-k", {"k": 2}), ("threshold", {"tau": 0.5}),
    ("layer-top-k", {"layer_sizes": [3, 4], "k": [1, 2]}), ("sign", {}), ("qsgd", {"s": 2}),
    ("rand-k", {"k": 3}),
])
def test_price_rows_is_bits_and_nonzeros_of_each_row(name: str, params: dict) -> None:
    compressor = make_compressor(name, **params)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 7))
    X[1] = 0.0
    X[2, :3] = 0.0
    C = compressor.compress(X, rng)
    bits, counts = compressor.price_rows(C)
    assert np.array_equal(bits, compressor.bits(C))
    assert np.array_equal(counts, np.count_nonzero(C, axis=1))
    assert [compressor.encode(row).nbits for row in C] == bits.tolist()
