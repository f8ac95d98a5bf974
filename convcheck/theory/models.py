"""The synchronous algorithms as linear models for the certificates (docs/theory.md §4.2).

Every model is written in deviations from the algorithm's fixed point and in **θ-units**:
gradients are multiplied by the step ``α`` so that all entries are displacements,

* ``x = θ^k − θ*``;
* ``u_m = α(∇f_m(·) − ∇f_m(θ*))`` at the point where worker ``m`` evaluates its gradient, and
  (``"interpolation"`` form) ``F_m = α(f_m(·) − f_m(θ*) − ⟨∇f_m(θ*), · − θ*⟩)``;
* memories of gradients (GD-SEC's ``h_m``, EF21's ``g_m``) as ``α(· − ∇f_m(θ*))``, memories of
  displacements (EF's and bidirectional top-k's errors) as they are, GD-SEC's error ``α e_m``;
* ``r_m`` (and ``q``) the compressor errors of the round, inputs of the model.

Each model is one function of a :class:`~convcheck.theory.rounds.View` returning the
:class:`~convcheck.theory.rounds.Round` (or, for the delayed model, one round per mode): the
update, the oracle calls and the compressor errors. :mod:`convcheck.theory.rounds` turns them
into constraints (sector or interpolation form), history windows and the symmetry-reduced blocks.

Heterogeneous workers: GD, GD-SEC and EF21 have a fixed point for any data split (``h_m =
∇f_m(θ*)``, ``g_m = ∇f_m(θ*)``), so the deviations are linear. Classic EF, compressed GD and
bidirectional top-k do not: their compressors act on ``α∇f_m(θ) + e_m``, which contains the
constant ``a_m = α∇f_m(θ*)`` (``Σ_m a_m = 0``). With ``heterogeneous=True`` the ``a_m`` are kept
as constant states; a certificate must then hold for every such ``a``.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.errors import InputError, check_int, check_real
from convcheck.theory.lmi import LinearModel, Signal
from convcheck.theory.lower import FAMILIES, LowerBound, lower_bound
from convcheck.theory.rounds import (
    Compression,
    Round,
    Threshold,
    View,
    WorkerClasses,
    assemble,
    window,
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
            ``L ≤ 0``, ``μ < 0``, ``μ > L``, ``M < 1``, a per-worker list of the wrong length, a
            negative entry or ``μ_m > L_m``; the message names the field.
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


# -- the models (one function per algorithm) ---------------------------------------------------
def _round(view: View, name: str, **fields: Any) -> Round:
    shared, prefixes = view.layout()
    return Round(
        name=name,
        functions=view.functions(),
        shared=shared,
        prefixes=prefixes,
        deviation_of=view.deviation,
        **fields,
    )


def _values(view: View, prefix: str) -> tuple[str, ...]:
    """Names of the per-class function values ``prefix`` (none without values / off main)."""
    return view.names(workers=[prefix]) if view.with_values and view.main else ()


def gd_round(view: View, *, alpha: float) -> Round:
    """GD: ``x⁺ = x − (1/M) Σ_m u_m``, ``u_m`` at ``θ^k``."""
    x = view.shared("x")
    u, F = view.worker("u"), view.value("F")
    return _round(
        view, "gd",
        states=view.states(["x"]),
        inputs=view.names(workers=["u"]),
        update={"x": x - view.mean(u)},
        calls=(view.call("k", x, u, F),),
        errors=(),
        theta=x,
        value_inputs=_values(view, "F"),
        sensitivity={"x": 1.0},
    )


def gdsec_round(
    view: View,
    *,
    alpha: float,
    beta: float = 1.0,
    xi: float = 0.0,
    error_correction: bool = True,
    lifting: bool = False,
) -> Round:
    """GD-SEC, ``ξ = max_i ξ_i``: ``Δ_m = u_m − h_m + e_m``, sent ``Δ_m − r_m``,
    ``x⁺ = x − (1/M)Σ_m(h_m + Δ_m − r_m)``, ``h_m⁺ = h_m + β(Δ_m − r_m)``, ``e_m⁺ = r_m`` (error
    correction; else ``e_m = 0``); the dropped part ``r_m`` obeys ``‖r_m‖ ≤ ξ‖x − x_prev‖``.
    Lifting keeps ``v_m = u_m(θ^{k−1})``."""
    x, p = view.shared("x"), view.shared("x_prev")
    u, r, h, F = view.worker("u"), view.worker("r"), view.worker("h"), view.value("F")
    C = len(u)
    e = view.worker("e") if error_correction else [Signal()] * C
    delta = [u[c] - h[c] + e[c] for c in range(C)]
    sent = [delta[c] - r[c] for c in range(C)]
    update = {"x": x - view.mean([h[c] + sent[c] for c in range(C)]), "x_prev": x}
    workers = ["h"] + (["e"] if error_correction else []) + (["v"] if lifting else [])
    update.update({f"h_{c}": h[c] + beta * sent[c] for c in view.keys})
    update.update({f"e_{c}": r[c] for c in view.keys})
    calls = [view.call("k", x, u, F)]
    values, value_update = (), {}
    if lifting:
        v, Fv = view.worker("v"), view.value("Fv")
        update.update({f"v_{c}": u[c] for c in view.keys})
        calls.append(view.call("k-1", p, v, Fv))
        values = _values(view, "Fv")
        value_update = {f"Fv_{c}": F[c] for c in view.keys} if values else {}
    sensitivity = {"x": 1.0, "x_prev": 1.0}
    sensitivity.update(view.per_worker("h", lambda c: alpha * view.classes.L[c]))
    sensitivity.update(view.per_worker("e", 0.0))
    sensitivity.update(view.per_worker("v", lambda c: alpha * view.classes.L[c]))
    return _round(
        view, "gd-sec",
        states=view.states(["x", "x_prev"], workers),
        inputs=view.names(workers=["u", "r"]),
        update=update,
        calls=tuple(calls),
        errors=tuple(Threshold(f"r_{c}", delta[c], x - p, xi, str(c)) for c in view.keys),
        theta=x,
        values=values,
        value_inputs=_values(view, "F"),
        value_update=value_update,
        sensitivity=sensitivity,
    )


def ef_round(
    view: View, *, alpha: float, delta: float, sparsifier: bool = True,
    heterogeneous: bool | None = None,
) -> Round:
    """Classic EF: ``p_m = α∇f_m(θ) + e_m = u_m + a_m + e_m``, ``e_m⁺ = r_m``,
    ``x⁺ = x − (1/M)Σ_m (p_m − r_m)``; ``heterogeneous`` (default: ``M > 1``) keeps the ``a_m``."""
    heterogeneous = view.classes.workers > 1 if heterogeneous is None else heterogeneous
    x = view.shared("x")
    u, r, e, F = view.worker("u"), view.worker("r"), view.worker("e"), view.value("F")
    offsets, a = view.offsets() if heterogeneous else ([], [Signal()] * len(u))
    accumulated = [u[c] + a[c] + e[c] for c in range(len(u))]
    update = {"x": x - view.mean([accumulated[c] - r[c] for c in range(len(u))])}
    update.update({f"e_{c}": r[c] for c in view.keys})
    update.update({name: Signal.var(name) for name in offsets})
    sensitivity = {"x": 1.0, **view.per_worker("e", 0.0)}
    sensitivity.update({n: alpha * view.classes.L[int(n[2:])] for n in offsets})
    return _round(
        view, "ef",
        states=view.states(["x"], ["e"]) + tuple(offsets),
        inputs=view.names(workers=["u", "r"]),
        update=update,
        calls=(view.call("k", x, u, F),),
        errors=tuple(
            Compression(f"r_{c}", accumulated[c], delta, sparsifier, str(c)) for c in view.keys
        ),
        theta=x,
        value_inputs=_values(view, "F"),
        sensitivity=sensitivity,
    )


def compressed_gd_round(
    view: View, *, alpha: float, delta: float, sparsifier: bool = True,
    heterogeneous: bool | None = None,
) -> Round:
    """Compressed GD without memory: ``x⁺ = x − (1/M)Σ_m C(α∇f_m(θ)) = x − (1/M)Σ_m(p_m − r_m)``,
    ``p_m = u_m + a_m``. With one worker and ``sparsifier=False`` it is GD with a relative
    gradient error ``‖r‖ ≤ √(1 − δ)‖u‖`` (the inexact gradient method of PEPit)."""
    heterogeneous = view.classes.workers > 1 if heterogeneous is None else heterogeneous
    x = view.shared("x")
    u, r, F = view.worker("u"), view.worker("r"), view.value("F")
    offsets, a = view.offsets() if heterogeneous else ([], [Signal()] * len(u))
    update = {"x": x - view.mean([u[c] + a[c] - r[c] for c in range(len(u))])}
    update.update({name: Signal.var(name) for name in offsets})
    sensitivity = {"x": 1.0}
    sensitivity.update({n: alpha * view.classes.L[int(n[2:])] for n in offsets})
    return _round(
        view, "compressed-gd",
        states=view.states(["x"]) + tuple(offsets),
        inputs=view.names(workers=["u", "r"]),
        update=update,
        calls=(view.call("k", x, u, F),),
        errors=tuple(
            Compression(f"r_{c}", u[c] + a[c], delta, sparsifier, str(c)) for c in view.keys
        ),
        theta=x,
        value_inputs=_values(view, "F"),
        sensitivity=sensitivity,
    )


def ef21_round(
    view: View, *, alpha: float, delta: float, sparsifier: bool = True, lifting: bool = True
) -> Round:
    """EF21: ``x⁺ = x − (1/M)Σ_m g_m``; ``u_m`` at ``θ^{k+1}``; ``g_m⁺ = u_m − r_m`` with
    ``r_m`` the error of compressing ``u_m − g_m``. Lifting keeps ``v_m = u_m(θ^k)``."""
    x = view.shared("x")
    g, u, r, F = view.worker("g"), view.worker("u"), view.worker("r"), view.value("F")
    x_next = x - view.mean(g)
    update = {"x": x_next}
    update.update({f"g_{c}": u[c] - r[c] for c in view.keys})
    calls = [view.call("k+1", x_next, u, F)]
    values, value_update = (), {}
    if lifting:
        v, Fv = view.worker("v"), view.value("Fv")
        update.update({f"v_{c}": u[c] for c in view.keys})
        calls.append(view.call("k", x, v, Fv))
        values = _values(view, "Fv")
        value_update = {f"Fv_{c}": F[c] for c in view.keys} if values else {}
    sensitivity = {"x": 1.0}
    sensitivity.update(view.per_worker("g", lambda c: alpha * view.classes.L[c]))
    sensitivity.update(view.per_worker("v", lambda c: alpha * view.classes.L[c]))
    return _round(
        view, "ef21",
        states=view.states(["x"], ["g"] + (["v"] if lifting else [])),
        inputs=view.names(workers=["u", "r"]),
        update=update,
        calls=tuple(calls),
        errors=tuple(
            Compression(f"r_{c}", u[c] - g[c], delta, sparsifier, str(c)) for c in view.keys
        ),
        theta=x,
        values=values,
        value_inputs=_values(view, "F"),
        value_update=value_update,
        sensitivity=sensitivity,
    )


def bidirectional_round(
    view: View, *, alpha: float, delta_up: float, delta_down: float,
    heterogeneous: bool | None = None,
) -> Round:
    """Bidirectional top-k: ``A_m = e_m + u_m + a_m``, ``e_m⁺ = r_m``,
    ``W = D + (1/M)Σ(A_m − r_m)``, ``D⁺ = q``, ``x⁺ = x − (W − q)`` (top-k is a sparsifier:
    disjoint-support equalities)."""
    heterogeneous = view.classes.workers > 1 if heterogeneous is None else heterogeneous
    x, server, q = view.shared("x"), view.shared("D"), view.shared("q")
    u, r, e, F = view.worker("u"), view.worker("r"), view.worker("e"), view.value("F")
    offsets, a = view.offsets() if heterogeneous else ([], [Signal()] * len(u))
    accumulated = [e[c] + u[c] + a[c] for c in range(len(u))]
    aggregate = server + view.mean([accumulated[c] - r[c] for c in range(len(u))])
    update = {"x": x - (aggregate - q), "D": q}
    update.update({f"e_{c}": r[c] for c in view.keys})
    update.update({name: Signal.var(name) for name in offsets})
    errors = [
        Compression(f"r_{c}", accumulated[c], delta_up, True, f"up {c}") for c in view.keys
    ]
    if view.main:
        errors.append(Compression("q", aggregate, delta_down, True, "down"))
    sensitivity = {"x": 1.0, "D": 0.0, **view.per_worker("e", 0.0)}
    sensitivity.update({n: alpha * view.classes.L[int(n[2:])] for n in offsets})
    return _round(
        view, "bidir-topk",
        states=view.states(["x", "D"], ["e"]) + tuple(offsets),
        inputs=view.names(workers=["u", "r"]) + view.names(shared=["q"]),
        update=update,
        calls=(view.call("k", x, u, F),),
        errors=tuple(errors),
        theta=x,
        value_inputs=_values(view, "F"),
        sensitivity=sensitivity,
    )


def delayed_gd_rounds(
    view: View, *, alpha: float, tau: int, varying: bool = False
) -> list[Round]:
    """GD with delayed gradients ``θ^{k+1} = θ^k − α(1/M)Σ_m ∇f_m(θ^{k−d})``.

    State ``(x, x_1, …, x_τ)`` (``x_j = θ^{k−j} − θ*``). ``varying=False``: the delay is always
    ``d = τ`` (one mode); ``varying=True``: any delay sequence with ``d_k ∈ {0, …, τ}`` (one mode
    per delay value, one common ``P``).
    """
    names = ["x"] + [f"x_{j}" for j in range(1, tau + 1)]
    past = [view.shared(name) for name in names]
    u, F = view.worker("u"), view.value("F")
    shift = {names[j]: past[j - 1] for j in range(1, tau + 1)} if view.main else {}
    states = view.states(names)
    rounds = []
    for d in range(tau + 1) if varying else [tau]:
        rounds.append(_round(
            view, f"delay {d}",
            states=states,
            inputs=view.names(workers=["u"]),
            update=ChainMap({"x": past[0] - view.mean(u)} if view.main else {}, shift),
            calls=(view.call(f"k-{d}", past[d], u, F),),
            errors=(),
            theta=past[0],
            value_inputs=_values(view, "F"),
            sensitivity={name: 1.0 for name in states},
        ))
    return rounds


# -- registry ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A certifiable algorithm: its model function, its parameters with their validators, and
    the settings of its sharpest model (``window``, parameter overrides)."""

    rounds: Callable[..., Round | list[Round]]
    required: tuple[str, ...]
    optional: dict[str, Any]
    description: str
    compressor: Callable[[dict], str]
    window: int = 1
    sharp_overrides: dict[str, Any] | None = None


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


