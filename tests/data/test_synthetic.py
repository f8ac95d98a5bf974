"""Synthetic sets: exact spectra, groups, heterogeneity, determinism; quadratics."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.data import load_dataset, make_synthetic_classification, make_synthetic_regression
from convcheck.errors import InputError
from tests.data.helpers import group_grams, is_separable, recession_gain


@pytest.mark.parametrize(
    ("kappa", "n_groups", "spread", "n"),
    [(10.0, 1, 0.0, 400), (1000.0, 1, 0.0, 300), (100.0, 4, 0.5, 403), (37.5, 3, 3.0, 200)],
)
@pytest.mark.parametrize("make", [make_synthetic_regression, make_synthetic_classification])
def test_synthetic_condition_number_is_exact(make, kappa, n_groups, spread, n):
    ds = make(n, 12, condition_number=kappa, n_groups=n_groups, scale_spread=spread,
              heterogeneity=0.3, seed=3)
    eig = np.linalg.eigvalsh(ds.X.T @ ds.X / n)
    assert eig[-1] / eig[0] == pytest.approx(kappa, rel=1e-8)
    assert eig[-1] == pytest.approx(1.0, rel=1e-10)  # documented normalisation λ_max = 1
    # the average of the per-group Hessians (natural split) has the same condition number
    eig_avg = np.linalg.eigvalsh(np.mean(group_grams(ds), axis=0))
    assert eig_avg[-1] / eig_avg[0] == pytest.approx(kappa, rel=1e-8)
    sizes = [len(c) for c in np.array_split(np.arange(n), n_groups)]
    np.testing.assert_array_equal(np.bincount(ds.groups), sizes)


def test_group_grams_share_eigenvectors_and_spread_changes_lm():
    ds = make_synthetic_regression(500, 8, condition_number=50.0, n_groups=5, scale_spread=1.0,
                                   heterogeneity=1.0, seed=11)
    grams = group_grams(ds)
    total = ds.X.T @ ds.X / ds.n_samples
    _, Q = np.linalg.eigh(total)
    for H in grams:
        rotated = Q.T @ H @ Q  # diagonal iff H has the eigenvectors of the global Gram matrix
        assert np.abs(rotated - np.diag(np.diag(rotated))).max() < 1e-12 * np.abs(rotated).max()
        for other in grams:
            assert np.abs(H @ other - other @ H).max() < 1e-12
    lm = np.array([np.linalg.eigvalsh(H)[-1] for H in grams])
    # scales c_g = 2^t, t evenly in [-1, 1] and equal group sizes: L_m ∝ c_g², ratio 16
    assert lm.max() / lm.min() == pytest.approx(16.0, rel=1e-10)
    np.testing.assert_allclose(lm, ds.meta["group_gram_factors"], rtol=1e-10)
    flat = make_synthetic_regression(500, 8, condition_number=50.0, n_groups=5, seed=11)
    lm_flat = [np.linalg.eigvalsh(H)[-1] for H in group_grams(flat)]
    np.testing.assert_allclose(lm_flat, 1.0, rtol=1e-10)


def test_synthetic_same_seed_same_data_other_seed_other_data():
    kwargs = dict(condition_number=20.0, n_groups=2, heterogeneity=0.5, scale_spread=0.2)
    a = make_synthetic_classification(200, 6, seed=5, **kwargs)
    b = make_synthetic_classification(200, 6, seed=5, **kwargs)
    c = make_synthetic_classification(200, 6, seed=6, **kwargs)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.groups, b.groups)
    assert not np.allclose(a.X, c.X)
    assert np.any(a.y != c.y)
    r = make_synthetic_regression(200, 6, seed=5, **kwargs)
    np.testing.assert_array_equal(r.X, a.X)  # one design for both tasks
    assert set(np.unique(a.y)) == {-1.0, 1.0}


@pytest.mark.parametrize("heterogeneity", [0.0, 0.7])
def test_heterogeneity_sets_the_distance_of_the_group_optima(heterogeneity):
    ds = make_synthetic_regression(300, 5, n_groups=3, heterogeneity=heterogeneity, noise=0.0,
                                   seed=2)
    # recover θ_g independently, by least squares on each group's rows
    recovered = np.array([np.linalg.lstsq(ds.X[ds.groups == g], ds.y[ds.groups == g],
                                          rcond=None)[0] for g in range(3)])
    np.testing.assert_allclose(recovered, ds.meta["theta_groups"], atol=1e-10)
    distances = np.linalg.norm(recovered - ds.meta["theta_star"], axis=1)
    np.testing.assert_allclose(distances, heterogeneity, atol=1e-10)
    if heterogeneity == 0.0:
        np.testing.assert_array_equal(ds.meta["theta_groups"], ds.meta["theta_groups"][[0, 0, 0]])


def test_synthetic_classification_is_not_separable_when_n_is_large():
    ds = make_synthetic_classification(2000, 10, condition_number=5.0, seed=1)
    assert not is_separable(ds.X, ds.y)
    assert recession_gain(ds.X, ds.y) < 1e-7  # so unregularized logistic has a minimizer
    # and the labels follow the model: the mean label sign agrees with sign(aᵀθ*) well above 50%
    agree = np.mean(np.sign(ds.X @ ds.meta["theta_star"]) == ds.y)
    assert 0.55 < agree < 0.95


def test_synthetic_needs_enough_rows_per_group():
    with pytest.raises(InputError, match=r"'n_samples'.*n_groups \* n_features = 40") as info:
        make_synthetic_regression(39, 10, n_groups=4)
    assert info.value.field == "n_samples"
    with pytest.raises(InputError, match="'condition_number'"):
        make_synthetic_regression(100, 5, condition_number=0.5)
    with pytest.raises(InputError, match=r"'noise'.*\[0, 0.5\]"):
        make_synthetic_classification(100, 5, noise=0.7)


def test_quadratics_are_half_squared_distances_to_the_centers():
    from convcheck.problem import build_problem

    centers = [[10.0, 0.0, 1.0], [-10.0, 0.0, 2.0], [3.0, 3.0, 3.0]]
    problem = build_problem("ridge", "quadratics", workers=3, split="natural", scaling="none",
                            lam=0.0, dataset_params={"centers": centers}, cross_check=False)
    x = np.array([0.5, -1.0, 2.0])
    c = np.array(centers)
    np.testing.assert_allclose(problem.objective.worker_values(x),
                               0.5 * ((x - c) ** 2).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(problem.optimum.theta, c.mean(axis=0), atol=1e-12)
    f_star = load_dataset("quadratics", centers=centers).meta["f_star"]
    assert problem.optimum.value == pytest.approx(f_star, rel=1e-13)
    assert problem.constants.L == pytest.approx(1.0) and problem.constants.mu == pytest.approx(1.0)
    with pytest.raises(InputError) as info:
        load_dataset("quadratics", centers=[1.0, 2.0])
    assert info.value.field == "centers"

