"""Tests of convcheck.data: synthetic spectra, splits, file loaders, scaling and bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from convcheck.data import (
    DATASETS,
    Dataset,
    Split,
    add_intercept,
    find_data_dir,
    load_dataset,
    load_idx_dataset,
    load_libsvm,
    load_svmlight,
    make_dataset,
    make_synthetic_classification,
    make_synthetic_regression,
    read_idx,
    scale_features,
    split_dataset,
)
from convcheck.errors import DataFileError, InputError

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def group_grams(ds: Dataset) -> list[np.ndarray]:
    """H_g = A_gᵀA_g / n_g computed directly from the rows of each group."""
    return [
        ds.X[ds.groups == g].T @ ds.X[ds.groups == g] / np.sum(ds.groups == g)
        for g in np.unique(ds.groups)
    ]


def assert_partition(split: Split, n: int, workers: int) -> None:
    """Shards: int64, strictly increasing, disjoint, covering range(n)."""
    assert split.n_workers == workers
    for shard in split.shards:
        assert shard.dtype == np.int64
        assert np.all(np.diff(shard) > 0)
    everything = np.concatenate(split.shards)
    assert everything.size == n
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))


def label_skew(ds: Dataset, split: Split) -> float:
    """Mean total-variation distance between each shard's label mix and the global one."""
    classes, codes = np.unique(ds.y, return_inverse=True)
    overall = np.bincount(codes, minlength=classes.size) / codes.size
    distances = [
        0.5 * np.abs(np.bincount(codes[s], minlength=classes.size) / s.size - overall).sum()
        for s in split.shards
    ]
    return float(np.mean(distances))


def write_idx(path: Path, array: np.ndarray, *, magic: int | None = None,
              compress: bool = True, drop: int = 0) -> Path:
    """Write a uint8 array as an IDX file (optionally with a wrong magic or missing bytes)."""
    magic = magic if magic is not None else {3: 2051, 1: 2049}[array.ndim]
    raw = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    raw = raw[: len(raw) - drop]
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_idx_set(directory: Path, prefix: str, images: np.ndarray, labels: np.ndarray,
                  compress: bool = True) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)


def recession_gain(X: np.ndarray | sp.spmatrix, y: np.ndarray) -> float:
    """max Σ_i y_i a_iᵀw over y_i a_iᵀw >= 0 ∀i, |w_j| <= 1 (LP, labels mapped to ±1).

    Positive iff some direction w lowers no margin and raises one (quasi-complete
    separation), i.e. iff the unregularized logistic loss has no minimizer.
    """
    signs = np.where(y == np.max(y), 1.0, -1.0)
    B = sp.diags(signs) @ sp.csr_matrix(X)
    result = linprog(-np.asarray(B.sum(axis=0)).ravel(), A_ub=-B, b_ub=np.zeros(X.shape[0]),
                     bounds=[(-1.0, 1.0)] * X.shape[1], method="highs")
    assert result.status == 0, result.message
    return -result.fun


def is_separable(X: np.ndarray | sp.spmatrix, y: np.ndarray) -> bool:
    """LP feasibility of y_i (a_iᵀw + b) >= 1 for all i (HiGHS)."""
    signs = np.where(y == np.max(y), 1.0, -1.0)
    A = sp.hstack([sp.csr_matrix(X), np.ones((X.shape[0], 1))], format="csr")
    result = linprog(np.zeros(A.shape[1]), A_ub=-(sp.diags(signs) @ A), b_ub=-np.ones(A.shape[0]),
                     bounds=[(None, None)] * A.shape[1], method="highs")
    assert result.status in (0, 2), result.message  # 0: feasible, 2: infeasible
    return result.status == 0


# ---------------------------------------------------------------------------------------------
# synthetic data
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


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


# ---------------------------------------------------------------------------------------------
# built-ins, scaling, intercept
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# files written here: svmlight, IDX, data dir
# ---------------------------------------------------------------------------------------------


