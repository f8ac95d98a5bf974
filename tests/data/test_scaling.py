"""Feature scalings (against scikit-learn) and the intercept column."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from convcheck.data import add_intercept, load_dataset, make_dataset, scale_features
from convcheck.errors import InputError


def test_scalings_match_scikit_learn():
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler, normalize

    cancer = load_dataset("breast-cancer")
    std = scale_features(cancer, "standard")
    np.testing.assert_allclose(std.X, StandardScaler().fit_transform(cancer.X), atol=1e-12)
    assert std.name == "breast-cancer+standard" and "standard scaling" in std.source
    assert scale_features(cancer, "none") is cancer

    rng = np.random.default_rng(0)
    X = sp.random(50, 7, density=0.3, format="csr", random_state=rng) * 5 - sp.eye(50, 7) * 2
    X = sp.vstack([X, sp.csr_matrix((1, 7))], format="csr")  # one all-zero row
    ds = make_dataset("toy", X, np.arange(51) % 2, task="classification", source="test")
    maxabs = scale_features(ds, "maxabs")
    assert sp.isspmatrix_csr(maxabs.X)
    np.testing.assert_allclose(maxabs.X.toarray(), MaxAbsScaler().fit_transform(X).toarray())
    rows = scale_features(ds, "unit-rows")
    assert sp.isspmatrix_csr(rows.X)
    np.testing.assert_allclose(rows.X.toarray(), normalize(X).toarray())
    np.testing.assert_array_equal(rows.X.toarray()[-1], 0.0)
    dense_rows = scale_features(cancer, "unit-rows")
    np.testing.assert_allclose(np.linalg.norm(dense_rows.X, axis=1), 1.0)

    with_one = add_intercept(ds)
    assert sp.isspmatrix_csr(with_one.X) and with_one.X.shape == (51, 8)
    np.testing.assert_array_equal(with_one.X.toarray()[:, -1], 1.0)
    np.testing.assert_array_equal(with_one.X.toarray()[:, :-1], X.toarray())
    assert add_intercept(cancer).X.shape == (569, 31)


def test_standard_scaling_refuses_sparse():
    ds = make_dataset("toy", sp.eye(4, format="csr"), [0, 1, 0, 1], task="classification",
                      source="test")
    with pytest.raises(InputError, match="'maxabs'") as info:
        scale_features(ds, "standard")
    assert info.value.field == "scaling"
    with pytest.raises(InputError, match="'unit-rows'") as info:
        scale_features(ds, "zscore")
    assert info.value.field == "scaling"

