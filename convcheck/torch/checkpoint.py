"""Checkpoints: one file holding everything a run needs to continue exactly.

A checkpoint is a dict of tensors, numbers, strings and lists (no pickled objects), written with
``torch.save`` into memory and then atomically to disk (:func:`convcheck.atomic.write_atomic`),
so an interrupted save never leaves a half-written file; it is read back with
``torch.load(weights_only=True)``. An algorithm's states (dataclasses of tensors and numbers)
are saved field by field (:func:`state_fields`) and rebuilt with :func:`restored_state`.
"""

from __future__ import annotations

import dataclasses
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


def state_fields(state: Any) -> dict[str, Any]:
    """The fields of a state dataclass by name; tensors cloned (a checkpoint must not alias)."""
    return {f.name: (v.detach().clone() if isinstance(v, torch.Tensor) else v)
            for f in dataclasses.fields(state) for v in [getattr(state, f.name)]}


def restored_state(state: Any, values: dict[str, Any], device: torch.device, what: str) -> Any:
    """A state of ``state``'s type from :func:`state_fields` output, tensors on ``device``.

    Raises
    ------
    InputError
        ``values`` does not hold exactly the fields of ``state`` (``what`` names it).
    """
    names = {f.name for f in dataclasses.fields(state)}
    if set(values) != names:
        raise InputError("checkpoint", sorted(values), f"the fields of the {what}: {sorted(names)}")
    return type(state)(**{k: v.to(device) if isinstance(v, torch.Tensor) else v
                          for k, v in values.items()})
