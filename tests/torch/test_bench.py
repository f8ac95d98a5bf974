"""The timing script: interleaved medians, and the figures' definitions on tiny cases."""

from __future__ import annotations

import pytest
import torch

from convcheck.torch import bench
from convcheck.torch.bench import bench_topk, timed
from convcheck.torch.compressors import top_k


def test_timed_interleaves_and_counts_calls() -> None:
    calls: list[str] = []
    seconds = timed({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                    torch.device("cpu"), repeats=3, warmup=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert set(seconds) == {"a", "b"} and all(v >= 0 for v in seconds.values())


def test_top_k_figures_are_consistent() -> None:
    (row,) = bench_topk(torch.device("cpu"), 2, [(8, 1000)])
    assert row["k"] == 10 and row["input_bytes"] == 8 * 1000 * 4
    assert abs(row["copy_bandwidth_GBps"] * 1e9 * row["copy_s"] - 2 * row["input_bytes"]) < 1e-3
    for name in ("ours", "radix", "sort", "previous", "torch_topk", "ours_tied", "previous_tied"):
        fraction = row["copy_s"] / (2 * row[f"{name}_s"])
        assert abs(row[f"{name}_fraction_of_copy_bandwidth"] - fraction) < 1e-12
    assert abs(row["ours_over_torch_topk"] - row["ours_s"] / row["torch_topk_s"]) < 1e-12


def test_the_baseline_and_the_strategies_compute_the_same_top_k() -> None:
    x = torch.randn(4, 3000, generator=torch.Generator().manual_seed(0)).round(decimals=1)
    expected = top_k(x, 30)
    assert torch.equal(bench.previous_top_k(x, 30), expected)
    for strategy in ("radix", "sort"):
        assert torch.equal(bench.top_k_by(strategy, x, 30), expected)


def test_every_uplink_compression_runs() -> None:
    G = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    for label in bench.STEP_ALGORITHMS:
        if label != "dense SGD":
            assert bench.compress_uplink(label, [20, 30], G).shape == G.shape


def test_sizes_and_device_tag() -> None:
    assert (1, 10**8) not in bench.topk_sizes(torch.device("cpu"), quick=False)
    assert bench.topk_sizes(torch.device("cpu"), quick=True) == [(8, 10**5), (8, 10**6)]
    torch.set_num_threads(1)
    assert bench.device_tag(torch.device("cpu")) == "cpu-1thread"


@pytest.mark.slow
def test_step_table_on_the_mlp() -> None:
    table = bench.bench_steps(torch.device("cpu"), 1, "mlp")
    labels = [row["label"] for row in table["steps"]]
    assert labels == list(bench.STEP_ALGORITHMS) and table["D"] == 199_210
    assert table["steps"][0]["over_dense"] == 1.0


def test_targets_are_read_off_the_tables() -> None:
    results = {
        "topk": [
            {"rows": 8, "d": 10**5, "ours_fraction_of_copy_bandwidth": 0.1,
             "ours_over_torch_topk": 0.9},
            {"rows": 8, "d": 10**7, "ours_fraction_of_copy_bandwidth": 0.3,
             "ours_over_torch_topk": 0.5},
            {"rows": 64, "d": 10**6, "ours_fraction_of_copy_bandwidth": 0.01,
             "ours_over_torch_topk": 9.0},
        ],
        "step": [{"model": "resnet18", "steps": [
            {"label": "dense SGD", "over_dense": 1.0}, {"label": "LAGS 1%", "over_dense": 1.2}]}],
    }
    met = {t["target"]: t["met"] for t in bench.targets(results)}
    assert met == {
        "top-k 8x1e+05: time / torch.topk's <= 1": True,
        "top-k 8x1e+07: fraction of copy bandwidth >= 0.25": True,
        "top-k 8x1e+07: time / torch.topk's <= 1/3": False,
        "step resnet18 LAGS 1%: time / dense SGD's <= 1.15": False,
    }
    assert bench.parse_sizes("8x100000,1x1e8") == [(8, 10**5), (1, 10**8)]
