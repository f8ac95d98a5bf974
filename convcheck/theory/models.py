"""The synchronous algorithms of THEORY.md §3 as linear models for the certificates (§5.2).

Every model is written in deviations from the algorithm's fixed point and in **θ-units**:
gradients are multiplied by the step ``α`` so that all entries are displacements,

* ``x = θ^k − θ*``;
* ``u_m = α(∇f_m(·) − ∇f_m(θ*))`` at the point where worker ``m`` evaluates its gradient;
* memories of gradients (GD-SEC's ``h_m``, EF21's ``g_m``) as ``α(· − ∇f_m(θ*))``, memories of
  displacements (EF's and bidirectional top-k's errors) as they are, GD-SEC's error ``α e_m``;
* ``r_m`` (and ``q``) the compressor errors of the round, inputs of the model.

Constraints (``⊗ I_d``, so valid in every dimension):

* sector, per worker and for the average, ``⟨u − αμ x, αL x − u⟩ ≥ 0`` (f_m ∈ S(μ_m, L_m),
  f ∈ S(μ, L));
* contractive compressor with constant δ on input ``v``: ``‖r‖² ≤ (1 − δ)‖v‖²``, and for a
  sparsifier ``⟨r, v − r⟩ = 0``;
* GD-SEC threshold error: ``‖r_m‖² ≤ ξ²‖θ^k − θ^{k−1}‖²`` (from ``|r_{m,i}| ≤ ατ_i =
  ξ_i|θ^k_i − θ^{k−1}_i|``, ``ξ = max_i ξ_i``) and ``⟨r_m, Δ_m − r_m⟩ = 0``;
* lifting (EF21; optional for GD-SEC): the last gradients ``v_m = u_m(θ^k)`` are kept in the
  state and the sector constraints are added between the new point, the previous point and
  ``θ*`` (co-coercivity of every pair).

Heterogeneous workers: GD, GD-SEC and EF21 have a fixed point for any data split (``h_m =
∇f_m(θ*)``, ``g_m = ∇f_m(θ*)``), so the deviations are linear. Classic EF and bidirectional
top-k do not: their compressors act on ``α∇f_m(θ) + e_m``, which contains the constant
``a_m = α∇f_m(θ*)`` (``Σ_m a_m = 0``). With ``heterogeneous=True`` the ``a_m`` are kept as
constant states (``a_M = −Σ_{m<M} a_m``); a certificate must then hold for every such ``a``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.errors import InputError, check_int, check_real
from convcheck.theory.lmi import (
    LinearModel,
    Mode,
    QuadraticConstraint,
    Signal,
    norm_bound,
    orthogonal,
    sector,
    total,
)


@dataclass(frozen=True)
class ModelConstants:
    """``L``, ``μ`` of ``f`` and ``L_m``, ``μ_m`` of each ``f_m`` (validated).

    Build with :meth:`make` (explicit numbers) or :meth:`from_constants` (a problem's
    :class:`~convcheck.objectives.Constants`).
    """

    L: float
    mu: float
    L_workers: np.ndarray
    mu_workers: np.ndarray

    @property
    def workers(self) -> int:
        return int(self.L_workers.shape[0])

    @classmethod
    def make(
        cls,
        L: float,
        mu: float,
        workers: int = 1,
        L_workers: Any = None,
        mu_workers: Any = None,
    ) -> ModelConstants:
        """Validate constants; per-worker ones default to the global ``L`` and ``μ``.

        Raises
        ------
        InputError
            ``L ≤ 0``, ``μ < 0``, ``μ > L``, a per-worker list of the wrong length, a negative
            entry or ``μ_m > L_m``; the message names the field.
        """
        L = check_real("L", L, 0.0, low_open=True)
        mu = check_real("mu", mu, 0.0)
        if mu > L:
            raise InputError("mu", mu, f"a real number in [0, L={L:g}]")
        workers = check_int("workers", workers, 1)
        L_workers = _per_worker("L_workers", L_workers, L, workers, positive=True)
        mu_workers = _per_worker("mu_workers", mu_workers, mu, workers, positive=False)
        bad = np.flatnonzero(mu_workers > L_workers)
        if bad.size:
            m = int(bad[0])
            raise InputError(
                "mu_workers",
                mu_workers.tolist(),
                f"μ_m <= L_m for every m (m={m}: L_m={L_workers[m]:g})",
            )
        return cls(L, mu, L_workers, mu_workers)

    @classmethod
    def from_constants(cls, constants: Any) -> ModelConstants:
        """From a problem's :class:`~convcheck.objectives.Constants` (needs ``mu_workers``)."""
        mu_workers = getattr(constants, "mu_workers", None)
        if mu_workers is None:
            raise InputError("constants", "without mu_workers", "Constants with mu_workers")
        return cls.make(
            constants.L,
            constants.mu,
            len(constants.L_workers),
            constants.L_workers,
            mu_workers,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "L": self.L,
            "mu": self.mu,
            "workers": self.workers,
            "L_workers": self.L_workers.tolist(),
            "mu_workers": self.mu_workers.tolist(),
        }