def _contractive(params: dict) -> str:
    kind = ("a sparsifier (error orthogonal to the message)" if params.get("sparsifier", True)
            else "any map")
    return f"{kind} with ‖C(v) − v‖² ≤ (1 − δ)‖v‖², δ = {params['delta']:.6g}"


def _bidirectional(params: dict) -> str:
    return ("sparsifiers (error orthogonal to the message) up and down, δ_up = "
            f"{params['delta_up']:.6g}, δ_down = {params['delta_down']:.6g}")


def _threshold(params: dict) -> str:
    return (f"GD-SEC thresholds: dropped part r_m orthogonal to the sent part, "
            f"‖r_m‖ ≤ ξ‖θ^k − θ^(k−1)‖, ξ = {params['xi']:.6g}")


#: Algorithms with an LMI model: rounds, required and optional parameters, sharp settings.
MODELS: dict[str, ModelSpec] = {
    "gd": ModelSpec(gd_round, ("alpha",), {}, "gradient descent",
                    lambda p: "none", window=1),
    "gd-sec": ModelSpec(
        gdsec_round,
        ("alpha",),
        {"beta": 1.0, "xi": 0.0, "error_correction": True, "lifting": False},
        "GD-SEC, threshold ξ = max_i ξ_i",
        _threshold,
        window=1,
    ),
    "ef": ModelSpec(
        ef_round,
        ("alpha", "delta"),
        {"sparsifier": True, "heterogeneous": None},
        "classic error feedback with a δ-contractive compressor",
        _contractive,
        window=1,
    ),
    "compressed-gd": ModelSpec(
        compressed_gd_round,
        ("alpha", "delta"),
        {"sparsifier": True, "heterogeneous": None},
        "compressed GD without error feedback (δ-contractive compressor)",
        _contractive,
        window=1,
    ),
    "ef21": ModelSpec(
        ef21_round,
        ("alpha", "delta"),
        {"sparsifier": True, "lifting": True},
        "EF21 with a δ-contractive compressor",
        _contractive,
        window=2,
        sharp_overrides={"lifting": False},
    ),
    "bidir-topk": ModelSpec(
        bidirectional_round,
        ("alpha", "delta_up", "delta_down"),
        {"heterogeneous": None},
        "bidirectional top-k (δ_up = k_up/d, δ_down = k_down/d)",
        _bidirectional,
        window=1,
    ),
    "gd-delay": ModelSpec(
        delayed_gd_rounds, ("alpha", "tau"), {"varying": False}, "GD with a gradient delay τ",
        lambda p: "none", window=0,
    ),
}

