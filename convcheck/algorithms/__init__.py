"""The algorithms, one module each, and their registry.

Every algorithm is one :class:`Algorithm` (module :mod:`~convcheck.algorithms.base`): validated
parameters, a worker half and a server half written over :mod:`convcheck.arrays`, and the
asynchronous rule where it has one. Synchronous ones (``"sync"`` in ``transports``) run with
:func:`convcheck.engine.run` and the torch backend; asynchronous ones (``async-sgd``,
``async-sparse-sgd``, ``dgs``) with :func:`convcheck.engine.run_async`. Plug-ins add algorithms
through the entry-point group ``convcheck.algorithms``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from convcheck.algorithms.async_sgd import AsyncSGD, AsyncSparseSGD
from convcheck.algorithms.base import DENSE, SPARSE, Algorithm, Param, resolve_step
from convcheck.algorithms.bidirectional import BidirectionalTopK
from convcheck.algorithms.dgs import DGS
from convcheck.algorithms.ef import ErrorFeedback
from convcheck.algorithms.ef21 import EF21
from convcheck.algorithms.ef21bc import EF21BC
from convcheck.algorithms.gd import GD
from convcheck.algorithms.gdsec import GDSEC
from convcheck.algorithms.lags import LAGS
from convcheck.compressors import Compressor, make_compressor
from convcheck.errors import InputError, check_choice
from convcheck.registry import Registry

if TYPE_CHECKING:
    from convcheck.objectives import Constants

def _defect(obj: Any) -> str:
    """What keeps ``obj`` from being a registered algorithm (``""``: nothing)."""
    if not (isinstance(obj, type) and issubclass(obj, Algorithm)):
        return "not a subclass of convcheck.algorithms.Algorithm"
    missing = sorted(getattr(obj, "__abstractmethods__", ()))
    if missing:
        return "it lacks " + ", ".join(missing) + " (every algorithm has both halves)"
    for attribute in ("name", "summary", "parameters"):
        if not hasattr(obj, attribute):
            return f"it does not declare {attribute!r}"
    return ""


ALGORITHMS: Registry[type[Algorithm]] = Registry(
    "convcheck.algorithms",
    {cls.name: cls for cls in (GD, GDSEC, ErrorFeedback, EF21, EF21BC, BidirectionalTopK, LAGS,
                               AsyncSGD, AsyncSparseSGD, DGS)},
    _defect,
    "an Algorithm subclass with its halves, name, summary and parameters",
)

class _Asynchronous(Mapping[str, type[Algorithm]]):
    """The registered algorithms that run on the event engine only."""

    def _names(self) -> list[str]:
        return [name for name, cls in ALGORITHMS.items() if "sync" not in cls.transports]

    def __getitem__(self, name: str) -> type[Algorithm]:
        if name not in self._names():
            raise KeyError(name)
        return ALGORITHMS[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


#: Asynchronous algorithms (the event engine); also in :data:`ALGORITHMS`.
ASYNC_ALGORITHMS: Mapping[str, type[Algorithm]] = _Asynchronous()

#: Step size used when none is given.
DEFAULT_STEP = "1/L"


def is_asynchronous(name: str) -> bool:
    """Whether algorithm ``name`` runs on the event engine (its only transport is ``async``)."""
    return "sync" not in ALGORITHMS[check_choice("algorithm", name, ALGORITHMS)].transports


def make_algorithm(name: str, constants: Constants | None = None, **params: Any) -> Algorithm:
    """Build algorithm ``name`` from plain parameters (command line, case files, Python).

    ``alpha`` may be a number or ``"c/NAME"`` (e.g. ``"1/L"``, resolved with ``constants``;
    default :data:`DEFAULT_STEP`). Algorithms that take a compressor get it from ``compressor``
    (a name from :data:`convcheck.compressors.COMPRESSORS` or an instance; default top-k) and
    every parameter the algorithm itself does not know (``k``, ``ratio``, ``scaled``, …).

    Raises
    ------
    InputError
        Unknown algorithm or parameter, or a parameter outside its allowed range.
    """
    cls = ALGORITHMS[check_choice("algorithm", name, ALGORITHMS)]
    own = {p.name for p in cls.parameters}
    params = dict(params)
    alpha = params.pop("alpha", DEFAULT_STEP)
    if isinstance(alpha, str):
        if constants is None:
            raise InputError("alpha", alpha, "a number (no problem constants to resolve it)")
        alpha = resolve_step(alpha, constants)
    values = {key: params.pop(key) for key in list(params) if key in own}
    if "compressor" in own:
        compressor = values.pop("compressor", "top-k")
        if not isinstance(compressor, Compressor):
            compressor = make_compressor(compressor, **params)
        elif params:
            key = next(iter(params))
            raise InputError(key, params[key],
                             "no compressor parameters when a Compressor instance is given")
        values["compressor"], params = compressor, {}
    if params:
        key = next(iter(params))
        raise InputError(key, params[key], f"a parameter of {name}: " + ", ".join(sorted(own)))
    return cls(alpha=alpha, **values)


__all__ = [
    "ALGORITHMS",
    "ASYNC_ALGORITHMS",
    "AsyncSGD",
    "AsyncSparseSGD",
    "BidirectionalTopK",
    "DENSE",
    "DGS",
    "EF21",
    "EF21BC",
    "ErrorFeedback",
    "GD",
    "GDSEC",
    "LAGS",
    "SPARSE",
    "Algorithm",
    "Param",
    "is_asynchronous",
    "make_algorithm",
    "resolve_step",
]
