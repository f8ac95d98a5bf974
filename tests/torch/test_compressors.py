"""Torch compressors against the numpy ones on identical inputs: values, masks, bits."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcheck import compressors as ref
from convcheck import encoding
from convcheck.errors import InputError
from convcheck.torch import compressors as tc
from convcheck.torch.select import KEY_DTYPES, STRATEGIES, magnitude_keys, top_k_mask_keys
from tests.torch.host_sync import host_syncs

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None)

# small integers make ties and zeros common
tied_rows = hnp.arrays(
    np.float64, st.tuples(st.integers(1, 4), st.integers(1, 40)),
    elements=st.integers(-3, 3).map(float),
)
real_rows = hnp.arrays(
    np.float64, st.tuples(st.integers(1, 4), st.integers(1, 40)),
    elements=st.floats(-1e3, 1e3, allow_nan=False, width=32),
)
dtypes = st.sampled_from([np.float32, np.float64])


def same(spec: ref.Compressor, X: np.ndarray, out: torch.Tensor) -> None:
    """Torch output equals numpy's bit for bit, and the bits agree row by row."""
    expected = spec.compress(X)
    assert out.dtype == torch.from_numpy(X).dtype
    np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(tc.to_torch(spec).bits(out), spec.bits(expected))


@FAST
@given(tied_rows, st.integers(1, 40), dtypes)
def test_top_k_equals_numpy_with_ties(X: np.ndarray, k: int, dtype) -> None:
    X = X.astype(dtype)
    spec = ref.TopK(min(k, X.shape[1]))
    same(spec, X, tc.to_torch(spec).compress(torch.from_numpy(X)))


@FAST
@given(real_rows, st.floats(0.01, 1.0), dtypes)
def test_top_k_ratio_equals_numpy(X: np.ndarray, ratio: float, dtype) -> None:
    X = X.astype(dtype)
    spec = ref.TopK(ratio=ratio)
    same(spec, X, tc.to_torch(spec).compress(torch.from_numpy(X)))


def test_top_k_ties_go_to_lowest_index() -> None:
    x = torch.tensor([1.0, -2.0, 2.0, -1.0, 2.0, -2.0])
    assert tc.top_k(x[None], 2)[0].tolist() == [0, -2.0, 2.0, 0, 0, 0]
    assert tc.top_k(x[None], 4)[0].tolist() == [0, -2.0, 2.0, 0, 2.0, -2.0]
    # long rows of equal values: torch.topk alone would pick arbitrary indices
    ones = torch.ones(3, 5000)
    kept = tc.top_k_mask(ones, 700)
    assert kept.sum(dim=1).tolist() == [700] * 3
    assert bool(kept[:, :700].all()) and not bool(kept[:, 700:].any())


@FAST
@given(real_rows, st.floats(0.0, 500.0), dtypes)
def test_threshold_scalar_equals_numpy(X: np.ndarray, tau: float, dtype) -> None:
    X = X.astype(dtype)
    spec = ref.Threshold(tau)
    same(spec, X, tc.to_torch(spec).compress(torch.from_numpy(X)))


@FAST
@given(real_rows, dtypes, st.randoms(use_true_random=False))
def test_threshold_vector_at_the_values_themselves(X: np.ndarray, dtype, random) -> None:
    """τ_i equal to |x_i|, or one float64 ulp below or above it: the strict comparison must
    agree with numpy's float64 comparison even where τ is not a float32."""
    X = X.astype(dtype)
    base = np.abs(X[0]).astype(np.float64)
    nudge = np.array([random.choice([-1, 0, 1]) for _ in base])
    below, above = np.nextafter(base, -1), np.nextafter(base, 1e9)
    tau = np.maximum(np.where(nudge < 0, below, np.where(nudge > 0, above, base)), 0.0)
    spec = ref.Threshold(tau)
    same(spec, X, tc.to_torch(spec).compress(torch.from_numpy(X)))


