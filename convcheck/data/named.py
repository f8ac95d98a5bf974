"""Named real datasets: scikit-learn's bundled sets, the LIBSVM files and MNIST-layout folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from convcheck.data.dataset import Dataset, make_dataset
from convcheck.data.formats import load_idx_dataset, load_svmlight
from convcheck.data.location import find_data_files, search_path
from convcheck.errors import DataFileError, check_choice

# name: (files, n_features, zero_based); every listed file is loaded and the rows stacked.
LIBSVM_SETS: dict[str, tuple[tuple[str, ...], int, bool]] = {
    "a9a": (("a9a.gz",), 123, False),
    "w8a": (("w8a.gz",), 300, False),
    "mushrooms": (("mushrooms.gz", "mushrooms.t.gz"), 112, True),
    "phishing": (("phishing.gz", "phishing.t.gz"), 68, True),
}


def data_files(name: str) -> tuple[str, ...]:
    """The files (LIBSVM) or folder (MNIST layouts) a file-backed dataset reads, relative to a
    data folder."""
    if name in LIBSVM_SETS:
        return tuple(f"libsvm/{file}" for file in LIBSVM_SETS[name][0])
    return (name,)


def load_libsvm(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load a LIBSVM binary-classification set from ``<data folder>/libsvm/``.

    a9a (32561 × 123) and w8a (49749 × 300): the standard training file only (one-based).
    mushrooms (8124 × 112) and phishing (11055 × 68): stored zero-based as a shuffled 70/30
    pair ``name.gz`` + ``name.t.gz`` that together hold every row; both are stacked.
    Labels are kept as in the files (±1; mushrooms 1/2; phishing 0/1); X stays sparse CSR.
    The data folder is the first of :func:`~convcheck.data.location.search_path` holding
    every file.
    """
    check_choice("dataset", name, LIBSVM_SETS, "load_libsvm")
    files, n_features, zero_based = LIBSVM_SETS[name]
    folder = find_data_files(data_files(name), data_dir, name) / "libsvm"
    parts = [
        load_svmlight(folder / f, n_features=n_features, zero_based=zero_based) for f in files
    ]
    X = sp.vstack([p.X for p in parts], format="csr")
    y = np.concatenate([p.y for p in parts])
    source = f"LIBSVM {name}: " + " + ".join(str(folder / f) for f in files)
    return make_dataset(name, X, y, task="classification", source=source)


SKLEARN_SETS: dict[str, tuple[str, str]] = {
    "digits": ("load_digits", "classification"),
    "breast-cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "iris": ("load_iris", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}


def load_sklearn(name: str) -> Dataset:
    """Load a scikit-learn built-in set (shipped inside scikit-learn; nothing is fetched).

    digits (1797 × 64, pixel counts 0–16, 10 classes), breast-cancer (569 × 30, 2 classes),
    wine (178 × 13, 3 classes), iris (150 × 4, 3 classes): classification with the integer
    class labels. diabetes (442 × 10): regression, features as scikit-learn ships them
    (mean-centred, each column scaled to unit ℓ2 norm).
    """
    import sklearn.datasets

    check_choice("dataset", name, SKLEARN_SETS, "load_sklearn")
    function, task = SKLEARN_SETS[name]
    X, y = getattr(sklearn.datasets, function)(return_X_y=True)
    return make_dataset(name, X, y, task=task, source=f"sklearn.datasets.{function}()")


FASHION_MNIST_FOLDER = "fashion-mnist"


def load_shared_idx(kind: str, *, data_dir: str | Path | None = None,
                    part: str = "train") -> Dataset:
    """``kind`` from ``<data folder>/<kind>/``; a clear error when Fashion-MNIST is not there."""
    if kind != FASHION_MNIST_FOLDER:
        root = find_data_files(data_files(kind), data_dir, kind)
        return load_idx_dataset(root / kind, kind=kind, part=part)
    try:
        root = find_data_files(data_files(kind), data_dir, kind)
    except DataFileError:
        tried = ", ".join(str(folder) for folder, _ in search_path(data_dir))
        raise DataFileError(
            f"Fashion-MNIST is not available offline here (no folder {FASHION_MNIST_FOLDER}/ "
            f"in {tried}). If you have its four IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), "
            "use the dataset 'idx:/path/to/folder' (Python: load_dataset('idx:/path/to/folder', "
            f"kind='fashion-mnist')) or put them in <data folder>/{FASHION_MNIST_FOLDER}/."
        ) from None
    return load_idx_dataset(root / kind, kind=kind, part=part)
