"""Bits and iterations to a target accuracy for several algorithms on one problem.

The question every compressed method answers: how many rounds and how many bits does it need
to reach ``f − f* ≤ ε`` (or ``‖∇f‖² ≤ ε``), next to a baseline. Each entry of the comparison
is a spec string ``NAME[:key=value,...]`` (``"gd-sec:xi=0.2"``, ``"ef:k=10"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from convcheck.algorithms import make_algorithm
from convcheck.engine import run
from convcheck.errors import InputError
from convcheck.keyvalue import parse_assignments
from convcheck.problem import Problem


@dataclass(frozen=True)
class Spec:
    """An algorithm name and its parameters, parsed from ``NAME[:key=value,...]``."""

    text: str
    name: str
    params: dict[str, Any]


def parse_spec(text: str) -> Spec:
    """``"gd-sec:xi=0.2,beta=0.5"`` → ``Spec(text, "gd-sec", {"xi": 0.2, "beta": 0.5})``."""
    name, _, rest = text.partition(":")
    if not name:
        raise InputError("algorithm", text, "NAME[:key=value,...]")
    items = [item for item in rest.split(",") if item] if rest else []
    return Spec(text, name.strip(), parse_assignments(items))


def compare(
    problem: Problem,
    specs: list[str],
    *,
    target: float,
    iterations: int,
    target_metric: str | None = None,
    seed: int = 0,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every spec to ``target`` (at most ``iterations`` rounds) and tabulate the cost.

    Returns one row per spec: ``spec``, ``status``, ``iterations`` (to the target, or None),
    ``bits_up`` / ``bits_down`` to the target (None if not reached), ``final`` value of the
    target metric, and ``bits_up_vs_first`` / ``iterations_vs_first``: ratios to the first
    spec (the baseline) when both reached the target. ``progress`` shows a bar per run;
    ``warn`` receives a line for each spec whose settings no bound covers
    (:func:`convcheck.theory.steps.step_warning`).
    """
    from convcheck.theory.steps import step_warning

    rows = []
    for text in specs:
        spec = parse_spec(text)
        algorithm = make_algorithm(spec.name, problem.constants, **spec.params)
        warning = step_warning(algorithm, problem) if warn is not None else None
        if warning is not None:
            warn(f"{spec.text}: {warning}")
        result = run(
            algorithm, problem, iterations, seed=seed, target=target, target_metric=target_metric,
            progress=progress,
        )
        summary = result.summary
        rows.append(
            {
                "spec": spec.text,
                "alpha": algorithm.alpha,
                "status": result.status,
                "iterations": summary["target_iteration"],
                "bits_up": summary["bits_up_to_target"],
                "bits_down": summary["bits_down_to_target"],
                "final": summary["final"][summary["target_metric"]],
                "target_metric": summary["target_metric"],
            }
        )
    baseline = rows[0]
    for row in rows:
        both = row["iterations"] is not None and baseline["iterations"] is not None
        row["bits_up_vs_first"] = row["bits_up"] / baseline["bits_up"] if both else None
        row["iterations_vs_first"] = (
            row["iterations"] / max(baseline["iterations"], 1) if both else None
        )
    return rows


def format_comparison(rows: list[dict[str, Any]], target: float) -> str:
    """A fixed-width table of :func:`compare`'s rows."""
    metric = rows[0]["target_metric"] if rows else "suboptimality"
    header = (
        f"{'algorithm':<28} {'iters':>7} {'bits up':>14} {'bits down':>14} "
        f"{'up vs first':>11} {'iters vs first':>14}   ({metric} <= {target:g})"
    )
    lines = [header]
    for row in rows:
        if row["iterations"] is None:
            lines.append(
                f"{row['spec']:<28} {'—':>7} {'—':>14} {'—':>14} {'—':>11} {'—':>14}"
                f"   {row['status']}, final {row['final']:.3g}"
            )
            continue
        lines.append(
            f"{row['spec']:<28} {row['iterations']:>7} {row['bits_up']:>14,} "
            f"{row['bits_down']:>14,} {row['bits_up_vs_first']:>11.3f} "
            f"{row['iterations_vs_first']:>14.3f}"
        )
    return "\n".join(lines)