def test_round_down_to_float32() -> None:
    tau = torch.tensor([0.1, 1.0, 3e39, np.inf, 0.0], dtype=torch.float64)
    low = tc.round_down_to(tau, torch.float32)
    assert low.dtype == torch.float32
    assert bool((low.double() <= tau).all())
    assert low[1] == 1.0 and low[3] == np.inf and low[4] == 0.0
    assert low[2] == torch.finfo(torch.float32).max
    # the next float32 above is already above tau
    up = torch.nextafter(low[:3], torch.full((3,), np.inf, dtype=torch.float32))
    assert bool((up.double() > tau[:3]).all())


@FAST
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4), st.data(), dtypes)
def test_layer_top_k_equals_numpy(sizes: list[int], data, dtype) -> None:
    d = sum(sizes)
    X = data.draw(hnp.arrays(np.float64, (data.draw(st.integers(1, 3)), d),
                             elements=st.integers(-3, 3).map(float))).astype(dtype)
    k = [data.draw(st.integers(1, s)) for s in sizes]
    spec = ref.LayerTopK(sizes, k)
    same(spec, X, tc.to_torch(spec).compress(torch.from_numpy(X)))


@FAST
@given(real_rows, dtypes)
def test_scaled_sign_equals_numpy_to_summation_order(X: np.ndarray, dtype) -> None:
    X = X.astype(dtype)
    spec = ref.ScaledSign()
    out = tc.to_torch(spec).compress(torch.from_numpy(X))
    expected = spec.compress(X)
    assert np.array_equal(np.signbit(out.numpy()), np.signbit(expected))
    rtol = 4 * X.shape[1] * np.finfo(dtype).eps
    np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=0)
    np.testing.assert_array_equal(tc.to_torch(spec).bits(out), spec.bits(expected))


def test_scaled_sign_equal_magnitudes_is_exact() -> None:
    x = torch.tensor([[0.1, -0.1, 0.1, 0.1, -0.1, 0.1, 0.1]], dtype=torch.float64)
    assert torch.equal(tc.scaled_sign(x), x)


@FAST
@given(real_rows, dtypes)
def test_identity_equals_numpy(X: np.ndarray, dtype) -> None:
    X = X.astype(dtype)
    same(ref.Identity(), X, tc.to_torch(ref.Identity()).compress(torch.from_numpy(X)))


@FAST
@given(st.integers(1, 4), st.integers(1, 30), st.integers(0, 2**31), st.booleans(), dtypes)
def test_rand_k_equals_numpy_given_the_mask(M: int, d: int, seed: int, scaled: bool, dtype) -> None:
    """numpy and torch streams differ, so compare given the same kept coordinates: the
    coordinates numpy chose (inputs without zeros) applied by torch give numpy's output."""
    rng = np.random.default_rng(seed)
    X = (rng.uniform(0.5, 2.0, (M, d)) * rng.choice([-1.0, 1.0], (M, d))).astype(dtype)
    spec = ref.RandK(ratio=0.3, scaled=scaled)
    expected = spec.compress(X, np.random.default_rng(seed))
    mask = torch.from_numpy(expected != 0)
    out = tc.to_torch(spec).apply(torch.from_numpy(X), mask)
    np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(tc.to_torch(spec).bits(out), spec.bits(expected))


