"""Check a bound on a run: conditions first, then ``max_k measured_k / bound_k``.

Tolerance: a bound holds on a run iff for every row ``k`` where it is defined

    measured_k ≤ (1 + rtol)·(bound_k + atol),

with ``rtol`` (default 1e-9) relative and ``atol`` (a number, or one per row) the floor of the
bound (:meth:`Bound.floor`): the floating-point floor of the measured quantity
(:mod:`convcheck.theory.quantities`) plus, where a quantity depends on ``θ*``, what the
certified accuracy of the reference optimum leaves open — so a violation means the true
quantity exceeds the true bound. ``max_ratio`` is
``max_k measured_k / (bound_k + atol)``: where the bound is far above the floor this is
``measured/bound``, and the bound holds iff ``max_ratio ≤ 1 + rtol``. A non-finite measured value
(a diverged run) counts as a violation; rows where the bound is undefined (``nan``: ``k = 0`` of
a ``1/k`` bound, ``T = 0`` of a mean) are left out.

A bound is only ever compared with a run when it is a finite positive envelope: finite and
``≥ 0`` on every row where it is defined, positive on the first such row (zeros after it are a
geometric envelope below the smallest float), defined on at least one row. Otherwise — a formula
that goes negative outside its hypotheses (``c ≤ 0``), overflows, or says nothing — the check
is *not evaluated* ("cannot be evaluated", with the reason), whatever ``force`` says: an
envelope that is not one cannot be violated by a run, nor held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm
from convcheck.engine.trace import Run
from convcheck.errors import ConvcheckError, check_real
from convcheck.jsonio import strict_json
from convcheck.problem import Problem
from convcheck.theory.base import Bound, Condition, NotEvaluable

#: Default relative tolerance of a bound check.
RTOL = 1e-9


@dataclass(frozen=True)
class BoundCheck:
    """The verdict of one bound on one run.

    Attributes
    ----------
    bound : str
        Bound name; ``provenance``, ``citation``, ``statement``, ``quantity`` and
        ``quantity_formula`` are copied from it.
    algorithm : str
    problem_class : str
    applicable : bool
        Every condition holds.
    reason : str
        Why not applicable (the failed conditions with their numbers), or ``""``.
    conditions : list of Condition
    evaluated : bool
        The bound was evaluated (always when applicable; with ``force=True`` also when not).
    holds : bool or None
        None when not evaluated.
    max_ratio : float or None
    argmax : int or None
        Iteration where ``max_ratio`` is attained.
    max_ratio_after_start : float or None
        The same maximum over iterations ``k ≥ 1`` (bounds of the form ``C·q^k·start`` with
        ``C = 1`` are tight at ``k = 0`` by construction; this shows how tight they stay).
    iterations, measured, bound_values : ndarray
        Per trace row (``bound_values`` is None when not evaluated).
    rtol, atol : float
    tolerance : str
        The tolerance in words.
    constants : dict
        Every number the conditions and the bound used, and the run's start values.
    """

    bound: str
    provenance: str
    citation: str
    statement: str
    quantity: str
    quantity_formula: str
    algorithm: str
    problem_class: str
    applicable: bool
    reason: str
    conditions: list[Condition]
    evaluated: bool
    holds: bool | None
    max_ratio: float | None
    argmax: int | None
    max_ratio_after_start: float | None
    iterations: np.ndarray
    measured: np.ndarray
    bound_values: np.ndarray | None
    rtol: float
    atol: float
    tolerance: str
    constants: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, *, with_arrays: bool = False) -> dict[str, Any]:
        """Plain data for results.json (arrays only with ``with_arrays``)."""
        out = {
            "bound": self.bound,
            "provenance": self.provenance,
            "citation": self.citation,
            "statement": self.statement,
            "quantity": self.quantity,
            "quantity_formula": self.quantity_formula,
            "algorithm": self.algorithm,
            "problem_class": self.problem_class,
            "applicable": self.applicable,
            "reason": self.reason,
            "conditions": [c.as_dict() for c in self.conditions],
            "evaluated": self.evaluated,
            "holds": self.holds,
            "max_ratio": self.max_ratio,
            "argmax": self.argmax,
            "max_ratio_after_start": self.max_ratio_after_start,
            "rtol": self.rtol,
            "atol": self.atol,
            "tolerance": self.tolerance,
            "constants": _plain(self.constants),
        }
        if with_arrays:
            out["iterations"] = self.iterations.tolist()
            out["measured"] = _plain(self.measured.tolist())
            out["bound_values"] = (
                None if self.bound_values is None else _plain(self.bound_values.tolist())
            )
        return out


def _plain(value: Any) -> Any:
    """JSON-friendly copy: private keys (``_…``) dropped, numpy to Python, non-finite to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return _plain(value.tolist())
    return strict_json(value)


def ratios(measured: np.ndarray, bound: np.ndarray, atol: float | np.ndarray) -> np.ndarray:
    """``measured/(bound + atol)`` per row; ``nan`` where the bound is undefined, ``inf`` where
    the measured value is not finite or the bound is not positive while the measurement is."""
    out = np.full(measured.shape, np.nan)
    defined = ~np.isnan(bound)
    denominator = bound + atol
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        values = np.where(
            denominator > 0, measured / denominator, np.where(measured > 0, np.inf, 0.0)
        )
    values = np.where(np.isfinite(measured), values, np.inf)
    out[defined] = values[defined]
    return out


