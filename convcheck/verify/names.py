"""The names a case may give a check (``bound = ...`` in a case file) and what each one tests.

Every check has a *side* (:data:`convcheck.verify.verdict.SIDES`) and the ways it can fail; a
negative control names one of them in ``expect`` (default: the first), and passes only when it
fails that way.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class CheckKind:
    """What a check tests.

    Attributes
    ----------
    sides : str
        One of :data:`convcheck.verify.verdict.SIDES`.
    failures : tuple of str
        The ways the check can fail; a negative control's ``expect`` is one of them (the first
        is the default).
    tolerance : str or None
        What ``tolerance`` means for this check and its default; None: it takes none.
    """

    sides: str
    failures: tuple[str, ...]
    tolerance: str | None


_RELATIVE = "relative slack of measured ≤ bound, a real number > 0 (default 1e-9)"
#: The checks that are not bounds of :data:`convcheck.theory.BOUNDS`.
SPECIAL: dict[str, CheckKind] = {
    ASYNC_BOUND: CheckKind("upper", ("violated",), None),
    EXACT_RATE: CheckKind(
        "two-sided", ("off-rate", "too-fast", "too-slow"),
        "relative tolerance on the convergence speed −log(rate), a real number > 0 "
        "(default 0.01)",
    ),
    SLOWEST_DIRECTION: CheckKind("lower", ("violated",), _RELATIVE),
    HEAVY_BALL: CheckKind(
        "two-sided", ("differs",),
        "relative tolerance on f(θ^t) and θ^T, a real number > 0 (default 1e-9)",
    ),
    BELOW_REFERENCE: CheckKind(
        "ordering", ("not-below",),
        "relative margin: the run's final gap must be ≤ (1 − margin)·the reference's, "
        "a real number in (0, 1) (default 0.01)",
    ),
    CONVERGES: CheckKind("target", ("target-missed",), None),
}


def check_kind(name: str) -> CheckKind:
    """The :class:`CheckKind` of a known check name (a bound: upper side, fails by being
    violated; the LMI bound also by finding no certificate)."""
    if name in SPECIAL:
        return SPECIAL[name]
    from convcheck.theory import BOUNDS

    if BOUNDS[name].provenance == "certified (LMI)":
        return CheckKind("upper", ("violated", "no-certificate"), _RELATIVE)
    return CheckKind("upper", ("violated",), _RELATIVE)


def known_checks() -> tuple[str, ...]:
    """Names a case may use in ``bound``: every per-run bound of the theory and the checks of
    :data:`SPECIAL`."""
    from convcheck.theory import BOUNDS

    return (*BOUNDS, *SPECIAL)