def test_svmlight_reads_what_was_written(tmp_path):
    path = tmp_path / "toy.svm"
    path.write_text("1 1:0.5 3:2\n-1 2:-1.5\n1 4:7\n")
    ds = load_svmlight(path, n_features=5)
    assert sp.isspmatrix_csr(ds.X) and ds.name == "toy.svm"
    expected = np.zeros((3, 5))
    expected[0, 0], expected[0, 2], expected[1, 1], expected[2, 3] = 0.5, 2.0, -1.5, 7.0
    np.testing.assert_array_equal(ds.X.toarray(), expected)
    np.testing.assert_array_equal(ds.y, [1, -1, 1])
    gz = tmp_path / "toy.svm.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    again = load_dataset(f"svmlight:{gz}", n_features=5, zero_based=False, name="toy")
    np.testing.assert_array_equal(again.X.toarray(), expected)
    assert again.name == "toy"


def test_idx_round_trip_and_fashion_layout(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx_set(tmp_path / "fashion-mnist", "train", images, labels)
    write_idx_set(tmp_path / "fashion-mnist", "t10k", images[:2], labels[:2], compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "fashion-mnist/t10k-images-idx3-ubyte"),
                                  images[:2])
    ds = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert ds.name == "fashion-mnist" and ds.X.shape == (5, 12)
    np.testing.assert_array_equal(ds.X, images.reshape(5, 12) / 255.0)
    np.testing.assert_array_equal(ds.y, labels)
    both = load_dataset(f"idx:{tmp_path / 'fashion-mnist'}", kind="fashion-mnist", part="all")
    assert both.name == "fashion-mnist-all" and both.X.shape == (7, 12)
    np.testing.assert_array_equal(both.y, [3, 1, 4, 1, 5, 3, 1])


def test_fashion_mnist_absent_says_how_to_supply_it(tmp_path):
    with pytest.raises(DataFileError, match="not available offline") as info:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    assert "idx:" in str(info.value) and str(tmp_path / "fashion-mnist") in str(info.value)


def test_find_data_dir(tmp_path, monkeypatch):
    assert find_data_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("CONVCHECK_DATA_DIR", str(tmp_path))
    assert find_data_dir() == tmp_path.resolve()
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("CONVCHECK_DATA_DIR", str(missing))
    with pytest.raises(DataFileError, match="CONVCHECK_DATA_DIR") as info:
        find_data_dir()
    assert str(missing) in str(info.value)
    with pytest.raises(DataFileError, match="data_dir argument") as info:
        load_libsvm("a9a", data_dir=missing)
    assert str(missing) in str(info.value)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_unknown_dataset_lists_the_allowed_names():
    with pytest.raises(InputError, match="'dataset' = 'a9b'") as info:
        load_dataset("a9b")
    for allowed in ("a9a", "synthetic-regression", "fashion-mnist", "svmlight:PATH",
                    "idx:DIRECTORY"):
        assert allowed in info.value.allowed
    with pytest.raises(InputError, match="'dataset'"):
        load_dataset("svmlight:")


def test_unknown_loader_parameter_lists_the_allowed_ones():
    with pytest.raises(InputError, match="'n_sample'") as info:
        load_dataset("synthetic-regression", n_sample=10)
    assert info.value.field == "n_sample"
    assert "'n_samples'" in info.value.allowed and "'condition_number'" in info.value.allowed
    with pytest.raises(InputError, match="takes none"):
        load_dataset("iris", seed=1)


