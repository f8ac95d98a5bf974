"""``convcheck run``: one run of an algorithm (synchronous rounds or asynchronous events)."""

from __future__ import annotations

import argparse
import json

from convcheck.cli.common import (
    add_problem_arguments,
    add_progress_argument,
    problem_from,
    wants_progress,
    warning_line,
)
from convcheck.errors import InputError
from convcheck.keyvalue import parse_assignments
from convcheck.outputs import check_output_file

#: ``convcheck run`` options that only asynchronous algorithms take (argparse dest names).
ASYNC_OPTIONS = (
    "compute",
    "compute_mean",
    "compute_spread",
    "compute_sigma",
    "compute_shape",
    "compute_trace",
    "latency_up",
    "latency_down",
    "bandwidth_up",
    "bandwidth_down",
    "tau_max",
    "trace_every",
    "shared_data",
)


def handle(args: argparse.Namespace) -> int:
    from convcheck.algorithms import ASYNC_ALGORITHMS, make_algorithm
    from convcheck.engine import run, write_run
    from convcheck.engine.trace import FORMATS

    if args.out:
        check_output_file(args.out, "--out", FORMATS)
    asynchronous = args.algorithm in ASYNC_ALGORITHMS
    if not asynchronous:
        for name in ASYNC_OPTIONS:
            if getattr(args, name) not in (None, False):
                option = "--" + name.replace("_", "-")
                allowed = "only with an asynchronous algorithm: " + ", ".join(ASYNC_ALGORITHMS)
                raise InputError(option, getattr(args, name), allowed)
    problem = problem_from(args, workers=1 if args.shared_data else None)
    algorithm = make_algorithm(args.algorithm, problem.constants, **parse_assignments(args.set))
    from convcheck.theory.steps import step_warning

    warning = step_warning(algorithm, problem, workers=args.workers if asynchronous else None,
                           tau_max=args.tau_max)
    if warning is not None:
        warning_line(warning)
    common = {
        "seed": args.seed,
        "target": args.target,
        "target_metric": args.target_metric,
        "stop_at_target": args.stop_at_target,
        "progress": wants_progress(args),
    }
    if asynchronous:
        result = run_async(args, algorithm, problem, common)
    else:
        result = run(algorithm, problem, args.iters, **common)
    if args.out:
        write_run(result, args.out)
    print(format_run(result))
    return 0


def run_async(args: argparse.Namespace, algorithm, problem, common: dict):
    """One run of an asynchronous algorithm with the timing options of ``args``."""
    from convcheck.engine import run_async
    from convcheck.engine.timing import Link, make_compute

    name = args.compute or ("trace" if args.compute_trace else "exponential")
    if name == "trace":
        if args.compute_trace is None:
            raise InputError("--compute-trace", None, "a .csv or .json file of durations")
        compute = make_compute("trace", path=args.compute_trace)
    else:
        if args.compute_trace is not None:
            raise InputError("--compute-trace", args.compute_trace, "only with --compute trace")
        extra = {"sigma": args.compute_sigma, "shape": args.compute_shape}
        params = {key: value for key, value in extra.items() if value is not None}
        params["mean"] = 1.0 if args.compute_mean is None else args.compute_mean
        params["spread"] = 1.0 if args.compute_spread is None else args.compute_spread
        compute = make_compute(name, **params)
    link_options = {
        key: getattr(args, key)
        for key in ("latency_up", "latency_down", "bandwidth_up", "bandwidth_down")
        if getattr(args, key) is not None
    }
    return run_async(
        algorithm,
        problem,
        args.iters,
        workers=args.workers,
        compute=compute,
        link=Link(**link_options),
        tau_max=args.tau_max,
        trace_every=1 if args.trace_every is None else args.trace_every,
        **common,
    )


def format_run(result) -> str:
    summary, final = result.summary, result.summary["final"]
    algorithm = result.meta["algorithm"]
    lines = [
        f"algorithm  {algorithm['name']} {json.dumps(algorithm['params'])}",
        f"status     {result.status}: {result.reason}",
        f"final      f − f_ref = {final['suboptimality']:.6g}, "
        f"‖∇f‖² = {final['grad_norm_sq']:.6g}, ‖θ − θ*‖² = {final['dist_sq']:.6g}",
        f"bits       up {final['bits_up_total']:,}, down {final['bits_down_total']:,} "
        f"(all workers, {summary['iterations']} "
        + ("server updates)" if result.meta.get("engine") == "async" else "rounds)"),
    ]
    if result.meta.get("engine") == "async":
        stale = summary["staleness"]
        lines.append(
            f"async      {result.meta['workers']} workers, simulated time {summary['time']:.6g} s, "
            f"staleness mean {stale['mean']:.3g} max {stale['max']}"
            + (f" (tau_max {stale['tau_max']})" if stale["tau_max"] is not None else "")
        )
    if summary["target"] is not None:
        where = summary["target_iteration"]
        lines.append(
            f"target     {summary['target_metric']} <= {summary['target']:g}: "
            + (
                f"iteration {where}, bits up {summary['bits_up_to_target']:,}, "
                f"down {summary['bits_down_to_target']:,}"
                + (
                    f", simulated time {summary['target_time']:.6g} s"
                    if summary.get("target_time") is not None
                    else ""
                )
                if where is not None
                else "not reached"
            )
        )
    return "\n".join(lines)


