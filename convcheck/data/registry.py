"""Every dataset by name, and :func:`load_dataset` for names and file forms.

Installed packages add datasets through the entry-point group ``convcheck.problems``: the entry
point's name is the dataset's name (for ``dataset = "..."`` in a case file, ``--dataset`` on
the command line, :func:`convcheck.problem.build_problem`), its object a :class:`DatasetInfo`::

    # mypackage/data.py
    from convcheck.data import DatasetInfo, make_dataset

    def load(n_samples=100):
        ...
        return make_dataset("my-data", X, y, task="regression", source="mypackage")

    MY_DATA = DatasetInfo(load, "my measurements", "regression", needs_data_dir=False)

    # pyproject.toml
    [project.entry-points."convcheck.problems"]
    my-data = "mypackage.data:MY_DATA"
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from convcheck.data.dataset import TASKS, Dataset
from convcheck.data.formats import load_idx_dataset, load_svmlight
from convcheck.data.named import FASHION_MNIST_FOLDER, load_libsvm, load_shared_idx, load_sklearn
from convcheck.data.synthetic import (
    make_bidir_toy,
    make_quadratics,
    make_synthetic_classification,
    make_synthetic_regression,
)
from convcheck.errors import InputError
from convcheck.registry import PluginError, Registry


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
        Whether it reads files from a data folder (:mod:`convcheck.data.location`).
    """

    loader: Callable[..., Dataset]
    description: str
    task: str
    needs_data_dir: bool


_SYNTHETIC_DEFAULTS = {"n_samples": 1000, "n_features": 20}
# Checked by LP in tests/test_data.py, for the ±1 labels of Dataset.binary_labels().
_SEPARABLE = "; binary labels linearly separable: unregularized logistic loss has no minimizer"
_QUASI = ("; binary labels quasi-separable (a feature occurs in one class only): "
          "unregularized logistic loss has no minimizer")

def _defect(obj: object) -> str:
    """What keeps ``obj`` from being a registered dataset (``""``: nothing)."""
    if not isinstance(obj, DatasetInfo):
        return "not a convcheck.data.DatasetInfo"
    if not callable(obj.loader):
        return "its loader is not callable"
    if obj.task not in TASKS:
        return f"its task {obj.task!r} is not one of " + ", ".join(TASKS)
    if not isinstance(obj.description, str) or not isinstance(obj.needs_data_dir, bool):
        return "its description must be a str and needs_data_dir a bool"
    return ""


_BUILTIN = {
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
    "mnist": DatasetInfo(partial(load_shared_idx, "mnist"),
                         "MNIST digits, 60000 × 784 (part='test': 10000), pixels in [0, 1]",
                         "classification", True),
    "fashion-mnist": DatasetInfo(partial(load_shared_idx, FASHION_MNIST_FOLDER),
                                 "Fashion-MNIST from <data dir>/fashion-mnist (not shipped; "
                                 "or use idx:DIRECTORY)", "classification", True),
}
#: Every dataset by name: the built-in ones and those of the ``convcheck.problems`` entry points.
DATASETS: Registry[DatasetInfo] = Registry(
    "convcheck.problems", _BUILTIN, _defect,
    "a convcheck.data.DatasetInfo(loader, description, task, needs_data_dir)",
)

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
        Data folder searched first for the file-backed names (:mod:`convcheck.data.location`);
        ignored by the others.
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
        repr(f) for f in DATASET_FORMS) + " (a plug-in's name needs its package installed)"
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
        params["data_dir"] = data_dir
    data = info.loader(**params)
    if not isinstance(data, Dataset):
        raise PluginError(f"dataset {name!r} of {DATASETS.origin(name)}: its loader returned "
                          f"{type(data).__name__}, not a convcheck.data.Dataset "
                          "(build it with convcheck.data.make_dataset)")
    return data
