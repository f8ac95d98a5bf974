"""Algorithms of THEORY.md §3, one module per family, and their registry.

Synchronous algorithms (:class:`Algorithm`) run with :func:`convcheck.engine.run`; asynchronous
ones (:class:`AsyncAlgorithm`: ``async-sgd``, ``async-sparse-sgd``, ``dgs``) with
:func:`convcheck.engine.run_async`. Both are built by :func:`make_algorithm`.
"""

from __future__ import annotations

import inspect
from typing import Any

from convcheck.algorithms.async_base import AsyncAlgorithm
from convcheck.algorithms.async_sgd import AsyncSGD, AsyncSparseSGD
from convcheck.algorithms.base import Algorithm, Messages, resolve_step
from convcheck.algorithms.bidirectional import BidirectionalTopK
from convcheck.algorithms.dgs import DGS
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.algorithms.ef21 import EF21
from convcheck.algorithms.gd import GD
from convcheck.algorithms.gdsec import GDSEC
from convcheck.compressors import Compressor, make_compressor
from convcheck.errors import InputError, check_choice
from convcheck.objectives import Constants

ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls for cls in (GD, GDSEC, ErrorFeedback, EF21, BidirectionalTopK)
}
#: Asynchronous algorithms (event engine); also in :data:`ALGORITHMS`.
ASYNC_ALGORITHMS: dict[str, type[AsyncAlgorithm]] = {
    cls.name: cls for cls in (AsyncSGD, AsyncSparseSGD, DGS)
}
ALGORITHMS.update(ASYNC_ALGORITHMS)

#: Step size used when none is given.
DEFAULT_STEP = "1/L"


def make_algorithm(
    name: str, constants: Constants | None = None, **params: Any
) -> Algorithm | AsyncAlgorithm:
    """Build algorithm ``name`` from plain parameters (command line, case files, Python).

    ``alpha`` may be a number or ``"c/NAME"`` (e.g. ``"1/L"``, resolved with ``constants``;
    default :data:`DEFAULT_STEP`). Algorithms that take a compressor get it from
    ``compressor`` (a name from :data:`convcheck.compressors.COMPRESSORS` or an instance) and
    every parameter the algorithm itself does not know (``k``, ``ratio``, ``scaled``, …).

    Raises
    ------
    InputError
        Unknown algorithm or parameter, or a parameter outside its allowed range.
    """
    cls = ALGORITHMS[check_choice("algorithm", name, ALGORITHMS)]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    params = dict(params)
    alpha = params.pop("alpha", DEFAULT_STEP)
    if isinstance(alpha, str):
        if constants is None:
            raise InputError("alpha", alpha, "a number (no problem constants to resolve it)")
        alpha = resolve_step(alpha, constants)
    if "compressor" in accepted:
        own = {key: params.pop(key) for key in list(params) if key in accepted}
        compressor = own.pop("compressor", "top-k")
        if not isinstance(compressor, Compressor):
            compressor = make_compressor(compressor, **params)
        elif params:
            raise InputError(
                next(iter(params)),
                params[next(iter(params))],
                "no compressor parameters when a Compressor instance is given",
            )
        return cls(alpha, compressor, **own)
    unknown = [key for key in params if key not in accepted]
    if unknown:
        allowed = ", ".join(accepted)
        raise InputError(unknown[0], params[unknown[0]], f"a parameter of {name}: {allowed}")
    return cls(alpha, **params)


__all__ = [
    "ALGORITHMS",
    "ASYNC_ALGORITHMS",
    "Algorithm",
    "AsyncAlgorithm",
    "AsyncSGD",
    "AsyncSparseSGD",
    "DGS",
    "BidirectionalTopK",
    "EF21",
    "ErrorFeedback",
    "GD",
    "GDSEC",
    "Messages",
    "make_algorithm",
    "resolve_step",
]
