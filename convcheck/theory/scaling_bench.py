"""How the time of a certificate grows with the number of workers (``convcheck bench
--certificates``): a benchmark, not a test.

Workers with equal constants share their multipliers and Lyapunov blocks, so the SDP grows with
the number of classes of constants, not with ``M`` (docs/theory.md §4.3). The table times
:func:`convcheck.theory.certified.certify` (lower bound included, cache cleared) for GD-SEC and
EF21 at ``M = 1 … 1000``: with all workers equal (one class), and with per-worker constants
spread over ``[L/2, L]`` and ``[μ/2, μ]`` rounded into ``classes`` classes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Algorithms and parameters of the table.
ALGORITHMS: dict[str, dict[str, Any]] = {
    "gd-sec": {"alpha": 0.5, "xi": 0.2},
    "ef21": {"alpha": 0.05, "delta": 0.3},
}
#: Numbers of workers of the table.
WORKERS = (1, 4, 10, 100, 1000)
#: Classes of the heterogeneous rows.
CLASSES = 10
L, MU = 1.0, 0.05

HEADER = (f"{'algorithm':<8} {'M':>5} {'classes':>7} {'model':<13} {'LMI rows':>8} "
          f"{'blocks':>6} {'SDPs':>4} {'seconds':>8} {'rho':>11} {'gap':>9}")


def spread(workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-worker ``L_m ∈ [L/2, L]`` and ``μ_m ∈ [μ/2, μ]``, evenly spread (deterministic)."""
    grid = np.linspace(0.0, 1.0, workers)
    return L * (0.5 + 0.5 * grid), MU * (0.5 + 0.5 * grid[::-1])


def certificate_timings(
    workers: Sequence[int] = WORKERS,
    algorithms: Sequence[str] = tuple(ALGORITHMS),
    classes: int = CLASSES,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """One row per (algorithm, M, constants): wall time of a fresh certificate and its size."""
    from convcheck.theory import certified

    rows = []
    for name in algorithms:
        for M in workers:
            settings = [("equal", None, None, None)]
            if M >= classes:
                L_workers, mu_workers = spread(M)
                settings.append(("spread", L_workers, mu_workers, classes))
            for kind, L_workers, mu_workers, rounded in settings:
                certified._CACHE.clear()
                started = time.perf_counter()
                certificate = certified.certify(
                    name, L=L, mu=MU, workers=M, L_workers=L_workers, mu_workers=mu_workers,
                    classes=rounded, **ALGORITHMS[name],
                )
                seconds = time.perf_counter() - started
                row = {
                    "algorithm": name,
                    "workers": M,
                    "constants": kind,
                    "classes": certificate.model.params["classes"],
                    "model": certificate.model.params["model"],
                    "lmi_rows": certificate.size.lmi_rows,
                    "blocks": len(certificate.model.blocks),
                    "solves": certificate.solves,
                    "seconds": seconds,
                    "rho": certificate.rho,
                    "rho_low": certificate.rho_low,
                    "gap": certificate.gap,
                }
                rows.append(row)
                if progress is not None:
                    progress(format_row(row))
    return rows


def format_row(row: dict[str, Any]) -> str:
    rho = "none" if row["rho"] is None else f"{row['rho']:.9f}"
    gap = "-" if row["gap"] is None else f"{row['gap']:.2e}"
    return (f"{row['algorithm']:<8} {row['workers']:>5} {row['classes']:>7} "
            f"{row['model']:<13} {row['lmi_rows']:>8} {row['blocks']:>6} {row['solves']:>4} "
            f"{row['seconds']:>8.2f} {rho:>11} {gap:>9}")


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    return "\n".join([HEADER, *(format_row(row) for row in rows)])
