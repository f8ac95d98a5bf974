"""The outcome of one check of one case: plain data for results.json and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from convcheck.jsonio import strict_json
from convcheck.verification.cases import Case, CheckSpec

#: Kinds of checks: a positive check must hold, a negative control must fail.
KINDS = ("positive", "negative_control")
#: What a verdict can be. ``pass``: a positive check held, or a negative control failed for the
#: reason it names; ``fail``: the opposite; ``error``: the check could not decide (its bound is
#: not applicable, cannot be evaluated, is not a finite positive envelope, a seed could not be
#: evaluated, a statistical test is inconclusive, the run could not be made); ``refuted``: a
#: run of the certified algorithm itself leaves an LMI certificate's envelope — an error in
#: the certifier; ``skipped``: the case's data is not available. Only ``pass`` passes.
OUTCOMES = ("pass", "fail", "error", "refuted", "skipped")
#: Which side(s) of the theory a check tests: ``upper`` (measured ≤ bound), ``lower``
#: (measured ≥ a lower envelope), ``two-sided`` (a rate or trajectory matched within a
#: tolerance: too fast and too slow both fail), ``target`` (a target accuracy is reached),
#: ``ordering`` (the run ends below a reference run), ``identity`` (an equation that holds at
#: every round, to round-off).
SIDES = ("upper", "lower", "two-sided", "target", "ordering", "identity")
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
    """One row of ``results.json`` (the schema of docs/report-guide.md).

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
        Whether the measured quantity stayed within the bound (``None``: nothing was decided,
        e.g. no certificate exists or the bound could not be evaluated).
    applicable : bool
        The bound's conditions hold for this run; a negative control may evaluate an
        inapplicable bound on purpose (its ``reason`` says so).
    reason, why : str
        What the check found, in words; why a negative control must fail.
    outcome : one of :data:`OUTCOMES`
        The verdict; :attr:`passed` is ``outcome == "pass"``.
    sides : one of :data:`SIDES`
        Which side(s) of the theory the check tests.
    expect : str
        For a negative control, the way it must fail (``violated``, ``no-certificate``,
        ``too-fast``, ...); ``""`` for a positive check.
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
    outcome: str = "error"
    sides: str = "upper"
    expect: str = ""
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
        return self.outcome == "pass"

    def as_dict(self, *, with_series: bool = True) -> dict[str, Any]:
        out = asdict(self)
        out["class"] = out.pop("problem_class")  # the documented name of the column
        out["seed"] = self.seeds[0] if self.seeds else None
        out["passed"] = self.passed
        if not with_series:
            out.pop("series")
        return strict_json(out)


def judge(check: CheckSpec, holds: bool, failure: str) -> tuple[str, str]:
    """The outcome of a check that was evaluated and decided ``holds`` (``failure``: how it
    failed when it did not hold), and a note for the reason (``""`` if none).

    A positive check passes iff it holds. A negative control passes iff it did not hold *and*
    failed the way it names (``expect``; ``off-rate`` accepts ``too-fast`` and ``too-slow``).
    """
    if check.kind == "positive":
        return ("pass" if holds else "fail"), ""
    if holds:
        return "fail", "the negative control did not fail"
    accepted = {check.expect} | ({"too-fast", "too-slow"} if check.expect == "off-rate" else set())
    if failure not in accepted:
        return "fail", f"it failed as {failure!r}, not as the control names ({check.expect!r})"
    return "pass", ""


def run_start(run, dim: int) -> np.ndarray:
    """The start point ``θ⁰`` of a run (its trace records it unless it is 0)."""
    start = run.meta.get("theta0")
    return np.zeros(dim) if start is None else np.asarray(start, dtype=np.float64)


def base_fields(check: CheckSpec, case: Case, problem, algorithm, runs: list) -> dict[str, Any]:
    """Verdict fields every check shares (run statistics: mean over seeds)."""
    from convcheck.verification.names import check_kind

    first = runs[0]
    reached = [r.summary["target_iteration"] for r in runs]
    name = algorithm.name
    if check.ran_with:
        name += "[ran with " + ", ".join(f"{k}={v}" for k, v in check.ran_with.items()) + "]"
    return {
        "case": case.name,
        "name": check.name,
        "algorithm": name,
        "problem": case.problem.describe(),
        "problem_class": problem.constants.problem_class,
        "bound": check.bound,
        "kind": check.kind,
        "why": check.why,
        "sides": check_kind(check.bound).sides,
        "expect": check.expect,
        "iterations": int(round(np.mean([r.iterations for r in runs]))),
        "bits_up": int(round(np.mean([r.ledger.up.sum() for r in runs]))),
        "bits_down": int(round(np.mean([r.ledger.down.sum() for r in runs]))),
        "seeds": [int(r.meta["seed"]) for r in runs],
        "status": ", ".join(sorted({r.status for r in runs})),
        "target_iteration": None if None in reached else int(max(reached)),
        "bits_up_to_target": first.summary["bits_up_to_target"],
    }
