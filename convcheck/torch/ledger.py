"""What a round puts on the wire, and the per-worker bit ledger, priced as in the numpy engine.

An algorithm step returns :class:`Messages`: parts of the uplink and of the downlink, each a
tensor with the codec that prices it (``codec.bits``: the length of a real encoding, see
:mod:`convcheck.torch.compressors`) and the workers it concerns. :class:`BitLedger` adds one row
of per-worker bits per round. The pricing is the numpy engine's (:mod:`convcheck.engine.sync`):
a worker message counts for its sender, a broadcast counts once per receiving worker, a dense
float message of dimension ``d`` costs ``32·d`` bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from convcheck.engine.trace import Ledger
from convcheck.errors import InputError
from convcheck.torch.compressors import TorchCompressor


@dataclass(frozen=True)
class Part:
    """One group of messages.

    Attributes
    ----------
    values : Tensor, shape (n, D) or (D,)
        Rows: one message per worker in ``workers``. A vector: one message to (or from) every
        worker in ``workers`` (a broadcast).
    codec : TorchCompressor
        Prices each message (``codec.bits``).
    workers : sequence of int, optional
        The workers concerned; ``None`` means all ``M`` (rows then are workers ``0..M−1``).
    """

    values: torch.Tensor
    codec: TorchCompressor
    workers: Sequence[int] | None = None


@dataclass(frozen=True)
class Messages:
    """Uplink and downlink of one round, as parts."""

    up: tuple[Part, ...]
    down: tuple[Part, ...]

    @classmethod
    def of(
        cls,
        up: torch.Tensor,
        up_codec: TorchCompressor,
        down: torch.Tensor,
        down_codec: TorchCompressor,
    ) -> Messages:
        """The common case: every worker sends one row, and the server broadcasts one vector
        (``down`` of shape ``(D,)``) or sends one row per worker (``(M, D)``)."""
        return cls((Part(up, up_codec),), (Part(down, down_codec),))


def price(parts: Sequence[Part], workers: int) -> np.ndarray:
    """Bits per worker ``(M,)`` of a list of parts."""
    bits = np.zeros(workers, dtype=np.int64)
    for part in parts:
        who = np.arange(workers) if part.workers is None else np.asarray(part.workers, np.int64)
        cost = part.codec.bits(part.values)
        if part.values.ndim == 2 and part.values.shape[0] != who.size:
            raise InputError(
                "workers", f"{who.size} workers for {part.values.shape[0]} rows", "one per row"
            )
        np.add.at(bits, who, cost)
    return bits


class BitLedger:
    """Bits each worker sent (up) and received (down), one row per round.

    Row 0 is the initial communication (``None`` messages give a zero row), as in the numpy
    :class:`~convcheck.engine.trace.Ledger`.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._up: list[np.ndarray] = []
        self._down: list[np.ndarray] = []

    def record(self, messages: Messages | None) -> tuple[np.ndarray, np.ndarray]:
        """Price one round and append it; returns its ``(up, down)`` bits per worker."""
        if messages is None:
            up = down = np.zeros(self.workers, dtype=np.int64)
        else:
            up, down = price(messages.up, self.workers), price(messages.down, self.workers)
        self._up.append(up)
        self._down.append(down)
        return up, down

    @property
    def rounds(self) -> int:
        """Rows recorded (including row 0)."""
        return len(self._up)

    def to_ledger(self) -> Ledger:
        """The numpy engine's :class:`~convcheck.engine.trace.Ledger` of the rows so far."""
        empty = np.zeros((0, self.workers), dtype=np.int64)
        up = np.stack(self._up) if self._up else empty
        down = np.stack(self._down) if self._down else empty
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
