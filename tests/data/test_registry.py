"""load_dataset: names, file forms and loader parameters."""

from __future__ import annotations

import pytest

from convcheck.data import load_dataset
from convcheck.errors import InputError


def test_unknown_dataset_lists_the_allowed_names():
    with pytest.raises(InputError, match="'dataset' = 'a9b'") as info:
        load_dataset("a9b")
    for allowed in ("a9a", "synthetic-regression", "fashion-mnist", "svmlight:PATH",
                    "idx:DIRECTORY"):
        assert allowed in info.value.allowed
    with pytest.raises(InputError, match="'dataset'"):
        load_dataset("svmlight:")


def test_unknown_loader_parameter_lists_the_allowed_ones():
    with pytest.raises(InputError, match="'n_sample'") as info:
        load_dataset("synthetic-regression", n_sample=10)
    assert info.value.field == "n_sample"
    assert "'n_samples'" in info.value.allowed and "'condition_number'" in info.value.allowed
    with pytest.raises(InputError, match="takes none"):
        load_dataset("iris", seed=1)

