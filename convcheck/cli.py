"""The ``convcheck`` command.

Subcommands: ``list`` (what is available), ``inspect`` (one problem's constants and certified
optimum), ``run`` (one run of an algorithm and its trace) and ``certify`` (an LMI-certified
linear rate). Errors on bad input print one
line naming the field and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from convcheck.atomic import write_atomic
from convcheck.errors import ConvcheckError, InputError


def parse_assignments(items: Sequence[str]) -> dict:
    """``["k=10", "ratio=0.1", "scaled=true", "name=x"]`` → typed dict (int, float, bool, str)."""
    values: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError("--set", item, "key=value")
        values[key] = _parse_value(raw)
    return values


def _parse_value(raw: str) -> int | float | bool | str:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def _list(args: argparse.Namespace) -> int:
    from convcheck.catalog import catalog, format_catalog

    entries = catalog(data_dir=args.data_dir)
    print(json.dumps(entries, indent=2) if args.json else format_catalog(entries))
    return 0


def _problem_from(args: argparse.Namespace):
    """The :class:`~convcheck.problem.Problem` the problem options describe."""
    from convcheck.problem import build_problem

    return build_problem(
        args.problem,
        args.dataset,
        workers=args.workers,
        split=args.split,
        alpha=args.dirichlet_alpha,
        lam=args.lam,
        lam_nc=args.lam_nc,
        scaling=args.scaling,
        intercept=args.intercept,
        seed=args.split_seed if args.split_seed is not None else args.seed,
        data_dir=args.data_dir,
        dataset_params=parse_assignments(args.dataset_param),
        cross_check=args.cross_check,
    )


def _inspect(args: argparse.Namespace) -> int:
    description = _problem_from(args).describe()
    if args.out:
        write_atomic(args.out, json.dumps(description, indent=2) + "\n")
    print(_format_inspection(description))
    return 0


def _run(args: argparse.Namespace) -> int:
    from convcheck.algorithms import make_algorithm
    from convcheck.engine import run, write_run

    problem = _problem_from(args)
    algorithm = make_algorithm(args.algorithm, problem.constants, **parse_assignments(args.set))
    result = run(
        algorithm,
        problem,
        args.iters,
        seed=args.seed,
        target=args.target,
        target_metric=args.target_metric,
        stop_at_target=args.stop_at_target,
        progress=args.progress,
    )
    if args.out:
        write_run(result, args.out)
    print(_format_run(result))
    return 0


def parse_numbers(field: str, text: str | None) -> list[float] | None:
    """``"1,2.5,3"`` → ``[1.0, 2.5, 3.0]``; errors name ``field``."""
    if text is None:
        return None
    try:
        return [float(item) for item in text.split(",")]
    except ValueError:
        raise InputError(field, text, "comma-separated numbers, e.g. 1,2,3") from None


def _certify(args: argparse.Namespace) -> int:
    from convcheck.theory.certified import certify

    certificate = certify(
        args.algorithm,
        L=args.L,
        mu=args.mu,
        workers=args.workers,
        L_workers=parse_numbers("L_workers", args.L_workers),
        mu_workers=parse_numbers("mu_workers", args.mu_workers),
        tol=args.tol,
        **parse_assignments(args.set),
    )
    described = certificate.as_dict()
    if args.out:
        write_atomic(args.out, json.dumps(described, indent=1) + "\n")
    print(json.dumps(described, indent=1) if args.json else _format_certificate(described))
    return 0


def _format_certificate(described: dict) -> str:
    params = dict(described["params"])
    constants = {key: params.pop(key) for key in ("L", "mu", "workers", "L_workers", "mu_workers")}
    lines = [
        f"algorithm  {described['algorithm']} {json.dumps(params)}",
        f"constants  L = {constants['L']:g}, mu = {constants['mu']:g}, "
        f"M = {constants['workers']}, L_m = {constants['L_workers']}, "
        f"mu_m = {constants['mu_workers']}",
    ]
    if described["certified"]:
        check = described["verification"]
        lines += [
            f"certified  rho = {described['rho']:.9g}: ‖θ^k − θ*‖² ≤ rho^(2k)·V(s⁰), "
            f"rho in ({described['rho_infeasible']:.9g}, {described['rho']:.9g}]",
            f"re-check   numpy: max eigenvalue of the LMI = "
            f"{max(check['lmi_max_eigenvalue']):.3g} ≤ −{max(check['lmi_tolerance']):.1g}; "
            f"min eigenvalue of P − e eᵀ = {check['p_min_eigenvalue']:.3g} ≥ "
            f"{check['p_tolerance']:.1g}",
        ]
    else:
        lines.append(f"result     {described['reason']}")
    lines.append(
        f"solves     {described['solves']} SDPs in {described['seconds']:.2f} s "
        f"({described['solver'] or 'no certificate'}), "
        f"bisection tolerance {described['tolerance']:g}"
    )
    return "\n".join(lines)


def _format_run(result) -> str:
    summary, final = result.summary, result.summary["final"]
    algorithm = result.meta["algorithm"]
    lines = [
        f"algorithm  {algorithm['name']} {json.dumps(algorithm['params'])}",
        f"status     {result.status}: {result.reason}",
        f"final      f − f_ref = {final['suboptimality']:.6g}, "
        f"‖∇f‖² = {final['grad_norm_sq']:.6g}, ‖θ − θ*‖² = {final['dist_sq']:.6g}",
        f"bits       up {final['bits_up_total']:,}, down {final['bits_down_total']:,} "
        f"(all workers, {summary['iterations']} rounds)",
    ]
    if summary["target"] is not None:
        where = summary["target_iteration"]
        lines.append(
            f"target     {summary['target_metric']} <= {summary['target']:g}: "
            + (
                f"iteration {where}, bits up {summary['bits_up_to_target']:,}, "
                f"down {summary['bits_down_to_target']:,}"
                if where is not None
                else "not reached"
            )
        )
    return "\n".join(lines)


def _format_inspection(description: dict) -> str:
    settings, objective = description["settings"], description["objective"]
    constants, optimum = description["constants"], description["optimum"]
    sizes = objective["samples_per_worker"]
    lines = [
        f"problem    {settings['problem']} "
        f"(lam={settings['lam']:g}, lam_nc={settings['lam_nc']:g})",
        f"data       {settings['source']}",
        f"split      {settings['split']} over {objective['workers']} workers, "
        f"{min(sizes)}..{max(sizes)} samples each, d = {objective['dim']}",
        f"class      {constants['class']}",
        f"L          {constants['L']:.10g}   (L_tilde {constants['L_tilde']:.10g}, "
        f"L_max {constants['L_max']:.10g})",
        f"mu         {constants['mu']:.10g}   (curvature lower bound "
        f"{constants['curvature_lower']:.10g})",
        f"eigen      {constants['eigen_method']} (safety factor {constants['safety_factor']:g})",
        f"f_low      {optimum['f_low']:.15g}   [{optimum['certificate']}]",
    ]
    if optimum["value"] is not None:
        lines.append(
            f"optimum    f(theta_hat) = {optimum['value']:.15g}, ‖∇f‖ = {optimum['grad_norm']:.3g} "
            f"≤ {optimum['tolerance']:.3g} after {optimum['iterations']} Newton steps"
        )
        if optimum["gap_bound"] is not None:
            lines.append(f"gap        f(theta_hat) − f* ≤ {optimum['gap_bound']:.3g}")
    check = optimum["cross_check"]
    if check is not None:
        verdict = "agrees" if check["agrees"] else "DISAGREES"
        lines.append(
            f"cvxpy      {check['solver']} {check['status']}: {verdict}, "
            f"f(theta_cvx) − f(theta_hat) = "
            f"{check['value_difference']:.3g} (tolerance {check['tolerance']:.1g}), "
            f"‖theta_cvx − theta_hat‖ = {check['distance']:.3g}, {check['seconds']:.2f} s"
        )
    elif optimum["value"] is not None:
        lines.append("cvxpy      cross-check not run (problem too large; pass --cross-check)")
    return "\n".join(lines)


def _add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that build a problem (``inspect`` and ``run``)."""
    from convcheck.data import SCALINGS, SPLITS
    from convcheck.objectives import FAMILIES

    parser.add_argument("--problem", required=True, choices=FAMILIES)
    parser.add_argument(
        "--dataset", default="breast-cancer", help="name, svmlight:PATH or idx:DIR (breast-cancer)"
    )
    parser.add_argument("--workers", type=int, default=10, help="number of workers M (10)")
    parser.add_argument("--split", default="iid", choices=SPLITS, help="row split (iid)")
    parser.add_argument(
        "--dirichlet-alpha", type=float, help="Dirichlet concentration (split=dirichlet)"
    )
    parser.add_argument("--lam", type=float, help="L2 weight (logistic 1e-3, others 0)")
    parser.add_argument("--lam-nc", type=float, help="nonconvex weight (0.1)")
    parser.add_argument("--scaling", default="maxabs", choices=SCALINGS, help="(maxabs)")
    parser.add_argument("--intercept", action="store_true", help="append a constant feature")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the run, the split and the generators (0)"
    )
    parser.add_argument(
        "--split-seed", type=int, help="seed of the split and generators (default: --seed)"
    )
    parser.add_argument("--data-dir", help="folder of the real datasets (default: ../shared/data)")
    parser.add_argument(
        "--dataset-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset loader parameter, e.g. n_features=50",
    )
    check = parser.add_mutually_exclusive_group()
    check.add_argument(
        "--cross-check",
        dest="cross_check",
        action="store_true",
        default=None,
        help="run the cvxpy cross-check of the optimum",
    )
    check.add_argument("--no-cross-check", dest="cross_check", action="store_false")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``convcheck`` command."""
    from convcheck.algorithms import ALGORITHMS
    from convcheck.engine import TARGET_METRICS

    parser = argparse.ArgumentParser(
        prog="convcheck",
        description="Verify the convergence theory of communication-compressed optimization.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="objectives, compressors, datasets, splits")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--data-dir", help="folder of the real datasets (default: ../shared/data)")
    listing.set_defaults(handler=_list)

    inspect = commands.add_parser(
        "inspect", help="constants and certified optimum of one problem on one dataset"
    )
    _add_problem_arguments(inspect)
    inspect.add_argument("--out", help="also write the description as JSON to this file")
    inspect.set_defaults(handler=_inspect)

    run = commands.add_parser("run", help="one run of an algorithm; writes its trace")
    run.add_argument("--algorithm", required=True, choices=list(ALGORITHMS))
    _add_problem_arguments(run)
    run.add_argument("--iters", type=int, required=True, help="number of rounds T")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="algorithm or compressor parameter, e.g. alpha=1/L, xi=0.1, compressor=top-k, k=5",
    )
    run.add_argument("--target", type=float, help="target accuracy (records bits to reach it)")
    run.add_argument(
        "--target-metric", choices=TARGET_METRICS, help="(suboptimality; nonconvex: grad_norm_sq)"
    )
    run.add_argument(
        "--no-stop-at-target",
        dest="stop_at_target",
        action="store_false",
        help="keep running after the target is reached",
    )
    run.add_argument("--progress", action="store_true", help="show a progress bar")
    run.add_argument("--out", help="trace file: .json (everything), .csv or .parquet (columns)")
    run.set_defaults(handler=_run)

    from convcheck.theory.models import MODELS

    certify = commands.add_parser(
        "certify", help="certified linear rate of an algorithm on S(mu, L) by an LMI"
    )
    certify.add_argument("--algorithm", required=True, choices=list(MODELS))
    certify.add_argument("--L", type=float, required=True, help="smoothness L of f")
    certify.add_argument("--mu", type=float, required=True, help="strong convexity mu of f")
    certify.add_argument("--workers", type=int, default=1, help="number of workers M (1)")
    certify.add_argument(
        "--L-workers", help="per-worker L_m, comma-separated, M values (default: L for each)"
    )
    certify.add_argument(
        "--mu-workers", help="per-worker mu_m, comma-separated, M values (default: mu for each)"
    )
    certify.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="algorithm parameter, e.g. alpha=1/L, xi=0.1, delta=0.1 (or k=5 d=50), tau=2",
    )
    certify.add_argument("--tol", type=float, default=1e-7, help="bisection tolerance on rho")
    certify.add_argument("--json", action="store_true", help="print the certificate as JSON")
    certify.add_argument("--out", help="also write the certificate as JSON to this file")
    certify.set_defaults(handler=_certify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convcheck`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConvcheckError as error:
        print(f"convcheck: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