#: Model variants: the state-complete sector model, or the sharp interpolation model.
VARIANTS = ("sector", "interpolation")


def validate_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``name`` with defaults, validated.

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
    return {key: VALIDATORS[key](value) for key, value in values.items()}


def build_model(
    name: str,
    constants: ModelConstants,
    *,
    variant: str = "sector",
    window_steps: int | None = None,
    classes: int | None = None,
    symmetry: bool = True,
    **params: Any,
) -> LinearModel:
    """The LMI model of algorithm ``name`` with validated ``params``.

    Parameters
    ----------
    name : str
    constants : ModelConstants
    variant : {"sector", "interpolation"}
        ``"sector"``: co-coercivity between the points the state knows, no function values —
        the model whose state is the algorithm's own (certified bounds on runs use it).
        ``"interpolation"``: interpolation inequalities with function values over a history
        window (the algorithm's ``window`` by default) — the sharper model of ``convcheck
        certify``.
    window_steps : int, optional
        History window of the interpolation variant.
    classes : int, optional
        Round the workers' constants into at most this many classes (default: one class per
        distinct ``(L_m, μ_m)``).
    symmetry : bool
        ``False``: one class per worker even where constants are equal (no reduction; the
        same certificate at a larger cost — for checking the reduction).

    Raises
    ------
    InputError
        Unknown algorithm, variant or parameter, a parameter out of range, ``classes`` outside
        ``[1, M]``.
    """
    checked = validate_params(name, params)
    if "heterogeneous" in checked and checked["heterogeneous"] is None:
        checked["heterogeneous"] = constants.workers > 1
    if variant not in VARIANTS:
        raise InputError("model", variant, "one of " + ", ".join(map(repr, VARIANTS)))
    spec = MODELS[name]
    steps = 0
    if variant == "interpolation":
        steps = spec.window if window_steps is None else check_int("window", window_steps, 0)
        if steps and spec.window == 0:
            raise InputError("window", steps, f"0 ({name} has several modes: no window)")
        for key, value in (spec.sharp_overrides or {}).items():
            if key not in params:
                checked[key] = value
    elif window_steps:
        raise InputError("window", window_steps, "0 with the sector model (or use "
                         "model=interpolation)")
    grouped = WorkerClasses.of(constants.L_workers, constants.mu_workers, classes)
    if not symmetry:
        grouped = WorkerClasses(constants.L_workers, constants.mu_workers,
                                tuple((m,) for m in range(constants.workers)))
    values = variant == "interpolation"
    alpha = checked["alpha"]

    def view_rounds(deviation: int | None) -> list[Round]:
        view = View(grouped, constants.L, constants.mu, alpha, deviation, values)
        made = spec.rounds(view, **checked)
        made = made if isinstance(made, list) else [made]
        return [window(r, steps) for r in made]

    rounds = [view_rounds(None)] + [
        view_rounds(c) for c in range(grouped.count) if len(grouped.members[c]) >= 2
    ]
    description = _describe(name, checked, constants, grouped, variant, steps)
    params_out = {**checked, **constants.as_dict(), "model": variant, "window": steps,
                  "classes": grouped.count}
    return assemble(name, params_out, rounds, "interpolation" if values else "sector",
                    description, constants.workers, grouped.members)


