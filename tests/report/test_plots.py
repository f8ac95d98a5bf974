"""The report's figures: mathtext labels, notes on undrawn bounds, outliers, nothing clipped."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.report import plots
from convcheck.theory import BOUNDS


@pytest.mark.parametrize("name", list(BOUNDS))
def test_every_bound_quantity_is_set_as_mathtext(name):
    from matplotlib.mathtext import MathTextParser

    label, remark = plots.axis_label(BOUNDS[name].quantity_formula)
    assert label.startswith("$") and label.endswith("$")
    assert "‖" not in label and "θ" not in label and "Σ" not in label
    for part in (label, remark):
        for formula in part.split("$")[1::2]:
            MathTextParser("agg").parse(f"${formula}$")  # raises if matplotlib cannot set it


def test_mathtext_conversion():
    assert plots.mathtext("‖θ^k − θ*‖²") == r"$\|\theta^k - \theta^*\|^{2}$"
    assert plots.mathtext("f(θ^k) − f_low") == r"$f(\theta^k) - f_{\mathrm{low}}$"
    assert plots.mixed_mathtext("measured as f(θ^k) − f_low") == \
        r"measured as $f(\theta^k) - f_{\mathrm{low}}$"
    assert plots.mixed_mathtext("best suboptimality so far") == "best suboptimality so far"
    assert plots.mathtext("a $ b {") == "a $ b {"  # not settable: left as it is


def test_bound_note_says_why_a_bound_is_missing():
    assert plots.bound_note([1.0, 0.5]) == ""
    assert plots.bound_note([-1.0, -2.0]) == \
        "bound not drawn where it is ≤ 0 everywhere (log scale)"
    assert plots.bound_note([None, 1.0, float("inf")]) == (
        "bound not drawn where it is infinite at 1 of 3 points (log scale)")
    assert plots.bound_note([None, None]) == \
        "bound not drawn where it is undefined everywhere (log scale)"


def check(**changes):
    base = {"case": "folder/a-case-with-a-rather-long-name", "kind": "negative_control",
            "passed": True, "name": "injected bug: " + "a very long description " * 6,
            "max_ratio": None, "worst_iteration": 0,
            "series": {"iteration": list(range(50)), "measured": list(np.linspace(1, 2, 50)),
                       "bound": [-1.0] * 50,
                       "quantity": "(1/T) Σ_{k<T} ‖∇f(θ^k)‖²  (≥ min_{k<T} ‖∇f(θ^k)‖²)"}}
    return {**base, **changes}


def test_long_titles_and_notes_stay_inside_the_figure():
    figure = plots.draw_check(check())
    assert plots.clipped_texts(figure) == []
    title = figure.axes[0].get_title()
    assert title.count("\n") == 1 and title.endswith("…")  # wrapped to two lines, cut
    notes = [t.get_text() for t in figure.texts]
    assert any("bound not drawn where it is ≤ 0 everywhere" in n for n in notes)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "bound (not drawn)" in labels
    case = {"case": "x" * 200, "curves": {"label " * 30: {
        "bits_up_total": [1, 10, 100], "metric": [1.0, 0.1, 0.01],
        "metric_name": "suboptimality"}}, "staleness": {"histogram": [3, 2, 1], "mean": 0.5,
                                                       "max": 2}}
    for figure in (plots.draw_bits(case), plots.draw_staleness(case)):
        assert plots.clipped_texts(figure) == []


def test_clipping_is_detected():
    figure = plots._figure()
    figure.set_layout_engine(None)
    ax = figure.add_subplot()
    ax.set_title("x" * 300)
    ax.set_ylabel("label")
    assert plots.clipped_texts(figure) == ["x" * 300]


def test_outliers_go_to_their_own_panel():
    theory = np.array([0.99, 0.991, 0.992, 0.995, 0.996, 0.3])
    fitted = np.array([0.989, 0.99, 0.993, 0.994, 0.997, 0.35])
    assert plots.outliers(theory, fitted).tolist() == [False] * 5 + [True]
    assert not plots.outliers(np.array([0.9, 0.91]), np.array([0.9, 0.2])).any()  # too many
    checks = [{"rate_kind": "linear", "theory_rate": t, "fitted_rate": f, "passed": True}
              for t, f in zip(theory, fitted, strict=True)]
    figure = plots.draw_rates(checks)
    main, far = figure.axes
    assert len(main.collections[0].get_offsets()) == 5
    assert len(far.collections[0].get_offsets()) == 1
    assert main.get_xlim()[0] > 0.9  # the bulk keeps its own scale
    assert plots.clipped_texts(figure) == []
