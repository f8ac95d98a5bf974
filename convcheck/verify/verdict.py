"""The outcome of one check of one case: plain data for results.json and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from convcheck.jsonio import strict_json

#: Kinds of checks: a positive check must hold, a negative control must fail.
KINDS = ("positive", "negative_control")
#: Points kept of each plotted series (per check).
SERIES_POINTS = 400


def thin(length: int, points: int = SERIES_POINTS) -> np.ndarray:
    """Indices ``0 … length−1`` thinned to about ``points``, log-spaced, first and last kept."""
    if length <= points:
        return np.arange(length)
    grid = np.unique(np.round(np.geomspace(1, length, points)).astype(int) - 1)
    return np.union1d(grid, [0, length - 1])


@dataclass
class Verdict:
    """One row of ``results.json`` (DESIGN.md schema, plus what a reader needs to trust it).

    Attributes
    ----------
    case, name : str
        Case name (``folder/stem``) and the check's name (its bound, or a control's name).
    algorithm, problem, problem_class : str
        What ran (a mutant shows as ``gd-sec[frozen-error-memory]``) on what.
    bound, source, citation : str
        The bound's registry name, its provenance (``classical``, ``paper``, ``derived here``,
        ``certified (LMI)``, ``empirical``) and where it comes from.
    kind : {"positive", "negative_control"}
    holds : bool or None
        Whether the measured quantity stayed within the bound (``None``: nothing to evaluate,
        e.g. no certificate exists).
    passed : bool
        ``holds`` for a positive check; ``not holds`` for a negative control.
    applicable : bool
        The bound's conditions hold for this run; a negative control may evaluate an
        inapplicable bound on purpose (its ``reason`` says so).
    reason, why : str
        What the check found, in words; why a negative control must fail.
    max_ratio : float or None
        ``max_k measured_k / bound_k``; ``holds`` iff ``≤ 1 + tolerance``.
    worst_iteration : int or None
        The ``k`` of the maximum.
    tolerance : float
    fitted_rate, theory_rate : float or None
        The measured quantity's rate and the bound's own, fitted alike: a factor per iteration
        (``rate_kind = "linear"``, geometric bounds) or a log-log slope (``"power"``, e.g. −1
        for ``1/T`` bounds).
    rate_kind : {"linear", "power"} or None
    iterations, bits_up, bits_down : int
        Of the run (mean over seeds for several seeds).
    seeds : list of int
    status : str
        The run's status (``completed``, ``target reached``, ``diverged``).
    target_iteration, bits_up_to_target : int or None
    constants : dict
        The constants the bound was evaluated with.
    series : dict
        ``iteration``, ``measured``, ``bound`` arrays (thinned) for the plots.
    extra : dict
        Anything else a check reports (certificate ρ, confidence intervals, staleness...).
    seconds : float
    """

    case: str
    name: str
    algorithm: str
    problem: str
    problem_class: str
    bound: str
    source: str
    citation: str
    kind: str
    holds: bool | None
    applicable: bool
    reason: str
    why: str = ""
    max_ratio: float | None = None
    worst_iteration: int | None = None
    tolerance: float = 0.0
    fitted_rate: float | None = None
    theory_rate: float | None = None
    rate_kind: str | None = None
    iterations: int = 0
    bits_up: int = 0
    bits_down: int = 0
    seeds: list[int] = field(default_factory=list)
    status: str = ""
    target_iteration: int | None = None
    bits_up_to_target: int | None = None
    constants: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        if self.kind == "positive":
            return self.holds is True
        return self.holds is False or (self.holds is None and not self.applicable)

    def as_dict(self, *, with_series: bool = True) -> dict[str, Any]:
        out = asdict(self)
        out["class"] = out.pop("problem_class")  # the names of DESIGN.md's results.json schema
        out["seed"] = self.seeds[0] if self.seeds else None
        out["passed"] = self.passed
        if not with_series:
            out.pop("series")
        return strict_json(out)
