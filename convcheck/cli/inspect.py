"""``convcheck inspect``: one problem's constants, class and certified optimum."""

from __future__ import annotations

import argparse

from convcheck.cli.common import add_problem_arguments, problem_from
from convcheck.jsonio import write_json
from convcheck.outputs import check_output_file


def handle(args: argparse.Namespace) -> int:
    if args.out:
        check_output_file(args.out)
    description = problem_from(args).describe()
    if args.out:
        write_json(args.out, description)
    print(format_inspection(description))
    return 0


def format_inspection(description: dict) -> str:
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


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "inspect", help="constants and certified optimum of one problem on one dataset"
    )
    add_problem_arguments(parser)
    parser.add_argument("--out", help="also write the description as JSON to this file")
    parser.set_defaults(handler=handle)
