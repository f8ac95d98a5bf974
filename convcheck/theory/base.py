"""What a bound is: provenance, the class it needs, its conditions, its measured quantity.

A :class:`Bound` states ``measured_k ≤ bound_k`` for every row ``k`` of a run's trace. It is
evaluated in three steps, and :func:`convcheck.theory.check.check_bound` never skips the second:

1. :meth:`Bound.constants` reads the constants from the algorithm and the problem (α, L, μ, L̃,
   δ, ξ, ...);
2. :meth:`Bound.conditions` checks the theorem's hypotheses (step size, ξ, compressor class)
   on those constants; a bound with a failed condition is *not applicable*;
3. :meth:`Bound.measure` and :meth:`Bound.evaluate` give the measured quantity and the bound
   per row of the trace (``nan`` where the bound says nothing, e.g. a mean over ``T = 0``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convcheck.algorithms.base import Algorithm
from convcheck.engine.trace import Run
from convcheck.errors import ConvcheckError
from convcheck.problem import Problem

#: Where a bound comes from (docs/theory.md, opening list).
PROVENANCES = ("classical", "paper", "derived here", "certified (LMI)")
#: Problem classes from the weakest to the strongest assumption; a bound for a class applies to
#: every stronger one (an L-smooth strongly convex f is convex and "nonconvex" L-smooth).
CLASSES = ("nonconvex", "convex", "strongly convex")


class NotEvaluable(ConvcheckError):
    """A bound cannot be evaluated for these constants: its formula is undefined, negative or
    infinite (e.g. ``c ≤ 0`` in a ``1/c`` bound). A check reports it, never a pass."""


@dataclass(frozen=True)
class Condition:
    """One hypothesis of a theorem, checked on numbers.

    Attributes
    ----------
    statement : str
        The hypothesis, e.g. ``"α ≤ 1/L"``.
    holds : bool
    values : str
        The numbers it was checked with, e.g. ``"α = 0.5, 1/L = 0.33"``.
    """

    statement: str
    holds: bool
    values: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"statement": self.statement, "holds": self.holds, "values": self.values}


def at_most(statement: str, left: float, right: float, names: tuple[str, str]) -> Condition:
    """``left ≤ right`` as a :class:`Condition` with both numbers shown."""
    return Condition(
        statement, bool(left <= right), f"{names[0]} = {left:.6g}, {names[1]} = {right:.6g}"
    )


def below(statement: str, left: float, right: float, names: tuple[str, str]) -> Condition:
    """``left < right`` as a :class:`Condition`."""
    return Condition(
        statement, bool(left < right), f"{names[0]} = {left:.6g}, {names[1]} = {right:.6g}"
    )


class Bound(abc.ABC):
    """A bound ``measured_k ≤ bound_k`` with its provenance and hypotheses.

    Class attributes
    ----------------
    name : str
        Registry name, e.g. ``"gd-sec/nonconvex"``.
    algorithms : tuple of Algorithm subclasses
        The algorithms it is about, exactly (an injected bug, a subclass made by
        :mod:`convcheck.algorithms.mutation`, claims to be the algorithm it mutates and is
        checked against the same bound; another subclass, e.g. asynchronous SGD built on error
        feedback's halves, is a different algorithm).
    problem_class : {"nonconvex", "convex", "strongly convex"}
        The weakest class it needs.
    quantity : str
        Name of the measured quantity (``"suboptimality"``, ``"mean_grad_norm_sq"``, ...).
    quantity_formula : str
    statement : str
        The inequality, in words and symbols.
    provenance : one of :data:`PROVENANCES`
    citation : str
        ``[GDSEC]``, ``[EF21] Thm 1``, ``[Nesterov04] ...`` (references in docs/theory.md).
    """

    name: ClassVar[str]
    algorithms: ClassVar[tuple[type[Algorithm], ...]]
    problem_class: ClassVar[str]
    quantity: ClassVar[str]
    quantity_formula: ClassVar[str]
    statement: ClassVar[str]
    provenance: ClassVar[str]
    citation: ClassVar[str]

    def matches(self, algorithm: Algorithm, problem: Problem) -> bool:
        """The algorithm is one this bound is about and the problem's class is strong enough."""
        cls = type(algorithm)
        claimed = cls.__mro__[1] if hasattr(cls, "mutant") else cls
        return claimed in self.algorithms and class_at_least(
            problem.constants.problem_class, self.problem_class
        )

    @abc.abstractmethod
    def constants(
        self, algorithm: Algorithm, problem: Problem, theta0: np.ndarray | None = None
    ) -> dict[str, Any]:
        """The numbers the conditions and the bound use (JSON-friendly where possible)."""

    @abc.abstractmethod
    def conditions(self, constants: dict[str, Any]) -> list[Condition]:
        """The theorem's hypotheses, each checked."""

    @abc.abstractmethod
    def measure(self, run: Run, problem: Problem, constants: dict[str, Any]) -> np.ndarray:
        """The measured quantity per trace row (an upper estimate of the true one)."""

    @abc.abstractmethod
    def evaluate(
        self, run: Run, problem: Problem, constants: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The bound per trace row and the run's start values it used (``f(θ⁰)``, ``G⁰``, ...)."""

    @abc.abstractmethod
    def floor(
        self, run: Run, problem: Problem, constants: dict[str, Any]
    ) -> float | np.ndarray:
        """The check's absolute tolerance, a number or one per trace row.

        The floating-point floor of the measured quantity, plus what the certified (not exact)
        reference optimum leaves undecided: a measured value above ``bound + floor`` then
        proves the true quantity exceeds the true bound.
        """

    def describe(self) -> dict[str, Any]:
        """Plain data for ``convcheck list`` and reports."""
        return {
            "name": self.name,
            "algorithms": [cls.name for cls in self.algorithms],
            "problem_class": self.problem_class,
            "quantity": self.quantity,
            "quantity_formula": self.quantity_formula,
            "statement": self.statement,
            "provenance": self.provenance,
            "citation": self.citation,
        }

    def __repr__(self) -> str:
        return f"<Bound {self.name} ({self.provenance}, {self.citation})>"


def class_at_least(problem_class: str, needed: str) -> bool:
    """Whether ``problem_class`` satisfies a bound that needs ``needed`` (see :data:`CLASSES`)."""
    return CLASSES.index(problem_class) >= CLASSES.index(needed)
