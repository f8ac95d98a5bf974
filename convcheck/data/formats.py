"""File formats read from any path: svmlight / LIBSVM text and IDX (the MNIST layout)."""

from __future__ import annotations

import bz2
import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from convcheck.data.dataset import TASKS, Dataset, make_dataset
from convcheck.errors import DataFileError, InputError, check_choice, check_int


def _existing_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{what} not found: {path} (expected an existing file)")
    return path


def load_svmlight(
    path: str | Path,
    *,
    n_features: int | None = None,
    zero_based: bool | str = "auto",
    name: str | None = None,
    task: str = "classification",
) -> Dataset:
    """Load an svmlight / LIBSVM text file (``.gz`` / ``.bz2`` read directly), keeping X sparse.

    Format, one sample per line: ``<label> <index>:<value> <index>:<value> ...``.

    Parameters
    ----------
    path : str or Path
    n_features : int, optional
        Width of X; pass it, since a feature absent from the file shrinks the inferred width.
    zero_based : bool or "auto"
        Whether indices start at 0 (``"auto"``: guessed from the file, as scikit-learn does).
    name : str, optional
        Dataset name; default: the file name without ``.gz``/``.bz2``.
    task : {"classification", "regression"}
        How to read the first column; labels are kept as in the file.

    Raises
    ------
    DataFileError
        Missing file, or content scikit-learn cannot parse (the path and the expected format
        are named).
    InputError
        NaN / inf in the file, or no rows.
    """
    from sklearn.datasets import load_svmlight_file

    path = _existing_file(path, "svmlight file")
    check_choice("task", task, TASKS, str(path))
    if n_features is not None:
        n_features = check_int("n_features", n_features, 1, context=str(path))
    if zero_based != "auto" and not isinstance(zero_based, bool):
        raise InputError("zero_based", zero_based, "True, False or 'auto'", str(path))
    try:
        X, y = load_svmlight_file(str(path), n_features=n_features, zero_based=zero_based)
    except (ValueError, EOFError, OSError):
        # the parser's own message may quote the file (a password file, a token): never shown
        raise DataFileError(
            f"cannot read {path} as svmlight/LIBSVM: {svmlight_problem(path, n_features)}. "
            "Expected one sample per line, '<label> <index>:<value> <index>:<value> ...'"
            + (f", with indices < n_features={n_features}" if n_features else "")
        ) from None
    if name is None:
        name = path.name.removesuffix(".gz").removesuffix(".bz2")
    source = f"svmlight file {path} (n_features={n_features}, zero_based={zero_based})"
    return make_dataset(name, X, y, task=task, source=source)


def svmlight_problem(path: Path, n_features: int | None = None) -> str:
    """Where and why ``path`` is not svmlight text, without quoting it: ``"line N: reason"``."""
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as stream:
            for number, raw in enumerate(stream, 1):
                tokens = raw.split(b"#", 1)[0].split()
                reason = _svmlight_line_problem(tokens, n_features) if tokens else None
                if reason is not None:
                    return f"line {number}: {reason}"
    except (OSError, EOFError, zlib.error):
        return "the file cannot be read or decompressed"
    return "the parser refused it (its message is not shown, as it may quote the file)"


def _svmlight_line_problem(tokens: list[bytes], n_features: int | None) -> str | None:
    """Why one line's tokens are not ``label [qid:Q] index:value ...`` (None: they are)."""
    try:
        float(tokens[0])
    except ValueError:
        return "the label (first entry) is not a number"
    entries = tokens[2:] if len(tokens) > 1 and tokens[1].startswith(b"qid:") else tokens[1:]
    previous = -1
    for position, token in enumerate(entries, 1):
        index, colon, value = token.partition(b":")
        if not colon:
            return f"feature entry {position} is not INDEX:VALUE"
        try:
            index_number = int(index)
        except ValueError:
            return f"feature entry {position}: the index is not an integer"
        try:
            float(value)
        except ValueError:
            return f"feature entry {position}: the value is not a number"
        if index_number < 0 or index_number <= previous:
            return f"feature entry {position}: indices must be >= 0, increasing and unique"
        if n_features is not None and index_number > n_features:
            return f"feature entry {position}: index above n_features={n_features}"
        previous = index_number
    return None


IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (MNIST layout), gzip-compressed or raw.

    Header: big-endian uint32 magic, then one uint32 per dimension; then the uint8 payload,
    row-major. Magic ``2051`` (0x00000803): images, shape ``(n, rows, cols)``; magic ``2049``
    (0x00000801): labels, shape ``(n,)``.

    Returns
    -------
    ndarray of uint8

    Raises
    ------
    DataFileError
        Missing or unreadable file, unknown magic, short header, or a payload whose length is
        not the product of the dimensions (truncated or padded file).
    """
    path = _existing_file(path, "IDX file")
    try:
        with path.open("rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(f"cannot read {path} as a (gzip-compressed) IDX file: {exc}") from exc
    if len(raw) < 8:
        raise DataFileError(
            f"{path}: {len(raw)} bytes, too short for an IDX header (expected at least 8)"
        )
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = {IDX_IMAGES_MAGIC: 3, IDX_LABELS_MAGIC: 1}.get(magic)
    if ndim is None:  # the bytes read are not shown: they may be anything
        raise DataFileError(
            f"{path}: not an IDX uint8 file (its first 4 bytes are not the magic number "
            f"{IDX_IMAGES_MAGIC} (images) or {IDX_LABELS_MAGIC} (labels), big-endian)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(
            f"{path}: header truncated ({len(raw)} bytes; expected {header} for magic {magic})"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims)
    if len(raw) - header != expected:
        raise DataFileError(
            f"{path}: payload of {len(raw) - header} bytes, expected {expected} "
            f"(= {' x '.join(map(str, dims))}) after the {header}-byte header; "
            "the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


IDX_KINDS = ("mnist", "fashion-mnist")
IDX_PARTS = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}


def _idx_file(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise DataFileError(
        f"missing IDX file in {directory}: expected {stem}.gz or {stem} (the standard "
        "MNIST / Fashion-MNIST file names: train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz)"
    )


def load_idx_dataset(
    directory: str | Path,
    *,
    kind: str = "mnist",
    part: str = "train",
    name: str | None = None,
) -> Dataset:
    """Load MNIST-layout IDX files (MNIST, Fashion-MNIST) from a directory.

    Reads ``{train,t10k}-images-idx3-ubyte[.gz]`` and ``{train,t10k}-labels-idx1-ubyte[.gz]``.
    Images are flattened row-major to ``(n, rows·cols)`` (784 for 28×28) and scaled to
    ``[0, 1]`` by ``x / 255``; labels (0–9) are the classes.

    Parameters
    ----------
    directory : str or Path
    kind : {"mnist", "fashion-mnist"}
        Which set the files are (default name and provenance only; the layout is the same).
    part : {"train", "test", "all"}
        ``"train"`` (60000 rows for MNIST), ``"test"`` (``t10k``, 10000), or both stacked.
    name : str, optional
        Default ``kind`` (``"mnist"``), with ``"-test"`` / ``"-all"`` appended for other parts.

    Raises
    ------
    DataFileError
        Missing directory or file, malformed IDX, or image and label counts that differ.
    """
    check_choice("kind", kind, IDX_KINDS, str(directory))
    check_choice("part", part, IDX_PARTS, str(directory))
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFileError(f"IDX directory not found: {directory} (expected a folder)")
    images, labels, files = [], [], []
    for prefix in IDX_PARTS[part]:
        image_path = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
        label_path = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
        image, label = read_idx(image_path), read_idx(label_path)
        if image.ndim != 3:
            raise DataFileError(f"{image_path}: holds labels; expected images (magic 2051)")
        if label.ndim != 1:
            raise DataFileError(f"{label_path}: holds images; expected labels (magic 2049)")
        if image.shape[0] != label.shape[0]:
            raise DataFileError(
                f"{image_path} has {image.shape[0]} images but {label_path} has "
                f"{label.shape[0]} labels; expected equal counts"
            )
        images.append(image.reshape(image.shape[0], -1))
        labels.append(label)
        files.extend([image_path.name, label_path.name])
    X = np.concatenate(images).astype(np.float64)
    X /= 255.0
    if name is None:
        name = kind if part == "train" else f"{kind}-{part}"
    source = f"IDX files {', '.join(files)} in {directory} (pixels / 255)"
    return make_dataset(name, X, np.concatenate(labels), task="classification", source=source)