def test_missing_files_name_the_path(tmp_path):
    missing = tmp_path / "absent.svm"
    for call in (lambda: load_svmlight(missing), lambda: load_dataset(f"svmlight:{missing}"),
                 lambda: read_idx(missing)):
        with pytest.raises(DataFileError, match="not found") as info:
            call()
        assert str(missing) in str(info.value)
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte") as info:
        load_idx_dataset(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("content", ["1 1:0.5 2:abc\n", "hello world\n", "1 1:0.5 2\n"])
def test_malformed_svmlight(tmp_path, content):
    path = tmp_path / "bad.svm"
    path.write_text(content)
    with pytest.raises(DataFileError, match="<label> <index>:<value>") as info:
        load_svmlight(path)
    assert str(path) in str(info.value)


def test_idx_bad_magic_and_truncation(tmp_path):
    bad = write_idx(tmp_path / "bad.gz", np.zeros((2, 3, 3), np.uint8), magic=2050)
    with pytest.raises(DataFileError, match="not the magic number 2051.*2049") as info:
        read_idx(bad)
    assert str(bad) in str(info.value) and "2050" not in str(info.value)  # bytes not shown
    short = write_idx(tmp_path / "short", np.zeros((4, 2, 3), np.uint8), compress=False, drop=5)
    with pytest.raises(DataFileError, match=r"19 bytes, expected 24 \(= 4 x 2 x 3\)") as info:
        read_idx(short)
    assert str(short) in str(info.value)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"\x00\x00")
    with pytest.raises(DataFileError, match="too short"):
        read_idx(tiny)
    write_idx_set(tmp_path / "set", "train", np.zeros((3, 2, 2), np.uint8),
                  np.zeros(4, np.uint8))
    with pytest.raises(DataFileError, match="3 images but .* 4 labels"):
        load_idx_dataset(tmp_path / "set")


def test_non_finite_values_name_the_field_and_row(tmp_path):
    path = tmp_path / "nan.svm"
    path.write_text("1 1:0.5\n-1 1:1 2:nan\n1 2:inf\n")
    with pytest.raises(InputError, match=r"nan\.svm: invalid 'X' = 'nan in row 1") as info:
        load_svmlight(path)
    assert info.value.field == "X" and "finite" in info.value.allowed
    path.write_text("1 1:0.5\n1 1:1\nnan 2:1\n")
    with pytest.raises(InputError, match=r"invalid 'y' = 'nan in row 2"):
        load_svmlight(path)
    X = np.ones((4, 3))
    X[2, 1] = np.inf
    with pytest.raises(InputError, match=r"dense: invalid 'X' = 'inf in row 2"):
        make_dataset("dense", X, np.zeros(4), task="regression", source="test")
    path.write_text("")
    with pytest.raises(InputError, match="at least one row"):
        load_svmlight(path)


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


# ---------------------------------------------------------------------------------------------
# the real files in ../shared/data (skipped with a message when absent)
# ---------------------------------------------------------------------------------------------


def counts(y: np.ndarray) -> dict[float, int]:
    values, numbers = np.unique(y, return_counts=True)
    return dict(zip(values.tolist(), numbers.tolist(), strict=True))


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


def separability_claim(name: str) -> str | None:
    description = DATASETS[name].description
    for claim in ("quasi-separable", "linearly separable"):
        if claim in description:
            return claim
    return None


def check_separability_claim(ds: Dataset) -> None:
    """The registry's claim, checked by LP on the ±1 labels (both claims: no minimizer)."""
    y = ds.binary_labels()
    claim = separability_claim(ds.name)
    assert claim is not None, f"{ds.name}: the registry says nothing about separability"
    assert is_separable(ds.X, y) == (claim == "linearly separable")
    assert recession_gain(ds.X, y) > 1e-3


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


@pytest.mark.parametrize(("content", "line", "reason"), [
    (b"API_TOKEN=s3cr3t-value\n", 1, "the label (first entry) is not a number"),
    (b"root:x:0:0:operator:/home/op:/bin/bash\n", 1, "the label (first entry) is not a number"),
    (b"1 1:2\n\n# comment\n1 3:x9secret\n", 4, "feature entry 1: the value is not a number"),
    (b"1 2:2 1:3\n", 1, "feature entry 2: indices must be >= 0, increasing and unique"),
    (b"1 s3cr3t\n", 1, "feature entry 1 is not INDEX:VALUE"),
    (b"1 q:1\n", 1, "feature entry 1: the index is not an integer"),
])
def test_svmlight_errors_never_quote_the_file(tmp_path, content, line, reason):
    """A file that is not svmlight (a .env, a password file) is refused with the line number
    and the reason only: none of its content reaches the message."""
    path = tmp_path / ".env"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as info:
        load_svmlight(path)
    message = str(info.value)
    assert f"line {line}: {reason}" in message and str(path) in message
    for secret in ("s3cr3t", "operator", "bash", "x9secret", "q:1"):
        assert secret not in message