def envelope_problem(values: np.ndarray) -> None:
    """Raise :class:`NotEvaluable` unless ``values`` is a finite positive envelope (module doc)."""
    defined = np.flatnonzero(~np.isnan(values))
    if defined.size == 0:
        raise NotEvaluable("the bound is undefined at every iteration of the run")
    finite = np.isfinite(values[defined])
    if not finite.all():
        where = int(defined[np.argmin(finite)])
        raise NotEvaluable(f"the bound is {values[where]} at row {where} (not finite)")
    negative = values[defined] < 0
    if negative.any():
        where = int(defined[np.argmax(negative)])
        raise NotEvaluable(f"the bound is negative ({values[where]:.6g}) at row {where}")
    if values[defined[0]] <= 0:
        raise NotEvaluable(f"the bound is 0 at its first defined row {int(defined[0])}")


def check_bound(
    bound: Bound,
    run: Run,
    problem: Problem,
    algorithm: Algorithm,
    *,
    rtol: float = RTOL,
    theta0: np.ndarray | None = None,
    force: bool = False,
) -> BoundCheck:
    """Check ``bound`` on ``run`` of ``algorithm`` on ``problem``.

    Parameters
    ----------
    bound : Bound
    run : Run
        The trace (``convcheck.engine.run``), started at ``theta0``.
    problem : Problem
    algorithm : Algorithm
        The algorithm object that produced the run (its α, ξ, compressor, ... are read).
    rtol : float
        Relative tolerance (see the module doc).
    theta0 : ndarray, optional
        The run's start point (default 0, the engine's default); the LMI bound needs it.
    force : bool
        Evaluate the bound even when a condition fails (a negative control: a bound evaluated
        outside its hypotheses must be seen to fail). ``applicable`` stays False.

    Returns
    -------
    BoundCheck
        Not applicable (and not evaluated unless ``force``) when the algorithm or the problem
        class does not match or a condition fails; the reason names the failed conditions.
    """
    rtol = check_real("rtol", rtol, 0.0)
    iterations = np.asarray(run.columns["iteration"], dtype=np.int64)
    base = {
        "bound": bound.name,
        "provenance": bound.provenance,
        "citation": bound.citation,
        "statement": bound.statement,
        "quantity": bound.quantity,
        "quantity_formula": bound.quantity_formula,
        "algorithm": algorithm.name,
        "problem_class": problem.constants.problem_class,
        "iterations": iterations,
        "rtol": rtol,
    }
    if not bound.matches(algorithm, problem):
        reason = (
            f"bound {bound.name!r} is about {', '.join(c.name for c in bound.algorithms)} on "
            f"{bound.problem_class} problems, not {algorithm.name} on a "
            f"{problem.constants.problem_class} problem"
        )
        return _not_evaluated(base, reason, [], {}, applicable=False)
    algorithm.prepare(problem.objective.dim)  # what depends on d (LAGS's layer-wise top-k)
    constants = bound.constants(algorithm, problem, theta0)
    conditions = bound.conditions(constants)
    failed = [c for c in conditions if not c.holds]
    reason = "; ".join(f"{c.statement} fails ({c.values})" for c in failed)
    if failed and not force:
        return _not_evaluated(
            base, "not applicable: " + reason, conditions, constants, applicable=False
        )
    try:
        measured = np.asarray(bound.measure(run, problem, constants), dtype=np.float64)
        values, start = bound.evaluate(run, problem, constants)
        envelope_problem(np.asarray(values, dtype=np.float64))
    except ConvcheckError as error:
        return _not_evaluated(
            base, f"cannot be evaluated: {error}", conditions, constants, applicable=not failed
        )
    floor = np.asarray(bound.floor(run, problem, constants), dtype=np.float64)
    atol = float(np.max(floor))
    ratio = ratios(measured, values, floor)
    where = int(np.nanargmax(ratio))  # defined somewhere: the envelope was checked above
    max_ratio, argmax = float(ratio[where]), int(iterations[where])
    defined = ~np.isnan(ratio)
    later = defined & (iterations >= 1)
    after_start = float(np.max(ratio[later])) if later.any() else None
    return BoundCheck(
        **base,
        applicable=not failed,
        reason="not applicable (evaluated anyway): " + reason if failed else "",
        conditions=conditions,
        evaluated=True,
        holds=bool(max_ratio <= 1.0 + rtol),
        max_ratio=max_ratio,
        argmax=argmax,
        max_ratio_after_start=after_start,
        measured=measured,
        bound_values=np.asarray(values, dtype=np.float64),
        atol=atol,
        tolerance=(
            f"measured ≤ (1 + {rtol:g})·(bound + floor), floor ≤ {atol:.3g} (floating point and "
            "the certified accuracy of the reference optimum)"
        ),
        constants={**constants, **start},
    )


def _not_evaluated(
    base: dict, reason: str, conditions: list[Condition], constants: dict, *, applicable: bool
) -> BoundCheck:
    return BoundCheck(
        **base,
        applicable=applicable,
        reason=reason,
        conditions=conditions,
        evaluated=False,
        holds=None,
        max_ratio=None,
        argmax=None,
        max_ratio_after_start=None,
        measured=np.full(len(base["iterations"]), np.nan),
        bound_values=None,
        atol=0.0,
        tolerance="",
        constants=constants,
    )
