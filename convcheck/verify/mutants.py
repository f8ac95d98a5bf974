"""Deliberately broken algorithm variants: the injected bugs of negative controls.

A check that cannot fail proves nothing (DESIGN.md principle 5). A negative control runs one of
these mutants where the case runs the real algorithm, and the check must then FAIL. Each
mutant breaks one line of the real algorithm's pseudo-code, applied around the real
``step`` so it cannot drift from it:

=============================  ==========  ========================================================
mutant                         algorithms  the bug
=============================  ==========  ========================================================
``frozen-error-memory``        ef,         the error memory ``e_m`` is never updated (stays 0):
                               bidir-topk  top-k without error feedback
``frozen-estimates``           ef21        the estimates ``g_m`` keep their initial value; the
                                           corrections ``c_m`` are sent but never added
``stale-worker-memory``        gd-sec      the workers never update ``h_m`` while the server
                                           updates ``h``: ``h = (1/M)Σ_m h_m`` breaks
``error-not-cleared``          gd-sec      ``e_m ← Δ_m`` instead of ``e_m ← Δ_m − Δ̂_m``: what was
                                           sent is sent again next round
``server-memory-not-updated``  gd-sec      the server memory ``h`` stays 0, so ``ĝ`` is only the
                                           mean of the sent differences
=============================  ==========  ========================================================

A mutated algorithm is an instance of a subclass of the real one, so the real algorithm's
bounds (:func:`convcheck.theory.bounds_for`) are checked against its runs. (GD-SEC with a
frozen error memory is not offered: since ``e_m`` starts at 0 it is exactly GD-SEC without
error correction, a legitimate variant that converges.)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm, Messages
from convcheck.errors import InputError, check_choice

Corrupt = Callable[[Algorithm, Any, dict[str, np.ndarray], Messages], None]


def _restore(name: str) -> Corrupt:
    """The bug "``state.name`` is never updated": put back its value from before the round."""

    def corrupt(algorithm: Algorithm, state: Any, before: dict[str, np.ndarray],
                messages: Messages) -> None:
        setattr(state, name, before[name])

    return corrupt


def _error_not_cleared(algorithm: Algorithm, state: Any, before: dict[str, np.ndarray],
                       messages: Messages) -> None:
    """``e_m ← Δ_m − Δ̂_m`` became ``e_m ← Δ_m``: add back what was sent (with correction on)."""
    if algorithm.error_correction:
        state.errors += messages.up


@dataclass(frozen=True)
class Mutant:
    """An injected bug.

    Attributes
    ----------
    name : str
    algorithms : tuple of str
        Registry names of the algorithms it applies to.
    saves : tuple of str
        State attributes copied before each round (handed to ``corrupt``).
    corrupt : callable
        ``corrupt(algorithm, state, before, messages)``, applied after each real round.
    description : str
    """

    name: str
    algorithms: tuple[str, ...]
    saves: tuple[str, ...]
    corrupt: Corrupt
    description: str

    def apply(self, algorithm: Algorithm) -> Algorithm:
        """A copy of ``algorithm`` whose class is a mutated subclass of its own."""
        if algorithm.name not in self.algorithms:
            allowed = "an algorithm among " + ", ".join(self.algorithms)
            raise InputError("inject", f"{self.name} on {algorithm.name}", allowed)
        mutated = copy.copy(algorithm)
        mutated.__class__ = _mutated_class(type(algorithm), self)
        return mutated


def _mutated_class(cls: type[Algorithm], mutant: Mutant) -> type[Algorithm]:
    """``cls`` with ``mutant`` applied after every round of its ``step``."""

    def step(self: Algorithm, state: Any, oracle: Any, rng: np.random.Generator) -> Messages:
        before = {name: np.array(getattr(state, name), copy=True) for name in mutant.saves}
        messages = cls.step(self, state, oracle, rng)
        mutant.corrupt(self, state, before, messages)
        return messages

    def params(self: Algorithm) -> dict[str, Any]:
        return {**cls.params(self), "injected_bug": mutant.name}

    namespace = {"name": f"{cls.name}[{mutant.name}]", "step": step, "params": params,
                 "mutant": mutant, "__module__": __name__, "__doc__": mutant.description}
    return type(f"{cls.__name__}_{mutant.name.replace('-', '_')}", (cls,), namespace)


MUTANTS: dict[str, Mutant] = {
    mutant.name: mutant
    for mutant in (
        Mutant("frozen-error-memory", ("ef", "bidir-topk"), ("errors",), _restore("errors"),
               "the error memory e_m is never updated (top-k without error feedback)"),
        Mutant("frozen-estimates", ("ef21",), ("estimates",), _restore("estimates"),
               "EF21's estimates g_m are never updated by the compressed corrections"),
        Mutant("stale-worker-memory", ("gd-sec",), ("h_workers",), _restore("h_workers"),
               "GD-SEC's workers never update h_m while the server updates h"),
        Mutant("error-not-cleared", ("gd-sec",), (), _error_not_cleared,
               "GD-SEC's error memory keeps what was sent: e_m ← Δ_m"),
        Mutant("server-memory-not-updated", ("gd-sec",), ("h_server",), _restore("h_server"),
               "GD-SEC's server memory h is never updated"),
    )
}


def inject(algorithm: Algorithm, name: str) -> Algorithm:
    """``algorithm`` with the mutant ``name`` injected."""
    return MUTANTS[check_choice("inject", name, MUTANTS)].apply(algorithm)
