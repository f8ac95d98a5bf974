"""The figures of docs/theory.md §6: anchors, timings, bounds on runs, negative controls.

Run from the repository root (with the dev extra installed)::

    python docs/theory_figures.py [--out docs/figures] [--skip-shared]

Writes ``theory_figures.json`` (every number quoted in docs/theory.md) and PNG plots to ``--out``.
The LIBSVM case (phishing) runs when its files are found (``CONVCHECK_DATA``, the user cache;
``convcheck data download`` cannot fetch phishing) and ``--skip-shared`` is not given.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from convcheck import build_problem, make_algorithm, run
from convcheck.atomic import write_atomic
from convcheck.data import find_data_files
from convcheck.data.named import data_files
from convcheck.errors import ConvcheckError
from convcheck.jsonio import write_json
from convcheck.theory import (
    BOUNDS,
    bounds_for,
    certificate_for,
    certify,
    check_bound,
    fit_linear_rate,
    fit_power_law,
)
from convcheck.theory.bounds import EF21PL
from convcheck.theory.certified import gd_rate
from convcheck.verification.mutants import inject


def gd_anchor() -> dict:
    errors = []
    for L in (1.0, 7.5):
        for mu_ratio in (0.01, 0.3, 0.9):
            for alpha_ratio in (0.1, 1.0, 1.7, 1.99):
                alpha, mu = alpha_ratio / L, mu_ratio * L
                certificate = certify("gd", L=L, mu=mu, alpha=alpha, tol=1e-8)
                errors.append(certificate.rho - gd_rate(alpha, mu, L))
    return {"cases": len(errors), "max_abs_error": float(np.max(np.abs(errors)))}


def pepit_agreement() -> list[dict]:
    import PEPit
    from PEPit.functions import SmoothStronglyConvexFunction
    from PEPit.primitive_steps import inexact_gradient_step

    rows = []
    for alpha, mu, L, delta in [
        (1.0, 0.1, 1.0, 1.0),
        (1.5, 0.1, 1.0, 1.0),
        (0.4, 0.02, 2.0, 1.0),
        (1.0, 0.3, 1.0, 0.9),
        (0.5, 0.5, 1.0, 0.6),
        (0.5, 0.2, 1.0, 0.5),
    ]:
        problem = PEPit.PEP()
        f = problem.declare_function(SmoothStronglyConvexFunction, mu=mu, L=L)
        star = f.stationary_point()
        x0 = problem.set_initial_point()
        problem.set_initial_condition((x0 - star) ** 2 <= 1)
        epsilon = math.sqrt(1 - delta)
        if delta == 1.0:
            x1 = x0 - alpha * f.gradient(x0)
            ours = certify("gd", L=L, mu=mu, alpha=alpha, tol=1e-8)
        else:
            x1, _, _ = inexact_gradient_step(x0, f, alpha, epsilon, notion="relative")
            ours = certify(
                "compressed-gd", L=L, mu=mu, alpha=alpha, delta=delta, sparsifier=False, tol=1e-8
            )
        problem.set_performance_metric((x1 - star) ** 2)
        tau = float(problem.solve(verbose=0, solver="CLARABEL"))
        rows.append(
            {
                "alpha": alpha,
                "mu": mu,
                "L": L,
                "delta": delta,
                "pepit_worst_ratio": tau,
                "lmi_rho_squared": None if ours.rho is None else ours.rho**2,
                "difference": None if ours.rho is None else ours.rho**2 - tau,
            }
        )
    return rows


def timings() -> list[dict]:
    rows = []
    L, mu = 1.0, 0.01
    for workers in (1, 4, 10):
        L_workers = np.linspace(0.5, 1.5, workers) if workers > 1 else [1.0]
        common = {"L": L, "mu": mu, "workers": workers, "L_workers": L_workers}
        delta = 0.1
        theta = 1 - math.sqrt(1 - delta)
        beta = (1 - delta) / theta
        L_tilde = float(np.sqrt(np.mean(np.square(L_workers))))
        ef21_step = min(1 / (L + L_tilde * math.sqrt(2 * beta / theta)), theta / (2 * mu))
        for name, params in [
            ("gd", {"alpha": 1.0}),
            ("gd-sec", {"alpha": 0.5, "xi": 0.2}),
            ("ef21", {"alpha": ef21_step, "delta": delta}),
            ("ef", {"alpha": 0.1, "delta": delta}),
        ]:
            started = time.perf_counter()
            certificate = certify(name, **common, **params)
            rows.append(
                {
                    "algorithm": name,
                    "workers": workers,
                    "states": len(certificate.model.states),
                    "inputs": len(certificate.model.inputs),
                    "certified": certificate.certified,
                    "rho": certificate.rho,
                    "solves": certificate.solves,
                    "seconds": time.perf_counter() - started,
                }
            )
            print(rows[-1], flush=True)
    return rows


def ef21_step(problem, k: int) -> float:
    probe = make_algorithm("ef21", problem.constants, alpha=1.0, k=k)
    constants = EF21PL().constants(probe, problem)
    return min(constants["step_pl"], constants["step_pl_mu"])


def run_case(label: str, problem, iterations: int, plots: dict) -> list[dict]:
    d = problem.objective.dim
    k = max(1, d // 10)
    algorithms = [
        ("gd", {"alpha": "1/L"}),
        ("gd-sec", {"alpha": "0.5/L", "xi": 0.2}),
        ("gd-sec", {"alpha": "0.3/L", "xi": 0.2}),
        ("gd-sec", {"alpha": "0.5/L", "xi": 0.2, "error_correction": False}),
        ("ef21", {"alpha": ef21_step(problem, k), "k": k}),
        ("ef", {"alpha": "0.5/L", "k": k}),
        ("bidir-topk", {"alpha": "0.5/L", "k_up": k, "k_down": k}),
    ]
    rows = []
    for name, params in algorithms:
        algorithm = make_algorithm(name, problem.constants, **params)
        started = time.perf_counter()
        trace = run(algorithm, problem, iterations)
        run_seconds = time.perf_counter() - started
        started = time.perf_counter()
        certificate = certificate_for(algorithm, problem)
        certify_seconds = time.perf_counter() - started
        try:
            fitted = fit_linear_rate(trace.columns["dist_sq"], burn_in=0.1)
            fit = {"rate": fitted.rate, "low": fitted.low, "high": fitted.high}
        except ConvcheckError as error:
            fit = {"error": str(error)}
        checks = []
        for bound in bounds_for(algorithm, problem):
            check = check_bound(bound, trace, problem, algorithm)
            checks.append(
                {
                    "bound": bound.name,
                    "provenance": bound.provenance,
                    "applicable": check.applicable,
                    "holds": check.holds,
                    "max_ratio": check.max_ratio,
                    "argmax": check.argmax,
                    "max_ratio_after_start": check.max_ratio_after_start,
                    "reason": check.reason,
                }
            )
            if check.evaluated and bound.name == "lmi/distance":
                plots.setdefault(label, []).append((name, params, check))
        row = {
            "case": label,
            "algorithm": name,
            "params": {key: str(value) for key, value in params.items()},
            "iterations": trace.iterations,
            "status": trace.status,
            "final_dist_sq": float(trace.columns["dist_sq"][-1]),
            "run_seconds": run_seconds,
            "certified": None if certificate is None else certificate.certified,
            "rho": None if certificate is None else certificate.rho,
            "rho_squared": None
            if certificate is None or not certificate.rho
            else certificate.rho**2,
            "certify_seconds": certify_seconds,
            "fitted_dist_rate": fit,
            "checks": checks,
        }
        rows.append(row)
        print(label, name, params, row["certified"], row["rho"], fit, flush=True)
        for check in checks:
            print(
                "   ",
                check["bound"],
                check["applicable"],
                check["holds"],
                check["max_ratio"],
                check["max_ratio_after_start"],
            )
    return rows


def ef_plateau(problem) -> list[dict]:
    rows = []
    k = max(1, problem.objective.dim // 10)
    for c in (0.5, 0.25, 0.125):
        algorithm = make_algorithm("ef", problem.constants, alpha=f"{c}/L", k=k)
        trace = run(algorithm, problem, 6000)
        distance = trace.columns["dist_sq"]
        tail = distance[3000:]
        rows.append(
            {
                "alpha": f"{c}/L",
                "median_dist_sq_last_half": float(np.median(tail)),
                "min_dist_sq_last_half": float(tail.min()),
                "linear_fit_rate": fit_linear_rate(distance, burn_in=0.5).rate,
                "power_fit_exponent": fit_power_law(distance, start=3000).rate,
                "certified": certificate_for(algorithm, problem).certified,
            }
        )
        print(rows[-1], flush=True)
    return rows


def ef21_step_scan(problem) -> list[dict]:
    """How far beyond [EF21] Theorem 2's step the LMI certifies, and what runs do there."""
    rows = []
    k = max(1, problem.objective.dim // 10)
    for c in (0.02, 0.05, 0.1, 0.5, 1.0):
        algorithm = make_algorithm("ef21", problem.constants, alpha=f"{c}/L", k=k)
        certificate = certificate_for(algorithm, problem)
        trace = run(algorithm, problem, 2000)
        rows.append(
            {
                "alpha": f"{c}/L",
                "theorem_step": ef21_step(problem, k),
                "certified": certificate.certified,
                "rho": certificate.rho,
                "final_dist_sq": float(trace.columns["dist_sq"][-1]),
            }
        )
        print(rows[-1], flush=True)
    return rows


def negative_controls() -> list[dict]:
    rows = []
    ridge = build_problem("ridge", "diabetes", workers=4, split="sorted")
    gd = make_algorithm("gd", ridge.constants, alpha="2.1/L")
    trace = run(gd, ridge, 200)
    for name in ("gd/strongly-convex", "gd/nonconvex"):
        plain = check_bound(BOUNDS[name], trace, ridge, gd)
        forced = check_bound(BOUNDS[name], trace, ridge, gd, force=True)
        rows.append(
            {
                "control": f"GD α = 2.1/L on ridge/diabetes, {name}",
                "reported": plain.reason,
                "forced_holds": forced.holds,
                "forced_max_ratio": forced.max_ratio,
            }
        )
    problem = build_problem("logistic", "breast-cancer", workers=4, split="sorted", lam=0.01)
    for bug in ("stale-worker-memory", "error-not-cleared"):
        algorithm = inject(make_algorithm("gd-sec", problem.constants, alpha="0.5/L", xi=0.2), bug)
        trace = run(algorithm, problem, 1000)
        for bound in bounds_for(algorithm, problem):
            check = check_bound(bound, trace, problem, algorithm)
            rows.append(
                {
                    "control": f"{bug} on logistic/breast-cancer, {bound.name}",
                    "applicable": check.applicable,
                    "holds": check.holds,
                    "max_ratio": check.max_ratio,
                }
            )
    for alpha, xi in [(0.5, 0.45), (0.5, 0.8), (0.9, 0.45), (1.0, 0.3)]:
        algorithm = make_algorithm("gd-sec", problem.constants, alpha=f"{alpha}/L", xi=xi)
        certificate = certificate_for(algorithm, problem)
        rows.append(
            {
                "control": f"GD-SEC α = {alpha}/L, ξ = {xi}: certificate",
                "certified": certificate.certified,
                "rho": certificate.rho,
            }
        )
    for row in rows:
        print(row, flush=True)
    return rows


def plot(plots: dict, plateau_problem, out: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for label, items in plots.items():
        figure, axis = plt.subplots(figsize=(7, 4.2))
        for index, (name, params, check) in enumerate(items):
            color = f"C{index}"
            tag = name + ("" if params.get("error_correction", True) else " (no EC)")
            axis.semilogy(check.iterations, check.measured, color=color, label=f"{tag}: measured")
            axis.semilogy(
                check.iterations,
                check.bound_values,
                color=color,
                ls="--",
                label=f"{tag}: ρ^(2k)V(s⁰)",
            )
        lowest = min(float(np.min(check.measured[check.measured > 0])) for _, _, check in items)
        axis.set_ylim(bottom=max(1e-26, 0.1 * lowest))
        axis.set_xlabel("iteration k")
        axis.set_ylabel("‖θ^k − θ*‖²")
        axis.set_title(f"certified (LMI) bounds, {label}")
        axis.legend(fontsize=7)
        path = os.path.join(out, f"lmi_{label.replace('/', '_')}.png")
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    figure, axis = plt.subplots(figsize=(7, 4.2))
    k = max(1, plateau_problem.objective.dim // 10)
    for name, params in [
        ("ef", {"alpha": "0.5/L", "k": k}),
        ("ef", {"alpha": "0.125/L", "k": k}),
        ("ef21", {"alpha": ef21_step(plateau_problem, k), "k": k}),
        ("ef21", {"alpha": "0.5/L", "k": k}),
        ("gd-sec", {"alpha": "0.5/L", "xi": 0.2}),
    ]:
        trace = run(
            make_algorithm(name, plateau_problem.constants, **params), plateau_problem, 6000
        )
        alpha = params["alpha"] if isinstance(params["alpha"], str) else f"{params['alpha']:.3g}"
        axis.semilogy(trace.columns["dist_sq"], label=f"{name}, α = {alpha}")
    axis.set_xlabel("iteration k")
    axis.set_ylabel("‖θ^k − θ*‖²")
    axis.set_title("heterogeneous workers: classic EF plateaus, EF21 and GD-SEC converge")
    axis.legend(fontsize=8)
    path = os.path.join(out, "ef_plateau.png")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    written.append(path)
    return written


def _number(value, digits: int = 6) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown(results: dict) -> str:
    """Every table of docs/theory.md §6, from the results."""
    n = _number
    out = [
        "# Measured figures of docs/theory.md §6",
        "",
        "Written by `python docs/theory_figures.py` (do not edit by hand); "
        f"total {results['seconds']:.0f} s on this machine.",
        "",
        "## GD anchor and PEPit",
        "",
        f"GD: {results['gd_anchor']['cases']} cases (L ∈ {{1, 7.5}}, μ/L ∈ {{0.01, 0.3, 0.9}}, "
        "αL ∈ {0.1, 1, 1.7, 1.99}), max |ρ_LMI − max(|1 − αμ|, |1 − αL|)| = "
        f"{results['gd_anchor']['max_abs_error']:.3g}.",
        "",
        "| α | μ | L | δ | PEPit worst ‖θ¹ − θ*‖² | LMI ρ² | difference |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["pepit"]:
        out.append(
            f"| {n(row['alpha'])} | {n(row['mu'])} | {n(row['L'])} | {n(row['delta'])} | "
            f"{n(row['pepit_worst_ratio'], 10)} | {n(row['lmi_rho_squared'], 10)} | "
            f"{n(row['difference'], 3)} |"
        )
    out += [
        "",
        "## Certificate timings (L = 1, μ = 0.01, L_m evenly in [0.5, 1.5], tol 1e-7)",
        "",
        "| algorithm | M | states | inputs | certified | ρ | SDPs | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["timings"]:
        out.append(
            f"| {row['algorithm']} | {row['workers']} | {row['states']} | {row['inputs']} | "
            f"{n(row['certified'])} | {n(row['rho'], 9)} | {row['solves']} | "
            f"{row['seconds']:.2f} |"
        )
    out += [
        "",
        "## Bounds on runs (heterogeneous workers: labels sorted over the workers)",
        "",
        "ratio = max_k measured/(bound + floor); after start = the same over k ≥ 1; the fitted "
        "rate is Theil–Sen on log ‖θ^k − θ̂‖² after a 10% burn-in (compare with ρ²).",
        "",
        "| case | algorithm | params | certified ρ² | fitted rate (95% CI) | bound | provenance "
        "| applicable | holds | ratio | after start |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["runs"]:
        fit = row["fitted_dist_rate"]
        fitted = (
            f"{fit['rate']:.6f} ({fit['low']:.6f}, {fit['high']:.6f})" if "rate" in fit else "—"
        )
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        for check in row["checks"]:
            out.append(
                f"| {row['case']} | {row['algorithm']} | {params} | {n(row['rho_squared'], 8)} | "
                f"{fitted} | {check['bound']} | {check['provenance']} | "
                f"{n(check['applicable'])} | {n(check['holds'])} | {n(check['max_ratio'], 4)} | "
                f"{n(check['max_ratio_after_start'], 4)} |"
            )
    out += [
        "",
        "Reasons reported for bounds that were not applicable:",
        "",
    ]
    for row in results["runs"]:
        for check in row["checks"]:
            if not check["applicable"]:
                out.append(
                    f"- {row['case']}, {row['algorithm']}, {check['bound']}: {check['reason']}"
                )
    out += [
        "",
        "## Classic EF on heterogeneous workers (breast-cancer, sorted, M = 4, top-10%)",
        "",
        "| α | certified | median ‖θ − θ̂‖² (k ≥ 3000) | min (k ≥ 3000) | linear fit (k ≥ 3000) "
        "| log-log slope (k ≥ 3000) |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["ef_plateau"]:
        out.append(
            f"| {row['alpha']} | {n(row['certified'])} | {n(row['median_dist_sq_last_half'], 4)} | "
            f"{n(row['min_dist_sq_last_half'], 4)} | {n(row['linear_fit_rate'], 8)} | "
            f"{n(row['power_fit_exponent'], 3)} |"
        )
    out += [
        "",
        "## EF21 beyond the theorem's step (breast-cancer, sorted, M = 4, top-10%, 2000 rounds)",
        "",
        "| α | theorem step | certified | ρ | final ‖θ − θ̂‖² |",
        "|---|---|---|---|---|",
    ]
    for row in results["ef21_step_scan"]:
        out.append(
            f"| {row['alpha']} | {n(row['theorem_step'], 4)} | {n(row['certified'])} | "
            f"{n(row['rho'], 9)} | {n(row['final_dist_sq'], 4)} |"
        )
    out += ["", "## Negative controls", "", "| control | result |", "|---|---|"]
    for row in results["negative_controls"]:
        fields = {k: v for k, v in row.items() if k != "control"}
        text = "; ".join(f"{k} = {n(v, 4)}" for k, v in fields.items())
        out.append(f"| {row['control']} | {text} |")
    out += ["", "Plots: " + ", ".join(os.path.basename(p) for p in results["plots"]), ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("docs", "figures"))
    parser.add_argument("--skip-shared", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"gd_anchor": gd_anchor(), "pepit": pepit_agreement()}
    print(results, flush=True)
    results["timings"] = timings()
    plots: dict = {}
    breast = build_problem("logistic", "breast-cancer", workers=4, split="sorted", lam=0.01)
    results["runs"] = run_case("breast-cancer-sorted-M4", breast, 2000, plots)
    if not args.skip_shared:
        try:
            find_data_files(data_files("phishing"), name="phishing")
        except ConvcheckError:
            print("phishing files not found: LIBSVM case skipped")
        else:
            phishing = build_problem("logistic", "phishing", workers=10, split="sorted", lam=0.01)
            results["runs"] += run_case("phishing-sorted-M10", phishing, 1500, plots)
    results["ef_plateau"] = ef_plateau(breast)
    results["ef21_step_scan"] = ef21_step_scan(breast)
    results["negative_controls"] = negative_controls()
    results["plots"] = plot(plots, breast, args.out)
    results["seconds"] = time.perf_counter() - started
    write_json(os.path.join(args.out, "theory_figures.json"), results)
    write_atomic(os.path.join(args.out, "theory_figures.md"), markdown(results))
    print(f"done in {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
