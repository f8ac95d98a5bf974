"""svmlight and IDX files: round trips, malformed files, non-finite values."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.sparse as sp

from convcheck.data import load_dataset, load_idx_dataset, load_svmlight, make_dataset, read_idx
from convcheck.errors import DataFileError, InputError
from tests.data.helpers import write_idx, write_idx_set


def test_svmlight_reads_what_was_written(tmp_path):
    path = tmp_path / "toy.svm"
    path.write_text("1 1:0.5 3:2\n-1 2:-1.5\n1 4:7\n")
    ds = load_svmlight(path, n_features=5)
    assert sp.isspmatrix_csr(ds.X) and ds.name == "toy.svm"
    expected = np.zeros((3, 5))
    expected[0, 0], expected[0, 2], expected[1, 1], expected[2, 3] = 0.5, 2.0, -1.5, 7.0
    np.testing.assert_array_equal(ds.X.toarray(), expected)
    np.testing.assert_array_equal(ds.y, [1, -1, 1])
    gz = tmp_path / "toy.svm.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    again = load_dataset(f"svmlight:{gz}", n_features=5, zero_based=False, name="toy")
    np.testing.assert_array_equal(again.X.toarray(), expected)
    assert again.name == "toy"


def test_idx_round_trip_and_fashion_layout(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 3, 4), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx_set(tmp_path / "fashion-mnist", "train", images, labels)
    write_idx_set(tmp_path / "fashion-mnist", "t10k", images[:2], labels[:2], compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "fashion-mnist/t10k-images-idx3-ubyte"),
                                  images[:2])
    ds = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert ds.name == "fashion-mnist" and ds.X.shape == (5, 12)
    np.testing.assert_array_equal(ds.X, images.reshape(5, 12) / 255.0)
    np.testing.assert_array_equal(ds.y, labels)
    both = load_dataset(f"idx:{tmp_path / 'fashion-mnist'}", kind="fashion-mnist", part="all")
    assert both.name == "fashion-mnist-all" and both.X.shape == (7, 12)
    np.testing.assert_array_equal(both.y, [3, 1, 4, 1, 5, 3, 1])


def test_missing_files_name_the_path(tmp_path):
    missing = tmp_path / "absent.svm"
    for call in (lambda: load_svmlight(missing), lambda: load_dataset(f"svmlight:{missing}"),
                 lambda: read_idx(missing)):
        with pytest.raises(DataFileError, match="not found") as info:
            call()
        assert str(missing) in str(info.value)
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte") as info:
        load_idx_dataset(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("content", ["1 1:0.5 2:abc\n", "hello world\n", "1 1:0.5 2\n"])
def test_malformed_svmlight(tmp_path, content):
    path = tmp_path / "bad.svm"
    path.write_text(content)
    with pytest.raises(DataFileError, match="<label> <index>:<value>") as info:
        load_svmlight(path)
    assert str(path) in str(info.value)


def test_idx_bad_magic_and_truncation(tmp_path):
    bad = write_idx(tmp_path / "bad.gz", np.zeros((2, 3, 3), np.uint8), magic=2050)
    with pytest.raises(DataFileError, match="not the magic number 2051.*2049") as info:
        read_idx(bad)
    assert str(bad) in str(info.value) and "2050" not in str(info.value)  # bytes not shown
    short = write_idx(tmp_path / "short", np.zeros((4, 2, 3), np.uint8), compress=False, drop=5)
    with pytest.raises(DataFileError, match=r"19 bytes, expected 24 \(= 4 x 2 x 3\)") as info:
        read_idx(short)
    assert str(short) in str(info.value)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"\x00\x00")
    with pytest.raises(DataFileError, match="too short"):
        read_idx(tiny)
    write_idx_set(tmp_path / "set", "train", np.zeros((3, 2, 2), np.uint8),
                  np.zeros(4, np.uint8))
    with pytest.raises(DataFileError, match="3 images but .* 4 labels"):
        load_idx_dataset(tmp_path / "set")


def test_non_finite_values_name_the_field_and_row(tmp_path):
    path = tmp_path / "nan.svm"
    path.write_text("1 1:0.5\n-1 1:1 2:nan\n1 2:inf\n")
    with pytest.raises(InputError, match=r"nan\.svm: invalid 'X' = 'nan in row 1") as info:
        load_svmlight(path)
    assert info.value.field == "X" and "finite" in info.value.allowed
    path.write_text("1 1:0.5\n1 1:1\nnan 2:1\n")
    with pytest.raises(InputError, match=r"invalid 'y' = 'nan in row 2"):
        load_svmlight(path)
    X = np.ones((4, 3))
    X[2, 1] = np.inf
    with pytest.raises(InputError, match=r"dense: invalid 'X' = 'inf in row 2"):
        make_dataset("dense", X, np.zeros(4), task="regression", source="test")
    path.write_text("")
    with pytest.raises(InputError, match="at least one row"):
        load_svmlight(path)



@pytest.mark.parametrize(("content", "line", "reason"), [
    (b"API_TOKEN=s3cr3t-value\n", 1, "the label (first entry) is not a number"),
    (b"root:x:0:0:operator:/home/op:/bin/bash\n", 1, "the label (first entry) is not a number"),
    (b"1 1:2\n\n# comment\n1 3:x9secret\n", 4, "feature entry 1: the value is not a number"),
    (b"1 2:2 1:3\n", 1, "feature entry 2: indices must be >= 0, increasing and unique"),
    (b"1 s3cr3t\n", 1, "feature entry 1 is not INDEX:VALUE"),
    (b"1 q:1\n", 1, "feature entry 1: the index is not an integer"),
])
def test_svmlight_errors_never_quote_the_file(tmp_path, content, line, reason):
    """A file that is not svmlight (a .env, a password file) is refused with the line number
    and the reason only: none of its content reaches the message."""
    path = tmp_path / ".env"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as info:
        load_svmlight(path)
    message = str(info.value)
    assert f"line {line}: {reason}" in message and str(path) in message
    for secret in ("s3cr3t", "operator", "bash", "x9secret", "q:1"):
        assert secret not in message
