"""Errors raised on bad input, and the small validators that raise them.

Every message names the offending field, the value received and the allowed
values, so a user never has to read a traceback from inside numpy to learn what
was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class ConvcheckError(Exception):
    """Base class of every error convcheck raises on purpose."""


class InputError(ConvcheckError, ValueError):
    """A parameter, a file or a dataset is not acceptable.

    Attributes
    ----------
    field : str
        Name of the offending field (``"k"``, ``"lam"``, ``"dataset"``, ...).
    value : Any
        The value received.
    allowed : str
        Human-readable description of the allowed values.
    """

    def __init__(self, field: str, value: Any, allowed: str, context: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        where = f"{context}: " if context else ""
        super().__init__(f"{where}invalid {field!r} = {value!r}; allowed: {allowed}")


class DataFileError(ConvcheckError, OSError):
    """A data file is missing or malformed. The message names the path and what was expected."""


class OptimumError(ConvcheckError, RuntimeError):
    """The reference optimum could not be certified (no minimizer, or the solver stalled)."""


def check_int(field: str, value: Any, low: int, high: int | None = None, context: str = "") -> int:
    """Return ``value`` as an int if ``low <= value <= high`` (``high=None``: no upper bound)."""
    allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise InputError(field, value, allowed, context)
    value = int(value)
    if value < low or (high is not None and value > high):
        raise InputError(field, value, allowed, context)
    return value


def check_real(
    field: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    context: str = "",
) -> float:
    """Return ``value`` as a finite float inside the interval; open/closed ends as flagged."""
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    allowed = f"a real number in {left}{low:g}, {high:g}{right}"
    if isinstance(value, bool):
        raise InputError(field, value, allowed, context)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(field, value, allowed, context) from None
    if not math.isfinite(number):
        raise InputError(field, value, allowed, context)
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if too_low or too_high:
        raise InputError(field, value, allowed, context)
    return number


def check_choice(field: str, value: Any, choices: Iterable[str], context: str = "") -> str:
    """Return ``value`` if it is one of ``choices``."""
    options = list(choices)
    if value not in options:
        raise InputError(field, value, "one of " + ", ".join(repr(c) for c in options), context)
    return value
