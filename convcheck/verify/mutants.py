"""Deliberately broken algorithm variants: the injected bugs of negative controls.

A check that cannot fail proves nothing (DESIGN.md principle 5). A negative control runs one of
these mutants where the case runs the real algorithm, and the check must then FAIL. Each mutant
wraps a real algorithm and breaks one line of its pseudo-code after every round:

* ``frozen-error-memory`` — the error memory ``e_m`` is never updated (it stays 0): GD-SEC,
  EF and bidirectional top-k then drop what they do not send.
* ``frozen-estimates`` — EF21's estimates ``g_m`` keep their initial value: the compressed
  corrections ``c_m`` are computed and sent but never added.
* ``server-memory-not-updated`` — GD-SEC's server memory ``h`` stays 0, so ``ĝ`` is only the
  mean of the sent differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm, Messages
from convcheck.errors import InputError, check_choice


@dataclass(frozen=True)
class Mutant:
    """An injected bug: which state attribute it freezes, in which algorithms.

    Attributes
    ----------
    name : str
    frozen : str
        Name of the state attribute restored to its pre-round value after every round.
    algorithms : tuple of str
        Registry names of the algorithms it applies to.
    description : str
    """

    name: str
    frozen: str
    algorithms: tuple[str, ...]
    description: str

    def apply(self, algorithm: Algorithm) -> Algorithm:
        """``algorithm`` with the bug injected (a :class:`Mutated` wrapper)."""
        if algorithm.name not in self.algorithms:
            allowed = "an algorithm among " + ", ".join(self.algorithms)
            raise InputError("inject", f"{self.name} on {algorithm.name}", allowed)
        return Mutated(algorithm, self)


MUTANTS: dict[str, Mutant] = {
    mutant.name: mutant
    for mutant in (
        Mutant("frozen-error-memory", "errors", ("gd-sec", "ef", "bidir-topk"),
               "the error memory e_m is never updated"),
        Mutant("frozen-estimates", "estimates", ("ef21",),
               "EF21's estimates g_m are never updated by the compressed corrections"),
        Mutant("server-memory-not-updated", "h_server", ("gd-sec",),
               "GD-SEC's server memory h is never updated"),
    )
}


class Mutated(Algorithm):
    """A real algorithm whose ``mutant.frozen`` state keeps its pre-round value every round."""

    def __init__(self, algorithm: Algorithm, mutant: Mutant) -> None:
        self.algorithm = algorithm
        self.mutant = mutant
        self.name = f"{algorithm.name}[{mutant.name}]"  # type: ignore[misc]
        self.diagnostic_names = algorithm.diagnostic_names  # type: ignore[misc]

    def __getattr__(self, name: str) -> Any:
        # parameters (alpha, xi, compressor, ...) read by bounds and reports
        return getattr(self.algorithm, name)

    @property
    def stochastic(self) -> bool:
        return self.algorithm.stochastic

    def start(self, theta0: np.ndarray, oracle: Any, rng: np.random.Generator) -> Any:
        return self.algorithm.start(theta0, oracle, rng)

    def step(self, state: Any, oracle: Any, rng: np.random.Generator) -> Messages:
        frozen = np.array(getattr(state, self.mutant.frozen), copy=True)
        messages = self.algorithm.step(state, oracle, rng)
        setattr(state, self.mutant.frozen, frozen)
        return messages

    def diagnostics(self, state: Any, oracle: Any) -> tuple[float, ...]:
        return self.algorithm.diagnostics(state, oracle)

    def params(self) -> dict[str, Any]:
        return {**self.algorithm.params(), "injected_bug": self.mutant.name}


def inject(algorithm: Algorithm, name: str) -> Algorithm:
    """``algorithm`` with the mutant ``name`` injected."""
    return MUTANTS[check_choice("inject", name, MUTANTS)].apply(algorithm)
