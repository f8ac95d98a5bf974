"""``convcheck certify``: the least linear rate an LMI certifies for an algorithm, the rate of an
explicit instance beside it (how tight it is), the model and the class it is about.

With ``--case FILE``: the case's class certificate, its instance certificate (quadratic
objectives) and the rate measured on one of its runs.
"""

from __future__ import annotations

import argparse
import json

from convcheck.errors import InputError
from convcheck.jsonio import write_json
from convcheck.keyvalue import parse_assignments, parse_numbers
from convcheck.outputs import check_output_file


def handle(args: argparse.Namespace) -> int:
    if args.case:
        return _handle_case(args)
    if args.algorithm is None:
        raise InputError("algorithm", None, "--algorithm NAME (or --case FILE)")
    if args.L is None or args.mu is None:
        missing = "L" if args.L is None else "mu"
        raise InputError(missing, None, f"--{missing} VALUE (with --algorithm)")
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
        model=args.model,
        window=args.window,
        classes=args.classes,
        force=args.force,
        lower_bound=not args.no_lower_bound,
        **parse_assignments(args.set),
    )
    described = certificate.as_dict()
    if args.out:
        write_json(args.out, described)
    print(json.dumps(described, indent=1) if args.json else format_certificate(described))
    return 0


def _handle_case(args: argparse.Namespace) -> int:
    from convcheck.verification.cases import load_case
    from convcheck.verification.certificates import case_certificates

    found = case_certificates(load_case(args.case), data_dir=args.data_dir,
                              instance_class=args.instance_class)
    if args.out:
        write_json(args.out, found)
    print(json.dumps(found, indent=1) if args.json else format_case(found))
    return 0


def format_certificate(described: dict) -> str:
    """The certificate in words: rate, lower bound, gap, model, class, re-check, cost."""
    params = dict(described["params"])
    constants = {key: params.pop(key) for key in ("L", "mu", "workers", "L_workers", "mu_workers")}
    for key in ("model", "window", "classes"):
        params.pop(key, None)
    model = described.get("model") or {}
    lines = [
        f"algorithm    {described['algorithm']} {json.dumps(params)}",
        f"constants    L = {constants['L']:g}, mu = {constants['mu']:g}, "
        f"M = {constants['workers']}; {model.get('workers', '')}",
        f"model        {model.get('name', '?')}: {model.get('constraints', '')}; "
        f"Lyapunov function {model.get('lyapunov', '')}; {model.get('reduction', '')}",
        f"assumptions  {described.get('assumptions', '')}",
    ]
    if described["certified"]:
        check = described["verification"]
        lines += [
            f"certified    rho = {described['rho']:.9g}: ‖θ^k − θ*‖² ≤ rho^(2k)·V⁰ "
            f"(none below {described['rho_infeasible']:.9g})",
        ]
    else:
        lines.append(f"result       {described['reason']}")
    lines += _lower_lines(described)
    if described["certified"]:
        check = described["verification"]
        lines.append(
            f"re-check     numpy: max eigenvalue of the LMIs = "
            f"{max(check['lmi_max_eigenvalue']):.3g} ≤ −{max(check['lmi_tolerance']):.1g}; "
            f"min eigenvalue of V − ‖θ − θ*‖² = {check['p_min_eigenvalue']:.3g} ≥ "
            f"{check['p_tolerance']:.1g}"
        )
    size = described.get("size") or {}
    lines.append(
        f"solves       {described['solves']} SDPs in {described['seconds']:.2f} s "
        f"({described['solver'] or 'no certificate'}), bisection tolerance "
        f"{described['tolerance']:g}; {len(size.get('blocks', []))} LMI block(s), "
        f"largest {size.get('lmi_rows', '?')} rows"
    )
    return "\n".join(lines)


def _lower_lines(described: dict) -> list[str]:
    low = described.get("rho_low")
    if low is None:
        return [f"lower bound  none ({described.get('lower_bound_method') or 'not searched'})"]
    lines = [f"lower bound  rho_low = {low:.9g}: {described.get('lower_bound_method', '')}"]
    if low >= 1.0:
        lines.append("             the instance does not converge: no certificate can exist")
    if described.get("gap") is not None:
        lines.append(f"gap          rho − rho_low = {described['gap']:.3g}")
    return lines


def format_case(found: dict) -> str:
    """Class certificate, instance certificate and measured rate of a case."""

    def rate(part: dict) -> str:
        if not part.get("certified"):
            return f"none — {part.get('reason', '')}"
        text = f"rho = {part['rho']:.9g}"
        if part.get("rho_low") is not None:
            text += f", rho_low = {part['rho_low']:.9g}, gap = {part['gap']:.3g}"
        return text + f" [{part['model'].get('name', '')}]"

    measured = found["measured"]
    value = measured["rate"]
    lines = [
        f"case       {found['case']}: {found['algorithm']} on {found['problem']}",
        f"class      {rate(found['class'])}",
        f"instance   {rate(found['instance'])}",
        f"measured   {'n/a' if value is None else f'{value:.9g}'} ({measured['how']}; seed "
        f"{measured['seed']}, {measured['iterations']} iterations, {measured['status']})",
    ]
    for key in ("class", "instance"):
        if found[key].get("assumptions"):
            lines.append(f"{key:<10} is about: {found[key]['assumptions']}")
    return "\n".join(lines)


def add_parser(commands: argparse._SubParsersAction) -> None:
    from convcheck.theory.models import MODELS, VARIANTS

    certify = commands.add_parser(
        "certify",
        help="certified linear rate of an algorithm on S(mu, L) by an LMI, with a lower bound",
    )
    certify.add_argument("--algorithm", choices=list(MODELS))
    certify.add_argument("--L", type=float, help="smoothness L of f")
    certify.add_argument("--mu", type=float, help="strong convexity mu of f")
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
    certify.add_argument(
        "--model", default="auto", choices=("auto",) + VARIANTS,
        help="interpolation (function values, history window), sector (the state-complete "
             "model of the run checks), or auto: the sharpest whose LMI stays small (auto)",
    )
    certify.add_argument("--window", type=int, help="history window of the interpolation model")
    certify.add_argument(
        "--classes", type=int,
        help="round per-worker constants into at most this many classes (L_m up, mu_m down)",
    )
    certify.add_argument(
        "--force", action="store_true", help="solve even past the SDP size guard"
    )
    certify.add_argument(
        "--no-lower-bound", action="store_true", help="skip the lower-bound instance search"
    )
    certify.add_argument("--tol", type=float, default=1e-7, help="bisection tolerance on rho")
    certify.add_argument(
        "--case", help="a case file: its class certificate, instance certificate and measured rate"
    )
    certify.add_argument(
        "--class", dest="instance_class", choices=("smooth", "quadratic"),
        help="with --case: quadratic requires (and certifies) the problem's own quadratics",
    )
    certify.add_argument("--data-dir", help="folder of the real datasets (with --case)")
    certify.add_argument("--json", action="store_true", help="print the result as JSON")
    certify.add_argument("--out", help="also write the result as JSON to this file")
    certify.set_defaults(handler=handle)
