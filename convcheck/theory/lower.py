"""Lower bounds on worst-case rates: explicit instances of a model's assumptions.

A certificate says ``‖θ^k − θ*‖ ≤ C·ρ^k`` for every instance of its class (functions
``f_m ∈ S(μ_m, L_m)``, ``f ∈ S(μ, L)``, compressors of the class). One instance whose distance
decays like ``ρ_low^k`` proves that no certificate of the class can have ``ρ < ρ_low``; the gap
``ρ − ρ_low`` says how tight the certificate is.

Instances searched (docs/theory.md §4.6), all with the workers of one class identical:

* **isotropic** (on ``ℝ² ≅ ℂ``): ``f_c(θ) = (h_c/2)‖θ − θ*‖²`` with ``h_c ∈ [μ_c, L_c]`` and every
  compressor error a complex multiple of its input, ``r = e·v`` (a rotation-scaling of ``ℝ²``).
  ``e`` on the circle ``Re e = |e|²``, ``|e|² ≤ 1 − δ`` makes ``⟨r, v − r⟩ = 0`` and
  ``‖r‖² ≤ (1 − δ)‖v‖²`` hold for every ``v`` (a sparsifier of the class; ``|e|² ≤ 1 − δ``
  alone: a contractive compressor). The round is then a complex linear map ``A``; along the
  eigenvector of an eigenvalue ``λ`` every signal is ``λ^k`` times a fixed amplitude, so a
  constraint that is not automatic (GD-SEC's ``‖r‖ ≤ ξ‖θ^k − θ^{k−1}‖``, with ``r = e·Δ``) holds
  at every round iff it holds for the amplitudes. Rate: ``|λ|``.
* **planar** (real ``ℝ²``): ``f_c`` quadratics with Hessians ``R(ψ)diag(a, b)R(ψ)ᵀ`` and
  compressor errors ``r = E·v`` with ``E`` a real 2×2 matrix of the class for every ``v``:
  ``E = cos φ·R(±φ)`` (sparsifier, ``cos²φ ≤ 1 − δ``) or ``‖E‖₂ ≤ √(1 − δ)`` (contractive).
  Rate: the spectral radius of the real round (eigenvectors that move ``θ``).

The rate of an instance is a maximum over eigenvalues whose eigenvector moves ``θ``; the search
maximizes it over the instance parameters (a seeded grid and random sample, then Nelder–Mead
from the best points). Every instance returned is re-evaluated and satisfies its constraints,
so ``ρ_low`` is a proven lower bound up to the rounding of a small eigenvalue problem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convcheck.theory.rounds import Compression, Round, Threshold, View

#: Seed of the parameter search (the search is deterministic).
SEED = 20260601
#: Random points of the global stage, and Nelder–Mead starts.
SAMPLES = 60
STARTS = 2
#: Rounds with more real state entries than this get a third of the samples and shorter
#: Nelder–Mead runs (each evaluation is an eigenvalue problem of that size).
LARGE_STATE = 16


@dataclass(frozen=True)
class LowerBound:
    """The best instance found.

    Attributes
    ----------
    rho : float or None
        Its rate (``None``: no instance family applies).
    method : str
        The family and the search, in words.
    instance : dict
        Its parameters (Hessian eigenvalues, compressor angles, ...).
    """

    rho: float | None
    method: str
    instance: dict[str, Any] = field(default_factory=dict)

    @property
    def diverges(self) -> bool:
        return self.rho is not None and self.rho >= 1.0


@dataclass(frozen=True)
class _Rules:
    """For each input of a round: how an instance computes it (and cached expansions)."""

    gradients: list[tuple[str, int, np.ndarray]]  # (input, class, call point over states+inputs)
    errors: list[tuple[str, int | None, np.ndarray, Compression | Threshold, np.ndarray | None]]
    N: np.ndarray
    theta: np.ndarray
    n_s: int
    index: dict[str, int]
    cache: dict = field(default_factory=dict)

    @property
    def has_thresholds(self) -> bool:
        return any(reference is not None for *_, reference in self.errors)

    def expanded(self, p: int) -> np.ndarray:
        """``N ⊗ I_p``."""
        if ("N", p) not in self.cache:
            self.cache[("N", p)] = np.kron(self.N, np.eye(p))
        return self.cache[("N", p)]

    def theta_rows(self, p: int) -> np.ndarray:
        """``θᵀ ⊗ I_p``."""
        if ("theta", p) not in self.cache:
            self.cache[("theta", p)] = np.kron(self.theta[None, :], np.eye(p))
        return self.cache[("theta", p)]


def _rules(rnd: Round) -> _Rules:
    names = rnd.states + rnd.inputs
    index = {n: i for i, n in enumerate(names)}
    size = len(names)
    gradients = []
    for call in rnd.calls:
        for key, gradient in call.gradients.items():
            if key == "f" or len(gradient.terms) != 1:
                continue
            (name,) = gradient.terms
            if name in rnd.inputs:
                gradients.append((name, int(key[2:]), call.x.vector(index, size)))
    errors = []
    for item in rnd.errors:
        c = int(item.error.rpartition("_")[2]) if item.error.startswith("r_") else None
        reference = item.reference.vector(index, size) if isinstance(item, Threshold) else None
        errors.append((item.error, c, item.source.vector(index, size), item, reference))
    covered = {g[0] for g in gradients} | {e[0] for e in errors}
    missing = [n for n in rnd.inputs if n not in covered]
    if missing:
        raise ValueError(f"no instance rule for input {missing[0]!r}")
    N = np.array([rnd.update[s].vector(index, size) for s in rnd.states]).reshape(-1, size)
    theta = rnd.theta.vector(index, size)
    return _Rules(gradients, errors, N, theta, len(rnd.states), index)


def _block_row(point: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``point ⊗ H`` as a ``p × (n·p)`` block row."""
    return np.einsum("j,ab->ajb", point, H).reshape(H.shape[0], -1)


