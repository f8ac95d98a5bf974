"""The closed-form bounds (docs/algorithms.md §5), each with provenance, conditions and citation.

=========================  ==============  =====================================================
name                       provenance      inequality (conditions)
=========================  ==============  =====================================================
gd/strongly-convex         classical       f(θ^k) − f* ≤ (1 − αμ(2 − αL))^k (f(θ⁰) − f*)
                                           (0 < α < 2/L; = (1 − μ/L)^k at α = 1/L)
gd/convex                  classical       f(θ^k) − f* ≤ ‖θ⁰ − θ*‖²/(2αk)   (0 < α ≤ 1/L)
gd/nonconvex               classical       (1/T)Σ_{k<T}‖∇f(θ^k)‖² ≤ (f(θ⁰) − f_low)/(α(1 − αL/2)T)
                                           (0 < α < 2/L; = 2L(f(θ⁰) − f_low)/T at α = 1/L)
gd-sec/nonconvex           derived here    (1/T)Σ_{k<T}‖∇f(θ^k)‖² ≤ 2(f(θ⁰) − f_low)/(αTc),
                                           c = 1 − Lα − (Lαξ/(1 − 2ξ))² > 0, ξ < 1/2, EC on
gd-sec/convex              derived here    (1/T)Σ_{k<T}(f(θ^k) − f*) ≤ ‖θ⁰ − θ*‖²/(2αT)
                                           (1/(2L) − α ≥ 2Lα²ξ²/(1 − 2ξ)², ξ < 1/2, EC on)
ef21/nonconvex             paper           (1/T)Σ_{t<T}‖∇f(θ^t)‖² ≤ 2(f(θ⁰) − f_low)/(αT) + G⁰/(θT)
                                           (α ≤ 1/(L + L̃√(β/θ)))            [EF21] Thm 1
ef21/pl                    paper           f(θ^T) − f* + (α/θ)G^T
                                           ≤ (1 − αμ)^T (f(θ⁰) − f* + (α/θ)G⁰)
                                           (α ≤ min(1/(L + L̃√(2β/θ)), θ/(2μ)))   [EF21] Thm 2
ef/nonconvex               derived here    (1/T)Σ_{k<T}‖∇f(θ^k)‖² ≤ [2(f(θ⁰) − f_low)/(αT)
bidir-topk/nonconvex                       + (LαQ)²ζ²]/c, c = 1 − Lα − (LαQ)² > 0;
                                           EF (and LAGS): Q = t/(1 − t), t = √(1 − δ);
                                           bidirectional: Q = (t_up + t_dn/(1 − t_dn))/(1 − t_up)
ef21-bc/nonconvex          derived here    (1/T)Σ_{t<T}‖∇f(θ^t)‖²
                                           ≤ (2(f(θ⁰) − f_low)/α + w_G G⁰ + w_P P⁰)/T
                                           (α ≤ 1/(L + L̃√K))
ef21-bc/pl                 derived here    f(θ^T) − f* + α(w_G G^T + w_P P^T)
                                           ≤ (1 − αμ)^T (f(θ⁰) − f* + α(w_G G⁰ + w_P P⁰))
                                           (α ≤ min(1/(L + L̃√K), θ_w/(2μ), θ_s/(2μ)))
=========================  ==============  =====================================================

with ``ξ = max_i ξ_i`` (GD-SEC), ``θ = 1 − √(1 − δ)``, ``β = (1 − δ)/(1 − √(1 − δ))`` and
``G^t = (1/M)Σ_m‖g_m^t − ∇f_m(θ^t)‖²`` (the trace column ``ef21_G``),
``ζ² ≥ sup_θ (1/M)Σ_m‖∇f_m(θ) − ∇f(θ)‖²`` (:func:`gradient_dissimilarity`); for EF21-BC,
``θ_w, β_w`` and ``θ_s, β_s`` are those of the uplink and downlink compressors,
``P^t = ‖b^t − g^t‖²`` is the downlink's error and ``K, w_G, w_P`` (one set per bound) are in
docs/theory.md §10. The GD bounds are stated for every step in their range (at α = 1/L they
reduce to ``(1 − μ/L)^k``, ``L‖θ⁰ − θ*‖²/(2k)`` and ``2L(f(θ⁰) − f_low)/T``); the proofs of
all ``derived here`` bounds, and the checked constants of the others, are in docs/theory.md.
The certified (LMI) bound on ``‖θ^k − θ*‖²`` is :class:`convcheck.theory.certified.CertifiedBound`.

Measured quantities are upper estimates and start values lower estimates of the exact ones
(see :mod:`convcheck.theory.quantities`), so a check can only err on the safe side.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm
from convcheck.algorithms.bidirectional import BidirectionalTopK
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.algorithms.ef21 import EF21
from convcheck.algorithms.ef21bc import EF21BC
from convcheck.algorithms.gd import GD
from convcheck.algorithms.gdsec import GDSEC
from convcheck.algorithms.lags import LAGS
from convcheck.compressors import Compressor
from convcheck.engine.trace import Run
from convcheck.errors import InputError
from convcheck.problem import Problem
from convcheck.theory import quantities as q
from convcheck.theory.base import Bound, Condition, NotEvaluable, at_most, below


def _iterations(run: Run) -> np.ndarray:
    return q.column(run, "iteration")


def _common(algorithm: Algorithm, problem: Problem) -> dict[str, Any]:
    c = problem.constants
    return {
        "alpha": float(algorithm.alpha),
        "L": c.L,
        "mu": c.mu,
        "L_tilde": c.L_tilde,
        "problem_class": c.problem_class,
    }


def _per_count(numerator: float, counts: np.ndarray) -> np.ndarray:
    """``numerator / T`` per row, ``nan`` at ``T = 0``."""
    out = np.full(counts.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[counts > 0] = numerator / counts[counts > 0]
    return out


def _geometric(rate: float, counts: np.ndarray) -> np.ndarray:
    """``rate^k`` without overflow warnings (``rate ≥ 0``)."""
    with np.errstate(over="ignore", divide="ignore"):
        return np.power(rate, counts)


# -- measured quantities --------------------------------------------------------------------------
class _Suboptimality(Bound):
    quantity = "suboptimality"
    quantity_formula = "f(θ^k) − f*  (measured as f(θ^k) − f_low)"

    def measure(self, run: Run, problem: Problem, constants: dict) -> np.ndarray:
        return q.gap_upper(run, q.Reference.of(problem))

    def floor(self, run: Run, problem: Problem, constants: dict) -> float:
        return q.value_floor(run, q.Reference.of(problem))


class _MeanGradient(Bound):
    quantity = "mean_grad_norm_sq"
    quantity_formula = "(1/T) Σ_{k<T} ‖∇f(θ^k)‖²  (≥ min_{k<T} ‖∇f(θ^k)‖²)"

    def measure(self, run: Run, problem: Problem, constants: dict) -> np.ndarray:
        return q.running_mean(q.column(run, "grad_norm_sq"))

    def floor(self, run: Run, problem: Problem, constants: dict) -> float:
        return q.gradient_sq_floor(q.Reference.of(problem))


class _MeanSuboptimality(Bound):
    quantity = "mean_suboptimality"
    quantity_formula = "(1/T) Σ_{k<T} (f(θ^k) − f*)  (measured with f_low)"

    def measure(self, run: Run, problem: Problem, constants: dict) -> np.ndarray:
        return q.running_mean(q.gap_upper(run, q.Reference.of(problem)))

    def floor(self, run: Run, problem: Problem, constants: dict) -> float:
        return q.value_floor(run, q.Reference.of(problem))


# -- GD, classical --------------------------------------------------------------------------------
class GDStronglyConvex(_Suboptimality):
    name = "gd/strongly-convex"
    algorithms = (GD,)
    problem_class = "strongly convex"
    statement = (
        "f(θ^k) − f* ≤ (1 − αμ(2 − αL))^k (f(θ⁰) − f*) for 0 < α < 2/L "
        "(= (1 − μ/L)^k (f(θ⁰) − f*) at α = 1/L)"
    )
    provenance = "classical"
    citation = "[Polyak63]; [KNS16] Thm 1 (α = 1/L); proof for 0 < α < 2/L in docs/theory.md §1"

    def constants(self, algorithm, problem, theta0=None) -> dict:
        out = _common(algorithm, problem)
        out["rate"] = 1.0 - out["alpha"] * out["mu"] * (2.0 - out["alpha"] * out["L"])
        return out

    def conditions(self, constants: dict) -> list[Condition]:
        return [below("α < 2/L", constants["alpha"], 2.0 / constants["L"], ("α", "2/L"))]

    def evaluate(self, run, problem, constants):
        start = q.start_gap_lower(run, q.Reference.of(problem))
        return _geometric(constants["rate"], _iterations(run)) * start, {"start_gap": start}


class GDConvex(_Suboptimality):
    name = "gd/convex"
    algorithms = (GD,)
    problem_class = "convex"
    statement = "f(θ^k) − f* ≤ ‖θ⁰ − θ*‖²/(2αk) for 0 < α ≤ 1/L (= L‖θ⁰ − θ*‖²/(2k) at α = 1/L)"
    provenance = "classical"
    citation = "[Beck17] (step 1/L); proof for 0 < α ≤ 1/L in docs/theory.md §1"

    def constants(self, algorithm, problem, theta0=None) -> dict:
        return _common(algorithm, problem)

    def conditions(self, constants: dict) -> list[Condition]:
        return [at_most("α ≤ 1/L", constants["alpha"], 1.0 / constants["L"], ("α", "1/L"))]

    def evaluate(self, run, problem, constants):
        ref = q.Reference.of(problem)
        start = q.start_distance_sq_lower(run, ref)
        bound = _per_count(start / (2.0 * constants["alpha"]), _iterations(run))
        return bound, {"start_dist_sq": start, "radius_certified": ref.radius_certified}


class GDNonconvex(_MeanGradient):
    name = "gd/nonconvex"
    algorithms = (GD,)
    problem_class = "nonconvex"
    statement = (
        "(1/T) Σ_{k<T} ‖∇f(θ^k)‖² ≤ (f(θ⁰) − f_low)/(α(1 − αL/2)T) for 0 < α < 2/L "
        "(= 2L(f(θ⁰) − f_low)/T at α = 1/L, a bound on min_{k<T} ‖∇f(θ^k)‖² too)"
    )
    provenance = "classical"
    citation = "[Nesterov04] §1.2.3; proof in docs/theory.md §1"

    def constants(self, algorithm, problem, theta0=None) -> dict:
        out = _common(algorithm, problem)
        out["descent"] = out["alpha"] * (1.0 - out["alpha"] * out["L"] / 2.0)
        return out

    def conditions(self, constants: dict) -> list[Condition]:
        return [below("α < 2/L", constants["alpha"], 2.0 / constants["L"], ("α", "2/L"))]

    def evaluate(self, run, problem, constants):
        if constants["descent"] <= 0:
            raise NotEvaluable(
                f"α(1 − αL/2) = {constants['descent']:.6g} ≤ 0 (α ≥ 2/L): the formula "
                "(f(θ⁰) − f_low)/(α(1 − αL/2)T) is not a positive bound"
            )
        start = q.start_gap_upper(run, q.Reference.of(problem))
        numerator = start / constants["descent"]
        return _per_count(numerator, _iterations(run)), {"start_gap": start}


# -- GD-SEC, derived here -------------------------------------------------------------------------
def _gdsec_constants(algorithm: GDSEC, problem: Problem) -> dict:
    out = _common(algorithm, problem)
    xi = algorithm.xi_max
    out.update(xi=xi, beta=algorithm.beta, error_correction=algorithm.error_correction)
    alpha, L = out["alpha"], out["L"]
    with np.errstate(divide="ignore", invalid="ignore"):
        amplification = xi / (1.0 - 2.0 * xi) if xi != 0.5 else math.inf
    out["xi_over_one_minus_two_xi"] = amplification
    out["c"] = 1.0 - L * alpha - (L * alpha * amplification) ** 2
    out["convex_slack"] = 1.0 / (2.0 * L) - alpha - 2.0 * L * alpha**2 * amplification**2
    return out


def _gdsec_conditions(constants: dict) -> list[Condition]:
    return [
        Condition(
            "error correction on",
            bool(constants["error_correction"]),
            f"error_correction = {constants['error_correction']}",
        ),
        below("ξ = max_i ξ_i < 1/2", constants["xi"], 0.5, ("ξ", "1/2")),
    ]


class GDSECNonconvex(_MeanGradient):
    name = "gd-sec/nonconvex"
    algorithms = (GDSEC,)
    problem_class = "nonconvex"
    statement = (
        "(1/T) Σ_{k<T} ‖∇f(θ^k)‖² ≤ 2(f(θ⁰) − f_low)/(αTc), "
        "c = 1 − Lα − (Lαξ/(1 − 2ξ))² > 0, ξ = max_i ξ_i < 1/2, with error correction"
    )
    provenance = "derived here"
    citation = "derived in docs/theory.md §2 for the rule of [GDSEC] (docs/algorithms.md §3)"

    def constants(self, algorithm, problem, theta0=None) -> dict:
        return _gdsec_constants(algorithm, problem)

    def conditions(self, constants: dict) -> list[Condition]:
        c = constants["c"]
        return _gdsec_conditions(constants) + [
            Condition("c = 1 − Lα − (Lαξ/(1 − 2ξ))² > 0", bool(c > 0), f"c = {c:.6g}")
        ]

    def evaluate(self, run, problem, constants):
        if not constants["xi"] < 0.5:
            raise NotEvaluable(
                f"ξ = {constants['xi']:.6g} ≥ 1/2: Lemma 2.6's Σ_j h_j = 1/(1 − 2ξ) is infinite"
            )
        if constants["c"] <= 0:
            raise NotEvaluable(
                f"c = 1 − Lα − (Lαξ/(1 − 2ξ))² = {constants['c']:.6g} ≤ 0: the formula "
                "2(f(θ⁰) − f_low)/(αTc) is not a positive bound"
            )
        start = q.start_gap_upper(run, q.Reference.of(problem))
        numerator = 2.0 * start / (constants["alpha"] * constants["c"])
        return _per_count(numerator, _iterations(run)), {"start_gap": start}


class GDSECConvex(_MeanSuboptimality):
    name = "gd-sec/convex"
    algorithms = (GDSEC,)
    problem_class = "convex"
    statement = (
        "(1/T) Σ_{k<T} (f(θ^k) − f*) ≤ ‖θ⁰ − θ*‖²/(2αT) if 1/(2L) − α ≥ 2Lα²ξ²/(1 − 2ξ)², "
        "ξ = max_i ξ_i < 1/2, with error correction"
    )
    provenance = "derived here"
    citation = "derived in docs/theory.md §2 for the rule of [GDSEC] (docs/algorithms.md §3)"

    def constants(self, algorithm, problem, theta0=None) -> dict:
        return _gdsec_constants(algorithm, problem)

    def conditions(self, constants: dict) -> list[Condition]:
        slack = constants["convex_slack"]
        return _gdsec_conditions(constants) + [
            Condition(
                "1/(2L) − α ≥ 2Lα²ξ²/(1 − 2ξ)²", bool(slack >= 0), f"difference = {slack:.6g}"
            )
        ]

    def evaluate(self, run, problem, constants):
        ref = q.Reference.of(problem)
        start = q.start_distance_sq_lower(run, ref)
        bound = _per_count(start / (2.0 * constants["alpha"]), _iterations(run))
        return bound, {"start_dist_sq": start, "radius_certified": ref.radius_certified}


# -- EF21, paper ----------------------------------------------------------------------------------
def _ef21_constants(algorithm: EF21, problem: Problem) -> dict:
    out = _common(algorithm, problem)
    compressor = algorithm.compressor
    d = problem.objective.dim
    contractive = compressor.guarantee == "contractive"
    out.update(
        compressor=compressor.describe(),
        init=algorithm.init,
        contractive=contractive,
        deterministic=not (compressor.randomized or compressor.in_expectation),
        delta=compressor.delta(d) if contractive else None,
    )
    if out["delta"] is not None:
        root = math.sqrt(1.0 - out["delta"])
        out["theta"] = 1.0 - root
        out["beta"] = (1.0 - out["delta"]) / (1.0 - root)
        ratio = out["beta"] / out["theta"]
        out["step_nonconvex"] = 1.0 / (out["L"] + out["L_tilde"] * math.sqrt(ratio))
        out["step_pl"] = 1.0 / (out["L"] + out["L_tilde"] * math.sqrt(2.0 * ratio))
        out["step_pl_mu"] = out["theta"] / (2.0 * out["mu"]) if out["mu"] > 0 else math.inf
    return out


def _ef21_compressor_conditions(constants: dict) -> list[Condition]:
    name = constants["compressor"]["name"]
    return [
        Condition(
            "δ-contractive compressor (‖C(x) − x‖² ≤ (1 − δ)‖x‖²)",
            bool(constants["contractive"]),
            f"{name}: {constants['compressor']['guarantee']}",
        ),
        Condition(
            "deterministic compressor (a randomized one gives a bound in expectation only)",
            bool(constants["deterministic"]),
            name,
        ),
    ]


def _ef21_step_conditions(constants: dict, steps: tuple[tuple[str, str], ...]) -> list[Condition]:
    """The compressor conditions, then ``α ≤ bound`` for each ``(constants key, formula)``
    (step conditions only exist for a δ-contractive compressor)."""
    out = _ef21_compressor_conditions(constants)
    if constants["delta"] is not None:
        out += [
            at_most(f"α ≤ {formula}", constants["alpha"], constants[key], ("α", formula))
            for key, formula in steps
        ]
    return out


class _EF21Bound:
    def constants(self, algorithm, problem, theta0=None) -> dict:
        return _ef21_constants(algorithm, problem)


def _theta(constants: dict) -> float:
    """``θ = 1 − √(1 − δ)``; a non-contractive compressor has none (the bound cannot be
    evaluated even when forced)."""
    if constants["delta"] is None:
        name = constants["compressor"]["name"]
        raise InputError("compressor", name, "a δ-contractive compressor")
    return constants["theta"]


class EF21Nonconvex(_EF21Bound, _MeanGradient):
    name = "ef21/nonconvex"
    algorithms = (EF21,)
    problem_class = "nonconvex"
    statement = (
        "(1/T) Σ_{t<T} ‖∇f(θ^t)‖² ≤ 2(f(θ⁰) − f_low)/(αT) + G⁰/(θT) for "
        "α ≤ 1/(L + L̃√(β/θ)), θ = 1 − √(1 − δ), β = (1 − δ)/(1 − √(1 − δ))"
    )
    provenance = "paper"
    citation = "[EF21] Theorem 1 (constants checked in docs/theory.md §3)"

    def conditions(self, constants: dict) -> list[Condition]:
        return _ef21_step_conditions(constants, (("step_nonconvex", "1/(L + L̃√(β/θ))"),))

    def evaluate(self, run, problem, constants):
        start = q.start_gap_upper(run, q.Reference.of(problem))
        g0 = float(q.column(run, "ef21_G")[0])
        numerator = 2.0 * start / constants["alpha"] + g0 / _theta(constants)
        return _per_count(numerator, _iterations(run)), {"start_gap": start, "G0": g0}


class EF21PL(_EF21Bound, Bound):
    name = "ef21/pl"
    algorithms = (EF21,)
    problem_class = "strongly convex"
    quantity = "ef21_lyapunov"
    quantity_formula = "f(θ^T) − f* + (α/θ) G^T  (measured with f_low and the trace's ef21_G)"
    statement = (
        "f(θ^T) − f* + (α/θ)G^T ≤ (1 − αμ)^T (f(θ⁰) − f* + (α/θ)G⁰) for "
        "α ≤ min(1/(L + L̃√(2β/θ)), θ/(2μ))"
    )
    provenance = "paper"
    citation = "[EF21] Theorem 2, PL case (μ-strongly convex ⇒ PL with μ; docs/theory.md §3)"

    def conditions(self, constants: dict) -> list[Condition]:
        steps = (("step_pl", "1/(L + L̃√(2β/θ))"), ("step_pl_mu", "θ/(2μ)"))
        return _ef21_step_conditions(constants, steps)

    def measure(self, run, problem, constants):
        weight = constants["alpha"] / _theta(constants)
        return q.gap_upper(run, q.Reference.of(problem)) + weight * q.column(run, "ef21_G")

    def evaluate(self, run, problem, constants):
        ref = q.Reference.of(problem)
        weight = constants["alpha"] / _theta(constants)
        g0 = float(q.column(run, "ef21_G")[0])
        start = q.start_gap_lower(run, ref) + weight * g0
        rate = 1.0 - constants["alpha"] * constants["mu"]
        return _geometric(rate, _iterations(run)) * start, {"start_lyapunov": start, "G0": g0}

    def floor(self, run, problem, constants):
        ref = q.Reference.of(problem)
        weight = constants["alpha"] / constants["theta"]
        return q.value_floor(run, ref) + weight * q.gradient_sq_floor(ref)


# -- error feedback (EF, LAGS, bidirectional top-k), derived here -----------------------------
#: Relative difference of the workers' Hessians (least squares) treated as round-off.
HESSIAN_MATCH = 1e-12


def gradient_dissimilarity(problem: Problem) -> tuple[float, str]:
    """``ζ² ≥ sup_θ (1/M)Σ_m‖∇f_m(θ) − ∇f(θ)‖²`` and how it was obtained (``inf``: none).

    One worker: 0. Logistic families: the regularizer is the same in every ``f_m`` and
    ``|∂ℓ/∂z| ≤ 1``, so ``‖∇f_m − ∇f‖``'s loss parts are bounded by ``R_m = (1/n_m)Σ_{i∈S_m}‖a_i‖``
    and ``(1/M)Σ_m‖v_m − v̄‖² ≤ (1/M)Σ_m R_m²``. Least squares: ``∇f_m(θ) − ∇f(θ) =
    (H_m − H)θ − (r_m − r̄)`` is bounded iff every ``H_m = H``, and is then the constant
    ``∇f_m(0) − ∇f(0)``.
    """
    objective = problem.objective
    shards = objective.shards
    workers = objective.n_workers
    if workers == 1:
        return 0.0, "one worker: ∇f_1 = ∇f"
    if objective.family == "ridge":
        grams = []
        for m in range(workers):
            rows = shards.worker_rows(m)
            gram = rows.T @ rows
            grams.append(np.asarray(gram.toarray() if hasattr(gram, "toarray") else gram)
                         / rows.shape[0])
        mean = np.mean(grams, axis=0)
        spread = max(float(np.linalg.norm(g - mean)) for g in grams)
        if spread > HESSIAN_MATCH * float(np.linalg.norm(mean)):
            return math.inf, (f"the workers' Hessians differ (max ‖H_m − H‖_F = {spread:.3g}): "
                              "∇f_m − ∇f grows with ‖θ‖")
        gradients = objective.worker_gradients(np.zeros(objective.dim))
        deviation = gradients - gradients.mean(axis=0)
        return float(np.mean(np.sum(deviation**2, axis=1))), (
            "equal worker Hessians: ∇f_m − ∇f is the constant ∇f_m(0) − ∇f(0)")
    radii = []
    for m in range(workers):
        rows = shards.worker_rows(m)
        squares = rows.multiply(rows).sum(axis=1) if hasattr(rows, "multiply") else (
            np.sum(rows**2, axis=1))
        radii.append(float(np.mean(np.sqrt(np.asarray(squares, dtype=np.float64)))))
    return float(np.mean(np.square(radii))), (
        "|∂ℓ/∂z| ≤ 1: (1/M)Σ_m ((1/n_m)Σ_{i∈S_m}‖a_i‖)²")


def _amplification(delta: float) -> tuple[float, float]:
    """``t = √(1 − δ)`` and ``t/(1 − t)`` (the error memory's gain, Lemma 7.2)."""
    root = math.sqrt(max(1.0 - delta, 0.0))
    return root, root / (1.0 - root)


def _feedback_constants(algorithm: Algorithm, problem: Problem, gain: float) -> dict:
    """``Q`` (``gain``), ``ζ²``, ``c = 1 − Lα − (LαQ)²`` and the floor term ``(LαQ)²ζ²``."""
    out = _common(algorithm, problem)
    zeta2, how = gradient_dissimilarity(problem)
    out.update(Q=gain, zeta_sq=zeta2, zeta_sq_source=how,
               stochastic=bool(algorithm.randomized))
    amplified = (out["L"] * out["alpha"] * gain) ** 2
    out["c"] = 1.0 - out["L"] * out["alpha"] - amplified
    finite = math.isfinite(zeta2) and math.isfinite(amplified)
    out["heterogeneity_term"] = amplified * zeta2 if finite else math.inf
    return out


def _feedback_conditions(constants: dict) -> list[Condition]:
    c = constants["c"]
    return [
        Condition("full gradients and a deterministic compressor",
                  not constants["stochastic"], f"stochastic = {constants['stochastic']}"),
        Condition("ζ² < ∞ (bounded gradient dissimilarity)",
                  bool(math.isfinite(constants["zeta_sq"])), constants["zeta_sq_source"]),
        Condition("c = 1 − Lα − (LαQ)² > 0", bool(c > 0), f"c = {c:.6g}, Q = {constants['Q']:.6g}"),
    ]


class _FeedbackNonconvex(_MeanGradient):
    """``(1/T)Σ_{k<T}‖∇f(θ^k)‖² ≤ [2(f(θ⁰) − f_low)/(αT) + (LαQ)²ζ²]/c`` (docs/theory.md §7)."""

    problem_class = "nonconvex"
    provenance = "derived here"

    def conditions(self, constants: dict) -> list[Condition]:
        return _feedback_conditions(constants)

    def evaluate(self, run, problem, constants):
        if not math.isfinite(constants["zeta_sq"]):
            raise NotEvaluable(f"ζ² is infinite: {constants['zeta_sq_source']}")
        if constants["c"] <= 0:
            raise NotEvaluable(f"c = 1 − Lα − (LαQ)² = {constants['c']:.6g} ≤ 0: the formula "
                               "is not a positive bound")
        start = q.start_gap_upper(run, q.Reference.of(problem))
        optimization = _per_count(2.0 * start / constants["alpha"], _iterations(run))
        return (optimization + constants["heterogeneity_term"]) / constants["c"], {
            "start_gap": start}


class EFNonconvex(_FeedbackNonconvex):
    name = "ef/nonconvex"
    algorithms = (ErrorFeedback, LAGS)
    statement = (
        "(1/T) Σ_{k<T} ‖∇f(θ^k)‖² ≤ [2(f(θ⁰) − f_low)/(αT) + (LαQ)²ζ²]/c, Q = t/(1 − t), "
        "t = √(1 − δ), c = 1 − Lα − (LαQ)² > 0, ζ² ≥ sup_θ (1/M)Σ_m‖∇f_m(θ) − ∇f(θ)‖² "
        "(δ-contractive deterministic compressor, e.g. top-k δ = k/d, layer-wise top-k "
        "δ = min_l k_l/d_l; full gradients)"
    )
    citation = ("derived in docs/theory.md §7 (virtual-iterate technique of error-feedback "
                "analyses [SK20], [KRSJ19]; constants ours)")

    def constants(self, algorithm, problem, theta0=None) -> dict:
        compressor = algorithm.compressor
        d = problem.objective.dim
        if compressor.guarantee != "contractive":
            out = _feedback_constants(algorithm, problem, math.inf)
            out.update(delta=None, compressor=compressor.describe())
            return out
        delta = compressor.delta(d)
        root, gain = _amplification(delta)
        out = _feedback_constants(algorithm, problem, gain)
        out.update(delta=delta, t=root, compressor=compressor.describe())
        return out

    def conditions(self, constants: dict) -> list[Condition]:
        contractive = constants["delta"] is not None
        return [Condition("δ-contractive compressor", contractive,
                          constants["compressor"]["name"])] + super().conditions(constants)


class BidirectionalNonconvex(_FeedbackNonconvex):
    name = "bidir-topk/nonconvex"
    algorithms = (BidirectionalTopK,)
    statement = (
        "(1/T) Σ_{k<T} ‖∇f(θ^k)‖² ≤ [2(f(θ⁰) − f_low)/(αT) + (LαQ)²ζ²]/c, "
        "Q = (t_up + t_down/(1 − t_down))/(1 − t_up), t = √(1 − k/d) per link, "
        "c = 1 − Lα − (LαQ)² > 0, ζ² ≥ sup_θ (1/M)Σ_m‖∇f_m(θ) − ∇f(θ)‖²"
    )
    citation = ("derived in docs/theory.md §7 (virtual iterate θ − ē − δ with both memories; "
                "the rule of [BIDIR]; constants ours)")

    def constants(self, algorithm, problem, theta0=None) -> dict:
        d = problem.objective.dim
        up, down = algorithm.up.delta(d), algorithm.down.delta(d)
        t_up, _ = _amplification(up)
        t_down, gain_down = _amplification(down)
        out = _feedback_constants(algorithm, problem, (t_up + gain_down) / (1.0 - t_up))
        out.update(delta_up=up, delta_down=down, t_up=t_up, t_down=t_down)
        return out
# -- EF21-BC, derived here ------------------------------------------------------------------------
def _contraction(delta: float) -> tuple[float, float]:
    """``(θ, β) = (1 − √(1 − δ), (1 − δ)/(1 − √(1 − δ)))``: ``‖C(u + v) − (u + v)‖² ≤
    (1 − θ)‖u‖² + β‖v‖²`` for a δ-contractive ``C``."""
    root = math.sqrt(1.0 - delta)
    return 1.0 - root, (1.0 - delta) / (1.0 - root)


def _link(compressor: Compressor, d: int) -> dict[str, Any]:
    contractive = compressor.guarantee == "contractive"
    return {
        "compressor": compressor.describe(),
        "contractive": contractive,
        "deterministic": not (compressor.randomized or compressor.in_expectation),
        "delta": compressor.delta(d) if contractive else None,
    }


def _ef21bc_lyapunov(out: dict, m: int) -> tuple[float, float, float]:
    """``(K, w_G, w_P)`` of docs/theory.md §10 for ``m = 1`` (nonconvex) or ``m = 2`` (PL):
    ``c₂ = r(1 + √(m c₁))²``, ``K = m(√c₁ + √c₂)²``, and at ``a = √(c₁/c₂)``, ``q = 1/√(m c₁)``
    ``w_G = ((1 + 1/a) + m(1 + a) r (1 + q))/θ_w``, ``w_P = (1 + a)/θ_s``. An identity link
    (``c₁ = 0``: ``G ≡ 0``; ``r = 0``: ``P ≡ 0``) takes the limit ``a → 0`` or ``a → ∞``."""
    c1, r = out["c1"], out["r"]
    c2 = r * (1.0 + math.sqrt(m * c1)) ** 2
    k = m * (math.sqrt(c1) + math.sqrt(c2)) ** 2
    if c1 == 0.0 or c2 == 0.0:
        weight_g = 1.0 / out["theta_w"] if c1 > 0 else 0.0
        weight_p = 1.0 / out["theta_s"] if c2 > 0 else 0.0
        return k, weight_g, weight_p
    a, q = math.sqrt(c1 / c2), 1.0 / math.sqrt(m * c1)
    weight_g = ((1.0 + 1.0 / a) + m * (1.0 + a) * r * (1.0 + q)) / out["theta_w"]
    return k, weight_g, (1.0 + a) / out["theta_s"]


def _ef21bc_constants(algorithm: EF21BC, problem: Problem) -> dict:
    out = _common(algorithm, problem)
    d = problem.objective.dim
    out.update(init=algorithm.init, batch_size=algorithm.batch_size,
               uplink=_link(algorithm.compressor, d), downlink=_link(algorithm.down, d))
    delta_w, delta_s = out["uplink"]["delta"], out["downlink"]["delta"]
    if delta_w is None or delta_s is None:
        return out
    out["theta_w"], out["beta_w"] = _contraction(delta_w)
    out["theta_s"], out["beta_s"] = _contraction(delta_s)
    out["omega_w"] = (1.0 + math.sqrt(1.0 - delta_w)) ** 2
    out["c1"] = out["beta_w"] / out["theta_w"]
    out["r"] = out["omega_w"] * out["beta_s"] / out["theta_s"]
    out["K_nonconvex"], out["weight_G"], out["weight_P"] = _ef21bc_lyapunov(out, 1)
    out["K_pl"], out["weight_G_pl"], out["weight_P_pl"] = _ef21bc_lyapunov(out, 2)
    out["step_nonconvex"] = 1.0 / (out["L"] + out["L_tilde"] * math.sqrt(out["K_nonconvex"]))
    out["step_pl"] = 1.0 / (out["L"] + out["L_tilde"] * math.sqrt(out["K_pl"]))
    mu = out["mu"]
    out["step_pl_up"] = out["theta_w"] / (2.0 * mu) if mu > 0 else math.inf
    out["step_pl_down"] = out["theta_s"] / (2.0 * mu) if mu > 0 else math.inf
    return out


def _ef21bc_conditions(constants: dict, steps: tuple[tuple[str, str], ...]) -> list[Condition]:
    """Both links δ-contractive and deterministic, full gradients, then ``α ≤ bound`` for each
    ``(constants key, formula)`` (only with both δ's known)."""
    out = []
    for link, symbol in (("uplink", "C_w"), ("downlink", "C_s")):
        facts = constants[link]
        name = facts["compressor"]["name"]
        out += [
            Condition(f"{link} {symbol} δ-contractive (‖C(x) − x‖² ≤ (1 − δ)‖x‖²)",
                      bool(facts["contractive"]), f"{name}: {facts['compressor']['guarantee']}"),
            Condition(f"{link} {symbol} deterministic (a randomized one gives a bound in "
                      "expectation only)", bool(facts["deterministic"]), name),
        ]
    out.append(Condition("full local gradients (no minibatch)", constants["batch_size"] is None,
                         f"batch_size = {constants['batch_size']}"))
    if "c1" in constants:
        out += [at_most(f"α ≤ {formula}", constants["alpha"], constants[key], ("α", formula))
                for key, formula in steps]
    return out


def _ef21bc_weights(constants: dict, keys: tuple[str, str]) -> tuple[float, float]:
    """The weights of ``G`` and ``P``; both δ's are needed even when forced."""
    if "c1" not in constants:
        raise InputError("compressor", f"{constants['uplink']['compressor']['name']} / "
                         f"{constants['downlink']['compressor']['name']}",
                         "δ-contractive compressors on both links")
    return constants[keys[0]], constants[keys[1]]


def _paper_downlink_error(run: Run) -> np.ndarray:
    """``P^t = ‖b^t − g^t‖²`` per row, ``nan`` at the last row.

    The server's ``b`` and ``g`` after round ``t + 1`` are the paper's ``b^t``, ``g^t`` (formed
    at ``θ^t``), so ``P^t`` is the column ``downlink_error_sq`` one row later.
    """
    errors, iterations = q.column(run, "downlink_error_sq"), _iterations(run)
    out = np.full(errors.shape, np.nan)
    following = iterations[1:] == iterations[:-1] + 1
    out[:-1] = np.where(following, errors[1:], np.nan)
    return out


class _EF21BCBound:
    algorithms = (EF21BC,)
    provenance = "derived here"

    def constants(self, algorithm, problem, theta0=None) -> dict:
        return _ef21bc_constants(algorithm, problem)


class EF21BCNonconvex(_EF21BCBound, _MeanGradient):
    name = "ef21-bc/nonconvex"
    problem_class = "nonconvex"
    statement = (
        "(1/T) Σ_{t<T} ‖∇f(θ^t)‖² ≤ (2(f(θ⁰) − f_low)/α + w_G G⁰ + w_P P⁰)/T for "
        "α ≤ 1/(L + L̃√K), K = (√c₁ + √c₂)², c₁ = β_w/θ_w, c₂ = ω_w(β_s/θ_s)(1 + √c₁)² "
        "(θ, β of δ_w and δ_s as for EF21, ω_w = (1 + √(1 − δ_w))²)"
    )
    citation = ("derived in docs/theory.md §10 for EF21-BC [EF21-BW] (§3, Alg. 5) by the technique "
                "of [EF21] Thm 1, which it reduces to when C_s = I")

    def conditions(self, constants: dict) -> list[Condition]:
        return _ef21bc_conditions(constants, (("step_nonconvex", "1/(L + L̃√K)"),))

    def evaluate(self, run, problem, constants):
        weight_g, weight_p = _ef21bc_weights(constants, ("weight_G", "weight_P"))
        start = q.start_gap_upper(run, q.Reference.of(problem))
        g0 = float(q.column(run, "ef21_G")[0])
        p0 = float(_paper_downlink_error(run)[0])
        numerator = 2.0 * start / constants["alpha"] + weight_g * g0 + weight_p * p0
        return _per_count(numerator, _iterations(run)), {"start_gap": start, "G0": g0, "P0": p0}


class EF21BCPL(_EF21BCBound, Bound):
    name = "ef21-bc/pl"
    problem_class = "strongly convex"
    quantity = "ef21bc_lyapunov"
    quantity_formula = ("f(θ^T) − f* + α(w_G G^T + w_P P^T)  (f_low, the trace's ef21_G and "
                        "downlink_error_sq one row later; the last row is not checked)")
    statement = (
        "f(θ^T) − f* + α(w_G G^T + w_P P^T) ≤ (1 − αμ)^T (f(θ⁰) − f* + α(w_G G⁰ + w_P P⁰)) for "
        "α ≤ min(1/(L + L̃√K), θ_w/(2μ), θ_s/(2μ)), K = 2(√c₁ + √c₂)², "
        "c₂ = ω_w(β_s/θ_s)(1 + √(2c₁))²"
    )
    citation = ("derived in docs/theory.md §10 for EF21-BC [EF21-BW] (§3, Alg. 5) by the technique "
                "of [EF21] Thm 2 (PL case), which it reduces to when C_s = I")

    def conditions(self, constants: dict) -> list[Condition]:
        steps = (("step_pl", "1/(L + L̃√K)"), ("step_pl_up", "θ_w/(2μ)"),
                 ("step_pl_down", "θ_s/(2μ)"))
        return _ef21bc_conditions(constants, steps)

    def measure(self, run, problem, constants):
        weight_g, weight_p = _ef21bc_weights(constants, ("weight_G_pl", "weight_P_pl"))
        errors = weight_g * q.column(run, "ef21_G") + weight_p * _paper_downlink_error(run)
        return q.gap_upper(run, q.Reference.of(problem)) + constants["alpha"] * errors

    def evaluate(self, run, problem, constants):
        weight_g, weight_p = _ef21bc_weights(constants, ("weight_G_pl", "weight_P_pl"))
        paper_p = _paper_downlink_error(run)
        g0, p0 = float(q.column(run, "ef21_G")[0]), float(paper_p[0])
        start = (q.start_gap_lower(run, q.Reference.of(problem))
                 + constants["alpha"] * (weight_g * g0 + weight_p * p0))
        rate = 1.0 - constants["alpha"] * constants["mu"]
        bound = _geometric(rate, _iterations(run)) * start
        bound[np.isnan(paper_p)] = np.nan
        return bound, {"start_lyapunov": start, "G0": g0, "P0": p0}

    def floor(self, run, problem, constants):
        ref = q.Reference.of(problem)
        weights = constants.get("weight_G_pl", 0.0) + constants.get("weight_P_pl", 0.0)
        return q.value_floor(run, ref) + constants["alpha"] * weights * q.gradient_sq_floor(ref)


#: The closed-form bounds, by name.
CLOSED_FORM: dict[str, Bound] = {
    bound.name: bound
    for bound in (
        GDStronglyConvex(),
        GDConvex(),
        GDNonconvex(),
        GDSECNonconvex(),
        GDSECConvex(),
        EF21Nonconvex(),
        EF21PL(),
        EFNonconvex(),
        BidirectionalNonconvex(),
        EF21BCNonconvex(),
        EF21BCPL(),
    )
}