def _per_worker(
    field: str, values: Any, default: float, workers: int, positive: bool
) -> np.ndarray:
    if values is None:
        return np.full(workers, default)
    allowed = f"{workers} real numbers {'> 0' if positive else '>= 0'} (one per worker)"
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(field, values, allowed) from None
    ok = array.shape[0] == workers and np.all(np.isfinite(array))
    ok = ok and (np.all(array > 0) if positive else np.all(array >= 0))
    if not ok:
        raise InputError(field, array.tolist(), allowed)
    return array


# -- building blocks ----------------------------------------------------------------------------
def _v(name: str) -> Signal:
    return Signal.var(name)


def _sectors(
    u: list[Signal], x: Signal, alpha: float, c: ModelConstants, label: str
) -> list[QuadraticConstraint]:
    """Sector constraints of every ``f_m`` on ``(u_m, x)`` and of ``f`` on the averages."""
    out = [
        sector(u[m], x, alpha * c.mu_workers[m], alpha * c.L_workers[m], f"{label} f_{m}")
        for m in range(c.workers)
    ]
    out.append(sector(total(u) / c.workers, x, alpha * c.mu, alpha * c.L, f"{label} f"))
    return out


def _compressor(r: Signal, v: Signal, delta: float, sparsifier: bool, label: str) -> list:
    """``‖r‖² ≤ (1 − δ)‖v‖²`` and, for a sparsifier, ``⟨r, v − r⟩ = 0``."""
    out = [norm_bound(r, v, 1.0 - delta, f"contraction {label}")]
    if sparsifier:
        out.append(orthogonal(r, v, f"disjoint supports {label}"))
    return out


def _heterogeneity(workers: int, heterogeneous: bool) -> tuple[list[str], list[Signal]]:
    """Constant states ``a_m = α∇f_m(θ*)`` with ``Σ_m a_m = 0`` (or all zero)."""
    if not heterogeneous or workers == 1:
        return [], [Signal() for _ in range(workers)]
    names = [f"a_{m}" for m in range(workers - 1)]
    a = [_v(name) for name in names]
    return names, a + [-total(a)]


# -- the models ---------------------------------------------------------------------------------
def gd_model(c: ModelConstants, *, alpha: float) -> LinearModel:
    """GD: ``x⁺ = x − (1/M) Σ_m u_m``, ``u_m`` at ``θ^k``."""
    u = [_v(f"u_{m}") for m in range(c.workers)]
    x = _v("x")
    mode = Mode("gd", {"x": x - total(u) / c.workers}, tuple(_sectors(u, x, alpha, c, "sector")))
    return LinearModel(
        "gd",
        {"alpha": alpha, **c.as_dict()},
        ("x",),
        tuple(f"u_{m}" for m in range(c.workers)),
        (mode,),
        sensitivity={"x": 1.0},
    )