def _round_matrix(rules: _Rules, alpha: float, hessians: dict[int, np.ndarray],
                  maps: dict[str, np.ndarray], p: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(A, F)``: the round ``s⁺ = A s`` of the instance and ``[s; w] = F s`` (``p×p`` blocks,
    complex for the isotropic family)."""
    n_s, size = rules.n_s, rules.N.shape[1]
    dtype = complex if p == 1 else float
    K = np.zeros((size * p, size * p), dtype=dtype)
    for name, c, point in rules.gradients:
        i = rules.index[name]
        K[i * p:(i + 1) * p] = _block_row(point, alpha * hessians[c])
    for name, _, source, _, _ in rules.errors:
        i = rules.index[name]
        K[i * p:(i + 1) * p] = _block_row(source, maps[name])
    inputs = slice(n_s * p, size * p)
    try:
        W = np.linalg.solve(np.eye(K[inputs, inputs].shape[0]) - K[inputs, inputs],
                            K[inputs, : n_s * p])
    except np.linalg.LinAlgError:
        return None
    Nb = rules.expanded(p)
    A = Nb[:, : n_s * p] + Nb[:, n_s * p:] @ W
    if not np.all(np.isfinite(A)):
        return None
    return A, np.vstack([np.eye(n_s * p), W])


def _rate(rules: _Rules, rounds: Sequence[tuple[np.ndarray, np.ndarray]], p: int) -> float:
    """Rate of the instance whose rounds follow ``rounds`` periodically: ``|λ|^{1/K}`` for the
    eigenvalues ``λ`` of the product of the ``K`` rounds whose eigenvector moves ``θ`` during
    the period and satisfies every threshold constraint at every round of the period. A real
    (planar) instance with a threshold needs a real ``λ`` (then every constraint scales by
    ``λ²`` per period); the isotropic instance is complex-linear, so every ``λ`` qualifies."""
    product = rounds[0][0]
    for A, _ in rounds[1:]:
        product = A @ product
    values, vectors = np.linalg.eig(product)
    theta = rules.theta_rows(p)
    thresholds = rules.has_thresholds
    best = 0.0
    for lam, vec in zip(values, vectors.T, strict=True):
        modulus = float(abs(lam))
        if modulus ** (1.0 / len(rounds)) <= best:
            continue
        if thresholds and p > 1:
            if abs(lam.imag) > 1e-12 * max(modulus, 1e-300):
                continue
            vec = vec.real if np.linalg.norm(vec.real) >= np.linalg.norm(vec.imag) else vec.imag
        state, moved, feasible = vec, 0.0, True
        for A, F in rounds:
            signals = F @ state
            moved += float(np.linalg.norm(theta @ signals) ** 2)
            if thresholds and not _thresholds_hold(rules, signals, p):
                feasible = False
                break
            state = A @ state
        if feasible and moved > 1e-12 * float(np.vdot(vec, vec).real):
            best = modulus ** (1.0 / len(rounds))
    return best


def _thresholds_hold(rules: _Rules, signals: np.ndarray, p: int) -> bool:
    """``|r̂|² ≤ ξ²|ref̂|²`` (strictly, with a relative margin) for every threshold error."""
    blocks = signals.reshape(-1, p)
    for name, _, _, item, reference in rules.errors:
        if reference is None:
            continue
        error = blocks[rules.index[name]]
        ref = reference @ blocks
        if np.vdot(error, error).real > (1 - 1e-9) * item.xi**2 * np.vdot(ref, ref).real:
            return False
    return True


def _circle(angle: float) -> complex:
    """``e = cos ψ·e^{iψ}``: ``Re e = |e|²`` (error orthogonal to the message)."""
    return math.cos(angle) * complex(math.cos(angle), math.sin(angle))


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _squash(t: float) -> float:
    """``ℝ → [0, 1]``."""
    return 0.5 * (1.0 + math.tanh(t))


#: Reflection ``diag(1, −1)``: the second map of a switched instance is the mirror ``S E S``.
_MIRROR = np.diag([1.0, -1.0])
#: Periodic compressor sequences of a switched instance: the map, its mirror, alternating.
SEQUENCES = ((0,), (1,), (0, 1))
#: Above this many classes, the classes share their instance parameters.
TIE_CLASSES = 2


class _Family:
    """A parametrized family of instances of one round.

    ``decode`` maps a parameter vector to one Hessian per class and one map per compressor (and
    its mirror image, for the switched family, whose compressors alternate between the two).
    Above :data:`TIE_CLASSES` classes, all classes share the same parameters (Hessian
    eigenvalues at the same fractions of ``[μ_c, L_c]``, the same compressor maps)."""

    def __init__(self, rules: _Rules, view: View, planar: bool, switched: bool):
        self.rules, self.view, self.planar = rules, view, planar
        self.classes = view.classes
        self.p = 2 if planar else 1
        self.sequences = SEQUENCES if switched else ((0,),)
        self.tied = self.classes.count > TIE_CLASSES
        self.error_keys = self._error_keys()
        self.per_class = 3 if planar else 1
        self.per_map = 4 if planar else 2
        hessian_sets = 1 if self.tied else self.classes.count
        slots = len(set(self.error_keys.values()))
        self.dim = hessian_sets * self.per_class + slots * self.per_map

    def _error_keys(self) -> dict[str, str]:
        keys = {}
        for name, c, _, item, _ in self.rules.errors:
            kind = item.label.split(" ")[0] if " " in item.label else "worker"
            keys[name] = kind if self.tied or c is None else f"{kind} {c}"
        return keys

    def decode(self, z: np.ndarray) -> tuple[dict, list[dict], dict]:
        cls, view = self.classes, self.view
        hessians, described = {}, {}
        for c in range(cls.count):
            i = 0 if self.tied else c * self.per_class
            low, high = cls.mu[c], cls.L[c]
            if self.planar:
                a = low + (high - low) * _squash(z[i])
                b = low + (high - low) * _squash(z[i + 1])
                R = _rotation(z[i + 2])
                hessians[c] = R @ np.diag([a, b]) @ R.T
                described[f"hessian eigenvalues f_{c}"] = [a, b]
                described[f"hessian rotation f_{c}"] = float(z[i + 2])
            else:
                h = low + (high - low) * _squash(z[i])
                hessians[c] = np.array([[h]], dtype=complex)
                described[f"h f_{c}"] = h
        average = sum(w * H for w, H in zip(view.weights, hessians.values(), strict=True))
        eigenvalues = np.linalg.eigvalsh(average) if self.planar else [average[0, 0].real]
        if min(eigenvalues) < view.mu * (1 - 1e-12) or max(eigenvalues) > view.L * (1 + 1e-12):
            return {}, [], {}
        i = (1 if self.tied else cls.count) * self.per_class
        params: dict[str, tuple] = {}
        for key in dict.fromkeys(self.error_keys.values()):
            params[key] = tuple(z[i:i + self.per_map])
            i += self.per_map
        maps: dict[str, np.ndarray] = {}
        for name, _, _, item, _ in self.rules.errors:
            key = self.error_keys[name]
            maps[name], described[f"compressor {key}"] = self._map(item, params[key])
        mirrored = {name: _MIRROR @ E @ _MIRROR if self.planar else np.conj(E)
                    for name, E in maps.items()}
        return hessians, [maps, mirrored], described

    def _map(self, item: Compression | Threshold, z: tuple) -> tuple[np.ndarray, Any]:
        if isinstance(item, Threshold):
            angle = math.pi / 2 * math.tanh(z[0])
            if self.planar:
                return math.cos(angle) * _rotation(angle), {"angle": angle}
            return np.array([[_circle(angle)]]), {"angle": angle}
        top = math.sqrt(1.0 - item.delta)
        lowest = math.acos(top)
        if item.sparsifier:
            angle = lowest + (math.pi / 2 - lowest) * _squash(z[0])
            sign = 1.0 if z[1] >= 0 else -1.0
            if self.planar:
                return math.cos(angle) * _rotation(sign * angle), {"angle": sign * angle}
            return np.array([[_circle(sign * angle)]]), {"angle": sign * angle}
        if self.planar:
            s1, s2 = top * _squash(z[0]), top * _squash(z[1])
            E = _rotation(z[2]) @ np.diag([s1, s2]) @ _rotation(z[3])
            return E, {"singular values": [s1, s2], "angles": [z[2], z[3]]}
        modulus = top * _squash(z[0])
        return (np.array([[modulus * complex(math.cos(z[1]), math.sin(z[1]))]]),
                {"modulus": modulus, "angle": z[1]})

    def rate(self, z: np.ndarray, detail: bool = False) -> float | tuple[float, tuple]:
        hessians, choices, _ = self.decode(z)
        best, best_sequence = 0.0, ()
        if hessians:
            used = sorted({b for sequence in self.sequences for b in sequence})
            rounds = {b: _round_matrix(self.rules, self.view.alpha, hessians, choices[b], self.p)
                      for b in used}
            for sequence in self.sequences:
                if any(rounds[b] is None for b in sequence):
                    continue
                value = _rate(self.rules, [rounds[b] for b in sequence], self.p)
                if value > best:
                    best, best_sequence = value, sequence
        return (best, best_sequence) if detail else best


class _Reached(Exception):
    """The search found an instance at the target rate: stop."""

    def __init__(self, z: np.ndarray) -> None:
        self.z = z


def _search(family: _Family, rng: np.random.Generator, target: float) -> tuple[float, np.ndarray]:
    """Best rate of ``family``: seeded corners and random points, then Nelder–Mead from the
    best few; stops as soon as a rate ``≥ target`` is found."""
    from scipy.optimize import minimize

    def rate(z: np.ndarray) -> float:
        value = family.rate(z)
        if value >= target:
            raise _Reached(np.array(z))
        return value

    dim = family.dim
    large = family.rules.n_s * family.p > LARGE_STATE
    samples = SAMPLES // 3 if large else SAMPLES
    iterations = min((25 if large else 80) * dim, 600)
    candidates = [np.zeros(dim), np.full(dim, -4.0), np.full(dim, 4.0)]
    candidates += list(rng.choice([-4.0, 4.0], size=(samples // 4, dim)))
    candidates += list(rng.uniform(-3.0, 3.0, size=(samples, dim)))
    try:
        scored = sorted(((rate(z), i) for i, z in enumerate(candidates)), reverse=True)
        best_rate, best = scored[0][0], candidates[scored[0][1]]
        for _, i in scored[:STARTS]:
            result = minimize(lambda z: -rate(z), candidates[i], method="Nelder-Mead",
                              options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": iterations})
            value = family.rate(result.x)
            if value > best_rate:
                best_rate, best = value, result.x
    except _Reached as reached:
        return family.rate(reached.z), reached.z
    return best_rate, best


#: Instance families, cheapest first.
FAMILIES = ("isotropic", "planar", "isotropic switched", "planar switched")


def lower_bound(
    rounds: Sequence[Round],
    views: Sequence[View],
    *,
    families: Sequence[str] = FAMILIES,
    target: float = math.inf,
) -> LowerBound:
    """The best explicit instance of the rounds' assumptions (one round per view to search:
    e.g. the main view, and a split of it for heterogeneous offsets), over ``families``;
    the search stops once an instance reaches ``target`` (e.g. a certified rate less its
    tolerance: nothing better can exist).

    Returns ``LowerBound(None, ...)`` for models with several modes.
    """
    if len({r.name for r in rounds}) > 1:
        return LowerBound(None, "no instance family for several modes")
    rng = np.random.default_rng(SEED)
    best = LowerBound(0.0, "")
    for rnd, view in zip(rounds, views, strict=True):
        rules = _rules(rnd)
        for kind in families:
            switched = kind.endswith("switched")
            if not rules.errors and kind != "isotropic":
                continue  # without compressors, the isotropic quadratics are the worst
            family = _Family(rules, view, kind.startswith("planar"), switched)
            rate, z = _search(family, rng, target)
            if rate > (best.rho or 0.0):
                _, _, described = family.decode(z)
                _, sequence = family.rate(z, detail=True)
                described = {"family": kind, **described}
                if switched:
                    described["compressor sequence"] = ["map" if b == 0 else "mirror"
                                                        for b in sequence]
                best = LowerBound(rate, kind, described)
            if best.rho >= target:
                break
    if not best.method:
        return LowerBound(None, "no instance found")
    method = (f"explicit instance ({best.method}: quadratic functions of the class and linear "
              "compressors of the class, or alternating between a map and its mirror image; "
              f"seeded search over {SAMPLES + SAMPLES // 4 + 3} points + Nelder–Mead); rate = "
              "|λ|^(1/period) of the rounds of one period along an eigenvector that moves θ")
    return LowerBound(best.rho, method, best.instance)
