"""The experiments behind docs/async-results.md (slow: they are the figures)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convcheck.experiments import asynchronous as experiments


@pytest.mark.slow
def test_special_cases_all_hold(tmp_path, capsys):
    assert experiments.main(["special", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "async-special.json").read_text())
    assert all(row["holds"] for row in document["result"]), document["result"]
    assert "| special case |" in capsys.readouterr().out


@pytest.mark.slow
def test_staleness_statistics_quick():
    result = experiments.staleness_statistics(quick=True)
    for row in result["equal"]:
        assert abs(row["mean"] - row["expected"]) < 0.05 * max(1, row["expected"])
    assert all(row["respected"] for row in result["tau_max"])
    lognormal = result["heterogeneous"][1]
    assert np.all(np.diff(lognormal["per_worker_mean"]) > 0) and lognormal["skewness"] > 1


@pytest.mark.slow
def test_stale_slopes_quick_sparse_tracks_dense(tmp_path):
    result = experiments.stale_slopes(quick=True)
    for row in result["rows"]:
        assert -0.75 < row["slope"] < -0.35
        if row["slope_minus_dense_ci"] is not None:
            assert abs(np.mean(row["slope_minus_dense_ci"])) < 0.1
    assert experiments.plot("stale", result, str(tmp_path))


@pytest.mark.slow
def test_dgs_comparison_quick(shared_data):
    result = experiments.dgs_comparison(quick=True, datasets=("phishing",))
    assert len(result["rows"]) == 3
    for row in result["rows"]:
        assert row["final_accuracy"] > 0.85
    text = experiments.format_markdown("dgs", result)
    assert "phishing" in text and "bits total" in text
