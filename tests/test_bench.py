"""The benchmark's quick mode: its rows, its loop reference and the agreement check."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from convcheck import bench
from convcheck.algorithms import make_algorithm
from convcheck.errors import InputError

TINY = (bench.Case(3, 12, 90),)
KEYS = {
    "workers", "dim", "samples", "layout", "stored_entries", "algorithm", "algorithm_params",
    "rounds", "repeats", "grad_s", "round_s", "ratio", "loop_rounds", "loop_round_s", "speedup",
    "max_rel_diff", "final_suboptimality",
}


@pytest.fixture(scope="module")
def quick_rows() -> list[dict]:
    return bench.benchmark(bench.QUICK_GRID, **bench.QUICK_SETTINGS)


def test_quick_rows_have_the_expected_keys_and_positive_finite_figures(quick_rows):
    assert len(quick_rows) == len(bench.QUICK_GRID) * len(bench.ALGORITHMS)
    cases = {(row["workers"], row["dim"], row["samples"]) for row in quick_rows}
    assert cases == {(c.workers, c.dim, c.samples) for c in bench.QUICK_GRID}
    for row in quick_rows:
        assert set(row) == KEYS
        for key in ("grad_s", "round_s", "ratio", "loop_round_s", "speedup"):
            assert math.isfinite(row[key]) and row[key] > 0, key
        assert row["ratio"] == pytest.approx(row["round_s"] / row["grad_s"])
        assert row["speedup"] == pytest.approx(row["loop_round_s"] / row["round_s"])
        assert 0 <= row["max_rel_diff"] < 1e-9
    sparse = [row for row in quick_rows if row["layout"] != "dense"]
    assert sparse and all(row["stored_entries"] < row["samples"] * row["dim"] for row in sparse)


def test_table_and_report(quick_rows):
    table = bench.format_table(quick_rows)
    # no d = 10⁴ or M = 100: only the targets of the small problem (M = 4, d = 50)
    assert len(table.splitlines()) == 4 + len(quick_rows) + 2
    assert "ratio" in table and "speed-up" in table
    small = [row for row in quick_rows if (row["workers"], row["dim"]) == bench.SMALL_CASE]
    met = sum(row["ratio"] <= bench.TARGET_SMALL_RATIO for row in small)
    assert f"target ratio <= 3 at M = 4, d = 50: met in {met}/{len(small)} rows" in table
    document = json.loads(json.dumps(bench.report(quick_rows)))
    assert len(document["rows"]) == len(quick_rows) and "numpy" in document["versions"]
    target_rows = [dict(row, dim=bench.TARGET_RATIO_DIM, workers=100) for row in quick_rows]
    lines = bench.format_table(target_rows).splitlines()
    assert lines[-2].startswith("target ratio") and lines[-1].startswith("target speed-up")


def test_batch_figure_times_a_grid_and_checks_it_against_the_runs_alone():
    problem, _ = _tiny_problem()
    row = bench.batch_figure(steps=3, xis=2, rounds=15, sample=3, problem=problem)
    assert row["runs"] == 6 and row["alone_timed"] == 3 and row["rounds"] == 15
    assert row["speedup"] == pytest.approx(row["alone_s"] / row["batch_s"])
    assert row["alone_s"] == pytest.approx(6 * row["alone_s_per_run"])
    assert sum(row["statuses"].values()) == 6
    text = bench.format_batch(row)
    assert "6 gd-sec runs" in text and "target >= 20x" in text
    document = json.loads(json.dumps(bench.report([], row)))
    assert document["batch"]["runs"] == 6


def test_batch_figure_refuses_to_compare_different_computations(monkeypatch):
    """A batch whose runs differ from the runs alone: no speed-up is reported."""
    problem, _ = _tiny_problem()
    real = bench.run_batch

    def shifted(algorithms, problem, rounds):
        return real(algorithms, problem, rounds, theta0=np.full(problem.objective.dim, 1e-3))

    monkeypatch.setattr(bench, "run_batch", shifted)
    with pytest.raises(bench.BenchmarkError, match="differs from the same run alone"):
        bench.batch_figure(steps=2, xis=1, rounds=5, sample=1, problem=problem)


def _tiny_problem(case: bench.Case = TINY[0]):
    dataset = bench.synthetic_logistic(case, 0)
    return bench.benchmark_problem(case, dataset, 0), dataset


def test_loop_gdsec_with_xi_zero_is_plain_gradient_descent():
    # ξ = 0: every nonzero difference is sent, e = 0, h_m = ∇f_m, so θ⁺ = θ − α∇f(θ)
    problem, dataset = _tiny_problem()
    workers = bench.loop_workers(problem, dataset)
    algorithm = make_algorithm("gd-sec", problem.constants, alpha=0.7, xi=0.0)
    theta = np.zeros(problem.objective.dim)
    for _ in range(4):
        theta = theta - 0.7 * problem.objective.gradient(theta)
    result = bench.loop_run(workers, algorithm, 4)
    np.testing.assert_allclose(result.theta, theta, rtol=1e-12, atol=1e-15)
    assert not result.error_norm_sq.any()


def test_loop_ef_keeps_k_entries_per_worker_and_prices_them():
    problem, dataset = _tiny_problem(bench.Case(3, 200, 600))
    workers = bench.loop_workers(problem, dataset)
    algorithm = make_algorithm("ef", problem.constants, alpha="1/L", compressor="top-k", k=5)
    result = bench.loop_run(workers, algorithm, 2)
    assert np.all(result.up_bits == 5 * (8 + bench.VALUE_BITS))  # index list: ⌈log₂ 200⌉ = 8


def test_agreement_check_runs_and_catches_a_wrong_reference(monkeypatch):
    """A loop whose workers drop the regularizer from their gradients computes something else:
    the benchmark refuses to report a speed-up."""
    real = bench.loop_workers

    def without_regularizer(problem, dataset):
        return [dataclasses.replace(w, lam=0.0) for w in real(problem, dataset)]

    monkeypatch.setattr(bench, "loop_workers", without_regularizer)
    with pytest.raises(bench.BenchmarkError, match="on M=3, d=12"):
        bench.benchmark(TINY, rounds=2, repeats=1, loop_rounds=2)


@pytest.mark.parametrize("field", ["up_bits", "down_bits", "values", "error_norm_sq"])
def test_agreement_check_compares_bits_and_trace(field):
    problem, dataset = _tiny_problem()
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="1/L", xi=0.1)
    reference = bench.loop_run(bench.loop_workers(problem, dataset), algorithm, 3)
    assert bench.check_agreement(algorithm, problem, reference, 3) < 1e-12
    changed = getattr(reference, field).copy()
    changed[-1] += 1
    wrong = dataclasses.replace(reference, **{field: changed})
    with pytest.raises(bench.BenchmarkError, match="differ"):
        bench.check_agreement(algorithm, problem, wrong, 3)


def test_profile_round_names_positive_times():
    problem, _ = _tiny_problem(bench.QUICK_GRID[1])
    entries = bench.profile_round(problem, "gd-sec", rounds=2)
    labels = [label for label, _ in entries]
    assert "the algorithm's halves (gradients cached)" in labels
    assert "bare worker_gradients" in labels
    assert all(math.isfinite(seconds) and seconds >= 0 for _, seconds in entries)
    assert "gd-sec" in bench.format_profile("gd-sec", entries)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"rounds": 0}, "rounds"), ({"repeats": 0}, "repeats"), ({"loop_rounds": 0}, "loop_rounds"),
     ({"grid": ()}, "grid"), ({"grid": [(3, 12, 90)]}, "grid")],
)
def test_bad_settings_are_refused(kwargs, field):
    with pytest.raises(InputError) as error:
        bench.benchmark(**{"grid": TINY, **kwargs})
    assert error.value.field == field
