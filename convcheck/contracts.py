"""The contract suite: property tests every compressor must pass.

:func:`check_compressor` runs Hypothesis property tests against any
:class:`~convcheck.compressors.Compressor` (built in or user supplied), on vectors full of
zeros and of equal entries (which make top-k's contraction exactly tight), and returns a
:class:`ContractReport`; it raises :class:`ContractViolation` (an ``AssertionError``, so it
reads as a test failure under pytest) when any property fails. In a test::

    def test_my_compressor():
        check_compressor(MyCompressor(...))

Properties (each applied only where the compressor's flags claim it; the others are
reported as not applicable):

==========================  ================================================================
``shape-dtype``             ``C(x)`` keeps shape ``(d,)`` / ``(M, d)`` and dtype float32 / float64
``zero``                    ``C(0) = 0``
``contraction``             ``‖C(x) − x‖² ≤ (1 − δ)‖x‖²`` for every ``x`` (contractive, surely)
``expected-contraction``    Monte Carlo: ``E‖C(x) − x‖² ≤ (1 − δ)‖x‖²`` (contractive in expectation)
``unbiasedness``            Monte Carlo: ``E C(x)_i = x_i`` for every ``i`` (unbiased)
``variance``                Monte Carlo: ``E‖C(x) − x‖² ≤ ω‖x‖²`` (unbiased)
``absolute-bound``          ``|C(x)_i − x_i| ≤ τ_i`` and ``‖C(x) − x‖ ≤ ‖x‖`` (absolute)
``disjoint-support``        ``C(x)_i ∈ {0, x_i}`` exactly, so ``⟨C(x), x − C(x)⟩ = 0`` (sparsifier)
``idempotence``             ``C(C(x)) = C(x)`` (independent random draws for the two calls)
``scale-equivariance``      ``C(2^j x) = 2^j C(x)``, ``j ∈ [−20, 20]``, exact, same random draws
``exact-bits``              ``bits(c) = encode(c).nbits``, ``len(payload) = ⌈nbits/8⌉``,
                            ``bits`` of a batch = bits of its rows
``round-trip``              ``decode(encode(c)) = c`` exactly at the wire precision
``determinism``             same seed → same output, no Generator → ``InputError('rng')``
                            (randomized); a deterministic compressor ignores (and does not
                            consume) the Generator
``batch-equals-rows``       ``C(X)`` = its rows compressed one by one with one Generator
==========================  ================================================================

Monte Carlo properties draw ``monte_carlo_samples`` outputs per example from a seeded
Generator and test with normal (CLT) intervals using the sample standard deviation:
unbiasedness per coordinate two-sided at ``z = Φ⁻¹(1 − α/(2d))`` (Bonferroni over the
``d`` coordinates, ``α = 1 − confidence``), the mean squared error one-sided at
``z = Φ⁻¹(1 − α)`` above the bound plus ``z`` standard errors. A coordinate whose draws
were all equal (zero sample variance) must match ``x_i`` up to round-off, except for the
bias an unseen rare event could carry: with ``p̄ = ln(2d/α)/n`` (no event of probability
``> p̄`` goes unseen in ``n`` draws, at confidence ``1 − α/(2d)``) the allowance is
``sqrt(p̄/(1 − p̄)·ω‖x‖²)``, since ``Var C(x)_i ≤ ω‖x‖²`` — zero when ``ω = 0``. The
normal intervals are approximations (CLT); the confidence is per example and is stated
in the report.
Comparisons of floating-point bounds use ``lhs ≤ rhs·(1 + 1e-12) + 1e-300``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcheck.compressors import GUARANTEES, Compressor
from convcheck.errors import InputError, check_int, check_real

PASSED = "passed"
FAILED = "failed"
NOT_APPLICABLE = "not applicable"

RTOL = 1e-12
ATOL = 1e-300
_ELEMENTWISE_LIMIT = 512  # larger vectors are filled by numpy from drawn parameters
_MC_CHUNK = 1 << 20  # entries per Monte Carlo batch

PROPERTIES: dict[str, str] = {
    "shape-dtype": "C(x) keeps shape (d,)/(M, d) and dtype float32/float64",
    "zero": "C(0) = 0",
    "contraction": "‖C(x) − x‖² ≤ (1 − δ)‖x‖² for every x",
    "expected-contraction": "E‖C(x) − x‖² ≤ (1 − δ)‖x‖² (Monte Carlo)",
    "unbiasedness": "E C(x)_i = x_i for every i (Monte Carlo)",
    "variance": "E‖C(x) − x‖² ≤ ω‖x‖² (Monte Carlo)",
    "absolute-bound": "|C(x)_i − x_i| ≤ τ_i and ‖C(x) − x‖ ≤ ‖x‖",
    "disjoint-support": "C(x)_i ∈ {0, x_i} exactly",
    "idempotence": "C(C(x)) = C(x)",
    "scale-equivariance": "C(2^j x) = 2^j C(x), j ∈ [−20, 20]",
    "exact-bits": "bits(c) = encode(c).nbits, len(payload) = ⌈nbits/8⌉, batch = rows",
    "round-trip": "decode(encode(c)) = c at the wire precision",
    "determinism": "same seed, same output; deterministic ones ignore rng",
    "batch-equals-rows": "C(X) = rows compressed one by one with one Generator",
}


@dataclass(frozen=True)
class PropertyResult:
    """Outcome of one property: status, and for a failure the message and example."""

    name: str
    status: str
    description: str
    message: str = ""
    example: str = ""


@dataclass(frozen=True)
class ContractReport:
    """All property outcomes for one compressor.

    Attributes
    ----------
    compressor : dict
        ``compressor.describe()``.
    results : tuple of PropertyResult
    confidence : float
        Per-example confidence of the Monte Carlo properties.
    settings : dict
        Dimensions tested, examples, Monte Carlo samples, seed.
    """

    compressor: dict
    results: tuple[PropertyResult, ...]
    confidence: float
    settings: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True iff no property failed."""
        return not self.failed

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the failed properties."""
        return tuple(r.name for r in self.results if r.status == FAILED)

    def result(self, name: str) -> PropertyResult:
        """The result of the property ``name``."""
        for r in self.results:
            if r.name == name:
                return r
        raise InputError("name", name, "one of " + ", ".join(PROPERTIES))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "compressor": self.compressor,
            "confidence": self.confidence,
            "settings": self.settings,
            "passed": self.passed,
            "results": [r.__dict__.copy() for r in self.results],
        }

    def __str__(self) -> str:
        head = (
            f"contract suite for {self.compressor['name']} {self.compressor['params']} "
            f"({self.compressor['guarantee']}: {self.compressor['constant_formula']}); "
            f"Monte Carlo confidence {self.confidence:.10g} per example; {self.settings}"
        )
        lines = [head]
        for r in self.results:
            lines.append(f"  {r.name:<22} {r.status:<15} {r.description}")
            if r.status == FAILED:
                lines.append(f"      {r.message}")
                lines.append(f"      falsifying example: {r.example}")
        return "\n".join(lines)


class ContractViolation(AssertionError):
    """A compressor failed its contract; ``.report`` holds the :class:`ContractReport`."""

    def __init__(self, report: ContractReport) -> None:
        super().__init__(str(report))
        self.report = report


class _Falsified(Exception):
    def __init__(self, message: str, example: str) -> None:
        super().__init__(message)
        self.message = message
        self.example = example


# ---------------------------------------------------------------- strategies

_FINITE = st.floats(
    -1e4, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False
).map(lambda v: 0.0 if abs(v) < 1e-6 else v)


@st.composite
def _batches(draw: Any, d_lo: int, d_hi: int, max_rows: int) -> np.ndarray:
    """``(M, d)`` float64 with zeros, repeated magnitudes (±palette) and free values.

    Unset entries take one drawn fill value (0 or a palette value), so vectors with many
    equal entries are common; Hypothesis sets the others element by element.
    """
    d = draw(st.integers(d_lo, d_hi))
    m = draw(st.integers(1, max_rows))
    palette = draw(st.lists(_FINITE, min_size=1, max_size=3))
    if m * d <= _ELEMENTWISE_LIMIT:
        entry = st.one_of(
            st.just(0.0),
            st.sampled_from(palette),
            st.sampled_from(palette).map(lambda v: -v),
            _FINITE,
        )
        fill = st.one_of(st.just(0.0), st.sampled_from(palette))
        return draw(hnp.arrays(np.float64, (m, d), elements=entry, fill=fill))
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = draw(st.lists(st.integers(0, 3), min_size=3, max_size=3).filter(any))
    kind = gen.choice(3, size=(m, d), p=np.array(weights) / sum(weights))
    signs = gen.choice([-1.0, 1.0], size=(m, d))
    pick = gen.choice(np.array(palette), size=(m, d))
    free = gen.standard_normal((m, d)) * 10.0 ** gen.uniform(-3, 3, size=(m, d))
    return np.choose(kind, [np.zeros((m, d)), signs * pick, free])


def _show(x: np.ndarray) -> str:
    return f"np.array({np.asarray(x).tolist()!r})"


# ---------------------------------------------------------------- the suite


def check_compressor(
    compressor: Compressor,
    *,
    dims: tuple[int, int] = (1, 64),
    max_examples: int = 60,
    monte_carlo_samples: int = 4000,
    confidence: float = 1 - 1e-6,
    seed: int = 0,
) -> ContractReport:
    """Run the contract suite on ``compressor``; raise :class:`ContractViolation` on failure.

    Parameters
    ----------
    compressor : Compressor
        Any instance (built in or a user's subclass).
    dims : (int, int)
        Inclusive range ``(d_min, d_max)`` of dimensions to test, intersected with
        ``compressor.dim_range()``; if they do not meet, the compressor's smallest
        accepted dimension is used.
    max_examples : int
        Hypothesis examples per property (derandomized: same result every run).
    monte_carlo_samples : int
        Draws per example for the in-expectation properties.
    confidence : float
        Per-example confidence of each Monte Carlo test, in (0, 1).
    seed : int
        Root seed of every Generator the suite builds.

    Returns
    -------
    ContractReport
        When every applicable property passes.

    Raises
    ------
    ContractViolation
        Carrying the report, when any property fails.
    InputError
        On a bad argument or a compressor that declares an unknown guarantee.
    """
    if not isinstance(compressor, Compressor):
        raise InputError(
            "compressor", compressor, "an instance of convcheck.compressors.Compressor"
        )
    if getattr(compressor, "guarantee", None) not in GUARANTEES:
        raise InputError(
            "guarantee", getattr(compressor, "guarantee", None), "one of " + ", ".join(GUARANTEES)
        )
    if not (isinstance(dims, (tuple, list)) and len(dims) == 2):
        raise InputError("dims", dims, "a pair (d_min, d_max) of integers, 1 <= d_min <= d_max")
    d_min = check_int("dims", dims[0], 1)
    d_max = check_int("dims", dims[1], d_min)
    max_examples = check_int("max_examples", max_examples, 1)
    samples = check_int("monte_carlo_samples", monte_carlo_samples, 2)
    confidence = check_real("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    seed = check_int("seed", seed, 0)

    accept_lo, accept_hi = compressor.dim_range()
    lo = max(d_min, accept_lo)
    hi = d_max if accept_hi is None else min(d_max, accept_hi)
    if lo > hi:
        lo = hi = accept_lo
    suite = _Suite(compressor, lo, hi, samples, 1.0 - confidence, seed)
    config = settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )
    results = tuple(suite.run(name, config) for name in PROPERTIES)
    report = ContractReport(
        compressor=compressor.describe(),
        results=results,
        confidence=confidence,
        settings={
            "dims": (lo, hi),
            "max_examples": max_examples,
            "monte_carlo_samples": samples,
            "seed": seed,
        },
    )
    if not report.passed:
        raise ContractViolation(report)
    return report


class _Suite:
    """The properties of one compressor, each a check of one drawn example."""

    def __init__(
        self, comp: Compressor, lo: int, hi: int, samples: int, alpha: float, seed: int
    ) -> None:
        self.comp = comp
        self.lo, self.hi = lo, hi
        self.samples = samples
        self.alpha = alpha
        self.seed = seed

    # ------------------------------------------------------------ plumbing
    def applies(self, name: str) -> str:
        """Empty string if ``name`` applies, else the reason it does not."""
        c = self.comp
        contractive = c.guarantee == "contractive"
        rules = {
            "contraction": (contractive and not c.in_expectation, "not surely contractive"),
            "expected-contraction": (
                contractive and c.in_expectation,
                "not contractive in expectation",
            ),
            "unbiasedness": (c.guarantee == "unbiased", "not unbiased"),
            "variance": (c.guarantee == "unbiased", "not unbiased"),
            "absolute-bound": (c.guarantee == "absolute", "not of the absolute class"),
            "disjoint-support": (c.sparsifier, "not a sparsifier"),
            "idempotence": (c.idempotent, "not declared idempotent"),
            "scale-equivariance": (c.scale_equivariant, "not declared scale-equivariant"),
        }
        holds, reason = rules.get(name, (True, ""))
        return "" if holds else reason

    def gen(self, s: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, s])

    def run(self, name: str, config: settings) -> PropertyResult:
        description = PROPERTIES[name]
        reason = self.applies(name)
        if reason:
            return PropertyResult(name, NOT_APPLICABLE, description, reason)
        check: Callable[..., None] = getattr(self, "_" + name.replace("-", "_"))
        rows = 4 if name in ("shape-dtype", "zero", "exact-bits", "batch-equals-rows") else 1
        strategy = st.tuples(
            _batches(self.lo, self.hi, rows), st.integers(0, 2**16), st.integers(-20, 20)
        )

        @config
        @given(strategy)
        def test(case: tuple[np.ndarray, int, int]) -> None:
            X, s, j = case
            try:
                check(X, s, j)
            except _Falsified:
                raise
            except Exception as exc:  # the compressor itself crashed
                raise _Falsified(
                    f"raised {type(exc).__name__}: {exc}", f"X={_show(X)}, s={s}, j={j}"
                ) from exc

        try:
            test()
        except _Falsified as failure:
            return PropertyResult(name, FAILED, description, failure.message, failure.example)
        except Exception as exc:  # e.g. Hypothesis' Flaky for a non-reproducible failure
            return PropertyResult(name, FAILED, description, f"{type(exc).__name__}: {exc}")
        return PropertyResult(name, PASSED, description)

    def compress(self, x: np.ndarray, s: int) -> np.ndarray:
        return self.comp.compress(x, self.gen(s))

    @staticmethod
    def fail(message: str, **example: Any) -> None:
        shown = ", ".join(
            f"{k}={_show(v) if isinstance(v, np.ndarray) else repr(v)}" for k, v in example.items()
        )
        raise _Falsified(message, shown)

    def at_most(self, lhs: float, rhs: float, slack: float, what: str, **example: Any) -> None:
        if not lhs <= rhs * (1 + RTOL) + slack + ATOL:
            self.fail(f"{what}: {lhs!r} > {rhs!r} + {slack!r}", **example)

    # ------------------------------------------------------------ structure
    def _shape_dtype(self, X: np.ndarray, s: int, j: int) -> None:
        for dtype in (np.float64, np.float32):
            for x in (X[0].astype(dtype), X.astype(dtype)):
                out = self.compress(x, s)
                if not isinstance(out, np.ndarray) or out.shape != x.shape or out.dtype != dtype:
                    got = (type(out).__name__, getattr(out, "shape", None),
                           getattr(out, "dtype", None))
                    self.fail(f"input {x.shape} {x.dtype} gave {got}", x=x, s=s)

    def _zero(self, X: np.ndarray, s: int, j: int) -> None:
        for x in (np.zeros(X.shape[1]), np.zeros(X.shape)):
            out = self.compress(x, s)
            if np.any(out != 0):
                self.fail("C(0) != 0", x=x, s=s, output=out)

    # ------------------------------------------------------------ guarantees
    def _contraction(self, X: np.ndarray, s: int, j: int) -> None:
        x = X[0]
        d = x.shape[0]
        delta = float(self.comp.delta(d))
        if not 0 < delta <= 1:
            self.fail(f"delta(d={d}) = {delta!r} outside (0, 1]", x=x)
        out = self.compress(x, s)
        lhs = float(np.sum(np.square(out - x)))
        self.at_most(lhs, (1 - delta) * float(np.sum(np.square(x))), 0.0,
                     f"‖C(x) − x‖² > (1 − δ)‖x‖² with δ={delta!r}", x=x, s=s, output=out)

    def monte_carlo(self, x: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per coordinate mean and sample std of ``C(x)``, and the per-draw ``‖C(x) − x‖²``."""
        d = x.shape[0]
        gen = self.gen(s)
        total = np.zeros(d)
        errors = np.empty(self.samples)
        shift = None
        square = np.zeros(d)
        done = 0
        while done < self.samples:
            n = min(self.samples - done, max(1, _MC_CHUNK // d))
            out = self.comp.compress(np.tile(x, (n, 1)), gen)
            if shift is None:  # shifted sums for a stable variance
                shift = out[0].copy()
            total += (out - shift).sum(axis=0)
            square += np.square(out - shift).sum(axis=0)
            errors[done : done + n] = np.square(out - x).sum(axis=1)
            done += n
        centred = total / self.samples
        var = np.maximum(square / self.samples - np.square(centred), 0.0)
        var *= self.samples / (self.samples - 1)
        return shift + centred, np.sqrt(var), errors

    def mean_error_at_most(self, x: np.ndarray, s: int, factor: float, what: str) -> None:
        _, _, errors = self.monte_carlo(x, s)
        z = NormalDist().inv_cdf(1 - self.alpha)
        standard_error = float(np.std(errors, ddof=1)) / math.sqrt(self.samples)
        self.at_most(float(errors.mean()), factor * float(np.sum(np.square(x))),
                     z * standard_error, what, x=x, s=s)

    def _expected_contraction(self, X: np.ndarray, s: int, j: int) -> None:
        delta = float(self.comp.delta(X.shape[1]))
        if not 0 < delta <= 1:
            self.fail(f"delta(d={X.shape[1]}) = {delta!r} outside (0, 1]", x=X[0])
        self.mean_error_at_most(
            X[0], s, 1 - delta, f"mean ‖C(x) − x‖² above (1 − δ)‖x‖², δ={delta!r}"
        )

    def _unbiasedness(self, X: np.ndarray, s: int, j: int) -> None:
        x = X[0]
        mean, std, _ = self.monte_carlo(x, s)
        z = NormalDist().inv_cdf(1 - self.alpha / (2 * x.shape[0]))
        allowed = z * std / math.sqrt(self.samples)
        # A coordinate whose draws were all equal may still carry an unseen rare event of
        # probability p <= p̄ = ln(2d/α)/n (confidence 1 − α/(2d)); its bias is then at most
        # sqrt(p̄/(1 − p̄))·σ_i with σ_i² <= E‖C(x) − x‖² <= ω‖x‖². For ω = 0: exact match.
        rate = math.log(2 * x.shape[0] / self.alpha) / self.samples
        omega = float(self.comp.omega(x.shape[0]))
        norm2 = float(np.sum(np.square(x)))
        rare = math.sqrt(rate / (1 - rate) * omega * norm2) if rate < 1 else math.inf
        allowed = np.where(std > 0, allowed, rare)
        allowed += RTOL * (np.abs(x) + np.abs(mean)) + ATOL
        gap = np.abs(mean - x)
        bad = np.flatnonzero(~(gap <= allowed))
        if bad.size:
            i = int(bad[np.argmax(gap[bad] - allowed[bad])])
            self.fail(
                f"coordinate {i}: Monte Carlo mean {float(mean[i])!r} vs x_i = {float(x[i])!r} "
                f"(allowed gap {float(allowed[i])!r}, sample std {float(std[i])!r}, "
                f"{self.samples} draws, Bonferroni z = {z:.3f})",
                x=x,
                s=s,
            )

    def _variance(self, X: np.ndarray, s: int, j: int) -> None:
        omega = float(self.comp.omega(X.shape[1]))
        if not omega >= 0:
            self.fail(f"omega(d={X.shape[1]}) = {omega!r} is not >= 0", x=X[0])
        self.mean_error_at_most(X[0], s, omega, f"mean ‖C(x) − x‖² above ω‖x‖², ω={omega!r}")

    def _absolute_bound(self, X: np.ndarray, s: int, j: int) -> None:
        x = X[0]
        tau = np.asarray(self.comp.tau(x.shape[0]), dtype=np.float64)
        if tau.shape != x.shape or np.any(~(tau >= 0)):
            self.fail(f"tau(d) is not a nonnegative array of shape {x.shape}", x=x, tau=tau)
        out = self.compress(x, s)
        error = np.abs(out - x)
        bad = np.flatnonzero(~(error <= tau * (1 + RTOL) + ATOL))
        if bad.size:
            i = int(bad[0])
            self.fail(f"|C(x)_{i} − x_{i}| = {float(error[i])!r} > τ_{i} = {float(tau[i])!r}",
                      x=x, s=s)
        self.at_most(float(np.sum(np.square(error))), float(np.sum(np.square(x))), 0.0,
                     "‖C(x) − x‖² > ‖x‖²", x=x, s=s, output=out)

    # ------------------------------------------------------------ exact structure
    def _disjoint_support(self, X: np.ndarray, s: int, j: int) -> None:
        for dtype in (np.float64, np.float32):
            x = X[0].astype(dtype)
            out = self.compress(x, s)
            bad = np.flatnonzero((out != 0) & (out != x))
            if bad.size:
                i = int(bad[0])
                self.fail(f"C(x)_{i} = {float(out[i])!r} is neither 0 nor x_{i} = "
                          f"{float(x[i])!r}", x=x, s=s)

    def _idempotence(self, X: np.ndarray, s: int, j: int) -> None:
        x = X[0]
        once = self.compress(x, s)
        twice = self.compress(once, s + 1)
        if not np.array_equal(once, twice):
            self.fail("C(C(x)) != C(x)", x=x, s=s, once=once, twice=twice)

    def _scale_equivariance(self, X: np.ndarray, s: int, j: int) -> None:
        a = 2.0**j
        for dtype in (np.float64, np.float32):
            x = X[0].astype(dtype)
            scaled = self.compress((x * dtype(a)).astype(dtype), s)
            expected = self.compress(x, s) * dtype(a)
            if not np.array_equal(scaled, expected):
                self.fail(f"C(a x) != a C(x) for a = 2^{j} ({np.dtype(dtype)})", x=x, s=s)

    def _exact_bits(self, X: np.ndarray, s: int, j: int) -> None:
        d = X.shape[1]
        for dtype in (np.float64, np.float32):
            out = self.compress(X.astype(dtype), s)
            batch = np.asarray(self.comp.bits(out))
            if batch.shape != (X.shape[0],) or not np.issubdtype(batch.dtype, np.integer):
                self.fail(f"bits of an (M, d) batch gave {batch!r}, not {X.shape[0]} integers",
                          X=X, s=s)
            for i, row in enumerate(out):
                bits = self.comp.bits(row)
                if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool):
                    self.fail(f"bits of one row gave {bits!r}, not an int", X=X, s=s)
                message = self.comp.encode(row)
                if bits != message.nbits:
                    self.fail(f"bits(c) = {bits} but encode(c).nbits = {message.nbits}",
                              c=row, X=X, s=s)
                if len(message.payload) != -(-message.nbits // 8) or message.d != d:
                    self.fail(f"payload of {len(message.payload)} bytes, d={message.d} for "
                              f"nbits={message.nbits}, d={d}", c=row)
                if batch[i] != bits:
                    self.fail(f"bits of the batch, row {i}: {batch[i]} != bits of the row {bits}",
                              X=X, s=s)

    def _round_trip(self, X: np.ndarray, s: int, j: int) -> None:
        for dtype in (np.float64, np.float32):
            c = self.compress(X[0].astype(dtype), s)
            back = self.comp.decode(self.comp.encode(c))
            well_formed = isinstance(back, np.ndarray) and back.dtype == np.float64
            if not well_formed or back.shape != c.shape:
                self.fail(f"decode gave {back!r}, not a float64 array of shape {c.shape}", c=c)
            exact = np.array_equal(back, c.astype(np.float64))
            wire32 = self.comp.value_bits == 32 and np.array_equal(
                back, c.astype(np.float32).astype(np.float64)
            )
            if not (exact or wire32):
                bad = np.flatnonzero(back != c)
                self.fail(f"decode(encode(c)) != c at coordinates {bad[:8].tolist()} "
                          f"(value_bits={self.comp.value_bits})", c=c, decoded=back)

    def _determinism(self, X: np.ndarray, s: int, j: int) -> None:
        x = X[0]
        if self.comp.randomized:
            first, second = self.compress(x, s), self.compress(x, s)
            if not np.array_equal(first, second):
                self.fail("the same seed gave different outputs", x=x, s=s)
            try:
                self.comp.compress(x)
            except InputError as exc:
                if exc.field != "rng":
                    self.fail(f"without rng: InputError naming {exc.field!r}, not 'rng'", x=x)
            else:
                self.fail("a randomized compressor ran without a Generator", x=x)
            return
        gen = self.gen(s)
        state = gen.bit_generator.state
        with_rng, without = self.comp.compress(x, gen), self.comp.compress(x)
        if not np.array_equal(with_rng, without):
            self.fail("a deterministic compressor's output depends on rng", x=x, s=s)
        if gen.bit_generator.state != state:
            self.fail("a deterministic compressor consumed the Generator", x=x, s=s)

    def _batch_equals_rows(self, X: np.ndarray, s: int, j: int) -> None:
        for dtype in (np.float64, np.float32):
            Xd = X.astype(dtype)
            batch = self.compress(Xd, s)
            gen = self.gen(s)
            rows = np.stack([self.comp.compress(row, gen) for row in Xd])
            if not np.array_equal(batch, rows):
                self.fail(f"batched != row by row ({np.dtype(dtype)})", X=Xd, s=s)
