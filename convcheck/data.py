"""Datasets and their split over workers.

A :class:`Dataset` is a design matrix ``X`` (dense ``ndarray`` or ``scipy.sparse.csr_matrix``,
float64, finite) with labels ``y``; a :class:`Split` assigns its rows to ``M`` workers.
"""

from __future__ import annotations

import gzip
import inspect
import math
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from convcheck.errors import DataFileError, InputError, check_choice, check_int, check_real


@dataclass(frozen=True)
class Dataset:
    """A design matrix with labels.

    Attributes
    ----------
    name : str
        Registry name (``"a9a"``, ``"digits"``, ``"synthetic-regression"``, ...).
    X : ndarray or scipy.sparse.csr_matrix, shape (n, d)
        Features, float64, all finite.
    y : ndarray, shape (n,)
        Real targets (``task == "regression"``) or class labels (``task == "classification"``).
    task : {"regression", "classification"}
    source : str
        Provenance: file path, scikit-learn loader or generator with its parameters.
    groups : ndarray of int, shape (n,), optional
        Natural worker of each row (synthetic heterogeneous data); used by the ``"natural"`` split.
    meta : dict
        Known facts about the data, for checks: the synthetic generators store the ground
        truth ``theta_star`` / ``theta_groups`` and the exact Gram spectrum (see
        :func:`make_synthetic_regression`). Empty for files and built-ins.
    """

    name: str
    X: np.ndarray | sp.csr_matrix
    y: np.ndarray
    task: str
    source: str
    groups: np.ndarray | None = field(default=None, repr=False)
    meta: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def classes(self) -> np.ndarray:
        """Sorted distinct labels (classification only)."""
        return np.unique(self.y)

    def binary_labels(self) -> np.ndarray:
        """Labels in {−1, +1} for binary losses.

        Two classes map to −1 (smaller label) and +1 (larger label). With more classes, the
        upper half of the sorted classes, ``c >= classes[K // 2]``, is +1 (digits, MNIST: 5–9
        against 0–4).
        """
        if self.task != "classification":
            raise InputError("task", self.task, "'classification' for a binary loss", self.name)
        classes = self.classes
        if classes.size < 2:
            raise InputError("y", f"{classes.size} class", "at least 2 classes", self.name)
        return np.where(self.y >= classes[classes.size // 2], 1.0, -1.0)


@dataclass(frozen=True)
class Split:
    """Assignment of dataset rows to ``M`` workers.

    Attributes
    ----------
    shards : tuple of ndarray of int
        ``shards[m]`` holds the row indices of worker ``m`` (disjoint, covering every row).
    method : str
        ``"iid"``, ``"sorted"``, ``"dirichlet"`` or ``"natural"``.
    params : dict
        What produced it (seed, Dirichlet α, ...), for reports.
    """

    shards: tuple[np.ndarray, ...]
    method: str
    params: dict = field(default_factory=dict)

    @property
    def n_workers(self) -> int:
        return len(self.shards)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([s.size for s in self.shards], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Building and validating datasets
# ---------------------------------------------------------------------------------------------

TASKS = ("regression", "classification")


def _first_bad_row(values: np.ndarray | sp.csr_matrix) -> tuple[int, float] | None:
    """Return ``(row, value)`` of the first non-finite entry (row-major order), or ``None``."""
    if sp.issparse(values):
        bad = np.flatnonzero(~np.isfinite(values.data))
        if bad.size == 0:
            return None
        # CSR stores the entries row by row, so the first bad entry is in the first bad row
        return int(np.searchsorted(values.indptr, bad[0], side="right") - 1), float(
            values.data[bad[0]])
    table = values.reshape(values.shape[0], -1)
    bad_rows = np.flatnonzero(~np.isfinite(table).all(axis=1))
    if bad_rows.size == 0:
        return None
    row = table[bad_rows[0]]
    return int(bad_rows[0]), float(row[~np.isfinite(row)][0])


def make_dataset(
    name: str,
    X: np.ndarray | sp.spmatrix,
    y: np.ndarray,
    *,
    task: str,
    source: str,
    groups: np.ndarray | None = None,
    meta: dict | None = None,
) -> Dataset:
    """Build a validated :class:`Dataset` from arrays.

    ``X`` becomes float64 (dense C-contiguous ``ndarray``, or canonical ``csr_matrix`` when
    sparse), ``y`` float64 of shape ``(n,)``, ``groups`` int64 of shape ``(n,)``.

    Raises
    ------
    InputError
        Unknown ``task``; ``X`` not 2-D or empty; ``y`` or ``groups`` of the wrong shape;
        a NaN or inf anywhere in ``X`` or ``y`` (the message names the dataset, the field and
        the first bad row, 0-based).
    """
    check_choice("task", task, TASKS, name)
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        X.sum_duplicates()
        X.sort_indices()
    else:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise InputError("X", f"array of shape {X.shape}", "a 2-D array (n, d)", name)
    n, d = X.shape
    if n == 0 or d == 0:
        raise InputError("X", f"shape {(n, d)}", "at least one row and one column", name)
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("y", type(y).__name__, "real numbers, one per row of X", name) from None
    if y.shape != (n,):
        raise InputError("y", f"shape {y.shape}", f"shape ({n},), one target per row of X", name)
    for field_name, values in (("X", X), ("y", y)):
        bad = _first_bad_row(values)
        if bad is not None:
            row, value = bad
            raise InputError(
                field_name, f"{value} in row {row} (0-based)", "finite numbers only", name
            )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer):
            raise InputError(
                "groups", f"{groups.dtype} array of shape {groups.shape}",
                f"integers of shape ({n},)", name,
            )
        groups = groups.astype(np.int64)
    return Dataset(name, X, y, task, source, groups, dict(meta or {}))


# ---------------------------------------------------------------------------------------------
# Where the shared data live
# ---------------------------------------------------------------------------------------------

DATA_DIR_ENV = "CONVCHECK_DATA_DIR"


def find_data_dir(data_dir: str | Path | None = None) -> Path:
    """Locate the folder holding the real datasets (``libsvm/``, ``mnist/``, ...).

    Order: the ``data_dir`` argument; else the environment variable ``CONVCHECK_DATA_DIR``;
    else ``../shared/data`` relative to the current directory; else
    ``<repo root>/../shared/data`` with ``<repo root>`` the folder holding the ``convcheck``
    package. An explicit argument or a set environment variable is the only place looked at,
    so a typo there is reported rather than silently replaced by another folder.

    Raises
    ------
    DataFileError
        No candidate is an existing directory; the message lists every path tried and how to
        point convcheck at the data.
    """
    import convcheck

    if data_dir is not None:
        candidates = [(Path(data_dir), "data_dir argument")]
    elif os.environ.get(DATA_DIR_ENV):
        candidates = [(Path(os.environ[DATA_DIR_ENV]), f"environment variable {DATA_DIR_ENV}")]
    else:
        repo_root = Path(convcheck.__file__).resolve().parents[1]
        candidates = [
            (Path.cwd() / ".." / "shared" / "data", "../shared/data from the current directory"),
            (repo_root / ".." / "shared" / "data", "../shared/data from the convcheck checkout"),
        ]
    for path, _ in candidates:
        if path.is_dir():
            return path.resolve()
    tried = "; ".join(f"{path} ({why})" for path, why in candidates)
    raise DataFileError(
        f"no data directory found; tried: {tried}. Point convcheck at the folder holding "
        f"libsvm/ and mnist/ with the environment variable {DATA_DIR_ENV}=/path/to/data "
        "or the data_dir argument."
    )


# ---------------------------------------------------------------------------------------------
# File loaders: svmlight / LIBSVM, IDX (MNIST layout)
# ---------------------------------------------------------------------------------------------

def _existing_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{what} not found: {path} (expected an existing file)")
    return path


def load_svmlight(
    path: str | Path,
    *,
    n_features: int | None = None,
    zero_based: bool | str = "auto",
    name: str | None = None,
    task: str = "classification",
) -> Dataset:
    """Load an svmlight / LIBSVM text file (``.gz`` / ``.bz2`` read directly), keeping X sparse.

    Format, one sample per line: ``<label> <index>:<value> <index>:<value> ...``.

    Parameters
    ----------
    path : str or Path
    n_features : int, optional
        Width of X; pass it, since a feature absent from the file shrinks the inferred width.
    zero_based : bool or "auto"
        Whether indices start at 0 (``"auto"``: guessed from the file, as scikit-learn does).
    name : str, optional
        Dataset name; default: the file name without ``.gz``/``.bz2``.
    task : {"classification", "regression"}
        How to read the first column; labels are kept as in the file.

    Raises
    ------
    DataFileError
        Missing file, or content scikit-learn cannot parse (the path and the expected format
        are named).
    InputError
        NaN / inf in the file, or no rows.
    """
    from sklearn.datasets import load_svmlight_file

    path = _existing_file(path, "svmlight file")
    check_choice("task", task, TASKS, str(path))
    if n_features is not None:
        n_features = check_int("n_features", n_features, 1, context=str(path))
    if zero_based != "auto" and not isinstance(zero_based, bool):
        raise InputError("zero_based", zero_based, "True, False or 'auto'", str(path))
    try:
        X, y = load_svmlight_file(str(path), n_features=n_features, zero_based=zero_based)
    except (ValueError, EOFError, OSError) as exc:
        raise DataFileError(
            f"cannot read {path} as svmlight/LIBSVM: {exc}. Expected one sample per line, "
            "'<label> <index>:<value> <index>:<value> ...'"
            + (f", with indices < n_features={n_features}" if n_features else "")
        ) from exc
    if name is None:
        name = path.name.removesuffix(".gz").removesuffix(".bz2")
    source = f"svmlight file {path} (n_features={n_features}, zero_based={zero_based})"
    return make_dataset(name, X, y, task=task, source=source)


IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (MNIST layout), gzip-compressed or raw.

    Header: big-endian uint32 magic, then one uint32 per dimension; then the uint8 payload,
    row-major. Magic ``2051`` (0x00000803): images, shape ``(n, rows, cols)``; magic ``2049``
    (0x00000801): labels, shape ``(n,)``.

    Returns
    -------
    ndarray of uint8

    Raises
    ------
    DataFileError
        Missing or unreadable file, unknown magic, short header, or a payload whose length is
        not the product of the dimensions (truncated or padded file).
    """
    path = _existing_file(path, "IDX file")
    try:
        with path.open("rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"cannot read {path} as a (gzip-compressed) IDX file: {exc}") from exc
    if len(raw) < 8:
        raise DataFileError(
            f"{path}: {len(raw)} bytes, too short for an IDX header (expected at least 8)"
        )
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = {IDX_IMAGES_MAGIC: 3, IDX_LABELS_MAGIC: 1}.get(magic)
    if ndim is None:
        raise DataFileError(
            f"{path}: magic number {magic} is not an IDX uint8 file; expected "
            f"{IDX_IMAGES_MAGIC} (images) or {IDX_LABELS_MAGIC} (labels), big-endian"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(
            f"{path}: header truncated ({len(raw)} bytes; expected {header} for magic {magic})"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise DataFileError(
            f"{path}: payload of {len(raw) - header} bytes, expected {expected} "
            f"(= {' x '.join(map(str, dims))}) after the {header}-byte header; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


IDX_KINDS = ("mnist", "fashion-mnist")
IDX_PARTS = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}


def _idx_file(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise DataFileError(
        f"missing IDX file in {directory}: expected {stem}.gz or {stem} (the standard "
        "MNIST / Fashion-MNIST file names: train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz)"
    )


def load_idx_dataset(
    directory: str | Path,
    *,
    kind: str = "mnist",
    part: str = "train",
    name: str | None = None,
) -> Dataset:
    """Load MNIST-layout IDX files (MNIST, Fashion-MNIST) from a directory.

    Reads ``{train,t10k}-images-idx3-ubyte[.gz]`` and ``{train,t10k}-labels-idx1-ubyte[.gz]``.
    Images are flattened row-major to ``(n, rows·cols)`` (784 for 28×28) and scaled to
    ``[0, 1]`` by ``x / 255``; labels (0–9) are the classes.

    Parameters
    ----------
    directory : str or Path
    kind : {"mnist", "fashion-mnist"}
        Which set the files are (default name and provenance only; the layout is the same).
    part : {"train", "test", "all"}
        ``"train"`` (60000 rows for MNIST), ``"test"`` (``t10k``, 10000), or both stacked.
    name : str, optional
        Default ``kind`` (``"mnist"``), with ``"-test"`` / ``"-all"`` appended for other parts.

    Raises
    ------
    DataFileError
        Missing directory or file, malformed IDX, or image and label counts that differ.
    """
    check_choice("kind", kind, IDX_KINDS, str(directory))
    check_choice("part", part, IDX_PARTS, str(directory))
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFileError(f"IDX directory not found: {directory} (expected a folder)")
    images, labels, files = [], [], []
    for prefix in IDX_PARTS[part]:
        image_path = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
        label_path = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
        image, label = read_idx(image_path), read_idx(label_path)
        if image.ndim != 3:
            raise DataFileError(f"{image_path}: holds labels; expected images (magic 2051)")
        if label.ndim != 1:
            raise DataFileError(f"{label_path}: holds images; expected labels (magic 2049)")
        if image.shape[0] != label.shape[0]:
            raise DataFileError(
                f"{image_path} has {image.shape[0]} images but {label_path} has "
                f"{label.shape[0]} labels; expected equal counts"
            )
        images.append(image.reshape(image.shape[0], -1))
        labels.append(label)
        files.extend([image_path.name, label_path.name])
    X = np.concatenate(images).astype(np.float64)
    X /= 255.0
    if name is None:
        name = kind if part == "train" else f"{kind}-{part}"
    source = f"IDX files {', '.join(files)} in {directory} (pixels / 255)"
    return make_dataset(name, X, np.concatenate(labels), task="classification", source=source)


# name: (files, n_features, zero_based); every listed file is loaded and the rows stacked.
LIBSVM_SETS: dict[str, tuple[tuple[str, ...], int, bool]] = {
    "a9a": (("a9a.gz",), 123, False),
    "w8a": (("w8a.gz",), 300, False),
    "mushrooms": (("mushrooms.gz", "mushrooms.t.gz"), 112, True),
    "phishing": (("phishing.gz", "phishing.t.gz"), 68, True),
}


def load_libsvm(name: str, data_dir: str | Path | None = None) -> Dataset:
    """Load a bundled LIBSVM binary-classification set from ``<data dir>/libsvm/``.

    a9a (32561 × 123) and w8a (49749 × 300): the standard training file only (one-based).
    mushrooms (8124 × 112) and phishing (11055 × 68): stored zero-based as a shuffled 70/30
    pair ``name.gz`` + ``name.t.gz`` that together hold every row; both are stacked.
    Labels are kept as in the files (±1; mushrooms 1/2; phishing 0/1); X stays sparse CSR.
    """
    check_choice("dataset", name, LIBSVM_SETS, "load_libsvm")
    files, n_features, zero_based = LIBSVM_SETS[name]
    folder = find_data_dir(data_dir) / "libsvm"
    parts = [
        load_svmlight(folder / f, n_features=n_features, zero_based=zero_based) for f in files
    ]
    X = sp.vstack([p.X for p in parts], format="csr")
    y = np.concatenate([p.y for p in parts])
    source = f"LIBSVM {name}: " + " + ".join(str(folder / f) for f in files)
    return make_dataset(name, X, y, task="classification", source=source)


# ---------------------------------------------------------------------------------------------
# scikit-learn built-ins (bundled with scikit-learn; never downloaded)
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Synthetic data with exact spectra
# ---------------------------------------------------------------------------------------------

def _make_synthetic(
    task: str,
    n_samples: int,
    n_features: int,
    *,
    condition_number: float,
    n_groups: int,
    heterogeneity: float,
    scale_spread: float,
    noise: float,
    seed: int,
) -> Dataset:
    """The construction documented in :func:`make_synthetic_regression`, for either task."""
    context = f"make_synthetic_{task}"
    n_samples = check_int("n_samples", n_samples, 1, context=context)
    n_features = check_int("n_features", n_features, 1, context=context)
    n_groups = check_int("n_groups", n_groups, 1, context=context)
    kappa = check_real("condition_number", condition_number, 1.0, context=context)
    heterogeneity = check_real("heterogeneity", heterogeneity, 0.0, context=context)
    spread = check_real("scale_spread", scale_spread, 0.0, context=context)
    noise = check_real("noise", noise, 0.0, 0.5 if task == "classification" else math.inf,
                       context=context)
    seed = check_int("seed", seed, 0, context=context)
    if n_features == 1 and kappa != 1.0:
        raise InputError("condition_number", kappa, "1 when n_features = 1", context)
    sizes = np.array([c.size for c in np.array_split(np.arange(n_samples), n_groups)])
    if sizes.min() < n_features:
        raise InputError(
            "n_samples", n_samples,
            f"at least n_groups * n_features = {n_groups * n_features}: each group's rows "
            f"U_g diag(σ) Vᵀ need n_g >= n_features = {n_features} orthonormal columns",
            context,
        )
    basis_ss, rows_ss, theta_ss, hetero_ss, target_ss = np.random.SeedSequence(seed).spawn(5)

    # λ_j = κ^(−j/(d−1)): geometric from λ_max = 1 down to λ_min = 1/κ.
    gram_eigenvalues = kappa ** (-np.arange(n_features) / max(n_features - 1, 1))
    group_scales = (1.0 + spread) ** (np.linspace(-1.0, 1.0, n_groups) if n_groups > 1 else 0.0)
    group_scales = np.atleast_1d(group_scales)
    sigma = np.sqrt(n_samples * gram_eigenvalues / np.sum(group_scales**2))
    V, _ = np.linalg.qr(np.random.default_rng(basis_ss).standard_normal((n_features,) * 2))
    rows_rng = np.random.default_rng(rows_ss)
    blocks = []
    for size, scale in zip(sizes, group_scales, strict=True):  # one thin QR per group
        U, _ = np.linalg.qr(rows_rng.standard_normal((size, n_features)))
        blocks.append((scale * U * sigma) @ V.T)
    X = np.concatenate(blocks)
    groups = np.repeat(np.arange(n_groups, dtype=np.int64), sizes)

    theta_star = np.random.default_rng(theta_ss).standard_normal(n_features)
    theta_star /= np.linalg.norm(theta_star)
    zeta = np.random.default_rng(hetero_ss).standard_normal((n_groups, n_features))
    zeta /= np.linalg.norm(zeta, axis=1, keepdims=True)
    theta_groups = theta_star + heterogeneity * zeta
    margins = np.einsum("ij,ij->i", X, theta_groups[groups])

    target_rng = np.random.default_rng(target_ss)
    if task == "regression":
        y = margins + noise * target_rng.standard_normal(n_samples)
    else:
        uniforms = target_rng.random((2, n_samples))
        y = np.where(uniforms[0] < 1.0 / (1.0 + np.exp(-margins)), 1.0, -1.0)
        y = np.where(uniforms[1] < noise, -y, y)
    meta = {
        "theta_star": theta_star,
        "theta_groups": theta_groups,
        "gram_eigenvalues": gram_eigenvalues,
        "eigenvectors": V,
        "group_scales": group_scales,
        "group_sizes": sizes,
        "group_gram_factors": group_scales**2 * n_samples / (sizes * np.sum(group_scales**2)),
    }
    source = (
        f"make_synthetic_{task}(n_samples={n_samples}, n_features={n_features}, "
        f"condition_number={kappa:g}, n_groups={n_groups}, heterogeneity={heterogeneity:g}, "
        f"scale_spread={spread:g}, noise={noise:g}, seed={seed})"
    )
    return make_dataset(f"synthetic-{task}", X, y, task=task, source=source, groups=groups,
                        meta=meta)


def make_synthetic_regression(
    n_samples: int,
    n_features: int,
    *,
    condition_number: float = 10.0,
    n_groups: int = 1,
    heterogeneity: float = 0.0,
    scale_spread: float = 0.0,
    noise: float = 0.1,
    seed: int = 0,
) -> Dataset:
    r"""Seeded least-squares data with an exact Gram spectrum and optional worker groups.

    Targets: :math:`y_i = a_i^\top \theta_{g(i)} + \text{noise}\cdot\varepsilon_i`,
    :math:`\varepsilon_i \sim N(0, 1)`.

    Construction (shared with :func:`make_synthetic_classification`; same seed, same X).
    The rows are split into ``n_groups`` contiguous groups of sizes :math:`n_g`
    (``np.array_split``; :math:`n_g \ge d` is required). With one orthogonal :math:`V`
    (QR of a Gaussian d×d matrix) shared by all groups, group g's rows are

    .. math:: A_g = c_g\, U_g\, \mathrm{diag}(\sigma)\, V^\top,

    where :math:`U_g` (:math:`n_g \times d`) has orthonormal columns (thin QR of a Gaussian)
    and the scales :math:`c_g = (1+s)^{t_g}`, :math:`t_g` evenly spaced in [−1, 1]
    (:math:`c = 1` for one group), lie in [1/(1+s), 1+s] with ``s = scale_spread``. Then
    :math:`A_g^\top A_g = c_g^2\, V \mathrm{diag}(\sigma^2) V^\top`, and choosing
    :math:`\sigma_j^2 = n \lambda_j / \sum_g c_g^2` gives

    .. math:: X^\top X / n = V\, \mathrm{diag}(\lambda)\, V^\top, \qquad
              \lambda_j = \kappa^{-j/(d-1)},\ j = 0, \dots, d-1,

    so :math:`\lambda_{\max} = 1`, :math:`\lambda_{\min} = 1/\kappa` and the condition number
    is exactly κ = ``condition_number`` whatever the scales. Each per-group Hessian is a
    multiple of that matrix,

    .. math:: H_g = A_g^\top A_g / n_g = f_g\, V \mathrm{diag}(\lambda) V^\top, \qquad
              f_g = c_g^2\, n / (n_g \textstyle\sum_h c_h^2),

    so the :math:`H_g`, their average and :math:`X^\top X/n` share eigenvectors and have
    condition number κ; ``scale_spread`` only spreads the per-group :math:`L_m \propto f_g`.
    Ground truth: θ* is a unit-norm Gaussian direction and
    :math:`\theta_g = \theta^* + h\,\zeta_g` with ``h = heterogeneity`` and unit-norm Gaussian
    :math:`\zeta_g` (all :math:`\theta_g = \theta^*` when h = 0).
    ``numpy.random.SeedSequence(seed)`` spawns independent streams for V, the :math:`U_g`,
    θ*, the :math:`\zeta_g` and the targets.

    Returns
    -------
    Dataset
        Dense X; ``groups`` holds each row's group id (for the ``"natural"`` split); ``meta``
        holds ``theta_star``, ``theta_groups`` (G, d), ``gram_eigenvalues`` λ,
        ``eigenvectors`` V, ``group_scales`` :math:`c_g`, ``group_sizes`` :math:`n_g` and
        ``group_gram_factors`` :math:`f_g`.
    """
    return _make_synthetic(
        "regression", n_samples, n_features, condition_number=condition_number,
        n_groups=n_groups, heterogeneity=heterogeneity, scale_spread=scale_spread,
        noise=noise, seed=seed,
    )


def make_synthetic_classification(
    n_samples: int,
    n_features: int,
    *,
    condition_number: float = 10.0,
    n_groups: int = 1,
    heterogeneity: float = 0.0,
    scale_spread: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> Dataset:
    r"""Seeded logistic data: labels ±1 with :math:`P(y_i = +1) = \mathrm{sigmoid}(a_i^\top
    \theta_{g(i)})`, on the design of :func:`make_synthetic_regression` (same seed, same X,
    same spectrum, groups and ``meta``).

    Labels drawn this way make the data non-separable with high probability once
    ``n_samples`` is well above ``n_features`` (for n close to d any labelling may be
    separable). ``noise`` ∈ [0, 0.5] is the probability of then flipping each label.
    """
    return _make_synthetic(
        "classification", n_samples, n_features, condition_number=condition_number,
        n_groups=n_groups, heterogeneity=heterogeneity, scale_spread=scale_spread,
        noise=noise, seed=seed,
    )


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DatasetInfo:
    """One entry of :data:`DATASETS`.

    Attributes
    ----------
    loader : callable
        Returns the :class:`Dataset`; its keyword parameters are the ones
        :func:`load_dataset` accepts (plus ``data_dir`` when ``needs_data_dir``).
    description : str
    task : {"regression", "classification"}
    needs_data_dir : bool
        Whether it reads files from the shared data folder (see :func:`find_data_dir`).
    """

    loader: Callable[..., Dataset]
    description: str
    task: str
    needs_data_dir: bool


FASHION_MNIST_FOLDER = "fashion-mnist"


def _load_shared_idx(kind: str, *, data_dir: str | Path | None = None,
                     part: str = "train") -> Dataset:
    """``kind`` in ``<data dir>/<kind>/``; a clear error when Fashion-MNIST is not there."""
    if kind != FASHION_MNIST_FOLDER:
        return load_idx_dataset(find_data_dir(data_dir) / kind, kind=kind, part=part)
    try:
        folder = find_data_dir(data_dir) / FASHION_MNIST_FOLDER
        why = f"no folder {folder}"
    except DataFileError as exc:
        folder, why = None, str(exc)
    if folder is None or not folder.is_dir():
        raise DataFileError(
            f"Fashion-MNIST is not available offline here ({why}). If you have its four IDX "
            "files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), use the dataset "
            "'idx:/path/to/folder' (Python: load_dataset('idx:/path/to/folder', "
            f"kind='fashion-mnist')) or put them in <data dir>/{FASHION_MNIST_FOLDER}/."
        )
    return load_idx_dataset(folder, kind=kind, part=part)


def make_quadratics(centers: Sequence[Sequence[float]] = ((10.0, 0.0), (-10.0, 0.0))) -> Dataset:
    """``F(x) = (1/G) Σ_g ½‖x − c_g‖²`` as least squares over ``G`` groups (one per center).

    Group ``g`` has the rows ``√d·I`` with targets ``√d·c_g``, so that its ridge objective
    ``(1/d) Σ_i ½(√d x_i − √d c_g,i)²`` equals ``½‖x − c_g‖²`` exactly. Use it with
    ``split="natural"``, ``scaling="none"``, one worker per center, ``lam=0``; then
    ``x* = mean_g c_g`` and ``F* = (1/G) Σ_g ½‖c_g − x*‖²``.

    The default centers ``(±10, 0)`` are a counterexample for top-1 sparsification without
    error feedback (constructed here): at any ``x = (0, x_2)`` with ``|x_2| < 10`` both workers
    send only their first coordinate, ``∓10``, whose mean is 0, so the iterate stalls at
    ``F − F* = x_2²/2``; error feedback accumulates the unsent ``x_2`` and converges.
    """
    values = np.asarray(centers, dtype=np.float64)
    if values.ndim != 2 or values.size < 1 or not np.all(np.isfinite(values)):
        raise InputError("centers", centers, "a non-empty list of equal-length lists of reals")
    groups_count, dim = values.shape
    root = np.sqrt(dim)
    X = np.tile(root * np.eye(dim), (groups_count, 1))
    y = root * values.ravel()
    groups = np.repeat(np.arange(groups_count), dim)
    f_star = 0.5 * float(np.mean(np.sum((values - values.mean(axis=0)) ** 2, axis=1)))
    source = f"quadratics ½‖x − c_g‖², d={dim}, centers={values.tolist()}"
    return make_dataset(
        "quadratics", X, y, task="regression", source=source, groups=groups,
        meta={"f_star": f_star},
    )


def make_bidir_toy(dim: int = 100, centers: tuple[float, ...] = (1.0, 5.0, 10.0)) -> Dataset:
    """The [BIDIR] toy: :func:`make_quadratics` with centers ``c_g·1`` in dimension ``d``.

    ``F(x) = (1/G) Σ_g ½‖x − c_g·1‖²``; with the defaults ``F* = 6100/9``.
    """
    dim = check_int("dim", dim, 1)
    values = np.asarray(centers, dtype=np.float64)
    if values.ndim != 1 or values.size < 1 or not np.all(np.isfinite(values)):
        raise InputError("centers", centers, "a non-empty list of finite reals")
    toy = make_quadratics(np.outer(values, np.ones(dim)))
    source = f"[BIDIR] toy, d={dim}, centers={values.tolist()}"
    return make_dataset("bidir-toy", toy.X, toy.y, task="regression", source=source,
                        groups=toy.groups, meta=toy.meta)


_SYNTHETIC_DEFAULTS = {"n_samples": 1000, "n_features": 20}
# Checked by LP in tests/test_data.py, for the ±1 labels of Dataset.binary_labels().
_SEPARABLE = "; binary labels linearly separable: unregularized logistic loss has no minimizer"
_QUASI = ("; binary labels quasi-separable (a feature occurs in one class only): "
          "unregularized logistic loss has no minimizer")

DATASETS: dict[str, DatasetInfo] = {
    "synthetic-regression": DatasetInfo(
        partial(make_synthetic_regression, **_SYNTHETIC_DEFAULTS),
        "seeded least squares, exact condition number, optional heterogeneous groups "
        "(default 1000 × 20)", "regression", False),
    "synthetic-classification": DatasetInfo(
        partial(make_synthetic_classification, **_SYNTHETIC_DEFAULTS),
        "seeded logistic labels ±1 on the same design (default 1000 × 20)",
        "classification", False),
    "quadratics": DatasetInfo(make_quadratics,
                              "quadratics ½‖x − c_g‖², one worker per center (default (±10, 0): "
                              "top-1 without error feedback stalls); split='natural', "
                              "scaling='none'", "regression", False),
    "bidir-toy": DatasetInfo(make_bidir_toy,
                             "[BIDIR] toy: 3 quadratics ½‖x − c·1‖², d = 100, c = (1, 5, 10); "
                             "use split='natural', scaling='none', 3 workers", "regression", False),
    "digits": DatasetInfo(partial(load_sklearn, "digits"),
                          "scikit-learn digits, 1797 × 64, 10 classes" + _QUASI,
                          "classification", False),
    "breast-cancer": DatasetInfo(partial(load_sklearn, "breast-cancer"),
                                 "scikit-learn breast cancer (Wisconsin), 569 × 30, 2 classes"
                                 + _SEPARABLE, "classification", False),
    "wine": DatasetInfo(partial(load_sklearn, "wine"),
                        "scikit-learn wine, 178 × 13, 3 classes" + _SEPARABLE,
                        "classification", False),
    "iris": DatasetInfo(partial(load_sklearn, "iris"),
                        "scikit-learn iris, 150 × 4, 3 classes" + _SEPARABLE,
                        "classification", False),
    "diabetes": DatasetInfo(partial(load_sklearn, "diabetes"),
                            "scikit-learn diabetes, 442 × 10, real target", "regression", False),
    "a9a": DatasetInfo(partial(load_libsvm, "a9a"),
                       "LIBSVM a9a (UCI Adult), 32561 × 123 sparse binary, labels ±1" + _QUASI,
                       "classification", True),
    "w8a": DatasetInfo(partial(load_libsvm, "w8a"),
                       "LIBSVM w8a (web pages), 49749 × 300 sparse binary, labels ±1" + _QUASI,
                       "classification", True),
    "mushrooms": DatasetInfo(partial(load_libsvm, "mushrooms"),
                             "LIBSVM mushrooms (UCI), 8124 × 112 sparse binary, labels 1/2"
                             + _SEPARABLE, "classification", True),
    "phishing": DatasetInfo(partial(load_libsvm, "phishing"),
                            "LIBSVM phishing (UCI), 11055 × 68 sparse, unit rows, labels 0/1"
                            + _QUASI, "classification", True),
    "mnist": DatasetInfo(partial(_load_shared_idx, "mnist"),
                         "MNIST digits, 60000 × 784 (part='test': 10000), pixels in [0, 1]",
                         "classification", True),
    "fashion-mnist": DatasetInfo(partial(_load_shared_idx, FASHION_MNIST_FOLDER),
                                 "Fashion-MNIST from <data dir>/fashion-mnist (not shipped; "
                                 "or use idx:DIRECTORY)", "classification", True),
}

DATASET_FORMS = ("svmlight:PATH", "idx:DIRECTORY")
_FORM_LOADERS: dict[str, Callable[..., Dataset]] = {
    "svmlight:": load_svmlight, "idx:": load_idx_dataset,
}


def _allowed_params(loader: Callable[..., Dataset], skip: tuple[str, ...]) -> list[str]:
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        p.name for p in inspect.signature(loader).parameters.values()
        if p.kind in keyword and p.name not in skip
    ]


def _check_params(name: str, loader: Callable[..., Dataset], params: dict,
                  skip: tuple[str, ...]) -> None:
    allowed = _allowed_params(loader, skip)
    for key, value in params.items():
        if key not in allowed:
            raise InputError(
                key, value,
                f"a parameter of dataset {name!r}: "
                + (", ".join(repr(a) for a in allowed) if allowed else "it takes none"),
                f"load_dataset({name!r})",
            )


def load_dataset(name: str, /, *, data_dir: str | Path | None = None, **params) -> Dataset:
    """Load a dataset by registry name or by file form.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` (``"synthetic-regression"``, ``"digits"``, ``"a9a"``,
        ``"mnist"``, ...), ``"svmlight:PATH"`` (:func:`load_svmlight`) or
        ``"idx:DIRECTORY"`` (:func:`load_idx_dataset`).
    data_dir : str or Path, optional
        Shared data folder for the file-backed names (see :func:`find_data_dir`); ignored by
        the others.
    **params
        Passed to the loader, e.g. ``n_samples=2000, condition_number=100`` for the synthetic
        sets, ``part="test"`` for MNIST, ``n_features=123`` for ``svmlight:``.

    Raises
    ------
    InputError
        Unknown name (the allowed names and forms are listed) or a parameter the loader does
        not take (its allowed parameters are listed).
    DataFileError
        A missing or malformed file.
    """
    allowed = ", ".join(repr(k) for k in DATASETS) + ", or " + " / ".join(
        repr(f) for f in DATASET_FORMS)
    if not isinstance(name, str):
        raise InputError("dataset", name, allowed)
    for prefix, loader in _FORM_LOADERS.items():
        if name.startswith(prefix):
            target = name[len(prefix):]
            if not target:
                raise InputError("dataset", name, allowed)
            first = next(iter(inspect.signature(loader).parameters))
            _check_params(name, loader, params, skip=(first,))
            return loader(target, **params)
    if name not in DATASETS:
        raise InputError("dataset", name, allowed)
    info = DATASETS[name]
    _check_params(name, info.loader, params, skip=("data_dir",))
    if info.needs_data_dir:
        return info.loader(data_dir=data_dir, **params)
    return info.loader(**params)


# ---------------------------------------------------------------------------------------------
# Feature scaling
# ---------------------------------------------------------------------------------------------

SCALINGS = ("none", "standard", "maxabs", "unit-rows")


def _with_features(dataset: Dataset, X: np.ndarray | sp.spmatrix, tag: str,
                   what: str) -> Dataset:
    """``dataset`` with new features; name and source record the step, ``meta`` is dropped."""
    return make_dataset(
        f"{dataset.name}+{tag}", X, dataset.y, task=dataset.task,
        source=f"{dataset.source}; then {what}", groups=dataset.groups,
    )


def scale_features(dataset: Dataset, method: str) -> Dataset:
    """Rescale the features.

    Parameters
    ----------
    dataset : Dataset
    method : {"none", "standard", "maxabs", "unit-rows"}
        ``"none"``: the dataset unchanged.
        ``"standard"``: :math:`x_{ij} \\leftarrow (x_{ij} - \\bar x_j) / s_j` (column mean and
        population standard deviation; constant columns are only centred). Dense X only:
        centring would make a sparse X dense.
        ``"maxabs"``: :math:`x_{ij} \\leftarrow x_{ij} / \\max_i |x_{ij}|` (all-zero columns
        unchanged); keeps sparsity.
        ``"unit-rows"``: :math:`a_i \\leftarrow a_i / \\|a_i\\|_2` (zero rows stay zero);
        keeps sparsity.

    Returns
    -------
    Dataset
        Name with ``+method`` appended; the source says what was done. ``meta`` (facts about
        the unscaled data, such as a synthetic spectrum) is dropped.

    Raises
    ------
    InputError
        Unknown method, or ``"standard"`` on sparse X.
    """
    check_choice("scaling", method, SCALINGS, dataset.name)
    X = dataset.X
    sparse = sp.issparse(X)
    if method == "none":
        return dataset
    if method == "standard":
        if sparse:
            raise InputError(
                "scaling", method,
                "'maxabs' or 'unit-rows' for sparse X ('standard' centres the columns, which "
                "would make X dense; 'maxabs' keeps it sparse)", dataset.name,
            )
        mean, std = X.mean(axis=0), X.std(axis=0)
        std[std == 0] = 1.0
        return _with_features(dataset, (X - mean) / std, method,
                              "standard scaling (columns to zero mean, unit variance)")
    if method == "maxabs":
        scale = np.asarray(abs(X).max(axis=0).todense() if sparse else np.abs(X).max(axis=0))
        scale = scale.ravel()
        scale[scale == 0] = 1.0
        scaled = X @ sp.diags(1.0 / scale) if sparse else X / scale
        return _with_features(dataset, scaled, method,
                              "max-abs scaling (each column divided by its max |x|)")
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()) if sparse else (
        np.linalg.norm(X, axis=1))
    norms[norms == 0] = 1.0
    scaled = sp.diags(1.0 / norms) @ X if sparse else X / norms[:, None]
    return _with_features(dataset, scaled, method, "rows scaled to unit l2 norm")


def add_intercept(dataset: Dataset) -> Dataset:
    """Append a constant-1 column (sparse X stays sparse); name gets ``+intercept``."""
    ones = np.ones((dataset.n_samples, 1))
    X = sp.hstack([dataset.X, ones], format="csr") if sp.issparse(dataset.X) else np.hstack(
        [dataset.X, ones])
    return _with_features(dataset, X, "intercept", "a constant-1 intercept column appended")


# ---------------------------------------------------------------------------------------------
# Splits over workers
# ---------------------------------------------------------------------------------------------

SPLITS = ("iid", "sorted", "dirichlet", "natural")
DIRICHLET_TRIES = 100
QUANTILE_CLASSES = 10


def _class_codes(dataset: Dataset) -> np.ndarray:
    """Class index per row; regression targets binned into equal-count quantile classes."""
    if dataset.task == "classification":
        return np.unique(dataset.y, return_inverse=True)[1]
    n = dataset.n_samples
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(dataset.y, kind="stable")] = np.arange(n)
    return ranks * min(QUANTILE_CLASSES, n) // n


def _contiguous_owner(order: np.ndarray, workers: int) -> np.ndarray:
    """Worker of each row when ``order`` is cut into ``workers`` near-equal contiguous chunks."""
    sizes = np.array([c.size for c in np.array_split(order, workers)])
    owner = np.empty(order.size, dtype=np.int64)
    owner[order] = np.repeat(np.arange(workers), sizes)
    return owner


def _dirichlet_owner(codes: np.ndarray, workers: int, alpha: float,
                     rng: np.random.Generator) -> np.ndarray:
    """One Dirichlet draw: class c's rows go to the workers in proportions p_c ~ Dir(α·1_M)."""
    owner = np.empty(codes.size, dtype=np.int64)
    for c in range(codes.max() + 1):  # loop over classes (few), not workers
        members = rng.permutation(np.flatnonzero(codes == c))
        proportions = rng.dirichlet(np.full(workers, alpha))
        cuts = np.round(np.cumsum(proportions)[:-1] * members.size).astype(np.int64)
        counts = np.diff(np.concatenate([[0], np.clip(cuts, 0, members.size), [members.size]]))
        owner[members] = np.repeat(np.arange(workers), counts)
    return owner


def split_dataset(
    dataset: Dataset,
    workers: int,
    method: str = "iid",
    *,
    alpha: float | None = None,
    seed: int = 0,
    min_shard_size: int = 1,
) -> Split:
    """Assign the rows of ``dataset`` to ``workers`` workers.

    Parameters
    ----------
    dataset : Dataset
    workers : int
        M, in [1, n_samples].
    method : {"iid", "sorted", "dirichlet", "natural"}
        ``"iid"``: a seeded random permutation cut into near-equal parts
        (``np.array_split``: sizes differ by at most one).
        ``"sorted"``: rows stably sorted by label (by target value for regression) and cut
        into contiguous near-equal parts, so each worker sees few labels (heterogeneous
        workers); deterministic.
        ``"dirichlet"``: for each class c, proportions
        :math:`p_c \\sim \\mathrm{Dir}(\\alpha \\mathbf 1_M)`; the class's rows, shuffled, are cut
        at :math:`\\mathrm{round}(n_c \\sum_{m' \\le m} p_{c,m'})`. Small α gives skewed label
        mixes, large α nearly iid ones. Regression targets are first binned into
        ``QUANTILE_CLASSES`` (10) equal-count quantile classes by rank. The draw is repeated
        (same seeded stream, so still deterministic) until every shard has at least
        ``min_shard_size`` rows, at most ``DIRICHLET_TRIES`` (100) times.
        ``"natural"``: one shard per value of ``dataset.groups`` (synthetic heterogeneous
        data), in increasing group order; ``workers`` must equal the number of groups.
    alpha : float, optional
        Dirichlet concentration α > 0; required for, and only for, ``"dirichlet"``.
    seed : int
        Seeds ``numpy.random.default_rng`` (iid and dirichlet); same seed, same split.
    min_shard_size : int
        Smallest shard accepted, in [1, n_samples // workers].

    Returns
    -------
    Split
        Shards are sorted int64 index arrays, disjoint and covering every row.

    Raises
    ------
    InputError
        Bad ``workers``, ``split``, ``alpha``, ``seed`` or ``min_shard_size``; ``"natural"``
        without groups or with ``workers`` not the number of groups; no Dirichlet draw with
        every shard large enough (use a larger α or fewer workers).
    """
    n = dataset.n_samples
    context = f"split of dataset {dataset.name!r}"
    method = check_choice("split", method, SPLITS, context)
    workers = check_int("workers", workers, 1, n, context)
    seed = check_int("seed", seed, 0, context=context)
    min_shard_size = check_int("min_shard_size", min_shard_size, 1, n // workers, context)
    if method != "dirichlet" and alpha is not None:
        raise InputError("alpha", alpha, "None unless split = 'dirichlet'", context)
    rng = np.random.default_rng(seed)
    params: dict = {"seed": seed}
    if method == "iid":
        owner = _contiguous_owner(rng.permutation(n), workers)
    elif method == "sorted":
        owner = _contiguous_owner(np.argsort(dataset.y, kind="stable"), workers)
        params = {"key": "label" if dataset.task == "classification" else "target"}
    elif method == "dirichlet":
        alpha = check_real("alpha", alpha, 0.0, math.inf, low_open=True, high_open=True,
                           context=context)
        codes = _class_codes(dataset)
        tries = 0
        while tries < DIRICHLET_TRIES:
            tries += 1
            owner = _dirichlet_owner(codes, workers, alpha, rng)
            smallest = int(np.bincount(owner, minlength=workers).min())
            if smallest >= min_shard_size:
                break
        else:
            raise InputError(
                "alpha", alpha,
                f"a larger alpha or fewer workers: in {DIRICHLET_TRIES} Dirichlet draws some "
                f"of the {workers} shards kept fewer than min_shard_size = {min_shard_size} "
                f"rows (last draw's smallest: {smallest})", context,
            )
        params.update(alpha=alpha, min_shard_size=min_shard_size, tries=tries,
                      classes="labels" if dataset.task == "classification" else
                      f"{QUANTILE_CLASSES} quantile bins of the target")
    else:
        if dataset.groups is None:
            raise InputError(
                "split", method,
                "'iid', 'sorted' or 'dirichlet' for a dataset without groups ('natural' needs "
                "per-row groups, e.g. synthetic data with n_groups > 1)", context,
            )
        group_values, owner = np.unique(dataset.groups, return_inverse=True)
        if workers != group_values.size:
            raise InputError(
                "workers", workers,
                f"{group_values.size}, the number of groups, for split = 'natural'", context,
            )
        params = {"groups": group_values.tolist()}
    counts = np.bincount(owner, minlength=workers)
    if counts.min() < min_shard_size:
        raise InputError(
            "min_shard_size", min_shard_size,
            f"at most {counts.min()}, the smallest {method} shard", context,
        )
    order = np.argsort(owner, kind="stable").astype(np.int64)
    shards = tuple(np.split(order, np.cumsum(counts)[:-1]))
    return Split(shards, method, params)
