"""make_algorithm and resolve_step: names, step-size expressions, parameter routing, errors."""

from __future__ import annotations

import pytest

from convcheck.algorithms import ALGORITHMS, make_algorithm, resolve_step
from convcheck.compressors import TopK
from convcheck.errors import InputError
from tests.helpers import engine_problem


def test_every_algorithm_builds_with_defaults():
    constants = engine_problem().constants
    extra = {
        "ef": {"k": 2},
        "ef21": {"k": 2},
        "bidir-topk": {"k_up": 2, "k_down": 3},
        "async-sparse-sgd": {"k": 2},
        "lags": {"ratio": 0.5},
        "ef21-bc": {"k": 2, "k_down": 2},
    }
    for name in ALGORITHMS:
        algorithm = make_algorithm(name, constants, **extra.get(name, {}))
        assert algorithm.name == name
        assert algorithm.alpha == pytest.approx(1.0 / constants.L)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1/L", lambda c: 1 / c.L),
        ("0.5/L_tilde", lambda c: 0.5 / c.L_tilde),
        ("2/L_max", lambda c: 2 / c.L_max),
        ("1e-1/mu", lambda c: 0.1 / c.mu),
    ],
)
def test_resolve_step(text, expected):
    constants = engine_problem().constants
    assert resolve_step(text, constants) == pytest.approx(expected(constants))


@pytest.mark.parametrize("text", ["L", "1/Q", "-1/L", "0/L", "abc", "1/L/2"])
def test_resolve_step_rejects(text):
    with pytest.raises(InputError) as raised:
        resolve_step(text, engine_problem().constants)
    assert raised.value.field == "alpha"


def test_compressor_parameters_are_routed():
    algorithm = make_algorithm("ef", alpha=0.1, compressor="rand-k", k=3, scaled=True)
    assert algorithm.compressor.params()["k"] == 3 and algorithm.compressor.scaled
    algorithm = make_algorithm("ef21", alpha=0.1, compressor=TopK(k=1), init="compressed")
    assert algorithm.init == "compressed"


@pytest.mark.parametrize(
    "name, params, field",
    [
        ("nosuch", {}, "algorithm"),
        ("gd", {"alpha": 0.0}, "alpha"),
        ("gd", {"alpha": "1/L"}, "alpha"),  # no constants given
        ("gd", {"alpha": 1.0, "xi": 0.1}, "xi"),
        ("gd-sec", {"alpha": 1.0, "beta": 2.0}, "beta"),
        ("ef", {"alpha": 1.0, "compressor": "nosuch"}, "compressor"),
        ("ef", {"alpha": 1.0, "k": 2, "bogus": 1}, "bogus"),
        ("ef", {"alpha": 1.0}, "k"),
        ("ef", {"alpha": 1.0, "compressor": TopK(k=1), "k": 2}, "k"),
    ],
)
def test_errors_name_the_field(name, params, field):
    with pytest.raises(InputError) as raised:
        make_algorithm(name, **params)
    assert raised.value.field == field
