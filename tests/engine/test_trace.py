"""Trace export: JSON (everything), CSV and parquet (columns), atomic, strict JSON."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from convcheck.algorithms import GDSEC
from convcheck.engine import run, write_run
from convcheck.errors import InputError
from tests.helpers import engine_problem


@pytest.fixture(scope="module")
def result():
    problem = engine_problem("nonconvex-logistic")  # dist_sq is NaN: exercises null in JSON
    return run(GDSEC(1.0 / problem.constants.L, xi=0.2), problem, 20, target=1e-3)


def test_json_round_trip(result, tmp_path):
    path = write_run(result, tmp_path / "run.json")
    loaded = json.loads(open(path).read())  # strict JSON: no NaN tokens
    assert loaded["status"] == result.status
    assert loaded["summary"]["iterations"] == result.iterations
    assert loaded["meta"]["algorithm"]["name"] == "gd-sec"
    np.testing.assert_array_equal(loaded["columns"]["value"], result.columns["value"])
    assert loaded["columns"]["dist_sq"][0] is None
    np.testing.assert_array_equal(loaded["ledger"]["up"], result.ledger.up)


def test_csv_round_trip(result, tmp_path):
    path = write_run(result, tmp_path / "run.csv")
    with open(path) as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == result.iterations + 1
    assert [float(row["value"]) for row in rows] == result.columns["value"].tolist()
    assert [int(row["bits_up_total"]) for row in rows] == result.columns["bits_up_total"].tolist()


def test_parquet_round_trip(result, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = write_run(result, tmp_path / "run.parquet")
    table = pq.read_table(path)
    np.testing.assert_array_equal(table.column("value").to_numpy(), result.columns["value"])
    described = json.loads(table.schema.metadata[b"convcheck"])
    assert described["status"] == result.status


def test_unknown_format(result, tmp_path):
    with pytest.raises(InputError) as raised:
        write_run(result, tmp_path / "run.txt")
    assert raised.value.field == "out"
    assert not list(tmp_path.iterdir())
