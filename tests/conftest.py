"""Shared pytest fixtures.

The real datasets (LIBSVM, MNIST) are read from ``$CONVCHECK_DATA``; when it is unset and the
folder ``../shared/data`` beside the checkout exists (the team's machines and CI), the tests
point ``CONVCHECK_DATA`` at it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convcheck.data import DATA_ENV

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get(DATA_ENV) and SHARED_DATA.is_dir():
    os.environ[DATA_ENV] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of the real datasets (``$CONVCHECK_DATA``); skip when it is not set."""
    folder = os.environ.get(DATA_ENV)
    if not folder or not Path(folder).is_dir():
        pytest.skip(f"{DATA_ENV} is not set to a folder (../shared/data is absent), so the "
                    "real-data tests are skipped")
    return Path(folder).resolve()
