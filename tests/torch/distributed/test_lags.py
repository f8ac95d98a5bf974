"""LAGS with overlap: same iterates and bits as the simulation, messages started during
backprop (timestamps), and counts from the measured cost model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from convcheck.torch.algorithms import select_layer_counts

from convcheck.torch.distributed.lags import backward_times, fit_cost
from tests.torch.distributed.conftest import WORLD, rank_states
from tests.torch.distributed.helpers import simulate
from tests.torch.distributed.test_allgather import received


@pytest.mark.parametrize(("label", "index", "slug"), [("lags", 6, "lags"),
                                                      ("lags measured", 7, "lags-measured")])
def test_lags_equals_the_simulation(scenario, label, index, slug) -> None:
    """Per-layer exchanges from gradient hooks (alternately during and after backprop) give
    the simulation's LAGS step to float64 rounding (autograd through the module instead of
    torch.func), with the same per-layer counts; the uplink bits exactly."""
    run = next(r for r in scenario["results"]["runs"] if r["label"] == label)
    states = rank_states(scenario["checkpoints"], index, slug)
    counts = states[0]["tensors"]["counts"].tolist()
    assert counts == run["report"]["counts"] == run["algorithm"]["params"]["k"]
    reference = simulate(scenario["config"], label, WORLD, states[0]["steps"], counts=counts)
    scale = float(reference.state.theta.abs().max())
    for m, state in enumerate(states):
        assert torch.equal(state["tensors"]["counts"], states[0]["tensors"]["counts"])
        gap = float((state["tensors"]["theta"] - reference.state.theta).abs().max())
        assert gap < 1e-12 * scale
        errors = reference.state.errors[m]
        assert float((state["tensors"]["errors"][0] - errors).abs().max()) < 1e-12 * scale
        expected = reference.ledger.to_ledger()
        assert np.array_equal(state["ledger"]["up"].numpy(), expected.up)
        assert np.array_equal(state["ledger"]["down"].numpy(), received(expected.up))


def test_layer_messages_start_before_backward_ends(scenario) -> None:
    """In an overlapped step the first all-gather is launched before the last gradient is
    ready (i.e. before backprop ends), and every launch precedes ``backward()``'s return; in a
    non-overlapped step every launch follows it. The messages leave in backward order."""
    report = next(r for r in scenario["results"]["runs"] if r["label"] == "lags")["report"]
    assert report["steps_timed"]["on"] >= 8 and report["steps_timed"]["off"] >= 8
    timelines = report["timelines"]
    assert {t["overlap"] for t in timelines} == {True, False}
    for timeline in timelines:
        layers = timeline["layers"]
        assert len(layers) == 4  # two weights, two biases
        launched = [layer["launched"] for layer in layers]
        ready = [layer["ready"] for layer in layers]
        assert launched == sorted(launched)
        assert timeline["backward_start"] < min(ready) <= max(ready) < timeline["backward_end"]
        if timeline["overlap"]:
            assert min(launched) < max(ready)  # communication started during backprop
            assert max(launched) < timeline["backward_end"]
            assert all(r <= s for r, s in zip(ready, launched, strict=True))
        else:
            assert min(launched) > timeline["backward_end"]
        assert timeline["finished"] > max(launched)


def test_measured_cost_model_chose_the_counts(scenario) -> None:
    """The measured model (positive backward times, a non-negative fit) reproduces the counts
    through select_layer_counts, and the counts are at least the floor."""
    run = next(r for r in scenario["results"]["runs"] if r["label"] == "lags measured")
    calibration = run["report"]["calibration"]
    sizes = list(scenario["results"]["model"]["layers"].values())
    times = calibration["backward_times_s"]
    assert len(times) == len(sizes) and all(t >= 0 for t in times) and sum(times) > 0
    assert calibration["alpha_c_s"] >= 0 and calibration["beta_c_s_per_bit"] >= 0
    counts = select_layer_counts(sizes, times, calibration["alpha_c_s"],
                                 calibration["beta_c_s_per_bit"], floor_ratio=0.02)
    assert list(counts) == calibration["counts"] == run["report"]["counts"]
    assert all(k >= max(1, int(0.02 * d)) for k, d in zip(counts, sizes, strict=True))


def test_fit_cost_recovers_a_line_and_clamps_at_zero() -> None:
    bits = np.array([10.0, 100.0, 1000.0, 10000.0])
    alpha_c, beta_c = fit_cost(bits, 2e-4 + 3e-9 * bits)
    assert abs(alpha_c - 2e-4) < 1e-12 and abs(beta_c - 3e-9) < 1e-15
    assert fit_cost(bits, 1e-3 - 1e-8 * bits)[1] == 0.0  # a decreasing cloud: β_c = 0


def test_backward_times_from_ready_times() -> None:
    """Layers 0..3 ready at 0.9, 0.6, 0.5, 0.2 after a backward that started at 0: t = (0.3,
    0.1, 0.3, 0.2), so that Σ_{j≥l} t_j is when layer l was ready; out of order → 0."""
    t = backward_times(np.array([0.9, 0.6, 0.5, 0.2]), 0.0)
    assert np.allclose(t, [0.3, 0.1, 0.3, 0.2])
    assert np.allclose(np.cumsum(t[::-1])[::-1], [0.9, 0.6, 0.5, 0.2])
    assert backward_times(np.array([0.5, 0.6]), 0.0).tolist() == [0.0, 0.6]
