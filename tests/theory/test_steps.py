"""The warning before a run whose settings no bound covers."""

from __future__ import annotations

import pytest

from convcheck import build_problem, make_algorithm
from convcheck.theory.asynchronous import max_step
from convcheck.theory.steps import step_warning


@pytest.fixture(scope="module")
def logistic():
    return build_problem("logistic", "breast-cancer", workers=4, split="sorted", cross_check=False)


@pytest.fixture(scope="module")
def nonconvex():
    return build_problem("nonconvex-logistic", "breast-cancer", workers=4, cross_check=False)


def test_gd_inside_and_outside_its_step_ranges(logistic):
    L = logistic.constants.L
    for c in (0.5, 1.0, 1.9):  # 0 < α < 2/L: the strongly convex and nonconvex bounds apply
        assert step_warning(make_algorithm("gd", logistic.constants, alpha=c / L), logistic) \
            is None
    text = step_warning(make_algorithm("gd", logistic.constants, alpha=2.0 / L), logistic)
    assert "gd/strongly-convex: α < 2/L fails" in text and "gd/convex: α ≤ 1/L fails" in text


def test_gdsec_condition_on_xi(logistic):
    ok = make_algorithm("gd-sec", logistic.constants, alpha="0.3/L", xi=0.2)
    assert step_warning(ok, logistic) is None
    bad = make_algorithm("gd-sec", logistic.constants, alpha="0.3/L", xi=0.6)
    assert "ξ = max_i ξ_i < 1/2 fails" in step_warning(bad, logistic)


def test_no_closed_form_bound_means_no_warning(logistic):
    assert step_warning(make_algorithm("dgs", logistic.constants, alpha="5/L"), logistic) is None


def test_error_feedback_step_condition(logistic):
    """ef/nonconvex (derived here) needs c = 1 − Lα − (LαQ)² > 0: small steps are covered."""
    assert step_warning(make_algorithm("ef", logistic.constants, alpha="0.01/L", k=1),
                        logistic) is None
    text = step_warning(make_algorithm("ef", logistic.constants, alpha="5/L", k=1), logistic)
    assert "ef/nonconvex: c = 1 − Lα − (LαQ)² > 0 fails" in text


def test_asynchronous_step_against_the_largest_admissible_one(nonconvex):
    L = nonconvex.constants.L
    largest = max_step(L, 1.0, 0, 8, holding=1)  # dense: A_δ = 0, so 1/(2L)
    assert largest == pytest.approx(0.5 / L)
    just = make_algorithm("async-sgd", nonconvex.constants, alpha=0.999 * largest)
    assert step_warning(just, nonconvex, workers=8) is None
    default = make_algorithm("async-sgd", nonconvex.constants)  # α = 1/L
    text = step_warning(default, nonconvex, workers=8)
    assert "asynchronous bound" in text and "no staleness at all" in text
    # staleness only lowers the largest step: τ_max = 5 makes 0.3/L too large
    middle = make_algorithm("async-sgd", nonconvex.constants, alpha=0.3 / L)
    assert step_warning(middle, nonconvex, workers=8) is None
    assert "τ_max = 5" in step_warning(middle, nonconvex, workers=8, tau_max=5)
    sparse = make_algorithm("async-sparse-sgd", nonconvex.constants, alpha=0.3 / L, ratio=0.1)
    assert step_warning(sparse, nonconvex, workers=8) is not None  # δ = 0.1: A_δ = 360
    dropped = make_algorithm("async-sparse-sgd", nonconvex.constants, alpha=0.3 / L, ratio=0.1,
                             error_memory=False)
    assert step_warning(dropped, nonconvex, workers=8) is None  # the bound does not apply
