"""Each torch algorithm in float64 takes the numpy engine's steps on the same problems.

The torch gradients come from :class:`convcheck.torch.oracle.ObjectiveOracle` (recomputed in
torch), the numpy ones from :mod:`convcheck.objectives`; iterates, error memories and the bit
ledger are compared after one step and after 30 steps (tolerance 1e-10, bits exactly).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convcheck.algorithms import ErrorFeedback as NumpyEF
from convcheck.algorithms import make_algorithm as numpy_algorithm
from convcheck.compressors import LayerTopK
from convcheck.engine import Oracle, run
from convcheck.torch.algorithms import LAGS, make_algorithm
from convcheck.torch.oracle import ObjectiveOracle
from convcheck.torch.runner import Runner
from tests.helpers import engine_problem

CASES = [
    ("gd", {}),
    ("gd-sec", {"xi": 0.3}),
    ("gd-sec", {"xi": 0.2, "beta": 0.5}),
    ("gd-sec", {"xi": 0.4, "error_correction": False}),
    ("ef", {"k": 2}),
    ("ef", {"compressor": "sign"}),
    ("ef21", {"k": 2}),
    ("ef21", {"k": 3, "init": "compressed"}),
    ("bidir-topk", {"k_up": 3, "k_down": 2}),
    ("bidir-topk", {"ratio_up": 0.5, "ratio_down": 0.25}),
]
#: numpy state field → torch state field (same names here)
STATE_FIELDS = {
    "gd-sec": ("h_workers", "h_server", "errors", "theta_prev"),
    "ef": ("errors",),
    "ef21": ("estimates", "estimate"),
    "bidir-topk": ("errors", "server_error"),
}


def torch_runner(name: str, params: dict, problem, steps: int, alpha: float) -> Runner:
    oracle = ObjectiveOracle(problem.objective)
    runner = Runner(
        make_algorithm(name, alpha=alpha, **params), oracle,
        torch.zeros(problem.objective.dim, dtype=torch.float64),
    )
    runner.run(steps)
    return runner


@pytest.mark.parametrize("family", ["ridge", "logistic"])
@pytest.mark.parametrize(("name", "params"), CASES)
def test_torch_step_equals_numpy_step(family: str, name: str, params: dict) -> None:
    problem = engine_problem(family, "sorted")
    alpha = 0.5 / problem.constants.L
    numpy_alg = numpy_algorithm(name, problem.constants, alpha=alpha, **params)
    oracle, rng = Oracle(problem.objective), np.random.default_rng(0)
    state, _ = numpy_alg.start(np.zeros(problem.objective.dim), oracle, rng)
    numpy_alg.step(state, oracle, rng)
    runner = torch_runner(name, params, problem, 1, alpha)
    np.testing.assert_allclose(runner.theta.numpy(), state.theta, rtol=0, atol=1e-10)
    assert not np.allclose(state.theta, 0.0)  # the step moved
    for field in STATE_FIELDS.get(name, ()):
        np.testing.assert_allclose(
            getattr(runner.state, field).numpy(), getattr(state, field), rtol=0, atol=1e-10
        )


@pytest.mark.parametrize(("name", "params"), CASES)
def test_torch_trajectory_and_ledger_equal_the_engine(name: str, params: dict) -> None:
    problem = engine_problem("ridge", "sorted")
    alpha = 0.5 / problem.constants.L
    reference = run(numpy_algorithm(name, problem.constants, alpha=alpha, **params), problem, 30)
    runner = torch_runner(name, params, problem, 30, alpha)
    np.testing.assert_allclose(runner.theta.numpy(), reference.theta, rtol=0, atol=1e-10)
    ledger = runner.ledger.to_ledger()
    np.testing.assert_array_equal(ledger.up, reference.ledger.up)
    np.testing.assert_array_equal(ledger.down, reference.ledger.down)


def test_lags_is_error_feedback_with_layer_top_k() -> None:
    """LAGS = classic EF with a layer-wise top-k: same iterates and uplink bits as the numpy
    EF; its downlink is priced per layer (each layer's aggregate is its own message)."""
    problem = engine_problem("ridge", "sorted", n_features=9)
    alpha, sizes, k = 0.5 / problem.constants.L, (4, 2, 3), (2, 1, 1)
    numpy_ef = NumpyEF(alpha, LayerTopK(sizes, k))
    reference = run(numpy_ef, problem, 30)
    oracle = ObjectiveOracle(problem.objective)
    runner = Runner(LAGS(alpha, sizes, k=k), oracle, torch.zeros(9, dtype=torch.float64))
    runner.run(30)
    np.testing.assert_allclose(runner.theta.numpy(), reference.theta, rtol=0, atol=1e-10)
    ledger = runner.ledger.to_ledger()
    np.testing.assert_array_equal(ledger.up, reference.ledger.up)
    # downlink: per layer, the nonzeros of the aggregate; recomputed here with numpy
    numpy_state, _ = numpy_ef.start(np.zeros(9), Oracle(problem.objective), None)
    engine_oracle, expected = Oracle(problem.objective), []
    for _ in range(30):
        messages = numpy_ef.step(numpy_state, engine_oracle, None)
        expected.append(LayerTopK(sizes, (4, 2, 3)).bits(messages.down))
    assert np.array_equal(ledger.down[1:], np.repeat(np.array(expected)[:, None], 5, axis=1))


@pytest.mark.parametrize("resync", [None, 4])
def test_torch_dgs_rounds_equal_the_numpy_event_engine(resync) -> None:
    """With equal constant compute times and instantaneous links the event engine's arrivals
    tie within each round and are served in worker order: the torch DGS with ``order="cyclic"``
    in rounds. Iterates, worker models and the bits of both directions must agree."""
    from convcheck.engine import run_async
    from convcheck.engine.timing import Constant

    problem = engine_problem("ridge", "sorted", workers=3, n_features=8)
    alpha, rounds, sizes = 0.3 / problem.constants.L, 12, (3, 5)
    numpy_dgs = numpy_algorithm("dgs", problem.constants, alpha=alpha, momentum=0.8,
                                rho_up=0.4, rho_down=0.4, layers="3,5", resync=resync)
    reference = run_async(numpy_dgs, problem, rounds * 3, compute=Constant(1.0),
                          stop_at_target=False)
    runner = torch_runner("dgs", {"momentum": 0.8, "ratio_up": 0.4, "ratio_down": 0.4,
                                  "layer_sizes": sizes, "resync_every": resync},
                          problem, rounds, alpha)
    np.testing.assert_allclose(runner.theta.numpy(), reference.theta, rtol=0, atol=1e-10)
    assert not np.allclose(reference.theta, 0.0)
    assert runner.ledger.totals() == reference.ledger.totals()