#: ``model="auto"`` takes the sharpest model whose main LMI has at most this many rows.
AUTO_ROWS = 32


def build_auto(
    name: str, constants: ModelConstants, *, classes: int | None = None, **params: Any
) -> LinearModel:
    """The sharpest model whose main LMI has at most :data:`AUTO_ROWS` rows: the interpolation
    model with the algorithm's window, then with shorter windows (down to 1), then the sector
    model (the smallest; used whatever its size)."""
    spec = MODELS[name]
    sector = build_model(name, constants, variant="sector", classes=classes, **params)
    if sector.main.size > AUTO_ROWS:  # a window only adds rows
        return sector
    for steps in range(spec.window, 0, -1):
        model = build_model(name, constants, variant="interpolation", window_steps=steps,
                            classes=classes, **params)
        if model.main.size <= AUTO_ROWS:
            return model
    return sector


def _describe(
    name: str, params: dict, constants: ModelConstants, grouped: WorkerClasses, variant: str,
    steps: int,
) -> dict[str, str]:
    """The model in words (printed by ``convcheck certify`` and stored in certificates)."""
    if variant == "interpolation":
        constraints = (f"interpolation inequalities of S(μ_m, L_m) with function values between "
                       f"every pair of points of the last {steps + 1} round(s) and θ*")
        lyapunov = (f"quadratic in the state of {steps} round(s) ago and every input since, "
                    "plus a nonnegative combination of function values")
    else:
        constraints = "sector (co-coercivity) between the points the state knows and θ*"
        lyapunov = "quadratic in the algorithm's state (no function values)"
    deviations = sum(len(m) >= 2 for m in grouped.members)
    return {
        "name": variant,
        "algorithm": MODELS[name].description,
        "functions": (f"f_m ∈ S(μ_m, L_m) per worker and f = (1/M)Σ f_m ∈ S(μ, L), "
                      f"μ = {constants.mu:.6g}, L = {constants.L:.6g}"),
        "compressor": MODELS[name].compressor(params),
        "constraints": constraints,
        "lyapunov": lyapunov,
        "workers": grouped.describe(),
        "reduction": (f"symmetry-reduced: 1 main block + {deviations} deviation block(s) "
                      f"for M = {constants.workers}"),
    }


