"""Two-sided rate checks on quadratics: GD's exact rate and the slowest-direction envelope."""

from __future__ import annotations

from tests.helpers import own_checks, verify_case

EXACT = '[[checks]]\nbound = "gd/exact-rate"\n'
LOWER = '[[checks]]\nbound = "lower/slowest-direction"\n'


def control(bound, ran_with, expect=None, tolerance=None):
    text = f'[[negative_controls]]\nname = "bug"\nbound = "{bound}"\nwhy = "a wrong step"\n'
    text += f"ran_with = {{ alpha = {ran_with} }}\n"
    if expect:
        text += f'expect = "{expect}"\n'
    if tolerance:
        text += f"tolerance = {tolerance}\n"
    return text


def outcomes(document):
    return [(c["bound"], c["outcome"], c["sides"]) for c in own_checks(document)]


def test_gd_matches_its_exact_rate_and_its_lower_envelope(tmp_path):
    document = verify_case(tmp_path, EXACT + LOWER, iterations=80)
    assert outcomes(document) == [("gd/exact-rate", "pass", "two-sided"),
                                  ("lower/slowest-direction", "pass", "lower")]
    exact = own_checks(document)[0]
    assert abs(exact["fitted_rate"] / exact["theory_rate"] - 1) < 1e-6


def test_a_step_off_by_a_little_is_seen_on_both_sides(tmp_path):
    """Steps ×0.95 and ×1.05 move the speed by about 5%, beyond the 1% tolerance."""
    slow = control("gd/exact-rate", '"0.95/L"', "too-slow")
    fast = control("gd/exact-rate", '"1.05/L"', "too-fast")
    document = verify_case(tmp_path, slow + fast, iterations=80)
    assert [c["outcome"] for c in own_checks(document)] == ["pass", "pass"], [
        c["reason"] for c in own_checks(document)]


def test_a_wider_tolerance_lets_a_small_error_through(tmp_path):
    """The same ×1.05 step with a 10% tolerance: the control does not fail, so it fails."""
    document = verify_case(tmp_path, control("gd/exact-rate", '"1.05/L"', tolerance=0.1),
                           iterations=80)
    (check,) = own_checks(document)
    assert check["outcome"] == "fail" and "did not fail" in check["reason"]


def test_faster_than_possible_is_seen_by_the_lower_envelope(tmp_path):
    document = verify_case(tmp_path, control("lower/slowest-direction", '"1.3/L"'),
                           algorithm='name = "gd-sec"\nalpha = "1/L"\nxi = 0.1\nbeta = 0.5',
                           iterations=150)
    (check,) = own_checks(document)
    assert check["outcome"] == "pass" and "faster than possible" in check["reason"]


def test_exact_rate_is_about_gd_and_quadratics(tmp_path):
    document = verify_case(tmp_path, EXACT, iterations=50,
                           algorithm='name = "gd-sec"\nalpha = "0.5/L"\nxi = 0.1')
    (check,) = own_checks(document)
    assert check["outcome"] == "error" and "not applicable" in check["reason"]
    logistic = {"family": "logistic", "dataset": "breast-cancer", "problem_extra": ""}
    for text in (EXACT, LOWER):
        (check,) = own_checks(verify_case(tmp_path, text, problem=logistic, iterations=20))
        assert check["outcome"] == "error" and "not a quadratic" in check["reason"]
