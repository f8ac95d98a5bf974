"""Strict JSON for reports and traces: non-finite floats become ``null``, files are atomic."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from convcheck.atomic import write_atomic


def strict_json(value: Any) -> Any:
    """``value`` with NaN and ±inf replaced by ``None``, recursively (dicts, lists, tuples)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def write_json(path: str | Path, document: Any) -> Path:
    """Write ``document`` as indented strict JSON to ``path`` atomically."""
    text = json.dumps(strict_json(document), indent=2, allow_nan=False, default=_plain)
    return write_atomic(path, text + "\n")


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain Python numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
