"""Checkpoints: one file holding everything a run needs to continue exactly.

A checkpoint is a dict of tensors, numbers, strings and lists (no pickled objects), written with
``torch.save`` into memory and then atomically to disk (:func:`convcheck.atomic.write_atomic`),
so an interrupted save never leaves a half-written file; it is read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from convcheck.atomic import write_atomic
from convcheck.errors import DataFileError

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
        raise DataFileError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataFileError(f"{path}: not a convcheck torch checkpoint of format {FORMAT}")
    return payload
