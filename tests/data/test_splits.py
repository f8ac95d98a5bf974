"""Splits of a dataset over workers: partitions, skew, determinism, validation."""

from __future__ import annotations

import numpy as np
import pytest

from convcheck.data import load_dataset, make_synthetic_regression, split_dataset
from convcheck.errors import InputError
from tests.data.helpers import assert_partition, label_skew


@pytest.mark.parametrize("workers", [1, 7, 10])
@pytest.mark.parametrize("method", ["iid", "sorted", "dirichlet"])
def test_split_is_a_partition(digits, method, workers):
    alpha = 0.5 if method == "dirichlet" else None
    split = split_dataset(digits, workers, method, dirichlet_alpha=alpha, seed=4, min_shard_size=20)
    assert_partition(split, digits.n_samples, workers)
    assert split.method == method
    if method == "dirichlet":
        assert split.sizes.min() >= 20
        assert split.params["dirichlet_alpha"] == 0.5
    else:  # near-equal sizes, exactly those of np.array_split
        expected = [len(c) for c in np.array_split(np.arange(digits.n_samples), workers)]
        np.testing.assert_array_equal(split.sizes, expected)


def test_natural_split_follows_the_groups():
    ds = make_synthetic_regression(103, 4, n_groups=4, seed=0)
    split = split_dataset(ds, 4, "natural")
    assert_partition(split, 103, 4)
    for g, shard in enumerate(split.shards):
        np.testing.assert_array_equal(shard, np.flatnonzero(ds.groups == g))


def test_sorted_split_gives_each_worker_few_labels(digits):
    split = split_dataset(digits, 10, "sorted")
    labels = [np.unique(digits.y[s]) for s in split.shards]
    # ~180 rows per worker and per class (smallest class: 174): at most 3 labels, mostly 2
    assert max(lab.size for lab in labels) <= 3
    assert np.mean([lab.size for lab in labels]) <= 2.2
    assert all(np.unique(digits.y[s]).size == 10 for s in split_dataset(digits, 10).shards)
    for left, right in zip(labels, labels[1:], strict=False):  # contiguous in label order
        assert left.max() <= right.min()
    diabetes = load_dataset("diabetes")
    shards = split_dataset(diabetes, 5, "sorted").shards
    for left, right in zip(shards, shards[1:], strict=False):
        assert diabetes.y[left].max() <= diabetes.y[right].min()


def test_dirichlet_small_alpha_is_more_skewed(digits):
    iid = label_skew(digits, split_dataset(digits, 10, "iid", seed=1))
    skews = {alpha: label_skew(digits, split_dataset(digits, 10, "dirichlet",
                                                      dirichlet_alpha=alpha, seed=1))
             for alpha in (0.05, 1.0, 1000.0)}
    assert skews[0.05] > 0.6
    assert skews[0.05] > skews[1.0] > skews[1000.0]
    assert skews[1000.0] < 0.1 and iid < 0.1


def test_dirichlet_on_regression_uses_quantile_classes():
    diabetes = load_dataset("diabetes")
    split = split_dataset(diabetes, 4, "dirichlet", dirichlet_alpha=0.1, seed=0, min_shard_size=10)
    assert_partition(split, diabetes.n_samples, 4)
    assert split.sizes.min() >= 10
    means = [diabetes.y[s].mean() for s in split.shards]
    assert np.ptp(means) > 20  # skewed targets: shard means differ (target std is about 77)


@pytest.mark.parametrize(("method", "alpha"), [("iid", None), ("dirichlet", 0.3)])
def test_split_determinism(digits, method, alpha):
    first = split_dataset(digits, 6, method, dirichlet_alpha=alpha, seed=123)
    again = split_dataset(digits, 6, method, dirichlet_alpha=alpha, seed=123)
    other = split_dataset(digits, 6, method, dirichlet_alpha=alpha, seed=124)
    for a, b in zip(first.shards, again.shards, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(a.size != b.size or np.any(a != b)
               for a, b in zip(first.shards, other.shards, strict=True))


def test_dirichlet_gives_up_with_a_clear_error():
    iris = load_dataset("iris")
    with pytest.raises(InputError, match="larger dirichlet_alpha or fewer workers") as info:
        split_dataset(iris, 50, "dirichlet", dirichlet_alpha=0.001, min_shard_size=3)
    assert info.value.field == "dirichlet_alpha"


def test_split_validation(digits):
    cancer = load_dataset("breast-cancer")
    for workers in (570, 0, 2.5):
        with pytest.raises(InputError, match=r"an integer in \[1, 569\]") as info:
            split_dataset(cancer, workers)
        assert info.value.field == "workers"
    with pytest.raises(InputError, match="'iid', 'sorted', 'dirichlet', 'natural'") as info:
        split_dataset(cancer, 2, "random")
    assert info.value.field == "split"
    with pytest.raises(InputError, match="required by split = 'dirichlet'") as info:
        split_dataset(cancer, 2, "dirichlet")
    assert info.value.field == "dirichlet_alpha"
    for alpha in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match=r"\(0, inf\)") as info:
            split_dataset(cancer, 2, "dirichlet", dirichlet_alpha=alpha)
        assert info.value.field == "dirichlet_alpha"
    with pytest.raises(InputError, match="'dirichlet_alpha'.*unless split = 'dirichlet'"):
        split_dataset(cancer, 2, "iid", dirichlet_alpha=1.0)
    with pytest.raises(InputError, match="without groups") as info:
        split_dataset(cancer, 2, "natural")
    assert info.value.field == "split"
    grouped = make_synthetic_regression(60, 3, n_groups=3)
    with pytest.raises(InputError, match="3, the number of groups") as info:
        split_dataset(grouped, 4, "natural")
    assert info.value.field == "workers"
    with pytest.raises(InputError, match=r"'min_shard_size'.*\[1, 284\]"):
        split_dataset(cancer, 2, "dirichlet", dirichlet_alpha=1.0, min_shard_size=285)

