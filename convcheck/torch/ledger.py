"""The per-worker bit ledger of a torch run, in the numpy engine's format.

A transport prices what it put on the wire — the single-process ones with
:func:`convcheck.engine.rounds.price` (the numpy engine's pricing: a worker message counts for
its sender, a broadcast once per receiving worker, a dense float message of dimension ``d`` costs
``32·d`` bits), the distributed ones with the same codecs where the messages are — and
:class:`BitLedger` adds one row of per-worker bits per round.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.engine.trace import Ledger
from convcheck.errors import InputError


class BitLedger:
    """Bits each worker sent (up) and received (down), one row per round.

    Row 0 is the initial communication (:meth:`record_empty` when there is none), as in the numpy
    :class:`~convcheck.engine.trace.Ledger`.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._up: list[np.ndarray] = []
        self._down: list[np.ndarray] = []

    def record_empty(self) -> None:
        """Append a round without messages (row 0 of a run without an initial uplink)."""
        zeros = np.zeros(self.workers, dtype=np.int64)
        self.record_bits(zeros, zeros)

    def record_bits(self, up: Any, down: Any) -> None:
        """Append one round already priced: bits per worker up and down, shape ``(M,)``, numpy
        or int64 tensors (kept on their device until the ledger is read: :meth:`to_ledger`
        reads every pending row back at once)."""
        rows = []
        for name, row in (("up", up), ("down", down)):
            if not hasattr(row, "device"):
                row = np.asarray(row, dtype=np.int64)
            if tuple(row.shape) != (self.workers,):
                raise InputError(name, f"shape {tuple(row.shape)}", f"({self.workers},)")
            rows.append(row)
        self._up.append(rows[0])
        self._down.append(rows[1])

    @staticmethod
    def _on_host(rows: list) -> list[np.ndarray]:
        """``rows`` with every tensor replaced by its numpy value, read back in one transfer."""
        pending = [i for i, row in enumerate(rows) if not isinstance(row, np.ndarray)]
        if pending:
            import torch

            values = torch.stack([rows[i].to(torch.int64) for i in pending]).cpu().numpy()
            for i, value in zip(pending, values, strict=True):
                rows[i] = value
        return rows

    @property
    def rounds(self) -> int:
        """Rows recorded (including row 0)."""
        return len(self._up)

    def to_ledger(self) -> Ledger:
        """The numpy engine's :class:`~convcheck.engine.trace.Ledger` of the rows so far."""
        empty = np.zeros((0, self.workers), dtype=np.int64)
        up = np.stack(self._on_host(self._up)) if self._up else empty
        down = np.stack(self._on_host(self._down)) if self._down else empty
        return Ledger(up, down)

    def totals(self) -> dict[str, int]:
        """Bits up and down over all rounds and workers."""
        return self.to_ledger().totals()

    def state_dict(self) -> dict:
        ledger = self.to_ledger()
        return {"workers": self.workers, "up": ledger.up.copy(), "down": ledger.down.copy()}

    def load_state_dict(self, state: dict) -> None:
        if state["workers"] != self.workers:
            raise InputError("workers", state["workers"], f"{self.workers} (this ledger's)")
        self._up = [np.asarray(row, dtype=np.int64) for row in state["up"]]
        self._down = [np.asarray(row, dtype=np.int64) for row in state["down"]]
