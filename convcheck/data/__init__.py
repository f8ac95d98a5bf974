"""Datasets and their split over workers.

A :class:`Dataset` is a design matrix ``X`` (dense ``ndarray`` or ``scipy.sparse.csr_matrix``,
float64, finite) with labels ``y``; a :class:`Split` assigns its rows to ``M`` workers.

Modules: :mod:`~convcheck.data.dataset` (what a dataset is), :mod:`~convcheck.data.location`
(where the real data files are: ``--data-dir``, ``CONVCHECK_DATA``, the user cache),
:mod:`~convcheck.data.download` (fetching them, SHA-256 checked),
:mod:`~convcheck.data.formats` (svmlight and IDX files),
:mod:`~convcheck.data.named` (scikit-learn, LIBSVM and MNIST sets),
:mod:`~convcheck.data.synthetic` (exact spectra, quadratics), :mod:`~convcheck.data.registry`
(every name, :func:`load_dataset`), :mod:`~convcheck.data.scaling`,
:mod:`~convcheck.data.splits`.
"""

from convcheck.data.dataset import TASKS, Dataset, Split, make_dataset
from convcheck.data.formats import load_idx_dataset, load_svmlight, read_idx
from convcheck.data.location import (
    DATA_ENV,
    cache_dir,
    download_dir,
    find_data_dir,
    find_data_files,
    search_path,
)
from convcheck.data.named import LIBSVM_SETS, SKLEARN_SETS, load_libsvm, load_sklearn
from convcheck.data.registry import DATASET_FORMS, DATASETS, DatasetInfo, load_dataset
from convcheck.data.scaling import SCALINGS, add_intercept, scale_features
from convcheck.data.splits import SPLITS, split_dataset
from convcheck.data.synthetic import (
    make_bidir_toy,
    make_quadratics,
    make_synthetic_classification,
    make_synthetic_regression,
)

__all__ = [
    "DATASETS",
    "DATASET_FORMS",
    "DATA_ENV",
    "LIBSVM_SETS",
    "SCALINGS",
    "SKLEARN_SETS",
    "SPLITS",
    "TASKS",
    "Dataset",
    "DatasetInfo",
    "Split",
    "add_intercept",
    "cache_dir",
    "download_dir",
    "find_data_dir",
    "find_data_files",
    "load_dataset",
    "load_idx_dataset",
    "load_libsvm",
    "load_sklearn",
    "load_svmlight",
    "make_bidir_toy",
    "make_dataset",
    "make_quadratics",
    "make_synthetic_classification",
    "make_synthetic_regression",
    "read_idx",
    "scale_features",
    "search_path",
    "split_dataset",
]
