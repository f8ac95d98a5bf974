"""Certified linear rates for the algorithms of the engine, and the bound they give on a run.

* :func:`certify` — the Python twin of ``convcheck certify``: an algorithm name, its parameters
  and the constants ``L``, ``μ`` (optionally ``L_m``, ``μ_m``, classes) → a
  :class:`~convcheck.theory.lmi.Certificate` (``ρ``, ``P``, multipliers, numpy re-check) with
  ``rho_low``, ``gap``, ``lower_bound_method`` and ``assumptions`` (an explicit instance of the
  same class, :mod:`convcheck.theory.lower`), after the size guard (:func:`guard_size`).
* :func:`model_for` / :func:`certificate_for` — the model and certificate of an engine
  :class:`~convcheck.algorithms.base.Algorithm` on a :class:`~convcheck.problem.Problem`
  (α, β, ξ, δ = compressor.delta(d), the problem's ``L``, ``μ``, ``L_m``, ``μ_m``): the sector
  model, whose state is the algorithm's own. :func:`model_parameters` holds the per-algorithm
  part (one small function per algorithm).
* :func:`initial_state` — the state ``s⁰`` of that model at a run's start ``θ⁰``: the algorithm's
  own :meth:`~convcheck.algorithms.base.Algorithm.start` state, in deviations from the fixed
  point (``θ⁰ − θ̂``, ``α(h_m − ∇f_m(θ̂))``, error memories, ...).
* :class:`CertifiedBound` — ``‖θ^k − θ*‖² ≤ ρ^{2k} s⁰ᵀPs⁰``, checked on the trace column
  ``dist_sq`` like any other bound (provenance ``certified (LMI)``).

``θ̂`` is within ``r = ‖∇f(θ̂)‖/μ`` of ``θ*``; each state entry moves by at most
``c_a·r`` when ``θ̂`` replaces ``θ*`` (``c = 1`` for iterates, ``αL_m`` for gradient memories,
``0`` for error memories), so ``V(s⁰) ≥ (√V(ŝ⁰) − √λmax(P)·r·‖c‖)²`` is the start value used.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm, resolve_step
from convcheck.algorithms.bidirectional import BidirectionalTopK
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.algorithms.ef21 import EF21
from convcheck.algorithms.gd import GD
from convcheck.algorithms.gdsec import GDSEC
from convcheck.algorithms.lags import LAGS
from convcheck.engine.rounds import States, start
from convcheck.errors import InputError, check_int
from convcheck.problem import Problem
from convcheck.theory import quantities as q
from convcheck.theory.base import Bound, Condition
from convcheck.theory.lmi import (
    MEMORY_LIMIT,
    RHO_TOL,
    TIME_LIMIT,
    Certificate,
    LinearModel,
    SizeError,
    certify_model,
    check_size,
)
from convcheck.theory.lower import FAMILIES
from convcheck.theory.models import (
    MODELS,
    ModelConstants,
    assumptions_sentence,
    build_auto,
    build_model,
    lower_bound_of,
    model_parameters,
)

_CACHE: dict[str, Certificate] = {}
#: Above this many LMI rows the SDPs are slow: the full instance search runs before the
#: bisection (its rate starts it), not only a quick one.
QUICK_ROWS = 20


class _StepConstants:
    """What :func:`~convcheck.algorithms.base.resolve_step` reads: ``L, L_tilde, L_max, mu``."""

    def __init__(self, c: ModelConstants) -> None:
        self.L, self.mu = c.L, c.mu
        self.L_tilde = float(np.sqrt(np.mean(c.L_workers**2)))
        self.L_max = float(c.L_workers.max())


def _resolve_compression(params: dict[str, Any], accepted: tuple[str, ...]) -> dict[str, Any]:
    """``k`` (``k_up``, ``k_down``) with ``d`` → ``delta`` (``delta_up``, ``delta_down``) = k/d,
    for the algorithms that take those δ (others get ``k`` refused by :func:`build_model`)."""
    params = dict(params)
    pairs = [
        (key, target)
        for key, target in (("k", "delta"), ("k_up", "delta_up"), ("k_down", "delta_down"))
        if key in params and target in accepted
    ]
    if not pairs:
        return params
    if "d" not in params:
        raise InputError("d", None, f"the dimension d (needed with {pairs[0][0]}: δ = k/d)")
    d = check_int("d", params.pop("d"), 1)
    for key, target in pairs:
        if target in params:
            raise InputError(key, params[key], f"either {key} (with d) or {target}, not both")
        params[target] = check_int(key, params.pop(key), 1, d) / d
    return params


def gd_rate(alpha: float, mu: float, L: float) -> float:
    """``max(|1 − αμ|, |1 − αL|)``, the exact worst-case rate of GD on ``S(μ, L)`` [LRP]."""
    return max(abs(1.0 - alpha * mu), abs(1.0 - alpha * L))


def certify(
    algorithm: str,
    *,
    L: float,
    mu: float,
    workers: int = 1,
    L_workers: Any = None,
    mu_workers: Any = None,
    tol: float = RHO_TOL,
    model: str = "auto",
    window: int | None = None,
    classes: int | None = None,
    force: bool = False,
    lower_bound: bool = True,
    **params: Any,
) -> Certificate:
    """Certified linear rate of ``algorithm`` for every ``f = (1/M)Σ f_m`` with
    ``f_m ∈ S(μ_m, L_m)`` and ``f ∈ S(μ, L)``, and a lower bound beside it.

    Parameters
    ----------
    algorithm : str
        One of :data:`convcheck.theory.models.MODELS`: ``gd``, ``gd-sec``, ``ef``, ``ef21``,
        ``compressed-gd``, ``bidir-topk``, ``gd-delay``.
    L, mu : float
        Smoothness and strong convexity of ``f`` (``0 ≤ μ ≤ L``, ``L > 0``).
    workers : int
        ``M ≥ 1``.
    L_workers, mu_workers : sequence of M floats, optional
        Per-worker constants (default: ``L`` and ``μ`` for every worker).
    tol : float
        Bisection tolerance on ``ρ``.
    model : {"auto", "interpolation", "sector"}
        The sharp model (interpolation inequalities with function values over a history
        window), the state-complete sector model (the one certified bounds on runs use), or
        ``"auto"``: the sharpest whose main LMI has at most
        :data:`~convcheck.theory.models.AUTO_ROWS` rows (the interpolation model for a few
        classes of workers, the sector model for many).
    window : int, optional
        History window of the interpolation model (default: the algorithm's).
    classes : int, optional
        Round the per-worker constants into at most this many classes (``L_m`` up, ``μ_m``
        down); by default one class per distinct ``(L_m, μ_m)``.
    force : bool
        Solve even when the estimated SDP exceeds :data:`~convcheck.theory.lmi.MEMORY_LIMIT`.
    lower_bound : bool
        Search an explicit instance for ``rho_low`` (and start the bisection there).
    **params
        The algorithm's parameters: ``alpha`` (a number or ``"c/L"``, ``"c/L_tilde"``, ...),
        ``beta``, ``xi``, ``error_correction``, ``lifting`` (gd-sec, ef21), ``delta`` or ``k``
        with ``d`` (ef, ef21, compressed-gd), ``delta_up``/``delta_down`` or ``k_up``/``k_down``
        with ``d`` (bidir-topk), ``sparsifier``, ``heterogeneous`` (ef, compressed-gd,
        bidir-topk), ``tau`` and ``varying`` (gd-delay).

    Raises
    ------
    InputError
        Unknown algorithm or parameter, a constant out of range, a per-worker list of the wrong
        length, ``classes`` outside ``[1, M]``, an SDP past the size guard (naming ``tau``,
        ``classes`` or ``workers`` and the largest value that fits); the message names the
        field.
    """
    if algorithm not in MODELS:
        raise InputError("algorithm", algorithm, "one of " + ", ".join(repr(k) for k in MODELS))
    constants = ModelConstants.make(L, mu, workers, L_workers, mu_workers)
    spec = MODELS[algorithm]
    params = _resolve_compression(params, spec.required + tuple(spec.optional))
    if "alpha" in params and isinstance(params["alpha"], str):
        params["alpha"] = resolve_step(params["alpha"], _StepConstants(constants))

    def build(**change: Any) -> LinearModel:
        options = {"classes": classes, **params, **change}
        if model == "auto" and window is None:
            return build_auto(algorithm, constants, **options)
        variant = "interpolation" if model == "auto" else model
        return build_model(algorithm, constants, variant=variant, window_steps=window, **options)

    built = build()
    if not force:
        guard_size(built, build, algorithm, classes, constants.workers)
    return _certify_cached(built, tol, lower_bound)


def guard_size(
    model: LinearModel, rebuild: Any, algorithm: str, classes: int | None, workers: int,
    limit: float = MEMORY_LIMIT, seconds: float = TIME_LIMIT,
) -> None:
    """Refuse an SDP whose estimated memory or time exceeds the limits: an :class:`InputError`
    naming the parameter that makes it large (``tau`` of the delayed model, else ``classes`` —
    or ``workers`` when every worker has its own constants), its largest value within the
    limits, and the estimate. ``rebuild(**change)`` builds the model with one parameter
    changed."""
    try:
        check_size(model, limit, seconds)
        return
    except SizeError as error:
        estimate, limits = error.size.describe(), error.limits()
    if algorithm == "gd-delay":
        field, value = "tau", model.params["tau"]
    else:
        field = "classes" if classes is not None else "workers"
        value = classes if classes is not None else workers
    count = model.params.get("tau") if field == "tau" else model.params.get("classes", 1)
    low, high = 0 if field == "tau" else 1, int(count)
    while high - low > 1:
        middle = (low + high) // 2
        change = {"tau": middle} if field == "tau" else {"classes": middle}
        try:
            check_size(rebuild(**change), limit, seconds)
            low = middle
        except SizeError:
            high = middle
    if field == "tau":
        allowed = f"tau ≤ {low} for this model"
    else:
        allowed = (f"at most {low} classes of constants (pass classes ≤ {low}: "
                   "the constants are rounded, L_m up and μ_m down)")
    raise InputError(
        field, value,
        f"{allowed}; the SDP would be {estimate}, past the limits of {limits} "
        "(force=True, or --force, to solve anyway)",
    )


def _certify_cached(model: LinearModel, tol: float, lower_bound: bool = True) -> Certificate:
    """The certificate of ``model`` (cached) with its lower bound: a quick instance search
    first (its rate starts the bisection), then, if the gap exceeds the tolerance, the full
    search until an instance reaches the certified rate."""
    key = json.dumps([model.algorithm, model.params, tol, lower_bound], sort_keys=True,
                     default=str)
    if key in _CACHE:
        return _CACHE[key]
    alpha, c = model.params["alpha"], model.params
    hint = gd_rate(alpha, c["mu"], c["L"])
    if not lower_bound:
        certificate = certify_model(model, tol=tol, hint=hint)
        certificate = replace(certificate, assumptions=assumptions_sentence(model))
        _CACHE[key] = certificate
        return certificate
    large = model.main.size > QUICK_ROWS
    quick = lower_bound_of(model, families=FAMILIES if large else FAMILIES[:1])
    certificate = certify_model(model, tol=tol, hint=hint, lower=quick.rho)
    found = quick
    target = certificate.rho - tol if certificate.certified else 1.0
    if found.rho is not None and found.rho < target:
        thorough = lower_bound_of(model, target=target)
        if thorough.rho is not None and thorough.rho > found.rho:
            found = thorough
    certificate = certificate.with_lower_bound(found.rho, found.method, found.instance)
    certificate = replace(certificate, assumptions=assumptions_sentence(model))
    _CACHE[key] = certificate
    return certificate


def model_for(algorithm: Algorithm, problem: Problem) -> tuple[LinearModel | None, str]:
    """The LMI model of an engine algorithm on a problem, or ``(None, why not)``: the
    state-complete ``"sector"`` model the algorithm declares
    (:meth:`~convcheck.algorithms.Algorithm.lmi_model`; its state is the algorithm's own, see
    :func:`state_rows`), one class per distinct ``(L_m, μ_m)``."""
    name, params, why = model_parameters(algorithm, problem)
    if name is None:
        return None, why
    return build_model(name, ModelConstants.from_constants(problem.constants), **params), ""


def certificate_for(
    algorithm: Algorithm, problem: Problem, *, tol: float = RHO_TOL, lower_bound: bool = True
) -> Certificate | None:
    """The (cached) certificate of ``algorithm`` on ``problem``'s constants (the model of
    :func:`model_for`) with its lower bound, or None."""
    model, _ = model_for(algorithm, problem)
    return None if model is None else _certify_cached(model, tol, lower_bound)


def state_rows(model: LinearModel, algorithm: Algorithm, problem: Problem,
               states: States) -> np.ndarray:
    """The model state of an algorithm's ``states`` (:class:`~convcheck.engine.rounds.States`)
    as rows ``(n_s, d)`` (``model.states`` order), in deviations from the problem's certified
    optimum ``θ̂`` and ``∇f_m(θ̂)`` and in the θ-units of :mod:`convcheck.theory.models`: ``x``,
    ``a`` and ``v`` here, the algorithm's own entries from its
    :meth:`~convcheck.algorithms.Algorithm.lmi_state`."""
    objective = problem.objective
    theta_hat = problem.optimum.theta
    if theta_hat is None:
        raise InputError("problem", objective.name, "a convex problem with a reference optimum")
    alpha = algorithm.alpha
    theta = states.server.theta
    at_optimum = objective.worker_gradients(theta_hat)
    entries: dict[str, np.ndarray] = {
        "x": theta - theta_hat,
        "a": alpha * at_optimum,
    }
    gradients = objective.worker_gradients(theta)
    entries["v"] = alpha * (gradients - at_optimum)
    entries.update(algorithm.lmi_state(states.server, states.workers, gradients, theta_hat,
                                       at_optimum))
    rows = []
    for name in model.states:
        prefix, _, worker = name.rpartition("_")
        value = entries.get(name)
        if value is not None and value.ndim == 1:
            rows.append(value)
        elif prefix in entries and worker.isdigit() and entries[prefix].ndim == 2:
            rows.append(entries[prefix][int(worker)])
        else:
            raise InputError("model", model.algorithm, f"a model whose states are known ({name})")
    return np.array(rows)


def initial_state(
    model: LinearModel, algorithm: Algorithm, problem: Problem, theta0: np.ndarray | None = None
) -> np.ndarray:
    """``s⁰``: :func:`state_rows` of the algorithm's states at ``θ⁰`` (``θ⁰ = 0`` by default,
    as in the engine)."""
    objective = problem.objective
    theta0 = np.zeros(objective.dim) if theta0 is None else np.asarray(theta0, dtype=np.float64)
    if theta0.shape != (objective.dim,):
        raise InputError("theta0", f"array of shape {theta0.shape}", f"shape ({objective.dim},)")
    states, _ = start(algorithm, theta0, objective.n_workers,
                      lambda: objective.worker_gradients(theta0))
    return state_rows(model, algorithm, problem, states)


def start_value_range(
    certificate: Certificate, state: np.ndarray, radius: float
) -> tuple[float, float, float]:
    """``(V(ŝ⁰), lower, upper)``: bounds on ``V(s⁰)`` given ``‖θ̂ − θ*‖ ≤ radius`` (module doc)."""
    value = certificate.lyapunov(state)
    model = certificate.model
    spread = math.sqrt(sum(model.sensitivity.get(name, 0.0) ** 2 for name in model.states))
    top = certificate.max_eigenvalue()
    shift = math.sqrt(max(top, 0.0)) * radius * spread
    root = math.sqrt(max(value, 0.0))
    return value, max(root - shift, 0.0) ** 2, (root + shift) ** 2


_INSTANCES: dict[str, dict[str, Any]] = {}


def _instance_summary(algorithm: Algorithm, problem: Problem, tol: float) -> dict[str, Any]:
    """``instance_rho``, ``instance_rho_low`` and ``instance_reason`` of the instance certificate
    (quadratic problems; cached per algorithm parameters and problem)."""
    from convcheck.theory.instance import instance_certificate, instance_model

    key = json.dumps([algorithm.describe(), problem.objective.name, problem.constants.as_dict(),
                      tol], sort_keys=True, default=str)
    if key not in _INSTANCES:
        certificate = instance_certificate(algorithm, problem, tol=tol)
        if certificate is None:
            _, why = instance_model(algorithm, problem)
            summary = {"instance_rho": None, "instance_rho_low": None,
                       "instance_reason": why or "instance model past the size guard"}
        else:
            summary = {"instance_rho": certificate.rho, "instance_rho_low": certificate.rho_low,
                       "instance_reason": certificate.reason}
        _INSTANCES[key] = summary
    return _INSTANCES[key]


class CertifiedBound(Bound):
    """``‖θ^k − θ*‖² ≤ ρ^{2k} s⁰ᵀPs⁰`` from the LMI certificate of the run's algorithm."""

    name = "lmi/distance"
    algorithms = (GD, GDSEC, ErrorFeedback, LAGS, EF21, BidirectionalTopK)
    problem_class = "strongly convex"
    quantity = "dist_sq"
    quantity_formula = "‖θ^k − θ*‖²  (measured as (‖θ^k − θ̂‖ + r)²)"
    statement = "‖θ^k − θ*‖² ≤ ρ^{2k} V(s⁰), V(s) = sᵀPs ≥ ‖θ − θ*‖² (LMI certificate)"
    provenance = "certified (LMI)"
    citation = "[LRP]; LMI of docs/theory.md §4 (sector model), re-checked with numpy"

    def __init__(self, tol: float = RHO_TOL, lower_bound: bool = True) -> None:
        self.tol = tol
        self.lower_bound = lower_bound

    def constants(self, algorithm, problem, theta0=None) -> dict:
        model, why = model_for(algorithm, problem)
        out: dict[str, Any] = {
            "alpha": float(algorithm.alpha),
            "L": problem.constants.L,
            "mu": problem.constants.mu,
            "model": None if model is None else model.params,
            "model_reason": why,
            "certified": False,
            "rho": None,
        }
        if model is None or problem.constants.mu <= 0:
            return out
        certificate = _certify_cached(model, self.tol, self.lower_bound)
        out.update(
            certified=certificate.certified,
            rho=certificate.rho,
            rho_low=certificate.rho_low,
            gap=certificate.gap,
            lower_bound_method=certificate.lower_bound_method,
            assumptions=certificate.assumptions,
            model_description=dict(model.description),
            certificate_reason=certificate.reason,
            certificate_seconds=certificate.seconds,
        )
        out.update(_instance_summary(algorithm, problem, self.tol))
        if certificate.certified:
            ref = q.Reference.of(problem)
            state = initial_state(model, algorithm, problem, theta0)
            value, lower, upper = start_value_range(certificate, state, ref.radius)
            out.update(
                V0=value,
                V0_lower=lower,
                V0_upper=upper,
                radius=ref.radius,
                start_dist_sq=float(state[0] @ state[0]),
                _certificate=certificate,
            )
        return out

    def conditions(self, constants: dict) -> list[Condition]:
        return [
            Condition(
                "an LMI model exists (deterministic, contractive compression)",
                constants["model"] is not None,
                constants["model_reason"] or "yes",
            ),
            Condition("μ > 0 (strongly convex)", constants["mu"] > 0, f"μ = {constants['mu']:.6g}"),
            Condition(
                "a linear rate ρ < 1 is certified",
                bool(constants["certified"]),
                constants.get("certificate_reason", ""),
            ),
        ]

    def measure(self, run, problem, constants):
        return q.distance_sq_upper(run, q.Reference.of(problem))

    def evaluate(self, run, problem, constants):
        if not constants.get("certified"):
            raise InputError("certificate", "none", "a certified rate to evaluate")
        start = float(q.column(run, "dist_sq")[0])
        if not math.isclose(start, constants["start_dist_sq"], rel_tol=1e-9, abs_tol=1e-300):
            raise InputError(
                "theta0",
                f"a start with ‖θ⁰ − θ̂‖² = {constants['start_dist_sq']:.6g}",
                f"the run's start point (its trace has ‖θ⁰ − θ̂‖² = {start:.6g})",
            )
        rho2 = constants["rho"] ** 2
        bound = np.power(rho2, q.column(run, "iteration")) * constants["V0_lower"]
        return bound, {"V0": constants["V0"], "V0_lower": constants["V0_lower"]}

    def floor(self, run, problem, constants):
        """Rounding floor, plus per row what ``r = ‖∇f(θ̂)‖/μ`` leaves open on both sides:
        ``(D_k + r)² − (D_k − r)² ≤ 4D_k r + 4r²`` for the measured ``‖θ^k − θ*‖²``
        (``D_k = ‖θ^k − θ̂‖``) and ``ρ^{2k}(V⁰_upper − V⁰_lower)`` for the bound."""
        ref = q.Reference.of(problem)
        distance = np.sqrt(q.column(run, "dist_sq"))
        start = constants.get("V0_upper", 0.0) - constants.get("V0_lower", 0.0)
        rho2 = (constants.get("rho") or 0.0) ** 2
        reference = 4.0 * ref.radius * (distance + ref.radius)
        reference += np.power(rho2, q.column(run, "iteration")) * start
        return q.distance_sq_floor(ref, constants["alpha"], constants["mu"]) + reference
