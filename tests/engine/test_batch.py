"""Batched runs: each run of a batch equals the same run alone, whatever happens to the others."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck import bench
from convcheck.algorithms import ALGORITHMS, make_algorithm
from convcheck.algorithms.gd import GD
from convcheck.engine import run
from convcheck.engine.batch import batched_algorithm, group_key, run_batch
from convcheck.errors import InputError
from tests.helpers import engine_problem


def assert_same_run(batched, alone, *, exact=True):
    """Trace, ledger, status, summary, last iterate and engine metadata of the run alone:
    bit for bit (``exact``), else the trace and iterate to 1e-12 relative."""
    assert (batched.status, batched.reason) == (alone.status, alone.reason)
    assert list(batched.columns) == list(alone.columns)
    for name, column in alone.columns.items():
        if exact or column.dtype.kind == "i":
            np.testing.assert_array_equal(batched.columns[name], column, err_msg=name)
        else:
            np.testing.assert_allclose(batched.columns[name], column, rtol=1e-12, atol=0,
                                       err_msg=name)
    np.testing.assert_array_equal(batched.ledger.up, alone.ledger.up)
    np.testing.assert_array_equal(batched.ledger.down, alone.ledger.down)
    assert repr(batched.summary) == repr(alone.summary)  # repr: NaN entries compare equal
    if exact:
        np.testing.assert_array_equal(batched.theta, alone.theta)
    else:
        np.testing.assert_allclose(batched.theta, alone.theta, rtol=1e-12, atol=0)
    for key in ("engine", "seed", "theta0", "oracle", "algorithm", "iterations_requested"):
        assert batched.meta[key] == alone.meta[key], key


def check_against_alone(algorithms, problem, iterations, theta0=None, seeds=0, **settings):
    """``run_batch`` of ``algorithms`` and each run alone: equal; returns the batch."""
    batch = run_batch(algorithms, problem, iterations, theta0=theta0, seeds=seeds, **settings)
    count = len(algorithms)
    points = [None] * count if theta0 is None else list(theta0)
    seeds = [seeds] * count if isinstance(seeds, int) else list(seeds)
    assert len(batch) == count
    for algorithm, point, seed, batched in zip(algorithms, points, seeds, batch, strict=True):
        alone = run(algorithm, problem, iterations, theta0=point, seed=seed, **settings)
        assert_same_run(batched, alone)
    return batch


def _starts(problem, count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=problem.objective.dim) for _ in range(count)]


#: One batchable group per synchronous algorithm: fixed parameters and the per-run ones.
GROUPS = {
    "gd": ({}, [{"alpha": 0.4}, {"alpha": 1.0}, {"alpha": 1.8}]),
    "gd-sec": ({}, [{"alpha": 0.5, "xi": 0.0, "beta": 1.0}, {"alpha": 1.0, "xi": 0.3, "beta": 0.5},
                    {"alpha": 1.5, "xi": 1.2, "beta": 0.8}, {"alpha": 1.0, "xi": 0.3,
                                                             "beta": 1.0}]),
    "ef": ({"compressor": "top-k", "k": 2}, [{"alpha": 0.5}, {"alpha": 1.0}, {"alpha": 1.6}]),
    "ef21": ({"compressor": "top-k", "k": 3, "init": "compressed"},
             [{"alpha": 0.3}, {"alpha": 0.6}, {"alpha": 0.9}]),
    "ef21-bc": ({"compressor": "top-k", "k": 3, "k_down": 4},
                [{"alpha": 0.2}, {"alpha": 0.5}]),
    "bidir-topk": ({"k_up": 2, "k_down": 3}, [{"alpha": 0.5}, {"alpha": 1.0}, {"alpha": 1.4}]),
    "lags": ({"layers": "3,5", "k": [1, 2]}, [{"alpha": 0.5}, {"alpha": 1.2}]),
}


def test_every_synchronous_algorithm_is_covered():
    synchronous = {name for name, cls in ALGORITHMS.items() if "sync" in cls.transports}
    assert synchronous == set(GROUPS)
    assert all(ALGORITHMS[name].batch_axis for name in GROUPS)


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_batch_equals_runs_alone(name):
    """Mixed α (and β, ξ), start points and seeds: one group, every run equal to its run alone
    (bit for bit), with every diagnostic."""
    problem = engine_problem("logistic", "sorted")
    fixed, per_run = GROUPS[name]
    L = problem.constants.L
    algorithms = [make_algorithm(name, problem.constants, **fixed,
                                 **{**values, "alpha": values["alpha"] / L})
                  for values in per_run]
    assert len({group_key(a) for a in algorithms}) == 1
    batch = check_against_alone(algorithms, problem, 25,
                                theta0=_starts(problem, len(algorithms)),
                                seeds=list(range(len(algorithms))))
    assert all(r.meta["batch"]["batched_with"] == len(algorithms) for r in batch)
    assert all(len(r.columns) == 12 + len(algorithms[0].diagnostic_names) for r in batch)


def test_mixed_parameters_on_block_shards_and_ridge():
    """Sparse data (the block-diagonal layout) and a ridge problem with a reference optimum."""
    case = bench.Case(3, 40, 240, 0.1)
    sparse = bench.benchmark_problem(case, bench.synthetic_logistic(case, 1), 1)
    ridge = engine_problem("ridge", "iid")
    for problem in (sparse, ridge):
        L = problem.constants.L
        algorithms = [make_algorithm("gd-sec", problem.constants, alpha=a / L, xi=x, beta=b)
                      for a, x, b in ((0.5, 0.1, 1.0), (1.0, 0.5, 0.6), (1.9, 2.0, 0.9))]
        check_against_alone(algorithms, problem, 30, theta0=_starts(problem, 3, seed=2))


def test_runs_that_diverge_or_reach_the_target_leave_and_the_others_go_on():
    """Some step sizes blow up (at different rounds), some reach the target (at different
    rounds), some neither: each run stops where it would alone, the others are unaffected."""
    problem = engine_problem("ridge", "iid")
    L = problem.constants.L
    steps = [0.2, 1.0, 1.5, 2.2, 2.6, 4.0, 40.0, 0.05]
    algorithms = [make_algorithm("gd-sec", problem.constants, alpha=c / L, xi=0.2)
                  for c in steps]
    batch = check_against_alone(algorithms, problem, 120, theta0=_starts(problem, 8),
                                target=1e-8)
    statuses = [r.status for r in batch]
    assert statuses == ["completed", "target reached", "target reached", "diverged",
                        "diverged", "diverged", "diverged", "completed"]
    stops = {r.summary["iterations"] for r in batch if r.status != "completed"}
    assert len(stops) == 6  # they leave the batch at different rounds


def test_target_without_stopping_and_other_metrics():
    problem = engine_problem("ridge", "iid")
    L = problem.constants.L
    algorithms = [make_algorithm("ef", problem.constants, alpha=c / L, compressor="top-k", k=3)
                  for c in (0.3, 1.0, 1.5)]
    for metric, target in (("grad_norm_sq", 2e-5), ("dist_sq", 1e-3)):
        batch = check_against_alone(algorithms, problem, 80, target=target,
                                    target_metric=metric, stop_at_target=False)
        reached = [r.summary["target_iteration"] for r in batch]
        assert len(set(reached)) == 3 and None not in reached[1:]
        assert all(r.status == "completed" for r in batch)


def test_a_run_that_blows_up_at_once():
    """Diverging from the first round on (non-finite values after a few rounds)."""
    problem = engine_problem("ridge", "iid")
    L = problem.constants.L
    algorithms = [GD(alpha) for alpha in (1.0 / L, 1e3 / L, 1e8 / L)]
    batch = check_against_alone(algorithms, problem, 40, blowup=10.0)
    assert [r.status for r in batch] == ["completed", "diverged", "diverged"]


def test_runs_are_split_into_groups_automatically():
    """Different classes, compressors, k, flags and randomized runs: split, each run equal to
    its run alone, and ``meta['batch']`` says how it ran."""
    problem = engine_problem("logistic", "sorted")
    L = problem.constants.L
    make = lambda name, **p: make_algorithm(name, problem.constants, **p)  # noqa: E731
    algorithms = [
        make("gd-sec", alpha=0.5 / L, xi=0.1),
        make("ef", alpha=0.5 / L, compressor="top-k", k=2),
        make("gd-sec", alpha=1.0 / L, xi=0.4),
        make("ef", alpha=1.0 / L, compressor="top-k", k=3),
        make("ef", alpha=1.5 / L, compressor="top-k", k=2),
        make("gd-sec", alpha=1.0 / L, xi=0.4, error_correction=False),
        make("ef", alpha=1.0 / L, compressor="rand-k", k=2),
        make("gd", alpha=1.0 / L, batch_size=7),
        make("gd-sec", alpha=1.2 / L, xi=[0.1] * problem.objective.dim),
        make("gd-sec", alpha=0.8 / L, xi=[0.1] * problem.objective.dim),
    ]
    keys = [group_key(a) for a in algorithms]
    assert keys[0] == keys[2] and keys[1] == keys[4] and keys[8] == keys[9]
    assert len({keys[0], keys[1], keys[3], keys[5], keys[8]}) == 5
    assert keys[6] is None and keys[7] is None
    batch = check_against_alone(algorithms, problem, 20, seeds=[3] * len(algorithms))
    assert [r.meta["batch"]["batched_with"] for r in batch] == [2, 2, 2, 1, 2, 1, 1, 1, 2, 2]
    assert "randomized" in batch[6].meta["batch"]["note"]
    assert "only run" in batch[3].meta["batch"]["note"]


def test_injected_bugs_run_alone():
    """A mutant's hooks index the worker axis as axis 0: it never shares a batch."""
    problem = engine_problem("logistic", "sorted")
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="1/L", xi=0.2)
    mutant = next(m for m in type(algorithm).mutants if m.name == "sum-not-mean")
    mutated = [mutant.apply(algorithm) for _ in range(2)]
    assert group_key(mutated[0]) is None
    batch = check_against_alone(mutated, problem, 10)
    assert all("no batch axis" in r.meta["batch"]["note"] for r in batch)


