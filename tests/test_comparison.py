"""Bits and iterations to a target: spec parsing, the table, its ratios, and bad specs."""

from __future__ import annotations

import pytest

from convcheck.algorithms import make_algorithm
from convcheck.comparison import compare, format_comparison, parse_spec
from convcheck.engine import run
from convcheck.errors import InputError
from tests.helpers import engine_problem


def test_parse_spec():
    spec = parse_spec("gd-sec:xi=0.2,beta=0.5,error_correction=false")
    assert spec.name == "gd-sec"
    assert spec.params == {"xi": 0.2, "beta": 0.5, "error_correction": False}
    assert parse_spec("gd").params == {}


@pytest.mark.parametrize("text", [":xi=1", "gd-sec:xi"])
def test_parse_spec_rejects(text):
    with pytest.raises(InputError):
        parse_spec(text)


def test_rows_match_single_runs_and_ratios_are_to_the_first():
    problem = engine_problem()
    specs = ["gd", "gd-sec:xi=0.3", "ef:k=1"]
    rows = compare(problem, specs, target=1e-6, iterations=3000)
    assert [row["spec"] for row in rows] == specs
    for row, text in zip(rows, specs, strict=True):
        spec = parse_spec(text)
        algorithm = make_algorithm(spec.name, problem.constants, **spec.params)
        alone = run(algorithm, problem, 3000, target=1e-6)
        assert row["iterations"] == alone.summary["target_iteration"]
        assert row["bits_up"] == alone.summary["bits_up_to_target"]
        assert row["status"] == alone.status
    gd, gdsec = rows[0], rows[1]
    assert gd["bits_up_vs_first"] == 1.0 and gd["iterations_vs_first"] == 1.0
    assert gdsec["bits_up_vs_first"] == pytest.approx(gdsec["bits_up"] / gd["bits_up"])
    table = format_comparison(rows, 1e-6)
    assert len(table.splitlines()) == 1 + len(specs) and "gd-sec:xi=0.3" in table


def test_unreached_target_has_no_ratio():
    rows = compare(engine_problem(), ["gd", "ef:k=1"], target=1e-30, iterations=5)
    assert all(row["iterations"] is None and row["bits_up_vs_first"] is None for row in rows)
    assert "completed" in format_comparison(rows, 1e-30)
