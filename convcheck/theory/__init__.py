"""Bounds with provenance, LMI-certified linear rates with lower bounds, and rate fits
(docs/theory.md).

Checking the bounds of a run::

    from convcheck import build_problem, make_algorithm, run
    from convcheck.theory import bounds_for, check_bound

    problem = build_problem("logistic", "breast-cancer", workers=4, split="sorted")
    algorithm = make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.2)
    trace = run(algorithm, problem, 300)
    for bound in bounds_for(algorithm, problem):
        result = check_bound(bound, trace, problem, algorithm)
        print(bound.name, bound.provenance, result.applicable, result.holds, result.max_ratio)

A certified rate without data (``convcheck certify``)::

    from convcheck.theory import certify

    certificate = certify("ef21", L=1.0, mu=0.01, workers=4, alpha=0.05, delta=0.1)
    print(certificate.certified, certificate.rho, certificate.rho_low, certificate.gap)
    print(certificate.model.description["name"], certificate.assumptions)

An instance certificate (a quadratic problem with its own Hessians)::

    from convcheck.theory import instance_certificate

    certificate = instance_certificate(algorithm, problem)  # None if not quadratic

Modules: :mod:`~convcheck.theory.base` (what a bound is), :mod:`~convcheck.theory.bounds`
(closed forms), :mod:`~convcheck.theory.lmi` and :mod:`~convcheck.theory.models`
(certificates), :mod:`~convcheck.theory.certified` (certificates of engine algorithms and their
bound on runs), :mod:`~convcheck.theory.check` (verdicts), :mod:`~convcheck.theory.quantities`
(conservative measured quantities and floors), :mod:`~convcheck.theory.registry` (all bounds),
:mod:`~convcheck.theory.fits` (empirical rates), :mod:`~convcheck.theory.rounds` (rounds, views,
history windows), :mod:`~convcheck.theory.lower` (lower bounds by explicit instances),
:mod:`~convcheck.theory.instance` (instance certificates), :mod:`~convcheck.theory.scaling_bench`
(certificate time against M). Proofs: docs/theory.md.
"""

from convcheck.theory.base import PROVENANCES, Bound, Condition
from convcheck.theory.bounds import CLOSED_FORM
from convcheck.theory.certified import (
    CertifiedBound,
    certificate_for,
    certify,
    gd_rate,
    initial_state,
    model_for,
    state_rows,
)
from convcheck.theory.check import RTOL, BoundCheck, check_bound
from convcheck.theory.fits import RateFit, fit_linear_rate, fit_power_law
from convcheck.theory.instance import instance_certificate
from convcheck.theory.lmi import Certificate, LinearModel, certify_model
from convcheck.theory.models import MODELS, ModelConstants, build_model
from convcheck.theory.registry import BOUNDS, bounds_for

__all__ = [
    "BOUNDS",
    "CLOSED_FORM",
    "MODELS",
    "PROVENANCES",
    "RTOL",
    "Bound",
    "BoundCheck",
    "Certificate",
    "CertifiedBound",
    "Condition",
    "LinearModel",
    "ModelConstants",
    "RateFit",
    "bounds_for",
    "build_model",
    "certificate_for",
    "certify",
    "certify_model",
    "check_bound",
    "fit_linear_rate",
    "fit_power_law",
    "gd_rate",
    "initial_state",
    "instance_certificate",
    "model_for",
    "state_rows",
]
