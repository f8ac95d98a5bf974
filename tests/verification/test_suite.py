"""The committed suite in problems/: every file is valid, every problem it uses is certified, the
quick suite verifies (the full one too, under -m slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convcheck.verification import load_suite, verify
from convcheck.verification.cases import SUITES, find_cases
from convcheck.verification.runner import case_problem

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


def _label(case) -> str:
    """The seed algorithm a case verifies (LAGS is error feedback with layer-wise top-k)."""
    if case.algorithm.get("compressor") == "layer-top-k":
        return "lags"
    return case.algorithm_name


@pytest.mark.parametrize("algorithm", ["gd", "gd-sec", "ef", "ef21", "bidir-topk", "lags", "dgs"])
def test_every_seed_algorithm_has_positive_checks_and_negative_controls(algorithm):
    cases = [case for case in load_suite([PROBLEMS], "quick") if _label(case) == algorithm]
    kinds = {check.kind for case in cases for check in case.checks}
    assert kinds == {"positive", "negative_control"}, algorithm


def test_two_sided_rates_and_tight_targets_are_exercised():
    """Both sides of a rate are checked, with β < 1, several k, and targets that a run twice as
    slow misses (a control at half the step)."""
    cases = load_suite([PROBLEMS], "quick")
    checks = [(case, check) for case in cases for check in case.checks]
    names = {check.bound for _, check in checks}
    assert {"gd/exact-rate", "lower/slowest-direction", "lmi/distance"} <= names
    assert any(case.algorithm.get("beta", 1) < 1 and check.bound == "lower/slowest-direction"
               for case, check in checks)
    ks = {str(case.algorithm.get(key)) for case in cases for key in ("k", "k_up", "k_down")
          if key in case.algorithm}
    assert len(ks) >= 3
    tight = [case.name for case, check in checks if check.bound == "converges"
             and check.kind == "negative_control" and "half the step" in check.name]
    assert len(tight) >= 4


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
