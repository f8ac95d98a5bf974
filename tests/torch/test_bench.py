"""The timing script: interleaved medians, and the figures' definitions on a tiny case."""

from __future__ import annotations

import torch

from convcheck.torch.bench import bench_topk, timed


def test_timed_interleaves_and_counts_calls() -> None:
    calls: list[str] = []
    seconds = timed({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                    torch.device("cpu"), repeats=3, warmup=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert set(seconds) == {"a", "b"} and all(v >= 0 for v in seconds.values())


def test_top_k_figures_are_consistent() -> None:
    (row,) = bench_topk(torch.device("cpu"), 2, [1000])
    assert row["k"] == 10 and row["input_bytes"] == 8 * 1000 * 4
    assert abs(row["top_k_GBps"] * 1e9 * row["top_k_s"] - row["input_bytes"]) < 1e-6
    fraction = row["top_k_GBps"] / row["copy_bandwidth_GBps"]
    assert abs(row["top_k_fraction_of_copy_bandwidth"] - fraction) < 1e-12
