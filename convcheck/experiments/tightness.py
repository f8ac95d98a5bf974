"""How tight the certificates are: the tables of docs/theory.md §6 (issue 13).

Run ``python -m convcheck.experiments.tightness [--out DIR] [--quick]``: it prints Markdown tables
and writes ``DIR/tightness.md`` and ``DIR/tightness.json``.

* ``gaps`` — ``ρ`` (certified), ``ρ_low`` (explicit instance) and the gap over each algorithm's
  certified step range, ``L = 1``, ``μ = 0.1``, ``M = 1`` and ``M = 4`` (one class of workers);
* ``thresholds`` — sparsifier-model EF21: the largest certified step of the sector and of the
  interpolation model, and the smallest step where an explicit instance diverges (bisection on
  ``α``), against ``2δ/(4 − 3δ)``.

Everything is deterministic (the instance search is seeded).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: (algorithm, parameters, steps α·L) of the gap table.
GAP_CASES: tuple[tuple[str, dict[str, Any], tuple[float, ...]], ...] = (
    ("gd", {}, (0.1, 0.5, 1.0, 1.5, 1.9)),
    ("compressed-gd", {"delta": 0.6}, (0.05, 0.15, 0.3, 0.5, 0.7)),
    ("compressed-gd", {"delta": 0.6, "sparsifier": False}, (0.05, 0.15, 0.3, 0.5)),
    ("gd-sec", {"xi": 0.1}, (0.1, 0.5, 1.0, 1.4)),
    ("gd-sec", {"xi": 0.2}, (0.1, 0.5, 0.9)),
    ("ef21", {"delta": 0.3}, (0.02, 0.08, 0.15, 0.19)),
    ("ef21", {"delta": 0.6}, (0.05, 0.2, 0.4, 0.54)),
)
L, MU = 1.0, 0.1


def gaps(workers: Sequence[int] = (1, 4), quick: bool = False) -> list[dict[str, Any]]:
    """One row per (algorithm, parameters, step, M)."""
    from convcheck.theory.certified import certify

    rows = []
    for name, params, steps in GAP_CASES:
        for M in workers:
            extra = {"heterogeneous": False} if name == "compressed-gd" and M > 1 else {}
            for step in steps[:2] if quick else steps:
                c = certify(name, L=L, mu=MU, workers=M, alpha=step / L, **params, **extra)
                rows.append({
                    "algorithm": name, "params": params, "workers": M, "alpha_L": step,
                    "model": c.model.params["model"], "rho": c.rho, "rho_low": c.rho_low,
                    "gap": c.gap, "family": c.lower_bound_instance.get("family"),
                })
    return rows


def _bisect(test: Any, low: float, high: float, steps: int) -> tuple[float, float]:
    """``test(low)`` true, ``test(high)`` false → a bracket of the switch."""
    for _ in range(steps):
        middle = 0.5 * (low + high)
        if test(middle):
            low = middle
        else:
            high = middle
    return low, high


def thresholds(deltas: Sequence[float] = (0.3, 0.6), steps: int = 14) -> list[dict[str, Any]]:
    """Largest certified ``α·L`` (sector and interpolation models) and where an instance starts
    to diverge, for sparsifier-model EF21."""
    from convcheck.theory.certified import certify
    from convcheck.theory.models import ModelConstants, search_lower_bound

    constants = ModelConstants.make(L, MU)
    rows = []
    for delta in deltas:
        formula = 2 * delta / (4 - 3 * delta)

        def certified(step: float, model: str, delta: float = delta) -> bool:
            return certify("ef21", L=L, mu=MU, alpha=step, delta=delta, model=model,
                           lower_bound=False, tol=1e-6).certified

        def converges(step: float, delta: float = delta) -> bool:
            return (search_lower_bound("ef21", constants, alpha=step, delta=delta).rho or 0) < 1

        sector = _bisect(lambda a: certified(a, "sector"), 0.5 * formula, formula, steps)
        sharp = _bisect(lambda a: certified(a, "interpolation"), 0.5 * formula,
                        1.05 * formula, steps)
        diverging = _bisect(converges, 0.5 * formula, 1.05 * formula, steps)
        rows.append({"delta": delta, "formula": formula, "sector": sector,
                     "interpolation": sharp, "instance_diverges": diverging})
    return rows


def markdown(gap_rows: list[dict], threshold_rows: list[dict]) -> str:
    lines = ["### Gaps (L = 1, μ = 0.1)", "",
             "| algorithm | parameters | M | α·L | model | ρ | ρ_low | gap | instance |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in gap_rows:
        rho = "none" if r["rho"] is None else f"{r['rho']:.9f}"
        low = "—" if r["rho_low"] is None else f"{r['rho_low']:.9f}"
        gap = "—" if r["gap"] is None else f"{r['gap']:.2e}"
        lines.append(f"| {r['algorithm']} | {json.dumps(r['params'])} | {r['workers']} | "
                     f"{r['alpha_L']:g} | {r['model']} | {rho} | {low} | {gap} | {r['family']} |")
    lines += ["", "### Sparsifier-model EF21: steps (α·L)", "",
              "| δ | 2δ/(4 − 3δ) | sector certifies to | interpolation certifies to | "
              "an instance diverges from |", "|---|---|---|---|---|"]
    for r in threshold_rows:
        def bracket(pair: Sequence[float]) -> str:
            return f"{pair[0]:.7f}–{pair[1]:.7f}"
        lines.append(f"| {r['delta']:g} | {r['formula']:.7f} | {bracket(r['sector'])} | "
                     f"{bracket(r['interpolation'])} | {bracket(r['instance_diverges'])} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    from convcheck.atomic import write_atomic
    from convcheck.jsonio import write_json

    parser = argparse.ArgumentParser(prog="python -m convcheck.experiments.tightness")
    parser.add_argument("--out", default="docs/figures", help="output folder (docs/figures)")
    parser.add_argument("--quick", action="store_true", help="two steps per case, coarse search")
    args = parser.parse_args(argv)
    gap_rows = gaps(quick=args.quick)
    threshold_rows = thresholds(steps=6 if args.quick else 14)
    text = markdown(gap_rows, threshold_rows)
    print(text)
    folder = Path(args.out)
    write_atomic(folder / "tightness.md", text)
    write_json(folder / "tightness.json", {"gaps": gap_rows, "thresholds": threshold_rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
