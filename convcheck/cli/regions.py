"""``convcheck regions``: certified, worst-case and empirical stability regions over
``(α·L, ξ or δ)`` for the quick suite's algorithms, on local processes or a Dask cluster."""

from __future__ import annotations

import argparse

from convcheck.cli.common import progress_line
from convcheck.keyvalue import parse_numbers


def handle(args: argparse.Namespace) -> int:
    from convcheck.executor import make_executor
    from convcheck.experiments import regions as maps

    steps = maps.STEPS if args.steps is None else _numbers("steps", args.steps)
    values = None if args.values is None else _numbers("values", args.values)
    seeds = maps.SEEDS if args.seeds is None else [int(s) for s in _numbers("seeds", args.seeds)]
    algorithms = maps.validate_grid(args.algorithms or [], steps, values, args.iterations, seeds)
    with make_executor(args.jobs, args.scheduler, args.timeout) as executor:
        document = maps.regions(algorithms, args.out, executor=executor, steps=steps,
                                values=values, iterations=args.iterations, seeds=seeds,
                                data_dir=args.data_dir, progress=progress_line)
    for data in document["maps"]:
        print(format_map(data))
    print(f"wrote {args.out}/regions.json and {len(document['maps'])} figure(s)")
    return 0


def _numbers(field: str, text: str) -> list[float]:
    values = parse_numbers(field, text)
    return [] if values is None else [float(v) for v in values]


def format_map(data: dict) -> str:
    """One line per row of the grid: the three boundaries."""
    axis = data["grid"]["axis"] or "-"
    lines = [f"{data['algorithm']} on {data['problem']} ({data['case']}; {data['iterations']} "
             f"iterations, seeds {data['seeds']})",
             f"  {axis:>8}  largest certified α·L  instance diverges from  largest converging"]
    for row in data["boundaries"]:
        value = "-" if row["value"] is None else f"{row['value']:g}"
        cells = [row["largest_certified"], row["smallest_diverging"], row["largest_converging"]]
        text = ["none" if c is None else f"{c:g}" for c in cells]
        lines.append(f"  {value:>8}  {text[0]:>21}  {text[1]:>22}  {text[2]:>18}")
    return "\n".join(lines)


def add_parser(commands: argparse._SubParsersAction) -> None:
    from convcheck.experiments.regions import ITERATIONS, SPECS

    regions = commands.add_parser(
        "regions", help="certified / worst-case / empirical stability regions over (αL, ξ or δ)"
    )
    regions.add_argument(
        "--algorithms", nargs="*", choices=list(SPECS),
        help="algorithms to map (default: the quick suite's algorithms with a model)",
    )
    regions.add_argument("--out", default="regions", help="output folder (regions)")
    regions.add_argument("--steps", help="α·L grid, comma-separated (default: 10 values 0.02–2)")
    regions.add_argument("--values", help="ξ (gd-sec) or δ (ef, ef21) grid, comma-separated")
    regions.add_argument("--iterations", type=int, default=ITERATIONS,
                         help=f"iterations of each empirical run ({ITERATIONS})")
    regions.add_argument("--seeds", help="seeds of the empirical runs, comma-separated (0)")
    regions.add_argument("--jobs", type=int, default=1, help="local worker processes (1)")
    regions.add_argument("--scheduler", help="address of a Dask scheduler (tcp://host:8786)")
    regions.add_argument("--timeout", type=float, default=10.0,
                         help="seconds to wait for the scheduler (10)")
    regions.add_argument("--data-dir", help="folder of the real datasets")
    regions.set_defaults(handler=handle)
