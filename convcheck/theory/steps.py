"""Before a run: is the chosen step (and the rest) inside some applicable bound's conditions?

:func:`step_warning` returns a warning when every closed-form bound about the algorithm on the
problem's class has a failed condition (for example GD with ``α ≥ 2/L``, GD-SEC with ``ξ`` too
large), or when the step of an asynchronous SGD run exceeds the largest step of the derived
asynchronous bound even with no staleness. It returns ``None`` when some bound applies, and
when no closed-form bound speaks about the algorithm at all (classic EF, DGS): then there is
nothing to say before the run. The certified (LMI) bound is left out (it solves SDPs).
"""

from __future__ import annotations

from convcheck.algorithms.async_sgd import AsyncSparseSGD
from convcheck.algorithms.base import Algorithm
from convcheck.problem import Problem


def _async_warning(algorithm: AsyncSparseSGD, problem: Problem, workers: int,
                   tau_max: int | None) -> str | None:
    """The derived asynchronous bound (docs/async-theory.md) needs ``1 − 2Lα − 4Q ≥ 0``; ``Q``
    grows with ``τ_max``, the update gap ``H ≥ 1`` and ``κ ≥ 1``, so the largest step with
    ``τ_max`` as given (else 0), ``H = 1`` and ``κ = 1`` bounds every admissible step."""
    from convcheck.theory.asynchronous import max_step

    compressor = algorithm.compressor
    dimension = problem.objective.dim
    if compressor.guarantee != "contractive":
        return None
    delta = compressor.delta(dimension)
    if delta < 1.0 and not algorithm.error_memory:
        return None
    largest = max_step(problem.constants.L, delta, tau_max or 0, workers, holding=1)
    if algorithm.alpha <= largest:
        return None
    staleness = f"τ_max = {tau_max}" if tau_max is not None else "no staleness at all"
    return (f"step α = {algorithm.alpha:.6g} is above the largest step of the asynchronous "
            f"bound (async-sparse-sgd/nonconvex, 1 − 2Lα − 4Q ≥ 0): α ≤ {largest:.6g} even with "
            f"{staleness} (L = {problem.constants.L:.6g}, δ = {delta:.3g}, {workers} workers); "
            "no bound covers this run, which may diverge. Try --set alpha="
            f"{largest * problem.constants.L:.3g}/L or smaller.")


def step_warning(algorithm: Algorithm, problem: Problem, *, workers: int | None = None,
                 tau_max: int | None = None) -> str | None:
    """A warning when the run's settings are outside every applicable bound's conditions.

    Parameters
    ----------
    algorithm, problem
        What will run.
    workers : int, optional
        Asynchronous runs: the number of workers ``W`` (default: one per shard).
    tau_max : int, optional
        Asynchronous runs: the staleness bound, if one is imposed.
    """
    algorithm.prepare(problem.objective.dim)  # refuses parameters that do not fit d
    if isinstance(algorithm, AsyncSparseSGD):
        count = problem.objective.n_workers if workers is None else workers
        return _async_warning(algorithm, problem, count, tau_max)
    from convcheck.theory.registry import bounds_for

    failures = []
    for bound in bounds_for(algorithm, problem, certified=False):
        failed = [c for c in bound.conditions(bound.constants(algorithm, problem)) if not c.holds]
        if not failed:
            return None
        failures.append(f"{bound.name}: " + "; ".join(
            f"{c.statement} fails ({c.values})" if c.values else f"{c.statement} fails"
            for c in failed))
    if not failures:
        return None
    return (f"the settings of {algorithm.name} (α = {algorithm.alpha:.6g}) are outside the "
            f"conditions of every bound about it on this {problem.constants.problem_class} "
            "problem — " + " | ".join(failures) + "; the run is not covered by any of them.")
