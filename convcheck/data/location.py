"""Where the real datasets (LIBSVM, MNIST files) are found on this machine.

A file-backed dataset is looked for, in this order, in

1. the folder given as ``data_dir`` (``--data-dir`` on the command line);
2. the folder named by the environment variable ``CONVCHECK_DATA`` (the older name
   ``CONVCHECK_DATA_DIR`` is still read when ``CONVCHECK_DATA`` is unset, with a
   :class:`FutureWarning`);
3. the user cache folder, where ``convcheck data download`` puts what it fetches:
   ``$XDG_CACHE_HOME/convcheck``, else ``~/.cache/convcheck`` (``%LOCALAPPDATA%\\convcheck``
   on Windows, ``~/Library/Caches/convcheck`` on macOS).

Every folder holds the same layout: ``libsvm/a9a.gz``, ``mnist/train-images-idx3-ubyte.gz``, …
A folder given explicitly (argument or environment) that does not exist is an error, so a typo
is reported rather than silently replaced by another folder.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from convcheck.errors import DataFileError

DATA_ENV = "CONVCHECK_DATA"
#: The variable's former name, still read (with a warning) when :data:`DATA_ENV` is unset.
DEPRECATED_DATA_ENV = "CONVCHECK_DATA_DIR"


def cache_dir() -> Path:
    """The user cache folder of convcheck (it need not exist yet)."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "convcheck"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "convcheck"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "convcheck"


def _environment_folder() -> tuple[Path, str] | None:
    """The folder the environment names, with the variable's name; ``None`` when unset."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]), f"environment variable {DATA_ENV}"
    if os.environ.get(DEPRECATED_DATA_ENV):
        warnings.warn(
            f"the environment variable {DEPRECATED_DATA_ENV} is deprecated; set {DATA_ENV} "
            "instead (same meaning)",
            FutureWarning,
            stacklevel=3,
        )
        return Path(os.environ[DEPRECATED_DATA_ENV]), f"environment variable {DEPRECATED_DATA_ENV}"
    return None


def search_path(data_dir: str | Path | None = None) -> list[tuple[Path, str]]:
    """The folders searched for data files, in order, each with where it comes from.

    Raises
    ------
    DataFileError
        ``data_dir`` or the environment's folder is given but is not a directory.
    """
    explicit = []
    if data_dir is not None:
        explicit.append((Path(data_dir), "--data-dir / data_dir argument"))
    environment = _environment_folder()
    if environment is not None:
        explicit.append(environment)
    for path, why in explicit:
        if not path.is_dir():
            raise DataFileError(
                f"the data folder {path} ({why}) is not a directory; point it at the folder "
                "holding libsvm/ and mnist/, or fetch the files with "
                "'convcheck data download NAME'"
            )
    return [*explicit, (cache_dir(), "user cache")]


def find_data_files(relative: Sequence[str], data_dir: str | Path | None = None,
                    name: str | None = None) -> Path:
    """The first folder of :func:`search_path` where every path of ``relative`` exists.

    Parameters
    ----------
    relative : sequence of str
        Files or folders inside a data folder, e.g. ``("libsvm/a9a.gz",)``, ``("mnist",)``.
    data_dir : str or Path, optional
        Folder searched first.
    name : str, optional
        Dataset name for the error message (and its ``convcheck data download`` hint).

    Raises
    ------
    DataFileError
        No folder holds them all; the message lists every folder tried.
    """
    folders = search_path(data_dir)
    for folder, _ in folders:
        if all((folder / part).exists() for part in relative):
            return folder.resolve()
    tried = "; ".join(f"{folder} ({why})" for folder, why in folders)
    what = f"dataset {name!r}" if name else "data files"
    fetch = f"'convcheck data download {name}'" if name else "'convcheck data download NAME'"
    raise DataFileError(
        f"{what} not found: no folder holds {', '.join(relative)}; tried: {tried}. Fetch it "
        f"with {fetch}, or point convcheck at a folder holding it with --data-dir DIR or the "
        f"environment variable {DATA_ENV}=DIR."
    )


def find_data_dir(data_dir: str | Path | None = None) -> Path:
    """The first folder of :func:`search_path` that exists (the user cache when it does).

    Raises
    ------
    DataFileError
        No candidate is an existing directory; the message lists every path tried.
    """
    folders = search_path(data_dir)
    for folder, _ in folders:
        if folder.is_dir():
            return folder.resolve()
    tried = "; ".join(f"{folder} ({why})" for folder, why in folders)
    raise DataFileError(
        f"no data folder found; tried: {tried}. Fetch a dataset with "
        f"'convcheck data download NAME', or point convcheck at the folder holding libsvm/ "
        f"and mnist/ with --data-dir DIR or the environment variable {DATA_ENV}=DIR."
    )


def download_dir(data_dir: str | Path | None = None) -> Path:
    """Where ``convcheck data download`` writes, created when missing.

    ``data_dir`` when given, else the environment's folder, else the user cache: the first
    folder :func:`search_path` looks in.
    """
    environment = _environment_folder()
    if data_dir is not None:
        folder = Path(data_dir)
    elif environment is not None:
        folder = environment[0]
    else:
        folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()
