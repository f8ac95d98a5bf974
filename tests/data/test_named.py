"""Named real datasets: scikit-learn's, LIBSVM and MNIST (the real files skip when absent)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from convcheck.data import DATASETS, load_dataset
from convcheck.errors import DataFileError
from tests.data.helpers import check_separability_claim, counts


@pytest.mark.parametrize(
    ("name", "shape", "n_classes"),
    [("digits", (1797, 64), 10), ("breast-cancer", (569, 30), 2), ("wine", (178, 13), 3),
     ("iris", (150, 4), 3), ("diabetes", (442, 10), None)],
)
def test_sklearn_builtins(name, shape, n_classes):
    ds = load_dataset(name)
    assert ds.X.shape == shape and ds.X.dtype == np.float64 and ds.name == name
    assert ds.task == DATASETS[name].task and not DATASETS[name].needs_data_dir
    if n_classes is None:
        assert ds.task == "regression"
    else:
        assert ds.classes.size == n_classes


def test_fashion_mnist_absent_says_how_to_supply_it(tmp_path):
    with pytest.raises(DataFileError, match="not available offline") as info:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    message = str(info.value)
    assert "idx:" in message and str(tmp_path) in message and "fashion-mnist/" in message
    assert "data download" not in message  # it cannot be downloaded


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "shape", "label_counts"),
    [
        ("a9a", (32561, 123), {-1.0: 24720, 1.0: 7841}),
        ("w8a", (49749, 300), {-1.0: 48270, 1.0: 1479}),
        ("mushrooms", (8124, 112), {1.0: 3916, 2.0: 4208}),
        ("phishing", (11055, 68), {0.0: 4898, 1.0: 6157}),
    ],
)
def test_libsvm_sets(shared_data, name, shape, label_counts):
    ds = load_dataset(name, data_dir=shared_data)
    assert sp.isspmatrix_csr(ds.X) and ds.X.dtype == np.float64
    assert ds.X.shape == shape and counts(ds.y) == label_counts
    if name == "phishing":  # README: 30 non-zeros of 1/√30 per row, so unit rows
        np.testing.assert_array_equal(np.diff(ds.X.indptr), 30)
        np.testing.assert_allclose(sp.linalg.norm(ds.X, axis=1), 1.0, atol=1e-4)
    if name == "mushrooms":  # all 8124 rows distinct (README)
        assert np.unique(ds.X.toarray(), axis=0).shape[0] == 8124


@pytest.mark.parametrize("name", ["digits", "breast-cancer", "wine", "iris"])
def test_separability_claims_of_builtins(name):
    check_separability_claim(load_dataset(name))


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["a9a", "w8a", "mushrooms", "phishing"])
def test_separability_claims_of_libsvm_sets(shared_data, name):
    check_separability_claim(load_dataset(name, data_dir=shared_data))


@pytest.mark.shared_data
def test_mnist(shared_data):
    train = load_dataset("mnist", data_dir=shared_data)
    assert train.X.shape == (60000, 784) and train.X.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(train.y.astype(int)),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert train.X.min() == 0.0 and train.X.max() == 1.0
    test = load_dataset("mnist", data_dir=shared_data, part="test")
    assert test.X.shape == (10000, 784) and test.name == "mnist-test"
    np.testing.assert_array_equal(np.bincount(test.y.astype(int)),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])

