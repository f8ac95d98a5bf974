"""Small problems and finite differences shared by the tests."""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from convcheck.data import Dataset, Split
from convcheck.objectives import make_objective


def small_problem(
    family: str,
    lam: float,
    lam_nc: float,
    *,
    sizes=(40, 25, 33),
    d=6,
    zeros=False,
    sparse=False,
    seed=0,
):
    """Heterogeneous workers (each worker's features shifted differently), shards as given;
    ``zeros`` sets half the entries to 0, ``sparse`` stores the matrix as CSR."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d) + 0.5 * owner[:, None]
    if zeros or sparse:
        X[rng.random(X.shape) < 0.5] = 0.0
    if sparse:
        X = sp.csr_matrix(X)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    permutation = rng.permutation(n)  # shards are not contiguous row ranges
    shards = tuple(np.sort(permutation[owner == m]) for m in range(len(sizes)))
    dataset = Dataset("toy", X, y, "classification", "test")
    return make_objective(family, dataset, Split(shards, "test"), lam=lam, lam_nc=lam_nc)


def finite_difference_gradient(fun, theta, h=1e-6):
    eye = np.eye(theta.size)
    return np.array([(fun(theta + h * e) - fun(theta - h * e)) / (2 * h) for e in eye])


def finite_difference_jacobian(fun, theta, h=1e-6):
    """Columns ``(fun(θ + h e_j) − fun(θ − h e_j)) / 2h``; ``fun`` may return (d,) or (M, d)."""
    eye = np.eye(theta.size)
    return np.stack([(fun(theta + h * e) - fun(theta - h * e)) / (2 * h) for e in eye], axis=-1)


@functools.cache
def engine_problem(
    family: str = "logistic",
    split: str = "sorted",
    workers: int = 5,
    n_samples: int = 300,
    n_features: int = 8,
    lam: float | None = None,
):
    """A small certified :class:`~convcheck.problem.Problem` on synthetic data (cached)."""
    from convcheck.problem import build_problem

    dataset = "synthetic-regression" if family == "ridge" else "synthetic-classification"
    return build_problem(
        family,
        dataset,
        workers=workers,
        split=split,
        lam=lam,
        dataset_params={"n_samples": n_samples, "n_features": n_features},
        cross_check=False,
    )


def bidir_toy_problem():
    """The [BIDIR] toy: three quadratics ½‖x − c·1‖², d = 100, c = (1, 5, 10)."""
    from convcheck.problem import build_problem

    return build_problem(
        "ridge", "bidir-toy", workers=3, split="natural", scaling="none", lam=0.0,
        cross_check=False,
    )


#: A valid case file: GD on a tiny ridge problem, one check and one negative control.
TINY_CASE = """
description = "GD converges on a tiny ridge problem"
suites = ["quick"]

[problem]
family = "ridge"
dataset = "synthetic-regression"
workers = 3
dataset_params = { n_samples = 60, n_features = 4 }

[algorithm]
name = "gd"
alpha = "1/L"

[run]
iterations = 50
seeds = [0, 1]
target = 1e-6

[[checks]]
bound = "converges"

[[negative_controls]]
name = "too few iterations"
bound = "converges"
why = "two rounds cannot reach 1e-6"
run = { iterations = 2 }
"""


#: A case file with placeholders, for :func:`verify_case`.
CASE_HEAD = """
description = "a case that must fail"
suites = ["quick"]

[problem]
family = "{family}"
dataset = "{dataset}"
split = "{split}"
workers = {workers}
{problem_extra}

[algorithm]
{algorithm}

[run]
iterations = {iterations}
seeds = {seeds}
{run_extra}
"""
RIDGE_CASE = {"family": "ridge", "dataset": "synthetic-regression",
              "problem_extra": "dataset_params = { n_samples = 120, n_features = 5 }"}
NONCONVEX_CASE = {"family": "nonconvex-logistic", "dataset": "breast-cancer",
                  "problem_extra": "lam_nc = 0.1"}


#: The checks every synchronous case gets beside its own (convcheck.verification.identities).
IDENTITY_CHECKS = ("invariants", "reductions")


def own_checks(document) -> list[dict]:
    """The rows of a verify document's checks that its case files name (the identity checks
    every synchronous case gets are left out)."""
    return [c for c in document["checks"] if c["name"] not in IDENTITY_CHECKS]


def verify_case(tmp_path, checks, *, problem=RIDGE_CASE, algorithm='name = "gd"\nalpha = "1/L"',
                iterations=200, seeds="[0]", run_extra="", split="sorted", workers=4, tables=""):
    """Write one case (``checks``: its [[checks]] / [[negative_controls]] text; ``tables``: more
    tables such as [async]) and verify it."""
    from convcheck.verification import load_suite, verify

    text = CASE_HEAD.format(algorithm=algorithm, iterations=iterations, seeds=seeds,
                            run_extra=run_extra, split=split, workers=workers,
                            **problem) + tables + "\n" + checks
    (tmp_path / "case.toml").write_text(text)
    return verify(load_suite([tmp_path]))
