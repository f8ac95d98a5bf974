"""Rounds, views, windows and classes: the lifted round reproduces the algorithm's dynamics
exactly, the symmetry reduction certifies exactly what the explicit model certifies, and the
rounding of constants into classes is sound."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convcheck.errors import InputError
from convcheck.theory.certified import certify
from convcheck.theory.lmi import _SDP, Signal, certify_model
from convcheck.theory.models import MODELS, ModelConstants, build_model, validate_params
from convcheck.theory.rounds import View, WorkerClasses, window


def evaluate(signal: Signal, values: dict[str, np.ndarray]) -> np.ndarray:
    return sum(c * values[name] for name, c in signal.terms.items())


@pytest.mark.parametrize(("name", "params"), [
    ("ef21", {"alpha": 0.1, "delta": 0.3, "lifting": False}),
    ("gd-sec", {"alpha": 0.5, "xi": 0.2}),
    ("bidir-topk", {"alpha": 0.1, "delta_up": 0.5, "delta_down": 0.3, "heterogeneous": False}),
])
@pytest.mark.parametrize("steps", [1, 2])
def test_window_reproduces_the_rounds_it_lifts(name, params, steps):
    """Run the base round on random inputs; the lifted state built from the history, moved by
    the lifted round, is the lifted state of the next round, and θ is x_k."""
    constants = ModelConstants.make(1.0, 0.1, 2, L_workers=[0.8, 1.0])
    classes = WorkerClasses.of(constants.L_workers, constants.mu_workers)
    view = View(classes, constants.L, constants.mu, params["alpha"])
    base = MODELS[name].rounds(view, **validate_params(name, params))
    lifted = window(base, steps)
    rng = np.random.default_rng(3)
    state = {s: rng.normal(size=4) for s in base.states}
    history = [state]
    inputs = []
    for _ in range(steps + 1):
        w = {n: rng.normal(size=4) for n in base.inputs}
        values = {**history[-1], **w}
        history.append({s: evaluate(base.update[s], values) for s in base.states})
        inputs.append(w)
    # lifted state at time k = steps: (s_0, w_0, ..., w_{steps-1}); next: (s_1, w_1, ..., w_steps)
    current = {f"{s}@{steps}": history[0][s] for s in base.states}
    for j in range(steps, 0, -1):
        current.update({f"{w}@{j}": inputs[steps - j][w] for w in base.inputs})
    values = {**current, **inputs[steps]}
    nxt = {s: evaluate(lifted.update[s], values) for s in lifted.states}
    for s in base.states:
        np.testing.assert_allclose(nxt[f"{s}@{steps}"], history[1][s], atol=1e-12)
    for j in range(steps, 0, -1):
        for w in base.inputs:
            np.testing.assert_allclose(nxt[f"{w}@{j}"], inputs[steps - j + 1][w], atol=1e-12)
    np.testing.assert_allclose(evaluate(lifted.theta, current), history[steps]["x"], atol=1e-12)


def lift(certificate, explicit):
    """The reduced certificate as one of the explicit model: ``P = TᵀP_mainT + Σ_c (1/n_c)
    Σ_{m∈c} D_mᵀP_cD_m`` (``T``: class means, ``D_m``: worker m minus its class mean) and
    per-worker multipliers ``λ_m = μ_c/n_c`` (docs/theory.md §4.3)."""
    reduced = certificate.model
    layout, members = reduced.layout, reduced.layout.members
    owner = {m: c for c, group in enumerate(members) for m in group}
    index = {name: i for i, name in enumerate(explicit.main.states)}
    size = len(index)
    T = np.zeros((len(reduced.main.states), size))
    for i, name in enumerate(reduced.main.states):
        if name in layout.shared:
            T[i, index[name]] = 1.0
        else:
            prefix, _, c = name.rpartition("_")
            for m in members[int(c)]:
                T[i, index[f"{prefix}_{m}"]] = 1.0 / len(members[int(c)])
    P = T.T @ certificate.blocks_P[0] @ T
    for block, P_c in zip(reduced.blocks[1:], certificate.blocks_P[1:], strict=True):
        group = members[block.deviation_of]
        for m in group:
            D = np.zeros((len(block.states), size))
            for i, name in enumerate(block.states):
                prefix = name.rpartition("_")[0]
                for other in group:
                    D[i, index[f"{prefix}_{other}"]] -= 1.0 / len(group)
                D[i, index[f"{prefix}_{m}"]] += 1.0
            P += D.T @ P_c @ D / len(group)
    (reduced_multipliers,) = certificate.multipliers
    lams = []
    for constraint in explicit.main.modes[0].constraints:
        found = re.search(r"(f_|contraction |disjoint supports |threshold error )(\d+)$",
                          constraint.name)
        if found:
            c = owner[int(found.group(2))]
            key = constraint.name[: found.start(2)] + str(c)
            lams.append(reduced_multipliers[key] / len(members[c]))
        else:
            lams.append(reduced_multipliers[constraint.name])
    return [P], [np.array(lams)]


@pytest.mark.parametrize(("name", "params"), [
    ("gd-sec", {"alpha": 0.5, "xi": 0.2}),
    pytest.param("ef21", {"alpha": 0.1, "delta": 0.3}, marks=pytest.mark.slow),
])
def test_symmetry_reduction_is_exact(name, params):
    """Three equal workers and one other. The reduced certificate (main + 1 deviation block),
    rebuilt as a certificate of the explicit model (4 singleton classes), passes the explicit
    model's numpy re-check at the same ρ (the reduction is sound); and the explicit model
    certifies no smaller ρ (the reduction loses nothing)."""
    constants = ModelConstants.make(1.0, 0.1, 4, L_workers=[1.0, 1.0, 1.0, 0.7])
    reduced = build_model(name, constants, **params)
    explicit = build_model(name, constants, symmetry=False, **params)
    assert len(reduced.blocks) == 2 and len(explicit.blocks) == 1
    assert reduced.main.size < explicit.main.size
    certificate = certify_model(reduced, tol=1e-6)
    Ps, lams = lift(certificate, explicit)
    check = _SDP(explicit).verify(certificate.rho, Ps, None, lams)
    assert check.passed, check
    assert not _SDP(explicit).verify(certificate.rho - 0.01, Ps, None, lams).passed
    assert certify_model(explicit, tol=1e-6).rho >= certificate.rho - 2e-6


def test_the_reduced_sdp_does_not_grow_with_the_number_of_workers():
    sizes = {}
    for workers in (2, 50, 1000):
        model = build_model("gd-sec", ModelConstants.make(1.0, 0.1, workers), alpha=0.5, xi=0.2)
        sizes[workers] = [(len(b.states), len(b.inputs)) for b in model.blocks]
        assert len(model.states) == 2 + 2 * workers  # the explicit (engine) state still grows
    assert sizes[2] == sizes[50] == sizes[1000]


def test_equal_constants_form_classes_and_rounding_is_sound():
    L = np.array([1.0, 2.0, 1.0, 3.0, 2.0])
    mu = np.array([0.1, 0.1, 0.1, 0.2, 0.1])
    exact = WorkerClasses.of(L, mu)
    assert exact.members == ((0, 2), (1, 4), (3,)) and not exact.rounded
    rng = np.random.default_rng(0)
    L = rng.uniform(0.5, 2.0, 300)
    mu = rng.uniform(0.01, 0.1, 300)
    rounded = WorkerClasses.of(L, mu, 7)
    assert rounded.count <= 7 and rounded.rounded
    assert sorted(m for group in rounded.members for m in group) == list(range(300))
    for c, group in enumerate(rounded.members):
        assert np.all(rounded.L[c] >= L[list(group)]) and np.all(rounded.mu[c] <= mu[list(group)])


@pytest.mark.slow
def test_rounded_classes_certify_no_better_than_the_exact_constants():
    L = [0.6, 0.7, 0.8, 0.9, 1.0, 1.0]
    exact = certify("gd-sec", L=1.0, mu=0.1, workers=6, L_workers=L, alpha=0.5, xi=0.2,
                    model="sector", lower_bound=False, tol=1e-6)
    rounded = certify("gd-sec", L=1.0, mu=0.1, workers=6, L_workers=L, alpha=0.5, xi=0.2,
                      model="sector", lower_bound=False, tol=1e-6, classes=2)
    assert rounded.model.params["classes"] == 2
    assert rounded.rho >= exact.rho - 2e-6
    assert "rounded: L_m up, μ_m down" in rounded.model.description["workers"]


def test_classes_and_workers_are_validated():
    with pytest.raises(InputError, match="'classes'"):
        WorkerClasses.of(np.ones(3), np.full(3, 0.1), 4)
    with pytest.raises(InputError, match="'classes'"):
        certify("gd", L=1.0, mu=0.1, workers=3, classes=0, alpha=1.0)
    with pytest.raises(InputError, match="'workers'"):
        certify("gd", L=1.0, mu=0.1, workers=0, alpha=1.0)
    with pytest.raises(InputError, match="'window'"):
        build_model("gd", ModelConstants.make(1.0, 0.1), variant="sector", window_steps=2,
                    alpha=1.0)
    with pytest.raises(InputError, match="'model'"):
        build_model("gd", ModelConstants.make(1.0, 0.1), variant="fancy", alpha=1.0)
