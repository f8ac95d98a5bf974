"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``../shared/data`` or ``$CONVCHECK_DATA_DIR``); skip when absent."""
    from convcheck.data import find_data_dir
    from convcheck.errors import DataFileError

    try:
        return find_data_dir()
    except DataFileError as exc:
        pytest.skip(
            f"../shared/data is absent, so the real-data tests are skipped ({exc})"
        )
