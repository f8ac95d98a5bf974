"""The names a case may give a check (``bound = ...`` in a case file) and what each one tests.

Every check has a *side* (:data:`convcheck.verification.verdict.SIDES`) and the ways it can fail; a
negative control names one of them in ``expect`` (default: the first), and passes only when it
fails that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The in-expectation bound of asynchronous sparsified SGD, checked on the mean over seeds.
ASYNC_BOUND = "async-sparse-sgd/nonconvex"
#: GD's exact linear rate on a quadratic, from the spectrum of its Hessian (two-sided).
EXACT_RATE = "gd/exact-rate"
#: The lower envelope along the slowest eigen-direction of a quadratic (lower side).
SLOWEST_DIRECTION = "lower/slowest-direction"
#: DGS with ρ_up = ρ_down = 1 and one worker is heavy-ball: the same trajectory (two-sided).
HEAVY_BALL = "dgs/heavy-ball"
#: The run ends below a reference run of another algorithm (an ordering claim).
BELOW_REFERENCE = "below-reference"
#: Every run reaches the case's target.
CONVERGES = "converges"
#: The algorithm's exact identities on every round of every run, and every message's bits
#: re-encoded (added to every synchronous case).
INVARIANTS = "invariants"
#: The algorithm's special cases run beside the case equal the algorithms they reduce to
#: (added to every synchronous case whose algorithm declares some).
REDUCTIONS = "reductions"
#: How a bound check with ``attained`` fails when the runs stay below the bound.
NOT_ATTAINED = "not-attained"
#: ``attained`` looks at the iterations whose bound is at least this fraction of its start
#: (below, the measured quantity is a difference of nearly equal values: round-off).
ATTAINED_WINDOW = 1e-6
#: The pseudo-invariant name of the bit check inside ``invariants``.
BITS_CHECK = "bits-re-encoded"
#: The pseudo-invariant name of the trace-column check inside ``invariants`` (synchronous).
TRACE_CHECK = "trace-diagnostics"


@dataclass(frozen=True)
class CheckKind:
    """What a check tests.

    Attributes
    ----------
    sides : str
        One of :data:`convcheck.verification.verdict.SIDES`.
    failures : tuple of str
        The ways the check can fail; a negative control's ``expect`` is one of them (the first
        is the default).
    tolerance : str or None
        What ``tolerance`` means for this check and its default; None: it takes none.
    source, statement, citation : str
        For a check that is not a bound of :data:`convcheck.theory.BOUNDS` (those describe
        themselves): its provenance, what it tests in one line, and where it comes from.
    algorithms : tuple of str
        The algorithms it applies to (empty: any).
    problem_class : str
        The most general problem class it applies to.
    """

    sides: str
    failures: tuple[str, ...]
    tolerance: str | None
    source: str = ""
    statement: str = ""
    citation: str = ""
    algorithms: tuple[str, ...] = ()
    problem_class: str = "nonconvex"


_RELATIVE = "relative slack of measured ≤ bound, a real number > 0 (default 1e-9)"
#: The checks that are not bounds of :data:`convcheck.theory.BOUNDS`.
SPECIAL: dict[str, CheckKind] = {
    ASYNC_BOUND: CheckKind(
        "upper", ("violated",), None, "derived here",
        "(1/T) Σ_(t<T) E‖∇f(θ^t)‖² ≤ 2(f(θ⁰) − f_low)/(αT) + Lασ² + 2Qσ² if 1 − 2Lα − 4Q ≥ 0 "
        "(in expectation: mean over seeds, 95% interval)",
        "docs/async-theory.md, Theorem 1 (the setting of [STALE])",
        ("async-sgd", "async-sparse-sgd"),
    ),
    EXACT_RATE: CheckKind(
        "two-sided", ("off-rate", "too-fast", "too-slow"),
        "relative tolerance on the convergence speed −log(rate), a real number > 0 "
        "(default 0.01)",
        "classical",
        "GD on least squares: the fitted rate of ‖θ^k − θ*‖² equals the exact trajectory's "
        "(from the Hessian's spectrum)",
        "GD on a quadratic: θ^k − θ* = (I − αH)^k(θ⁰ − θ*), rate max_i|1 − αλ_i| [Polyak87]; "
        "H from gradient differences (docs/theory.md §8)",
        ("gd",), "convex",
    ),
    SLOWEST_DIRECTION: CheckKind(
        "lower", ("violated",), _RELATIVE, "derived here",
        "on least squares ‖θ^k − θ*‖ stays above the slowest eigen-direction's envelope",
        "docs/theory.md §8 (slowest eigen-direction of a quadratic, virtual iterates)",
        ("gd", "gd-sec", "ef", "ef21", "bidir-topk"), "convex",
    ),
    HEAVY_BALL: CheckKind(
        "two-sided", ("differs",),
        "relative tolerance on f(θ^t) and θ^T, a real number > 0 (default 1e-9)",
        "empirical",
        "DGS with ρ_up = ρ_down = 1, one worker, full gradients follows heavy-ball exactly",
        "special case of [DGS]: ρ_up = ρ_down = 1, one worker (docs/theory.md §9)",
        ("dgs",),
    ),
    BELOW_REFERENCE: CheckKind(
        "ordering", ("not-below",),
        "relative margin: the run's final gap must be ≤ (1 − margin)·the reference's, "
        "a real number in (0, 1) (default 0.01)",
        "empirical",
        "the mean of f − f_low over the last 10% of rows is below a reference run's",
        "an ordering claim against the case's reference algorithm",
    ),
    CONVERGES: CheckKind("target", ("target-missed",), None, "empirical",
                         "every run reaches the case's [run] target"),
    INVARIANTS: CheckKind(
        "identity", ("violated",),
        "relative round-off tolerance of the identities, a real number > 0 (default 1e-11)",
        "identity",
        "every identity the algorithm declares holds at every round of every run, and every "
        "message's bits re-encoded by the specification's codec equal the ledger's",
        "the algorithm's definition (docs/algorithms.md)",
    ),
    REDUCTIONS: CheckKind(
        "identity", ("differs",),
        "relative tolerance on the iterates, a real number > 0 (default 1e-9)",
        "identity",
        "each special case the algorithm declares (e.g. GD-SEC with ξ = 0) follows the "
        "algorithm it reduces to (GD) iterate by iterate",
        "the algorithm's definition (docs/algorithms.md)",
    ),
}


def check_kind(name: str) -> CheckKind:
    """The :class:`CheckKind` of a known check name (a bound: upper side, fails by being
    violated; the LMI bound also by finding no certificate)."""
    if name in SPECIAL:
        return SPECIAL[name]
    from convcheck.theory import BOUNDS

    if BOUNDS[name].provenance == "certified (LMI)":
        return CheckKind("upper", ("violated", "no-certificate", NOT_ATTAINED), _RELATIVE)
    return CheckKind("upper", ("violated", NOT_ATTAINED), _RELATIVE)


def known_checks() -> tuple[str, ...]:
    """Names a case may use in ``bound``: every per-run bound of the theory and the checks of
    :data:`SPECIAL`."""
    from convcheck.theory import BOUNDS

    return (*BOUNDS, *SPECIAL)


def identity_names(algorithm: Any) -> tuple[str, ...]:
    """What ``invariants`` checks on ``algorithm``: its identities (of synchronous rounds, or
    of the event engine's computations and updates), the bit check and, on synchronous rounds,
    the trace-column check."""
    from convcheck.algorithms.invariants import InvariantMonitor, monitor_for

    monitor = monitor_for(algorithm)
    trace = (TRACE_CHECK,) if isinstance(monitor, InvariantMonitor) else ()
    return (*(i.name for i in monitor.invariants()), BITS_CHECK, *trace)
