"""The catalog: algorithm parameters from their declarations, compressor parameters from
signatures and docstrings, plain-text listing."""

from __future__ import annotations

import pytest

from convcheck.algorithms import ALGORITHMS, make_algorithm
from convcheck.catalog import (
    REQUIRED,
    algorithm_parameters,
    catalog,
    compressor_parameters,
    format_catalog,
    numpydoc_parameters,
    plain,
)
from convcheck.compressors import COMPRESSORS
from convcheck.errors import InputError
from convcheck.verification.names import known_checks

DOC = """Summary line.

    Parameters
    ----------
    alpha : float
        Step size ``α > 0``,
        on two lines.
    k_up, k_down : int, optional
        Kept entries ``1 ≤ k ≤ d``.
    mode : {"a", "b"}

    Notes
    -----
    x : not a parameter
    """


def test_numpydoc_parameters():
    assert numpydoc_parameters(DOC) == {
        "alpha": ("float", "Step size ``α > 0``, on two lines."),
        "k_up": ("int, optional", "Kept entries ``1 ≤ k ≤ d``."),
        "k_down": ("int, optional", "Kept entries ``1 ≤ k ≤ d``."),
        "mode": ('{"a", "b"}', ""),
    }
    assert numpydoc_parameters("No sections.") == {}


def test_plain_text():
    assert plain("``θ^{k+1} = θ^k``, see :class:`~convcheck.x.Y`") == "θ^(k+1) = θ^k, see Y"
    assert plain("rules (docs/theory.md §4)") == "rules (docs/theory.md §4)"  # nothing stripped


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_algorithm_parameters_follow_the_declarations(name):
    rows = algorithm_parameters(name)
    declared = {p.name: p for p in ALGORITHMS[name].parameters}
    assert [row["name"] for row in rows] == list(declared)
    for row in rows:
        assert set(row) == {"name", "type", "default", "allowed", "description"}
        assert "``" not in row["description"] and "``" not in row["allowed"]
        assert row["type"] != "value" and row["description"], row
        if row["name"] == "alpha":
            assert row["default"] == "1/L" and "L_tilde" in row["allowed"]
        elif row["name"] == "compressor":
            assert row["default"] == "top-k" and "rand-k" in row["allowed"]
        else:
            assert row["default"] == declared[row["name"]].default
    # the defaults are the ones make_algorithm uses: building with them changes nothing
    from tests.helpers import engine_problem

    problem = engine_problem()
    given = {row["name"]: row["default"] for row in rows
             if row["default"] is not None and row["name"] != "compressor"}
    names = {row["name"] for row in rows}
    extra = {key: 0.5 for key in ("ratio_up", "ratio_down") if key in names}
    if "compressor" in names or "ratio" in names:
        extra["ratio"] = 0.5
    built = make_algorithm(name, problem.constants, **given, **extra)
    default = make_algorithm(name, problem.constants, **extra)
    assert built.params() == default.params()


def test_documented_ranges_and_choices():
    rows = {row["name"]: row for row in algorithm_parameters("gd-sec")}
    assert rows["beta"]["allowed"] == "a real number in (0, 1]" and rows["beta"]["type"] == "float"
    assert rows["xi"]["allowed"].startswith("a real number >= 0")
    assert rows["error_correction"]["type"] == "bool"
    init = {row["name"]: row for row in algorithm_parameters("ef21")}["init"]
    assert init["type"] == "str" and init["allowed"] == "one of full, compressed"
    ratio = {row["name"]: row for row in compressor_parameters("rand-k")}["ratio"]
    assert ratio["allowed"] == "ratio ∈ (0, 1]"  # "as in TopK" followed
    assert {row["name"]: row for row in compressor_parameters("qsgd")}["s"]["default"] \
        == REQUIRED
    for name in COMPRESSORS:
        compressor_parameters(name)
    with pytest.raises(InputError):
        algorithm_parameters("sgd")


def test_listing_is_plain_text_with_every_algorithm_and_check():
    text = format_catalog(catalog())
    assert "``" not in text and "^{" not in text and ":class:" not in text
    assert "THEORY" ".md" not in text
    lines = text.splitlines()
    for name in ALGORITHMS:
        [line] = [line for line in lines if line.startswith(f"  {name} ")]
        assert len(line.split()) > 8  # more than a name: what it is and its keys
    for name in known_checks():  # every check a case (and so the report) can use
        assert sum(line.startswith(f"  {name} ") for line in lines) == 1, name