def assumptions_sentence(model: LinearModel) -> str:
    """The class a certificate is about, in one sentence."""
    d = model.description
    heterogeneous = model.params.get("heterogeneous")
    offsets = " with ∇f_m(θ*) ≠ 0 allowed" if heterogeneous else ""
    return (f"Every f = (1/M)Σ f_m with {d.get('functions', '')}{offsets}; compressor: "
            f"{d.get('compressor', 'none')}; {d.get('workers', '')}.")


def search_lower_bound(
    name: str,
    constants: ModelConstants,
    *,
    classes: int | None = None,
    families: tuple[str, ...] = FAMILIES,
    target: float = float("inf"),
    **params: Any,
) -> LowerBound:
    """The best explicit instance of the assumptions of ``name``'s models (see
    :mod:`convcheck.theory.lower`): the main view with the workers of a class identical and,
    when all workers share one class, the same class split in two halves whose functions,
    compressors (and offsets ``∇f_m(θ*)``, where allowed) differ."""
    checked = validate_params(name, params)
    if "heterogeneous" in checked and checked["heterogeneous"] is None:
        checked["heterogeneous"] = constants.workers > 1
    grouped = WorkerClasses.of(constants.L_workers, constants.mu_workers, classes)
    spec = MODELS[name]
    views = [View(grouped, constants.L, constants.mu, checked["alpha"])]
    if grouped.count == 1 and constants.workers >= 2:
        half = constants.workers // 2
        split = WorkerClasses(
            np.repeat(grouped.L, 2), np.repeat(grouped.mu, 2),
            (tuple(range(half)), tuple(range(half, constants.workers))),
        )
        views.append(View(split, constants.L, constants.mu, checked["alpha"]))
    rounds = []
    for view in views:
        made = spec.rounds(view, **checked)
        if isinstance(made, list) and len(made) > 1:
            return LowerBound(None, "no instance family for a model with several modes")
        rounds.append(made[0] if isinstance(made, list) else made)
    return lower_bound(rounds, views, families=families, target=target)


