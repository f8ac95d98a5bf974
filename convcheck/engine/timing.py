"""Simulated time of the asynchronous engine: compute-time models and the link model.

A worker's round trip is: receive its model (downlink), compute for a duration drawn from its
compute-time model, send its message (uplink). The link prices a message of ``b`` bits at
``latency + b / bandwidth`` seconds in its direction; a link carries one message at a time, in
the order sent (FIFO), so a later message never overtakes an earlier one on the same link.

Compute-time models (per worker ``m``, mean ``μ_m``):

=================  ===================================================================
``constant``       ``μ_m``
``exponential``    ``Exp(mean μ_m)``
``lognormal``      ``exp(N(log μ_m − s²/2, s²))`` (mean ``μ_m``, log-sd ``s``)
``pareto``         ``x_m (1 + Lomax(a))`` = classical Pareto with tail index ``a > 1`` and
                   scale ``x_m = μ_m (a − 1)/a`` (mean ``μ_m``; infinite variance when ``a ≤ 2``)
``trace``          recorded durations from a CSV or JSON file, replayed cyclically
=================  ===================================================================

Heterogeneous speeds: ``mean`` may be one number or one per worker, and ``spread ≥ 1`` further
multiplies worker ``m``'s mean by ``spread^{m/(W−1)}`` (the slowest worker is ``spread`` times
slower than the fastest on average).
"""

from __future__ import annotations

import abc
import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from convcheck.described import Described
from convcheck.errors import DataFileError, InputError, check_int, check_real


def _check_nonnegative_or_inf(field: str, value: Any, *, positive: bool) -> float:
    """A real number ``≥ 0`` (``> 0`` when ``positive``), ``+inf`` allowed."""
    allowed = ("a real number > 0" if positive else "a real number >= 0") + " or inf"
    if isinstance(value, bool):
        raise InputError(field, value, allowed)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(field, value, allowed) from None
    if math.isnan(number) or number < 0 or (positive and number == 0):
        raise InputError(field, value, allowed)
    return number