def gdsec_model(
    c: ModelConstants,
    *,
    alpha: float,
    beta: float = 1.0,
    xi: float = 0.0,
    error_correction: bool = True,
    lifting: bool = False,
) -> LinearModel:
    """GD-SEC (THEORY.md §3), ``ξ = max_i ξ_i``.

    State ``(x, x_prev, h_m, e_m [, v_m])``; inputs ``u_m`` and the threshold errors ``r_m``:
    ``Δ_m = u_m − h_m + e_m``, sent ``Δ_m − r_m``, ``x⁺ = x − (1/M)Σ_m(h_m + Δ_m − r_m)``,
    ``h_m⁺ = h_m + β(Δ_m − r_m)``, ``e_m⁺ = r_m`` (error correction; else ``e_m = 0``).
    """
    M = c.workers
    x, p = _v("x"), _v("x_prev")
    u = [_v(f"u_{m}") for m in range(M)]
    r = [_v(f"r_{m}") for m in range(M)]
    h = [_v(f"h_{m}") for m in range(M)]
    e = [_v(f"e_{m}") if error_correction else Signal() for m in range(M)]
    delta = [u[m] - h[m] + e[m] for m in range(M)]
    sent = [delta[m] - r[m] for m in range(M)]
    update = {"x": x - total(h[m] + sent[m] for m in range(M)) / M, "x_prev": x}
    states = ["x", "x_prev"] + [f"h_{m}" for m in range(M)]
    sensitivity = {"x": 1.0, "x_prev": 1.0}
    constraints = _sectors(u, x, alpha, c, "sector")
    for m in range(M):
        update[f"h_{m}"] = h[m] + beta * sent[m]
        sensitivity[f"h_{m}"] = alpha * c.L_workers[m]
        constraints.append(norm_bound(r[m], x - p, xi**2, f"threshold error {m}"))
        constraints.append(orthogonal(r[m], delta[m], f"disjoint supports {m}"))
    if error_correction:
        states += [f"e_{m}" for m in range(M)]
        update.update({f"e_{m}": r[m] for m in range(M)})
        sensitivity.update({f"e_{m}": 0.0 for m in range(M)})
    if lifting:
        v = [_v(f"v_{m}") for m in range(M)]
        states += [f"v_{m}" for m in range(M)]
        update.update({f"v_{m}": u[m] for m in range(M)})
        sensitivity.update({f"v_{m}": alpha * c.L_workers[m] for m in range(M)})
        constraints += _sectors([u[m] - v[m] for m in range(M)], x - p, alpha, c, "pair (k, k−1)")
        constraints += _sectors(v, p, alpha, c, "sector at k−1")
    params = {
        "alpha": alpha,
        "beta": beta,
        "xi": xi,
        "error_correction": error_correction,
        "lifting": lifting,
        **c.as_dict(),
    }
    inputs = tuple(f"u_{m}" for m in range(M)) + tuple(f"r_{m}" for m in range(M))
    mode = Mode("gd-sec", update, tuple(constraints))
    return LinearModel("gd-sec", params, tuple(states), inputs, (mode,), sensitivity=sensitivity)


def ef_model(
    c: ModelConstants,
    *,
    alpha: float,
    delta: float,
    sparsifier: bool = True,
    heterogeneous: bool | None = None,
) -> LinearModel:
    """Classic EF: ``p_m = α∇f_m(θ) + e_m = u_m + a_m + e_m``, ``e_m⁺ = r_m``,
    ``x⁺ = x − (1/M)Σ_m (p_m − r_m)``; ``heterogeneous`` (default: ``M > 1``) keeps the ``a_m``."""
    M = c.workers
    heterogeneous = M > 1 if heterogeneous is None else heterogeneous
    x = _v("x")
    u = [_v(f"u_{m}") for m in range(M)]
    r = [_v(f"r_{m}") for m in range(M)]
    e = [_v(f"e_{m}") for m in range(M)]
    a_names, a = _heterogeneity(M, heterogeneous)
    sent = [u[m] + a[m] + e[m] - r[m] for m in range(M)]
    update = {"x": x - total(sent) / M}
    update.update({f"e_{m}": r[m] for m in range(M)})
    update.update({name: _v(name) for name in a_names})
    constraints = _sectors(u, x, alpha, c, "sector")
    for m in range(M):
        constraints += _compressor(r[m], u[m] + a[m] + e[m], delta, sparsifier, str(m))
    sensitivity = {"x": 1.0, **{f"e_{m}": 0.0 for m in range(M)}}
    sensitivity.update({name: alpha * c.L_workers[int(name[2:])] for name in a_names})
    params = {
        "alpha": alpha,
        "delta": delta,
        "sparsifier": sparsifier,
        "heterogeneous": heterogeneous,
        **c.as_dict(),
    }
    states = ("x",) + tuple(f"e_{m}" for m in range(M)) + tuple(a_names)
    inputs = tuple(f"u_{m}" for m in range(M)) + tuple(f"r_{m}" for m in range(M))
    mode = Mode("ef", update, tuple(constraints))
    return LinearModel("ef", params, states, inputs, (mode,), sensitivity=sensitivity)


