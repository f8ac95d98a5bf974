"""EF21: identity is GD, G^k, initializations, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import EF21, GD
from convcheck.compressors import Identity, TopK
from convcheck.engine import run
from convcheck.errors import InputError
from tests.helpers import engine_problem


def test_identity_equals_gd_to_round_off():
    """g_m + (∇f_m − g_m) equals ∇f_m only up to one rounding, hence a tolerance."""
    problem = engine_problem()
    alpha = 1.0 / problem.constants.L
    gd, ef21 = run(GD(alpha), problem, 200), run(EF21(alpha, Identity()), problem, 200)
    np.testing.assert_allclose(ef21.theta, gd.theta, rtol=1e-12, atol=1e-14)
    assert np.all(ef21.columns["ef21_G"] <= 1e-28)


def test_G_is_the_estimation_error():
    problem = engine_problem(split="sorted")
    result = run(EF21(1.0 / problem.constants.L, TopK(k=2)), problem, 100)
    G = result.columns["ef21_G"]
    assert G[0] == 0.0  # init="full" sends ∇f_m(θ⁰) exactly
    assert G[1:].max() > 0 and G[-1] < G[1:].max()


def test_initial_messages_are_counted():
    """init="full" sends ∇f_m(θ⁰) densely before the first round, whose corrections are then
    C(0) = 0; init="compressed" sends nothing first and C(∇f_m(θ⁰)) in the first round."""
    problem = engine_problem()
    d, workers = problem.objective.dim, problem.objective.n_workers
    full = run(EF21(1.0, TopK(k=2)), problem, 3)
    assert full.columns["bits_up"][0] == workers * d * 32
    assert full.columns["bits_up"][1] == 0
    compressed = run(EF21(1.0, TopK(k=2), init="compressed"), problem, 3)
    assert compressed.columns["bits_up"][0] == 0
    assert 0 < compressed.columns["bits_up"][1] < full.columns["bits_up"][0]
    assert compressed.columns["ef21_G"][0] > 0


@pytest.mark.parametrize(
    "args, kwargs, field",
    [
        ((-1.0, TopK(k=1)), {}, "alpha"),
        ((1.0, None), {}, "compressor"),
        ((1.0, TopK(k=1)), {"init": "zero"}, "init"),
    ],
)
def test_bad_input(args, kwargs, field):
    with pytest.raises(InputError) as raised:
        EF21(*args, **kwargs)
    assert raised.value.field == field
