"""Checkpoints: one file holding everything a run needs to continue exactly.

A checkpoint is a dict of tensors, numbers, strings and lists (no pickled objects), written with
``torch.save`` into memory and then atomically to disk (:func:`convcheck.atomic.write_atomic`),
so an interrupted save never leaves a half-written file; it is read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from convcheck.atomic import write_atomic
from convcheck.errors import DataFileError, InputError

#: Format version written into every checkpoint.
FORMAT = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format version) to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    return write_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    DataFileError
        Missing or unreadable file, or a different format version.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        # the unpickler's message may quote the file: only its kind is shown
        raise DataFileError(f"cannot read checkpoint {path}: not a torch checkpoint "
                            f"({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataFileError(f"{path}: not a convcheck torch checkpoint of format {FORMAT}")
    return payload


def check_matches(path: str | Path, saved: Mapping[str, Any], expected: Mapping[str, Any]
                  ) -> None:
    """Refuse to resume from a checkpoint another run wrote.

    Every field of ``expected`` (``"algorithm"``, ``"D"``, ``"world size"``, ...) that ``saved``
    records with another value is named, with both values.

    Raises
    ------
    InputError
        Field ``checkpoint``, the path, and the differences.
    """
    differences = [f"{name}: {saved[name]!r} there, {value!r} here"
                   for name, value in expected.items()
                   if name in saved and saved[name] != value]
    if differences:
        raise InputError(
            "checkpoint", str(path),
            "a checkpoint of this run; it was written by another (" + "; ".join(differences)
            + "): resume with the config and command that wrote it, or use a new "
            "--checkpoint-dir",
        )
