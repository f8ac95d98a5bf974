"""``convcheck bench``: the engine's performance figures."""

from __future__ import annotations

import argparse

from convcheck.cli.common import progress_line
from convcheck.jsonio import write_json
from convcheck.outputs import check_output_file


def handle(args: argparse.Namespace) -> int:
    if args.certificates:
        return _certificates(args)
    from convcheck import bench

    if args.out:
        check_output_file(args.out)
    grid, settings = (
        (bench.QUICK_GRID, bench.QUICK_SETTINGS)
        if args.quick
        else (bench.FULL_GRID, bench.FULL_SETTINGS)
    )
    settings = dict(settings)
    for key in ("rounds", "repeats"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    progress_line(bench.HEADER)
    rows = bench.benchmark(grid, seed=args.seed, progress=progress_line, **settings)
    print(bench.format_table(rows))
    if args.profile:
        print()
        print(bench.profile_largest(grid, seed=args.seed))
    batch = None
    if args.batch:
        batch = bench.batch_figure(
            **(bench.QUICK_BATCH_SETTINGS if args.quick else bench.BATCH_SETTINGS),
            seed=args.seed)
        print()
        print(bench.format_batch(batch))
    if args.out:
        write_json(args.out, bench.report(rows, batch))
    return 0


def _certificates(args: argparse.Namespace) -> int:
    """The time of a certificate against the number of workers (no engine benchmark)."""
    from convcheck.environment import environment
    from convcheck.theory import scaling_bench

    progress_line(scaling_bench.HEADER)
    rows = scaling_bench.certificate_timings(progress=progress_line)
    print(scaling_bench.format_table(rows))
    if args.out:
        write_json(args.out, {"certificates": rows, "environment": environment()})
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    benchmark = commands.add_parser(
        "bench", help="engine round vs bare gradients, and vectorized vs per-worker loop"
    )
    benchmark.add_argument(
        "--quick", action="store_true", help="small grid (seconds) instead of the full one"
    )
    benchmark.add_argument("--rounds", type=int, help="rounds T of each timed engine run")
    benchmark.add_argument("--repeats", type=int, help="best of this many repeats")
    benchmark.add_argument("--seed", type=int, default=0, help="seed of the data and split (0)")
    benchmark.add_argument(
        "--profile", action="store_true", help="also profile one round on the largest case"
    )
    benchmark.add_argument(
        "--batch", action="store_true",
        help="also 256 GD-SEC runs (16 step sizes x 16 xi) on breast-cancer, M = 4, 2000 rounds, "
        "in one batched call against the runs one by one (--quick: 16 runs, 200 rounds)")
    benchmark.add_argument(
        "--certificates", action="store_true",
        help="instead: certificate time against the number of workers M (1 to 1000)",
    )
    benchmark.add_argument("--out", help="write rows, versions and machine as JSON")
    benchmark.set_defaults(handler=handle)
