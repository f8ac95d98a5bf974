"""EF21-BC: its special cases (EF21, GD), the copies of b it keeps in step, its bits."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.algorithms import EF21, EF21BC, GD
from convcheck.compressors import Identity, TopK
from convcheck.encoding import sparse_bits
from convcheck.engine import run
from convcheck.errors import InputError
from tests.helpers import engine_problem


def test_identity_downlink_is_ef21_to_round_off():
    problem = engine_problem(split="sorted")
    alpha = 0.5 / problem.constants.L
    bc = run(EF21BC(alpha, TopK(k=2), ratio_down=1.0), problem, 200)
    ef21 = run(EF21(alpha, TopK(k=2)), problem, 200)
    np.testing.assert_allclose(bc.theta, ef21.theta, rtol=1e-12, atol=1e-14)
    assert np.all(bc.columns["downlink_error_sq"][1:] <= 1e-28)  # b = 0 before round 1


def test_identity_both_ways_is_gd_to_round_off():
    problem = engine_problem()
    alpha = 1.0 / problem.constants.L
    bc = run(EF21BC(alpha, Identity(), ratio_down=1.0), problem, 200)
    np.testing.assert_allclose(bc.theta, run(GD(alpha), problem, 200).theta, rtol=1e-11,
                               atol=1e-13)


def test_every_node_steps_with_the_same_b_and_the_server_tracks_the_mean():
    problem = engine_problem(split="sorted")
    checked = []

    def observe(k, states, wire, gradients):
        server, workers = states.server, states.workers
        np.testing.assert_array_equal(workers.b, server.b)  # same additions, same bits
        np.testing.assert_array_equal(states.model, server.theta)
        np.testing.assert_allclose(server.estimate, workers.estimates.mean(axis=0),
                                   rtol=1e-12, atol=1e-14)
        checked.append(k)

    result = run(EF21BC(0.5 / problem.constants.L, TopK(k=2), k_down=3), problem, 60,
                 observer=observe)
    assert checked == list(range(1, 61)) and result.columns["downlink_error_sq"][-1] > 0


def test_bits_are_sparse_both_ways():
    problem = engine_problem(split="sorted")
    d, workers = problem.objective.dim, problem.objective.n_workers
    broadcasts = []
    result = run(EF21BC(0.5 / problem.constants.L, TopK(k=2), k_down=3), problem, 20,
                 observer=lambda k, s, wire, g: broadcasts.append(wire.down[0][0]))
    assert np.all(result.ledger.up[0] == 32 * d)  # g_m = ∇f_m(θ⁰), densely
    expected = [sparse_bits(int(np.count_nonzero(p)), d, 32) for p in broadcasts]
    np.testing.assert_array_equal(result.ledger.down[1:],
                                  np.repeat(np.array(expected)[:, None], workers, axis=1))
    assert max(np.count_nonzero(p) for p in broadcasts) == 3


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"k_down": 2, "ratio_down": 0.5}, "k_down"),
    ({}, "k_down"),
    ({"k_down": 0}, "k_down"),
    ({"ratio_down": 1.5}, "ratio_down"),
])
def test_bad_input(kwargs, field):
    with pytest.raises(InputError) as raised:
        EF21BC(0.1, TopK(k=1), **kwargs)
    assert raised.value.field == field
