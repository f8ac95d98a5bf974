"""The injected bugs verification can run: every algorithm's own mutants, by name.

Each algorithm module declares its mutants (:mod:`convcheck.algorithms.mutation`); a negative
control names one with ``inject = "..."`` and runs it where the case runs the real algorithm, so
its check must then FAIL. A mutated algorithm is an instance of a subclass of the real one, with
the real one's parameters, so the real algorithm's bounds are checked against its runs.
"""

from __future__ import annotations

from convcheck.algorithms import ALGORITHMS, Algorithm
from convcheck.algorithms.mutation import Mutant
from convcheck.errors import InputError


def mutants_of(name: str) -> dict[str, Mutant]:
    """The mutants of algorithm ``name``, by mutant name."""
    return {mutant.name: mutant for mutant in ALGORITHMS[name].mutants}


def all_mutants() -> dict[str, tuple[str, ...]]:
    """Every mutant name and the algorithms that have a mutant of that name."""
    out: dict[str, list[str]] = {}
    for name, cls in ALGORITHMS.items():
        for mutant in cls.mutants:
            out.setdefault(mutant.name, []).append(name)
    return {key: tuple(value) for key, value in out.items()}


def inject(algorithm: Algorithm, name: str) -> Algorithm:
    """``algorithm`` with its mutant ``name`` injected."""
    own = mutants_of(algorithm.name)
    if name not in own:
        allowed = ("a mutant of " + algorithm.name + ": " + ", ".join(own)) if own else (
            f"none: {algorithm.name} has no mutants")
        raise InputError("inject", name, allowed)
    return own[name].apply(algorithm)
