"""Instance certificates: an algorithm on one quadratic problem, with its own Hessians.

A class certificate (:mod:`convcheck.theory.certified`) holds for every ``f_m ∈ S(μ_m, L_m)`` and
every compressor of a class; on the suite's problems it can be far from what one instance does.
For a **quadratic** objective (ridge, least squares, the ``quadratics`` dataset) every
``f_m(θ) = ½θᵀH_mθ − b_mᵀθ + c_m``, so the gradient deviations of the models are exact linear
maps, ``u_m = α(∇f_m(θ* + x) − ∇f_m(θ*)) = αH_m x``. The class model of the algorithm (one class
per worker, no function constraints needed) is expanded **coordinate by coordinate**: every vector
entry ``v`` becomes the ``d`` numbers ``v[i]`` (the LMI of :mod:`convcheck.theory.lmi` with entries
in ``ℝ``), the gradients become ``αH_m(point)``, and the compressor constraints become

* the contraction ``Σ_i r_i² ≤ (1 − δ) Σ_i v_i²`` (``δ = k/d`` for top-k), one constraint;
* for a sparsifier (top-k, the GD-SEC threshold, ...), which keeps or drops each coordinate:
  ``r_i (v_i − r_i) = 0`` for every ``i``;
* GD-SEC's thresholds per coordinate, with the run's own ``ξ_i``: ``r_i² ≤ ξ_i² s_i²``.

The certificate holds for this instance and every compressor with these properties (so for the
run's top-k or thresholds): tighter than the class, still a worst case over which coordinates the
compressor keeps. Without compressor (GD) the instance is linear: its rate is the spectral radius
of its round, which the certificate attains (``rho_low``). The state has ``d·n_s`` entries; the
size guard of :mod:`convcheck.theory.lmi` applies (a large ``d·M`` gets no instance certificate).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from convcheck.errors import InputError
from convcheck.theory.lmi import (
    RHO_TOL,
    Block,
    Certificate,
    LinearModel,
    Mode,
    QuadraticConstraint,
    Signal,
    SizeError,
    certify_model,
    check_size,
    norm_bound,
    orthogonal,
    total,
)
from convcheck.theory.rounds import Round, Threshold

#: Objective families whose workers are quadratics.
QUADRATIC_FAMILIES = ("ridge",)


def worker_hessians(problem: Any) -> np.ndarray:
    """``H_m = ∇²f_m`` of every worker, shape ``(M, d, d)``.

    Raises
    ------
    InputError
        ``class``: the objective is not quadratic (e.g. logistic regression).
    """
    objective = problem.objective
    if objective.family not in QUADRATIC_FAMILIES:
        raise InputError(
            "class", "quadratic",
            f"a quadratic objective ({', '.join(QUADRATIC_FAMILIES)}: ridge, least squares, "
            f"quadratics); this problem is {objective.family!r}",
        )
    zero = np.zeros(objective.dim)
    return np.array([objective.restrict(m).hessian(zero) for m in range(objective.n_workers)])


def _coordinate(signal: Signal, i: int) -> Signal:
    return Signal({f"{name}[{i}]": value for name, value in signal.terms.items()})


def expand(
    rnd: Round,
    hessians: np.ndarray,
    alpha: float,
    thresholds: np.ndarray | None = None,
) -> tuple[Block, str]:
    """The round on the instance, coordinate by coordinate (see the module doc): the block and
    a description of its constraints."""
    d = hessians.shape[1]
    gradients: dict[str, tuple[int, Signal]] = {}
    for call in rnd.calls:
        for key, gradient in call.gradients.items():
            if key != "f" and len(gradient.terms) == 1:
                (name,) = gradient.terms
                if name in rnd.inputs:
                    gradients[name] = (int(key[2:]), call.x)
    substitution: dict[str, Signal] = {}
    for name, (c, point) in gradients.items():
        H = alpha * hessians[c]
        coordinates = [_coordinate(point, j) for j in range(d)]
        for i in range(d):
            substitution[f"{name}[{i}]"] = total(
                H[i, j] * coordinates[j] for j in range(d) if H[i, j] != 0.0
            )

    def entries(signal: Signal) -> list[Signal]:
        return [_coordinate(signal, i).substitute(substitution) for i in range(d)]

    constraints: list[QuadraticConstraint] = []
    for item in rnd.errors:
        r = entries(Signal.var(item.error))
        source = entries(item.source)
        if isinstance(item, Threshold):
            reference = entries(item.reference)
            xi = np.full(d, item.xi) if thresholds is None else thresholds
            for i in range(d):
                constraints.append(norm_bound(r[i], reference[i], float(xi[i]) ** 2,
                                              f"threshold {item.label} [{i}]"))
                constraints.append(orthogonal(r[i], source[i],
                                              f"kept or dropped {item.label} [{i}]"))
            continue
        terms = tuple((1.0 - item.delta, v, v) for v in source) + tuple((-1.0, e, e) for e in r)
        constraints.append(QuadraticConstraint(f"contraction {item.label}", "inequality", terms))
        if item.sparsifier:
            for i in range(d):
                constraints.append(orthogonal(r[i], source[i],
                                              f"kept or dropped {item.label} [{i}]"))
    states = tuple(f"{s}[{i}]" for s in rnd.states for i in range(d))
    inputs = tuple(f"{w}[{i}]" for w in rnd.inputs if w not in gradients for i in range(d))
    update = {}
    for s in rnd.states:
        for i, value in enumerate(entries(rnd.update[s])):
            update[f"{s}[{i}]"] = value
    mode = Mode(rnd.name, update, tuple(c for c in constraints if not c.is_zero()))
    theta = tuple(_coordinate(rnd.theta, i) for i in range(d))
    kinds = {type(item).__name__ for item in rnd.errors}
    about = "exact gradients αH_m·(point)"
    if "Compression" in kinds:
        about += "; compressors: contraction, and each coordinate kept or dropped (sparsifier)"
    if "Threshold" in kinds:
        about += "; GD-SEC thresholds per coordinate with the run's ξ_i"
    return Block("main", states, inputs, (mode,), theta=theta), about


def instance_model(algorithm: Any, problem: Any, *, strict: bool = False
                   ) -> tuple[LinearModel | None, str]:
    """The instance model of an engine algorithm on a quadratic problem, or ``(None, why)``.

    Raises
    ------
    InputError
        With ``strict=True``: the objective is not quadratic (``class``), or the algorithm has
        no model (``algorithm``).
    """
    from convcheck.theory.models import (
        ModelConstants,
        coordinate_thresholds,
        explicit_round,
        model_parameters,
    )

    try:
        hessians = worker_hessians(problem)
    except InputError:
        if strict:
            raise
        return None, f"not a quadratic objective ({problem.objective.family})"
    name, params, why = model_parameters(algorithm, problem)
    if name is None:
        if strict:
            raise InputError("algorithm", algorithm.name, f"an algorithm with a model ({why})")
        return None, why
    constants = ModelConstants.from_constants(problem.constants)
    rnd = explicit_round(name, constants, **params)
    d = problem.objective.dim
    block, about = expand(rnd, hessians, params["alpha"],
                          coordinate_thresholds(algorithm, d))
    spectra = [np.linalg.eigvalsh(H) for H in hessians]
    description = {
        "name": "instance (quadratic)",
        "algorithm": name,
        "functions": ("the problem's own quadratics: per worker the Hessian H_m, eigenvalues in "
                      + ", ".join(f"[{s[0]:.4g}, {s[-1]:.4g}]" for s in spectra)),
        "compressor": about,
        "constraints": "exact linear gradients; compressor constraints per coordinate",
        "lyapunov": f"quadratic in the algorithm's state, coordinate by coordinate (d = {d})",
        "workers": f"{constants.workers} workers, each explicit",
        "reduction": "none (each worker and each coordinate explicit)",
    }
    model_params = {**params, **constants.as_dict(), "model": "instance", "d": d}
    model = LinearModel(name, model_params, (block,), block.states, description=description)
    return model, ""


def instance_certificate(
    algorithm: Any, problem: Any, *, tol: float = RHO_TOL
) -> Certificate | None:
    """The certificate of ``algorithm`` on this quadratic instance (see the module doc), with
    ``rho_low`` where the instance is linear; ``None`` when the objective is not quadratic, the
    algorithm has no model, or the instance model exceeds the size guard."""
    model, _ = instance_model(algorithm, problem)
    if model is None:
        return None
    try:
        check_size(model)
    except SizeError:
        return None
    lower, method = _linear_rate(model)
    certificate = certify_model(model, tol=tol, lower=lower)
    certificate = certificate.with_lower_bound(lower, method)
    sentence = (f"This instance: {model.description['functions']}; "
                f"{model.description['compressor']}.")
    return replace(certificate, assumptions=sentence)


def _linear_rate(model: LinearModel) -> tuple[float | None, str]:
    """Without inputs the instance is the linear map ``s⁺ = N s``: its spectral radius (over
    eigenvectors that move ``θ``) is its rate."""
    block = model.main
    if block.inputs:
        return None, ("none: the compressors choose which coordinates to keep, so the instance "
                      "is not one linear map")
    N, _ = block.matrices(block.modes[0])
    values, vectors = np.linalg.eig(N)
    theta = block.theta_matrix()
    moving = [abs(v) for v, w in zip(values, vectors.T, strict=True)
              if np.linalg.norm(theta.T @ w) > 1e-9 * np.linalg.norm(w)]
    rate = float(max(moving)) if moving else 0.0
    return rate, "the instance is linear: the spectral radius of its round (exact)"