def compressed_gd_model(
    c: ModelConstants,
    *,
    alpha: float,
    delta: float,
    sparsifier: bool = True,
    heterogeneous: bool | None = None,
) -> LinearModel:
    """Compressed GD without memory: ``x⁺ = x − (1/M)Σ_m C(α∇f_m(θ)) = x − (1/M)Σ_m(p_m − r_m)``,
    ``p_m = u_m + a_m``. With one worker and ``sparsifier=False`` it is GD with a relative
    gradient error ``‖r‖ ≤ √(1 − δ)‖u‖`` (the inexact gradient method of PEPit)."""
    M = c.workers
    heterogeneous = M > 1 if heterogeneous is None else heterogeneous
    x = _v("x")
    u = [_v(f"u_{m}") for m in range(M)]
    r = [_v(f"r_{m}") for m in range(M)]
    a_names, a = _heterogeneity(M, heterogeneous)
    update = {"x": x - total(u[m] + a[m] - r[m] for m in range(M)) / M}
    update.update({name: _v(name) for name in a_names})
    constraints = _sectors(u, x, alpha, c, "sector")
    for m in range(M):
        constraints += _compressor(r[m], u[m] + a[m], delta, sparsifier, str(m))
    sensitivity = {"x": 1.0}
    sensitivity.update({name: alpha * c.L_workers[int(name[2:])] for name in a_names})
    params = {
        "alpha": alpha,
        "delta": delta,
        "sparsifier": sparsifier,
        "heterogeneous": heterogeneous,
        **c.as_dict(),
    }
    inputs = tuple(f"u_{m}" for m in range(M)) + tuple(f"r_{m}" for m in range(M))
    mode = Mode("compressed-gd", update, tuple(constraints))
    states = ("x",) + tuple(a_names)
    return LinearModel("compressed-gd", params, states, inputs, (mode,), sensitivity=sensitivity)


def ef21_model(
    c: ModelConstants,
    *,
    alpha: float,
    delta: float,
    sparsifier: bool = True,
    lifting: bool = True,
) -> LinearModel:
    """EF21: ``x⁺ = x − (1/M)Σ_m g_m``; ``u_m`` at ``θ^{k+1}``; ``g_m⁺ = u_m − r_m`` with
    ``r_m`` the error of compressing ``u_m − g_m``. Lifting keeps ``v_m = u_m(θ^k)``."""
    M = c.workers
    x = _v("x")
    g = [_v(f"g_{m}") for m in range(M)]
    u = [_v(f"u_{m}") for m in range(M)]
    r = [_v(f"r_{m}") for m in range(M)]
    x_next = x - total(g) / M
    update = {"x": x_next}
    update.update({f"g_{m}": u[m] - r[m] for m in range(M)})
    constraints = _sectors(u, x_next, alpha, c, "sector at k+1")
    for m in range(M):
        constraints += _compressor(r[m], u[m] - g[m], delta, sparsifier, str(m))
    states = ["x"] + [f"g_{m}" for m in range(M)]
    sensitivity = {"x": 1.0, **{f"g_{m}": alpha * c.L_workers[m] for m in range(M)}}
    if lifting:
        v = [_v(f"v_{m}") for m in range(M)]
        states += [f"v_{m}" for m in range(M)]
        update.update({f"v_{m}": u[m] for m in range(M)})
        sensitivity.update({f"v_{m}": alpha * c.L_workers[m] for m in range(M)})
        constraints += _sectors(
            [u[m] - v[m] for m in range(M)], x_next - x, alpha, c, "pair (k+1, k)"
        )
        constraints += _sectors(v, x, alpha, c, "sector at k")
    params = {"alpha": alpha, "delta": delta, "sparsifier": sparsifier, "lifting": lifting}
    params.update(c.as_dict())
    inputs = tuple(f"u_{m}" for m in range(M)) + tuple(f"r_{m}" for m in range(M))
    mode = Mode("ef21", update, tuple(constraints))
    return LinearModel("ef21", params, tuple(states), inputs, (mode,), sensitivity=sensitivity)


