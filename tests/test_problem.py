"""Tests of convcheck.problem: certified optima on every embedded and LIBSVM dataset, bad input.

Every check recomputes what it needs from the raw dataset with its own code: max-abs scaling,
±1 labels, ``f``, ``∇f`` and ``H = (1/M) Σ_m A_mᵀA_m / n_m`` (docs/algorithms.md §1), so nothing is
checked against the pipeline that produced it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit

from convcheck.data import DATASETS, load_dataset
from convcheck.errors import InputError
from convcheck.objectives import FAMILIES
from convcheck.optimum import CROSS_CHECK_SOLVERS
from convcheck.problem import Problem, build_problem

EPS = np.finfo(float).eps
#: Embedded datasets (no data folder needed); every family that accepts their task.
#: "quadratics" (4 rows by default) cannot be split over 10 workers; tests/data/ checks it.
TOO_SMALL = {"quadratics"}
EMBEDDED_CASES = [
    (family, name)
    for name, info in DATASETS.items()
    if not info.needs_data_dir and name not in TOO_SMALL
    for family in FAMILIES
    if family == "ridge" or info.task == "classification"
]
#: The iid split and one heterogeneous split (label-skewed Dirichlet, unequal shard sizes).
SPLITS = [("iid", None), ("dirichlet", 0.5)]
LIBSVM_SETS = ["mushrooms", "phishing", "a9a", "w8a"]


# ---------------------------------------------------------------------------------------------
# Independent reference: f, ∇f and H from the raw data
# ---------------------------------------------------------------------------------------------


@dataclass
class Reference:
    """``f(θ) = (1/M) Σ_m (1/n_m) Σ_{i∈S_m} ℓ(a_iᵀθ, b_i) + (λ/2)‖θ‖² + λ_nc Σ_j θ_j²/(1+θ_j²)``."""

    family: str
    X: np.ndarray | sp.csr_matrix
    b: np.ndarray
    shards: tuple[np.ndarray, ...]
    lam: float
    lam_nc: float

    def _rows(self):
        for rows in self.shards:
            yield self.X[rows], self.b[rows]

    def value(self, theta: np.ndarray) -> float:
        total = 0.0
        for A, b in self._rows():
            z = A @ theta
            loss = 0.5 * (z - b) ** 2 if self.family == "ridge" else np.logaddexp(0.0, -b * z)
            total += loss.mean()
        squares = theta**2
        return (total / len(self.shards) + 0.5 * self.lam * squares.sum()
                + self.lam_nc * (squares / (1.0 + squares)).sum())

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        total = np.zeros(theta.size)
        for A, b in self._rows():
            z = A @ theta
            slope = z - b if self.family == "ridge" else -b * expit(-b * z)
            total += A.T @ slope / b.size
        return (total / len(self.shards) + self.lam * theta
                + 2.0 * self.lam_nc * theta / (1.0 + theta**2) ** 2)

    def gram(self) -> np.ndarray:
        """``H = (1/M) Σ_m A_mᵀA_m / n_m``, dense."""
        total = np.zeros((self.X.shape[1],) * 2)
        for A, b in self._rows():
            gram = A.T @ A
            total += (gram.toarray() if sp.issparse(gram) else gram) / b.size
        return total / len(self.shards)


def reference_for(problem: Problem, data_dir: Path | None = None) -> Reference:
    """Reload the raw dataset and redo max-abs scaling and the ±1 labels by hand."""
    settings = problem.settings
    assert settings["scaling"] == "maxabs" and not settings["intercept"]
    raw = load_dataset(settings["dataset"], data_dir=data_dir, **settings["dataset_params"])
    X = raw.X
    if sp.issparse(X):
        scale = np.asarray(abs(X).max(axis=0).todense()).ravel()
        scale[scale == 0] = 1.0
        X = sp.csr_matrix(X @ sp.diags(1.0 / scale))
    else:
        scale = np.abs(X).max(axis=0)
        scale[scale == 0] = 1.0
        X = X / scale
    if raw.task == "regression":
        b = raw.y.astype(float)
    else:  # two classes: the larger is +1; more: the upper half of the sorted classes
        classes = np.unique(raw.y)
        b = np.where(raw.y >= classes[classes.size // 2], 1.0, -1.0)
    return Reference(problem.objective.family, X, b, problem.split.shards,
                     settings["lam"], settings["lam_nc"])


# ---------------------------------------------------------------------------------------------
# What "certified" means, checked against the reference
# ---------------------------------------------------------------------------------------------


def check_constants(problem: Problem, ref: Reference) -> None:
    """L and μ of docs/algorithms.md §1 from ``eigh`` of the reference ``H``."""
    eigenvalues = np.linalg.eigvalsh(ref.gram())
    top, bottom = eigenvalues[-1], eigenvalues[0]
    c = problem.constants
    if ref.family == "ridge":
        assert c.L == pytest.approx(top + ref.lam, rel=1e-10)
        roundoff = 100 * ref.X.shape[1] * EPS * top
        if c.mu > 0:
            assert c.mu == pytest.approx(bottom + ref.lam, rel=1e-8, abs=roundoff)
            assert c.problem_class == "strongly convex"
        else:  # H singular: its smallest eigenvalue is round-off
            assert ref.lam == 0 and abs(bottom) <= roundoff
            assert c.problem_class == "convex"
    else:
        assert c.L == pytest.approx(top / 4 + ref.lam + 2 * ref.lam_nc, rel=1e-10)
        assert c.curvature_lower == pytest.approx(ref.lam - ref.lam_nc / 2, rel=1e-12)
        assert c.problem_class == ("nonconvex" if ref.lam_nc > 0 else "strongly convex")


def check_certified(problem: Problem, ref: Reference) -> None:
    """Newton target met, gap bound, and the cvxpy cross-check consistent with strong convexity."""
    opt, mu = problem.optimum, problem.constants.mu
    if problem.constants.problem_class == "nonconvex":
        assert opt.f_low == 0.0 and opt.cross_check is None
        assert opt.theta is None and opt.value is None and opt.gap_bound is None
        assert opt.grad_norm is None and opt.iterations == 0
        return
    theta = opt.theta
    grad0 = float(np.linalg.norm(ref.gradient(np.zeros(theta.size))))
    value = ref.value(theta)
    # the target ‖∇f(θ̂)‖ ≤ 1e-10·max(1, ‖∇f(θ⁰)‖), met by the reference gradient too
    assert opt.tolerance == pytest.approx(1e-10 * max(1.0, grad0), rel=1e-9)
    assert opt.grad_norm <= opt.tolerance
    assert np.linalg.norm(ref.gradient(theta)) <= opt.tolerance + 64 * EPS * max(1.0, grad0)
    assert opt.value == pytest.approx(value, rel=1e-12, abs=1e-15)
    rounding = 64 * EPS * max(1.0, abs(value))  # error of one evaluation of f
    if mu > 0:
        assert opt.gap_bound == pytest.approx(opt.grad_norm**2 / (2 * mu), rel=1e-12)
        assert opt.gap_bound <= opt.tolerance**2 / (2 * mu)
        assert opt.gap_bound <= 1e-12 * max(1.0, abs(value))  # tiny next to cvxpy's 1e-6
        assert opt.f_low == pytest.approx(opt.value - opt.gap_bound, rel=1e-15, abs=1e-300)
    else:
        assert opt.gap_bound is None and "uncertified" in opt.certificate
        assert opt.f_low == opt.value
    check = opt.cross_check
    assert check is not None, "convex problems this small get a cvxpy cross-check by default"
    # Clarabel first; SCS where Clarabel fails (rank-deficient least squares, a9a/phishing)
    assert check.solver in CROSS_CHECK_SOLVERS and check.status.startswith("optimal"), check
    assert check.tolerance == pytest.approx(1e-6 * max(1.0, abs(value)), rel=1e-12)
    assert check.agrees and abs(check.value_difference) <= check.tolerance, check
    # nothing cvxpy finds lies below the certified lower bound f_low ≤ f*
    assert check.value >= opt.f_low - rounding, check
    if mu > 0:
        # μ-strong convexity: ‖θ − θ*‖² ≤ 2(f(θ) − f*)/μ, f(θ_cvx) − f* ≤ Δf + gap bound,
        # and ‖θ̂ − θ*‖ ≤ ‖∇f(θ̂)‖/μ
        excess = max(check.value_difference + opt.gap_bound + rounding, 0.0)
        assert check.distance <= np.sqrt(2 * excess / mu) + opt.grad_norm / mu, check


def check_split(problem: Problem, n_samples: int, workers: int) -> None:
    shards = problem.split.shards
    assert len(shards) == workers == problem.objective.n_workers
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(n_samples))


# ---------------------------------------------------------------------------------------------
# Every family on every embedded dataset, default settings
# ---------------------------------------------------------------------------------------------


def test_embedded_cases_cover_every_family():
    assert {family for family, _ in EMBEDDED_CASES} == set(FAMILIES)
    names = {name for _, name in EMBEDDED_CASES}
    assert names | TOO_SMALL == {n for n, info in DATASETS.items() if not info.needs_data_dir}
    assert {"digits", "diabetes", "synthetic-regression"} <= names


@pytest.mark.parametrize(("split", "alpha"), SPLITS)
@pytest.mark.parametrize(("family", "name"), EMBEDDED_CASES)
def test_default_problem_is_certified(family, name, split, alpha):
    problem = build_problem(family, name, split=split, dirichlet_alpha=alpha)
    ref = reference_for(problem)
    expected = {"ridge": (0.0, 0.0), "logistic": (1e-3, 0.0), "nonconvex-logistic": (0.0, 0.1)}
    assert (ref.lam, ref.lam_nc) == expected[family]
    assert (problem.objective.lam, problem.objective.lam_nc) == expected[family]
    assert problem.settings["workers"] == 10 and problem.settings["split"] == split
    check_split(problem, ref.b.size, 10)
    if split == "iid":
        assert np.ptp(problem.split.sizes) <= 1
    else:
        assert problem.split.params["dirichlet_alpha"] == alpha
    check_constants(problem, ref)
    check_certified(problem, ref)
    described = problem.describe()
    assert described["constants"]["mu"] == problem.constants.mu
    assert described["optimum"]["f_low"] == problem.optimum.f_low


def test_cross_check_can_be_turned_off_and_forced():
    assert build_problem("ridge", "iris", cross_check=False).optimum.cross_check is None
    forced = build_problem("logistic", "iris", cross_check=True).optimum.cross_check
    assert forced is not None and forced.agrees


# ---------------------------------------------------------------------------------------------
# LIBSVM sets, 10 workers, sorted (label-skewed) split
# ---------------------------------------------------------------------------------------------


def report(name: str, problem: Problem, seconds: float) -> None:
    c, opt = problem.constants, problem.optimum
    check = opt.cross_check
    gap = "—" if opt.gap_bound is None else f"{opt.gap_bound:.2e}"
    print(
        f"\n{name:9s} {problem.settings['problem']:8s} λ={problem.settings['lam']:g}: "
        f"{c.problem_class}, L={c.L:.4g}, μ={c.mu:.3g}, ‖∇f(θ̂)‖={opt.grad_norm:.2e} "
        f"(tol {opt.tolerance:.2e}), gap≤{gap}, Newton {opt.iterations} it; cvxpy "
        f"{check.status}: Δf={check.value_difference:.2e}, ‖Δθ‖={check.distance:.2e}, "
        f"{check.seconds:.1f} s; total {seconds:.1f} s"
    )


def sorted_check(problem: Problem, ref: Reference) -> None:
    """Sorted by label: each shard's labels all precede the next shard's."""
    labels = [ref.b[rows] for rows in problem.split.shards]
    assert all(a.max() <= b.min() for a, b in zip(labels, labels[1:], strict=False))


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("family", ["logistic", "ridge"])
@pytest.mark.parametrize("name", LIBSVM_SETS)
def test_libsvm_certified(shared_data, name, family):
    """λ = 1e-3 for both: every LIBSVM design here is rank-deficient, so ridge needs λ > 0."""
    start = time.perf_counter()
    problem = build_problem(family, name, workers=10, split="sorted", lam=1e-3,
                            data_dir=str(shared_data))
    seconds = time.perf_counter() - start
    report(name, problem, seconds)
    ref = reference_for(problem, shared_data)
    check_split(problem, ref.b.size, 10)
    sorted_check(problem, ref)
    assert problem.constants.problem_class == "strongly convex"
    check_constants(problem, ref)
    check_certified(problem, ref)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize(
    "name",
    [
        "mushrooms",
        "phishing",
        "a9a",
        "w8a",
    ],
)
def test_libsvm_unregularized_ridge(shared_data, name):
    """Default ridge (λ = 0): convex but not strongly convex, so no gap certificate."""
    start = time.perf_counter()
    problem = build_problem("ridge", name, workers=10, split="sorted", data_dir=str(shared_data))
    seconds = time.perf_counter() - start
    ref = reference_for(problem, shared_data)
    gram = ref.gram()
    assert np.linalg.matrix_rank(gram) < gram.shape[0]  # so μ = λmin(H) = 0 is right
    assert problem.constants.problem_class == "convex"
    report(name, problem, seconds)
    check_constants(problem, ref)
    check_certified(problem, ref)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("lasso", "iris"), {}, "problem"),
        (("ridge", "no-such-set"), {}, "dataset"),
        (("logistic", "diabetes"), {}, "dataset"),  # regression data for a binary loss
        (("ridge", "iris"), {"workers": 0}, "workers"),
        (("ridge", "iris"), {"workers": 151}, "workers"),  # more workers than rows
        (("ridge", "iris"), {"split": "random"}, "split"),
        (("ridge", "iris"), {"split": "dirichlet"}, "dirichlet_alpha"),  # α missing
        (("ridge", "iris"), {"dirichlet_alpha": 0.5}, "dirichlet_alpha"),  # α without Dirichlet
        (("ridge", "iris"), {"lam": -1.0}, "lam"),
        (("ridge", "iris"), {"scaling": "minmax"}, "scaling"),
        (("ridge", "synthetic-regression"), {"dataset_params": {"size": 5}}, "size"),
    ],
)
def test_bad_input_names_the_field(args, kwargs, field):
    with pytest.raises(InputError) as caught:
        build_problem(*args, **kwargs)
    assert caught.value.field == field
    assert repr(field) in str(caught.value)