def add_async_arguments(parser: argparse.ArgumentParser) -> None:
    """Timing and staleness options of ``run`` (asynchronous algorithms only)."""
    from convcheck.engine.timing import COMPUTE_MODELS

    group = parser.add_argument_group(
        "asynchronous algorithms (async-sgd, async-sparse-sgd, dgs): --iters counts server updates"
    )
    group.add_argument(
        "--compute", choices=list(COMPUTE_MODELS), help="compute-time model (exponential)"
    )
    group.add_argument("--compute-mean", type=float, help="mean compute time in seconds (1)")
    group.add_argument(
        "--compute-spread", type=float, help="slowest/fastest mean ratio, geometric (1)"
    )
    group.add_argument("--compute-sigma", type=float, help="lognormal log-sd (0.5)")
    group.add_argument("--compute-shape", type=float, help="pareto tail index > 1 (2.5)")
    group.add_argument(
        "--compute-trace", help="recorded durations (.csv/.json), one column per worker"
    )
    group.add_argument("--latency-up", type=float, help="uplink latency in seconds (0)")
    group.add_argument("--latency-down", type=float, help="downlink latency in seconds (0)")
    group.add_argument("--bandwidth-up", type=float, help="uplink bits per second (inf)")
    group.add_argument("--bandwidth-down", type=float, help="downlink bits per second (inf)")
    group.add_argument("--tau-max", type=int, help="hard staleness bound (none)")
    group.add_argument(
        "--trace-every", type=int, help="evaluate the server model every K updates (1)"
    )
    group.add_argument(
        "--shared-data",
        action="store_true",
        help="--workers workers all sampling the whole dataset (no split)",
    )


EXAMPLES = """\
examples:
  convcheck run --algorithm gd-sec --problem logistic --dataset breast-cancer --workers 10 \\
      --split sorted --iters 500 --set alpha=0.5/L --set xi=0.2 --target 1e-6 --out trace.csv
  convcheck run --algorithm ef --problem ridge --dataset diabetes --iters 200 \\
      --set compressor=top-k --set k=3
  convcheck run --algorithm async-sgd --problem nonconvex-logistic --workers 8 \\
      --shared-data --iters 2000 --set alpha=0.05/L --tau-max 7 --compute lognormal
"""


def parameters_help() -> str:
    """Every algorithm's ``--set`` keys, then every compressor's (from
    :func:`convcheck.catalog.algorithm_parameters`)."""
    from convcheck.algorithms import ALGORITHMS
    from convcheck.catalog import (
        DEFAULT_COMPRESSOR,
        algorithm_parameters,
        compressor_parameters,
        parameter_line,
    )
    from convcheck.compressors import COMPRESSORS

    lines = ["--set keys of each algorithm (KEY (type; allowed; default): meaning):"]
    for name in ALGORITHMS:
        lines.append(f"  {name}:")
        lines += [f"    {parameter_line(row)}" for row in algorithm_parameters(name)]
    lines += ["", f"--set keys of the compressors (with compressor=NAME, default "
              f"{DEFAULT_COMPRESSOR}):"]
    for name in COMPRESSORS:
        lines.append(f"  {name}:")
        lines += [f"    {parameter_line(row)}" for row in compressor_parameters(name)]
    return "\n".join(lines)


def add_parser(commands: argparse._SubParsersAction) -> None:
    from convcheck.algorithms import ALGORITHMS
    from convcheck.engine import TARGET_METRICS

    run = commands.add_parser(
        "run", help="one run of an algorithm; writes its trace",
        description="One run of an algorithm on a problem: prints the final accuracy and the "
        "bits sent, and writes the trace (one row per iterate) with --out. A warning (the run "
        "goes on) says when the settings are outside every applicable bound's conditions.",
        epilog=EXAMPLES + "\n" + parameters_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--algorithm", required=True, choices=list(ALGORITHMS),
                     help="the algorithm (its --set keys are listed below)")
    add_problem_arguments(run)
    run.add_argument("--iters", type=int, required=True,
                     help="number of rounds T (asynchronous: server updates)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="algorithm or compressor parameter, e.g. alpha=0.5/L, xi=0.1, compressor=top-k, "
        "k=5, a list as layers=20,10 (see below)",
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
    add_progress_argument(run)
    run.add_argument("--out", help="trace file: .json (everything), .csv or .parquet (columns)")
    add_async_arguments(run)
    run.set_defaults(handler=handle)
