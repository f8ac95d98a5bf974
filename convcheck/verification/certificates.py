"""The certificates of one case, side by side: class, instance and measured rate.

* **class**: the sharpest model of the algorithm for every ``f_m ∈ S(μ_m, L_m)`` with the
  problem's constants (:func:`convcheck.theory.certified.certify`, ``model="auto"``), with its
  lower bound;
* **instance**: the algorithm on the problem's own quadratics, where the objective is quadratic
  (:func:`convcheck.theory.instance.instance_certificate`);
* **measured**: the linear rate of ``‖θ^k − θ̂‖`` fitted on one run of the case (its first seed),
  i.e. the square root of the fitted per-iteration factor of ``dist_sq``.

All three are rates of the distance to the optimum per iteration, so they compare directly; the
class and instance certificates are worst cases over their classes, the measured rate is one
trajectory's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convcheck.errors import InputError
from convcheck.verification.cases import Case

#: Classes ``convcheck certify --case`` accepts.
CLASSES = ("smooth", "quadratic")


def case_certificates(
    case: Case, *, data_dir: str | None = None, instance_class: str | None = None
) -> dict[str, Any]:
    """Class certificate, instance certificate and measured rate of ``case`` (plain data).

    Parameters
    ----------
    instance_class : {"smooth", "quadratic"}, optional
        ``"quadratic"`` requires a quadratic objective (an :class:`InputError` naming ``class``
        otherwise); ``"smooth"`` skips the instance; by default the instance certificate is
        computed where the objective is quadratic.
    """
    from convcheck.algorithms import make_algorithm
    from convcheck.engine import run
    from convcheck.theory.certified import certify, model_parameters
    from convcheck.theory.fits import fit_linear_rate
    from convcheck.theory.instance import instance_certificate, instance_model
    from convcheck.verification.runner import case_problem

    if instance_class is not None and instance_class not in CLASSES:
        raise InputError("class", instance_class, "one of " + ", ".join(map(repr, CLASSES)))
    problem = case_problem(case, data_dir)
    algorithm = make_algorithm(case.algorithm_name, problem.constants, **case.algorithm_params())
    out: dict[str, Any] = {"case": case.name, "algorithm": algorithm.name,
                           "problem": problem.objective.name}
    name, params, why = model_parameters(algorithm, problem)
    if instance_class == "quadratic":
        instance_model(algorithm, problem, strict=True)
    if name is None:
        out["class"] = {"certified": False, "reason": why}
    else:
        c = problem.constants
        certificate = certify(name, L=c.L, mu=c.mu, workers=len(c.L_workers),
                              L_workers=c.L_workers, mu_workers=c.mu_workers, **params)
        out["class"] = _summary(certificate)
    if instance_class == "smooth":
        out["instance"] = {"certified": False, "reason": "not requested (class smooth)"}
    else:
        certificate = instance_certificate(algorithm, problem)
        if certificate is None:
            _, why = instance_model(algorithm, problem)
            out["instance"] = {"certified": False,
                               "reason": why or "instance model past the size guard"}
        else:
            out["instance"] = _summary(certificate)
    seed = case.run.seeds[0]
    trace = run(algorithm, problem, case.run.iterations, seed=seed,
                theta0=None if case.run.theta0 is None else np.asarray(case.run.theta0))
    distance = np.asarray(trace.columns["dist_sq"], dtype=float)
    try:
        fitted = fit_linear_rate(distance, burn_in=0.3).rate
        measured = math.sqrt(fitted) if fitted >= 0 else None
    except InputError as error:
        measured, fitted = None, str(error)
    out["measured"] = {"rate": measured, "seed": seed, "iterations": case.run.iterations,
                       "status": trace.status,
                       "how": "√ of the Theil–Sen linear rate of ‖θ^k − θ̂‖², last 70% of the run"}
    return out


def _summary(certificate: Any) -> dict[str, Any]:
    return {
        "certified": certificate.certified,
        "rho": certificate.rho,
        "rho_low": certificate.rho_low,
        "gap": certificate.gap,
        "lower_bound_method": certificate.lower_bound_method,
        "assumptions": certificate.assumptions,
        "model": dict(certificate.model.description),
        "reason": certificate.reason,
    }
