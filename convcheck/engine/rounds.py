"""Rounds of an algorithm's halves, for every transport that runs its workers in one process.

The numpy engine (:mod:`convcheck.engine.sync`), the torch simulator
(:class:`convcheck.torch.runner.Runner`) and the benchmark's per-worker reference loop all step
an algorithm with these functions, on numpy arrays or torch tensors alike:

* :func:`start` — the server and worker states at ``θ⁰`` and the initial uplink;
* :func:`sync_round` — one synchronous round: every worker's half on its rows, the server's half
  on their mean, the downlink received;
* :func:`async_round` — the asynchronous rule in rounds: every worker computes at the model it
  held at its last reply, then the server applies the messages one at a time in the given
  order and replies to each sender at once. This is the event engine's schedule with equal
  constant compute times and instantaneous links (cyclic order); a broadcast (DGS's resync)
  reaches a worker's computation after next, as in the event engine.

Each returns what it put on the wire, so the caller prices it (:func:`price`).

:func:`start` and :func:`sync_round` are shape-generic: with a leading run axis (``θ⁰``
``(R, d)``, gradients ``(R, M, d)``) they step the ``R`` runs of a batch at once, and
:func:`price_runs` prices such a round run by run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import Algorithm, put_rows, take_rows
from convcheck.arrays import namespace
from convcheck.compressors import Compressor


@dataclass
class States:
    """What a single-process transport holds.

    Attributes
    ----------
    server, workers : Any
        The algorithm's server state and workers' state (rows).
    model : array
        What the workers compute at next: ``(d,)`` for a synchronous algorithm; for an
        asynchronous one, one row per worker ``(M, d)``: each worker's model at its last reply.
    held : array or None
        Asynchronous only: each worker's model now, broadcasts since its last reply included.
    """

    server: Any
    workers: Any
    model: Any
    held: Any = None


@dataclass(frozen=True)
class Wire:
    """Messages of one round (or of the initialization), each with the codec that prices it.

    ``up`` holds one row per worker ``(M, d)`` (None: nothing sent); ``down`` is a list of
    ``(vector, codec, receivers)`` with ``receivers`` a worker index, or None for every worker.
    """

    up: Any
    up_codec: Compressor | None
    down: tuple[tuple[Any, Compressor, int | None], ...] = ()


def start(algorithm: Algorithm, theta0: Any, workers: int,
          initial_gradients: Callable[[], Any]) -> tuple[States, Wire]:
    """The states at ``θ⁰`` (the algorithm prepared for ``d``) and the initial messages."""
    xp = namespace(theta0)
    algorithm.prepare(theta0.shape[-1])
    w, up0 = algorithm.start_workers(theta0, workers, initial_gradients)
    s = algorithm.start_server(theta0, workers, None if up0 is None else xp.mean_rows(up0))
    initial = Wire(up0, algorithm.initial_codec if up0 is not None else None)
    if "sync" in algorithm.transports:
        return States(s, w, xp.copy(theta0)), initial
    return States(s, w, xp.repeat_rows(theta0, workers), xp.repeat_rows(theta0, workers)), initial


def sync_round(algorithm: Algorithm, states: States, gradients: Any, rng: Any) -> Wire:
    """One synchronous round from the gradients ``(M, d)`` at ``states.model``."""
    up = algorithm.worker(states.workers, gradients, states.model, rng)
    down = algorithm.server(states.server, namespace(up).mean_rows(up))
    states.model = algorithm.receive(states.workers, states.model, down)
    return Wire(up, algorithm.up_codec, ((down, algorithm.down_codec, None),))


def async_round(algorithm: Algorithm, states: States, gradients: Any, rng: Any,
                order: Sequence[int]) -> Wire:
    """One round of the asynchronous rule from the gradients ``(M, d)`` at ``states.model``
    (each worker's model at its last reply), messages applied in ``order``."""
    s, w, held = states.server, states.workers, states.held
    up = algorithm.worker(w, gradients, states.model, rng)
    down = []
    for k in order:
        broadcast = algorithm.server_event(s, k, up[k])
        if broadcast is not None:
            vector, codec = broadcast
            down.append((vector, codec, None))
            for j in range(held.shape[0]):
                held[j] = algorithm.receive_broadcast(take_rows(w, slice(j, j + 1)), held[j],
                                                      vector)
        vector, codec = algorithm.reply(s, k)
        down.append((vector, codec, k))
        row = slice(k, k + 1)
        mine = take_rows(w, row)
        held[k] = algorithm.receive_reply(mine, held[k], vector)
        put_rows(w, row, mine)
        states.model[k] = held[k]
    return Wire(up, algorithm.up_codec, tuple(down))


def price(wire: Wire, workers: int) -> tuple[Any, Any]:
    """Bits per worker ``(M,)`` of the uplink and of the downlink of ``wire`` (a broadcast counts
    once per receiving worker), int64 arrays of the messages' backend: numpy for numpy messages;
    torch tensors stay on their device (nothing is read back, so pricing never waits for the
    device)."""
    up = down = None
    if wire.up is not None:
        up = namespace(wire.up).bits(wire.up_codec, wire.up)
    for vector, codec, receiver in wire.down:
        if vector is None:
            continue
        xp = namespace(vector)
        bits = xp.bits(codec, vector)  # one row: shape (1,)
        if down is None:
            down = xp.zeros((workers,), like=bits)
        if receiver is None:
            down = down + bits
        else:
            down[receiver] += bits[0]
    if up is None and down is None:
        up = down = np.zeros(workers, dtype=np.int64)
    elif up is None:
        up = down * 0
    elif down is None:
        down = up * 0
    return up, down


def price_round(wire: Wire, workers: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """:func:`price` and :func:`nonzeros` of a round at once: on numpy, each message's
    nonzeros are counted once (:meth:`~convcheck.compressors.Compressor.price_rows`,
    :meth:`~convcheck.compressors.Compressor.price`)."""
    messages = [vector for vector, _, _ in wire.down if vector is not None]
    if wire.up is not None:
        messages.append(wire.up)
    if not all(isinstance(message, np.ndarray) for message in messages):
        return (*price(wire, workers), nonzeros(wire, workers))
    down = np.zeros(workers, dtype=np.int64)
    if wire.up is None:
        up, nnz_up = np.zeros(workers, dtype=np.int64), 0
    else:
        up, counts = wire.up_codec.price_rows(wire.up)
        nnz_up = int(np.add.reduce(counts))
    nnz_down = 0
    for vector, codec, receiver in wire.down:
        if vector is None:
            continue
        bits, count = codec.price(vector)
        if receiver is None:
            down += bits
            nnz_down += workers * count
        else:
            down[receiver] += bits
            nnz_down += count
    return up, down, (nnz_up, nnz_down)


def price_runs(wire: Wire, runs: int, workers: int
               ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """:func:`price` and :func:`nonzeros` of a batch's round, run by run: bits ``(R, M)`` up and
    down, and nonzeros ``(R,)`` up and down (uplink rows ``(R, M, d)``, broadcasts ``(R, d)``)."""
    up = np.zeros((runs, workers), dtype=np.int64)
    down = np.zeros((runs, workers), dtype=np.int64)
    nnz_up = np.zeros(runs, dtype=np.int64)
    nnz_down = np.zeros(runs, dtype=np.int64)
    if wire.up is not None:
        bits, counts = _price_rows(wire.up_codec, wire.up)
        up += bits.reshape(runs, workers)
        nnz_up += counts.reshape(runs, workers).sum(axis=1)
    for vector, codec, receiver in wire.down:
        if vector is None:
            continue
        bits, count = _price_rows(codec, vector)
        if receiver is None:
            down += bits[:, None]
            nnz_down += workers * count
        else:
            down[:, receiver] += bits
            nnz_down += count
    return up, down, (nnz_up, nnz_down)


def _price_rows(codec: Compressor, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Bits and nonzeros of each row (last axis) of ``x``, flattened: int64 numpy."""
    rows = x.reshape(-1, x.shape[-1])
    if isinstance(x, np.ndarray):
        return codec.price_rows(rows)
    xp = namespace(x)
    return xp.to_numpy(xp.bits(codec, rows)), rows.count_nonzero(dim=1).cpu().numpy()


def nonzeros(wire: Wire, workers: int) -> tuple[int, int]:
    """Nonzero entries sent up and down (a broadcast counts once per receiving worker)."""
    up = 0 if wire.up is None else _count(wire.up)
    down = sum(_count(v) * (workers if r is None else 1) for v, _, r in wire.down if v is not None)
    return up, down


def _count(x: Any) -> int:
    if isinstance(x, np.ndarray):
        return int(np.count_nonzero(x))
    return int(x.count_nonzero())
