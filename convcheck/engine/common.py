"""What the synchronous and the asynchronous engine share: run settings, the quantities traced at
every iterate and the run summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convcheck.algorithms.base import worker_mean
from convcheck.engine.oracle import Oracle
from convcheck.errors import InputError, check_choice, check_real
from convcheck.problem import Problem

#: Quantities a target accuracy may be set on.
TARGET_METRICS = ("suboptimality", "grad_norm_sq", "dist_sq")
#: A run has diverged when its suboptimality exceeds this factor times max(1, its start value).
DEFAULT_BLOWUP = 1e10


@dataclass(frozen=True)
class Measure:
    """The trace quantities of an iterate, against the problem's reference.

    Attributes
    ----------
    f_ref : float
        ``f(θ̂)`` (convex problems) or the certified ``f_low`` (nonconvex).
    theta_star : ndarray or None
        ``θ̂`` for ``dist_sq`` (None for nonconvex problems).
    metric : str
        The target metric (default ``grad_norm_sq`` for nonconvex problems, else
        ``suboptimality``).
    target : float or None
    """

    f_ref: float
    theta_star: np.ndarray | None
    metric: str
    target: float | None

    @classmethod
    def of(cls, problem: Problem, target: float | None, target_metric: str | None) -> Measure:
        """Validated target settings and the reference of ``problem``."""
        nonconvex = problem.constants.problem_class == "nonconvex"
        metric = check_choice(
            "target_metric",
            target_metric or ("grad_norm_sq" if nonconvex else "suboptimality"),
            TARGET_METRICS,
        )
        if target is not None:
            target = check_real("target", target, 0.0, low_open=True)
        optimum = problem.optimum
        f_ref = optimum.value if optimum.theta is not None else optimum.f_low
        theta_star = None if nonconvex or optimum.theta is None else optimum.theta
        return cls(f_ref, theta_star, metric, target)

    def write(self, row: np.ndarray, column: dict[str, int], oracle: Oracle,
              theta: np.ndarray, previous: np.ndarray) -> None:
        """Fill ``value``, ``suboptimality``, ``grad_norm_sq``, ``dist_sq`` and ``step_norm``
        of a trace row at ``θ`` (one cached evaluation of the worker values and gradients)."""
        values, gradients = oracle.evaluate(theta)
        grad = worker_mean(gradients)
        value = float(np.add.reduce(values)) / values.shape[0]
        row[column["value"]] = value
        row[column["suboptimality"]] = value - self.f_ref
        row[column["grad_norm_sq"]] = grad @ grad
        if self.theta_star is not None:
            gap = theta - self.theta_star
            row[column["dist_sq"]] = gap @ gap
        step = theta - previous
        row[column["step_norm"]] = np.sqrt(step @ step)


def start_point(theta0: np.ndarray | None, d: int) -> np.ndarray:
    """A validated copy of the start point (default 0)."""
    if theta0 is None:
        return np.zeros(d)
    point = np.asarray(theta0, dtype=np.float64)
    if point.shape != (d,) or not np.all(np.isfinite(point)):
        allowed = f"a finite array of shape ({d},)"
        raise InputError("theta0", f"array of shape {point.shape}", allowed)
    return point.copy()


def summarize(
    columns: dict[str, np.ndarray], metric: str, target: float | None, reached: int | None
) -> dict[str, Any]:
    """Iterations, final values and the target statistics of a run's trace columns
    (``reached`` is the trace row where the target was first met)."""
    last = len(columns["iteration"]) - 1
    out: dict[str, Any] = {
        "iterations": last,
        "final": {name: columns[name][last].item() for name in columns if name != "iteration"},
        "target_metric": metric,
        "target": target,
        "target_iteration": reached,
        "bits_up_to_target": None,
        "bits_down_to_target": None,
    }
    if reached is not None:
        out["bits_up_to_target"] = int(columns["bits_up_total"][reached])
        out["bits_down_to_target"] = int(columns["bits_down_total"][reached])
    return out
