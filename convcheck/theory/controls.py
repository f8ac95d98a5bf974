"""Deliberately faulty algorithm variants: negative controls for the bound checks.

A check that cannot fail proves nothing (THEORY.md §6). Each class below is GD-SEC with one
injected bug; it keeps GD-SEC's parameters and claims to be GD-SEC (it is a subclass), so the
GD-SEC bounds are checked against its runs and must be seen to FAIL. The bug is applied around
the correct :meth:`GDSEC.step`, so the variants cannot drift from the real algorithm.

* :class:`GDSECStaleWorkerMemory` — the workers never update ``h_m`` while the server updates
  ``h``: the invariant ``h = (1/M)Σ_m h_m`` breaks, the server's estimate ``ĝ`` double-counts.
* :class:`GDSECErrorNotCleared` — the error memory keeps what was sent, ``e_m ← Δ_m`` instead of
  ``e_m ← Δ_m − Δ̂_m``: every sent difference is sent again next round.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convcheck.algorithms.base import Messages
from convcheck.algorithms.gdsec import GDSEC, GDSECState


class GDSECStaleWorkerMemory(GDSEC):
    """GD-SEC whose workers forget to update ``h_m`` (injected bug)."""

    name = "gd-sec-bug-stale-worker-memory"

    def step(self, state: GDSECState, oracle: Any, rng: np.random.Generator) -> Messages:
        kept = state.h_workers.copy()
        messages = super().step(state, oracle, rng)
        state.h_workers = kept
        return messages


class GDSECErrorNotCleared(GDSEC):
    """GD-SEC whose error memory is not cleared of what was sent (injected bug)."""

    name = "gd-sec-bug-error-not-cleared"

    def step(self, state: GDSECState, oracle: Any, rng: np.random.Generator) -> Messages:
        messages = super().step(state, oracle, rng)
        if self.error_correction:
            state.errors += messages.up
        return messages


#: The faulty variants by name, for negative-control cases.
FAULTY: dict[str, type[GDSEC]] = {
    cls.name: cls for cls in (GDSECStaleWorkerMemory, GDSECErrorNotCleared)
}
