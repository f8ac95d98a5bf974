"""The committed suite in problems/: every file is valid, every problem it uses is certified, the
quick suite verifies (the full one too, under -m slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convcheck.verify import load_suite, verify
from convcheck.verify.cases import SUITES, find_cases
from convcheck.verify.runner import case_problem

PROBLEMS = Path(__file__).resolve().parents[2] / "problems"


def _needs_data(case) -> bool:
    return case.problem.needs_data_dir()


def test_every_case_file_is_valid_and_in_a_suite():
    files = find_cases([PROBLEMS])
    cases = load_suite([PROBLEMS])
    assert len(cases) == len(files) >= 10
    assert {suite for case in cases for suite in case.suites} == set(SUITES)
    quick = load_suite([PROBLEMS], "quick")
    assert quick and not any(_needs_data(case) for case in quick)  # embedded data only
    assert all(any(c.kind == "negative_control" for c in case.checks) or
               "negative controls are in" in case.description for case in cases)


def _certified(case) -> None:
    problem = case_problem(case)
    optimum = problem.optimum
    if problem.constants.problem_class == "nonconvex":
        assert optimum.f_low == 0.0 and optimum.theta is None
        return
    assert optimum.grad_norm <= optimum.tolerance, case.name
    if problem.constants.mu > 0:
        assert optimum.gap_bound <= optimum.grad_norm**2 / (2 * problem.constants.mu) * (1 + 1e-12)
    from convcheck.optimum import cross_check

    check = cross_check(problem.objective, optimum.theta)
    assert check.agrees, (case.name, check)


@pytest.mark.parametrize("name", [c.name for c in load_suite([PROBLEMS]) if not _needs_data(c)])
def test_embedded_suite_problems_are_certified_and_cvxpy_agrees(name):
    case = next(c for c in load_suite([PROBLEMS]) if c.name == name)
    _certified(case)


@pytest.mark.slow
@pytest.mark.parametrize("name", [c.name for c in load_suite([PROBLEMS]) if _needs_data(c)])
def test_libsvm_suite_problems_are_certified_and_cvxpy_agrees(name, shared_data):
    case = next(c for c in load_suite([PROBLEMS]) if c.name == name)
    _certified(case)


def test_quick_suite_verifies():
    document = verify(load_suite([PROBLEMS], "quick"), jobs=1)
    failed = [(c["case"], c["name"], c["reason"]) for c in document["checks"] if not c["passed"]]
    assert not failed and document["summary"]["passed"]
    summary = document["summary"]
    assert summary["positive"] >= 15 and summary["negative"] >= 12


@pytest.mark.slow
def test_full_suite_verifies(shared_data):
    document = verify(load_suite([PROBLEMS], "full"), jobs=2)
    failed = [(c["case"], c["name"], c["reason"]) for c in document["checks"] if not c["passed"]]
    assert not failed and document["summary"]["skipped"] == 0
