"""``convcheck compare``: iterations and bits to a target for several algorithms."""

from __future__ import annotations

import argparse

from convcheck.cli.common import (
    add_problem_arguments,
    add_progress_argument,
    problem_from,
    wants_progress,
    warning_line,
)
from convcheck.jsonio import write_json
from convcheck.outputs import check_output_file


def handle(args: argparse.Namespace) -> int:
    from convcheck.comparison import compare, format_comparison

    if args.out:
        check_output_file(args.out)
    problem = problem_from(args)
    rows = compare(
        problem,
        args.algorithms,
        target=args.target,
        iterations=args.iters,
        target_metric=args.target_metric,
        seed=args.seed,
        progress=wants_progress(args),
        warn=warning_line,
    )
    if args.out:
        document = {"problem": problem.describe(), "target": args.target, "rows": rows}
        write_json(args.out, document)
    print(f"problem    {problem.objective.name} ({problem.settings['problem']})")
    print(format_comparison(rows, args.target))
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    from convcheck.engine import TARGET_METRICS

    comparison = commands.add_parser(
        "compare", help="iterations and bits to a target accuracy for several algorithms"
    )
    comparison.add_argument(
        "algorithms",
        nargs="+",
        metavar="NAME[:key=value,...]",
        help="algorithms with their parameters, e.g. gd gd-sec:xi=0.2 ef:k=3; the first is "
        "the baseline of the ratios",
    )
    add_problem_arguments(comparison)
    comparison.add_argument("--iters", type=int, required=True, help="at most T rounds each")
    comparison.add_argument("--target", type=float, required=True, help="target accuracy")
    comparison.add_argument(
        "--target-metric", choices=TARGET_METRICS, help="(suboptimality; nonconvex: grad_norm_sq)"
    )
    add_progress_argument(comparison)
    comparison.add_argument("--out", help="also write the table as JSON to this file")
    comparison.set_defaults(handler=handle)
