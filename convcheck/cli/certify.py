"""``convcheck certify``: the least linear rate an LMI certifies for an algorithm."""

from __future__ import annotations

import argparse
import json

from convcheck.jsonio import write_json
from convcheck.keyvalue import parse_assignments, parse_numbers
from convcheck.outputs import check_output_file


def handle(args: argparse.Namespace) -> int:
    from convcheck.theory.certified import certify

    if args.out:
        check_output_file(args.out)
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
        write_json(args.out, described)
    print(json.dumps(described, indent=1) if args.json else format_certificate(described))
    return 0


def format_certificate(described: dict) -> str:
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


def add_parser(commands: argparse._SubParsersAction) -> None:
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
    certify.set_defaults(handler=handle)
