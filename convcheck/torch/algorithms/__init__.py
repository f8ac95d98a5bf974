"""The algorithms of THEORY.md §3 on torch tensors, and their registry.

Names and parameters are the numpy engine's (:mod:`convcheck.algorithms`) where both exist
(``gd``, ``gd-sec``, ``ef``, ``ef21``, ``bidir-topk``); ``dgs`` and ``lags`` are torch only for
now.
"""

from __future__ import annotations

import inspect
from typing import Any

from convcheck.errors import InputError, check_choice
from convcheck.torch.algorithms.base import (
    Oracle,
    TorchAlgorithm,
    state_from_dict,
    state_to_dict,
)
from convcheck.torch.algorithms.bidirectional import BidirectionalTopK
from convcheck.torch.algorithms.dgs import DGS
from convcheck.torch.algorithms.ef import ErrorFeedback
from convcheck.torch.algorithms.ef21 import EF21
from convcheck.torch.algorithms.gd import GD
from convcheck.torch.algorithms.gdsec import GDSEC
from convcheck.torch.algorithms.lags import (
    LAGS,
    layer_delta,
    pipeline_times,
    select_layer_counts,
)
from convcheck.torch.compressors import TorchCompressor, make_compressor

ALGORITHMS: dict[str, type[TorchAlgorithm]] = {
    cls.name: cls for cls in (GD, GDSEC, ErrorFeedback, EF21, BidirectionalTopK, DGS, LAGS)
}

#: Algorithms that take the model's layer sizes (``layer_sizes``).
LAYERED = ("dgs", "lags")


def make_algorithm(name: str, **params: Any) -> TorchAlgorithm:
    """Build torch algorithm ``name`` from plain parameters (config files, Python).

    Algorithms with a ``compressor`` take it as a name (default ``"top-k"``) or an instance,
    and every parameter they do not know goes to the compressor (``k``, ``ratio``, ...), as
    in :func:`convcheck.algorithms.make_algorithm`. ``alpha`` is a number.

    Raises
    ------
    InputError
        Unknown algorithm or parameter, or a parameter outside its range.
    """
    cls = ALGORITHMS[check_choice("algorithm", name, ALGORITHMS)]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    params = dict(params)
    if "compressor" in accepted:
        own = {key: params.pop(key) for key in list(params) if key in accepted}
        compressor = own.pop("compressor", "top-k")
        if isinstance(compressor, str):
            compressor = make_compressor(compressor, **params)
        elif params:
            key = next(iter(params))
            raise InputError(key, params[key], "no compressor parameters with an instance")
        if "alpha" not in own:
            raise InputError("alpha", None, "a step size > 0")
        return cls(own.pop("alpha"), compressor, **own)
    unknown = [key for key in params if key not in accepted]
    if unknown:
        allowed = ", ".join(accepted)
        raise InputError(unknown[0], params[unknown[0]], f"a parameter of {name}: {allowed}")
    if "alpha" not in params:
        raise InputError("alpha", None, "a step size > 0")
    return cls(**params)


__all__ = [
    "ALGORITHMS",
    "BidirectionalTopK",
    "DGS",
    "EF21",
    "ErrorFeedback",
    "GD",
    "GDSEC",
    "LAGS",
    "LAYERED",
    "Oracle",
    "TorchAlgorithm",
    "TorchCompressor",
    "layer_delta",
    "make_algorithm",
    "pipeline_times",
    "select_layer_counts",
    "state_from_dict",
    "state_to_dict",
]
