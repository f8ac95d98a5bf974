"""Each update rule exists once: every registered algorithm runs on numpy float64 and on torch
float64 from the same module, and the two agree to 1e-12.

The torch rounds are driven by the torch simulator's transport (:class:`Runner` with an
:class:`ObjectiveOracle`, whose gradients are recomputed in torch) and compared with the numpy
engine's runs: iterates, worker states and the bit ledger.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from convcheck.algorithms import ALGORITHMS, make_algorithm
from convcheck.engine import run, run_async
from convcheck.engine.rounds import async_round, start, sync_round
from convcheck.engine.timing import Constant
from convcheck.torch.oracle import ObjectiveOracle
from convcheck.torch.runner import Runner
from tests.helpers import engine_problem

#: Deterministic parameters for every built-in algorithm (several per algorithm where the
#: rule branches).
CASES = [
    ("gd", {}),
    ("gd-sec", {"xi": 0.3}),
    ("gd-sec", {"xi": 0.2, "beta": 0.5}),
    ("gd-sec", {"xi": 0.4, "error_correction": False}),
    ("ef", {"k": 2}),
    ("ef", {"compressor": "sign"}),
    ("ef", {"k": 2, "error_memory": False}),
    ("ef21", {"k": 2}),
    ("ef21", {"k": 3, "init": "compressed"}),
    ("ef21-bc", {"k": 2, "k_down": 3}),
    ("ef21-bc", {"ratio": 0.5, "ratio_down": 0.5, "init": "compressed"}),
    ("bidir-topk", {"k_up": 3, "k_down": 2}),
    ("bidir-topk", {"ratio_up": 0.5, "ratio_down": 0.25}),
    ("lags", {"layers": "3,5", "k": [1, 2]}),
    ("async-sgd", {}),
    ("async-sparse-sgd", {"k": 2}),
    ("dgs", {"momentum": 0.8, "rho_up": 0.4, "rho_down": 0.4, "layers": "3,5", "resync": 4}),
]


def test_every_registered_algorithm_is_covered():
    assert {name for name, _ in CASES} == set(ALGORITHMS)


def _rounds(name, params, problem, backend, rounds=25):
    """Run the algorithm's halves on ``backend`` with the numpy objective's gradients (so only
    the algorithm's arithmetic differs); returns the states after each round."""
    alpha = 0.5 / problem.constants.L
    algorithm = make_algorithm(name, problem.constants, alpha=alpha, **params)
    objective = problem.objective
    to = (lambda a: a) if backend == "numpy" else torch.as_tensor
    back = (lambda a: a) if backend == "numpy" else (lambda t: t.numpy())

    def gradients(model):
        points = back(model)
        if points.ndim == 1:
            return to(objective.worker_gradients(points))
        return to(np.stack([objective.worker_gradients(p)[k] for k, p in enumerate(points)]))

    theta0 = to(np.linspace(-1.0, 1.0, objective.dim))
    states, _ = start(algorithm, theta0, objective.n_workers, lambda: gradients(theta0))
    history = []
    for _ in range(rounds):
        if "sync" in algorithm.transports:
            wire = sync_round(algorithm, states, gradients(states.model), None)
        else:
            wire = async_round(algorithm, states, gradients(states.model), None,
                               range(objective.n_workers))
        fields = {f"server.{f.name}": getattr(states.server, f.name)
                  for f in dataclasses.fields(states.server)}
        fields.update({f"workers.{f.name}": getattr(states.workers, f.name)
                       for f in dataclasses.fields(states.workers)})
        fields["up"] = wire.up
        history.append({k: np.asarray(back(v), dtype=np.float64) if not isinstance(v, int)
                        else v for k, v in fields.items()})
    return history


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in
                                                          enumerate(CASES)])
def test_numpy_and_torch_run_the_same_module(name, params):
    problem = engine_problem("logistic", "sorted", workers=3, n_features=8)
    numpy_rounds = _rounds(name, params, problem, "numpy")
    torch_rounds = _rounds(name, params, problem, "torch")
    moved = False
    for a, b in zip(numpy_rounds, torch_rounds, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-12, err_msg=key)
        moved = moved or np.abs(a["server.theta"] - np.linspace(-1, 1, 8)).max() > 1e-6
    assert moved


SYNC = [case for case in CASES if case[0] not in ("async-sgd", "async-sparse-sgd", "dgs")]


@pytest.mark.parametrize(("name", "params"), SYNC, ids=[f"{n}-{i}" for i, (n, _) in
                                                         enumerate(SYNC)])
def test_torch_simulator_equals_the_numpy_engine(name, params):
    """The torch simulator's transport (Runner, torch gradients) against the numpy engine:
    iterates to 1e-10 after 30 rounds, the bit ledger exactly."""
    problem = engine_problem("ridge", "sorted", n_features=8)
    alpha = 0.5 / problem.constants.L
    reference = run(make_algorithm(name, problem.constants, alpha=alpha, **params), problem, 30)
    runner = Runner(make_algorithm(name, alpha=alpha, **params),
                    ObjectiveOracle(problem.objective), torch.zeros(8, dtype=torch.float64))
    runner.run(30)
    np.testing.assert_allclose(runner.theta.numpy(), reference.theta, rtol=0, atol=1e-10)
    ledger = runner.ledger.to_ledger()
    np.testing.assert_array_equal(ledger.up, reference.ledger.up)
    np.testing.assert_array_equal(ledger.down, reference.ledger.down)


@pytest.mark.parametrize("resync", [None, 4])
def test_torch_dgs_rounds_equal_the_numpy_event_engine(resync) -> None:
    """With equal constant compute times and instantaneous links the event engine's arrivals
    tie within each round and are served in worker order: the asynchronous rounds of the torch
    simulator (cyclic order). Iterates and the bits of both directions agree."""
    problem = engine_problem("ridge", "sorted", workers=3, n_features=8)
    alpha, rounds = 0.3 / problem.constants.L, 12
    params = {"momentum": 0.8, "rho_up": 0.4, "rho_down": 0.4, "layers": "3,5",
              "resync": resync}
    reference = run_async(make_algorithm("dgs", problem.constants, alpha=alpha, **params),
                          problem, rounds * 3, compute=Constant(1.0), stop_at_target=False)
    runner = Runner(make_algorithm("dgs", alpha=alpha, **params),
                    ObjectiveOracle(problem.objective), torch.zeros(8, dtype=torch.float64))
    runner.run(rounds)
    np.testing.assert_allclose(runner.theta.numpy(), reference.theta, rtol=0, atol=1e-10)
    assert not np.allclose(reference.theta, 0.0)
    assert runner.ledger.totals() == reference.ledger.totals()
