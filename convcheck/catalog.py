"""What convcheck offers, as plain data for ``convcheck list``."""

from __future__ import annotations

from convcheck.algorithms import ALGORITHMS, ASYNC_ALGORITHMS
from convcheck.compressors import COMPRESSORS
from convcheck.data import DATASETS, SCALINGS, SPLITS, find_data_dir
from convcheck.errors import DataFileError
from convcheck.objectives import FAMILIES


def catalog(data_dir: str | None = None) -> dict:
    """Objectives, compressors (with their guarantee), datasets (with availability), splits,
    bounds (with provenance and citation)."""
    try:
        shared = str(find_data_dir(data_dir))
    except DataFileError:
        shared = None
    return {
        "algorithms": {
            name: {
                "engine": "async" if name in ASYNC_ALGORITHMS else "sync",
                "description": cls.__doc__.strip().splitlines()[0],
            }
            for name, cls in ALGORITHMS.items()
        },
        "objectives": list(FAMILIES),
        "compressors": {
            name: cls.__doc__.strip().splitlines()[0] for name, cls in COMPRESSORS.items()
        },
        "datasets": {
            name: {
                "task": info.task,
                "description": info.description,
                "available": (not info.needs_data_dir) or shared is not None,
            }
            for name, info in DATASETS.items()
        },
        "data_dir": shared,
        "splits": list(SPLITS),
        "scalings": list(SCALINGS),
        "bounds": _bounds(),
    }


def _bounds() -> dict:
    """Every bound with its provenance and citation (:mod:`convcheck.theory.registry`)."""
    from convcheck.theory.registry import BOUNDS

    return {name: bound.describe() for name, bound in BOUNDS.items()}


def format_catalog(entries: dict) -> str:
    """Human-readable listing."""
    lines = ["algorithms:"]
    lines += [
        f"  {name:18s} {info['engine']:6s} {info['description']}"
        for name, info in entries.get("algorithms", {}).items()
    ]
    lines += ["", "objectives: " + ", ".join(entries["objectives"]), "", "compressors:"]
    lines += [f"  {name:12s} {text}" for name, text in entries["compressors"].items()]
    lines += ["", f"datasets (data dir: {entries['data_dir'] or 'not found'}):"]
    for name, info in entries["datasets"].items():
        mark = "" if info["available"] else "  [files not found]"
        lines.append(f"  {name:26s} {info['task']:14s} {info['description']}{mark}")
    lines += ["", "splits: " + ", ".join(entries["splits"])]
    lines += ["scalings: " + ", ".join(entries["scalings"])]
    lines += ["", "bounds:"]
    lines += [
        f"  {name:20s} {info['provenance']:16s} {info['citation']}"
        for name, info in entries.get("bounds", {}).items()
    ]
    return "\n".join(lines)
