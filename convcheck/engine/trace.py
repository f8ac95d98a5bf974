"""What a run leaves behind: per-iteration trace columns, the bit ledger, and their export.

Row ``k`` of every column describes iterate ``θ^k`` (``k = 0`` is the start); the bits of row
``k`` are those of the round that produced ``θ^k`` (row 0: any initial communication, e.g.
EF21's first dense gradients). Bits are per worker in the :class:`Ledger` and summed over
workers in the columns. A broadcast is counted once per receiving worker.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convcheck.atomic import write_atomic
from convcheck.errors import InputError
from convcheck.jsonio import strict_json

#: Columns every trace has, in order; algorithm diagnostics follow.
BASE_COLUMNS = (
    "iteration",
    "value",
    "suboptimality",
    "grad_norm_sq",
    "dist_sq",
    "step_norm",
    "bits_up",
    "bits_down",
    "bits_up_total",
    "bits_down_total",
    "nnz_up",
    "nnz_down",
)
#: Stop reasons.
STATUSES = ("completed", "target reached", "diverged", "stopped")
#: Export formats, by file suffix.
FORMATS = (".json", ".csv", ".parquet")


@dataclass(frozen=True)
class Ledger:
    """Bits each worker sent (``up``) and received (``down``) in each round.

    Attributes
    ----------
    up, down : ndarray of int64, shape (rounds + 1, M)
        Row 0 is the initial communication.
    """

    up: np.ndarray
    down: np.ndarray

    def totals(self) -> dict[str, int]:
        return {"bits_up": int(self.up.sum()), "bits_down": int(self.down.sum())}


@dataclass(frozen=True)
class Run:
    """One run of an algorithm on a problem.

    Attributes
    ----------
    columns : dict of str to ndarray
        :data:`BASE_COLUMNS` then the algorithm's diagnostics, one entry per iterate.
    ledger : Ledger
    status : {"completed", "target reached", "diverged", "stopped"}
        ("stopped": the trace reached its memory budget before the requested iterations)
    reason : str
        Why it stopped, in words.
    summary : dict
        Iterations run, final quantities, target statistics (iteration and bits to reach it).
    meta : dict
        Algorithm, problem, seed, engine counters, software versions, wall time.
    theta : ndarray
        The last iterate.
    """

    columns: dict[str, np.ndarray]
    ledger: Ledger
    status: str
    reason: str
    summary: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    theta: np.ndarray | None = None

    @property
    def iterations(self) -> int:
        return len(self.columns["iteration"]) - 1

    def to_dict(self, *, with_ledger: bool = True) -> dict[str, Any]:
        """Plain data (non-finite floats become ``None``) for JSON."""
        out: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "summary": self.summary,
            "meta": self.meta,
            "columns": {name: values.tolist() for name, values in self.columns.items()},
        }
        if with_ledger:
            out["ledger"] = {"up": self.ledger.up.tolist(), "down": self.ledger.down.tolist()}
        return strict_json(out)


def run_to_csv(run: Run) -> str:
    """The trace columns as CSV text (the ledger and metadata are in the JSON export)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(run.columns)
    writer.writerow(names)
    for row in zip(*(run.columns[name].tolist() for name in names), strict=True):
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


def run_to_parquet(run: Run) -> bytes:
    """The trace columns as a parquet table, with the JSON summary and metadata in its schema."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        allowed = "a .json or .csv file (pyarrow is not installed)"
        raise InputError("out", "*.parquet", allowed) from None
    table = pa.table(dict(run.columns))
    described = run.to_dict(with_ledger=False)
    del described["columns"]
    table = table.replace_schema_metadata({"convcheck": json.dumps(described)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_run(run: Run, path: str | os.PathLike) -> str:
    """Write ``run`` to ``path`` atomically, in the format its suffix names (:data:`FORMATS`)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix == ".json":
        content: str | bytes = json.dumps(run.to_dict(), indent=1) + "\n"
    elif suffix == ".csv":
        content = run_to_csv(run)
    elif suffix == ".parquet":
        content = run_to_parquet(run)
    else:
        raise InputError("out", os.fspath(path), "a file ending in " + ", ".join(FORMATS))
    write_atomic(path, content)
    return os.fspath(path)
