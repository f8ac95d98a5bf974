"""DGS's heavy-ball special case against an independent recursion, and ordering checks."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.problem import build_problem
from convcheck.verification.special import heavy_ball_values
from tests.helpers import RIDGE_CASE, own_checks, verify_case


def test_heavy_ball_values_unrolled_by_hand():
    problem = build_problem("ridge", "synthetic-regression", workers=1, cross_check=False,
                            dataset_params={"n_samples": 40, "n_features": 3})
    f, grad = problem.objective.value, problem.objective.gradient
    theta0, alpha, m, wd = np.array([1.0, -2.0, 0.5]), 0.1, 0.7, 0.01
    u1 = alpha * (grad(theta0) + wd * theta0)
    theta1 = theta0 - u1
    u2 = m * u1 + alpha * (grad(theta1) + wd * theta1)
    theta2 = theta1 - u2
    values, last = heavy_ball_values(problem.objective, theta0, alpha, m, wd, 2)
    np.testing.assert_allclose(values, [f(theta0), f(theta1), f(theta2)], rtol=1e-14)
    np.testing.assert_allclose(last, theta2, rtol=1e-14)


def dgs_case(tmp_path, checks, algorithm_extra=""):
    """DGS with full links on one shard and one asynchronous worker."""
    return verify_case(tmp_path, checks, workers=1, tables="\n[async]\nworkers = 1\n",
                       iterations=60,
                       algorithm='name = "dgs"\nalpha = "0.1/L"\nmomentum = 0.8\n'
                                 f'layers = 2\n{algorithm_extra}')


def test_dgs_with_full_links_is_heavy_ball(tmp_path):
    checks = '[[checks]]\nbound = "dgs/heavy-ball"\n'
    document = dgs_case(tmp_path, checks, "rho_up = 1.0\nrho_down = 1.0\nweight_decay = 0.01")
    (check,) = own_checks(document)
    assert check["outcome"] == "pass" and check["sides"] == "two-sided", check["reason"]


def test_a_sparsified_link_is_not_heavy_ball(tmp_path):
    controls = ('[[negative_controls]]\nname = "up"\nbound = "dgs/heavy-ball"\nwhy = "x"\n'
                'algorithm = { rho_up = 0.5 }\n\n'
                '[[negative_controls]]\nname = "down"\nbound = "dgs/heavy-ball"\nwhy = "x"\n'
                'algorithm = { rho_down = 0.5 }\n')
    document = dgs_case(tmp_path, controls, "rho_up = 1.0\nrho_down = 1.0")
    assert [c["outcome"] for c in own_checks(document)] == ["pass", "pass"]


def test_heavy_ball_positive_check_outside_the_special_case_is_an_error(tmp_path):
    (check,) = own_checks(dgs_case(tmp_path, '[[checks]]\nbound = "dgs/heavy-ball"\n',
                        "rho_up = 0.5\nrho_down = 1.0"))
    assert check["outcome"] == "error" and "ρ_up = 1" in check["reason"]


def test_heavy_ball_is_about_dgs(tmp_path):
    document = verify_case(tmp_path, '[[checks]]\nbound = "dgs/heavy-ball"\n',
                           problem=RIDGE_CASE, iterations=10)
    (check,) = own_checks(document)
    assert check["outcome"] == "error" and "about dgs" in check["reason"]


BELOW = ('[[checks]]\nbound = "below-reference"\n'
         'reference = { name = "ef", alpha = 0.01, compressor = "top-k", k = 1 }\n')
TOY = {"family": "ridge", "dataset": "bidir-toy", "problem_extra": 'scaling = "none"\nlam = 0.0'}


@pytest.mark.parametrize(("k_down", "outcome"), [(1, "pass"), (100, "fail")])
def test_bidirectional_ends_below_uplink_only_on_the_toy(tmp_path, k_down, outcome):
    """k_down = 1: the [BIDIR] ordering; k_down = d: bidirectional is uplink-only exactly, so it
    cannot end below it (ratio 1)."""
    (check,) = own_checks(verify_case(tmp_path, BELOW, problem=TOY, split="natural", workers=3,
                           algorithm=f'name = "bidir-topk"\nalpha = 0.01\nk_up = 1\n'
                                     f'k_down = {k_down}', iterations=1000))
    assert check["outcome"] == outcome and check["sides"] == "ordering", check["reason"]
    if k_down == 100:
        assert check["max_ratio"] == pytest.approx(1.0)
