"""Training data as tensors: test parts, hold-outs, scaling with training statistics, IDX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convcheck.errors import DataFileError, InputError
from convcheck.torch.datasets import load_train_test
from tests.data.helpers import write_idx_set


def test_digits_hold_out_and_scaling() -> None:
    dataset, train, test = load_train_test("digits", scaling="maxabs", test_fraction=0.25, seed=3)
    assert test.n_samples == 449 and train.n_samples == 1797 - 449
    assert train.classes == test.classes == 10 and train.image_shape == (1, 8, 8)
    top = train.X.abs().max(dim=0).values
    assert bool(((top == 1.0) | (top == 0.0)).all())  # each column / its training max
    assert dataset.X.shape == tuple(train.X.shape)
    assert np.array_equal(dataset.y, train.y.numpy())
    again = load_train_test("digits", scaling="maxabs", test_fraction=0.25, seed=3)[2]
    assert torch.equal(again.X, test.X)
    other = load_train_test("digits", scaling="maxabs", test_fraction=0.25, seed=4)[2]
    assert not torch.equal(other.X, test.X)


def test_standard_scaling_uses_training_statistics() -> None:
    _, train, test = load_train_test("wine", scaling="standard", dtype=torch.float64)
    assert train.image_shape is None
    torch.testing.assert_close(train.X.mean(dim=0), torch.zeros(13, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    assert float(test.X.mean(dim=0).abs().max()) > 1e-3  # the test part is not re-centred


def test_idx_folder_with_test_part(tmp_path) -> None:
    """A Fashion-MNIST-like folder (any path, same IDX layout): train and t10k parts."""
    rng = np.random.default_rng(0)
    write_idx_set(tmp_path, "train", rng.integers(0, 256, (30, 4, 4)), rng.integers(0, 3, 30))
    write_idx_set(tmp_path, "t10k", rng.integers(0, 256, (7, 4, 4)), rng.integers(0, 3, 7))
    dataset, train, test = load_train_test(
        f"idx:{tmp_path}", dataset_params={"kind": "fashion-mnist"}, train_size=20
    )
    assert (train.n_samples, test.n_samples, train.image_shape) == (20, 7, (1, 4, 4))
    assert float(train.X.max()) <= 1.0 and "t10k-images-idx3-ubyte.gz" in dataset.source


def test_missing_and_bad(tmp_path) -> None:
    with pytest.raises(DataFileError, match="Fashion-MNIST is not available"):
        load_train_test("fashion-mnist", data_dir=tmp_path)
    with pytest.raises(InputError, match="'part'"):
        load_train_test("digits", dataset_params={"part": "train"})
    with pytest.raises(InputError, match="'scaling'"):
        load_train_test("digits", scaling="unit-rows")
    with pytest.raises(InputError, match="'train_size'"):
        load_train_test("iris", train_size=1000)


@pytest.mark.shared_data
def test_mnist_train_and_test_parts(shared_data) -> None:
    _, train, test = load_train_test("mnist", data_dir=shared_data, train_size=1000)
    assert (train.n_samples, test.n_samples) == (1000, 10000)
    assert train.image_shape == (1, 28, 28) and train.classes == 10
    assert float(test.X.max()) == 1.0 and test.y.bincount().tolist()[0] == 980
