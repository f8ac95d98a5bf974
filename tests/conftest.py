"""Shared pytest fixtures.

The real datasets (LIBSVM, MNIST) are read from the folder named by ``$CONVCHECK_DATA``; the
tests that need them skip when it is not set (CI sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convcheck.data import DATA_ENV


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of the real datasets (``$CONVCHECK_DATA``); skip when it is not set."""
    folder = os.environ.get(DATA_ENV)
    if not folder or not Path(folder).is_dir():
        pytest.skip(f"{DATA_ENV} is not set to a folder, so the real-data tests are skipped "
                    "(`convcheck data download` fetches the files)")
    return Path(folder).resolve()
