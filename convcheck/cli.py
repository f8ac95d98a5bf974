"""The ``convcheck`` command.

Subcommands: ``list`` (what is available) and ``inspect`` (one problem's constants and certified
optimum). Errors on bad input print one line naming the field and exit with status 2.
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


def _inspect(args: argparse.Namespace) -> int:
    from convcheck.problem import build_problem

    problem = build_problem(
        args.problem,
        args.dataset,
        workers=args.workers,
        split=args.split,
        alpha=args.alpha,
        lam=args.lam,
        lam_nc=args.lam_nc,
        scaling=args.scaling,
        intercept=args.intercept,
        seed=args.seed,
        data_dir=args.data_dir,
        dataset_params=parse_assignments(args.set),
        cross_check=args.cross_check,
    )
    description = problem.describe()
    if args.out:
        write_atomic(args.out, json.dumps(description, indent=2) + "\n")
    print(_format_inspection(description))
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``convcheck`` command."""
    from convcheck.data import SCALINGS, SPLITS
    from convcheck.objectives import FAMILIES

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
    inspect.add_argument("--problem", required=True, choices=FAMILIES)
    inspect.add_argument("--dataset", required=True, help="name, svmlight:PATH or idx:DIR")
    inspect.add_argument("--workers", type=int, default=10, help="number of workers M (10)")
    inspect.add_argument("--split", default="iid", choices=SPLITS, help="row split (iid)")
    inspect.add_argument("--alpha", type=float, help="Dirichlet concentration (split=dirichlet)")
    inspect.add_argument("--lam", type=float, help="L2 weight (logistic 1e-3, others 0)")
    inspect.add_argument("--lam-nc", type=float, help="nonconvex weight (0.1)")
    inspect.add_argument("--scaling", default="maxabs", choices=SCALINGS, help="(maxabs)")
    inspect.add_argument("--intercept", action="store_true", help="append a constant feature")
    inspect.add_argument("--seed", type=int, default=0, help="seed of the split and generators")
    inspect.add_argument("--data-dir", help="folder of the real datasets (default: ../shared/data)")
    inspect.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="dataset parameter"
    )
    check = inspect.add_mutually_exclusive_group()
    check.add_argument("--cross-check", dest="cross_check", action="store_true", default=None)
    check.add_argument("--no-cross-check", dest="cross_check", action="store_false")
    inspect.add_argument("--out", help="also write the description as JSON to this file")
    inspect.set_defaults(handler=_inspect)
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
