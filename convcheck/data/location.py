"""Where the real datasets (LIBSVM, MNIST files) are found on this machine."""

from __future__ import annotations

import os
from pathlib import Path

from convcheck.errors import DataFileError

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
