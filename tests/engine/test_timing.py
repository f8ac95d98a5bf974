"""Compute-time models, recorded traces and the link: moments, replay, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from convcheck.engine.timing import (
    Constant,
    Exponential,
    Link,
    LogNormal,
    Pareto,
    load_trace,
    make_compute,
)
from convcheck.errors import DataFileError, InputError


def _draws(model, worker, workers, n=200_000, seed=0):
    return model.durations(worker, workers, 0, n, np.random.default_rng(seed))


@pytest.mark.parametrize(
    "model",
    [Exponential(2.0), LogNormal(2.0, sigma=0.7), Pareto(2.0, shape=3.5)],
    ids=["exponential", "lognormal", "pareto"],
)
def test_means_match_the_parameter(model):
    """Sample mean within 5 standard errors of μ (normal approximation, finite variance)."""
    x = _draws(model, 0, 1)
    assert np.all(x >= 0)
    assert abs(x.mean() - 2.0) < 5 * x.std() / math.sqrt(x.size)


def test_distribution_shapes():
    x = _draws(Exponential(1.0), 0, 1)
    assert abs(np.median(x) - math.log(2)) < 0.01  # median of Exp(1)
    y = _draws(LogNormal(1.0, sigma=0.5), 0, 1)
    assert abs(np.std(np.log(y)) - 0.5) < 0.005
    a = 1.5
    z = _draws(Pareto(1.0, shape=a), 0, 1)
    scale = (a - 1) / a
    assert z.min() >= scale  # support [x_m, ∞)
    for q in (2.0, 10.0):  # P(X > q x_m) = q^{-a}
        tail = np.mean(z > q * scale)
        assert abs(tail - q**-a) < 5 * math.sqrt(q**-a / z.size)


def test_constant_and_spread():
    model = Constant(2.0, spread=8.0)
    means = [model.durations(k, 4, 0, 3, None)[0] for k in range(4)]
    np.testing.assert_allclose(means, [2.0, 4.0, 8.0, 16.0])  # geometric, slowest = 8·fastest
    per_worker = Exponential([1.0, 3.0])
    per_worker.check_workers(2)
    x = per_worker.durations(1, 2, 0, 100_000, np.random.default_rng(1))
    assert abs(x.mean() - 3.0) < 5 * x.std() / math.sqrt(x.size)
    with pytest.raises(InputError) as error:
        per_worker.check_workers(3)
    assert error.value.field == "mean"


def test_durations_continue_the_workers_own_stream():
    model = Exponential(1.0)
    rng = np.random.default_rng(4)
    joined = np.concatenate([model.durations(0, 1, 0, 5, rng), model.durations(0, 1, 5, 5, rng)])
    np.testing.assert_array_equal(joined, model.durations(0, 1, 0, 10, np.random.default_rng(4)))


def test_recorded_csv_and_json(tmp_path):
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("w0,w1\n1.0,0.5\n2.0,\n3.0,\n")
    trace = load_trace(csv_file)
    assert [s.tolist() for s in trace.sequences] == [[1.0, 2.0, 3.0], [0.5]]
    np.testing.assert_array_equal(trace.durations(0, 3, 2, 4, None), [3.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(trace.durations(2, 3, 0, 2, None), [1.0, 2.0])  # 2 mod 2 = 0
    np.testing.assert_array_equal(trace.durations(1, 3, 7, 2, None), [0.5, 0.5])
    json_file = tmp_path / "t.json"
    json_file.write_text(json.dumps({"durations": [[0.1, 0.2], [0.3]]}))
    assert [s.tolist() for s in load_trace(json_file).sequences] == [[0.1, 0.2], [0.3]]
    json_file.write_text(json.dumps([0.25, 0.5]))
    assert [s.tolist() for s in load_trace(json_file).sequences] == [[0.25, 0.5]]
    assert make_compute("trace", path=str(json_file)).name == "trace"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.csv", "", "no durations"),
        ("header.csv", "w0,w1\n", "no durations"),
        ("empty.json", "[]", "no durations"),
        ("neg.csv", "1.0\n-2.0\n", "worker 0, entry 1"),
        ("nan.json", "[[1.0, NaN]]", "entry 1"),
        ("text.csv", "1.0\nslow\n", "row 2"),
        ("bad.json", "{not json", "not valid JSON"),
        ("strings.json", '[["a"]]', "not numbers"),
        ("noitems.json", '{"x": 1}', "no list"),
    ],
)
def test_bad_trace_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFileError) as error:
        load_trace(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_missing_trace_file_and_wrong_suffix(tmp_path):
    with pytest.raises(DataFileError, match="cannot read"):
        load_trace(tmp_path / "nope.csv")
    with pytest.raises(InputError) as error:
        load_trace(tmp_path / "durations.txt")
    assert error.value.field == "compute_trace"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Exponential(-1.0), "mean"),
        (lambda: Constant(0.0), "mean"),
        (lambda: Exponential([1.0, -2.0]), "mean"),
        (lambda: Exponential(1.0, spread=0.5), "spread"),
        (lambda: LogNormal(1.0, sigma=0.0), "sigma"),
        (lambda: Pareto(1.0, shape=1.0), "shape"),
        (lambda: make_compute("gamma"), "compute"),
        (lambda: make_compute("exponential", sigma=1.0), "sigma"),
        (lambda: make_compute("trace"), "compute_trace"),
        (lambda: Link(latency_up=-1.0), "latency_up"),
        (lambda: Link(latency_down=math.inf), "latency_down"),
        (lambda: Link(bandwidth_up=0.0), "bandwidth_up"),
        (lambda: Link(bandwidth_down=-5.0), "bandwidth_down"),
        (lambda: Link(bandwidth_down="fast"), "bandwidth_down"),
    ],
)
def test_bad_parameters_name_the_field(build, field):
    with pytest.raises(InputError) as error:
        build()
    assert error.value.field == field


def test_link_times():
    link = Link(latency_up=0.5, bandwidth_up=1000.0, latency_down=0.25)
    assert link.transmission(500, "up") == 0.5 and link.latency("up") == 0.5
    assert link.transmission(10**9, "down") == 0.0 and link.latency("down") == 0.25
    assert link.describe()["bandwidth_down"] is None
