"""What every torch algorithm is: parameters, a state of tensors, a worker half and a server half.

The state holds the server's vectors ``(D,)`` and the workers' ``(M, D)`` tensors (row ``m``:
worker ``m``; a layer's memory is a column slice, see :class:`~convcheck.torch.layout.Layout`).
Each algorithm splits its round into pure functions on tensors — what a worker computes from its
rows (``worker``) and what the server computes from the aggregate (``server``) — and ``step``
composes them for ``M`` workers in one process. A multi-process backend calls the same halves
with one row per rank and a collective in between, so nothing here assumes one process.

An *oracle* gives the gradients: ``oracle(points)`` with ``points`` a shared ``(D,)`` model or
per-worker models ``(M, D)`` returns ``(M, D)`` gradients (full, or minibatch gradients that
advance the oracle's sampler) and has an attribute ``workers`` (``M``).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Protocol

import torch

from convcheck.compressors import Compressor
from convcheck.described import Described
from convcheck.errors import InputError, check_int
from convcheck.torch.compressors import TorchCompressor, to_torch
from convcheck.torch.ledger import Messages

Tensor = torch.Tensor


class Oracle(Protocol):
    """Gradients of the ``M`` workers' objectives."""

    workers: int

    def __call__(self, points: Tensor) -> Tensor:
        """``(M, D)`` gradients at a shared ``(D,)`` or per-worker ``(M, D)`` point."""


class TorchAlgorithm(Described, abc.ABC):
    """A distributed algorithm on flat torch parameters.

    Attributes
    ----------
    name : str
        Registry name (the numpy engine's name where both exist).
    State : type
        The dataclass of its state (tensors and counters); has a field ``theta``, the server
        model. Checkpoints store its fields (:func:`state_to_dict`).
    """

    name: ClassVar[str]
    State: ClassVar[type]

    @property
    def randomized(self) -> bool:
        """Whether ``step`` consumes the algorithm's generator."""
        return False

    @abc.abstractmethod
    def start(self, theta0: Tensor, oracle: Oracle, generator: torch.Generator) -> tuple:
        """``(state, messages)`` at ``θ⁰``; ``messages`` is the initial communication or None."""

    @abc.abstractmethod
    def step(self, state: Any, oracle: Oracle, generator: torch.Generator) -> Messages:
        """Advance ``state`` by one round (in place); the round's messages."""

    def diagnostics(self, state: Any) -> dict[str, float]:
        """Named scalars of the current state for traces (error norms, ...)."""
        return {}

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Parameters (JSON-friendly)."""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": "torch"}

    def __repr__(self) -> str:
        return "torch." + super().__repr__()


def state_to_dict(state: Any) -> dict[str, Any]:
    """The fields of a state dataclass; tensors are cloned (a checkpoint must not alias)."""
    return {
        f.name: (value.detach().clone() if isinstance(value, torch.Tensor) else value)
        for f in dataclasses.fields(state)
        for value in [getattr(state, f.name)]
    }


def state_from_dict(algorithm: TorchAlgorithm, values: dict[str, Any]) -> Any:
    """Rebuild ``algorithm``'s state from :func:`state_to_dict` output."""
    names = {f.name for f in dataclasses.fields(algorithm.State)}
    if set(values) != names:
        raise InputError(
            "state", sorted(values), f"the fields of {algorithm.State.__name__}: {sorted(names)}"
        )
    return algorithm.State(**values)


def mean_square_norm(rows: Tensor) -> float:
    """``(1/M) Σ_m ‖x_m‖²`` of an ``(M, D)`` tensor."""
    return float(rows.double().square().sum() / rows.shape[0])


def torch_compressor(compressor: Any, field: str = "compressor") -> TorchCompressor:
    """A torch compressor from a torch or numpy compressor instance."""
    if not isinstance(compressor, (TorchCompressor, Compressor)):
        raise InputError(field, compressor, "a compressor instance (numpy or torch)")
    return to_torch(compressor)


def check_layers(layer_sizes: Any, d: int | None = None) -> tuple[int, ...] | None:
    """Validate layer sizes (positive integers; summing to ``d`` when given)."""
    if layer_sizes is None:
        return None
    try:
        sizes = tuple(check_int("layer_sizes", s, 1) for s in layer_sizes)
    except TypeError:
        raise InputError("layer_sizes", layer_sizes, "a sequence of integers >= 1") from None
    if not sizes or (d is not None and sum(sizes) != d):
        raise InputError("layer_sizes", layer_sizes, f"integers >= 1 summing to D={d}")
    return sizes