def lower_bound_of(model: LinearModel, **options: Any) -> LowerBound:
    """:func:`search_lower_bound` for the algorithm, parameters and classes of ``model``."""
    params = model.params
    spec = MODELS[model.algorithm]
    algorithm_params = {k: params[k] for k in spec.required + tuple(spec.optional)}
    constants = ModelConstants.make(
        params["L"], params["mu"], params["workers"], params["L_workers"], params["mu_workers"]
    )
    return search_lower_bound(model.algorithm, constants, classes=params["classes"],
                              **algorithm_params, **options)


def explicit_round(name: str, constants: ModelConstants, **params: Any) -> Round:
    """The round of ``name`` with one class per worker (no reduction, no function values, no
    window): every worker's entries are explicit (``u_m``, ``r_m``, ...). Used to expand a model
    coordinate by coordinate on a concrete instance (:mod:`convcheck.theory.instance`)."""
    checked = validate_params(name, params)
    if "heterogeneous" in checked and checked["heterogeneous"] is None:
        checked["heterogeneous"] = constants.workers > 1
    singletons = WorkerClasses(constants.L_workers, constants.mu_workers,
                               tuple((m,) for m in range(constants.workers)))
    view = View(singletons, constants.L, constants.mu, checked["alpha"])
    made = MODELS[name].rounds(view, **checked)
    if isinstance(made, list):
        if len(made) > 1:
            raise InputError("algorithm", name, "a model with one mode")
        made = made[0]
    return made


def model_parameters(algorithm: Any, problem: Any) -> tuple[str | None, dict, str]:
    """``(model name, its parameters, "")`` an algorithm declares, or ``(None, {}, why not)``."""
    name, params = algorithm.lmi_model(problem.objective.dim)
    if name is None:
        return None, {}, params["reason"]
    return name, params, ""


def coordinate_thresholds(algorithm: Any, d: int) -> np.ndarray | None:
    """Per-coordinate thresholds ``ξ_i`` an algorithm declares (GD-SEC; an instance model uses
    them), else ``None``."""
    thresholds = getattr(algorithm, "coordinate_thresholds", None)
    return None if thresholds is None else thresholds(d)
