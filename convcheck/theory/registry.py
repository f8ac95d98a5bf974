"""Every bound by name, and the bounds that concern an (algorithm, problem) pair."""

from __future__ import annotations

from convcheck.algorithms.base import Algorithm
from convcheck.problem import Problem
from convcheck.theory.base import Bound
from convcheck.theory.bounds import CLOSED_FORM
from convcheck.theory.certified import CertifiedBound

#: All bounds, closed-form and certified, by name.
BOUNDS: dict[str, Bound] = {**CLOSED_FORM, CertifiedBound.name: CertifiedBound()}


def bounds_for(algorithm: Algorithm, problem: Problem, *, certified: bool = True) -> list[Bound]:
    """The bounds about ``algorithm`` whose problem class ``problem`` satisfies.

    Step-size and other numeric conditions are *not* filtered here: a bound whose condition
    fails is returned and :func:`convcheck.theory.check.check_bound` reports it as not
    applicable, with the reason. ``certified=False`` leaves out the LMI bound (which solves
    SDPs when checked).
    """
    return [
        bound
        for bound in BOUNDS.values()
        if bound.matches(algorithm, problem)
        and (certified or bound.provenance != "certified (LMI)")
    ]