def bidirectional_model(
    c: ModelConstants,
    *,
    alpha: float,
    delta_up: float,
    delta_down: float,
    heterogeneous: bool | None = None,
) -> LinearModel:
    """Bidirectional top-k: ``A_m = e_m + u_m + a_m``, ``e_m⁺ = r_m``,
    ``W = D + (1/M)Σ(A_m − r_m)``, ``D⁺ = q``, ``x⁺ = x − (W − q)`` (top-k is a sparsifier:
    disjoint-support equalities)."""
    M = c.workers
    heterogeneous = M > 1 if heterogeneous is None else heterogeneous
    x, server = _v("x"), _v("D")
    u = [_v(f"u_{m}") for m in range(M)]
    r = [_v(f"r_{m}") for m in range(M)]
    e = [_v(f"e_{m}") for m in range(M)]
    q = _v("q")
    a_names, a = _heterogeneity(M, heterogeneous)
    accumulated = [e[m] + u[m] + a[m] for m in range(M)]
    aggregate = server + total(accumulated[m] - r[m] for m in range(M)) / M
    update = {"x": x - (aggregate - q), "D": q}
    update.update({f"e_{m}": r[m] for m in range(M)})
    update.update({name: _v(name) for name in a_names})
    constraints = _sectors(u, x, alpha, c, "sector")
    for m in range(M):
        constraints += _compressor(r[m], accumulated[m], delta_up, True, f"up {m}")
    constraints += _compressor(q, aggregate, delta_down, True, "down")
    sensitivity = {"x": 1.0, "D": 0.0, **{f"e_{m}": 0.0 for m in range(M)}}
    sensitivity.update({name: alpha * c.L_workers[int(name[2:])] for name in a_names})
    params = {
        "alpha": alpha,
        "delta_up": delta_up,
        "delta_down": delta_down,
        "heterogeneous": heterogeneous,
        **c.as_dict(),
    }
    states = ("x",) + tuple(f"e_{m}" for m in range(M)) + ("D",) + tuple(a_names)
    inputs = tuple(f"u_{m}" for m in range(M)) + tuple(f"r_{m}" for m in range(M)) + ("q",)
    mode = Mode("bidir-topk", update, tuple(constraints))
    return LinearModel("bidir-topk", params, states, inputs, (mode,), sensitivity=sensitivity)


def delayed_gd_model(
    c: ModelConstants, *, alpha: float, tau: int, varying: bool = False
) -> LinearModel:
    """GD with delayed gradients ``θ^{k+1} = θ^k − α(1/M)Σ_m ∇f_m(θ^{k−d})``.

    State ``(x, x_1, …, x_τ)`` (``x_j = θ^{k−j} − θ*``). ``varying=False``: the delay is always
    ``d = τ`` (one mode); ``varying=True``: any delay sequence with ``d_k ∈ {0, …, τ}`` (one mode
    per delay value, one common ``P``).
    """
    M = c.workers
    names = ["x"] + [f"x_{j}" for j in range(1, tau + 1)]
    past = [_v(name) for name in names]
    u = [_v(f"u_{m}") for m in range(M)]
    shift = {names[j]: past[j - 1] for j in range(1, tau + 1)}
    modes = []
    for d in range(tau + 1) if varying else [tau]:
        update = {"x": past[0] - total(u) / M, **shift}
        constraints = _sectors(u, past[d], alpha, c, f"sector at k−{d}")
        modes.append(Mode(f"delay {d}", update, tuple(constraints)))
    params = {"alpha": alpha, "tau": tau, "varying": varying, **c.as_dict()}
    return LinearModel(
        "gd-delay",
        params,
        tuple(names),
        tuple(f"u_{m}" for m in range(M)),
        tuple(modes),
        sensitivity={name: 1.0 for name in names},
    )


