"""The report's figures (matplotlib, Agg backend), as PNG bytes.

* :func:`check_figure` — a check's measured quantity and its bound per iteration (log scale),
  with the worst ratio marked;
* :func:`bits_figure` — accuracy against cumulative uplink bits for the runs of a case;
* :func:`rates_figure` — fitted empirical rates against the theory's rates, one point per check;
* :func:`staleness_figure` — the histogram of staleness of an asynchronous run.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

WIDTH, HEIGHT, DPI = 6.4, 3.6, 100


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(WIDTH, HEIGHT), dpi=DPI)


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _positive(values: Sequence[float | None]) -> np.ndarray:
    """Values as floats with ``None`` and non-positive entries masked (log axes)."""
    array = np.array([np.nan if v is None else v for v in values], dtype=float)
    array[~(array > 0)] = np.nan
    return array


def check_figure(check: Mapping[str, Any]) -> bytes | None:
    """Measured quantity and bound per iteration of one check; ``None`` without a series."""
    series = check.get("series") or {}
    if not series.get("iteration"):
        return None
    plt, fig = _figure()
    ax = fig.add_subplot()
    k = np.asarray(series["iteration"], dtype=float)
    ax.semilogy(k, _positive(series["measured"]), label="measured", color="C0")
    if series.get("bound"):
        ax.semilogy(k, _positive(series["bound"]), label="bound", color="C3", linestyle="--")
    worst = check.get("worst_iteration")
    if worst is not None and worst in series["iteration"]:
        j = series["iteration"].index(worst)
        ratio = check["max_ratio"]  # None: not finite (strict JSON)
        shown = "∞" if ratio is None else f"{ratio:.3g}"
        ax.plot([worst], [series["measured"][j]], "o", color="C1", label=f"max ratio {shown}")
    verdict = "PASS" if check["passed"] else "FAIL"
    kind = "negative control" if check["kind"] == "negative_control" else "check"
    ax.set_title(f"{check['case']} — {check['name']} ({kind}: {verdict})", fontsize=9)
    ax.set_xlabel("iteration k")
    ax.set_ylabel(series.get("quantity", "measured quantity"), fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(plt, fig)


def bits_figure(case: Mapping[str, Any]) -> bytes | None:
    """Accuracy against cumulative uplink bits, one line per run of the case."""
    curves = case.get("curves") or {}
    if not curves:
        return None
    plt, fig = _figure()
    ax = fig.add_subplot()
    metric = ""
    for label, curve in curves.items():
        bits = np.asarray(curve["bits_up_total"], dtype=float)
        ax.loglog(np.maximum(bits, 1.0), _positive(curve["metric"]), label=label)
        metric = curve["metric_name"]
    ax.set_xlabel("cumulative uplink bits (all workers)")
    ax.set_ylabel(metric)
    ax.set_title(f"{case['case']}: accuracy vs uplink bits", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return _png(plt, fig)


def rates_figure(checks: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Fitted linear rates (per iteration) against the bounds' rates."""
    points = [
        (c["theory_rate"], c["fitted_rate"], c["passed"], c["name"])
        for c in checks
        if c.get("rate_kind") == "linear"
        and c.get("fitted_rate") is not None and c.get("theory_rate") is not None
    ]
    if not points:
        return None
    plt, fig = _figure()
    ax = fig.add_subplot()
    theory = np.array([p[0] for p in points])
    fitted = np.array([p[1] for p in points])
    colors = ["C2" if p[2] else "C3" for p in points]
    ax.scatter(theory, fitted, c=colors, s=18)
    low = float(min(theory.min(), fitted.min()))
    high = float(max(theory.max(), fitted.max()))
    ax.plot([low, high], [low, high], color="grey", linewidth=0.8, label="fitted = theory")
    ax.set_xlabel("theory rate (bound's contraction per iteration)")
    ax.set_ylabel("fitted rate")
    ax.set_title("empirical vs theoretical linear rates (green: pass, red: fail)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(plt, fig)


def staleness_figure(case: Mapping[str, Any]) -> bytes | None:
    """Histogram of the staleness τ_t of a case's asynchronous run."""
    staleness = case.get("staleness")
    if not staleness or not staleness.get("histogram"):
        return None
    plt, fig = _figure()
    ax = fig.add_subplot()
    counts = staleness["histogram"]
    ax.bar(np.arange(len(counts)), counts, width=0.9, color="C0")
    ax.set_xlabel("staleness τ (server updates since the worker read its model)")
    ax.set_ylabel("updates")
    ax.set_title(f"{case['case']}: staleness (mean {staleness['mean']:.2f}, "
                 f"max {staleness['max']})", fontsize=9)
    return _png(plt, fig)
