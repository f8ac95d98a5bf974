"""What every algorithm is: validated parameters, a small state, and a step.

An algorithm never counts bits, evaluates the trace or decides when to stop: it returns the
:class:`Messages` of a round and the engine prices them with their codecs
(:mod:`convcheck.engine`). Worker state is kept as ``(M, d)`` arrays and updated without a
Python loop over workers.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convcheck.compressors import Compressor, Identity, Threshold
from convcheck.described import Described
from convcheck.errors import InputError, check_real
from convcheck.objectives import Constants

#: Dense float message (a model or a full gradient): ``d·32`` bits.
DENSE = Identity()
#: Sparse message of whatever is nonzero (an aggregate of sparse vectors): index list or bitmap
#: plus 32-bit values, priced by :func:`convcheck.encoding.sparse_bits`.
SPARSE = Threshold(0.0)


@dataclass(frozen=True)
class Messages:
    """What one round put on the wire; the engine prices it with the codecs.

    Attributes
    ----------
    up : ndarray, shape (M, d)
        Row ``m`` is worker ``m``'s message to the server.
    up_codec : Compressor
        Prices each row: ``up_codec.bits(up)``.
    down : ndarray, shape (d,) or (M, d)
        A broadcast (every worker receives it) or one message per worker.
    down_codec : Compressor
    """

    up: np.ndarray
    up_codec: Compressor
    down: np.ndarray
    down_codec: Compressor


class Algorithm(Described, abc.ABC):
    """A synchronous distributed algorithm.

    Subclasses validate their parameters in ``__init__``, build their state in :meth:`start`
    and advance it by one round in :meth:`step`, following THEORY.md §3 line by line.

    Attributes
    ----------
    name : str
        Registry name.
    diagnostic_names : tuple of str
        Names of the per-iteration quantities :meth:`diagnostics` returns.
    """

    name: ClassVar[str]
    diagnostic_names: ClassVar[tuple[str, ...]] = ()

    @property
    def stochastic(self) -> bool:
        """Whether a run consumes randomness (minibatches or a randomized compressor)."""
        return False

    @abc.abstractmethod
    def start(self, theta0: np.ndarray, oracle: Any, rng: np.random.Generator) -> Any:
        """The state at ``θ⁰``; it has an attribute ``theta``.

        Returns ``(state, messages)``: ``messages`` is the initial communication
        (:class:`Messages`) or ``None``.
        """

    @abc.abstractmethod
    def step(self, state: Any, oracle: Any, rng: np.random.Generator) -> Messages:
        """Advance ``state`` from ``θ^k`` to ``θ^{k+1}`` in place; the round's messages."""

    def diagnostics(self, state: Any, oracle: Any) -> tuple[float, ...]:
        """Values of :attr:`diagnostic_names` at the current state."""
        return ()

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Parameters (JSON-friendly) for traces and reports."""



def check_step(alpha: float) -> float:
    """Validate a step size ``α > 0``."""
    return check_real("alpha", alpha, 0.0, low_open=True)


def require_compressor(compressor: Any, field: str = "compressor") -> Compressor:
    """``compressor`` must be a :class:`~convcheck.compressors.Compressor` instance."""
    if not isinstance(compressor, Compressor):
        raise InputError(field, compressor, "a convcheck.compressors.Compressor instance")
    return compressor


def check_fits(compressor: Compressor, d: int, field: str = "compressor") -> None:
    """The compressor accepts dimension ``d`` (e.g. top-k needs ``k ≤ d``)."""
    low, high = compressor.dim_range()
    if d < low or (high is not None and d > high):
        allowed = f"a compressor for dimension d={d} (this one accepts d in [{low}, {high}])"
        raise InputError(field, repr(compressor), allowed)


def worker_mean(rows: np.ndarray) -> np.ndarray:
    """``(1/M) Σ_m x_m`` of an ``(M, d)`` array: ``rows.mean(axis=0)`` bit for bit, without the
    Python-level wrapper of ``ndarray.mean`` (it costs as much as the sum on small arrays)."""
    return np.add.reduce(rows, axis=0) / rows.shape[0]


def mean_square_norm(rows: np.ndarray) -> float:
    """``(1/M) Σ_m ‖x_m‖²`` of an ``(M, d)`` array, one single-threaded pass.

    (``einsum`` rather than a BLAS dot: a multithreaded BLAS call on one large vector is up to
    50× slower when another process holds a core.)
    """
    return float(np.einsum("ij,ij->", rows, rows)) / rows.shape[0]


#: Constants a step size may be expressed in (``"1/L"``, ``"0.5/L_tilde"``).
STEP_CONSTANTS = ("L", "L_tilde", "L_max", "mu")
_STEP_FORM = re.compile(r"^\s*(?:(?P<c>[0-9.eE+-]+)\s*/\s*)?(?P<name>[A-Za-z_]+)\s*$")


def resolve_step(value: float | str, constants: Constants, field: str = "alpha") -> float:
    """A step size given as a number or as ``"c/NAME"`` with NAME in :data:`STEP_CONSTANTS`.

    ``"1/L"`` → ``1/L``; ``"0.5/L_tilde"`` → ``0.5/L̃``; ``"L"`` alone is refused (a step is an
    inverse curvature).
    """
    allowed = "a number > 0 or 'c/NAME' with c > 0 and NAME in " + ", ".join(STEP_CONSTANTS)
    if not isinstance(value, str):
        return check_real(field, value, 0.0, low_open=True)
    match = _STEP_FORM.match(value)
    if match is None or match["c"] is None or match["name"] not in STEP_CONSTANTS:
        raise InputError(field, value, allowed)
    try:
        numerator = float(match["c"])
    except ValueError:
        raise InputError(field, value, allowed) from None
    denominator = float(getattr(constants, match["name"]))
    if not numerator > 0 or not denominator > 0:
        raise InputError(field, value, allowed + f" (here {match['name']}={denominator:g})")
    return numerator / denominator
