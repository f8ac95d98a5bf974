"""Stability regions: where a rate is certified, where an explicit instance diverges, and where
the suite's runs converge, over a grid of ``(α·L, ξ or δ)`` (``convcheck regions``).

For each algorithm with an LMI model in the quick suite, the problem of one of its quick cases
(its data, split and constants) is taken, and on every grid point

* **certified**: :func:`convcheck.theory.certified.certify` (``model="auto"``) with the problem's
  ``L``, ``μ``, ``L_m``, ``μ_m`` certifies ``ρ < 1``;
* **lower bound diverges**: the explicit instance of the same class found by the lower-bound
  search has ``ρ_low ≥ 1`` (no certificate can exist there);
* **empirical**: one run of the engine on the problem from ``θ⁰ = 0`` converges: it ends without
  divergence and ``‖θ^T − θ̂‖² ≤ ½‖θ^{T/2} − θ̂‖²`` (still shrinking geometrically), or it has
  reached the round-off floor ``‖θ^T − θ̂‖² ≤ 10⁻²⁰‖θ⁰ − θ̂‖²``. The largest such ``α`` per row
  is the empirical boundary.

Grid points are independent tasks sent to an executor (:mod:`convcheck.executor`): local
processes, or a Dask cluster. The engine is called in one function, :func:`run_point`, so that a
batched engine can replace it. Everything is deterministic (the runs are seeded; GD-type runs
do not use their seed).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convcheck.errors import InputError, check_int

#: Default grid of ``α·L``.
STEPS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
#: Default iterations and seeds of the empirical runs.
ITERATIONS = 2000
SEEDS = (0,)
#: Convergence: ``‖θ^T − θ̂‖² ≤ SHRINK·‖θ^{T/2} − θ̂‖²`` or below ``FLOOR·‖θ⁰ − θ̂‖²``.
SHRINK = 0.5
FLOOR = 1e-20


@dataclass(frozen=True)
class RegionSpec:
    """One map: the algorithm, the quick case giving its problem, and the second axis.

    Attributes
    ----------
    algorithm : str
    case : str
        Path of the case file (relative to the repository's ``problems/`` folder).
    axis : str or None
        ``"xi"`` (GD-SEC's threshold), ``"delta"`` (top-k's ``k/d``; ``k`` is rounded) or None.
    values : tuple of float
        Default values of the axis.
    """

    algorithm: str
    case: str
    axis: str | None
    values: tuple[float, ...]


#: The quick suite's algorithms that have an LMI model, each on one of its quick cases.
SPECS: dict[str, RegionSpec] = {
    "gd": RegionSpec("gd", "gd/logistic-strongly-convex.toml", None, ()),
    "gd-sec": RegionSpec("gd-sec", "gd-sec/logistic-heterogeneous.toml", "xi",
                         (0.0, 0.1, 0.2, 0.3, 0.45)),
    "ef": RegionSpec("ef", "ef/logistic-heterogeneous.toml", "delta", (0.1, 0.3, 0.5, 0.8)),
    "ef21": RegionSpec("ef21", "ef21/logistic-heterogeneous.toml", "delta",
                       (0.1, 0.3, 0.5, 0.8)),
}


def _problems_folder() -> Path:
    from convcheck.verification.cases import default_folder

    return default_folder()


@functools.lru_cache(maxsize=8)
def _case_and_problem(case_path: str, data_dir: str | None) -> tuple[Any, Any]:
    """The case and its problem, built once per process."""
    from convcheck.verification.cases import load_case
    from convcheck.verification.runner import case_problem

    case = load_case(case_path)
    return case, case_problem(case, data_dir)


def _algorithm(task: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The engine algorithm of a grid point, its problem and the axis value actually used."""
    from convcheck.algorithms import make_algorithm

    case, problem = _case_and_problem(task["case"], task.get("data_dir"))
    params = case.algorithm_params()
    params["alpha"] = task["alpha_L"] / problem.constants.L
    used: dict[str, Any] = {}
    if task["axis"] == "xi":
        params["xi"] = task["value"]
        used["xi"] = task["value"]
    elif task["axis"] == "delta":
        d = problem.objective.dim
        k = int(min(d, max(1, round(task["value"] * d))))
        params["k"] = k
        used.update(k=k, delta=k / d)
    return make_algorithm(case.algorithm_name, problem.constants, **params), problem, used


def certify_point(task: dict[str, Any]) -> dict[str, Any]:
    """The class certificate and lower bound at one grid point."""
    from convcheck.theory.certified import certify, model_parameters

    algorithm, problem, used = _algorithm(task)
    name, params, why = model_parameters(algorithm, problem)
    out = {"alpha_L": task["alpha_L"], "value": task["value"], **used}
    if name is None:
        return {**out, "certified": False, "rho": None, "rho_low": None, "reason": why}
    c = problem.constants
    certificate = certify(name, L=c.L, mu=c.mu, workers=len(c.L_workers),
                          L_workers=c.L_workers, mu_workers=c.mu_workers, **params)
    return {
        **out,
        "certified": certificate.certified,
        "rho": certificate.rho,
        "rho_low": certificate.rho_low,
        "gap": certificate.gap,
        "diverges": bool(certificate.rho_low is not None and certificate.rho_low >= 1.0),
        "model": certificate.model.params.get("model"),
    }


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """The empirical verdict at one grid point: do the seeded runs converge? (The only place
    the engine is called: a batched engine can replace this function.)"""
    from convcheck.engine import run

    algorithm, problem, used = _algorithm(task)
    verdicts, ratios = [], []
    for seed in task["seeds"]:
        trace = run(algorithm, problem, task["iterations"], seed=seed)
        distance = np.asarray(trace.columns["dist_sq"], dtype=float)
        middle = distance[len(distance) // 2]
        last = distance[-1]
        finite = bool(np.all(np.isfinite(distance))) and trace.status != "diverged"
        ratio = float(last / middle) if finite and middle > 0 else float("inf")
        converged = finite and (last <= SHRINK * middle or last <= FLOOR * distance[0])
        verdicts.append(converged)
        ratios.append(ratio)
    return {"alpha_L": task["alpha_L"], "value": task["value"], **used,
            "converged": all(verdicts), "ratio_last_to_middle": max(ratios)}


def region_map(
    spec: RegionSpec,
    executor: Any,
    *,
    steps: Sequence[float] = STEPS,
    values: Sequence[float] | None = None,
    iterations: int = ITERATIONS,
    seeds: Sequence[int] = SEEDS,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """The three regions of one algorithm over the grid (plain data, see the module doc)."""
    values = list(spec.values if values is None else values) if spec.axis else [None]
    case = str(_problems_folder() / spec.case)
    tasks = [
        {"case": case, "alpha_L": float(a), "axis": spec.axis, "value": v,
         "iterations": iterations, "seeds": list(seeds), "data_dir": data_dir}
        for v in values for a in steps
    ]
    certified = executor.map(certify_point, tasks)
    empirical = executor.map(run_point, tasks)
    points = [{**c, "converged": e["converged"],
               "ratio_last_to_middle": e["ratio_last_to_middle"]}
              for c, e in zip(certified, empirical, strict=True)]
    _, problem = _case_and_problem(case, data_dir)
    return {
        "algorithm": spec.algorithm,
        "case": spec.case,
        "problem": problem.objective.name,
        "constants": problem.constants.as_dict(),
        "grid": {"alpha_L": [float(a) for a in steps], "axis": spec.axis, "values": values},
        "iterations": iterations,
        "seeds": list(seeds),
        "convergence": (f"no divergence and ‖θ^T − θ̂‖² ≤ {SHRINK}·‖θ^(T/2) − θ̂‖², or "
                        f"≤ {FLOOR:g}·‖θ⁰ − θ̂‖²; T = {iterations}, θ⁰ = 0"),
        "points": points,
        "boundaries": _boundaries(points, values, steps),
    }


def _boundaries(points: list[dict], values: list, steps: Sequence[float]) -> list[dict]:
    """Per row: the largest certified ``α·L``, the smallest ``α·L`` where the instance
    diverges, the largest converging ``α·L`` (None where there is none)."""
    out = []
    for v in values:
        row = [p for p in points if p["value"] == v]
        certified = [p["alpha_L"] for p in row if p["certified"]]
        diverging = [p["alpha_L"] for p in row if p.get("diverges")]
        converging = [p["alpha_L"] for p in row if p["converged"]]
        out.append({
            "value": v,
            "largest_certified": max(certified, default=None),
            "smallest_diverging": min(diverging, default=None),
            "largest_converging": max(converging, default=None),
        })
    return out


def plot_region(data: dict[str, Any]) -> bytes:
    """One figure: certified ``ρ`` as colours (grey: none), ``×`` where the instance diverges,
    ``○`` where the runs converge."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = data["grid"]["alpha_L"]
    values = data["grid"]["values"]
    fig, ax = plt.subplots(figsize=(6.4, 1.8 + 0.55 * len(values)), dpi=100)
    grid = np.full((len(values), len(steps)), np.nan)
    for p in data["points"]:
        i, j = values.index(p["value"]), steps.index(p["alpha_L"])
        if p["certified"]:
            grid[i, j] = p["rho"]
    ax.imshow(np.ones_like(grid), cmap="Greys", vmin=0, vmax=4, aspect="auto", origin="lower")
    certified = grid[np.isfinite(grid)]
    low = float(certified.min()) if certified.size else 0.0
    image = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower",
                      vmin=min(low, 1.0 - 1e-6), vmax=1.0)
    fig.colorbar(image, ax=ax, label="certified ρ")
    for p in data["points"]:
        i, j = values.index(p["value"]), steps.index(p["alpha_L"])
        if p.get("diverges"):
            ax.plot(j, i, marker="x", color="red", markersize=9, linestyle="none")
        if p["converged"]:
            ax.plot(j, i, marker="o", markerfacecolor="none", color="black", markersize=13,
                    markeredgewidth=1.5, linestyle="none")
    ax.set_xticks(range(len(steps)), [f"{a:g}" for a in steps])
    ax.set_yticks(range(len(values)), ["—" if v is None else f"{v:g}" for v in values])
    ax.set_xlabel("α·L")
    ax.set_ylabel(data["grid"]["axis"] or "")
    ax.set_title(f"{data['algorithm']} on {data['problem']}\ncolour: certified ρ; ×: an "
                 f"instance diverges; ○: runs converge ({data['iterations']} it., seeds "
                 f"{data['seeds']})", fontsize=8)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def regions(
    algorithms: Sequence[str],
    out: str | Path,
    *,
    executor: Any,
    steps: Sequence[float] = STEPS,
    values: Sequence[float] | None = None,
    iterations: int = ITERATIONS,
    seeds: Sequence[int] = SEEDS,
    data_dir: str | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Compute every map, write ``out/regions.json`` and ``out/regions-<algorithm>.png``."""
    from convcheck.atomic import write_atomic
    from convcheck.jsonio import strict_json

    algorithms = validate_grid(algorithms, steps, values, iterations, seeds)
    document: dict[str, Any] = {"maps": []}
    folder = Path(out)
    for name in algorithms:
        if progress is not None:
            progress(f"regions: {name} ({len(steps)} steps × "
                     f"{len(values) if values is not None else len(SPECS[name].values) or 1} "
                     "values)")
        data = region_map(SPECS[name], executor, steps=steps, values=values,
                          iterations=iterations, seeds=seeds, data_dir=data_dir)
        write_atomic(folder / f"regions-{name}.png", plot_region(data))
        document["maps"].append(data)
    write_atomic(folder / "regions.json",
                 json.dumps(strict_json(document), indent=1, default=_plain) + "\n")
    return document


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def validate_grid(
    algorithms: Sequence[str], steps: Sequence[float], values: Sequence[float] | None,
    iterations: int, seeds: Sequence[int],
) -> list[str]:
    """Check the grid before any work starts (every error names its field)."""
    algorithms = list(algorithms) or list(SPECS)
    for name in algorithms:
        if name not in SPECS:
            raise InputError("algorithms", name, "some of " + ", ".join(map(repr, SPECS)))
    if not steps or any(not (np.isfinite(a) and a > 0) for a in steps):
        raise InputError("steps", list(steps), "at least one α·L, all finite and > 0")
    if values is not None:
        if not values:
            raise InputError("values", [], "at least one value of the second axis")
        if any(not (np.isfinite(v) and v >= 0) for v in values):
            raise InputError("values", list(values), "finite values ≥ 0 (ξ, or δ in (0, 1])")
        if any(SPECS[n].axis == "delta" and not 0 < v <= 1 for n in algorithms for v in values):
            raise InputError("values", list(values), "δ in (0, 1] for top-k algorithms")
    check_int("iterations", iterations, 2)
    if not seeds:
        raise InputError("seeds", [], "at least one seed")
    return algorithms
