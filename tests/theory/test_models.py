"""The LMI models against the engine's algorithms: on real runs, the model's linear update maps
the algorithm's state and nonlinear outputs to its next state, and every quadratic constraint
holds. Input validation names the field."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from convcheck import make_algorithm
from convcheck.engine.oracle import Oracle
from convcheck.engine.rounds import start, sync_round
from convcheck.errors import InputError
from convcheck.theory.certified import model_for, state_rows
from convcheck.theory.models import ModelConstants, build_model
from tests.helpers import engine_problem


def heterogeneous_problem():
    return engine_problem("logistic", "sorted", workers=3, n_samples=120, n_features=5, lam=0.05)


def nonlinear_outputs(name, algorithm, problem, before, after, wire):
    """The model inputs ``w`` of one round, computed here from the algorithm's own states.

    EF21's model state holds the estimates formed at the current iterate, which the run forms
    in the next round; its compressor error is therefore that of the next round's correction,
    ``r_m = α(v_m − C(v_m))`` with ``v_m = ∇f_m(θ^{k+1}) − g_m``."""
    objective = problem.objective
    alpha = algorithm.alpha
    star = objective.worker_gradients(problem.optimum.theta)
    if name == "ef21":
        new = objective.worker_gradients(after.server.theta)
        gap = new - after.workers.estimates
        u = alpha * (new - star)
        return np.vstack([u, alpha * (gap - algorithm.compressor.compress(gap))])
    u = alpha * (objective.worker_gradients(before.server.theta) - star)
    if name == "gd":
        return u
    if name == "gd-sec":
        workers = before.workers
        delta = objective.worker_gradients(before.server.theta) - workers.h + workers.errors
        return np.vstack([u, alpha * (delta - wire.up)])
    if name == "ef":
        return np.vstack([u, after.workers.errors])
    return np.vstack([u, after.workers.errors, after.server.server_error[None, :]])  # bidir


CASES = [
    ("gd", {"alpha": "1/L"}),
    ("gd-sec", {"alpha": "0.5/L", "xi": 0.3}),
    ("gd-sec", {"alpha": "0.5/L", "xi": 0.3, "beta": 0.5}),
    ("gd-sec", {"alpha": "0.5/L", "xi": 0.3, "error_correction": False}),
    ("ef", {"alpha": "0.5/L", "k": 2}),
    ("ef21", {"alpha": "0.5/L", "k": 2}),
    ("ef21", {"alpha": "0.5/L", "k": 2, "init": "compressed"}),
    ("bidir-topk", {"alpha": "0.5/L", "k_up": 2, "k_down": 3}),
]


@pytest.mark.parametrize(("name", "params"), CASES)
def test_model_reproduces_the_algorithm_and_its_constraints_hold(name, params):
    problem = heterogeneous_problem()
    algorithm = make_algorithm(name, problem.constants, **params)
    model, why = model_for(algorithm, problem)
    assert model is not None, why
    (mode,) = model.modes
    main = model.main
    N, constraints = main.matrices(mode)
    size = main.size
    oracle = Oracle(problem.objective)
    theta0 = np.random.default_rng(1).normal(size=problem.objective.dim)
    state, _ = start(algorithm, theta0, problem.objective.n_workers,
                     lambda: oracle.worker_gradients(theta0))
    for _ in range(25):
        before = copy.deepcopy(state)
        wire = sync_round(algorithm, state, oracle.worker_gradients(state.model), None)
        s_k, _ = model.block_rows(state_rows(model, algorithm, problem, before))
        s_next, _ = model.block_rows(state_rows(model, algorithm, problem, state))
        v = np.vstack([s_k, nonlinear_outputs(name, algorithm, problem, before, state, wire)])
        assert v.shape[0] == size
        np.testing.assert_allclose(N @ v, s_next, rtol=1e-9, atol=1e-11)
        gram = v @ v.T
        scale = np.trace(gram)
        for constraint_name, kind, Q in constraints:
            value = float(np.sum(Q * gram))
            if kind == "inequality":
                assert value >= -1e-12 * scale, (constraint_name, value)
            else:
                assert abs(value) <= 1e-12 * scale, (constraint_name, value)


def test_a_wrong_model_is_caught_by_the_same_check():
    """The check above can fail: GD-SEC's model with the wrong β does not reproduce β = 0.5."""
    problem = heterogeneous_problem()
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.3, beta=0.5)
    wrong = build_model(
        "gd-sec",
        ModelConstants.from_constants(problem.constants),
        alpha=algorithm.alpha,
        xi=0.3,
        beta=1.0,
    )
    oracle = Oracle(problem.objective)
    state, _ = start(algorithm, np.ones(problem.objective.dim), problem.objective.n_workers,
                     lambda: None)
    sync_round(algorithm, state, oracle.worker_gradients(state.model), None)
    before = copy.deepcopy(state)
    wire = sync_round(algorithm, state, oracle.worker_gradients(state.model), None)
    v = np.vstack(
        [
            wrong.block_rows(state_rows(wrong, algorithm, problem, before))[0],
            nonlinear_outputs("gd-sec", algorithm, problem, before, state, wire),
        ]
    )
    N, _ = wrong.main.matrices(wrong.modes[0])
    after = wrong.block_rows(state_rows(wrong, algorithm, problem, state))[0]
    assert not np.allclose(N @ v, after, atol=1e-6)


def test_constant_validation_names_the_field():
    with pytest.raises(InputError, match="'mu'"):
        ModelConstants.make(1.0, 2.0)
    with pytest.raises(InputError, match="'L'"):
        ModelConstants.make(-1.0, 0.0)
    with pytest.raises(InputError, match="'mu'"):
        ModelConstants.make(1.0, -0.1)
    with pytest.raises(InputError, match="'L_workers'") as error:
        ModelConstants.make(1.0, 0.1, 3, L_workers=[1.0, 2.0])
    assert "3 real numbers" in str(error.value)
    with pytest.raises(InputError, match="'L_workers'"):
        ModelConstants.make(1.0, 0.1, 2, L_workers=[1.0, -2.0])
    with pytest.raises(InputError, match="'mu_workers'"):
        ModelConstants.make(1.0, 0.1, 2, L_workers=[1.0, 2.0], mu_workers=[0.1, 3.0])
    with pytest.raises(InputError, match="'workers'"):
        ModelConstants.make(1.0, 0.1, 0)


def test_model_parameters_are_validated():
    c = ModelConstants.make(1.0, 0.1)
    with pytest.raises(InputError, match="'algorithm'"):
        build_model("sgd", c, alpha=1.0)
    with pytest.raises(InputError, match="'delta'"):
        build_model("ef21", c, alpha=1.0)
    with pytest.raises(InputError, match="'delta'"):
        build_model("ef21", c, alpha=1.0, delta=1.5)
    with pytest.raises(InputError, match="'alpha'"):
        build_model("gd", c, alpha=0.0)
    with pytest.raises(InputError, match="'xi'"):
        build_model("gd-sec", c, alpha=1.0, xi=-0.1)
    with pytest.raises(InputError, match="'gamma'"):
        build_model("gd", c, alpha=1.0, gamma=2)
    with pytest.raises(InputError, match="'tau'"):
        build_model("gd-delay", c, alpha=1.0, tau=-1)
    with pytest.raises(InputError, match="'lifting'"):
        build_model("ef21", c, alpha=1.0, delta=0.5, lifting="yes")