def test_a_batch_over_the_memory_budget_is_chunked_and_says_so():
    problem = engine_problem("logistic", "sorted")
    L = problem.constants.L
    algorithms = [GD(c / L) for c in np.linspace(0.2, 1.8, 7)]
    budget = 3 * 40_000  # a few runs' traces and working arrays at a time
    batch = check_against_alone(algorithms, problem, 60, memory_budget=budget)
    sizes = [r.meta["batch"]["batched_with"] for r in batch]
    assert max(sizes) < 7
    assert all("chunks" in r.meta["batch"]["note"] for r in batch)
    assert all("memory budget" in r.meta["batch"]["note"] for r in batch)


def test_runs_whose_trace_exceeds_the_budget_are_refused_or_run_alone():
    problem = engine_problem("logistic", "sorted")
    algorithms = [GD(0.5), GD(0.7)]
    with pytest.raises(InputError) as error:
        run_batch(algorithms, problem, 1000, memory_budget=2000)
    assert error.value.field == "iterations"
    batch = check_against_alone(algorithms, problem, 1000, memory_budget=6000, target=1e-3)
    assert all("memory budget" in r.meta["batch"]["note"] for r in batch)


def test_the_same_algorithm_with_several_seeds_and_start_points():
    problem = engine_problem("logistic", "sorted")
    algorithm = make_algorithm("bidir-topk", problem.constants, alpha="1/L", k_up=2, k_down=4)
    starts = np.stack(_starts(problem, 4, seed=5))
    batch = check_against_alone([algorithm] * 4, problem, 15, theta0=starts, seeds=[0, 1, 2, 3])
    assert [r.meta["seed"] for r in batch] == [0, 1, 2, 3]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"seeds": [0, 1, 2]}, "seeds"),
    ({"seeds": [0, -1]}, "seed"),
    ({"theta0": [None]}, "theta0"),
    ({"theta0": np.zeros((2, 3))}, "theta0"),
    ({"iterations": 0}, "iterations"),
    ({"target_metric": "speed"}, "target_metric"),
    ({"blowup": 0.5}, "blowup"),
    ({"memory_budget": 0}, "memory_budget"),
])
def test_bad_input(kwargs, field):
    problem = engine_problem("logistic", "sorted")
    kwargs = {"iterations": 5, **kwargs}
    with pytest.raises(InputError) as error:
        run_batch([GD(0.1), GD(0.2)], problem, **kwargs)
    assert error.value.field == field


