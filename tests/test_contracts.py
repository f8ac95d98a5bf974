"""The contract suite passes every built-in and catches deliberately broken compressors."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck import encoding
from convcheck.compressors import COMPRESSORS, Compressor, RandK, TopK, make_compressor
from convcheck.contracts import (
    FAILED,
    NOT_APPLICABLE,
    PASSED,
    PROPERTIES,
    ContractViolation,
    check_compressor,
)
from convcheck.encoding import Encoded
from convcheck.errors import InputError

EXAMPLES = 25  # per property; the default (60) is for users, this keeps the suite quick

BUILT_INS = {
    "identity": [{}, {"value_bits": 64}],
    "top-k": [{"k": 3}, {"ratio": 0.25, "value_bits": 64}],
    "rand-k": [{"k": 2}, {"ratio": 0.3, "scaled": True},
               {"k": 1, "scaled": True, "value_bits": 64}],
    "threshold": [{"tau": 0.5}, {"tau": np.linspace(0.0, 3.0, 12), "value_bits": 64}],
    "layer-top-k": [{"layer_sizes": [3, 5, 8], "k": [1, 2, 3]},
                    {"layer_sizes": [4, 12], "ratio": 0.3, "value_bits": 64}],
    "partition-top-k": [{"groups": [[0, 2, 4], [1, 3, 5, 6, 7]], "ratio": 0.4},
                        {"groups": [[0, 1, 2], [3, 4, 5, 6, 7]], "ratio": 0.5}],
    "sign": [{}, {"value_bits": 64}],
    "qsgd": [{"s": 4}, {"s": 1, "value_bits": 64}],
}

CASES = [(name, params) for name, variants in BUILT_INS.items() for params in variants]


def test_every_registered_compressor_is_covered() -> None:
    assert set(BUILT_INS) == set(COMPRESSORS)


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in
                                                         enumerate(CASES)])
def test_built_in_passes(name: str, params: dict) -> None:
    compressor = make_compressor(name, **params)
    report = check_compressor(compressor, max_examples=EXAMPLES)
    assert report.passed and not report.failed
    statuses = {r.name: r.status for r in report.results}
    assert set(statuses) == set(PROPERTIES)
    # every structural property applies to every compressor
    for always in ("shape-dtype", "zero", "exact-bits", "round-trip", "determinism",
                   "batch-equals-rows"):
        assert statuses[always] == PASSED
    # exactly one of the guarantee properties families ran
    guarantee = {
        "contraction": compressor.guarantee == "contractive" and not compressor.in_expectation,
        "expected-contraction": compressor.guarantee == "contractive"
        and compressor.in_expectation,
        "unbiasedness": compressor.guarantee == "unbiased",
        "variance": compressor.guarantee == "unbiased",
        "absolute-bound": compressor.guarantee == "absolute",
    }
    for prop, applies in guarantee.items():
        assert statuses[prop] == (PASSED if applies else NOT_APPLICABLE), prop
    assert report.confidence == 1 - 1e-6
    assert "Monte Carlo confidence" in str(report)


# ---------------------------------------------------------------- broken compressors


class SignedTopK(TopK):
    """Broken: keeps the k largest SIGNED values instead of the largest magnitudes."""

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        keep = np.argsort(-X, axis=1, kind="stable")[:, : self.k_for(X.shape[1])]
        mask = np.zeros(X.shape, dtype=bool)
        np.put_along_axis(mask, keep, True, axis=1)
        return np.where(mask, X, X.dtype.type(0))


class WrongScaleRandK(RandK):
    """Broken: scaled by d/(k+1) instead of d/k while declaring unbiasedness."""

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        k = self.k_for(X.shape[1])
        return super().compress_rows(X, rng) * X.dtype.type(k / (k + 1))


class OffByOneBits(TopK):
    """Broken: bits() counts one bit more than the encoding has."""

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        return super().bits_rows(C) + 1


def violation(compressor: Compressor, **options: object) -> tuple[str, ...]:
    with pytest.raises(ContractViolation) as info:
        check_compressor(compressor, max_examples=EXAMPLES, **options)
    report = info.value.report
    assert isinstance(info.value, AssertionError) and not report.passed
    for name in report.failed:
        result = report.result(name)
        assert result.status == FAILED and result.message and result.example
        assert result.message in str(info.value)
    return report.failed


def test_catches_top_k_by_signed_value() -> None:
    failed = violation(SignedTopK(2))
    assert "contraction" in failed
    assert "exact-bits" not in failed and "round-trip" not in failed


def test_catches_rand_k_with_the_wrong_scale() -> None:
    failed = violation(WrongScaleRandK(1, scaled=True))
    assert "unbiasedness" in failed
    # from d = 2 on the bias is a statistical detection, not the deterministic d = 1 case
    assert "unbiasedness" in violation(WrongScaleRandK(ratio=0.5, scaled=True), dims=(2, 64))
    assert "exact-bits" not in failed and "determinism" not in failed


def test_catches_bits_off_by_one() -> None:
    assert violation(OffByOneBits(3)) == ("exact-bits",)


# ---------------------------------------------------------------- a user's own compressor


class BernoulliDropout(Compressor):
    """A user's compressor: keep each coordinate with probability p, scaled by 1/p.

    Unbiased with ``E‖C(x) − x‖² = (1/p − 1)‖x‖²``; sent as a sparse float64 message.
    """

    name = "bernoulli"
    guarantee = "unbiased"
    randomized = True
    scale_equivariant = True
    constant_formula = "ω = 1/p − 1"

    def __init__(self, p: float) -> None:
        self.p = p
        self.value_bits = 64

    def compress_rows(self, X: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        keep = rng.random(X.shape) < self.p
        return np.where(keep, X / X.dtype.type(self.p), X.dtype.type(0))

    def bits_rows(self, C: np.ndarray) -> np.ndarray:
        return encoding.sparse_bits(np.count_nonzero(C, axis=1), C.shape[1], 64)

    def encode(self, c: np.ndarray) -> Encoded:
        return encoding.encode_sparse(c, 64)

    def decode(self, message: Encoded) -> np.ndarray:
        return encoding.decode_sparse(message, 64)

    def omega(self, d: int) -> float:
        return 1 / self.p - 1


def test_user_defined_compressor_passes() -> None:
    report = check_compressor(BernoulliDropout(0.25), max_examples=EXAMPLES, dims=(1, 16))
    assert report.passed
    assert report.result("unbiasedness").status == PASSED
    assert report.result("disjoint-support").status == NOT_APPLICABLE
    assert report.settings["dims"] == (1, 16)
    # the same compressor declaring a too small ω fails the variance property only
    class Overconfident(BernoulliDropout):
        def omega(self, d: int) -> float:
            return 0.5 * (1 / self.p - 1)

    assert violation(Overconfident(0.25)) == ("variance",)


def test_fixed_dimension_compressors_use_their_dimension() -> None:
    # d = 600 also takes the numpy-filled path for large vectors
    layer = make_compressor("layer-top-k", layer_sizes=[400, 200], ratio=0.1)
    report = check_compressor(layer, max_examples=5)
    assert report.settings["dims"] == (600, 600)
    top = make_compressor("top-k", k=10)
    assert check_compressor(top, max_examples=5, dims=(1, 12)).settings["dims"] == (10, 12)


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="'compressor'"):
        check_compressor("top-k")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="'dims'"):
        check_compressor(TopK(1), dims=(0, 4))
    with pytest.raises(InputError, match="'dims'"):
        check_compressor(TopK(1), dims=(5, 4))
    with pytest.raises(InputError, match="'confidence'"):
        check_compressor(TopK(1), confidence=1.0)
    with pytest.raises(InputError, match="'monte_carlo_samples'"):
        check_compressor(TopK(1), monte_carlo_samples=1)

    class NoGuarantee(BernoulliDropout):
        guarantee = "bounded"

    with pytest.raises(InputError, match="'guarantee'"):
        check_compressor(NoGuarantee(0.5))
