"""Fixtures of the data tests."""

from __future__ import annotations

import pytest

from convcheck.data import Dataset, load_dataset


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")