def test_runs_of_different_problems_are_refused():
    first, second = engine_problem("logistic", "sorted"), engine_problem("ridge", "iid")
    with pytest.raises(InputError) as error:
        run_batch([GD(0.1), GD(0.2)], [first, second], 5)
    assert error.value.field == "problem"
    assert "same Problem" in str(error.value)
    assert len(run_batch([GD(0.1), GD(0.2)], [first, first], 3)) == 2


def test_refused_before_any_run():
    """A parameter that does not fit the dimension, or an asynchronous algorithm, anywhere
    in the request: refused before anything runs."""
    problem = engine_problem("logistic", "sorted")
    d = problem.objective.dim
    good = make_algorithm("ef", problem.constants, alpha="1/L", compressor="top-k", k=2)
    bad = make_algorithm("ef", problem.constants, alpha="1/L", compressor="top-k", k=d + 1)
    with pytest.raises(InputError) as error:
        run_batch([good, good, bad], problem, 5)
    assert error.value.field == "compressor"
    asynchronous = make_algorithm("async-sgd", problem.constants, alpha="1/L")
    with pytest.raises(InputError) as error:
        run_batch([good, asynchronous], problem, 5)
    assert error.value.field == "algorithm"
    with pytest.raises(InputError):
        run_batch([], problem, 5)


def test_batched_algorithm_holds_per_run_values_only_where_they_differ():
    problem = engine_problem("logistic", "sorted")
    algorithms = [make_algorithm("gd-sec", problem.constants, alpha=a, xi=0.3, beta=b)
                  for a, b in ((0.1, 0.5), (0.2, 0.5))]
    batched = batched_algorithm(algorithms)
    np.testing.assert_array_equal(batched.alpha.values, [0.1, 0.2])
    assert batched.xi == 0.3 and batched.beta == 0.5
    assert algorithms[0].alpha == 0.1  # the runs' own algorithms are untouched