@dataclass(frozen=True)
class ModelSpec:
    """A certifiable algorithm: its builder and its parameters with their validators."""

    build: Callable[..., LinearModel]
    required: tuple[str, ...]
    optional: dict[str, Any]
    description: str


def _step(value: Any) -> float:
    return check_real("alpha", value, 0.0, low_open=True)


def _fraction(field: str) -> Callable[[Any], float]:
    return lambda value: check_real(field, value, 0.0, 1.0, low_open=True)


def _flag(field: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(field, value, "true or false")
        return bool(value)

    return check


def _optional_flag(field: str) -> Callable[[Any], bool | None]:
    return lambda value: None if value is None else _flag(field)(value)


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "alpha": _step,
    "beta": _fraction("beta"),
    "xi": lambda value: check_real("xi", value, 0.0),
    "delta": _fraction("delta"),
    "delta_up": _fraction("delta_up"),
    "delta_down": _fraction("delta_down"),
    "error_correction": _flag("error_correction"),
    "lifting": _flag("lifting"),
    "sparsifier": _flag("sparsifier"),
    "heterogeneous": _optional_flag("heterogeneous"),
    "tau": lambda value: check_int("tau", value, 0),
    "varying": _flag("varying"),
}

#: Algorithms with an LMI model: builder, required and optional parameters.
MODELS: dict[str, ModelSpec] = {
    "gd": ModelSpec(gd_model, ("alpha",), {}, "gradient descent"),
    "gd-sec": ModelSpec(
        gdsec_model,
        ("alpha",),
        {"beta": 1.0, "xi": 0.0, "error_correction": True, "lifting": False},
        "GD-SEC, threshold ξ = max_i ξ_i",
    ),
    "ef": ModelSpec(
        ef_model,
        ("alpha", "delta"),
        {"sparsifier": True, "heterogeneous": None},
        "classic error feedback with a δ-contractive compressor",
    ),
    "compressed-gd": ModelSpec(
        compressed_gd_model,
        ("alpha", "delta"),
        {"sparsifier": True, "heterogeneous": None},
        "compressed GD without error feedback (δ-contractive compressor)",
    ),
    "ef21": ModelSpec(
        ef21_model,
        ("alpha", "delta"),
        {"sparsifier": True, "lifting": True},
        "EF21 with a δ-contractive compressor",
    ),
    "bidir-topk": ModelSpec(
        bidirectional_model,
        ("alpha", "delta_up", "delta_down"),
        {"heterogeneous": None},
        "bidirectional top-k (δ_up = k_up/d, δ_down = k_down/d)",
    ),
    "gd-delay": ModelSpec(
        delayed_gd_model, ("alpha", "tau"), {"varying": False}, "GD with a gradient delay τ"
    ),
}


def build_model(name: str, constants: ModelConstants, **params: Any) -> LinearModel:
    """The LMI model of algorithm ``name`` with validated ``params``.

    Raises
    ------
    InputError
        Unknown algorithm, unknown or missing parameter, parameter out of range.
    """
    if name not in MODELS:
        raise InputError("algorithm", name, "one of " + ", ".join(repr(k) for k in MODELS))
    spec = MODELS[name]
    accepted = spec.required + tuple(spec.optional)
    for key in params:
        if key not in accepted:
            raise InputError(key, params[key], f"a parameter of {name}: {', '.join(accepted)}")
    for key in spec.required:
        if key not in params:
            raise InputError(key, None, f"a value (required by {name})")
    values = {**spec.optional, **params}
    checked = {key: VALIDATORS[key](value) for key, value in values.items()}
    return spec.build(constants, **checked)