def test_rand_k_draws() -> None:
    """k per row, seeded, a batch consumes the generator as its rows would."""
    c = tc.make_compressor("rand-k", k=5)
    X = torch.arange(1.0, 61.0).reshape(3, 20)
    first = c.compress(X, torch.Generator().manual_seed(3))
    assert (first != 0).sum(dim=1).tolist() == [5, 5, 5]
    assert torch.equal(first, c.compress(X, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, c.compress(X, torch.Generator().manual_seed(4)))
    g = torch.Generator().manual_seed(3)
    rows = torch.stack([c.compress(X[m], g) for m in range(3)])
    assert torch.equal(rows, first)
    with pytest.raises(InputError, match="generator"):
        c.compress(X)


def test_rand_k_is_uniform_and_scaled_unbiased() -> None:
    """Inclusion frequency k/d per coordinate, and E C(x) = x for the scaled version (fixed
    seed; bounds at 5 standard deviations)."""
    d, k, draws = 10, 3, 20000
    x = torch.arange(1.0, d + 1.0, dtype=torch.float64)
    c = tc.make_compressor("rand-k", k=k, scaled=True)
    out = c.compress(x.expand(draws, d).contiguous(), torch.Generator().manual_seed(0))
    frequency = (out != 0).double().mean(dim=0)
    p = k / d
    assert float((frequency - p).abs().max()) < 5 * np.sqrt(p * (1 - p) / draws)
    spread = x * np.sqrt(d / k - 1) / np.sqrt(draws)
    assert bool(((out.mean(dim=0) - x).abs() < 5 * spread).all())


def test_compress_flat_on_a_parameter_tensor() -> None:
    p = torch.tensor([[3.0, -1.0, 0.5], [-4.0, 2.0, 0.0]])
    out = tc.make_compressor("top-k", k=2).compress_flat(p)
    assert out.tolist() == [[3.0, 0.0, 0.0], [-4.0, 0.0, 0.0]]


def test_bad_input() -> None:
    top = tc.make_compressor("top-k", k=3)
    with pytest.raises(InputError, match="'x'"):
        top.compress(torch.zeros(2, 2, 2))
    with pytest.raises(InputError, match="'x'"):
        top.compress(torch.zeros(4, dtype=torch.int64))
    with pytest.raises(InputError, match="d in"):
        top.compress(torch.zeros(2))
    with pytest.raises(InputError, match="'k'"):
        tc.make_compressor("top-k", k=0)


def test_constants_come_from_the_numpy_spec() -> None:
    c = tc.make_compressor("top-k", ratio=0.25)
    assert c.delta(100) == 0.25 and c.params() == ref.TopK(ratio=0.25).params()
    assert tc.make_compressor("rand-k", k=4, scaled=True).omega(20) == 4.0
    assert c.describe()["backend"] == "torch"


def test_a_compressor_without_torch_kernel_runs_its_numpy_kernel() -> None:
    """QSGD (and any plug-in compressor) runs on tensors through its numpy kernel: outputs are
    valid QSGD outputs (the numpy codec encodes and decodes them exactly) on the input's device
    and dtype, and a subclass that keeps a built-in kernel gets the native one."""
    from convcheck.compressors import QSGD, TopK

    qsgd = tc.make_compressor("qsgd", s=2)
    assert isinstance(qsgd, tc.NumpyKernel)
    x = torch.randn((3, 10), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = qsgd.compress(x, torch.Generator().manual_seed(1))
    assert out.dtype == x.dtype and out.shape == x.shape
    spec = QSGD(2)
    for row in out.numpy():
        np.testing.assert_array_equal(spec.decode(spec.encode(row)), row)

    class Half(TopK):
        name = "half-top-k"

    assert isinstance(tc.to_torch(Half(ratio=0.5)), tc.TopK)

    class Odd(TopK):
        name = "odd"

        def compress_rows(self, X, rng):
            return X * 0

    assert isinstance(tc.to_torch(Odd(k=1)), tc.NumpyKernel)


@FAST
@given(st.integers(1, 5000), st.data())
def test_sparse_bits_on_tensors_equal_the_encoding(d: int, data) -> None:
    nnz = data.draw(st.lists(st.integers(0, d), min_size=1, max_size=8))
    counts = torch.tensor(nnz)
    for value_bits in (32, 64):
        got = tc.sparse_bits_of_counts(counts, d, encoding.index_bits(d), value_bits)
        assert got.dtype == torch.int64
        assert got.tolist() == encoding.sparse_bits(np.array(nnz), d, value_bits).tolist()


def test_bits_stay_on_the_device_until_asked() -> None:
    spec = ref.LayerTopK([3, 40, 5], [1, 10, 5])
    X = torch.randn(4, 48, generator=torch.Generator().manual_seed(0))
    out = tc.to_torch(spec).compress(X)
    on_device = tc.to_torch(spec).bits_tensor(out)
    assert isinstance(on_device, torch.Tensor) and on_device.dtype == torch.int64
    assert on_device.tolist() == spec.bits(out.numpy()).tolist()
    one = tc.to_torch(spec).bits_tensor(out[0])
    assert one.ndim == 0 and int(one) == tc.to_torch(spec).bits(out[0]) == spec.bits(out[0].numpy())
    for name, params in (("identity", {}), ("sign", {}), ("top-k", {"k": 3})):
        c = tc.make_compressor(name, **params)
        assert c.bits_tensor(c.compress(X)).tolist() == c.spec.bits(
            c.spec.compress(X.numpy())).tolist()


def test_apply_mask_keeps_bits_and_drops_to_positive_zero() -> None:
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        x = torch.tensor([-0.0, -1.5, np.inf, -np.inf, 2.0, -3.0], dtype=dtype)
        mask = torch.tensor([True, True, True, False, False, False])
        out = tc.apply_mask(x, mask)
        word = KEY_DTYPES[dtype]
        assert torch.equal(out.view(word)[:3], x.view(word)[:3])  # -0.0 kept as -0.0
        assert out.view(word)[3:].tolist() == [0, 0, 0]  # dropped: +0.0
        assert tc.apply_mask(x, mask, 2.0)[1].item() == -3.0


def test_no_host_synchronization_in_the_source() -> None:
    """Only the host boundary of bit pricing reads back, and the numpy kernel of a compressor
    without a torch kernel (it runs on the host by definition)."""
    allow = {"_to_host", "NumpyKernel.compress_rows", "NumpyKernel.bits_rows"}
    assert host_syncs([tc], allow=allow) == []


def every_compressor(d: int) -> list[tc.TorchCompressor]:
    """One of each torch compressor for dimension ``d``."""
    return [
        tc.make_compressor("identity"),
        tc.make_compressor("top-k", ratio=0.01),
        tc.make_compressor("rand-k", ratio=0.01),
        tc.make_compressor("rand-k", ratio=0.01, scaled=True),
        tc.make_compressor("threshold", tau=0.5),
        tc.to_torch(ref.Threshold(np.linspace(0.0, 1.0, d))),
        tc.to_torch(ref.LayerTopK([d // 2, d - d // 2 - 10, 10], ratio=0.05)),
        tc.make_compressor("sign"),
    ]


def every_compression(device: torch.device) -> Callable[[], None]:
    """A function that compresses and prices one batch with each compressor (and selects
    with every strategy), its data and compressors made beforehand on ``device``."""
    d = 4096
    X = torch.randn(8, d, generator=torch.Generator().manual_seed(0)).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    compressors = every_compressor(d)
    keys = magnitude_keys(X)

    def compress() -> None:
        for c in compressors:
            c.bits_tensor(c.compress(X, generator))
        for strategy in STRATEGIES:
            top_k_mask_keys(keys, [1000, d - 1000], [10, 30], strategy)

    return compress


def test_every_compressor_runs_on_cpu() -> None:
    """The body of the CUDA sync test, on CPU (so that it is known to run)."""
    every_compression(torch.device("cpu"))()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU visible)")
def test_compressors_do_not_synchronize_on_cuda() -> None:
    """Every kernel and the device bit count run under sync-debug mode "error" (after a
    warm-up round, which copies the data and a vector τ to the device once)."""
    compress = every_compression(torch.device("cuda"))
    compress()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        compress()
        compress()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU visible)")
def test_cuda_results_equal_cpu_results() -> None:
    """Same masks and outputs on both devices, both strategies."""
    X = torch.randn(8, 30000, generator=torch.Generator().manual_seed(1)).round(decimals=2)
    for c in every_compressor(X.shape[1]):
        if c.randomized:
            continue
        on_gpu = c.compress(X.cuda())
        assert torch.equal(on_gpu.cpu(), c.compress(X))
        assert torch.equal(c.bits_tensor(on_gpu).cpu(), c.bits_tensor(c.compress(X)))
    keys = magnitude_keys(X)
    for strategy in ("radix", "sort"):
        on_gpu = top_k_mask_keys(keys.cuda(), [100, 29000, 900], [3, 290, 900], strategy)
        assert torch.equal(on_gpu.cpu(), top_k_mask_keys(keys, [100, 29000, 900], [3, 290, 900]))