class ComputeTime(Described, abc.ABC):
    """Per-worker compute durations, drawn from a worker's own generator.

    Attributes
    ----------
    name : str
        Registry name (see :data:`COMPUTE_MODELS`).
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def durations(
        self, worker: int, workers: int, start: int, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Compute durations ``start, …, start + count − 1`` (seconds, ``≥ 0``) of ``worker``.

        ``workers`` is the number of workers; ``rng`` is the worker's own generator (successive
        calls continue its sequence; recorded traces use ``start`` instead).
        """

    def check_workers(self, workers: int) -> None:
        """Raise :class:`InputError` if this model cannot serve ``workers`` workers."""
        check_int("workers", workers, 1)

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Parameters (JSON-friendly)."""



class _Parametric(ComputeTime):
    """Models with a per-worker mean ``μ_m = mean_m · spread^{m/(W−1)}``."""

    def __init__(self, mean: float | Sequence[float] = 1.0, *, spread: float = 1.0) -> None:
        values = np.atleast_1d(np.asarray(mean, dtype=object))
        if values.ndim != 1 or values.size == 0:
            raise InputError("mean", mean, "a real number > 0 or one per worker")
        self.mean = tuple(check_real("mean", v, 0.0, low_open=True) for v in values.tolist())
        self.spread = check_real("spread", spread, 1.0)

    def check_workers(self, workers: int) -> None:
        super().check_workers(workers)
        if len(self.mean) not in (1, workers):
            allowed = f"one real number > 0, or {workers} (one per worker)"
            raise InputError("mean", f"{len(self.mean)} values", allowed)

    def worker_mean(self, worker: int, workers: int) -> float:
        """``μ_m``."""
        base = self.mean[0] if len(self.mean) == 1 else self.mean[worker]
        return base * self.spread ** (worker / (workers - 1)) if workers > 1 else base

    def params(self) -> dict[str, Any]:
        mean: Any = self.mean[0] if len(self.mean) == 1 else list(self.mean)
        return {"mean": mean, "spread": self.spread}


class Constant(_Parametric):
    """Every computation of worker ``m`` takes ``μ_m``."""

    name = "constant"

    def durations(
        self, worker: int, workers: int, start: int, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        return np.full(count, self.worker_mean(worker, workers))


class Exponential(_Parametric):
    """Exponential durations with mean ``μ_m`` (memoryless: a Poisson stream of updates)."""

    name = "exponential"

    def durations(
        self, worker: int, workers: int, start: int, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        return rng.exponential(self.worker_mean(worker, workers), count)


class LogNormal(_Parametric):
    """``exp(N(log μ_m − s²/2, s²))``: mean ``μ_m``, log-standard deviation ``s = sigma > 0``."""

    name = "lognormal"

    def __init__(
        self, mean: float | Sequence[float] = 1.0, *, sigma: float = 0.5, spread: float = 1.0
    ) -> None:
        super().__init__(mean, spread=spread)
        self.sigma = check_real("sigma", sigma, 0.0, low_open=True)

    def durations(
        self, worker: int, workers: int, start: int, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        mu = math.log(self.worker_mean(worker, workers)) - 0.5 * self.sigma**2
        return rng.lognormal(mu, self.sigma, count)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "sigma": self.sigma}


class Pareto(_Parametric):
    """Heavy tails: classical Pareto, tail index ``a = shape > 1``, mean ``μ_m``.

    ``P(X > x) = (x_m/x)^a`` for ``x ≥ x_m = μ_m (a − 1)/a``; sampled as ``x_m (1 + Y)`` with
    ``Y`` Lomax(``a``) (:meth:`numpy.random.Generator.pareto`). Variance is infinite for
    ``a ≤ 2``.
    """

    name = "pareto"

    def __init__(
        self, mean: float | Sequence[float] = 1.0, *, shape: float = 2.5, spread: float = 1.0
    ) -> None:
        super().__init__(mean, spread=spread)
        self.shape = check_real("shape", shape, 1.0, low_open=True)

    def durations(
        self, worker: int, workers: int, start: int, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        scale = self.worker_mean(worker, workers) * (self.shape - 1.0) / self.shape
        return scale * (1.0 + rng.pareto(self.shape, count))

    def params(self) -> dict[str, Any]:
        return {**super().params(), "shape": self.shape}


class Recorded(ComputeTime):
    """Durations recorded on a real system, replayed: worker ``m``'s ``j``-th computation takes
    ``sequences[m mod C][j mod n_m]`` (``C`` recorded sequences, of lengths ``n_m``).

    Parameters
    ----------
    sequences : sequence of sequences of float
        One sequence of durations ``≥ 0`` (seconds) per recorded worker.
    source : str
        Where they came from (a path), for reports.

    Use :func:`load_trace` to read them from a file. No randomness is used.
    """

    name = "trace"

    def __init__(self, sequences: Sequence[Sequence[float]], *, source: str = "") -> None:
        allowed = "a non-empty list of non-empty sequences of finite durations >= 0"
        try:
            arrays = [np.asarray(s, dtype=np.float64).ravel() for s in sequences]
        except (TypeError, ValueError):
            raise InputError("compute_trace", source or sequences, allowed) from None
        if not arrays or any(a.size == 0 for a in arrays):
            raise InputError("compute_trace", source or "empty", allowed)
        for m, a in enumerate(arrays):
            bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
            if bad.size:
                where = f"{source or 'trace'}: worker {m}, entry {bad[0]}"
                raise InputError("compute_trace", f"{where} = {a[bad[0]]!r}", allowed)
        self.sequences = tuple(arrays)
        self.source = source

    def durations(
        self, worker: int, workers: int, start: int, count: int, rng: np.random.Generator
    ) -> np.ndarray:
        sequence = self.sequences[worker % len(self.sequences)]
        return sequence[(start + np.arange(count)) % sequence.size]

    def params(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "workers": len(self.sequences),
            "lengths": [a.size for a in self.sequences],
        }


def load_trace(path: str | os.PathLike) -> Recorded:
    """Read recorded compute durations from ``path`` (``.csv`` or ``.json``).

    * CSV: one column per recorded worker, one row per computation (an optional header row of
      names is skipped; a shorter column ends with empty cells).
    * JSON: a list of durations (one worker), a list of lists (one per worker), or an object
      ``{"durations": ...}`` holding either.

    Raises
    ------
    DataFileError
        The file is missing, unreadable, empty or malformed, or holds a negative or non-finite
        duration (the message names the file and the entry).
    """
    name = os.fspath(path)
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in (".csv", ".json"):
        raise InputError("compute_trace", name, "a .csv or .json file of durations")
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise DataFileError(f"{name}: cannot read the compute-time trace ({error})") from None
    expected = "expected " + (
        "one column of durations >= 0 per worker"
        if suffix == ".csv"
        else 'a list of durations >= 0, a list of such lists, or {"durations": ...}'
    )
    parse = _parse_csv if suffix == ".csv" else _parse_json
    sequences = parse(text, name, expected)
    if not sequences or any(len(s) == 0 for s in sequences):
        raise DataFileError(f"{name}: the compute-time trace holds no durations; {expected}")
    try:
        return Recorded(sequences, source=name)
    except InputError as error:
        raise DataFileError(f"{name}: {error.value}; {expected}") from None


def _parse_csv(text: str, name: str, expected: str) -> list[list[float]]:
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if rows and not all(_is_number(cell) for cell in rows[0] if cell.strip()):
        rows = rows[1:]  # header
    width = max((len(row) for row in rows), default=0)
    columns: list[list[float]] = [[] for _ in range(width)]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            if not cell.strip():
                continue
            if not _is_number(cell):  # the cell is not quoted: the file may be anything
                raise DataFileError(f"{name}: row {r + 1}, column {c + 1} is not a number; "
                                    f"{expected}")
            columns[c].append(float(cell))
    return columns


def _parse_json(text: str, name: str, expected: str) -> list[list[float]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFileError(f"{name}: not valid JSON ({error}); {expected}") from None
    if isinstance(data, dict):
        data = data.get("durations")
    if not isinstance(data, list):
        raise DataFileError(f"{name}: no list of durations found; {expected}")
    if data and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in data):
        return [data]
    if not all(isinstance(s, list) for s in data) or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for s in data for x in s
    ):
        raise DataFileError(f"{name}: entries are not numbers; {expected}")
    return data


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


#: Compute-time models by name.
COMPUTE_MODELS: dict[str, type[ComputeTime]] = {
    cls.name: cls for cls in (Constant, Exponential, LogNormal, Pareto, Recorded)
}


def make_compute(name: str, **params: Any) -> ComputeTime:
    """Build a compute-time model from its name and parameters.

    ``make_compute("exponential", mean=1.0, spread=4.0)``;
    ``make_compute("trace", path="durations.csv")``.
    """
    if name not in COMPUTE_MODELS:
        raise InputError("compute", name, "one of " + ", ".join(map(repr, COMPUTE_MODELS)))
    if name == "trace":
        unknown = [key for key in params if key != "path"]
        if unknown or "path" not in params:
            key = unknown[0] if unknown else "compute_trace"
            raise InputError(key, params.get(key), "a path to a .csv or .json file (path=...)")
        return load_trace(params["path"])
    allowed = {"mean", "spread"} | ({"sigma"} if name == "lognormal" else set())
    allowed |= {"shape"} if name == "pareto" else set()
    for key, value in params.items():
        if key not in allowed:
            allowed_text = ", ".join(sorted(allowed))
            raise InputError(key, value, f"a parameter of compute model {name!r}: {allowed_text}")
    return COMPUTE_MODELS[name](**params)


@dataclass(frozen=True)
class Link:
    """Per-direction link: a message of ``b`` bits takes ``latency + b/bandwidth`` seconds.

    Attributes
    ----------
    latency_up, latency_down : float
        Seconds ``≥ 0`` (default 0).
    bandwidth_up, bandwidth_down : float
        Bits per second ``> 0``; ``inf`` (default) makes transmission instantaneous.
    """

    latency_up: float = 0.0
    latency_down: float = 0.0
    bandwidth_up: float = math.inf
    bandwidth_down: float = math.inf

    def __post_init__(self) -> None:
        for field in ("latency_up", "latency_down"):
            value = _check_nonnegative_or_inf(field, getattr(self, field), positive=False)
            if math.isinf(value):
                raise InputError(field, value, "a finite real number >= 0 (seconds)")
            object.__setattr__(self, field, value)
        for field in ("bandwidth_up", "bandwidth_down"):
            value = _check_nonnegative_or_inf(field, getattr(self, field), positive=True)
            object.__setattr__(self, field, value)

    def transmission(self, bits: int, direction: str) -> float:
        """Seconds the link is busy sending ``bits`` (``bits / bandwidth``)."""
        bandwidth = self.bandwidth_up if direction == "up" else self.bandwidth_down
        return 0.0 if math.isinf(bandwidth) else bits / bandwidth

    def latency(self, direction: str) -> float:
        return self.latency_up if direction == "up" else self.latency_down

    def describe(self) -> dict[str, float | None]:
        """Plain data (``None`` for an infinite bandwidth)."""
        return {
            "latency_up": self.latency_up,
            "latency_down": self.latency_down,
            "bandwidth_up": None if math.isinf(self.bandwidth_up) else self.bandwidth_up,
            "bandwidth_down": None if math.isinf(self.bandwidth_down) else self.bandwidth_down,
        }
